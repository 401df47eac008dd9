//! Property tests: volumes written as NIfTI-1 or NRRD read back identical, geometry included.
#![allow(clippy::needless_range_loop)] // index loops over 3-vectors read like the formulas
use msd_io::{Geometry, Volume, VoxelType};
use ndarray::Array3;
use proptest::prelude::*;

/// A random rotation (unit quaternion), optionally with a reflection of the third axis.
fn direction(q: [f64; 4], reflect: bool) -> [[f64; 3]; 3] {
    let n = q.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-9);
    let [a, b, c, d] = q.map(|v| v / n);
    let mut m = [
        [a * a + b * b - c * c - d * d, 2.0 * (b * c - a * d), 2.0 * (b * d + a * c)],
        [2.0 * (b * c + a * d), a * a + c * c - b * b - d * d, 2.0 * (c * d - a * b)],
        [2.0 * (b * d - a * c), 2.0 * (c * d + a * b), a * a + d * d - c * c - b * b],
    ];
    if reflect {
        for row in m.iter_mut() {
            row[2] = -row[2];
        }
    }
    m
}

fn geometry() -> impl Strategy<Value = Geometry> {
    (
        prop::array::uniform3(0.05f64..5.0),
        prop::array::uniform3(-500.0f64..500.0),
        prop::array::uniform4(-1.0f64..1.0),
        any::<bool>(),
    )
        .prop_filter("non-degenerate quaternion", |(_, _, q, _)| q.iter().map(|v| v * v).sum::<f64>() > 1e-3)
        .prop_map(|(s, o, q, r)| Geometry::new(s, o, direction(q, r)).unwrap())
}

fn volume<T: std::fmt::Debug + Clone>(
    values: impl Strategy<Value = T> + Clone,
) -> impl Strategy<Value = Volume<T>> {
    (1usize..6, 1usize..7, 1usize..8, geometry()).prop_flat_map(move |(z, y, x, g)| {
        prop::collection::vec(values.clone(), z * y * x)
            .prop_map(move |v| Volume::new(Array3::from_shape_vec((z, y, x), v).unwrap(), g).unwrap())
    })
}

fn assert_geometry_close(a: &Geometry, b: &Geometry, tol: f64) {
    let rel = |x: f64, y: f64| (x - y).abs() <= tol * (1.0 + x.abs().max(y.abs()));
    for k in 0..3 {
        assert!(rel(a.spacing()[k], b.spacing()[k]), "spacing {:?} vs {:?}", a.spacing(), b.spacing());
        assert!(rel(a.origin()[k], b.origin()[k]), "origin {:?} vs {:?}", a.origin(), b.origin());
        for j in 0..3 {
            assert!(
                rel(a.direction()[k][j], b.direction()[k][j]),
                "direction {:?} vs {:?}",
                a.direction(),
                b.direction()
            );
        }
    }
}

/// Writes `v` to `name`, reads it back, and checks values exactly and geometry within `tol`.
fn round_trip<T: VoxelType + Into<f64> + std::fmt::Debug>(v: &Volume<T>, name: &str, tol: f64) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    msd_io::write_volume(&path, v).unwrap();
    let back = msd_io::read_volume(&path).unwrap();
    assert_eq!(back.shape(), v.shape());
    for (a, b) in back.data().iter().zip(v.data().iter()) {
        let want: f64 = (*b).into();
        assert_eq!(f64::from(*a), want as f32 as f64);
    }
    assert_geometry_close(back.geometry(), v.geometry(), tol);
    // The folder holds nothing but the output (no temporary files left behind).
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(names.iter().all(|n| !n.to_string_lossy().starts_with(".msd-io-")), "{names:?}");
}

const NIFTI_TOL: f64 = 2e-6; // header floats are f32
// NRRD stores direction × spacing as shortest round-trip decimals; splitting the product back into
// spacing and unit direction costs an ulp or two.
const NRRD_TOL: f64 = 1e-12;

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn u8_round_trips(v in volume(any::<u8>()), gz in any::<bool>()) {
        round_trip(&v, if gz { "a.nii.gz" } else { "a.nii" }, NIFTI_TOL);
        round_trip(&v, if gz { "a.nrrd" } else { "a.nhdr" }, NRRD_TOL);
    }

    #[test]
    fn i16_round_trips(v in volume(any::<i16>()), gz in any::<bool>()) {
        round_trip(&v, if gz { "a.nii.gz" } else { "a.nii" }, NIFTI_TOL);
        round_trip(&v, if gz { "a.nrrd" } else { "a.nhdr" }, NRRD_TOL);
    }

    #[test]
    fn u16_round_trips(v in volume(any::<u16>())) {
        round_trip(&v, "a.nii.gz", NIFTI_TOL);
        round_trip(&v, "a.nrrd", NRRD_TOL);
    }

    #[test]
    fn i32_round_trips(v in volume(-(1i32 << 24)..(1 << 24))) {
        round_trip(&v, "a.nii", NIFTI_TOL);
        round_trip(&v, "a.nhdr", NRRD_TOL);
    }

    #[test]
    fn f32_round_trips(v in volume(-1e6f32..1e6)) {
        round_trip(&v, "a.nii.gz", NIFTI_TOL);
        round_trip(&v, "a.nrrd", NRRD_TOL);
    }

    #[test]
    fn f64_round_trips(v in volume(-1e6f64..1e6)) {
        round_trip(&v, "a.nii", NIFTI_TOL);
        round_trip(&v, "a.nrrd", NRRD_TOL);
    }

    #[test]
    fn labels_round_trip_as_labels(v in volume(any::<u8>())) {
        let dir = tempfile::tempdir().unwrap();
        for name in ["l.nii.gz", "l.nrrd"] {
            let path = dir.path().join(name);
            msd_io::write_volume(&path, &v).unwrap();
            let back = msd_io::read_labels(&path).unwrap();
            prop_assert_eq!(back.data(), v.data());
        }
    }
}

#[test]
fn fractional_values_are_not_labels() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.nrrd");
    let mut data = Array3::<f32>::zeros((2, 2, 2));
    data[[1, 0, 1]] = 2.5;
    msd_io::write_volume(&path, &Volume::new(data, Geometry::default()).unwrap()).unwrap();
    match msd_io::read_labels(&path) {
        Err(msd_io::Error::NotLabels { index, value, .. }) => {
            assert_eq!(index, [1, 0, 1]);
            assert_eq!(value, 2.5);
        }
        other => panic!("expected NotLabels, got {other:?}"),
    }
}
