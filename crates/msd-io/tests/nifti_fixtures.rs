//! NIfTI-1 files written by nibabel (`tests/data/nifti/make_fixtures.py`): a qform-only file with a
//! reflection (qfac −1) and a gzip sform file with `scl_slope` / `scl_inter`. Values and LPS geometry
//! must match what nibabel recorded.
#![allow(clippy::needless_range_loop)] // index loops over 3-vectors read like the formulas
use std::path::PathBuf;

use serde_json::Value;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/nifti")
}

fn check(name: &str, transform: msd_io::nifti::TransformSource) {
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(dir().join("expected.json")).unwrap()).unwrap();
    let e = &expected[name];
    let header = msd_io::nifti::read_header(dir().join(name)).unwrap();
    assert_eq!(header.transform, transform, "{name}");
    let v = msd_io::read_volume(dir().join(name)).unwrap();
    assert_eq!(v.shape(), [3, 4, 5], "{name}");
    let want: Vec<f32> =
        e["scaled_zyx"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
    assert_eq!(v.data().iter().copied().collect::<Vec<_>>(), want, "{name}");
    let g = v.geometry();
    for k in 0..3 {
        assert!(
            (g.spacing()[k] - e["spacing"][k].as_f64().unwrap()).abs() < 1e-5,
            "{name} spacing {:?}",
            g.spacing()
        );
        assert!(
            (g.origin()[k] - e["origin_lps"][k].as_f64().unwrap()).abs() < 1e-5,
            "{name} origin {:?}",
            g.origin()
        );
        for j in 0..3 {
            let d = e["direction_lps"][k][j].as_f64().unwrap();
            assert!((g.direction()[k][j] - d).abs() < 1e-5, "{name} direction {:?}", g.direction());
        }
    }
}

#[test]
fn nibabel_qform_only_with_reflection() {
    check("nibabel_qform_only.nii", msd_io::nifti::TransformSource::Qform(1));
}

#[test]
fn nibabel_sform_with_scaling() {
    check("nibabel_sform_scaled.nii.gz", msd_io::nifti::TransformSource::Sform(2));
}
