//! Synthetic skulls and seeded defects, for tests, examples and benchmarks.
//!
//! [`skull_shell`] draws a closed ellipsoidal vault, thicker at the back, with a frontal boss, an
//! external occipital protuberance (so that only the mid-sagittal plane is a symmetry plane), two
//! orbits and an open skull base. [`cut_sphere`] removes the bone inside a ball, as the SkullBreak
//! and AutoImplant datasets (and `../shared/data/cthead`) make their craniectomies;
//! [`outer_surface_point`] finds where a direction from the skull's centre leaves the bone, to
//! centre a cut on the surface.
use msd_io::{Geometry, LabelVolume};
use ndarray::Array3;

use crate::rays::{Sampler, V3, add, dot, norm, normalize, scale, sub};
use crate::skull::Frame;
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
