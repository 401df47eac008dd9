//! Where a metric is counted: a mask volume ("within 10 mm of the defect rim") or a sphere.
//!
//! Every metric in this crate takes an optional [`Region`]: overlap counts only voxels whose centre
//! lies in it, surface distances only sample points (or surface voxels) that lie in it, so "MAD near
//! the defect" is one call with `Region::Mask(defect_region)`.
use msd_io::{Geometry, LabelVolume};

use crate::{Error, Result};

/// A region of the patient in which metrics are counted.
///
/// Points are in LPS millimetres. A mask region holds a point when the voxel nearest to it (in the
/// mask's own grid) is non-zero; points outside the mask's grid are outside the region. A sphere
/// holds the points at a distance of at most `radius_mm` from its centre.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Region {
    /// Non-zero voxels of a label volume, on any grid (e.g. `defect_region.nii.gz`).
    Mask(LabelVolume),
    /// A closed ball.
    Sphere {
        /// Centre in LPS millimetres.
        centre: [f64; 3],
        /// Radius in millimetres (finite, non-negative).
        radius_mm: f64,
    },
}

impl Region {
    /// A sphere region, checked: the centre must be finite and the radius finite and non-negative.
    pub fn sphere(centre: [f64; 3], radius_mm: f64) -> Result<Self> {
        let region = Region::Sphere { centre, radius_mm };
        region.validate()?;
        Ok(region)
    }

    /// Whether the LPS point (mm) lies in the region.
    pub fn contains(&self, point: [f64; 3]) -> bool {
        match self {
            Region::Mask(mask) => MaskLookup::new(mask).contains(point),
            Region::Sphere { centre, radius_mm } => sphere_contains(*centre, *radius_mm, point),
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        match self {
            Region::Mask(_) => Ok(()),
            Region::Sphere { centre, radius_mm } => {
                if centre.iter().any(|c| !c.is_finite()) {
                    return Err(Error::invalid("region centre", format!("{centre:?} is not finite")));
                }
                if !(radius_mm.is_finite() && *radius_mm >= 0.0) {
                    return Err(Error::invalid(
                        "region radius",
                        format!("{radius_mm} mm; it must be finite and non-negative"),
                    ));
                }
                Ok(())
            }
        }
    }

    /// A membership test with the mask's inverse affine computed once, for use in hot loops.
    pub(crate) fn tester(&self) -> RegionTester<'_> {
        match self {
            Region::Mask(mask) => RegionTester::Mask(MaskLookup::new(mask)),
            Region::Sphere { centre, radius_mm } => RegionTester::Sphere(*centre, *radius_mm),
        }
    }
}

fn sphere_contains(centre: [f64; 3], radius_mm: f64, p: [f64; 3]) -> bool {
    let d2: f64 = (0..3).map(|k| (p[k] - centre[k]).powi(2)).sum();
    d2 <= radius_mm * radius_mm
}

/// [`Region::contains`] with the per-region set-up done once.
pub(crate) enum RegionTester<'a> {
    Mask(MaskLookup<'a>),
    Sphere([f64; 3], f64),
}

impl RegionTester<'_> {
    pub(crate) fn contains(&self, p: [f64; 3]) -> bool {
        match self {
            RegionTester::Mask(m) => m.contains(p),
            RegionTester::Sphere(c, r) => sphere_contains(*c, *r, p),
        }
    }
}

/// Nearest-voxel lookup of LPS points in a mask volume.
pub(crate) struct MaskLookup<'a> {
    mask: &'a LabelVolume,
    origin: [f64; 3],
    /// Rows map an LPS offset from the origin to a continuous index (x, y, z).
    world_to_index: [[f64; 3]; 3],
}

impl<'a> MaskLookup<'a> {
    pub(crate) fn new(mask: &'a LabelVolume) -> Self {
        let g = mask.geometry();
        MaskLookup { mask, origin: g.origin(), world_to_index: world_to_index_matrix(g) }
    }

    fn contains(&self, p: [f64; 3]) -> bool {
        let d = [p[0] - self.origin[0], p[1] - self.origin[1], p[2] - self.origin[2]];
        let [nz, ny, nx] = self.mask.shape();
        let mut idx = [0usize; 3];
        for (k, n) in [nx, ny, nz].into_iter().enumerate() {
            let row = self.world_to_index[k];
            let c = (row[0] * d[0] + row[1] * d[1] + row[2] * d[2]).round();
            // NaN fails both comparisons and lands outside.
            if !(c >= 0.0 && c < n as f64) {
                return false;
            }
            idx[k] = c as usize;
        }
        self.mask.data()[[idx[2], idx[1], idx[0]]] != 0
    }
}

/// The matrix taking an LPS offset from the origin to a continuous voxel index (x, y, z): the
/// inverse of `direction · diag(spacing)`.
pub(crate) fn world_to_index_matrix(g: &Geometry) -> [[f64; 3]; 3] {
    let dir = g.direction();
    let sp = g.spacing();
    let mut a = [[0.0; 3]; 3];
    for r in 0..3 {
        for c in 0..3 {
            a[r][c] = dir[r][c] * sp[c];
        }
    }
    invert3(&a)
}

fn invert3(m: &[[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
    let mut inv = [[0.0; 3]; 3];
    for (r, row) in inv.iter_mut().enumerate() {
        for (c, cell) in row.iter_mut().enumerate() {
            let (r1, r2) = ((c + 1) % 3, (c + 2) % 3);
            let (c1, c2) = ((r + 1) % 3, (r + 2) % 3);
            *cell = (m[r1][c1] * m[r2][c2] - m[r1][c2] * m[r2][c1]) / det;
        }
    }
    inv
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    #[test]
    fn mask_lookup_uses_nearest_voxel_and_geometry() {
        let g = Geometry::new([1.0, 2.0, 3.0], [10.0, 20.0, 30.0], Geometry::IDENTITY).unwrap();
        let mut data = Array3::<u8>::zeros((4, 5, 6));
        data[[2, 3, 1]] = 1; // z = 2, y = 3, x = 1 → LPS (11, 26, 36)
        let region = Region::Mask(LabelVolume::new(data, g).unwrap());
        assert!(region.contains([11.0, 26.0, 36.0]));
        assert!(region.contains([11.4, 26.9, 37.4]));
        assert!(!region.contains([11.6, 26.0, 36.0]));
        assert!(!region.contains([-100.0, 26.0, 36.0]));
        assert!(!region.contains([f64::NAN, 26.0, 36.0]));
    }

    #[test]
    fn sphere_is_closed_and_checked() {
        let s = Region::sphere([1.0, 2.0, 3.0], 2.0).unwrap();
        assert!(s.contains([3.0, 2.0, 3.0]));
        assert!(!s.contains([3.01, 2.0, 3.0]));
        assert!(Region::sphere([0.0; 3], -1.0).is_err());
        assert!(Region::sphere([f64::NAN, 0.0, 0.0], 1.0).is_err());
    }
}
