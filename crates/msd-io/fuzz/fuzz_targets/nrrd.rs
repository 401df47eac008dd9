//! Fuzz target: arbitrary bytes as a `.nrrd` file must give `Ok` or a typed error, never a panic,
//! hang or huge allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = dir.path().join("input.nrrd");
    std::fs::write(&path, data).expect("write input");
    let _ = msd_io::read_volume(&path);
    let _ = msd_io::read_labels(&path);
});
