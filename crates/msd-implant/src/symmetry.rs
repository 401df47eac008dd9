//! The mid-sagittal symmetry plane: the skull's outer surface registered to its own mirror image.
//!
//! The outer table seen from the skull's centre (one point per direction of the vault and upper
//! face) is triangulated, mirrored across the sagittal plane through the centre and aligned back
//! onto itself by point-to-plane ICP ([`msd_geom::align_icp`]). The composition S = T · M of the
//! mirror M and the rigid correction T is an improper isometry; for a symmetric skull it is the
//! reflection across the symmetry plane, so the plane's normal is the principal direction of the
//! displacements p → S(p) and it passes through their midpoints. A defect on one side mirrors onto
//! healthy bone; ICP's outlier rejection (pairs beyond 3 × the median distance) drops those pairs.
use msd_geom::{AlignOptions, Mesh, align_icp};

use crate::rays::{V3, add, dot, normalize, scale, sub};
use crate::skull::{Frame, GlobalMap};
use crate::{Error, Result};

/// Rays below this polar angle (degrees from superior) give the surface registered: the vault and
/// the upper face, not the mandible (its pose is not symmetric when the mouth is open).
const MAX_POLAR_DEG: f64 = 115.0;

/// A plane n · p = d in LPS millimetres with a unit normal pointing to the patient's left (+x).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SymmetryPlane {
    /// Unit normal, LPS.
    pub normal: [f64; 3],
    /// Signed distance of the plane from the origin along the normal (mm).
    pub offset_mm: f64,
    /// RMS distance (mm) between the surface and its mirror image after registration: how
    /// symmetric the skull is.
    pub rms_mm: f64,
}

impl SymmetryPlane {
    /// The plane through `point` with unit normal `normal` (normalised here; its sign is chosen so
    /// that it points to +x).
    pub fn through(point: [f64; 3], normal: [f64; 3]) -> Self {
        let mut n = normalize(normal);
        if n[0] < 0.0 {
            n = scale(n, -1.0);
        }
        SymmetryPlane { normal: n, offset_mm: dot(n, point), rms_mm: 0.0 }
    }

    /// Signed distance of a point from the plane (mm), positive on the normal's side.
    pub fn signed_distance(&self, p: [f64; 3]) -> f64 {
        dot(self.normal, p) - self.offset_mm
    }

    /// The mirror image of a point.
    pub fn reflect_point(&self, p: [f64; 3]) -> [f64; 3] {
        sub(p, scale(self.normal, 2.0 * self.signed_distance(p)))
    }

    /// The mirror image of a direction.
    pub fn reflect_direction(&self, d: [f64; 3]) -> [f64; 3] {
        sub(d, scale(self.normal, 2.0 * dot(self.normal, d)))
    }

    /// Angle between the planes' normals (degrees, 0–90).
    pub fn angle_deg(&self, other: &SymmetryPlane) -> f64 {
        dot(self.normal, other.normal).abs().clamp(0.0, 1.0).acos().to_degrees()
    }

    /// The reflection as a 4×4 row-major matrix (column vectors).
    fn matrix(&self) -> [[f64; 4]; 4] {
        let n = self.normal;
        let mut m = [[0.0; 4]; 4];
        for r in 0..3 {
            for c in 0..3 {
                m[r][c] = f64::from(u8::from(r == c)) - 2.0 * n[r] * n[c];
            }
            m[r][3] = 2.0 * self.offset_mm * n[r];
        }
        m[3][3] = 1.0;
        m
    }
}

/// The outer table as a mesh: one vertex per direction that meets bone, quads split in two where
/// their four corners are within `max_step` mm of each other in radius.
pub(crate) fn outer_surface(frame: &Frame, map: &GlobalMap) -> Result<Mesh> {
    let max_row = ((MAX_POLAR_DEG / 180.0) * map.nt as f64) as usize;
    let mut index = vec![u32::MAX; map.nt * map.np];
    let mut vertices = Vec::new();
    for i in 0..max_row {
        for j in 0..map.np {
            let c = i * map.np + j;
            if let Some(x) = map.crossings[c] {
                index[c] = vertices.len() as u32;
                vertices.push(add(frame.centre, scale(map.dir(c), x.r_out)).map(|v| v as f32));
            }
        }
    }
    let mut triangles = Vec::new();
    let max_step = 6.0;
    for i in 0..max_row.saturating_sub(1) {
        for j in 0..map.np {
            let q = [
                i * map.np + j,
                i * map.np + (j + 1) % map.np,
                (i + 1) * map.np + (j + 1) % map.np,
                (i + 1) * map.np + j,
            ];
            let r: Vec<f64> = q.iter().filter_map(|&c| map.crossings[c].map(|x| x.r_out)).collect();
            if r.len() < 4 {
                continue;
            }
            let (lo, hi) =
                r.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
            if hi - lo > max_step {
                continue;
            }
            let v = q.map(|c| index[c]);
            // Outward: the grid runs θ down, φ anticlockwise seen from outside.
            triangles.push([v[0], v[2], v[1]]);
            triangles.push([v[0], v[3], v[2]]);
        }
    }
    Ok(Mesh::new(vertices, triangles)?.compacted())
}

/// Finds the symmetry plane from the skull's outer surface.
pub(crate) fn find_plane(frame: &Frame, map: &GlobalMap) -> Result<SymmetryPlane> {
    let surface = outer_surface(frame, map)?;
    if surface.triangles().len() < 100 {
        return Err(Error::MirrorUnavailable {
            why: format!("only {} triangles of outer surface to register", surface.triangles().len()),
        });
    }
    let start = SymmetryPlane::through(frame.centre, [1.0, 0.0, 0.0]);
    let mirror = start.matrix();
    let mirrored = surface.transformed(&mirror).flipped();
    let options = AlignOptions {
        max_iterations: 60,
        sample_points: 6000,
        tolerance_mm: 1e-4,
        coarse_start: false,
        max_correspondence_mm: 20.0,
    };
    let alignment = align_icp(&mirrored, &surface, &options)?;
    let t = alignment.transform;
    // S = T · M applied to the surface's own points.
    let mut s = [[0.0; 4]; 4];
    for r in 0..4 {
        for c in 0..4 {
            s[r][c] = (0..4).map(|k| t[r][k] * mirror[k][c]).sum();
        }
    }
    let apply = |p: V3| [0, 1, 2].map(|r| s[r][0] * p[0] + s[r][1] * p[1] + s[r][2] * p[2] + s[r][3]);
    let pts: Vec<V3> = surface.vertices().iter().step_by(7).map(|p| p.map(f64::from)).collect();
    let mut cov = [[0.0; 3]; 3];
    for p in &pts {
        let w = sub(apply(*p), *p);
        for r in 0..3 {
            for c in 0..3 {
                cov[r][c] += w[r] * w[c];
            }
        }
    }
    // Power iteration from the starting normal.
    let mut n = start.normal;
    for _ in 0..100 {
        n = normalize([0, 1, 2].map(|r| dot(cov[r], n)));
    }
    if n[0] < 0.0 {
        n = scale(n, -1.0);
    }
    let d = pts.iter().map(|p| dot(n, scale(add(*p, apply(*p)), 0.5))).sum::<f64>() / pts.len() as f64;
    Ok(SymmetryPlane { normal: n, offset_mm: d, rms_mm: alignment.rms_mm })
}
