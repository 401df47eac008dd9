//! The typed readers (`read_labels` straight to `u8`, `read_volume_native`; NIfTI and NRRD) against
//! the `f32` path they replace: the same values, the same first offending voxel, for every stored
//! type, on volumes large enough to span several read buffers and parallel pieces.
use msd_io::{Error, Geometry, NativeVolume, Volume, VoxelType};
use ndarray::Array3;
use proptest::prelude::*;

/// The reference: read as `f32`, check every value is a label, convert (the reader before the
/// typed paths).
fn labels_reference(path: &std::path::Path) -> Result<Volume<u8>, ([usize; 3], f64)> {
    let volume = msd_io::read_volume(path).unwrap();
    if let Some(((z, y, x), &v)) =
        volume.data().indexed_iter().find(|(_, v)| !(v.fract() == 0.0 && (0.0..=255.0).contains(*v)))
    {
        return Err(([z, y, x], f64::from(v)));
    }
    Ok(volume.map(|&v| v as u8))
}

fn check_labels(path: &std::path::Path) {
    match (msd_io::read_labels(path), labels_reference(path)) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(Error::NotLabels { index, value, .. }), Err((i, v))) => {
            assert_eq!((index, value), (i, v));
        }
        (a, b) => panic!("typed {:?} vs reference {:?}", a.map(|v| v.shape()), b.map(|v| v.shape())),
    }
}

fn volume<T: Copy>(shape: (usize, usize, usize), seed: u64, f: impl Fn(u64) -> T) -> Volume<T> {
    let mut s = seed | 1;
    let data = Array3::from_shape_simple_fn(shape, || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        f(s)
    });
    Volume::new(data, Geometry::new([0.5, 0.7, 1.5], [1.0, -2.0, 3.0], Geometry::IDENTITY).unwrap()).unwrap()
}

fn round_trip<T: VoxelType>(v: &Volume<T>, name: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    msd_io::write_volume(&path, v).unwrap();
    (dir, path)
}

#[test]
fn large_labels_of_every_type_match_the_f32_path() {
    // 343 000 voxels: more than one read buffer (262 144 values) and many parallel pieces.
    let shape = (70, 70, 70);
    for name in ["l.nii.gz", "l.nii", "l.nrrd"] {
        let (_d, p) = round_trip(&volume(shape, 1, |s| (s % 4) as u8), name);
        check_labels(&p);
        let (_d, p) = round_trip(&volume(shape, 2, |s| (s % 300) as i16 - 5), name);
        check_labels(&p);
        let (_d, p) = round_trip(&volume(shape, 3, |s| (s % 3) as u16), name);
        check_labels(&p);
        let (_d, p) = round_trip(&volume(shape, 4, |s| (s % 7) as f32 * 0.5), name);
        check_labels(&p);
        let (_d, p) =
            round_trip(&volume(shape, 5, |s| if s % 100_000 == 7 { 256 } else { (s % 2) as i32 }), name);
        check_labels(&p);
    }
}

#[test]
fn native_reads_hold_the_f32_values() {
    let shape = (40, 50, 70);
    let (_d, p) = round_trip(&volume(shape, 9, |s| (s % 4000) as i16 - 1024), "ct.nii.gz");
    let native = msd_io::read_volume_native(&p).unwrap();
    assert!(matches!(native, NativeVolume::I16(_)));
    let reference = msd_io::read_volume(&p).unwrap();
    let s = native.summary();
    let lo = reference.data().iter().copied().fold(f32::INFINITY, f32::min);
    let hi = reference.data().iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mean = reference.data().iter().map(|&v| f64::from(v)).sum::<f64>() / reference.len() as f64;
    assert_eq!((s.min, s.max, s.mean, s.non_finite), (lo, hi, mean, 0));
    assert_eq!(native.into_f32(), reference);
    let (_d, p) = round_trip(&volume(shape, 10, |s| (s % 2) as u8), "m.nii");
    assert!(matches!(msd_io::read_volume_native(&p).unwrap(), NativeVolume::U8(_)));
    assert_eq!(msd_io::read_volume_native(&p).unwrap().into_f32(), msd_io::read_volume(&p).unwrap());
    let (_d, p) = round_trip(&volume(shape, 11, |s| (s % 9) as f32 - 0.5), "f.nii.gz");
    assert_eq!(msd_io::read_volume_native(&p).unwrap(), NativeVolume::F32(msd_io::read_volume(&p).unwrap()));
}

#[test]
fn truncated_label_file_is_a_typed_error() {
    let (_d, p) = round_trip(&volume((30, 30, 30), 12, |s| (s % 2) as u8), "t.nii");
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() - 100]).unwrap();
    assert!(matches!(msd_io::read_labels(&p), Err(Error::Truncated { .. })), "{:?}", msd_io::read_labels(&p));
}

#[test]
fn nrrd_raw_detached_and_ascii_labels_match_the_f32_path() {
    use msd_io::nrrd::{self, Encoding, WriteOptions};
    let shape = (70, 70, 70);
    let raw = WriteOptions { encoding: Encoding::Raw, ..Default::default() };
    let detached = WriteOptions { detached: true, ..Default::default() };
    for (options, name) in [(&raw, "raw.nrrd"), (&detached, "d.nhdr")] {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(name);
        nrrd::write(&p, &volume(shape, 21, |s| (s % 4) as u8), options).unwrap();
        check_labels(&p);
        assert!(matches!(msd_io::read_volume_native(&p).unwrap(), NativeVolume::U8(_)));
        nrrd::write(&p, &volume(shape, 22, |s| if s % 50_000 == 3 { -1 } else { (s % 9) as i16 }), options)
            .unwrap();
        check_labels(&p);
        let native = msd_io::read_volume_native(&p).unwrap();
        assert!(matches!(native, NativeVolume::I16(_)));
        assert_eq!(native.into_f32(), msd_io::read_volume(&p).unwrap());
    }
    // Files written elsewhere: gzip int16 (SimpleITK), detached big-endian float, ascii uint8.
    let fixtures = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/nrrd");
    for name in ["sitk_int16_gzip.nrrd", "pynrrd_float_be.nhdr", "pynrrd_uint8_ascii.nrrd"] {
        let p = fixtures.join(name);
        check_labels(&p);
        assert_eq!(msd_io::read_volume_native(&p).unwrap().into_f32(), msd_io::read_volume(&p).unwrap());
    }
}

/// A raw big-endian NRRD with a line skip and a byte skip, written by hand.
#[test]
fn nrrd_big_endian_with_skips_reads_the_same_typed() {
    let (nx, ny, nz) = (300usize, 200, 9);
    let values: Vec<u16> = (0..nx * ny * nz).map(|i| (i % 251) as u16).collect();
    let mut b = format!(
        "NRRD0004\ntype: ushort\ndimension: 3\nsizes: {nx} {ny} {nz}\nendian: big\nencoding: raw\n\
         line skip: 1\nbyte skip: 3\nspacings: 0.5 0.5 2\n\nskipped line\nabc"
    )
    .into_bytes();
    for v in &values {
        b.extend_from_slice(&v.to_be_bytes());
    }
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("be.nrrd");
    std::fs::write(&p, &b).unwrap();
    check_labels(&p);
    let labels = msd_io::read_labels(&p).unwrap();
    assert_eq!(labels.data()[[4, 7, 11]], ((4 * nx * ny + 7 * nx + 11) % 251) as u8);
    let native = msd_io::read_volume_native(&p).unwrap();
    let NativeVolume::U16(v) = &native else { panic!("{native:?}") };
    assert_eq!(v.data().as_slice().unwrap(), values.as_slice());
    assert_eq!(native.into_f32(), msd_io::read_volume(&p).unwrap());
    // Cut short: a typed error from both typed readers.
    std::fs::write(&p, &b[..b.len() - 5]).unwrap();
    assert!(matches!(msd_io::read_labels(&p), Err(Error::Truncated { .. })));
    assert!(matches!(msd_io::read_volume_native(&p), Err(Error::Truncated { .. })));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn labels_match_the_f32_path(
        seed in any::<u64>(),
        shape in (1usize..9, 1usize..9, 1usize..9),
        bad in 0u64..4,
    ) {
        // Mostly labels; with `bad` > 0 some voxels are out of range, fractional or negative.
        let (_d, p) = round_trip(&volume(shape, seed, |s| match (bad, s % 37) {
            (1, 0) => 300.0f32,
            (2, 0) => 1.5,
            (3, 0) => -1.0,
            _ => (s % 5) as f32,
        }), "p.nii.gz");
        check_labels(&p);
        let (_d, p) = round_trip(&volume(shape, seed, |s| (s % 260) as u16), "q.nii");
        check_labels(&p);
        let (_d, p) = round_trip(&volume(shape, seed, |s| (s % 260) as u16), "q.nrrd");
        check_labels(&p);
    }
}

/// The header-only read gives the grid the full read gives, for every format, and reads no voxel:
/// it succeeds where the voxel data is cut short (#18: nothing decoded that is not needed).
#[test]
fn volume_header_matches_the_full_read_without_reading_voxels() {
    let v = volume((20, 30, 40), 31, |s| (s % 7) as i16);
    for name in ["h.nii.gz", "h.nii", "h.nrrd", "h.nhdr"] {
        let (_d, p) = round_trip(&v, name);
        let full = msd_io::read_volume(&p).unwrap();
        let header = msd_io::read_volume_header(&p).unwrap();
        assert_eq!((header.shape, header.geometry), (full.shape(), *full.geometry()), "{name}");
    }
    for name in ["cut.nii", "cut.nrrd"] {
        let (_d, p) = round_trip(&v, name);
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 1000]).unwrap();
        assert!(msd_io::read_volume(&p).is_err(), "{name}");
        assert_eq!(msd_io::read_volume_header(&p).unwrap().shape, [20, 30, 40], "{name}");
    }
}
