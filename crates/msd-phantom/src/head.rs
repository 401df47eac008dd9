//! The whole head ([`Anatomy::Head`](crate::Anatomy::Head)): cranium, skull base, face, mandible
//! and teeth, sinuses, upper cervical spine, soft tissue, and the table and head holder it lies on.
//!
//! The anatomy is laid out in an adult head frame in millimetres (origin at the centre of the
//! cranial vault, axes LPS as the patient's), scaled by the head size and rotated by a small random
//! tilt into the scanner. The numbers are those of an average adult skull (vault about 145 × 185 ×
//! 150 mm outside, dental arch about 55 mm wide) with per-seed variation. A voxel's CT value is painted
//! structure by structure, each covering the voxel by the fraction its surface leaves inside (partial
//! volume over one voxel along the surface normal), later structures over earlier ones; the voxel is
//! skull when the last structure containing its centre is bone.
use std::f64::consts::PI;

use rand::Rng;
use rand::rngs::StdRng;

use crate::shapes::{Hit, Part, Shape, norm, union};
use crate::{Craniectomy, Landmarks, PhantomConfig, SphereField, ramp};

/// The table and head holder under the head (in the scanner frame, relative to the head centre: they
/// do not tilt with the head).
struct Support {
    table_cy: f64,
    table_r: f64,
    table_mm: f64,
    skin_mm: f64,
    skin_hu: f64,
    core_hu: f64,
    holder_cy: f64,
    holder_r: f64,
    shell_mm: f64,
    shell_hu: f64,
    pad_hu: f64,
    arc_cut_y: f64,
    holder_top_z: f64,
}

/// A bone with a cortical rim over a cancellous core.
struct Bone {
    part: Part,
    cortex: f64,
    cortical_hu: f64,
    cancellous_hu: f64,
}

/// A tooth: dentine root, enamel crown towards the occlusal plane.
struct Tooth {
    part: Part,
    /// Height (head frame) where the enamel crown starts.
    crown_from: f64,
    /// Whether the crown points up (a lower tooth) or down (an upper tooth).
    lower: bool,
}

/// A cavity with what fills it.
struct Cavity {
    part: Part,
    hu: f64,
}

pub(crate) struct Head {
    /// Millimetres per head-frame unit.
    s: f64,
    /// Head centre, world LPS mm.
    pub(crate) centre: [f64; 3],
    /// Head frame → world rotation (columns are the head axes).
    rot: [[f64; 3]; 3],
    scalp_axes: [f64; 3],
    shape_field: SphereField,
    thickness_field: SphereField,
    density_field: SphereField,
    scalp: f64,
    thickness: f64,
    /// An upper bound of [`Head::skull_thickness`].
    max_thickness: f64,
    temporal: f64,
    csf: f64,
    cortical_hu: f64,
    diploe_hu: f64,
    brain_hu: f64,
    soft_hu: f64,
    craniectomy: Option<Craniectomy>,
    soft: Vec<Part>,
    face_envelope: Vec<Part>,
    face_cavities: Vec<Cavity>,
    globes: Vec<Part>,
    bones: Vec<Bone>,
    air_cells: Vec<Part>,
    airway: Vec<Part>,
    frontal_sinus: Part,
    foramen: ([f64; 2], [f64; 2]),
    teeth: Vec<Tooth>,
    metal: Vec<Part>,
    support: Option<Support>,
    cup: f64,
    /// Where the structures are, world LPS mm.
    pub(crate) landmarks: Landmarks,
    /// The craniectomy as reported: direction in world axes, radius in mm.
    pub(crate) craniectomy_world: Option<Craniectomy>,
    /// Metal centres (world) and radii (mm) for the streaks.
    pub(crate) metal_sources: Vec<([f64; 3], f64)>,
}

/// Scalp semi-axes of an adult head (x: L–R, y: A–P, z: S–I), mm.
const SCALP_AXES: [f64; 3] = [77.0, 97.0, 80.0];
/// How far (head frame) the head reaches: x, y and z bounds.
pub(crate) const HEAD_LO: [f64; 3] = [-88.0, -112.0, -1e9];
pub(crate) const HEAD_HI: [f64; 3] = [88.0, 100.0, 88.0];

fn ell(c: [f64; 3], a: [f64; 3]) -> Part {
    Part::new(Shape::Ellipsoid { c, a })
}

fn cap(p: [f64; 3], q: [f64; 3], r: f64) -> Part {
    Part::new(Shape::Capsule { p, q, r, k: [1.0; 3] })
}

fn capk(p: [f64; 3], q: [f64; 3], r: f64, k: [f64; 3]) -> Part {
    Part::new(Shape::Capsule { p, q, r, k })
}

fn smoothstep(a: f64, b: f64, x: f64) -> f64 {
    let t = ((x - a) / (b - a)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// The mandible's body as a polyline (one side, head frame x ≥ 0, y), chin first.
const MANDIBLE_ARCH: [[f64; 2]; 5] =
    [[0.0, -80.0], [16.0, -75.0], [27.0, -58.0], [36.0, -38.0], [45.0, -16.0]];

/// The point at arc length `t` (mm) along [`MANDIBLE_ARCH`], scaled by `width` across.
fn along_arch(t: f64, width: f64) -> [f64; 2] {
    let mut left = t;
    for w in MANDIBLE_ARCH.windows(2) {
        let (a, b) = (w[0], w[1]);
        let seg = ((b[0] - a[0]).powi(2) + (b[1] - a[1]).powi(2)).sqrt();
        if left <= seg {
            let f = left / seg;
            return [(a[0] + f * (b[0] - a[0])) * width, a[1] + f * (b[1] - a[1])];
        }
        left -= seg;
    }
    let last = MANDIBLE_ARCH[MANDIBLE_ARCH.len() - 1];
    [last[0] * width, last[1]]
}

impl Head {
    pub(crate) fn draw(
        config: &PhantomConfig,
        rng: &mut StdRng,
        grid_centre: [f64; 3],
        fov: [f64; 3],
    ) -> Head {
        let jitter = rng.random_range(0.95..1.05);
        let s = config.head_scale * jitter;
        let scalp_axes = [
            SCALP_AXES[0] * rng.random_range(0.95..1.05),
            SCALP_AXES[1] * rng.random_range(0.95..1.05),
            SCALP_AXES[2] * rng.random_range(0.96..1.04),
        ];
        // A small tilt: heads never lie perfectly straight in the holder.
        let pitch = rng.random_range(-7.0f64..7.0).to_radians();
        let yaw = rng.random_range(-4.0f64..4.0).to_radians();
        let roll = rng.random_range(-3.0f64..3.0).to_radians();
        let rot = rotation(pitch, yaw, roll);
        // Place the head: vertex near the top of the field of view, face inside it, centred if it fits.
        let half = [0.5 * fov[0], 0.5 * fov[1], 0.5 * fov[2]];
        let cy = grid_centre[1] - half[1] + 120.0 * s;
        let cz = (grid_centre[2] + 19.0 * s).min(grid_centre[2] + half[2] - 90.0 * s);
        let centre = [
            grid_centre[0] + rng.random_range(-4.0..4.0),
            cy + rng.random_range(-3.0..3.0),
            cz + rng.random_range(-3.0..3.0),
        ];
        let shape_field = SphereField::new(rng, 6, 2.5);
        let thickness_field = SphereField::new(rng, 8, 3.5);
        let density_field = SphereField::new(rng, 5, 3.0);
        // Thicknesses are given in mm; the head frame is in mm / s.
        let scalp = rng.random_range(4.0..6.5) / s;
        let thickness = config.skull_thickness_mm * rng.random_range(0.9..1.1) / s;
        let temporal = rng.random_range(1.1..2.0) / s;
        let csf = rng.random_range(1.5..3.0) / s;
        let cortical_hu = rng.random_range(1400.0..1800.0);
        let diploe_hu = rng.random_range(550.0..800.0);
        let brain_hu = rng.random_range(28.0..40.0);
        let soft_hu = rng.random_range(35.0..55.0);

        // Every number is drawn whether it is used or not, so switches leave the rest unchanged.
        let has_defect = rng.random::<f64>() < config.craniectomy_probability;
        let azimuth = rng.random_range(0.0..2.0 * PI);
        let elevation = rng.random_range(0.2..1.1f64);
        let direction = [elevation.cos() * azimuth.cos(), elevation.cos() * azimuth.sin(), elevation.sin()];
        let angle_rad = rng.random_range(0.30..0.50);
        let mean_radius = s * (scalp_axes[0] + scalp_axes[1] + scalp_axes[2]) / 3.0;
        let craniectomy = has_defect.then_some(Craniectomy {
            direction: mul(rot, direction),
            angle_rad,
            radius_mm: angle_rad * mean_radius,
        });
        // The craniectomy is kept in the head frame internally.
        let craniectomy_local = has_defect.then_some(Craniectomy { direction, angle_rad, radius_mm: 0.0 });

        // Soft tissue: scalp, face, nose, cheeks over the zygomatic arches, jaw, neck, ears.
        let mut soft = vec![
            ell([0.0; 3], scalp_axes),
            ell([0.0, -50.0, -58.0], [64.0, 56.0, 50.0]),
            ell([0.0, -100.0, -50.0], [11.0, 13.0, 21.0]),
            ell([0.0, -40.0, -100.0], [54.0, 56.0, 34.0]),
            capk([0.0, 8.0, -60.0], [0.0, 8.0, -400.0], 50.0, [1.0, 50.0 / 48.0, 1.0]),
        ];
        for side in [-1.0, 1.0] {
            soft.push(cap([side * 52.0, -66.0, -46.0], [side * 60.0, -16.0, -44.0], 9.0));
            soft.push(ell([side * 76.0, 10.0, -38.0], [5.0, 14.0, 28.0]));
        }

        // Facial skeleton: the bony envelope below the cranial floor, hollowed by its cavities.
        let orbit = rng.random_range(0.92..1.06);
        let sinus: f64 = rng.random_range(0.7..1.1);
        let mut face_envelope =
            vec![ell([0.0, -66.0, -34.0], [52.0, 26.0, 22.0]), ell([0.0, -62.0, -62.0], [39.0, 26.0, 18.0])];
        let mut face_cavities =
            vec![Cavity { part: ell([0.0, -62.0, -52.0], [10.5, 32.0, 17.0]), hu: -1000.0 }];
        let mut globes = Vec::new();
        let mut bones = Vec::new();
        let mut air_cells = Vec::new();
        let bone = |part: Part, cortex: f64, cortical: f64, cancellous: f64| Bone {
            part,
            cortex,
            cortical_hu: cortical,
            cancellous_hu: cancellous,
        };
        let fat_hu = rng.random_range(-110.0..-70.0);
        for side in [-1.0, 1.0] {
            face_envelope.push(ell([side * 46.0, -66.0, -46.0], [10.0, 10.0, 12.0]));
            face_cavities.push(Cavity {
                part: ell([side * 33.0, -68.0, -34.0], [16.0 * orbit, 25.0, 15.0 * orbit]),
                hu: fat_hu,
            });
            face_cavities.push(Cavity {
                part: ell([side * 24.0, -62.0, -61.0], [11.0 * sinus.max(0.9), 15.0 * sinus, 9.0 * sinus]),
                hu: -1000.0,
            });
            face_cavities
                .push(Cavity { part: ell([side * 11.0, -62.0, -34.0], [4.5, 16.0, 8.0]), hu: -1000.0 });
            globes.push(ell([side * 33.0, -76.0, -34.0], [11.5; 3]));
            // Zygomatic arch, from the cheek bone back to the temporal bone.
            bones.push(bone(
                capk([side * 50.0, -64.0, -46.0], [side * 58.0, -16.0, -44.0], 3.0, [1.0, 1.0, 0.5]),
                1.0,
                1500.0,
                900.0,
            ));
            // Mastoid process, its air cells, and the petrous ridge between middle and posterior fossae.
            bones.push(bone(ell([side * 50.0, 14.0, -52.0], [9.0, 11.0, 14.0]), 1.2, 1500.0, 700.0));
            for _ in 0..9 {
                let c = [
                    side * (50.0 + rng.random_range(-4.0..4.0)),
                    14.0 + rng.random_range(-5.0..5.0),
                    -50.0 + rng.random_range(-7.0..7.0),
                ];
                air_cells.push(ell(c, [rng.random_range(1.2..2.4); 3]));
            }
            bones.push(bone(
                cap([side * 45.0, 12.0, -46.0], [side * 14.0, -4.0, -38.0], 6.0),
                2.0,
                1900.0,
                1500.0,
            ));
            // The ear canal, through the soft tissue to the temporal bone.
            face_cavities.push(Cavity {
                part: cap([side * 80.0, 6.0, -42.0], [side * 58.0, 6.0, -43.0], 3.5),
                hu: -1000.0,
            });
            // Mandible: ramus up to the condyle under the middle fossa, and the coronoid process.
            let width = rng.random_range(0.95..1.05);
            let angle = along_arch(200.0, width);
            bones.push(bone(
                capk([side * angle[0], angle[1], -100.0], [side * 48.0, -2.0, -60.0], 4.0, [1.0, 0.3, 1.0]),
                2.0,
                1700.0,
                550.0,
            ));
            bones.push(bone(ell([side * 48.0, 0.0, -57.0], [9.0, 5.0, 5.0]), 1.5, 1600.0, 600.0));
            bones.push(bone(
                cap([side * 42.0, -24.0, -80.0], [side * 45.0, -28.0, -60.0], 3.0),
                1.5,
                1600.0,
                700.0,
            ));
            for w in MANDIBLE_ARCH.windows(2) {
                let (a, b) = (w[0], w[1]);
                bones.push(bone(
                    capk(
                        [side * a[0] * width, a[1], -95.0],
                        [side * b[0] * width, b[1], -95.0],
                        5.5,
                        [1.0, 1.0, 5.5 / 14.0],
                    ),
                    2.2,
                    1750.0,
                    500.0,
                ));
                // Upper alveolar ridge, which holds the upper teeth.
                bones.push(bone(
                    capk(
                        [side * a[0] * width * 1.04, a[1] - 2.0, -69.0],
                        [side * b[0] * width * 1.04, b[1] - 2.0, -69.0],
                        5.0,
                        [1.0, 1.0, 5.0 / 8.0],
                    ),
                    1.5,
                    1500.0,
                    600.0,
                ));
            }
        }
        // Nasal bones, hard palate, sphenoid body, C1–C3.
        bones.push(bone(
            capk([0.0, -89.0, -26.0], [0.0, -96.0, -46.0], 2.5, [0.5, 1.0, 1.0]),
            1.0,
            1300.0,
            1000.0,
        ));
        bones.push(bone(ell([0.0, -56.0, -71.0], [23.0, 30.0, 3.0]), 1.0, 1400.0, 900.0));
        bones.push(bone(ell([0.0, -14.0, -44.0], [16.0, 14.0, 12.0]), 1.5, 1300.0, 700.0));
        air_cells.push(ell([0.0, -14.0, -45.0], [11.0 * sinus, 9.5 * sinus, 8.0 * sinus]));
        let vertebra = |part: Part| bone(part, 1.2, 1100.0, 300.0);
        bones.push(vertebra(Part::new(Shape::Ring { c: [0.0, 20.0, -75.0], rx: 20.0, ry: 18.0, r: 3.5 })));
        for side in [-1.0, 1.0] {
            bones.push(vertebra(ell([side * 17.0, 14.0, -75.0], [8.0, 9.0, 7.0])));
            bones.push(vertebra(cap([side * 17.0, 14.0, -75.0], [side * 36.0, 14.0, -75.0], 3.0)));
        }
        bones.push(vertebra(cap([0.0, 10.0, -100.0], [0.0, 10.0, -74.0], 5.0)));
        for (z, r) in [(-104.0, 14.0), (-128.0, 13.0)] {
            bones.push(vertebra(ell([0.0, 10.0, z], [10.5, 9.0, 8.5])));
            bones.push(vertebra(Part::new(Shape::Ring { c: [0.0, 23.0, z + 1.0], rx: r, ry: r, r: 3.5 })));
            bones.push(vertebra(cap([0.0, 36.0, z + 1.0], [0.0, 50.0, z - 5.0], 4.0)));
        }
        let airway = vec![
            capk([0.0, -34.0, -56.0], [0.0, -9.0, -64.0], 7.0, [1.0, 1.4, 1.0]),
            capk([0.0, -9.0, -64.0], [0.0, -6.0, -400.0], 8.0, [1.0, 1.6, 1.0]),
        ];

        // Frontal sinus: in the thick glabella, clipped to the bone with a rim.
        let frontal_sinus = ell([0.0, -84.0, -8.0], [13.0 * sinus, 3.5, 9.0 * sinus]);

        // Teeth along the arches: incisors, canine, premolars, molars; crowns meet at the occlusal plane.
        let mut teeth = Vec::new();
        let radii = [2.7, 2.7, 3.2, 3.4, 3.5, 4.6, 4.6, 4.4];
        let occlusal = -80.0;
        let mut tooth_crowns = Vec::new();
        for side in [-1.0, 1.0] {
            let mut t = 2.0;
            for (i, r) in radii.iter().enumerate() {
                t += r;
                // Some teeth are missing, as in most adults.
                let present = i < 2 || rng.random::<f64>() > 0.12;
                let lower = along_arch(t, 1.0);
                let upper = along_arch(t, 1.04);
                t += r + 0.4;
                if !present {
                    continue;
                }
                let (lx, ly) = (side * lower[0], lower[1]);
                let (ux, uy) = (side * upper[0], upper[1] - 2.0);
                teeth.push(Tooth {
                    part: capk([lx, ly, -100.0], [lx, ly, occlusal - 0.5 - r], *r, [1.0, 1.0, 1.0]),
                    crown_from: occlusal - 7.5,
                    lower: true,
                });
                teeth.push(Tooth {
                    part: capk([ux, uy, -70.0 - r], [ux, uy, occlusal + 0.5 + r], *r, [1.0, 1.0, 1.0]),
                    crown_from: occlusal + 7.5,
                    lower: false,
                });
                if i >= 5 {
                    tooth_crowns.push([lx, ly, occlusal - 3.5]);
                    tooth_crowns.push([ux, uy, occlusal + 3.5]);
                }
            }
        }

        // Metal: amalgam fillings in some molar crowns, and a fixation plate with screws on the vault.
        let mut metal = Vec::new();
        let mut metal_local = Vec::new();
        let fillings = rng.random::<f64>() < config.dental_filling_probability;
        let count = rng.random_range(1..=4usize);
        for k in 0..count {
            let i = rng.random_range(0..tooth_crowns.len().max(1));
            let r = rng.random_range(1.5..2.5);
            if fillings && k < tooth_crowns.len() {
                let c = tooth_crowns[i];
                metal.push(ell(c, [r, r, r * 0.8]));
                metal_local.push((c, r));
            }
        }
        let plate_dir = match &craniectomy_local {
            Some(c) => tilt_towards(c.direction, c.angle_rad + 0.05, rng.random_range(0.0..2.0 * PI)),
            None => {
                let a = rng.random_range(0.0..2.0 * PI);
                unit3([0.8 * a.cos(), 0.8 * a.sin(), 0.5])
            }
        };
        let along = tilt_towards(plate_dir, 0.12, rng.random_range(0.0..2.0 * PI));
        if config.metal {
            let mut screws = Vec::new();
            for dir in [plate_dir, along] {
                let r = ellipsoid_radius(scalp_axes, dir) - scalp;
                let out = [dir[0] * (r + 0.6), dir[1] * (r + 0.6), dir[2] * (r + 0.6)];
                let inn = [dir[0] * (r - 4.0), dir[1] * (r - 4.0), dir[2] * (r - 4.0)];
                metal.push(cap(out, inn, 0.9 / s));
                metal_local.push((out, 1.2));
                screws.push(out);
            }
            metal.push(cap(screws[0], screws[1], 0.6 / s));
        }

        let support = config.table.then(|| {
            let back = scalp_axes[1] * s + 2.0;
            let pad = rng.random_range(5.0..15.0);
            let holder_r = rng.random_range(95.0..115.0);
            let holder_y = back + pad;
            let table_y = holder_y + 3.0 + rng.random_range(0.0..6.0);
            let table_r = rng.random_range(300.0..600.0);
            Support {
                table_cy: table_y - table_r,
                table_r,
                table_mm: rng.random_range(8.0..14.0),
                skin_mm: rng.random_range(1.2..2.2),
                skin_hu: rng.random_range(300.0..600.0),
                core_hu: rng.random_range(-960.0..-880.0),
                holder_cy: holder_y - holder_r,
                holder_r,
                shell_mm: rng.random_range(2.0..4.0),
                shell_hu: rng.random_range(90.0..250.0),
                pad_hu: rng.random_range(-880.0..-760.0),
                arc_cut_y: holder_y - 0.75 * holder_r,
                holder_top_z: rng.random_range(20.0..60.0) * s,
            }
        });

        let to_world = |a: [f64; 3]| {
            let r = mul(rot, [a[0] * s, a[1] * s, a[2] * s]);
            [centre[0] + r[0], centre[1] + r[1], centre[2] + r[2]]
        };
        let landmarks = Landmarks {
            frontal_sinus: to_world([0.0, -84.0, -8.0]),
            maxillary_sinuses: [to_world([-24.0, -62.0, -61.0]), to_world([24.0, -62.0, -61.0])],
            sphenoid_sinus: to_world([0.0, -14.0, -45.0]),
            mastoids: [to_world([-50.0, 14.0, -50.0]), to_world([50.0, 14.0, -50.0])],
            orbits: [to_world([-33.0, -68.0, -34.0]), to_world([33.0, -68.0, -34.0])],
            foramen_magnum: to_world([0.0, 22.0, -62.0]),
            dens: to_world([0.0, 10.0, -82.0]),
            molar_crowns: tooth_crowns.iter().map(|&c| to_world(c)).collect(),
            table_top_y: support.as_ref().map(|t| centre[1] + t.table_cy + t.table_r),
            metal: metal_local.iter().map(|&(c, _)| to_world(c)).collect(),
        };
        let metal_sources = metal_local.iter().map(|&(c, r)| (to_world(c), r * s)).collect();

        Head {
            s,
            centre,
            rot,
            scalp_axes,
            shape_field,
            thickness_field,
            density_field,
            scalp,
            thickness,
            // The field adds at most 27 %, the occipital and glabellar bumps (which do not overlap) 100 %.
            max_thickness: thickness * 1.27 * 2.0,
            temporal,
            csf,
            cortical_hu,
            diploe_hu,
            brain_hu,
            soft_hu,
            craniectomy: craniectomy_local,
            craniectomy_world: craniectomy,
            soft,
            face_envelope,
            face_cavities,
            globes,
            bones,
            air_cells,
            airway,
            frontal_sinus,
            foramen: ([0.0, 22.0], [15.0, 18.0]),
            teeth,
            metal,
            support,
            cup: config.cupping_hu,
            landmarks,
            metal_sources,
        }
    }

    /// Radius (head frame) of the scalp surface along the unit direction `u`.
    fn scalp_radius(&self, u: [f64; 3]) -> f64 {
        ellipsoid_radius(self.scalp_axes, u) * (1.0 + 0.02 * self.shape_field.at(u))
    }

    /// Skull thickness (head frame) along `u`: thick occiput and glabella, thin temporal squama.
    fn skull_thickness(&self, u: [f64; 3]) -> f64 {
        let bump = |c: [f64; 3], width: f64| {
            let d2 = (u[0] - c[0]).powi(2) + (u[1] - c[1]).powi(2) + (u[2] - c[2]).powi(2);
            (-d2 / (width * width)).exp()
        };
        let mut t = self.thickness * (1.0 + 0.18 * self.thickness_field.at(u));
        t *= 1.0 + 0.6 * bump([0.0, 0.8, -0.55], 0.4) + 1.0 * bump([0.0, -0.99, -0.1], 0.22);
        let temple = smoothstep(0.72, 0.9, u[0].abs())
            * (-((u[2] + 0.2) / 0.3).powi(2)).exp()
            * (1.0 - smoothstep(0.3, 0.5, u[1].abs()));
        t + (self.temporal - t) * temple
    }

    /// Height (head frame) of the cranial floor at `(x, y)` and the floor's thickness there: the
    /// anterior fossa over the orbits, the deeper middle fossae either side of the sella, the deepest
    /// posterior fossa sloping to the foramen magnum.
    fn floor(&self, x: f64, y: f64) -> (f64, f64) {
        let ax = x.abs();
        let anterior = 1.0 - smoothstep(-40.0, -28.0, y);
        let posterior = smoothstep(-2.0, 8.0, y - 0.35 * ax);
        let anterior_h = if ax < 8.0 { -27.0 } else { -22.0 };
        let middle_h = -30.0 + (-48.0 + 30.0) * smoothstep(12.0, 24.0, ax);
        let posterior_h = -52.0 - 8.0 * (-((x / 25.0).powi(2) + ((y - 20.0) / 25.0).powi(2))).exp();
        let h = anterior * anterior_h
            + (1.0 - anterior) * ((1.0 - posterior) * middle_h + posterior * posterior_h);
        let t = anterior * 2.5 + (1.0 - anterior) * ((1.0 - posterior) * 4.0 + posterior * 7.0);
        (h, t)
    }

    /// The CT value and labels of the voxel centred at world `p`.
    pub(crate) fn sample(&self, p: [f64; 3], spacing: [f64; 3]) -> Voxel {
        let rel = [p[0] - self.centre[0], p[1] - self.centre[1], p[2] - self.centre[2]];
        let mut v = Voxel { hu: f64::from(crate::AIR_HU), skull: false, near_defect: false };
        let pv =
            |n: [f64; 3]| 0.8 * (n[0].abs() * spacing[0] + n[1].abs() * spacing[1] + n[2].abs() * spacing[2]);
        if let Some(t) = &self.support {
            t.paint(rel, &pv, &mut v);
        }
        let rt = mul_t(self.rot, rel);
        let s = self.s;
        let q = [rt[0] / s, rt[1] / s, rt[2] / s];
        if (0..3).any(|i| q[i] < HEAD_LO[i] || q[i] > HEAD_HI[i]) {
            return v;
        }
        // Paints a structure with signed distance `d` (head frame) and normal `n` over the voxel.
        let paint = |v: &mut Voxel, h: Hit, hu: f64, bone: bool| {
            let f = ramp(-h.d * s / pv(h.n));
            v.hu += f * (hu - v.hu);
            if h.d < 0.0 {
                v.skull = bone;
            }
        };
        let soft = union(&self.soft, q);
        paint(&mut v, soft, self.soft_hu, false);
        let f_head = ramp(-soft.d * s / pv(soft.n));
        if f_head == 0.0 {
            return v;
        }
        for a in &self.airway {
            paint(&mut v, a.hit(q), -1000.0, false);
        }

        // The cranium: inside the outer skull surface and above the bottom of the cranial floor.
        let rho = norm(q).max(1e-9);
        let u = [q[0] / rho, q[1] / rho, q[2] / rho];
        let r_scalp = self.scalp_radius(u);
        let depth = r_scalp - rho;
        let w_r = pv(u) / s;
        let w_z = pv([0.0, 0.0, 1.0]) / s;
        let (floor, floor_t) = self.floor(q[0], q[1]);
        let top = self.scalp;
        // Deep in the brain (past the thickest bone and the CSF), nothing but brain: skip the rest.
        let deep =
            depth > top + self.max_thickness + self.csf + 12.0 / s + w_r && q[2] > floor + self.csf + w_z;
        if deep {
            v.hu = self.brain_hu;
            v.skull = false;
        } else if depth > top - w_r {
            let t = self.skull_thickness(u);
            let bottom = top + t;
            let f_cr = ramp((depth - top) / w_r) * ramp((q[2] - (floor - floor_t)) / w_z);
            let inside = depth >= top && q[2] >= floor - floor_t;
            let table = (0.3 * t).clamp(0.6 / s, 2.0 / s).min(0.5 * t);
            let f_diploe =
                (ramp((depth - top - table) / w_r) - ramp((depth - bottom + table) / w_r)).max(0.0);
            if f_cr > 0.0 {
                let density =
                    (0.75 + 0.25 * (t / self.thickness).min(1.0)) * (1.0 + 0.05 * self.density_field.at(u));
                let mut hu = density * (self.cortical_hu + (self.diploe_hu - self.cortical_hu) * f_diploe);
                hu += (260.0 - hu) * self.suture(q, s, w_r);
                v.hu += f_cr * (hu - v.hu);
                if inside {
                    v.skull = true;
                }
            }
            // The craniectomy takes out the vault (not the floor), leaving soft tissue.
            if let Some(c) = &self.craniectomy {
                let cos = u[0] * c.direction[0] + u[1] * c.direction[1] + u[2] * c.direction[2];
                let angle = cos.clamp(-1.0, 1.0).acos();
                let removed = ramp((c.angle_rad - angle) / (w_r / r_scalp.max(1.0)));
                let f_band = f_cr * (1.0 - ramp((depth - bottom) / w_r));
                v.hu += removed * f_band * (self.soft_hu - v.hu);
                if inside && depth < bottom && removed >= 0.5 {
                    v.skull = false;
                }
                let margin = 10.0 / s / r_scalp.max(1.0);
                v.near_defect = angle < c.angle_rad + margin
                    && depth > top - 10.0 / s
                    && depth < bottom + 10.0 / s
                    && q[2] > floor - floor_t - 10.0 / s;
            }
            // Frontal sinus: air inside the glabella, with at least a millimetre of bone around it.
            let fs = self.frontal_sinus.hit(q);
            if fs.d < 1.0 {
                let rim = 1.0 / s;
                let d = fs.d.max(top + rim - depth).max(depth - bottom + rim).max(floor + rim - q[2]);
                paint(&mut v, Hit { d, n: fs.n }, -1000.0, false);
            }
            // Intracranial: CSF, then brain.
            let cavity = |extra: f64| {
                let a = ramp((depth - bottom - extra) / w_r);
                let b = ramp((q[2] - floor - extra) / w_z);
                (a * b, depth >= bottom + extra && q[2] >= floor + extra)
            };
            for (extra, hu) in [(0.0, 8.0), (self.csf, self.brain_hu)] {
                let (f, inside) = cavity(extra);
                v.hu += f * (hu - v.hu);
                if inside {
                    v.skull = false;
                }
            }
        }

        // Foramen magnum: a hole through the posterior floor.
        let (fc, fa) = self.foramen;
        let k0 = ((q[0] - fc[0]) / fa[0]).hypot((q[1] - fc[1]) / fa[1]);
        if k0 < 1.6 {
            let d_hole = (k0 - 1.0) * fa[0].min(fa[1]);
            let d = d_hole.max((q[2] - (floor - floor_t * 0.5)).abs() - floor_t * 0.5 - 1.0);
            paint(&mut v, Hit { d, n: [1.0, 0.0, 0.0] }, 32.0, false);
        }

        // Facial skeleton: a rim under the envelope's surface and walls around every cavity, all
        // below the cranial floor.
        let env = union(&self.face_envelope, q);
        if env.d < 2.0 {
            let below = q[2] - (floor - floor_t * 0.5);
            let env_d = env.d.max(below);
            let shell = env_d.max(-env.d - 2.5 / s);
            let cav = self
                .face_cavities
                .iter()
                .map(|c| c.part.hit(q))
                .fold(crate::shapes::MISS, |a, h| if h.d < a.d { h } else { a });
            let wall = env_d.max(cav.d - 1.2 / s);
            let h = if shell < wall { Hit { d: shell, n: env.n } } else { Hit { d: wall, n: cav.n } };
            let hu = 0.85 * self.cortical_hu;
            paint(&mut v, h, hu, true);
        }
        for b in &self.bones {
            let h = b.part.hit(q);
            if h.d < 2.0 {
                let core = ramp((-h.d - b.cortex / s) * s / pv(h.n));
                let hu = b.cortical_hu + (b.cancellous_hu - b.cortical_hu) * core;
                paint(&mut v, h, hu, true);
            }
        }
        for c in &self.face_cavities {
            let h = c.part.hit(q);
            if h.d < 2.0 {
                let below = (q[2] - (floor - floor_t)).max(h.d);
                paint(&mut v, Hit { d: below, n: h.n }, c.hu, false);
            }
        }
        for g in &self.globes {
            paint(&mut v, g.hit(q), 12.0, false);
        }
        // Nasal septum: a thin midline plate in the upper nasal cavity.
        if q[0].abs() < 3.0 && q[2] > -62.0 && q[2] < floor && q[1] > -88.0 && q[1] < -36.0 {
            let d = q[0].abs() - 0.5 / s;
            paint(&mut v, Hit { d, n: [1.0, 0.0, 0.0] }, 0.8 * self.cortical_hu, true);
        }

        for c in &self.air_cells {
            paint(&mut v, c.hit(q), -1000.0, false);
        }
        for t in &self.teeth {
            let h = t.part.hit(q);
            if h.d < 2.0 {
                let into_crown = if t.lower { q[2] - t.crown_from } else { t.crown_from - q[2] };
                let enamel = ramp(into_crown / w_z);
                paint(&mut v, h, 1800.0 + (2800.0 - 1800.0) * enamel, true);
            }
        }
        for m in &self.metal {
            paint(&mut v, m.hit(q), 8000.0, false);
        }
        // Beam hardening: the middle of the head reads low.
        let qq = (rho / r_scalp).min(1.0);
        v.hu -= f_head * self.cup * (1.0 - qq * qq);
        v
    }

    /// How much of the voxel at `q` is a suture (coronal, sagittal, lambdoid): a jagged, 0.9 mm
    /// gap of fibrous tissue across the vault.
    fn suture(&self, q: [f64; 3], s: f64, w: f64) -> f64 {
        let half = 0.45 / s;
        let y_coronal = -20.0 - 0.2 * (70.0 - q[2]) + 1.2 * (0.5 * q[0]).sin();
        let z_lambdoid = 52.0 - 1.45 * q[0].abs() + 1.2 * (0.5 * q[1]).sin();
        let mut dist = f64::INFINITY;
        if q[2] > -12.0 && q[1] < 10.0 {
            dist = dist.min((q[1] - y_coronal).abs());
        }
        if q[1] > 25.0 && q[2] > -28.0 {
            dist = dist.min((q[2] - z_lambdoid).abs());
        }
        if q[2] > 20.0 && q[1] > y_coronal && q[2] > z_lambdoid {
            dist = dist.min((q[0] - 1.2 * (0.45 * q[1]).sin()).abs());
        }
        ramp((half - dist) / w)
    }
}

impl Support {
    fn paint(&self, rel: [f64; 3], pv: &dyn Fn([f64; 3]) -> f64, v: &mut Voxel) {
        let (x, y, z) = (rel[0], rel[1], rel[2]);
        // The table: a plate curving up at the sides, carbon-fibre skins over a foam core.
        let dy = y - self.table_cy;
        let dist = x.hypot(dy);
        let depth = dist - self.table_r;
        if depth > -6.0 && depth < self.table_mm + 6.0 && x.abs() < 260.0 {
            let w = pv([x / dist, dy / dist, 0.0]);
            let f = ramp(depth / w) * ramp((self.table_mm - depth) / w);
            let skin = (ramp((self.skin_mm - depth) / w) + ramp((depth - self.table_mm + self.skin_mm) / w))
                .min(1.0);
            let hu = self.core_hu + (self.skin_hu - self.core_hu) * skin;
            v.hu += f * (hu - v.hu);
        }
        // The head holder: a plastic cradle lined with foam, up to about the vertex.
        if y > self.arc_cut_y {
            let dy = y - self.holder_cy;
            let dist = x.hypot(dy);
            let wz = pv([0.0, 0.0, 1.0]);
            let fz = ramp((self.holder_top_z - z) / wz);
            let w = pv([x / dist, dy / dist, 0.0]);
            let pad = ramp((self.holder_r - dist) / w) * fz;
            v.hu += pad * (self.pad_hu - v.hu);
            let depth = dist - self.holder_r;
            let shell = ramp(depth / w) * ramp((self.shell_mm - depth) / w) * fz;
            v.hu += shell * (self.shell_hu - v.hu);
        }
    }
}

/// What one voxel holds before blur and noise.
pub(crate) struct Voxel {
    pub hu: f64,
    pub skull: bool,
    pub near_defect: bool,
}

fn ellipsoid_radius(a: [f64; 3], u: [f64; 3]) -> f64 {
    1.0 / ((u[0] / a[0]).powi(2) + (u[1] / a[1]).powi(2) + (u[2] / a[2]).powi(2)).sqrt()
}

fn unit3(v: [f64; 3]) -> [f64; 3] {
    crate::shapes::unit(v)
}

/// The direction `angle` away from `dir`, towards azimuth `around` about it.
fn tilt_towards(dir: [f64; 3], angle: f64, around: f64) -> [f64; 3] {
    let helper = if dir[2].abs() < 0.9 { [0.0, 0.0, 1.0] } else { [1.0, 0.0, 0.0] };
    let e1 = unit3(cross(dir, helper));
    let e2 = cross(dir, e1);
    let t = [0, 1, 2].map(|i| around.cos() * e1[i] + around.sin() * e2[i]);
    unit3([0, 1, 2].map(|i| angle.cos() * dir[i] + angle.sin() * t[i]))
}

fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
}

/// Rotation (head → world) by `pitch` about x, then `roll` about y, then `yaw` about z.
fn rotation(pitch: f64, yaw: f64, roll: f64) -> [[f64; 3]; 3] {
    let (sp, cp) = pitch.sin_cos();
    let (sy, cy) = yaw.sin_cos();
    let (sr, cr) = roll.sin_cos();
    let rx = [[1.0, 0.0, 0.0], [0.0, cp, -sp], [0.0, sp, cp]];
    let ry = [[cr, 0.0, sr], [0.0, 1.0, 0.0], [-sr, 0.0, cr]];
    let rz = [[cy, -sy, 0.0], [sy, cy, 0.0], [0.0, 0.0, 1.0]];
    matmul(rz, matmul(ry, rx))
}

fn matmul(a: [[f64; 3]; 3], b: [[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let mut m = [[0.0; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            m[i][j] = (0..3).map(|k| a[i][k] * b[k][j]).sum();
        }
    }
    m
}

fn mul(m: [[f64; 3]; 3], v: [f64; 3]) -> [f64; 3] {
    [0, 1, 2].map(|i| m[i][0] * v[0] + m[i][1] * v[1] + m[i][2] * v[2])
}

fn mul_t(m: [[f64; 3]; 3], v: [f64; 3]) -> [f64; 3] {
    [0, 1, 2].map(|i| m[0][i] * v[0] + m[1][i] * v[1] + m[2][i] * v[2])
}
