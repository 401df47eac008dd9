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
