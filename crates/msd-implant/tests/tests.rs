//! Integration tests of msd-implant on synthetic skulls with seeded defects.
use msd_implant::synthetic::{ShellSpec, cut_sphere, grid_for, skull_shell};
use msd_implant::{
    Error, ImplantOptions, Method, MethodChoice, design_implant, find_openings, overlap_dice, restore,
    symmetry_plane,
};
use msd_io::{Geometry, LabelVolume};

fn skull(spacing: [f64; 3]) -> (ShellSpec, LabelVolume) {
    let spec = ShellSpec::default();
    let (g, shape) = grid_for(&spec, spacing, Geometry::IDENTITY).unwrap();
    (spec, skull_shell(&spec, g, shape).unwrap())
}

fn count(v: &LabelVolume) -> usize {
    v.data().iter().filter(|&&x| x != 0).count()
}

/// Cuts a defect of `diameter` mm centred on the outer surface along `dir`, designs the implant
/// and checks the invariants every implant must meet; returns (Dice vs the removed bone, method).
fn run_case(
    spec: &ShellSpec,
    full: &LabelVolume,
    dir: [f64; 3],
    diameter: f64,
    options: &ImplantOptions,
) -> (f64, Method, String) {
    let (defective, removed) = cut_sphere(full, spec.outer_point(dir), diameter / 2.0).unwrap();
    let implant = design_implant(&defective, options).unwrap();
    // No overlap with the remaining bone.
    let overlap = implant
        .labels
        .data()
        .iter()
        .zip(defective.data().iter())
        .filter(|(a, b)| **a != 0 && **b != 0)
        .count();
    assert_eq!(overlap, 0);
    // Watertight, outward, one piece.
    let check = implant.mesh.check();
    assert!(check.is_watertight() && check.components == 1, "{check:?}");
    assert!(implant.mesh.enclosed_volume() > 0.0);
    // Implant ∪ defective ≈ complete skull.
    let restored = restore(&defective, &implant.labels).unwrap();
    let whole = overlap_dice(&restored, full).unwrap();
    assert!(whole > 0.98, "restored skull Dice {whole}");
    (overlap_dice(&implant.labels, &removed).unwrap(), implant.method, implant.reason)
}

#[test]
fn one_sided_defects_are_mirrored_and_restore_the_skull() {
    let (spec, full) = skull([2.0; 3]);
    let cases = [
        ("parietal", [-0.7, 0.2, 0.7], 60.0),
        ("frontal", [-0.45, -0.85, 0.3], 40.0),
        ("temporal", [1.0, 0.05, 0.1], 50.0),
        ("occipital", [-0.4, 0.9, 0.15], 30.0),
        ("parietal", [0.65, 0.1, 0.75], 90.0),
    ];
    for (name, dir, size) in cases {
        let (dice, method, reason) = run_case(&spec, &full, dir, size, &ImplantOptions::default());
        println!("{name:10} {size:3} mm  {:6}  Dice {dice:.3}  ({reason})", method.name());
        assert_eq!(method, Method::Mirror, "{name} {size}: {reason}");
        assert!(dice > 0.85, "{name} {size} mm: Dice {dice}");
    }
}

#[test]
fn a_midline_defect_is_patched() {
    let (spec, full) = skull([2.0; 3]);
    for (dir, size) in [([0.0, 0.1, 1.0], 70.0), ([0.0, -0.7, 0.7], 50.0)] {
        let (dice, method, reason) = run_case(&spec, &full, dir, size, &ImplantOptions::default());
        println!("midline {dir:?} {size} mm: {} Dice {dice:.3} ({reason})", method.name());
        assert_eq!(method, Method::Patch);
        assert!(reason.contains("crosses"), "{reason}");
        assert!(dice > 0.8, "Dice {dice}");
    }
}

#[test]
fn the_symmetry_plane_is_recovered_on_a_rotated_shifted_anisotropic_grid() {
    // The skull turned 12° about the vertical axis and shifted 7 mm left, on a grid with
    // anisotropic voxels and an oblique direction matrix.
    let yaw = 12f64.to_radians();
    let spec = ShellSpec { centre_mm: [7.0, -3.0, 5.0], ..ShellSpec::default() };
    let (s, c) = (0.3f64.sin(), 0.3f64.cos());
    let direction = [[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]];
    let (g, shape) = grid_for(&spec, [2.0, 1.8, 2.5], direction).unwrap();
    // Draw the rotated skull: sample the upright one at the inverse-rotated point.
    let upright = ShellSpec { centre_mm: [0.0; 3], ..spec };
    let data = ndarray::Array3::from_shape_fn((shape[0], shape[1], shape[2]), |(z, y, x)| {
        let p = g.index_to_world([x as f64, y as f64, z as f64]);
        let v = [p[0] - spec.centre_mm[0], p[1] - spec.centre_mm[1], p[2] - spec.centre_mm[2]];
        let q = [yaw.cos() * v[0] + yaw.sin() * v[1], -yaw.sin() * v[0] + yaw.cos() * v[1], v[2]];
        u8::from(upright_is_bone(&upright, q))
    });
    let skull = LabelVolume::new(data, g).unwrap();
    let plane = symmetry_plane(&skull).unwrap();
    let truth = msd_implant::SymmetryPlane::through(spec.centre_mm, [yaw.cos(), yaw.sin(), 0.0]);
    let angle = plane.angle_deg(&truth);
    let offset = plane.signed_distance(spec.centre_mm).abs();
    println!("angle error {angle:.2}°, offset error {offset:.2} mm, RMS {:.2} mm", plane.rms_mm);
    assert!(angle < 1.0, "angle error {angle}°");
    assert!(offset < 1.0, "offset error {offset} mm");
}

/// Whether a point (relative to the skull's centre) is bone in the upright synthetic skull.
fn upright_is_bone(spec: &ShellSpec, q: [f64; 3]) -> bool {
    let (g, _) = grid_for(spec, [1.0; 3], Geometry::IDENTITY).unwrap();
    let one = skull_shell(spec, g.with_origin(q).unwrap(), [1, 1, 1]).unwrap();
    one.data()[[0, 0, 0]] != 0
}

#[test]
fn bad_inputs_get_clear_errors() {
    let (spec, full) = skull([2.5; 3]);
    // Empty.
    let empty = full.map(|_| 0u8);
    assert!(matches!(design_implant(&empty, &ImplantOptions::default()), Err(Error::EmptySkull { .. })));
    // Not a skull: a small solid ball.
    let ball = full.map(|_| 0u8);
    let g = *ball.geometry();
    let ball = ball
        .with_data(ndarray::Array3::from_shape_fn(ball.data().dim(), |(z, y, x)| {
            let p = g.index_to_world([x as f64, y as f64, z as f64]);
            u8::from(p[0] * p[0] + p[1] * p[1] + p[2] * p[2] < 400.0)
        }))
        .unwrap();
    let e = design_implant(&ball, &ImplantOptions::default()).unwrap_err();
    assert!(matches!(e, Error::NotASkull { .. }), "{e}");
    // Complete skull: orbits and the base are natural openings, no defect.
    let e = design_implant(&full, &ImplantOptions::default()).unwrap_err();
    assert!(matches!(e, Error::NoDefect { natural } if natural >= 1), "{e}");
    let openings = find_openings(&full).unwrap();
    assert!(openings.iter().all(|o| o.natural), "{openings:?}");
    // Two defects: the error lists both centres; a point picks one.
    let left = spec.outer_point([0.7, 0.1, 0.7]);
    let right = spec.outer_point([-0.8, -0.2, 0.5]);
    let (one, _) = cut_sphere(&full, left, 20.0).unwrap();
    let (two, removed_right) = cut_sphere(&one, right, 20.0).unwrap();
    let e = design_implant(&two, &ImplantOptions::default()).unwrap_err();
    let Error::SeveralDefects { centres } = &e else { panic!("{e}") };
    assert_eq!(centres.len(), 2);
    assert!(e.to_string().contains("--point"), "{e}");
    let picked =
        design_implant(&two, &ImplantOptions { point_mm: Some(right), ..Default::default() }).unwrap();
    assert!(overlap_dice(&picked.labels, &removed_right).unwrap() > 0.8);
    let far =
        design_implant(&two, &ImplantOptions { point_mm: Some([0.0, 0.0, -300.0]), ..Default::default() });
    assert!(matches!(far, Err(Error::PointNotNearDefect { .. })));
    // Bad options and mismatched grids.
    let bad = design_implant(&two, &ImplantOptions { clearance_mm: -1.0, ..Default::default() });
    assert!(matches!(bad, Err(Error::InvalidOption { name: "clearance", .. })));
    let shifted =
        LabelVolume::new(full.data().clone(), full.geometry().with_origin([1.0, 2.0, 3.0]).unwrap()).unwrap();
    assert!(matches!(restore(&full, &shifted), Err(Error::GridMismatch { .. })));
}

#[test]
fn clearance_keeps_the_implant_away_from_bone_and_forcing_works() {
    let (spec, full) = skull([2.0; 3]);
    let (defective, removed) = cut_sphere(&full, spec.outer_point([-0.6, -0.3, 0.7]), 25.0).unwrap();
    let plain = design_implant(&defective, &ImplantOptions::default()).unwrap();
    let gap =
        design_implant(&defective, &ImplantOptions { clearance_mm: 2.0, ..Default::default() }).unwrap();
    assert!(gap.voxels < plain.voxels);
    // No implant voxel within 2 mm of bone (brute force over the 2 mm grid's neighbours).
    let d = defective.data();
    let (nz, ny, nx) = d.dim();
    for ((z, y, x), &v) in gap.labels.data().indexed_iter() {
        if v == 0 {
            continue;
        }
        for (dz, dy, dx) in [(1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, 0, 1), (0, 0, -1)] {
            let (zz, yy, xx) = (z as isize + dz, y as isize + dy, x as isize + dx);
            if zz >= 0 && yy >= 0 && xx >= 0 && (zz as usize) < nz && (yy as usize) < ny && (xx as usize) < nx
            {
                assert_eq!(d[[zz as usize, yy as usize, xx as usize]], 0, "implant voxel 2 mm from bone");
            }
        }
    }
    let patch =
        design_implant(&defective, &ImplantOptions { method: MethodChoice::Patch, ..Default::default() })
            .unwrap();
    assert_eq!(patch.method, Method::Patch);
    assert_eq!(patch.reason, "patch forced");
    assert!(overlap_dice(&patch.labels, &removed).unwrap() > 0.85);
    assert!(count(&plain.labels) == plain.voxels);
}

/// Unit vector.
fn unit(d: [f64; 3]) -> [f64; 3] {
    let n = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt();
    d.map(|v| v / n)
}

#[test]
fn a_bone_flap_goes_through_the_full_thickness_and_no_deeper() {
    let (spec, full) = skull([1.5; 3]);
    let dir = unit([-0.7, 0.2, 0.7]);
    let centre = spec.outer_point(dir);
    // A plate of bone 26 mm under the outer table, about 20 mm under the inner one (as the skull
    // base lies under a low temporal flap).
    let g = *full.geometry();
    let plate_r = (0..3).map(|k| (centre[k] - spec.centre_mm[k]).powi(2)).sum::<f64>().sqrt() - 26.0;
    let with_plate = full
        .with_data(ndarray::Array3::from_shape_fn(full.data().dim(), |(z, y, x)| {
            let p = g.index_to_world([x as f64, y as f64, z as f64]);
            let t = (0..3).map(|k| (p[k] - spec.centre_mm[k]) * dir[k]).sum::<f64>();
            let lateral2 = (0..3).map(|k| (p[k] - spec.centre_mm[k] - t * dir[k]).powi(2)).sum::<f64>();
            let plate = (plate_r - t).abs() <= 1.5 && lateral2 <= 25.0 * 25.0;
            u8::from(full.data()[[z, y, x]] != 0 || plate)
        }))
        .unwrap();
    let plate_voxels = count(&with_plate) - count(&full);
    assert!(plate_voxels > 500, "{plate_voxels}");
    let (flap_cut, flap) = msd_implant::synthetic::cut_flap(&with_plate, centre, 60.0).unwrap();
    // The plate stays whole: the flap is the shell's bone only.
    let plate_taken =
        flap.data().iter().zip(full.data().iter()).filter(|&(&f, &shell)| f != 0 && shell == 0).count();
    assert_eq!(plate_taken, 0, "the flap takes none of the plate");
    assert_eq!(count(&flap_cut), count(&with_plate) - count(&flap));
    let full_minus_flap = msd_implant::synthetic::cut_flap(&full, centre, 60.0).unwrap().1;
    // A ball of the same diameter centred on the outer table reaches 30 mm deep, into the plate.
    let (_, ball) = cut_sphere(&with_plate, centre, 30.0).unwrap();
    let ball_shell = cut_sphere(&full, centre, 30.0).unwrap().1;
    assert!(count(&ball) > count(&ball_shell) + 100, "the ball cuts into the plate");
    // Full thickness: no bone is left on the 25 mm under the flap's centre, and the flap holds the
    // shell's bone inside the outline (about π r² × the local thickness, 15% either way: the
    // shell curves away from the outline's plane).
    let (flap_skull, _) = msd_implant::synthetic::cut_flap(&full, centre, 60.0).unwrap();
    let sampler_bone = |p: [f64; 3]| {
        let i = g.world_to_index(p);
        let [x, y, z] = i.map(|v| v.round() as usize);
        flap_skull.data()[[z, y, x]] != 0
    };
    for k in 0..50 {
        let t = k as f64 * 0.5;
        let p = [0, 1, 2].map(|j| centre[j] - dir[j] * t);
        assert!(!sampler_bone(p), "bone left {t} mm under the flap's centre");
    }
    let thickness = spec.thickness_mm * (1.0 + 0.25 * dir[1]);
    let expected = std::f64::consts::PI * 30.0 * 30.0 * thickness / 1.5f64.powi(3);
    let got = count(&full_minus_flap) as f64;
    assert!((got / expected - 1.0).abs() < 0.15, "{got} voxels, about {expected:.0} expected");
    // Bad arguments are refused.
    assert!(matches!(
        msd_implant::synthetic::cut_flap(&full, centre, -3.0),
        Err(Error::InvalidOption { name: "cut", .. })
    ));
    assert!(matches!(
        msd_implant::synthetic::cut_flap(&full, [0.0, 0.0, 400.0], 30.0),
        Err(Error::InvalidOption { name: "cut", .. })
    ));
}

#[test]
fn auto_mirrors_a_large_one_sided_defect_over_a_feature_the_patch_cannot_restore() {
    // A symmetric skull with a parietal boss on each side (a knob 12 mm high, about 39 mm across):
    // a 90 mm flap over the right one leaves a rim the patch spans flat; the left boss mirrors in.
    let (spec, plain) = skull([2.0; 3]);
    let g = *plain.geometry();
    let boss = |side: f64| {
        let d = unit([0.7 * side, 0.2, 0.7]);
        let p = spec.outer_point(d);
        [0, 1, 2].map(|k| p[k] - 10.0 * d[k])
    };
    let (left, right) = (boss(1.0), boss(-1.0));
    let full = plain
        .with_data(ndarray::Array3::from_shape_fn(plain.data().dim(), |(z, y, x)| {
            let p = g.index_to_world([x as f64, y as f64, z as f64]);
            let r = (0..3).map(|k| (p[k] - spec.centre_mm[k]).powi(2)).sum::<f64>().sqrt();
            let outer = {
                let q = spec.outer_point([0, 1, 2].map(|k| p[k] - spec.centre_mm[k]));
                (0..3).map(|k| (q[k] - spec.centre_mm[k]).powi(2)).sum::<f64>().sqrt()
            };
            let near = |c: [f64; 3]| (0..3).map(|k| (p[k] - c[k]).powi(2)).sum::<f64>() <= 22.0 * 22.0;
            let knob = (near(left) || near(right)) && r >= outer - 2.0;
            u8::from(plain.data()[[z, y, x]] != 0 || knob)
        }))
        .unwrap();
    let centre = msd_implant::synthetic::outer_surface_point(&full, [-0.7, 0.2, 0.7]).unwrap().unwrap();
    let (defective, removed) = msd_implant::synthetic::cut_flap(&full, centre, 90.0).unwrap();
    let auto = design_implant(&defective, &ImplantOptions::default()).unwrap();
    let patch =
        design_implant(&defective, &ImplantOptions { method: MethodChoice::Patch, ..Default::default() })
            .unwrap();
    let (auto_dice, patch_dice) =
        (overlap_dice(&auto.labels, &removed).unwrap(), overlap_dice(&patch.labels, &removed).unwrap());
    println!("auto {} Dice {auto_dice:.3} ({}); patch Dice {patch_dice:.3}", auto.method.name(), auto.reason);
    assert_eq!(auto.method, Method::Mirror, "{}", auto.reason);
    assert!(auto_dice > 0.9 && auto_dice > patch_dice + 0.02, "auto {auto_dice}, patch {patch_dice}");
}
