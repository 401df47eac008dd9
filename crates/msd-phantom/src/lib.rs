//! Synthetic head CTs with exact skull ground truth, deterministic from a seed.
//!
//! A network that segments the skull of real head CTs, from any scanner, has to learn what is not
//! skull as much as what is: the table and the head holder under the head, teeth and metal, the
//! air in the sinuses, the thin bone of the temples and orbits. This crate makes training and test
//! CTs of whole heads with all of that, and with the skull label known exactly.
//!
//! Two anatomies ([`Anatomy`]):
//!
//! * [`Anatomy::Head`]: a whole adult head, vertex to below the mandible. The cranial vault has an
//!   outer table, diploë and an inner table, and varies in thickness over the head (1–2 mm in the
//!   temporal squama, thickest at the occiput and the glabella), with coronal, sagittal and lambdoid
//!   sutures as thin low-density gaps. The skull base has anterior, middle and posterior cranial
//!   fossae at their depths, the sella, petrous ridges and the foramen magnum. The face has orbits
//!   (thin walls, fat and eye globes inside, open to the front), the nasal cavity and septum, maxilla
//!   with the hard palate, zygomatic arches, and a mandible with upper and lower teeth (dentine roots,
//!   enamel crowns about 2800 HU; a few teeth missing). Air sinuses sit inside bone: frontal,
//!   maxillary, sphenoid, and mastoid air cells; the ear canals and the airway hold air too. C1 (ring
//!   and lateral masses), C2 (dens, body, arch) and C3 sit under the foramen magnum. Soft tissue covers
//!   it all (scalp, face, nose, ears, neck). The head lies, slightly tilted, on a foam pad in a
//!   plastic head holder on a curved carbon-fibre table ([`PhantomConfig::table`]). Metal: amalgam
//!   fillings in molars ([`PhantomConfig::dental_filling_probability`]) and a titanium fixation
//!   plate with screws on the vault ([`PhantomConfig::metal`]), with streaks.
//! * [`Anatomy::Vault`]: the cranial vault alone (scalp, tables and diploë, CSF, brain in air), small
//!   and fast, for the quick demo and tests.
//!
//! Some phantoms get a craniectomy: a disc of the vault removed at a random position and size. The
//! CT is made realistic in the ways that make skull segmentation hard: partial-volume averaging at
//! every interface, a Gaussian point-spread blur, beam-hardening cupping, metal streaks, and Gaussian
//! noise at a chosen level ([`PhantomConfig::noise_hu`]; 0 gives a noise-free CT, so a caller can
//! define labels on the clean image and add noise itself), on any voxel grid
//! ([`PhantomConfig::clinical`], [`PhantomConfig::with_spacing`]).
//!
//! The ground truth is exact: a voxel is skull when its centre lies in bone: cranium, skull base,
//! face, mandible, teeth, vertebrae (sutures included, as annotators label them), and not in the
//! craniectomy, the table, the holder or metal. The region "near the defect" (within 10 mm of the
//! removed bone) is given as a mask, as the study evaluated it. Everything is in LPS millimetres on a
//! `[z, y, x]` grid with the identity direction.
//!
//! ```
//! use msd_phantom::{PhantomConfig, SKULL_LABEL, generate};
//!
//! // A whole head at 3 mm voxels (small enough for a doctest); clinical grids work the same.
//! let config = PhantomConfig::clinical(3.0, 3.0)?.with_noise(20.0);
//! let head = generate(&config, 7)?;
//! assert_eq!(head.ct.shape(), head.skull.shape());
//! assert!(head.skull.data().iter().any(|&v| v == SKULL_LABEL));
//! let landmarks = head.landmarks.as_ref().expect("a whole head has landmarks");
//! assert!(landmarks.table_top_y.is_some());
//! Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

use std::f64::consts::PI;

use msd_io::{Geometry, LabelVolume, Volume};
use ndarray::{Array3, Axis};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};
use rayon::prelude::*;

mod error;
mod head;
mod imaging;
mod shapes;
mod vault;

pub use error::{Error, Result};

/// Hounsfield units of air.
pub const AIR_HU: f32 = -1000.0;
/// Label value of skull voxels in the ground truth (background is 0).
pub const SKULL_LABEL: u8 = 1;
/// The most voxels a phantom may have (about 1.6 GB of CT and labels): more is refused, not allocated.
pub const MAX_VOXELS: usize = 1 << 28;

/// Which anatomy a phantom has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Anatomy {
    /// The cranial vault alone: nested shells in air (see the crate docs).
    Vault,
    /// A whole head with skull base, face, teeth, sinuses, upper spine, table and holder.
    Head,
}

/// How a phantom is made: grid, anatomy and CT imperfections.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PhantomConfig {
    /// Grid shape `[z, y, x]` in voxels.
    pub shape: [usize; 3],
    /// Voxel spacing `(x, y, z)` in mm.
    pub spacing: [f64; 3],
    /// Which anatomy.
    pub anatomy: Anatomy,
    /// Scale of the head relative to an adult (1.0: about 155 × 195 × 160 mm scalp, L–R × A–P × S–I,
    /// for the vault).
    pub head_scale: f64,
    /// Mean skull thickness in mm (tables plus diploë); varies over the head.
    pub skull_thickness_mm: f64,
    /// Standard deviation of the Gaussian noise in HU; 0 adds no noise at all.
    pub noise_hu: f64,
    /// Standard deviation of the Gaussian point-spread function in mm (in every direction).
    pub blur_mm: f64,
    /// Depth of the beam-hardening cup in HU (the centre of the head reads this much too low).
    pub cupping_hu: f64,
    /// Probability that a phantom has a craniectomy.
    pub craniectomy_probability: f64,
    /// Whether to add fixation metal (a screw in the vault; for a whole head a plate with two
    /// screws) with streak artefacts.
    pub metal: bool,
    /// Probability that a whole head has amalgam fillings (one to four, in molars), with streaks.
    pub dental_filling_probability: f64,
    /// Whether a whole head lies on a table and in a head holder.
    pub table: bool,
}

impl Default for PhantomConfig {
    fn default() -> Self {
        Self::standard()
    }
}

/// The field of view of [`PhantomConfig::clinical`], `(x, y, z)` in mm: a whole adult head from the
/// vertex to below the mandible, with the table under it.
pub const CLINICAL_FOV_MM: [f64; 3] = [250.0, 250.0, 236.0];

impl PhantomConfig {
    /// A whole head at 1.0 × 1.0 mm pixels and 2.5 mm slices: [`PhantomConfig::clinical`]`(1.0, 2.5)`.
    pub fn standard() -> Self {
        Self::clinical(1.0, 2.5).expect("1.0 mm × 2.5 mm is a valid clinical grid")
    }

    /// A whole adult head (vertex to below the mandible, [`CLINICAL_FOV_MM`]) at `pixel_mm` in-plane
    /// and `slice_mm` between slices, with a table and holder, 30 HU noise, fillings in half the
    /// heads and craniectomies in half. Pixels of 0.1–5 mm and slices of 0.1–10 mm are accepted (if
    /// the grid stays under [`MAX_VOXELS`]); others are an [`Error::InvalidConfig`].
    pub fn clinical(pixel_mm: f64, slice_mm: f64) -> Result<Self> {
        for (name, value, lo, hi) in
            [("pixel size", pixel_mm, 0.1, 5.0), ("slice spacing", slice_mm, 0.1, 10.0)]
        {
            if !(value.is_finite() && (lo..=hi).contains(&value)) {
                return Err(Error::InvalidConfig {
                    what: format!("clinical phantom {name} {value} mm must lie in [{lo}, {hi}] mm"),
                });
            }
        }
        let config = PhantomConfig {
            shape: [1, 1, 1],
            spacing: [1.0; 3],
            anatomy: Anatomy::Head,
            head_scale: 1.0,
            skull_thickness_mm: 6.5,
            noise_hu: 30.0,
            blur_mm: 0.6,
            cupping_hu: 40.0,
            craniectomy_probability: 0.5,
            metal: false,
            dental_filling_probability: 0.5,
            table: true,
        };
        config.with_field_of_view(CLINICAL_FOV_MM, [pixel_mm, pixel_mm, slice_mm])
    }

    /// A small, fast phantom for tests and the quick demo: the cranial vault alone
    /// ([`Anatomy::Vault`]) of a 0.45-scale head with an adult skull thickness, 1.25 × 1.25 mm
    /// pixels, 2 mm slices, 72 × 88 × 48 voxels.
    pub fn quick() -> Self {
        PhantomConfig {
            shape: [48, 88, 72],
            spacing: [1.25, 1.25, 2.0],
            anatomy: Anatomy::Vault,
            head_scale: 0.45,
            skull_thickness_mm: 7.0,
            noise_hu: 30.0,
            blur_mm: 0.6,
            cupping_hu: 30.0,
            craniectomy_probability: 0.5,
            metal: false,
            dental_filling_probability: 0.0,
            table: false,
        }
    }

    /// Returns the config with another noise level (HU standard deviation; 0: no noise).
    pub fn with_noise(mut self, noise_hu: f64) -> Self {
        self.noise_hu = noise_hu;
        self
    }

    /// Returns the config with fixation metal (and its streaks) switched on or off.
    pub fn with_metal(mut self, metal: bool) -> Self {
        self.metal = metal;
        self
    }

    /// Returns the config with another craniectomy probability.
    pub fn with_craniectomy_probability(mut self, probability: f64) -> Self {
        self.craniectomy_probability = probability;
        self
    }

    /// Returns the config with another spacing `(x, y, z)` in mm and the same field of view (the
    /// shape is recomputed). A spacing that is not finite and positive, or a grid over
    /// [`MAX_VOXELS`], is an [`Error::InvalidConfig`].
    pub fn with_spacing(self, spacing: [f64; 3]) -> Result<Self> {
        let fov = self.field_of_view_mm();
        self.with_field_of_view(fov, spacing)
    }

    /// Returns the config with the grid that covers `fov_mm` `(x, y, z)` at `spacing` `(x, y, z)`.
    pub fn with_field_of_view(mut self, fov_mm: [f64; 3], spacing: [f64; 3]) -> Result<Self> {
        let mut shape = [0usize; 3];
        for k in 0..3 {
            let n = fov_mm[k] / spacing[k];
            if !(spacing[k].is_finite() && spacing[k] > 0.0 && n.is_finite() && (1.0..=65536.0).contains(&n))
            {
                return Err(Error::InvalidConfig {
                    what: format!(
                        "a field of view of {:?} mm at spacing {spacing:?} mm (x, y, z) is not a grid of 1..=65536 voxels a side",
                        fov_mm
                    ),
                });
            }
            shape[2 - k] = n.round().max(4.0) as usize;
        }
        self.shape = shape;
        self.spacing = spacing;
        self.validate()?;
        Ok(self)
    }

    /// Field of view `(x, y, z)` in mm (voxel centres span `(n - 1)·spacing`).
    pub fn field_of_view_mm(&self) -> [f64; 3] {
        let [z, y, x] = self.shape;
        [x as f64 * self.spacing[0], y as f64 * self.spacing[1], z as f64 * self.spacing[2]]
    }

    /// Checks that the numbers make a phantom: positive finite sizes, at most [`MAX_VOXELS`] voxels,
    /// and a head that fits the field of view. The error says which field is wrong.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: String| Err(Error::InvalidConfig { what });
        let voxels = self.shape.iter().try_fold(1usize, |acc, &n| acc.checked_mul(n));
        if self.shape.iter().any(|&n| n < 4) || voxels.is_none_or(|v| v > MAX_VOXELS) {
            return bad(format!(
                "phantom shape {:?} (z, y, x): each side must be at least 4 voxels and the grid at most {MAX_VOXELS} voxels",
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
            ("dental_filling_probability", self.dental_filling_probability, 0.0, 1.0),
        ];
        for (name, value, lo, hi) in checks {
            if !(value.is_finite() && (lo..=hi).contains(&value)) {
                return bad(format!("phantom {name} = {value} must lie in [{lo}, {hi}]"));
            }
        }
        let fov = self.field_of_view_mm();
        let need = match self.anatomy {
            Anatomy::Vault => {
                let head = vault::head_semi_axes(self.head_scale, 1.0);
                // The head may be up to 6 % larger than nominal, and sits up to 4 mm off centre.
                [0, 1, 2].map(|k| 2.0 * (head[k] * 1.06 + 4.0) + 2.0 * self.spacing[k])
            }
            // Sides and face inside, vault and skull base inside (the neck may be cut, as in real scans).
            Anatomy::Head => {
                [0, 1, 2].map(|k| [175.0, 225.0, 190.0][k] * self.head_scale + 2.0 * self.spacing[k])
            }
        };
        for k in 0..3 {
            if fov[k] < need[k] {
                return bad(format!(
                    "a head of scale {} needs a field of view of at least {:.0} mm along {}; \
                     shape × spacing gives {:.0} mm",
                    self.head_scale,
                    need[k],
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

/// Where the structures of a whole head are (world LPS mm), for checks and for cropping.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Landmarks {
    /// Centre of the frontal sinus (in the glabella).
    pub frontal_sinus: [f64; 3],
    /// Centres of the right and left maxillary sinuses.
    pub maxillary_sinuses: [[f64; 3]; 2],
    /// Centre of the sphenoid sinus.
    pub sphenoid_sinus: [f64; 3],
    /// Centres of the right and left mastoid air cells.
    pub mastoids: [[f64; 3]; 2],
    /// Centres of the right and left orbits.
    pub orbits: [[f64; 3]; 2],
    /// Centre of the foramen magnum.
    pub foramen_magnum: [f64; 3],
    /// A point in the dens of C2.
    pub dens: [f64; 3],
    /// Points in the enamel of the molar crowns present.
    pub molar_crowns: Vec<[f64; 3]>,
    /// Height (world y, mm) of the top of the table under the midline, when there is a table.
    pub table_top_y: Option<f64>,
    /// Centres of the metal pieces (fillings, screws).
    pub metal: Vec<[f64; 3]>,
}

/// A generated phantom: the CT, its exact skull label, and what was drawn.
#[derive(Debug, Clone)]
#[non_exhaustive]
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
    /// Where the structures are, for a whole head ([`Anatomy::Head`]).
    pub landmarks: Option<Landmarks>,
}

impl Phantom {
    /// The ground-truth skull surface (LPS mm): the watertight marching-cubes surface of
    /// [`Phantom::skull`], so voxelising it on the CT's grid gives the label back.
    pub fn skull_mesh(&self) -> Result<msd_geom::Mesh> {
        Ok(msd_geom::label_surface(&self.skull, SKULL_LABEL)?)
    }
}

/// A smooth random function on the unit sphere: a few low-frequency plane waves.
#[derive(Debug, Clone)]
pub(crate) struct SphereField {
    waves: Vec<([f64; 3], f64, f64)>,
}

impl SphereField {
    pub(crate) fn new(rng: &mut StdRng, count: usize, max_frequency: f64) -> Self {
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
    pub(crate) fn at(&self, u: [f64; 3]) -> f64 {
        self.waves
            .iter()
            .map(|(k, phase, a)| a * (k[0] * u[0] + k[1] * u[1] + k[2] * u[2] + phase).cos())
            .sum()
    }
}

pub(crate) fn random_unit(rng: &mut StdRng) -> [f64; 3] {
    let normal = Normal::new(0.0, 1.0).expect("unit normal is valid");
    loop {
        let v: [f64; 3] = [normal.sample(rng), normal.sample(rng), normal.sample(rng)];
        let n = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
        if n > 1e-6 {
            return [v[0] / n, v[1] / n, v[2] / n];
        }
    }
}

/// A linear ramp from 0 at `t = -0.5` to 1 at `t = 0.5`: the fraction of a voxel past an interface.
pub(crate) fn ramp(t: f64) -> f64 {
    (t + 0.5).clamp(0.0, 1.0)
}

/// Generates the phantom for `seed`. The same config and seed always give the same phantom.
pub fn generate(config: &PhantomConfig, seed: u64) -> Result<Phantom> {
    config.validate()?;
    let mut rng = StdRng::seed_from_u64(seed ^ 0x6d73_645f_7068_616e);
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
    let (craniectomy, head_centre, landmarks) = match config.anatomy {
        Anatomy::Vault => {
            let a = vault::Vault::draw(config, &mut rng);
            let cup = config.cupping_hu;
            fill(&mut ct, &mut skull, &mut region, origin, spacing, |p| {
                let p = [p[0] - a.centre[0], p[1] - a.centre[1], p[2] - a.centre[2]];
                let rho = (p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt().max(1e-9);
                let u = [p[0] / rho, p[1] / rho, p[2] / rho];
                let sample = a.sample(u, rho, spacing, cup);
                (sample.hu, sample.skull, sample.near_defect)
            });
            if let Some(metal) = &a.metal {
                vault::add_metal(&mut ct, &geometry, metal, &a);
            }
            (a.craniectomy, a.centre, None)
        }
        Anatomy::Head => {
            let h = head::Head::draw(config, &mut rng, [0.0; 3], config.field_of_view_mm());
            fill(&mut ct, &mut skull, &mut region, origin, spacing, |p| {
                let v = h.sample(p, spacing);
                (v.hu, v.skull, v.near_defect)
            });
            let sources: Vec<_> = h
                .metal_sources
                .iter()
                .map(|&(c, r)| (c, r, (0..5).map(|_| rng.random_range(0.0..PI)).collect::<Vec<_>>()))
                .collect();
            // Streaks stay inside the head's outline (face included).
            let s = config.head_scale;
            let outline = ([h.centre[0], h.centre[1] - 10.0 * s], [90.0 * s, 115.0 * s]);
            imaging::add_streaks(&mut ct, origin, spacing, &sources, outline);
            (h.craniectomy_world, h.centre, Some(h.landmarks))
        }
    };
    imaging::blur(&mut ct, spacing, config.blur_mm);
    imaging::add_noise(&mut ct, config.noise_hu, seed);

    let ct = Volume::new(ct, geometry)?;
    let skull = Volume::new(skull, geometry)?;
    let defect_region = match craniectomy {
        Some(_) => Some(Volume::new(region, geometry)?),
        None => None,
    };
    Ok(Phantom { ct, skull, craniectomy, defect_region, head_centre, noise_hu: config.noise_hu, landmarks })
}

/// Fills the CT, skull label and defect region slice by slice in parallel from `sample` (world
/// position of a voxel centre → HU, skull, near the defect).
fn fill(
    ct: &mut Array3<f32>,
    skull: &mut Array3<u8>,
    region: &mut Array3<u8>,
    origin: [f64; 3],
    spacing: [f64; 3],
    sample: impl Fn([f64; 3]) -> (f64, bool, bool) + Sync,
) {
    let (_, ny, nx) = ct.dim();
    ct.axis_iter_mut(Axis(0))
        .into_par_iter()
        .zip(skull.axis_iter_mut(Axis(0)))
        .zip(region.axis_iter_mut(Axis(0)))
        .enumerate()
        .for_each(|(z, ((mut ct_slice, mut skull_slice), mut region_slice))| {
            for y in 0..ny {
                for x in 0..nx {
                    let p = [
                        origin[0] + x as f64 * spacing[0],
                        origin[1] + y as f64 * spacing[1],
                        origin[2] + z as f64 * spacing[2],
                    ];
                    let (hu, bone, near) = sample(p);
                    ct_slice[[y, x]] = hu as f32;
                    skull_slice[[y, x]] = if bone { SKULL_LABEL } else { 0 };
                    region_slice[[y, x]] = u8::from(near);
                }
            }
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
        let got: Vec<usize> = (-3..7).map(|i| imaging::mirror(i, 4)).collect();
        assert_eq!(got, vec![2, 1, 0, 0, 1, 2, 3, 3, 2, 1]);
    }
}
