//! Real data: the CThead reference skull (label and STL made by other tools). Ignored, not passed,
//! when ../shared/data is absent.
use std::path::PathBuf;

use msd_geom::{label_surface, read_mesh, voxelize};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/cthead").join(name)
}

fn dice(a: &ndarray::Array3<u8>, b: &ndarray::Array3<u8>) -> f64 {
    let (mut both, mut na, mut nb) = (0usize, 0usize, 0usize);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (x != 0, y != 0);
        both += (x && y) as usize;
        na += x as usize;
        nb += y as usize;
    }
    2.0 * both as f64 / (na + nb) as f64
}

#[test]
#[cfg_attr(not(msd_shared_data), ignore = "needs ../shared/data")]
fn reference_stl_reads_welded_and_watertight() {
    let m = read_mesh(data("skull_ref.stl")).unwrap();
    assert_eq!(m.triangles().len(), 299_998);
    assert_eq!(m.vertices().len(), 149_581);
    let c = m.check();
    assert!(c.is_watertight() && c.is_edge_manifold(), "{c:?}");
    assert_eq!(c.euler_characteristic, -418);
    // meta.json: area 303157.9 mm², volume 817.37 ml (VTK's figures).
    assert!((m.area() / 303_157.9 - 1.0).abs() < 1e-4, "area {}", m.area());
    assert!((m.enclosed_volume() / 817_370.0 - 1.0).abs() < 1e-4, "volume {}", m.enclosed_volume());
}

#[test]
#[cfg_attr(not(msd_shared_data), ignore = "needs ../shared/data")]
fn label_mesh_label_round_trip_and_stl_to_label() {
    let labels = msd_io::read_labels(data("skull_ref.nii.gz")).unwrap();
    let mesh = label_surface(&labels, 1).unwrap();
    let c = mesh.check();
    assert!(c.is_watertight() && c.is_edge_manifold(), "{c:?}");
    let back = voxelize(&mesh, labels.geometry(), labels.shape()).unwrap();
    let d = dice(labels.data(), back.data());
    eprintln!("label → mesh → label Dice {d}");
    assert!(d >= 0.999, "label → mesh → label Dice {d}");

    let stl = read_mesh(data("skull_ref.stl")).unwrap();
    let from_stl = voxelize(&stl, labels.geometry(), labels.shape()).unwrap();
    let d = dice(labels.data(), from_stl.data());
    eprintln!("skull_ref.stl → label Dice {d}");
    assert!(d >= 0.99, "skull_ref.stl → label Dice {d}");
}

#[test]
#[cfg_attr(not(msd_shared_data), ignore = "needs ../shared/data")]
fn icp_recovers_a_known_motion_of_the_reference_skull() {
    use msd_geom::{AlignOptions, align_icp, align_to_volume};
    let fixed = read_mesh(data("skull_ref.stl")).unwrap();
    // 9° about an oblique axis and a 18 mm translation.
    let (axis, angle) = ([0.3f64, -0.5, 0.81], 9.0f64.to_radians());
    let n = (axis[0] * axis[0] + axis[1] * axis[1] + axis[2] * axis[2]).sqrt();
    let k = axis.map(|v| v / n);
    let (s, c) = angle.sin_cos();
    let mut m = [[0.0; 4]; 4];
    for i in 0..3 {
        for j in 0..3 {
            let kx = [[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]];
            m[i][j] = if i == j { c } else { 0.0 } + s * kx[i][j] + (1.0 - c) * k[i] * k[j];
        }
    }
    m[0][3] = 10.0;
    m[1][3] = -12.0;
    m[2][3] = 8.0;
    m[3][3] = 1.0;
    let moving = fixed.transformed(&m);
    let a = align_icp(&moving, &fixed, &AlignOptions::default()).unwrap();
    eprintln!("ICP mesh → mesh: {a:?}");
    assert!(a.rms_mm <= 0.1, "{a:?}");

    // Against the CT itself: its 300 HU surface (the level the reference was made at).
    let ct = msd_io::read_volume(data("ct.nii.gz")).unwrap();
    // The CT surface is not the reference mesh, so the residual stays near 0.5 mm: stop at 1 µm steps.
    let options = AlignOptions { tolerance_mm: 1e-3, ..AlignOptions::default() };
    let a = align_to_volume(&moving, &ct, 300.0, &options).unwrap();
    let back = moving.transformed(&a.transform);
    let worst = back
        .vertices()
        .iter()
        .zip(fixed.vertices())
        .map(|(p, q)| ((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2) + (p[2] - q[2]).powi(2)).sqrt())
        .fold(0.0f32, f32::max);
    eprintln!("ICP mesh → CT: {a:?}, largest vertex error {worst} mm");
    assert!(worst < 1.0, "{a:?} worst {worst}");
}
