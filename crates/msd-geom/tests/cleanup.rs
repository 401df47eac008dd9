//! Smoothing, decimation, cavity filling, components and ICP on synthetic shapes with known answers.
use msd_geom::{
    AlignOptions, DecimateOptions, Mesh, SmoothOptions, align_icp, decimate, label_surface, marching_cubes,
    smooth_taubin,
};
use msd_io::{Geometry, LabelVolume, Volume};
use ndarray::Array3;
use parry3d::math::Vector;
use parry3d::query::PointQuery;
use parry3d::shape::TriMesh;

fn ball_label(radius: f64, spacing: [f64; 3]) -> LabelVolume {
    let n = [0, 1, 2].map(|k| (2.0 * radius / spacing[k]) as usize + 5);
    let g = Geometry::new(spacing, [0.0; 3], Geometry::IDENTITY).unwrap();
    let c = [0, 1, 2].map(|k| (n[k] - 1) as f64 * spacing[k] / 2.0 + 0.2);
    let a = Array3::from_shape_fn((n[2], n[1], n[0]), |(z, y, x)| {
        let p = [x as f64 * spacing[0] - c[0], y as f64 * spacing[1] - c[1], z as f64 * spacing[2] - c[2]];
        ((p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt() <= radius) as u8
    });
    LabelVolume::new(a, g).unwrap()
}

/// Largest distance from the vertices of `a` to the surface `b` (mm).
fn max_distance(a: &Mesh, b: &Mesh) -> f64 {
    let shape = TriMesh::new(
        b.vertices().iter().map(|p| Vector::new(p[0], p[1], p[2])).collect(),
        b.triangles().to_vec(),
    )
    .unwrap();
    a.vertices()
        .iter()
        .map(|p| shape.distance_to_local_point(Vector::new(p[0], p[1], p[2]), false) as f64)
        .fold(0.0, f64::max)
}

#[test]
fn taubin_removes_the_staircase_and_keeps_the_volume() {
    let r = 12.0;
    let raw = label_surface(&ball_label(r, [1.0, 1.0, 1.5]), 1).unwrap();
    let smooth = smooth_taubin(&raw, &SmoothOptions::default()).unwrap();
    assert!(smooth.check().is_watertight());
    let dv = smooth.enclosed_volume() / raw.enclosed_volume() - 1.0;
    assert!(dv.abs() < 1e-3, "volume change {dv}");
    // The staircase inflates the area; smoothing brings it toward the sphere's.
    let sphere = 4.0 * std::f64::consts::PI * r * r;
    assert!(
        (smooth.area() - sphere).abs() < 0.5 * (raw.area() - sphere).abs(),
        "{} {}",
        raw.area(),
        smooth.area()
    );
    // Without the volume correction, Taubin still shrinks far less than plain Laplacian would.
    let plain = SmoothOptions { preserve_volume: false, ..SmoothOptions::default() };
    let dv = smooth_taubin(&raw, &plain).unwrap().enclosed_volume() / raw.enclosed_volume() - 1.0;
    assert!(dv.abs() < 0.02, "{dv}");
    assert!(smooth_taubin(&raw, &SmoothOptions { mu: 0.3, ..plain }).is_err());
}

#[test]
fn decimation_reaches_the_target_within_the_deviation() {
    let g = Geometry::new([0.8, 0.8, 0.8], [0.0; 3], Geometry::IDENTITY).unwrap();
    let v = Volume::new(
        Array3::from_shape_fn((40, 40, 40), |(z, y, x)| {
            let p = [x as f64 - 19.3, y as f64 - 19.6, z as f64 - 19.5];
            (15.0 - (p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt()) as f32
        }),
        g,
    )
    .unwrap();
    let sphere = marching_cubes(&v, 0.0).unwrap();
    let target = sphere.triangles().len() / 10;
    let d = decimate(&sphere, &DecimateOptions { target_triangles: target, max_deviation_mm: 0.2 }).unwrap();
    assert!(d.reached_target, "stopped at {}", d.mesh.triangles().len());
    assert!(d.mesh.triangles().len() <= target);
    let c = d.mesh.check();
    assert!(c.is_watertight() && c.is_edge_manifold() && c.euler_characteristic == 2, "{c:?}");
    assert!(d.max_deviation_mm <= 0.2);
    let measured = max_distance(&d.mesh, &sphere);
    assert!(measured <= 0.2, "vertices {measured} mm from the original");
    assert!((d.mesh.enclosed_volume() / sphere.enclosed_volume() - 1.0).abs() < 0.01);
    // A tight bound stops early instead of deviating.
    let tight =
        decimate(&sphere, &DecimateOptions { target_triangles: 100, max_deviation_mm: 0.01 }).unwrap();
    assert!(!tight.reached_target && max_distance(&tight.mesh, &sphere) <= 0.011);
}

#[test]
fn icp_recovers_a_rigid_motion_of_an_ellipsoid_with_a_bump() {
    let g = Geometry::new([1.0; 3], [0.0; 3], Geometry::IDENTITY).unwrap();
    // An asymmetric shape so the pose is unique.
    let v = Volume::new(
        Array3::from_shape_fn((40, 50, 60), |(z, y, x)| {
            let p = [(x as f64 - 30.0) / 25.0, (y as f64 - 25.0) / 18.0, (z as f64 - 20.0) / 12.0];
            let bump = [(x as f64 - 45.0) / 6.0, (y as f64 - 35.0) / 6.0, (z as f64 - 25.0) / 6.0];
            let e = 1.0 - (p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt();
            let b = 1.0 - (bump[0] * bump[0] + bump[1] * bump[1] + bump[2] * bump[2]).sqrt();
            e.max(b) as f32
        }),
        g,
    )
    .unwrap();
    let fixed = marching_cubes(&v, 0.0).unwrap();
    let (s, c) = (0.15f64.sin(), 0.15f64.cos());
    let motion = [[c, -s, 0.0, 12.0], [s, c, 0.0, -9.0], [0.0, 0.0, 1.0, 7.0], [0.0, 0.0, 0.0, 1.0]];
    let moving = fixed.transformed(&motion);
    let a = align_icp(&moving, &fixed, &AlignOptions::default()).unwrap();
    assert!(a.rms_mm < 0.01, "{a:?}");
    let back = moving.transformed(&a.transform);
    let err = back
        .vertices()
        .iter()
        .zip(fixed.vertices())
        .map(|(p, q)| ((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2) + (p[2] - q[2]).powi(2)).sqrt());
    assert!(err.fold(0.0f32, f32::max) < 0.05);
}

#[test]
fn components_drop_noise() {
    let mut a = ball_label(6.0, [1.0; 3]).into_parts().0;
    a[[0, 0, 0]] = 1;
    a[[0, 0, 2]] = 1;
    let v = LabelVolume::new(a, Geometry::default()).unwrap();
    let m = label_surface(&v, 1).unwrap();
    assert_eq!(m.connected_components().sizes.len(), 3);
    let clean = m.keep_largest_components(1);
    assert_eq!(clean.connected_components().sizes.len(), 1);
    assert!(clean.check().is_watertight());
    assert_eq!(m.drop_small_components(9).connected_components().sizes.len(), 1);
}
