//! NRRD files written by other tools (SimpleITK's ITK NrrdIO and pynrrd, see
//! `tests/data/nrrd/make_fixtures.py`): attached gzip LPS, detached big-endian raw RAS, and ascii
//! with `spacings` only. Values and LPS geometry must match what those tools recorded.
#![allow(clippy::needless_range_loop)] // index loops over 3-vectors read like the formulas
use std::path::PathBuf;

use serde_json::Value;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/nrrd")
}

fn check(name: &str) {
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(dir().join("expected.json")).unwrap()).unwrap();
    let e = &expected[name];
    let v = msd_io::read_volume(dir().join(name)).unwrap();
    let shape: Vec<usize> =
        e["shape_zyx"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect();
    assert_eq!(v.shape().as_slice(), shape.as_slice(), "{name}");
    let want: Vec<f32> =
        e["values_zyx"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
    assert_eq!(v.data().iter().copied().collect::<Vec<_>>(), want, "{name}");
    let g = v.geometry();
    for k in 0..3 {
        assert!(
            (g.spacing()[k] - e["spacing"][k].as_f64().unwrap()).abs() < 1e-9,
            "{name} spacing {:?}",
            g.spacing()
        );
        assert!(
            (g.origin()[k] - e["origin_lps"][k].as_f64().unwrap()).abs() < 1e-9,
            "{name} origin {:?}",
            g.origin()
        );
        for j in 0..3 {
            let d = e["direction_lps"][k][j].as_f64().unwrap();
            assert!((g.direction()[k][j] - d).abs() < 1e-9, "{name} direction {:?}", g.direction());
        }
    }
}

#[test]
fn simpleitk_gzip_lps_oblique() {
    check("sitk_int16_gzip.nrrd");
}

#[test]
fn pynrrd_detached_big_endian_ras() {
    check("pynrrd_float_be.nhdr");
}

#[test]
fn pynrrd_ascii_with_spacings() {
    check("pynrrd_uint8_ascii.nrrd");
}

#[test]
fn labels_from_an_ascii_nrrd() {
    let l = msd_io::read_labels(dir().join("pynrrd_uint8_ascii.nrrd")).unwrap();
    assert_eq!(l.data()[[2, 3, 4]], ((2 * 20 + 3 * 5 + 4) % 7) as u8);
}
