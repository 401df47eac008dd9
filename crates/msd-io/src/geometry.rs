//! Where voxels are in the patient: spacing, origin and direction in LPS millimetres.
use crate::{Error, Result};

/// The placement of a voxel grid in DICOM patient coordinates (LPS, millimetres).
///
/// A voxel with index `(x, y, z)` (array element `[z, y, x]`) has its centre at
/// `origin + direction · (index ⊙ spacing)`, where column `j` of `direction` is the unit vector of
/// axis `j` (x, y, z) in LPS (+x patient left, +y posterior, +z superior).
///
/// The columns are unit vectors; they are orthogonal for every regular grid (a gantry-tilted DICOM
/// series is resampled or refused by the reader, never returned with a sheared direction).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Geometry {
    spacing: [f64; 3],
    origin: [f64; 3],
    direction: [[f64; 3]; 3],
}

impl Default for Geometry {
    /// 1 mm isotropic voxels, origin at the LPS origin, axes along L, P, S.
    fn default() -> Self {
        Geometry { spacing: [1.0; 3], origin: [0.0; 3], direction: Self::IDENTITY }
    }
}

impl Geometry {
    /// The identity direction: x → L, y → P, z → S.
    pub const IDENTITY: [[f64; 3]; 3] = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];

    /// Tolerance on the length of a direction column (how far from a unit vector it may be).
    const UNIT_TOLERANCE: f64 = 1e-3;

    /// Builds a geometry from spacing `(x, y, z)` in mm, the LPS position (mm) of voxel `[0, 0, 0]`'s
    /// centre, and the direction matrix (row-major; column `j` is axis `j` in LPS).
    ///
    /// Fails when a spacing is not finite and positive, the origin is not finite, or a direction
    /// column is not (within 1e-3) a unit vector. Columns are renormalised to unit length.
    pub fn new(spacing: [f64; 3], origin: [f64; 3], direction: [[f64; 3]; 3]) -> Result<Self> {
        for (axis, s) in ["x", "y", "z"].iter().zip(spacing) {
            if !(s.is_finite() && s > 0.0) {
                return Err(Error::InvalidGeometry {
                    what: format!("spacing along {axis} is {s} mm; it must be finite and positive"),
                });
            }
        }
        if origin.iter().any(|v| !v.is_finite()) {
            return Err(Error::InvalidGeometry { what: format!("origin {origin:?} is not finite") });
        }
        let mut direction = direction;
        for j in 0..3 {
            let col = [direction[0][j], direction[1][j], direction[2][j]];
            let norm = col.iter().map(|v| v * v).sum::<f64>().sqrt();
            if !norm.is_finite() || (norm - 1.0).abs() > Self::UNIT_TOLERANCE {
                return Err(Error::InvalidGeometry {
                    what: format!("direction column {j} {col:?} has length {norm}, not 1"),
                });
            }
            for row in direction.iter_mut() {
                row[j] /= norm;
            }
        }
        Ok(Geometry { spacing, origin, direction })
    }

    /// Voxel spacing `(x, y, z)` in millimetres.
    pub fn spacing(&self) -> [f64; 3] {
        self.spacing
    }

    /// LPS position (mm) of the centre of voxel `[0, 0, 0]`.
    pub fn origin(&self) -> [f64; 3] {
        self.origin
    }

    /// Direction matrix, row-major: column `j` is the unit vector of axis `j` (x, y, z) in LPS.
    pub fn direction(&self) -> [[f64; 3]; 3] {
        self.direction
    }

    /// Returns a copy with another spacing (checked as in [`Geometry::new`]).
    pub fn with_spacing(&self, spacing: [f64; 3]) -> Result<Self> {
        Geometry::new(spacing, self.origin, self.direction)
    }

    /// Returns a copy with another origin (checked as in [`Geometry::new`]).
    pub fn with_origin(&self, origin: [f64; 3]) -> Result<Self> {
        Geometry::new(self.spacing, origin, self.direction)
    }

    /// The 4×4 affine (row-major) mapping a continuous index `(x, y, z, 1)` to LPS millimetres.
    pub fn affine(&self) -> [[f64; 4]; 4] {
        let mut a = [[0.0; 4]; 4];
        for (r, row) in a.iter_mut().take(3).enumerate() {
            for (c, cell) in row.iter_mut().take(3).enumerate() {
                *cell = self.direction[r][c] * self.spacing[c];
            }
            row[3] = self.origin[r];
        }
        a[3][3] = 1.0;
        a
    }

    /// LPS position (mm) of a continuous voxel index `(x, y, z)`; integer indices are voxel centres.
    pub fn index_to_world(&self, index: [f64; 3]) -> [f64; 3] {
        let mut p = self.origin;
        for (r, pr) in p.iter_mut().enumerate() {
            for c in 0..3 {
                *pr += self.direction[r][c] * index[c] * self.spacing[c];
            }
        }
        p
    }

    /// Continuous voxel index `(x, y, z)` of an LPS point (mm): the inverse of
    /// [`Geometry::index_to_world`]. Uses the inverse of the direction matrix, so it is exact for
    /// orthonormal directions and still correct for any invertible one.
    pub fn world_to_index(&self, point: [f64; 3]) -> [f64; 3] {
        let d = [point[0] - self.origin[0], point[1] - self.origin[1], point[2] - self.origin[2]];
        let inv = invert3(&self.direction);
        let mut idx = [0.0; 3];
        for (c, ic) in idx.iter_mut().enumerate() {
            let along: f64 = (0..3).map(|r| inv[c][r] * d[r]).sum();
            *ic = along / self.spacing[c];
        }
        idx
    }

    /// Builds a geometry from a 4×4 (or 3×4) affine, row-major, mapping a voxel index `(x, y, z, 1)`
    /// to LPS millimetres: spacing is the length of each of the first three columns, direction those
    /// columns divided by their lengths, origin the last column. The last row, if given, is ignored.
    ///
    /// Fails (as [`Geometry::new`]) when a column is zero or not finite, or the origin is not finite.
    pub fn from_affine(affine: &[[f64; 4]]) -> Result<Self> {
        if affine.len() < 3 {
            return Err(Error::InvalidGeometry {
                what: format!("affine has {} rows, needs 3", affine.len()),
            });
        }
        let mut spacing = [0.0; 3];
        let mut direction = [[0.0; 3]; 3];
        for (j, s) in spacing.iter_mut().enumerate() {
            *s = (0..3).map(|r| affine[r][j] * affine[r][j]).sum::<f64>().sqrt();
            for (r, row) in direction.iter_mut().enumerate() {
                row[j] = affine[r][j] / *s;
            }
        }
        let origin = [affine[0][3], affine[1][3], affine[2][3]];
        Geometry::new(spacing, origin, direction)
    }

    /// Whether the direction columns are orthogonal to each other within `tolerance` (on the cosine
    /// of the angle between them): true for every regular grid, false for a sheared one.
    pub fn is_orthogonal(&self, tolerance: f64) -> bool {
        let col = |j: usize| [self.direction[0][j], self.direction[1][j], self.direction[2][j]];
        let dot = |a: [f64; 3], b: [f64; 3]| a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
        dot(col(0), col(1)).abs() <= tolerance
            && dot(col(0), col(2)).abs() <= tolerance
            && dot(col(1), col(2)).abs() <= tolerance
    }

    /// Voxel volume in mm³.
    pub fn voxel_volume_mm3(&self) -> f64 {
        self.spacing.iter().product()
    }

    /// Whether two geometries describe the same grid, within `tolerance_mm` for spacing and origin
    /// and 1e-4 for direction cosines.
    pub fn same_grid(&self, other: &Geometry, tolerance_mm: f64) -> bool {
        self.grid_difference(other, tolerance_mm).is_none()
    }

    /// Ok when two geometries describe the same grid (see [`Geometry::same_grid`]); otherwise a
    /// [`Error::GridMismatch`] naming the property that differs and both values.
    pub fn check_same_grid(&self, other: &Geometry, tolerance_mm: f64) -> Result<()> {
        match self.grid_difference(other, tolerance_mm) {
            None => Ok(()),
            Some(what) => Err(Error::GridMismatch { what }),
        }
    }

    fn grid_difference(&self, other: &Geometry, tolerance_mm: f64) -> Option<String> {
        let close = |a: &[f64], b: &[f64], tol: f64| a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol);
        if !close(&self.spacing, &other.spacing, tolerance_mm) {
            return Some(format!("spacing {:?} mm vs {:?} mm", self.spacing, other.spacing));
        }
        if !close(&self.origin, &other.origin, tolerance_mm) {
            return Some(format!("origin {:?} mm vs {:?} mm", self.origin, other.origin));
        }
        let flat = |m: &[[f64; 3]; 3]| m.iter().flatten().copied().collect::<Vec<_>>();
        if !close(&flat(&self.direction), &flat(&other.direction), 1e-4) {
            return Some(format!("direction {:?} vs {:?}", self.direction, other.direction));
        }
        None
    }
}

/// Inverse of a 3×3 matrix by the adjugate; falls back to the transpose (the inverse of an
/// orthonormal matrix) when the determinant vanishes, which `Geometry::new` makes impossible for
/// real grids but keeps this total.
fn invert3(m: &[[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
    if det.abs() < 1e-12 {
        let mut t = [[0.0; 3]; 3];
        for r in 0..3 {
            for c in 0..3 {
                t[r][c] = m[c][r];
            }
        }
        return t;
    }
    let mut inv = [[0.0; 3]; 3];
    for r in 0..3 {
        for c in 0..3 {
            let (r1, r2) = ((c + 1) % 3, (c + 2) % 3);
            let (c1, c2) = ((r + 1) % 3, (r + 2) % 3);
            inv[r][c] = (m[r1][c1] * m[r2][c2] - m[r1][c2] * m[r2][c1]) / det;
        }
    }
    inv
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn world_index_round_trip_oblique() {
        let (s, c) = (0.5f64.sin(), 0.5f64.cos());
        let dir = [[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]];
        let g = Geometry::new([0.4, 0.7, 2.5], [10.0, -5.0, 3.0], dir).unwrap();
        let idx = [3.0, 7.5, -2.0];
        let back = g.world_to_index(g.index_to_world(idx));
        for k in 0..3 {
            assert!((back[k] - idx[k]).abs() < 1e-9, "{back:?} vs {idx:?}");
        }
    }

    #[test]
    fn rejects_bad_spacing_and_direction() {
        assert!(Geometry::new([f64::NAN, 1.0, 1.0], [0.0; 3], Geometry::IDENTITY).is_err());
        assert!(Geometry::new([1.0, 0.0, 1.0], [0.0; 3], Geometry::IDENTITY).is_err());
        let bad = [[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
        assert!(Geometry::new([1.0; 3], [0.0; 3], bad).is_err());
    }

    #[test]
    fn grid_mismatch_names_the_property() {
        let a = Geometry::default();
        let b = a.with_origin([0.0, 0.0, 5.0]).unwrap();
        let err = a.check_same_grid(&b, 1e-3).unwrap_err().to_string();
        assert!(err.contains("origin"), "{err}");
    }
}
