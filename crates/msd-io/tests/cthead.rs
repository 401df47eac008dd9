//! The shared CThead volumes read with the geometry their `meta.json` records.
#![allow(clippy::needless_range_loop)] // index loops over 3-vectors read like the formulas
use std::path::PathBuf;

fn cthead(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/cthead").join(name)
}

fn meta() -> serde_json::Value {
    let text = std::fs::read_to_string(cthead("meta.json")).expect("meta.json");
    serde_json::from_str(&text).expect("meta.json parses")
}

fn triple(v: &serde_json::Value) -> [f64; 3] {
    let a = v.as_array().expect("array");
    [a[0].as_f64().unwrap(), a[1].as_f64().unwrap(), a[2].as_f64().unwrap()]
}

#[test]
#[cfg_attr(not(msd_shared_data), ignore = "needs ../shared/data")]
fn ct_has_the_meta_json_geometry_and_hu_range() {
    let meta = meta();
    let ct = msd_io::read_volume(cthead("ct.nii.gz")).unwrap();
    let dims = triple(&meta["dims_xyz"]);
    assert_eq!(ct.shape(), [dims[2] as usize, dims[1] as usize, dims[0] as usize]);
    let g = ct.geometry();
    let (spacing, origin) = (triple(&meta["spacing_xyz_mm"]), triple(&meta["origin_lps_mm"]));
    for k in 0..3 {
        assert!((g.spacing()[k] - spacing[k]).abs() < 1e-6, "spacing {:?}", g.spacing());
        assert!((g.origin()[k] - origin[k]).abs() < 1e-4, "origin {:?}", g.origin());
        for j in 0..3 {
            let want = if j == k { 1.0 } else { 0.0 };
            assert!((g.direction()[k][j] - want).abs() < 1e-9, "direction {:?}", g.direction());
        }
    }
    let min = ct.data().iter().copied().fold(f32::INFINITY, f32::min);
    let max = ct.data().iter().copied().fold(f32::NEG_INFINITY, f32::max);
    assert_eq!(min as f64, meta["hu_min"].as_f64().unwrap());
    assert_eq!(max as f64, meta["hu_max"].as_f64().unwrap());
    let above = ct.data().iter().filter(|&&v| v >= 300.0).count();
    assert_eq!(above as u64, meta["segmentation"]["voxels_above_threshold"].as_u64().unwrap());
}

#[test]
#[cfg_attr(not(msd_shared_data), ignore = "needs ../shared/data")]
fn skull_label_reads_as_labels_on_the_ct_grid() {
    let meta = meta();
    let ct = msd_io::nifti::read_header(cthead("ct.nii.gz")).unwrap();
    let skull = msd_io::read_labels(cthead("skull_ref.nii.gz")).unwrap();
    assert_eq!(skull.shape(), ct.shape);
    skull.geometry().check_same_grid(&ct.geometry, 1e-4).unwrap();
    let ones = skull.data().iter().filter(|&&v| v == 1).count();
    assert_eq!(ones as u64, meta["segmentation"]["skull_voxels"].as_u64().unwrap());
    // The defect centre index recorded in meta.json maps to the recorded world point.
    let idx = triple(&meta["defect"]["defect_centre_index_xyz"]);
    let world = triple(&meta["defect"]["defect_centre_world_lps_mm"]);
    let p = skull.geometry().index_to_world(idx);
    for k in 0..3 {
        assert!((p[k] - world[k]).abs() < 1.0, "{p:?} vs {world:?}");
    }
}

#[test]
#[cfg_attr(not(msd_shared_data), ignore = "needs ../shared/data")]
fn ct_round_trips_through_nifti_and_matches_the_nifti_crate() {
    let ct = msd_io::read_volume(cthead("ct.nii.gz")).unwrap();
    let as_i16 = ct.map(|&v| v as i16);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ct.nii.gz");
    msd_io::write_volume(&out, &as_i16).unwrap();
    let back = msd_io::read_volume(&out).unwrap();
    assert_eq!(back.data(), ct.data());
    back.geometry().check_same_grid(ct.geometry(), 1e-5).unwrap();
    // An independent reader (the `nifti` crate) sees the same values in our file, x fastest.
    use nifti::{IntoNdArray, NiftiObject, ReaderOptions};
    let obj = ReaderOptions::new().read_file(&out).unwrap();
    let arr = obj.into_volume().into_ndarray::<f32>().unwrap();
    let [nz, ny, nx] = ct.shape();
    assert_eq!(arr.shape(), &[nx, ny, nz]);
    for &(z, y, x) in &[(0, 0, 0), (50, 120, 100), (112, 249, 231), (70, 30, 200)] {
        assert_eq!(arr[[x, y, z]], ct.data()[[z, y, x]]);
    }
}
