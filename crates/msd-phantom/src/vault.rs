//! The cranial vault alone ([`Anatomy::Vault`](crate::Anatomy::Vault)): nested, smoothly perturbed
//! ellipsoidal shells (scalp, outer table, diploë, inner table, CSF, brain) in air, as small and
//! simple as a skull gets. The quick demo and the fast tests use it.
use std::f64::consts::PI;

use msd_io::Geometry;
use ndarray::{Array3, Axis};
use rand::Rng;
use rand::rngs::StdRng;
use rayon::prelude::*;

use crate::{AIR_HU, Craniectomy, PhantomConfig, SphereField, ramp};

/// Semi-axes (x: L–R, y: A–P, z: S–I) in mm of the scalp surface of a head.
pub(crate) fn head_semi_axes(scale: f64, jitter: f64) -> [f64; 3] {
    [75.0 * scale * jitter, 95.0 * scale * jitter, 85.0 * scale * jitter]
}

/// The vault of one phantom, drawn from the seed.
pub(crate) struct Vault {
    pub(crate) semi_axes: [f64; 3],
    pub(crate) centre: [f64; 3],
    pub(crate) shape_field: SphereField,
    pub(crate) thickness_field: SphereField,
    pub(crate) density_field: SphereField,
    pub(crate) scalp_mm: f64,
    pub(crate) thickness_mm: f64,
    pub(crate) csf_mm: f64,
    pub(crate) cortical_hu: f64,
    pub(crate) diploe_hu: f64,
    pub(crate) brain_hu: f64,
    pub(crate) craniectomy: Option<Craniectomy>,
    pub(crate) metal: Option<Metal>,
}

pub(crate) struct Metal {
    centre: [f64; 3],
    radius_mm: f64,
    streak_angles: Vec<f64>,
}

impl Vault {
    pub(crate) fn draw(config: &PhantomConfig, rng: &mut StdRng) -> Self {
        let jitter = rng.random_range(0.94..1.06);
        let semi_axes = head_semi_axes(config.head_scale, jitter);
        let centre = [rng.random_range(-4.0..4.0), rng.random_range(-4.0..4.0), rng.random_range(-3.0..3.0)];
        let shape_field = SphereField::new(rng, 6, 2.5);
        let thickness_field = SphereField::new(rng, 8, 3.5);
        let density_field = SphereField::new(rng, 5, 3.0);
        let scale = config.head_scale.clamp(0.4, 1.0);
        // Every number is drawn whether it is used or not, so switching craniectomy or metal on or
        // off leaves the rest of the anatomy unchanged for the same seed.
        let scalp_mm = rng.random_range(4.0..6.5) * scale.sqrt();
        let thickness_mm = config.skull_thickness_mm * rng.random_range(0.9..1.1);
        let csf_mm = rng.random_range(1.5..3.0);
        let cortical_hu = rng.random_range(1400.0..1800.0);
        let diploe_hu = rng.random_range(550.0..800.0);
        let brain_hu = rng.random_range(28.0..40.0);

        let has_defect = rng.random::<f64>() < config.craniectomy_probability;
        // Defects sit on the vault: above the equator, anywhere around.
        let azimuth = rng.random_range(0.0..2.0 * PI);
        let elevation = rng.random_range(0.15..1.1f64);
        let direction = [elevation.cos() * azimuth.cos(), elevation.cos() * azimuth.sin(), elevation.sin()];
        let angle_rad = rng.random_range(0.30..0.55);
        let mean_radius = (semi_axes[0] + semi_axes[1] + semi_axes[2]) / 3.0;
        let craniectomy =
            has_defect.then_some(Craniectomy { direction, angle_rad, radius_mm: angle_rad * mean_radius });

        // A fixation screw in the outer table, low on the side of the head.
        let azimuth = rng.random_range(0.0..2.0 * PI);
        let streak_angles: Vec<f64> = (0..5).map(|_| rng.random_range(0.0..PI)).collect();
        let metal = config.metal.then(|| {
            let u = [0.9 * azimuth.cos(), 0.9 * azimuth.sin(), -0.2];
            let n = (u[0] * u[0] + u[1] * u[1] + u[2] * u[2]).sqrt();
            let u = [u[0] / n, u[1] / n, u[2] / n];
            let [a, b, c] = semi_axes;
            let r = 1.0 / ((u[0] / a).powi(2) + (u[1] / b).powi(2) + (u[2] / c).powi(2)).sqrt();
            let depth = scalp_mm + 2.0;
            let at = |k: usize| centre[k] + u[k] * (r - depth);
            Metal { centre: [at(0), at(1), at(2)], radius_mm: 2.5, streak_angles }
        });
        Vault {
            semi_axes,
            centre,
            shape_field,
            thickness_field,
            density_field,
            scalp_mm,
            thickness_mm,
            csf_mm,
            cortical_hu,
            diploe_hu,
            brain_hu,
            craniectomy,
            metal,
        }
    }

    /// Radius (mm) of the scalp surface along the unit direction `u` from the centre.
    fn scalp_radius(&self, u: [f64; 3]) -> f64 {
        let [a, b, c] = self.semi_axes;
        let ellipsoid = 1.0 / ((u[0] / a).powi(2) + (u[1] / b).powi(2) + (u[2] / c).powi(2)).sqrt();
        ellipsoid * (1.0 + 0.025 * self.shape_field.at(u))
    }

    /// Skull thickness (mm) along `u`: thinner at the temples (|u.x| large, near the equator).
    fn skull_thickness(&self, u: [f64; 3]) -> f64 {
        let temple = (u[0].abs().powi(4) * (1.0 - u[2].abs())).clamp(0.0, 1.0);
        let t = self.thickness_mm * (1.0 + 0.3 * self.thickness_field.at(u)) * (1.0 - 0.45 * temple);
        t.max(2.0)
    }

    /// Fraction (0..1) of bone removed by the craniectomy along `u`, with a one-voxel soft rim.
    fn defect_fraction(&self, u: [f64; 3], rim_rad: f64) -> f64 {
        match &self.craniectomy {
            None => 0.0,
            Some(c) => {
                let cos = u[0] * c.direction[0] + u[1] * c.direction[1] + u[2] * c.direction[2];
                let angle = cos.clamp(-1.0, 1.0).acos();
                ramp((c.angle_rad - angle) / rim_rad)
            }
        }
    }
}

/// What one voxel holds before blur and noise.
pub(crate) struct Sample {
    pub(crate) hu: f64,
    pub(crate) skull: bool,
    pub(crate) near_defect: bool,
}

impl Vault {
    pub(crate) fn sample(&self, u: [f64; 3], rho: f64, spacing: [f64; 3], cup: f64) -> Sample {
        // Extent of the voxel along the radial direction: the width of the partial-volume ramp.
        let width = 0.6 * (u[0].abs() * spacing[0] + u[1].abs() * spacing[1] + u[2].abs() * spacing[2]);
        let r_scalp = self.scalp_radius(u);
        let depth = r_scalp - rho;
        let thickness = self.skull_thickness(u);
        let table = (0.22 * thickness).clamp(0.8, 2.2);
        let skull_top = self.scalp_mm;
        let skull_bottom = skull_top + thickness;
        let rim_rad = width / r_scalp.max(1.0);
        let removed = self.defect_fraction(u, rim_rad);

        // Bone is denser where thick; thin temporal bone reads lower.
        let density = (0.72 + 0.28 * (thickness / self.thickness_mm).min(1.0))
            * (1.0 + 0.06 * self.density_field.at(u));
        let cortical = self.cortical_hu * density;
        let diploe = self.diploe_hu * density;
        let soft = 40.0;
        let csf = 8.0;

        let inside = |boundary: f64| ramp((depth - boundary) / width);
        let f_head = inside(0.0);
        let f_outer = inside(skull_top);
        let f_diploe = inside(skull_top + table);
        let f_inner = inside(skull_bottom - table);
        let f_csf = inside(skull_bottom);
        let f_brain = inside(skull_bottom + self.csf_mm);
        let bone = 1.0 - removed;
        // Layered composition: each term is the step from the layer outside to the layer inside.
        let air = f64::from(AIR_HU);
        let mut hu = air + f_head * (soft - air);
        hu += f_outer * (bone * cortical + removed * soft - soft);
        hu += f_diploe * bone * (diploe - cortical);
        hu += f_inner * bone * (cortical - diploe);
        hu += f_csf * (csf - (bone * cortical + removed * soft));
        hu += f_brain * (self.brain_hu - csf);
        // Beam hardening: the centre of the head reads low, falling off quadratically.
        let q = (rho / r_scalp).min(1.0);
        hu -= f_head * cup * (1.0 - q * q);

        let skull = depth >= skull_top && depth < skull_bottom && removed < 0.5;
        let near_defect = match &self.craniectomy {
            Some(c) => {
                let cos = u[0] * c.direction[0] + u[1] * c.direction[1] + u[2] * c.direction[2];
                let angle = cos.clamp(-1.0, 1.0).acos();
                let margin = 10.0 / r_scalp.max(1.0);
                angle < c.angle_rad + margin && depth > skull_top - 10.0 && depth < skull_bottom + 10.0
            }
            None => false,
        };
        Sample { hu, skull, near_defect }
    }
}

/// Burns a metal screw into the CT and adds streaks (bright and dark bands through it) in the
/// axial slices it crosses.
pub(crate) fn add_metal(ct: &mut Array3<f32>, geometry: &Geometry, metal: &Metal, anatomy: &Vault) {
    let spacing = geometry.spacing();
    let origin = geometry.origin();
    let metal_hu = 3000.0;
    let reach_z = 4.0 * metal.radius_mm;
    ct.axis_iter_mut(Axis(0)).into_par_iter().enumerate().for_each(|(z, mut slice)| {
        let wz = origin[2] + z as f64 * spacing[2];
        let dz = wz - metal.centre[2];
        if dz.abs() > reach_z {
            return;
        }
        let (ny, nx) = slice.dim();
        let strength = (1.0 - dz.abs() / reach_z).max(0.0);
        for y in 0..ny {
            for x in 0..nx {
                let dx = origin[0] + x as f64 * spacing[0] - metal.centre[0];
                let dy = origin[1] + y as f64 * spacing[1] - metal.centre[1];
                let r = (dx * dx + dy * dy + dz * dz).sqrt();
                let mut add = 0.0;
                if r < metal.radius_mm {
                    add += metal_hu;
                }
                let rp = (dx * dx + dy * dy).sqrt();
                // Streaks fade with distance from the metal and only cover the head.
                let px = [dx + metal.centre[0] - anatomy.centre[0], dy + metal.centre[1] - anatomy.centre[1]];
                let in_head =
                    (px[0] / anatomy.semi_axes[0]).powi(2) + (px[1] / anatomy.semi_axes[1]).powi(2) < 1.0;
                if in_head && rp > metal.radius_mm {
                    for (i, theta) in metal.streak_angles.iter().enumerate() {
                        let dist = (dx * theta.sin() - dy * theta.cos()).abs();
                        let sign = if i % 2 == 0 { 1.0 } else { -1.0 };
                        add += sign * 500.0 * strength * (-dist * dist / 2.0).exp() * (-rp / 60.0).exp();
                    }
                }
                slice[[y, x]] += add as f32;
            }
        }
    });
}
