//! Random corruption of valid files (byte flips, truncation) and random bytes: every reader returns
//! `Ok` or a typed error, never a panic. (The `fuzz/` targets run the same readers for longer.)
mod common;

use std::path::Path;

use common::synth::{self, Series};
use msd_io::{Geometry, Volume};
use ndarray::Array3;
use proptest::prelude::*;

fn seed_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let data = Array3::from_shape_fn((3, 4, 5), |(z, y, x)| (z * 100 + y * 10 + x) as i16);
    let g = Geometry::new([0.5, 0.6, 2.0], [1.0, 2.0, 3.0], Geometry::IDENTITY).unwrap();
    let v = Volume::new(data, g).unwrap();
    let mut out = Vec::new();
    for name in ["s.nii", "s.nii.gz", "s.nrrd"] {
        let p = dir.join(name);
        msd_io::write_volume(&p, &v).unwrap();
        out.push((name.to_string(), std::fs::read(&p).unwrap()));
    }
    let raw = dir.join("raw.nrrd");
    let opts = msd_io::nrrd::WriteOptions { encoding: msd_io::nrrd::Encoding::Raw, ..Default::default() };
    msd_io::nrrd::write(&raw, &v, &opts).unwrap();
    out.push(("r.nrrd".into(), std::fs::read(&raw).unwrap()));
    let s = Series::axial(4, 4, 1, 1.0, [0.0; 3]);
    let files = synth::write_slices(&dir.join("dcm"), &s, &synth::stored);
    out.push(("s.dcm".into(), std::fs::read(&files[0]).unwrap()));
    out
}

/// The seed files, made once per test binary.
fn seeds() -> &'static [(String, Vec<u8>)] {
    static SEEDS: std::sync::OnceLock<Vec<(String, Vec<u8>)>> = std::sync::OnceLock::new();
    SEEDS.get_or_init(|| seed_files(tempfile::tempdir().unwrap().path()))
}

fn exercise(dir: &Path, name: &str, bytes: &[u8]) {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    // Either outcome is fine; a panic fails the test.
    let _ = msd_io::read_volume(&p);
    let _ = msd_io::read_labels(&p);
    if name.ends_with(".dcm") {
        let _ = msd_io::dicom::list_series(&p);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn corrupted_files_never_panic(
        which in 0usize..5,
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (name, mut bytes) = seeds()[which].clone();
        for (at, v) in flips {
            let i = at.index(bytes.len());
            bytes[i] = v;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len() + 1));
        }
        exercise(dir.path(), &name, &bytes);
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048), ext in 0usize..5) {
        let dir = tempfile::tempdir().unwrap();
        let name = ["r.nii", "r.nii.gz", "r.nrrd", "r.dcm", "r.bin"][ext];
        exercise(dir.path(), name, &bytes);
    }
}

#[test]
fn random_header_text_after_nrrd_magic_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    for field in
        ["sizes", "space directions", "space origin", "spacings", "byte skip", "line skip", "data file"]
    {
        for value in [
            "",
            "(",
            "()",
            "(1,2",
            "none none none",
            "-1",
            "99999999999999999999",
            "(1,2,3)(4,5,6)(7,8,9)",
            "nan inf -inf",
        ] {
            let header = format!(
                "NRRD0005\ntype: uint8\ndimension: 3\nsizes: 2 2 2\nencoding: raw\nspace: RAS\n{field}: {value}\n\n"
            );
            let mut b = header.into_bytes();
            b.extend_from_slice(&[7u8; 8]);
            exercise(dir.path(), "h.nrrd", &b);
        }
    }
}
