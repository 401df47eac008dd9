//! Corrupt, truncated and absurd input: each class gets its typed error, never a panic and never an
//! allocation sized by the bad header field.
use std::path::{Path, PathBuf};

use msd_io::{Error, Geometry, Volume};
use ndarray::Array3;

fn small_volume() -> Volume<i16> {
    let data = Array3::from_shape_fn((3, 4, 5), |(z, y, x)| (z * 100 + y * 10 + x) as i16);
    Volume::new(data, Geometry::new([0.5, 0.6, 2.0], [1.0, 2.0, 3.0], Geometry::IDENTITY).unwrap()).unwrap()
}

/// A valid file of `name` (its extension picks the format), as bytes.
fn valid_bytes(dir: &Path, name: &str) -> Vec<u8> {
    let p = dir.join(name);
    msd_io::write_volume(&p, &small_volume()).unwrap();
    std::fs::read(p).unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn put_i16(b: &mut [u8], at: usize, v: i16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

fn put_f32(b: &mut [u8], at: usize, v: f32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

// ---- NIfTI-1 ----

#[test]
fn nifti_truncated_data() {
    let dir = tempfile::tempdir().unwrap();
    let b = valid_bytes(dir.path(), "a.nii");
    let p = write(dir.path(), "t.nii", &b[..b.len() - 7]);
    assert!(matches!(msd_io::read_volume(&p), Err(Error::Truncated { expected: 120, found: 113, .. })));
}

#[test]
fn nifti_truncated_header() {
    let dir = tempfile::tempdir().unwrap();
    let b = valid_bytes(dir.path(), "a.nii");
    let p = write(dir.path(), "t.nii", &b[..200]);
    let err = msd_io::read_volume(&p).unwrap_err();
    assert!(matches!(&err, Error::Malformed { field, .. } if field == "header"), "{err}");
}

#[test]
fn nifti_bad_magic() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = valid_bytes(dir.path(), "a.nii");
    b[344..348].copy_from_slice(b"xyz\0");
    let p = write(dir.path(), "m.nii", &b);
    let err = msd_io::read_volume(&p).unwrap_err();
    assert!(matches!(&err, Error::Malformed { field, .. } if field == "magic"), "{err}");
}

#[test]
fn nifti_bad_sizeof_hdr() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = valid_bytes(dir.path(), "a.nii");
    b[0..4].copy_from_slice(&1234i32.to_le_bytes());
    let p = write(dir.path(), "s.nii", &b);
    assert!(matches!(msd_io::nifti::read(&p), Err(Error::Malformed { .. })));
}

#[test]
fn nifti_dims_exceeding_the_file() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["a.nii", "a.nii.gz"] {
        let mut b = valid_bytes(dir.path(), "a.nii");
        for i in 1..=3 {
            put_i16(&mut b, 40 + 2 * i, 32767); // 3.5e13 voxels announced
        }
        let p = if name.ends_with(".gz") {
            use std::io::Write;
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            enc.write_all(&b).unwrap();
            write(dir.path(), name, &enc.finish().unwrap())
        } else {
            write(dir.path(), name, &b)
        };
        // Refused before anything is allocated: the file (or what it can expand to) is far smaller.
        assert!(matches!(msd_io::read_volume(&p), Err(Error::Truncated { .. })), "{name}");
    }
}

#[test]
fn nifti_zero_and_negative_dims() {
    let dir = tempfile::tempdir().unwrap();
    for bad in [0i16, -5] {
        let mut b = valid_bytes(dir.path(), "a.nii");
        put_i16(&mut b, 46, bad); // dim[3]: slices
        let p = write(dir.path(), "z.nii", &b);
        let err = msd_io::read_volume(&p).unwrap_err();
        assert!(matches!(&err, Error::Malformed { field, .. } if field == "dim[3]"), "{err}");
    }
    let mut b = valid_bytes(dir.path(), "a.nii");
    put_i16(&mut b, 40, 9); // dim[0] out of range
    let p = write(dir.path(), "d.nii", &b);
    assert!(matches!(msd_io::read_volume(&p), Err(Error::Malformed { .. })));
}

#[test]
fn nifti_nan_spacing() {
    let dir = tempfile::tempdir().unwrap();
    // NaN in the sform.
    let mut b = valid_bytes(dir.path(), "a.nii");
    put_f32(&mut b, 280, f32::NAN);
    let p = write(dir.path(), "n.nii", &b);
    let err = msd_io::read_volume(&p).unwrap_err();
    assert!(matches!(&err, Error::Malformed { field, .. } if field.contains("srow")), "{err}");
    // NaN pixdim with neither transform set.
    let mut b = valid_bytes(dir.path(), "a.nii");
    put_i16(&mut b, 252, 0);
    put_i16(&mut b, 254, 0);
    put_f32(&mut b, 84, f32::NAN);
    let p = write(dir.path(), "p.nii", &b);
    let err = msd_io::read_volume(&p).unwrap_err();
    assert!(matches!(&err, Error::Malformed { field, .. } if field == "pixdim"), "{err}");
}

#[test]
fn nifti_unsupported_datatype_and_4d() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = valid_bytes(dir.path(), "a.nii");
    put_i16(&mut b, 70, 32); // complex64
    let p = write(dir.path(), "c.nii", &b);
    assert!(matches!(msd_io::read_volume(&p), Err(Error::Unsupported { .. })));
    let mut b = valid_bytes(dir.path(), "a.nii");
    put_i16(&mut b, 40, 4);
    put_i16(&mut b, 48, 2);
    let p = write(dir.path(), "4d.nii", &b);
    assert!(matches!(msd_io::read_volume(&p), Err(Error::Unsupported { .. })));
}

#[test]
fn nifti_bad_vox_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = valid_bytes(dir.path(), "a.nii");
    put_f32(&mut b, 108, 12.5);
    let p = write(dir.path(), "v.nii", &b);
    let err = msd_io::read_volume(&p).unwrap_err();
    assert!(matches!(&err, Error::Malformed { field, .. } if field == "vox_offset"), "{err}");
}

#[test]
fn nifti_corrupt_gzip_stream() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = valid_bytes(dir.path(), "a.nii.gz");
    let mid = b.len() / 2;
    for v in &mut b[mid..mid + 8] {
        *v ^= 0x5a;
    }
    let p = write(dir.path(), "g.nii.gz", &b);
    assert!(msd_io::read_volume(&p).is_err());
}

// ---- NRRD ----

fn nrrd(dir: &Path, header: &str, data: &[u8]) -> PathBuf {
    let mut b = header.as_bytes().to_vec();
    b.extend_from_slice(data);
    write(dir, "x.nrrd", &b)
}

const GOOD: &str = "NRRD0004\ntype: short\ndimension: 3\nspace: left-posterior-superior\nsizes: 2 2 2\n\
                    space directions: (1,0,0) (0,1,0) (0,0,1)\nendian: little\nencoding: raw\nspace origin: (0,0,0)\n\n";

#[test]
fn nrrd_good_header_reads() {
    let dir = tempfile::tempdir().unwrap();
    let p = nrrd(dir.path(), GOOD, &[1u8; 16]);
    let v = msd_io::read_volume(&p).unwrap();
    assert_eq!(v.data()[[1, 1, 1]], 257.0);
}

#[test]
fn nrrd_truncated_raw_data() {
    let dir = tempfile::tempdir().unwrap();
    let p = nrrd(dir.path(), GOOD, &[1u8; 15]);
    assert!(matches!(msd_io::read_volume(&p), Err(Error::Truncated { expected: 16, found: 15, .. })));
}

#[test]
fn nrrd_truncated_gzip_data() {
    let dir = tempfile::tempdir().unwrap();
    let b = valid_bytes(dir.path(), "a.nrrd");
    let p = write(dir.path(), "t.nrrd", &b[..b.len() - 20]);
    assert!(msd_io::read_volume(&p).is_err());
}

#[test]
fn nrrd_sizes_overflow_or_exceed_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = nrrd(dir.path(), &GOOD.replace("sizes: 2 2 2", "sizes: 18446744073709551615 4 4"), &[0; 16]);
    assert!(matches!(msd_io::read_volume(&p), Err(Error::Malformed { .. })));
    let p = nrrd(dir.path(), &GOOD.replace("sizes: 2 2 2", "sizes: 100000 100000 1000"), &[0; 16]);
    assert!(matches!(msd_io::read_volume(&p), Err(Error::Truncated { .. })));
    let gz =
        GOOD.replace("sizes: 2 2 2", "sizes: 100000 100000 1000").replace("encoding: raw", "encoding: gzip");
    let p = nrrd(dir.path(), &gz, &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0]);
    assert!(matches!(msd_io::read_volume(&p), Err(Error::Truncated { .. })));
}

#[test]
fn nrrd_zero_size_and_wrong_dimension() {
    let dir = tempfile::tempdir().unwrap();
    let p = nrrd(dir.path(), &GOOD.replace("sizes: 2 2 2", "sizes: 2 0 2"), &[0; 16]);
    let err = msd_io::read_volume(&p).unwrap_err();
    assert!(matches!(&err, Error::Malformed { field, .. } if field == "sizes"), "{err}");
    let p = nrrd(dir.path(), &GOOD.replace("dimension: 3", "dimension: 4"), &[0; 16]);
    assert!(matches!(msd_io::read_volume(&p), Err(Error::Unsupported { .. })));
}

#[test]
fn nrrd_nan_spacing() {
    let dir = tempfile::tempdir().unwrap();
    let p = nrrd(dir.path(), &GOOD.replace("(0,1,0)", "(0,nan,0)"), &[0; 16]);
    let err = msd_io::read_volume(&p).unwrap_err();
    assert!(matches!(&err, Error::Malformed { field, .. } if field.contains("space directions")), "{err}");
    let spacings = GOOD
        .replace("space directions: (1,0,0) (0,1,0) (0,0,1)\n", "spacings: 1 NaN 1\n")
        .replace("space: left-posterior-superior\n", "");
    let p = nrrd(dir.path(), &spacings, &[0; 16]);
    assert!(matches!(msd_io::read_volume(&p), Err(Error::Malformed { .. })));
}

#[test]
fn nrrd_bad_magic_and_missing_fields() {
    let dir = tempfile::tempdir().unwrap();
    let p = nrrd(dir.path(), &GOOD.replace("NRRD0004", "NRRD0009"), &[0; 16]);
    let err = msd_io::nrrd::read(&p).unwrap_err();
    assert!(matches!(&err, Error::Malformed { field, .. } if field == "magic"), "{err}");
    let p = nrrd(dir.path(), &GOOD.replace("type: short\n", ""), &[0; 16]);
    let err = msd_io::read_volume(&p).unwrap_err();
    assert!(matches!(&err, Error::Malformed { field, .. } if field == "type"), "{err}");
    let p = nrrd(dir.path(), &GOOD.replace("endian: little\n", ""), &[0; 16]);
    let err = msd_io::read_volume(&p).unwrap_err();
    assert!(matches!(&err, Error::Malformed { field, .. } if field == "endian"), "{err}");
    let p = nrrd(dir.path(), &GOOD.replace("sizes: 2 2 2", "sizes: 2 two 2"), &[0; 16]);
    assert!(matches!(msd_io::read_volume(&p), Err(Error::Malformed { .. })));
}

#[test]
fn nrrd_unsupported_encoding_and_space() {
    let dir = tempfile::tempdir().unwrap();
    let p = nrrd(dir.path(), &GOOD.replace("encoding: raw", "encoding: bzip2"), &[0; 16]);
    assert!(matches!(msd_io::read_volume(&p), Err(Error::Unsupported { .. })));
    let p = nrrd(dir.path(), &GOOD.replace("left-posterior-superior", "scanner-xyz"), &[0; 16]);
    assert!(matches!(msd_io::read_volume(&p), Err(Error::Unsupported { .. })));
}

#[test]
fn nrrd_missing_detached_data_file() {
    let dir = tempfile::tempdir().unwrap();
    let header = GOOD.replace("encoding: raw\n", "encoding: raw\ndata file: nowhere.raw\n");
    let p = write(dir.path(), "d.nhdr", header.as_bytes());
    assert!(matches!(msd_io::read_volume(&p), Err(Error::Io { .. })));
}

// ---- DICOM and format detection ----

fn bundled(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/dicom-conformance").join(rel)
}

#[test]
fn dicom_truncated_pixel_data() {
    let dir = tempfile::tempdir().unwrap();
    let b = std::fs::read(bundled("dcm_qa_ts/In/1.dcm")).unwrap();
    let p = write(dir.path(), "t.dcm", &b[..b.len() - 1000]);
    let err = msd_io::read_volume(&p).unwrap_err();
    assert!(matches!(err, Error::Dicom { .. } | Error::Truncated { .. }), "{err}");
}

#[test]
fn dicom_truncated_header() {
    let dir = tempfile::tempdir().unwrap();
    let b = std::fs::read(bundled("dcm_qa_ts/In/1.dcm")).unwrap();
    let p = write(dir.path(), "h.dcm", &b[..300]);
    assert!(msd_io::read_volume(&p).is_err());
}

#[test]
fn unknown_format_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "mystery.bin", b"hello, this is not an image at all");
    assert!(matches!(msd_io::read_volume(&p), Err(Error::UnknownFormat { .. })));
    let p = write(dir.path(), "empty.nii", b"");
    assert!(matches!(msd_io::read_volume(&p), Err(Error::Malformed { .. })));
    assert!(matches!(msd_io::read_volume(dir.path().join("absent.nii")), Err(Error::Io { .. })));
}

#[test]
fn writing_to_an_unknown_extension_is_refused_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("out.png");
    assert!(matches!(msd_io::write_volume(&p, &small_volume()), Err(Error::Unsupported { .. })));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn failed_write_keeps_the_old_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("keep.nii");
    msd_io::write_volume(&p, &small_volume()).unwrap();
    let before = std::fs::read(&p).unwrap();
    // NIfTI-1 cannot hold 40000 voxels along x: the write fails before touching `keep.nii`.
    let wide = Volume::new(Array3::<u8>::zeros((1, 1, 40000)), Geometry::default()).unwrap();
    assert!(matches!(msd_io::write_volume(&p, &wide), Err(Error::Unsupported { .. })));
    assert_eq!(std::fs::read(&p).unwrap(), before);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn dicom_element_length_beyond_the_file() {
    // Found by `cargo fuzz run dicom`: (0008,0090) claims 0xFFFFFFFE bytes. The DICOM parser would
    // reserve and zero 4 GiB before failing; the length check refuses it first.
    let p =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/fuzz/dicom-oom-huge-element-length.dcm");
    let err = msd_io::read_volume(&p).unwrap_err();
    assert!(matches!(&err, Error::Dicom { what, .. } if what.contains("(0008,0090)")), "{err}");
}
