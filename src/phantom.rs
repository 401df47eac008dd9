//! Synthetic head CT phantoms with exact ground truth, deterministic from a seed.
//!
//! A phantom is a head built from nested, smoothly perturbed ellipsoidal shells: scalp, a skull of
//! outer table, lower-density diploë and inner table (thickness varying over the head, thinnest at the
//! temples), a thin CSF layer and brain, in air. Some phantoms get a craniectomy (a disc of skull
//! removed at a random position, with a random size). The CT is then made realistic in the ways that
//! make real skull segmentation hard: partial-volume averaging at every interface, a Gaussian
//! point-spread blur, beam-hardening cupping, optional metal with streak artefacts, and Gaussian noise
//! at a chosen level, on an anisotropic voxel grid.
//!
//! The ground truth is exact: a voxel is skull when its centre lies inside the bone shell (and not in
//! the craniectomy), and the region "near the defect" (within 10 mm of the removed bone) is given as a
//! mask, as the study evaluated it. Everything is in LPS millimetres on a `[z, y, x]` grid with the
//! identity direction.
//!
//! ```
//! use msd::phantom::{PhantomConfig, generate};
//!
//! let config = PhantomConfig::quick();
//! let head = generate(&config, 7)?;
//! assert_eq!(head.ct.shape(), head.skull.shape());
//! assert!(head.skull.data().iter().any(|&v| v == 1));
//! Ok::<(), Box<dyn std::error::Error>>(())
//! ```
use std::f64::consts::PI;

use msd_io::{Geometry, LabelVolume, Volume};
use ndarray::{Array3, Axis};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};
use rayon::prelude::*;

use crate::{Error, Result};

/// Hounsfield units of air.
pub const AIR_HU: f32 = -1000.0;
/// Label value of skull voxels in the ground truth (background is 0).
pub const SKULL_LABEL: u8 = 1;

/// How a phantom is made: grid, anatomy scale and CT imperfections.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PhantomConfig {
    /// Grid shape `[z, y, x]` in voxels.
    pub shape: [usize; 3],
    /// Voxel spacing `(x, y, z)` in mm.
    pub spacing: [f64; 3],
    /// Scale of the head relative to an adult (1.0: about 150 × 190 × 170 mm, L–R × A–P × S–I).
    pub head_scale: f64,
    /// Mean skull thickness in mm (tables plus diploë); varies by about ±35 % over the head.
    pub skull_thickness_mm: f64,
    /// Standard deviation of the Gaussian noise in HU.
    pub noise_hu: f64,
    /// Standard deviation of the Gaussian point-spread function in mm (in every direction).
    pub blur_mm: f64,
    /// Depth of the beam-hardening cup in HU (the centre of the head reads this much too low).
    pub cupping_hu: f64,
    /// Probability that a phantom has a craniectomy.
    pub craniectomy_probability: f64,
    /// Whether to add a metal object (a fixation screw) with streak artefacts.
    pub metal: bool,
}

impl Default for PhantomConfig {
    fn default() -> Self {
        Self::standard()
    }
}

impl PhantomConfig {
    /// A clinical-looking adult head: 1.0 × 1.0 mm pixels, 2.5 mm slices, 176 × 216 × 80 voxels.
    pub fn standard() -> Self {
        PhantomConfig {
            shape: [80, 216, 176],
            spacing: [1.0, 1.0, 2.5],
            head_scale: 1.0,
            skull_thickness_mm: 7.0,
            noise_hu: 30.0,
            blur_mm: 0.6,
            cupping_hu: 40.0,
            craniectomy_probability: 0.5,
            metal: false,
        }
    }

    /// A small, fast phantom for tests and the quick demo: a 0.45-scale head with an adult skull
    /// thickness, 1.25 × 1.25 mm pixels, 2 mm slices, 72 × 88 × 48 voxels.
    pub fn quick() -> Self {
        PhantomConfig {
            shape: [48, 88, 72],
            spacing: [1.25, 1.25, 2.0],
            head_scale: 0.45,
            skull_thickness_mm: 7.0,
            noise_hu: 30.0,
            blur_mm: 0.6,
            cupping_hu: 30.0,
            craniectomy_probability: 0.5,
            metal: false,
        }
    }

    /// Returns the config with another noise level (HU standard deviation).
    pub fn with_noise(mut self, noise_hu: f64) -> Self {
        self.noise_hu = noise_hu;
        self
    }

    /// Returns the config with metal (and its streaks) switched on or off.
    pub fn with_metal(mut self, metal: bool) -> Self {
        self.metal = metal;
        self
    }

    /// Returns the config with another craniectomy probability.
    pub fn with_craniectomy_probability(mut self, probability: f64) -> Self {
        self.craniectomy_probability = probability;
        self
    }

    /// Field of view `(x, y, z)` in mm (voxel centres span `(n - 1)·spacing`).
    pub fn field_of_view_mm(&self) -> [f64; 3] {
        let [z, y, x] = self.shape;
        [x as f64 * self.spacing[0], y as f64 * self.spacing[1], z as f64 * self.spacing[2]]
    }

    /// Checks that the numbers make a phantom: positive finite sizes and a head that fits the field of
    /// view. The error says which field is wrong.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: String| Err(Error::InvalidConfig { what });
        if self.shape.iter().any(|&n| n < 4) || self.shape.iter().product::<usize>() > 1 << 30 {
            return bad(format!(
                "phantom shape {:?} (z, y, x): each side must be 4..=1024 voxels",
                self.shape
            ));
        }
        if self.spacing.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
            return bad(format!("phantom spacing {:?} mm must be finite and positive", self.spacing));
        }
        let checks = [
            ("head_scale", self.head_scale, 0.1, 3.0),
            ("skull_thickness_mm", self.skull_thickness_mm, 1.0, 20.0),
            ("noise_hu", self.noise_hu, 0.0, 2000.0),
            ("blur_mm", self.blur_mm, 0.0, 10.0),
            ("cupping_hu", self.cupping_hu, 0.0, 500.0),
            ("craniectomy_probability", self.craniectomy_probability, 0.0, 1.0),
        ];
        for (name, value, lo, hi) in checks {
            if !(value.is_finite() && (lo..=hi).contains(&value)) {
                return bad(format!("phantom {name} = {value} must lie in [{lo}, {hi}]"));
            }
        }
        let fov = self.field_of_view_mm();
        let head = head_semi_axes(self.head_scale, 1.0);
        for k in 0..3 {
            // The head may be up to 6 % larger than nominal, and sits up to 4 mm off centre.
            let need = 2.0 * (head[k] * 1.06 + 4.0) + 2.0 * self.spacing[k];
            if fov[k] < need {
                return bad(format!(
                    "a head of scale {} needs a field of view of at least {need:.0} mm along {}; \
                     shape × spacing gives {:.0} mm",
                    self.head_scale,
                    ["x", "y", "z"][k],
                    fov[k]
                ));
            }
        }
        Ok(())
    }
}

/// A craniectomy: a disc of skull removed around a direction from the head centre.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Craniectomy {
    /// Unit direction (LPS) from the head centre to the centre of the defect.
    pub direction: [f64; 3],
    /// Angular radius of the defect in radians.
    pub angle_rad: f64,
    /// Approximate radius of the defect on the skull surface in mm.
    pub radius_mm: f64,
}

/// A generated phantom: the CT, its exact skull label, and what was drawn.
#[derive(Debug, Clone)]
pub struct Phantom {
    /// The CT in Hounsfield units.
    pub ct: Volume<f32>,
    /// Ground truth: [`SKULL_LABEL`] where the voxel centre is in bone, 0 elsewhere.
    pub skull: LabelVolume,
    /// The craniectomy, when this phantom has one.
    pub craniectomy: Option<Craniectomy>,
    /// Mask (1) of the region within 10 mm of the removed bone, when there is a craniectomy.
    pub defect_region: Option<LabelVolume>,
    /// LPS position (mm) of the head centre.
    pub head_centre: [f64; 3],
    /// The noise level the CT was made with (HU standard deviation).
    pub noise_hu: f64,
}

impl Phantom {
    /// The ground-truth skull surface (LPS mm): the watertight marching-cubes surface of
    /// [`Phantom::skull`], so voxelising it on the CT's grid gives the label back.
    pub fn skull_mesh(&self) -> Result<msd_geom::Mesh> {
        Ok(msd_geom::label_surface(&self.skull, SKULL_LABEL)?)
    }
}

/// Semi-axes (x: L–R, y: A–P, z: S–I) in mm of the scalp surface of a head.
fn head_semi_axes(scale: f64, jitter: f64) -> [f64; 3] {
    [75.0 * scale * jitter, 95.0 * scale * jitter, 85.0 * scale * jitter]
}

/// A smooth random function on the unit sphere: a few low-frequency plane waves.
#[derive(Debug, Clone)]
struct SphereField {
    waves: Vec<([f64; 3], f64, f64)>,
}

impl SphereField {
    fn new(rng: &mut StdRng, count: usize, max_frequency: f64) -> Self {
        let waves = (0..count)
            .map(|_| {
                let k = random_unit(rng);
                let f = rng.random_range(0.8..max_frequency);
                let phase = rng.random_range(0.0..2.0 * PI);
                let amplitude = 1.0 / (count as f64).sqrt();
                ([k[0] * f, k[1] * f, k[2] * f], phase, amplitude)
            })
            .collect();
        SphereField { waves }
    }

    /// Roughly in [-1.5, 1.5], mean 0, smooth in `u`.
    fn at(&self, u: [f64; 3]) -> f64 {
        self.waves
            .iter()
            .map(|(k, phase, a)| a * (k[0] * u[0] + k[1] * u[1] + k[2] * u[2] + phase).cos())
            .sum()
    }
}

fn random_unit(rng: &mut StdRng) -> [f64; 3] {
    let normal = Normal::new(0.0, 1.0).expect("unit normal is valid");
    loop {
        let v: [f64; 3] = [normal.sample(rng), normal.sample(rng), normal.sample(rng)];
        let n = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
        if n > 1e-6 {
            return [v[0] / n, v[1] / n, v[2] / n];
        }
    }
}

/// The anatomy of one phantom, drawn from the seed.
struct Anatomy {
    semi_axes: [f64; 3],
    centre: [f64; 3],
    shape_field: SphereField,
    thickness_field: SphereField,
    density_field: SphereField,
    scalp_mm: f64,
    thickness_mm: f64,
    csf_mm: f64,
    cortical_hu: f64,
    diploe_hu: f64,
    brain_hu: f64,
    craniectomy: Option<Craniectomy>,
    metal: Option<Metal>,
}

struct Metal {
    centre: [f64; 3],
    radius_mm: f64,
    streak_angles: Vec<f64>,
}

impl Anatomy {
    fn draw(config: &PhantomConfig, rng: &mut StdRng) -> Self {
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
        Anatomy {
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

/// A linear ramp from 0 at `t = -0.5` to 1 at `t = 0.5`: the fraction of a voxel past an interface.
fn ramp(t: f64) -> f64 {
    (t + 0.5).clamp(0.0, 1.0)
}

/// Generates the phantom for `seed`. The same config and seed always give the same phantom.
pub fn generate(config: &PhantomConfig, seed: u64) -> Result<Phantom> {
    config.validate()?;
    let mut rng = StdRng::seed_from_u64(seed ^ 0x6d73_645f_7068_616e);
    let anatomy = Anatomy::draw(config, &mut rng);
    let [nz, ny, nx] = config.shape;
    let spacing = config.spacing;
    let origin = [
        -0.5 * (nx as f64 - 1.0) * spacing[0],
        -0.5 * (ny as f64 - 1.0) * spacing[1],
        -0.5 * (nz as f64 - 1.0) * spacing[2],
    ];
    let geometry = Geometry::new(spacing, origin, Geometry::IDENTITY)?;

    let mut ct = Array3::<f32>::zeros((nz, ny, nx));
    let mut skull = Array3::<u8>::zeros((nz, ny, nx));
    let mut region = Array3::<u8>::zeros((nz, ny, nx));
    let a = &anatomy;
    let cup = config.cupping_hu;
    ct.axis_iter_mut(Axis(0))
        .into_par_iter()
        .zip(skull.axis_iter_mut(Axis(0)))
        .zip(region.axis_iter_mut(Axis(0)))
        .enumerate()
        .for_each(|(z, ((mut ct_slice, mut skull_slice), mut region_slice))| {
            for y in 0..ny {
                for x in 0..nx {
                    let p = [
                        origin[0] + x as f64 * spacing[0] - a.centre[0],
                        origin[1] + y as f64 * spacing[1] - a.centre[1],
                        origin[2] + z as f64 * spacing[2] - a.centre[2],
                    ];
                    let rho = (p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt().max(1e-9);
                    let u = [p[0] / rho, p[1] / rho, p[2] / rho];
                    let sample = a.sample(u, rho, spacing, cup);
                    ct_slice[[y, x]] = sample.hu as f32;
                    skull_slice[[y, x]] = if sample.skull { SKULL_LABEL } else { 0 };
                    region_slice[[y, x]] = u8::from(sample.near_defect);
                }
            }
        });

    if let Some(metal) = &anatomy.metal {
        add_metal(&mut ct, &geometry, metal, &anatomy);
    }
    blur(&mut ct, spacing, config.blur_mm);
    add_noise(&mut ct, config.noise_hu, seed);

    let ct = Volume::new(ct, geometry)?;
    let skull = Volume::new(skull, geometry)?;
    let defect_region = match anatomy.craniectomy {
        Some(_) => Some(Volume::new(region, geometry)?),
        None => None,
    };
    Ok(Phantom {
        ct,
        skull,
        craniectomy: anatomy.craniectomy,
        defect_region,
        head_centre: anatomy.centre,
        noise_hu: config.noise_hu,
    })
}

/// What one voxel holds before blur and noise.
struct Sample {
    hu: f64,
    skull: bool,
    near_defect: bool,
}

impl Anatomy {
    fn sample(&self, u: [f64; 3], rho: f64, spacing: [f64; 3], cup: f64) -> Sample {
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
fn add_metal(ct: &mut Array3<f32>, geometry: &Geometry, metal: &Metal, anatomy: &Anatomy) {
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

/// Separable Gaussian blur with standard deviation `sigma_mm`, mirrored at the borders.
fn blur(ct: &mut Array3<f32>, spacing: [f64; 3], sigma_mm: f64) {
    for (axis, s) in [(2usize, spacing[0]), (1, spacing[1]), (0, spacing[2])] {
        let sigma = sigma_mm / s;
        if sigma < 0.2 {
            continue;
        }
        let radius = (3.0 * sigma).ceil() as isize;
        let mut kernel: Vec<f32> =
            (-radius..=radius).map(|i| (-(i as f64).powi(2) / (2.0 * sigma * sigma)).exp() as f32).collect();
        let sum: f32 = kernel.iter().sum();
        kernel.iter_mut().for_each(|k| *k /= sum);
        let n = ct.len_of(Axis(axis));
        let mut lanes: Vec<_> = ct.lanes_mut(Axis(axis)).into_iter().collect();
        lanes.par_iter_mut().for_each_init(
            || vec![0.0f32; n],
            |line, lane| {
                for (i, v) in lane.iter().enumerate() {
                    line[i] = *v;
                }
                for i in 0..n {
                    let mut acc = 0.0;
                    for (k, w) in kernel.iter().enumerate() {
                        let j = mirror(i as isize + k as isize - radius, n);
                        acc += w * line[j];
                    }
                    lane[i] = acc;
                }
            },
        );
    }
}

/// Index reflected into `0..n` with the edge sample repeated (numpy `symmetric`).
fn mirror(i: isize, n: usize) -> usize {
    let n = n as isize;
    let period = 2 * n;
    let m = i.rem_euclid(period);
    (if m < n { m } else { period - 1 - m }) as usize
}

/// Adds Gaussian noise, one random stream per slice so the result does not depend on threads.
fn add_noise(ct: &mut Array3<f32>, sigma: f64, seed: u64) {
    if sigma <= 0.0 {
        return;
    }
    let normal = Normal::new(0.0, sigma).expect("sigma was validated finite and non-negative");
    ct.axis_iter_mut(Axis(0)).into_par_iter().enumerate().for_each(|(z, mut slice)| {
        let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (z as u64 + 1));
        slice.iter_mut().for_each(|v| *v = (*v + normal.sample(&mut rng) as f32).clamp(-1024.0, 3071.0));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(v: &LabelVolume) -> usize {
        v.data().iter().filter(|&&l| l != 0).count()
    }

    #[test]
    fn same_seed_same_phantom_other_seed_other_phantom() {
        let c = PhantomConfig::quick();
        let a = generate(&c, 3).unwrap();
        let b = generate(&c, 3).unwrap();
        let other = generate(&c, 4).unwrap();
        assert_eq!(a.ct, b.ct);
        assert_eq!(a.skull, b.skull);
        assert_ne!(a.ct, other.ct);
    }

    #[test]
    fn tissues_have_their_hounsfield_units() {
        let c = PhantomConfig::quick().with_noise(0.0).with_craniectomy_probability(0.0);
        let p = generate(&c, 1).unwrap();
        let [nz, ny, nx] = p.ct.shape();
        // Corner: air. Centre: brain (slightly cupped).
        assert!((p.ct.data()[[0, 0, 0]] - AIR_HU).abs() < 1.0);
        let centre = p.ct.geometry().world_to_index(p.head_centre);
        let (cx, cy, cz) =
            (centre[0].round() as usize, centre[1].round() as usize, centre[2].round() as usize);
        assert!(cx < nx && cy < ny && cz < nz);
        let brain = p.ct.data()[[cz, cy, cx]];
        assert!((-20.0..60.0).contains(&brain), "brain {brain} HU");
        // Bone voxels are bright, on average well above the 300 HU threshold.
        let (sum, n) =
            p.ct.data()
                .iter()
                .zip(p.skull.data())
                .filter(|&(_, &l)| l == SKULL_LABEL)
                .fold((0.0f64, 0usize), |(s, n), (&v, _)| (s + v as f64, n + 1));
        assert!(n > 1000);
        let mean = sum / n as f64;
        assert!((500.0..1800.0).contains(&mean), "mean bone {mean} HU");
    }

    #[test]
    fn skull_volume_is_a_plausible_shell() {
        let c = PhantomConfig::quick().with_craniectomy_probability(0.0);
        let p = generate(&c, 11).unwrap();
        let bone_mm3 = count(&p.skull) as f64 * p.skull.geometry().voxel_volume_mm3();
        // A shell of area 4π r² (r ≈ 0.45 · 85 mm) and thickness ≈ 7 mm, thinner at the temples.
        let r = 0.45 * 85.0;
        let shell = 4.0 * PI * r * r * 7.0;
        assert!(bone_mm3 > 0.5 * shell && bone_mm3 < 1.5 * shell, "{bone_mm3} mm³ vs {shell}");
        assert!(p.defect_region.is_none() && p.craniectomy.is_none());
        let mesh = p.skull_mesh().unwrap();
        assert!(mesh.check().is_watertight());
        // Outer minus inner enclosed volume is the bone volume.
        assert!(
            (mesh.enclosed_volume() - bone_mm3).abs() < 0.1 * bone_mm3,
            "{} vs {bone_mm3}",
            mesh.enclosed_volume()
        );
    }

    #[test]
    fn craniectomy_removes_bone_inside_its_region() {
        let c = PhantomConfig::quick().with_craniectomy_probability(1.0);
        let with = generate(&c, 5).unwrap();
        let without = generate(&c.clone().with_craniectomy_probability(0.0), 5).unwrap();
        let region = with.defect_region.as_ref().expect("craniectomy has a region");
        assert!(count(region) > 0);
        assert!(count(&with.skull) < count(&without.skull));
        let removed = without
            .skull
            .data()
            .iter()
            .zip(with.skull.data())
            .zip(region.data())
            .filter(|&((&a, &b), _)| a != b)
            .map(|(_, &r)| r)
            .collect::<Vec<_>>();
        assert!(!removed.is_empty());
        // Every removed voxel lies in the region near the defect.
        assert!(removed.iter().all(|&r| r == 1));
    }

    #[test]
    fn noise_has_the_requested_level() {
        let base = PhantomConfig::quick().with_noise(0.0);
        let a = generate(&base, 9).unwrap();
        let b = generate(&base.clone().with_noise(50.0), 9).unwrap();
        let diffs: Vec<f64> =
            a.ct.data()
                .iter()
                .zip(b.ct.data())
                .filter(|(x, _)| **x > -900.0 && **x < 1500.0)
                .map(|(x, y)| (*y - *x) as f64)
                .collect();
        let mean = diffs.iter().sum::<f64>() / diffs.len() as f64;
        let sd = (diffs.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / diffs.len() as f64).sqrt();
        assert!((sd - 50.0).abs() < 2.0, "noise sd {sd}");
    }

    #[test]
    fn metal_makes_streaks_and_bright_voxels() {
        let c = PhantomConfig::quick().with_metal(true).with_noise(0.0);
        let p = generate(&c, 2).unwrap();
        let q = generate(&c.clone().with_metal(false), 2).unwrap();
        let max = p.ct.data().iter().fold(f32::MIN, |m, &v| m.max(v));
        assert!(max > 2000.0, "metal max {max}");
        let changed = p.ct.data().iter().zip(q.ct.data()).filter(|(a, b)| (**a - **b).abs() > 50.0).count();
        assert!(changed > 50, "{changed} voxels changed by metal");
        // Metal is not bone.
        assert_eq!(p.skull, q.skull);
    }

    #[test]
    fn a_head_too_big_for_the_field_of_view_is_refused() {
        let mut c = PhantomConfig::quick();
        c.head_scale = 1.0;
        let err = generate(&c, 0).unwrap_err().to_string();
        assert!(err.contains("field of view"), "{err}");
        let mut c = PhantomConfig::quick();
        c.spacing[1] = f64::NAN;
        assert!(generate(&c, 0).is_err());
    }

    #[test]
    fn mirror_is_symmetric_padding() {
        let got: Vec<usize> = (-3..7).map(|i| mirror(i, 4)).collect();
        assert_eq!(got, vec![2, 1, 0, 0, 1, 2, 3, 3, 2, 1]);
    }
}
