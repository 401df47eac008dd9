//! The whole-head phantom: anatomy where it should be, labels, noise, validation, invariants.
use std::collections::VecDeque;
use std::sync::OnceLock;

use msd_phantom::{Anatomy, Error, Phantom, PhantomConfig, SKULL_LABEL, generate};
use proptest::prelude::*;

/// A noise-free 1 mm head without metal or craniectomy, shared by the anatomy tests.
fn head() -> &'static Phantom {
    static HEAD: OnceLock<Phantom> = OnceLock::new();
    HEAD.get_or_init(|| {
        let mut config =
            PhantomConfig::clinical(1.0, 1.5).unwrap().with_noise(0.0).with_craniectomy_probability(0.0);
        config.dental_filling_probability = 0.0;
        generate(&config, 21).unwrap()
    })
}

fn index(p: &Phantom, world: [f64; 3]) -> [usize; 3] {
    let i = p.ct.geometry().world_to_index(world);
    let [nz, ny, nx] = p.ct.shape();
    [
        (i[2].round().max(0.0) as usize).min(nz - 1),
        (i[1].round().max(0.0) as usize).min(ny - 1),
        (i[0].round().max(0.0) as usize).min(nx - 1),
    ]
}

fn hu(p: &Phantom, world: [f64; 3]) -> f32 {
    p.ct.data()[index(p, world)]
}

fn is_skull(p: &Phantom, world: [f64; 3]) -> bool {
    p.skull.data()[index(p, world)] == SKULL_LABEL
}

/// Whether bone is met within `reach` mm of `from` along each of the six axis directions.
fn enclosed_by_bone(p: &Phantom, from: [f64; 3], reach: f64) -> bool {
    let dirs = [
        [1.0, 0.0, 0.0],
        [-1.0, 0.0, 0.0],
        [0.0, 1.0, 0.0],
        [0.0, -1.0, 0.0],
        [0.0, 0.0, 1.0],
        [0.0, 0.0, -1.0],
    ];
    dirs.iter().all(|d| {
        let hit = (1..=(reach * 2.0) as usize).any(|k| {
            let t = k as f64 * 0.5;
            is_skull(p, [from[0] + d[0] * t, from[1] + d[1] * t, from[2] + d[2] * t])
        });
        if !hit {
            eprintln!("no bone within {reach} mm of {from:?} along {d:?}");
        }
        hit
    })
}

#[test]
fn same_seed_same_phantom_other_seed_other_phantom() {
    let c = PhantomConfig::clinical(3.0, 3.0).unwrap();
    let a = generate(&c, 3).unwrap();
    let b = generate(&c, 3).unwrap();
    let other = generate(&c, 4).unwrap();
    assert_eq!(a.ct, b.ct);
    assert_eq!(a.skull, b.skull);
    assert_eq!(a.landmarks, b.landmarks);
    assert_ne!(a.ct, other.ct);
}

#[test]
fn tissues_have_their_hounsfield_units() {
    let p = head();
    assert!((p.ct.data()[[0, 0, 0]] + 1000.0).abs() < 0.01);
    let brain = hu(p, [p.head_centre[0], p.head_centre[1], p.head_centre[2] + 20.0]);
    assert!((-20.0..60.0).contains(&brain), "brain {brain} HU");
    let (sum, n) =
        p.ct.data()
            .iter()
            .zip(p.skull.data())
            .filter(|&(_, &l)| l == SKULL_LABEL)
            .fold((0.0f64, 0usize), |(s, n), (&v, _)| (s + v as f64, n + 1));
    let mean = sum / n as f64;
    assert!((500.0..1700.0).contains(&mean), "mean bone {mean} HU");
    // An adult skull with face, mandible and spine: several hundred millilitres of bone.
    let ml = n as f64 * p.skull.geometry().voxel_volume_mm3() / 1000.0;
    assert!((350.0..1400.0).contains(&ml), "{ml} ml of bone");
}

#[test]
fn sinuses_hold_air_inside_bone() {
    let p = head();
    let l = p.landmarks.as_ref().unwrap();
    let sinuses = [l.frontal_sinus, l.maxillary_sinuses[0], l.maxillary_sinuses[1], l.sphenoid_sinus];
    for s in sinuses {
        assert!(hu(p, s) < -500.0, "sinus at {s:?} reads {} HU", hu(p, s));
        assert!(!is_skull(p, s));
        assert!(enclosed_by_bone(p, s, 30.0), "sinus at {s:?} is not enclosed by bone");
    }
    // Mastoid air cells: some air inside the mastoid process.
    for m in l.mastoids {
        let [z, y, x] = index(p, m);
        let mut air = 0;
        for dz in 0..12 {
            for dy in 0..12 {
                for dx in 0..12 {
                    let v = p.ct.data()[[z + dz - 6, y + dy - 6, x + dx - 6]];
                    air += usize::from(v < -300.0);
                }
            }
        }
        assert!(air > 5, "{air} air voxels in the mastoid at {m:?}");
    }
}

#[test]
fn orbits_hold_fat_and_open_to_the_front() {
    let p = head();
    let l = p.landmarks.as_ref().unwrap();
    for o in l.orbits {
        let v = hu(p, o);
        assert!((-150.0..60.0).contains(&v), "orbit {v} HU");
        assert!(!is_skull(p, o));
        // Front: no bone for 40 mm anterior (−y) of the orbit centre along its axis.
        let front = (1..40).all(|k| !is_skull(p, [o[0], o[1] - 20.0 - k as f64 * 0.5, o[2]]));
        assert!(front, "orbit at {o:?} is closed in front");
    }
}

#[test]
fn skull_base_spine_and_teeth_are_bone() {
    let p = head();
    let l = p.landmarks.as_ref().unwrap();
    assert!(!is_skull(p, l.foramen_magnum), "the foramen magnum is open");
    assert!(is_skull(p, l.dens), "the dens of C2 is bone");
    assert!(!l.molar_crowns.is_empty());
    let bone_mean = {
        let (s, n) =
            p.ct.data()
                .iter()
                .zip(p.skull.data())
                .filter(|&(_, &l)| l == SKULL_LABEL)
                .fold((0.0f64, 0usize), |(s, n), (&v, _)| (s + v as f64, n + 1));
        s / n as f64
    };
    for c in &l.molar_crowns {
        assert!(is_skull(p, *c), "tooth at {c:?} is in the skull label");
        assert!(f64::from(hu(p, *c)) > bone_mean + 600.0, "enamel {} HU vs bone {bone_mean}", hu(p, *c));
        assert!(hu(p, *c) > 2000.0, "tooth at {c:?}: {} HU", hu(p, *c));
    }
}

#[test]
fn temporal_squama_is_thin_and_occiput_thick() {
    let p = head();
    let c = p.head_centre;
    let run = |dir: [f64; 3], dz: f64| {
        (0..200)
            .filter(|k| {
                let t = *k as f64 * 0.5;
                is_skull(p, [c[0] + dir[0] * t, c[1] + dir[1] * t, c[2] + dz + dir[2] * t])
            })
            .count() as f64
            * 0.5
    };
    let temporal = run([1.0, 0.0, 0.0], -12.0);
    let occiput = run([0.0, 1.0, 0.0], -30.0);
    assert!(temporal > 0.0 && temporal <= 3.5, "temporal {temporal} mm");
    assert!(occiput >= 7.0, "occiput {occiput} mm");
}

#[test]
fn table_and_holder_lie_below_the_head_and_are_not_skull() {
    let p = head();
    let top = p.landmarks.as_ref().unwrap().table_top_y.unwrap();
    let g = p.ct.geometry();
    let [nz, ny, nx] = p.ct.shape();
    // No skull at or behind the table.
    for ((z, y, x), &l) in p.skull.data().indexed_iter() {
        if l == SKULL_LABEL {
            assert!(g.index_to_world([x as f64, y as f64, z as f64])[1] < top - 5.0);
        }
    }
    // The table's skin is bright (over 300 HU, as real tables are) ...
    let ty = g.world_to_index([0.0, top + 0.6, 0.0])[1].round() as usize;
    let (z0, x0) = (nz / 2, nx / 2);
    let skin = p.ct.data()[[z0, ty, x0]];
    assert!(skin > 150.0, "table skin {skin} HU");
    // ... and what is bright and connected to it never reaches the skull.
    let bright = |i: [usize; 3]| p.ct.data()[i] > 150.0;
    let mut seen = vec![false; nz * ny * nx];
    let mut queue = VecDeque::from([[z0, ty, x0]]);
    while let Some([z, y, x]) = queue.pop_front() {
        let k = (z * ny + y) * nx + x;
        if seen[k] || !bright([z, y, x]) {
            continue;
        }
        seen[k] = true;
        assert_ne!(p.skull.data()[[z, y, x]], SKULL_LABEL, "table connected to skull at {:?}", [z, y, x]);
        for (d, n) in [(0usize, nz), (1, ny), (2, nx)] {
            let mut i = [z, y, x];
            if i[d] > 0 {
                i[d] -= 1;
                queue.push_back(i);
            }
            let mut i = [z, y, x];
            if i[d] + 1 < n {
                i[d] += 1;
                queue.push_back(i);
            }
        }
    }
}

#[test]
fn metal_is_bright_streaky_and_not_skull() {
    let mut c = PhantomConfig::clinical(1.5, 2.0)
        .unwrap()
        .with_noise(0.0)
        .with_metal(true)
        .with_craniectomy_probability(1.0);
    c.dental_filling_probability = 1.0;
    let with = generate(&c, 5).unwrap();
    c.metal = false;
    c.dental_filling_probability = 0.0;
    let without = generate(&c, 5).unwrap();
    assert!(with.landmarks.as_ref().unwrap().metal.len() >= 3);
    let max = with.ct.data().iter().fold(f32::MIN, |m, &v| m.max(v));
    assert!(max >= 3000.0, "metal max {max}");
    let changed =
        with.ct.data().iter().zip(without.ct.data()).filter(|(a, b)| (**a - **b).abs() > 100.0).count();
    assert!(changed > 2000, "{changed} voxels changed by metal and its streaks");
    // Metal replaces bone in the label, never adds to it.
    for (&a, &b) in with.skull.data().iter().zip(without.skull.data()) {
        assert!(a <= b);
    }
}

#[test]
fn noise_free_means_no_noise_and_noise_has_its_level() {
    let c = PhantomConfig::clinical(3.0, 3.0).unwrap().with_noise(0.0).with_craniectomy_probability(0.0);
    let clean = generate(&c, 9).unwrap();
    // Air far from the head and the table is exactly air, and the brain is smooth.
    assert!((clean.ct.data()[[0, 0, 0]] + 1000.0).abs() < 0.01);
    let [z, y, x] = index(&clean, [clean.head_centre[0], clean.head_centre[1], clean.head_centre[2] + 20.0]);
    let block: Vec<f32> = (0..3)
        .flat_map(|dz| (0..3).flat_map(move |dy| (0..3).map(move |dx| [z + dz, y + dy, x + dx])))
        .map(|i| clean.ct.data()[i])
        .collect();
    let spread =
        block.iter().fold(f32::MIN, |m, &v| m.max(v)) - block.iter().fold(f32::MAX, |m, &v| m.min(v));
    assert!(spread < 8.0, "noise-free brain varies by {spread} HU");
    let noisy = generate(&c.clone().with_noise(50.0), 9).unwrap();
    assert_eq!(clean.skull, noisy.skull);
    let diffs: Vec<f64> = clean
        .ct
        .data()
        .iter()
        .zip(noisy.ct.data())
        .filter(|(a, _)| **a > -900.0 && **a < 1500.0)
        .map(|(a, b)| f64::from(*b - *a))
        .collect();
    let mean = diffs.iter().sum::<f64>() / diffs.len() as f64;
    let sd = (diffs.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / diffs.len() as f64).sqrt();
    assert!((sd - 50.0).abs() < 2.5, "noise sd {sd}");
}

#[test]
fn bad_configs_are_typed_errors() {
    for (pixel, slice) in [(0.0, 1.0), (f64::NAN, 1.0), (1.0, -2.0), (1.0, 50.0)] {
        assert!(matches!(PhantomConfig::clinical(pixel, slice), Err(Error::InvalidConfig { .. })));
    }
    // Fine but huge: refused before anything is allocated.
    let err = PhantomConfig::clinical(0.1, 0.1).unwrap_err().to_string();
    assert!(err.contains("at most"), "{err}");
    let c = PhantomConfig::clinical(2.0, 2.0).unwrap();
    assert!(c.clone().with_spacing([f64::INFINITY, 1.0, 1.0]).is_err());
    let mut small = c.clone();
    small.shape = [40, 40, 40];
    let err = generate(&small, 0).unwrap_err().to_string();
    assert!(err.contains("field of view"), "{err}");
    let mut bad = c;
    bad.dental_filling_probability = 1.5;
    assert!(generate(&bad, 0).is_err());
}

#[test]
fn clinical_grids_cover_the_whole_head_at_any_spacing() {
    let c = PhantomConfig::clinical(0.45, 2.0).unwrap();
    assert_eq!(c.anatomy, Anatomy::Head);
    assert_eq!(c.shape, [118, 556, 556]);
    let d = c.with_spacing([0.8, 0.8, 5.0]).unwrap();
    assert_eq!(d.shape, [47, 313, 313]);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    #[test]
    fn heads_are_deterministic_and_labelled_inside_the_grid(
        seed in any::<u64>(),
        pixel in 2.5f64..4.0,
        slice in 2.5f64..6.0,
        noise in 0.0f64..80.0,
    ) {
        let config = PhantomConfig::clinical(pixel, slice).unwrap().with_noise(noise).with_metal(seed % 2 == 0);
        let a = generate(&config, seed).unwrap();
        let b = generate(&config, seed).unwrap();
        prop_assert_eq!(&a.ct, &b.ct);
        prop_assert_eq!(&a.skull, &b.skull);
        prop_assert!(a.ct.data().iter().all(|v| v.is_finite() && (-1024.0..=3071.0).contains(v)));
        prop_assert!(a.skull.data().iter().all(|&l| l == 0 || l == SKULL_LABEL));
        prop_assert_eq!(a.craniectomy.is_some(), a.defect_region.is_some());
        // The vault's top and the face are inside the grid: no skull on the top, front or side faces.
        let [nz, _, nx] = a.skull.shape();
        for ((z, y, x), &l) in a.skull.data().indexed_iter() {
            if l != 0 {
                prop_assert!(z + 1 < nz && y > 0 && x > 0 && x + 1 < nx, "skull at the border {:?}", (z, y, x));
            }
        }
    }
}
