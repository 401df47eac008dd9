//! Synthetic skulls and seeded defects, for tests, examples and benchmarks.
//!
//! [`skull_shell`] draws a closed ellipsoidal vault, thicker at the back, with a frontal boss, an
//! external occipital protuberance (so that only the mid-sagittal plane is a symmetry plane), two
//! orbits and an open skull base. Two seeded defects, both deterministic (the same skull, centre
//! and size always give the same voxels):
//!
//! * [`cut_sphere`] removes the bone inside a ball, as the SkullBreak and AutoImplant datasets (and
//!   `../shared/data/cthead`) make their craniectomies. A ball centred on the outer table reaches
//!   as deep as its radius: a 90 mm ball also takes sinus walls, orbit roofs and skull-base bone
//!   that no implant (a shell between two tables) replaces.
//! * [`cut_flap`] removes a bone flap as a craniotomy does: the bone inside a round outline,
//!   through the vault's full thickness and no deeper.
//!
//! [`outer_surface_point`] finds where a direction from the skull's centre leaves the bone, to
//! centre a cut on the surface.
use msd_io::{Geometry, LabelVolume};
use ndarray::Array3;

use crate::rays::{Sampler, V3, add, basis, dot, norm, normalize, scale, sub};
use crate::skull::{Frame, fit_sphere};
use crate::{Error, Result};

/// The shape of a synthetic skull.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShellSpec {
    /// Centre of the vault, LPS mm.
    pub centre_mm: [f64; 3],
    /// Outer semi-axes along x (left-right), y (front-back) and z (up) in mm.
    pub semi_axes_mm: [f64; 3],
    /// Bone thickness at the sides (mm); the back is 25% thicker, the front 25% thinner.
    pub thickness_mm: f64,
}

impl Default for ShellSpec {
    /// An adult-sized vault centred at the origin: 144 × 180 × 144 mm outside, 6 mm thick.
    fn default() -> Self {
        ShellSpec { centre_mm: [0.0; 3], semi_axes_mm: [72.0, 90.0, 72.0], thickness_mm: 6.0 }
    }
}

const ORBIT_HALF_ANGLE_DEG: f64 = 14.0;

impl ShellSpec {
    /// Outer radius and thickness of the shell along a unit direction from the centre.
    fn tables(&self, d: V3) -> (f64, f64) {
        let [a, b, c] = self.semi_axes_mm;
        let base = 1.0 / ((d[0] / a).powi(2) + (d[1] / b).powi(2) + (d[2] / c).powi(2)).sqrt();
        let bump = |axis: V3, height: f64, sigma_deg: f64| {
            let ang = dot(d, normalize(axis)).clamp(-1.0, 1.0).acos().to_degrees();
            height * (-(ang / sigma_deg).powi(2)).exp()
        };
        let outer = base + bump([0.0, -0.7, 0.7], 3.0, 25.0) + bump([0.0, 1.0, -0.15], 5.0, 12.0);
        (outer, self.thickness_mm * (1.0 + 0.25 * d[1]))
    }

    fn is_bone(&self, p: V3) -> bool {
        let v = sub(p, self.centre_mm);
        let r = norm(v);
        if r == 0.0 || v[2] < -0.45 * self.semi_axes_mm[2] {
            return false;
        }
        let d = scale(v, 1.0 / r);
        for side in [-1.0, 1.0] {
            let orbit = normalize([0.4 * side, -0.75, -0.45]);
            if dot(d, orbit) > ORBIT_HALF_ANGLE_DEG.to_radians().cos() {
                return false;
            }
        }
        let (outer, thick) = self.tables(d);
        r <= outer && r >= outer - thick
    }

    /// The point where the direction `d` from the centre leaves the outer table (LPS mm).
    pub fn outer_point(&self, d: [f64; 3]) -> [f64; 3] {
        let d = normalize(d);
        add(self.centre_mm, scale(d, self.tables(d).0))
    }
}

/// Draws the synthetic skull of `spec` on a grid (`shape` is `[z, y, x]`); label 1 is bone.
pub fn skull_shell(spec: &ShellSpec, geometry: Geometry, shape: [usize; 3]) -> Result<LabelVolume> {
    let data = Array3::from_shape_fn((shape[0], shape[1], shape[2]), |(z, y, x)| {
        u8::from(spec.is_bone(geometry.index_to_world([x as f64, y as f64, z as f64])))
    });
    Ok(LabelVolume::new(data, geometry)?)
}

/// A grid of `spacing` mm (x, y, z) and `direction` that covers the skull of `spec` with a margin
/// of 6 mm, centred on it.
pub fn grid_for(
    spec: &ShellSpec,
    spacing: [f64; 3],
    direction: [[f64; 3]; 3],
) -> Result<(Geometry, [usize; 3])> {
    let half = spec.semi_axes_mm.iter().copied().fold(0.0, f64::max) + 12.0;
    let n = [0, 1, 2].map(|k| (2.0 * half / spacing[k]).ceil() as usize + 1);
    // Origin so that the grid's centre is the skull's centre whatever the direction.
    let mid = [0, 1, 2].map(|k| 0.5 * (n[k] - 1) as f64 * spacing[k]);
    let offset = [0, 1, 2].map(|r| (0..3).map(|c| direction[r][c] * mid[c]).sum::<f64>());
    let geometry = Geometry::new(spacing, sub(spec.centre_mm, offset), direction)?;
    Ok((geometry, [n[2], n[1], n[0]]))
}

/// Removes the bone inside the ball of `radius_mm` around `centre_mm`: returns (defective skull,
/// removed bone), the second being the exact implant.
pub fn cut_sphere(
    skull: &LabelVolume,
    centre_mm: [f64; 3],
    radius_mm: f64,
) -> Result<(LabelVolume, LabelVolume)> {
    if !(radius_mm.is_finite() && radius_mm > 0.0) || centre_mm.iter().any(|v| !v.is_finite()) {
        return Err(Error::InvalidOption {
            name: "cut",
            what: format!("ball at {centre_mm:?} of radius {radius_mm} mm"),
        });
    }
    let g = *skull.geometry();
    let mut defective = skull.data().clone();
    let mut removed = Array3::<u8>::zeros(defective.dim());
    for ((z, y, x), v) in defective.indexed_iter_mut() {
        if *v != 0 && norm(sub(g.index_to_world([x as f64, y as f64, z as f64]), centre_mm)) <= radius_mm {
            *v = 0;
            removed[[z, y, x]] = 1;
        }
    }
    Ok((skull.with_data(defective)?, skull.with_data(removed)?))
}

/// Radius (mm) of the ball of bone at least used to fit a flap's local sphere.
const FLAP_FIT_RADIUS_MM: f64 = 20.0;
/// How far outside the outer table (mm, along each column) the columns of a flap start.
const FLAP_ABOVE_MM: f64 = 25.0;
/// How far below the outer table a column may go (mm): the shell's bone is thinner than this.
const FLAP_BELOW_MM: f64 = 25.0;
/// Largest radius of curvature (mm) a flap's local sphere may have; a flatter fit, or one curved
/// tighter than 1.5 × the flap's radius (the bone in the ball then holds more than a shell: sinus
/// walls, the skull base), gives way to the skull's own centre (a sphere fitted to its vault).
const FLAP_MAX_CURVATURE_MM: f64 = 400.0;

/// Removes a bone flap as a craniotomy does: the bone inside a round outline of `diameter_mm`
/// (measured along the outer table) around `centre_mm` (a point on the outer table), cut
/// perpendicular to the surface through the full thickness of the first shell of bone met from
/// outside, and no deeper. Returns (defective skull, removed flap), the second being the exact
/// implant.
///
/// "Perpendicular" is along the normals of a sphere fitted to the bone within the flap's radius
/// (at least 20 mm) of the centre (or, where that fit is curved tighter than 1.5 × the flap's
/// radius or flatter than 400 mm, of the sphere fitted to the vault): the flap is the bone of that sphere's cone whose half-angle
/// spans half the diameter on the outer table, so its rim faces the same way as a saw held square
/// to the bone. Along each column of the cone (lateral steps of half the smallest voxel side) the
/// first run of bone met coming in from outside, gaps up to 1.6 voxels bridged (diploë), is the
/// flap there; a bone voxel is removed when its centre lies in the run of its column. Bone further
/// in along the same column (the skull base under a low temporal flap, the far wall of a sinus)
/// stays, as it does in surgery. The cut is deterministic: the same skull, centre and diameter
/// give the same voxels.
pub fn cut_flap(
    skull: &LabelVolume,
    centre_mm: [f64; 3],
    diameter_mm: f64,
) -> Result<(LabelVolume, LabelVolume)> {
    if !(diameter_mm.is_finite() && diameter_mm > 0.0) || centre_mm.iter().any(|v| !v.is_finite()) {
        return Err(Error::InvalidOption {
            name: "cut",
            what: format!("flap at {centre_mm:?} of diameter {diameter_mm} mm"),
        });
    }
    let standard = skull.data().as_standard_layout();
    let data = standard.as_slice().expect("standard layout");
    if data.iter().all(|&v| v == 0) {
        return Err(Error::EmptySkull { shape: skull.shape() });
    }
    let radius = 0.5 * diameter_mm;
    let apex = match local_sphere(skull, data, centre_mm, radius.max(FLAP_FIT_RADIUS_MM))? {
        Some((c, rho)) if (1.5 * radius..=FLAP_MAX_CURVATURE_MM).contains(&rho) => c,
        _ => Frame::estimate(skull, data)?.centre,
    };
    let rho = norm(sub(centre_mm, apex));
    if rho <= radius.min(1.0) {
        return Err(Error::InvalidOption { name: "cut", what: "the flap's centre is at its apex".into() });
    }
    let n = normalize(sub(centre_mm, apex));
    let (e1, e2) = basis(n);
    let g = *skull.geometry();
    let sp = g.spacing();
    let min_sp = sp.iter().copied().fold(f64::INFINITY, f64::min);
    let max_sp = sp.iter().copied().fold(0.0, f64::max);
    let (step, gap) = ((0.5 * min_sp).min(0.5), 1.6 * max_sp);
    // Columns on a gnomonic grid of the tangent plane at the centre (cells of half a voxel there).
    let half_angle = radius / rho;
    if half_angle >= std::f64::consts::FRAC_PI_2 * 0.9 {
        return Err(Error::InvalidOption {
            name: "cut",
            what: format!(
                "a flap {diameter_mm:.0} mm across on bone curved {rho:.0} mm spans half the sphere"
            ),
        });
    }
    let h = 0.5 * min_sp / rho;
    let half = (half_angle.tan() / h).ceil() as isize + 1;
    let side = (2 * half + 1) as usize;
    let sampler = Sampler::new(skull, data);
    let (r_hi, r_lo) = (rho + FLAP_ABOVE_MM, (rho - FLAP_BELOW_MM - radius).max(0.0));
    let steps = ((r_hi - r_lo) / step).ceil() as usize;
    let column_dir = |a: f64, b: f64| normalize(add(n, add(scale(e1, a), scale(e2, b))));
    // The first run of bone down each column, as (outer, inner) distances from the apex.
    let columns: Vec<(f64, f64)> = (0..side * side)
        .map(|k| {
            let (a, b) = (((k % side) as isize - half) as f64 * h, ((k / side) as isize - half) as f64 * h);
            let d = column_dir(a, b);
            if dot(d, n).clamp(-1.0, 1.0).acos() > half_angle + 2.0 * h {
                return (f64::NAN, f64::NAN);
            }
            let (mut top, mut bottom) = (f64::NAN, f64::NAN);
            for i in 0..=steps {
                let r = r_hi - i as f64 * step;
                if sampler.bone(add(apex, scale(d, r))) {
                    if top.is_nan() {
                        top = r;
                    }
                    bottom = r;
                } else if !top.is_nan() && bottom - r > gap {
                    break;
                }
            }
            (top + 0.5 * step, bottom - 0.5 * step)
        })
        .collect();
    let cos_half = half_angle.cos();
    let mut defective = skull.data().clone();
    let mut removed = Array3::<u8>::zeros(defective.dim());
    for ((z, y, x), v) in defective.indexed_iter_mut() {
        if *v == 0 {
            continue;
        }
        let rel = sub(g.index_to_world([x as f64, y as f64, z as f64]), apex);
        let (r, along) = (norm(rel), dot(rel, n));
        if along <= 0.0 || along < cos_half * r {
            continue;
        }
        let (ca, cb) = (
            (dot(rel, e1) / along / h).round() as isize + half,
            (dot(rel, e2) / along / h).round() as isize + half,
        );
        if ca < 0 || cb < 0 || ca >= side as isize || cb >= side as isize {
            continue;
        }
        let (top, bottom) = columns[cb as usize * side + ca as usize];
        if r <= top && r >= bottom {
            *v = 0;
            removed[[z, y, x]] = 1;
        }
    }
    Ok((skull.with_data(defective)?, skull.with_data(removed)?))
}

/// The sphere fitted (least squares) to the bone voxel centres within `radius` mm of `centre`:
/// (its centre, its distance to `centre`); `None` when no sphere fits.
fn local_sphere(skull: &LabelVolume, data: &[u8], centre: V3, radius: f64) -> Result<Option<(V3, f64)>> {
    let g = skull.geometry();
    let [nz, ny, nx] = skull.shape();
    let ic = Sampler::new(skull, data).index(centre);
    let sp = g.spacing();
    let dims = [nx, ny, nz];
    let lo = [0, 1, 2].map(|k| (ic[k] - radius / sp[k] - 1.0).floor().max(0.0) as usize);
    let hi = [0, 1, 2].map(|k| ((ic[k] + radius / sp[k] + 1.0).ceil().max(0.0) as usize).min(dims[k] - 1));
    let mut pts = Vec::new();
    for z in lo[2]..=hi[2] {
        for y in lo[1]..=hi[1] {
            for x in lo[0]..=hi[0] {
                if data[(z * ny + y) * nx + x] == 0 {
                    continue;
                }
                let p = g.index_to_world([x as f64, y as f64, z as f64]);
                if norm(sub(p, centre)) <= radius {
                    pts.push(p);
                }
            }
        }
    }
    if pts.len() < 20 {
        return Err(Error::InvalidOption {
            name: "cut",
            what: format!(
                "only {} bone voxels within {radius:.0} mm of the flap's centre {}: centre it on the skull",
                pts.len(),
                crate::error::fmt_point(&centre)
            ),
        });
    }
    Ok(fit_sphere(&pts).map(|(c, _)| (c, norm(sub(centre, c)))))
}

/// Where the direction `direction` from the skull's centre (a sphere fitted to its vault) leaves
/// the outer table, LPS mm; `None` when that ray meets no bone.
pub fn outer_surface_point(skull: &LabelVolume, direction: [f64; 3]) -> Result<Option<[f64; 3]>> {
    let data = skull.data().as_standard_layout();
    let data = data.as_slice().expect("standard layout");
    if data.iter().all(|&v| v == 0) {
        return Err(Error::EmptySkull { shape: skull.shape() });
    }
    let frame = Frame::estimate(skull, data)?;
    let sampler = Sampler::new(skull, data);
    let d = normalize(direction);
    Ok(frame.caster.cast(&sampler, frame.centre, d).map(|x| add(frame.centre, scale(d, x.r_out))))
}
