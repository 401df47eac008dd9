//! Measures batch segmentation (`msd segment --out-dir`: the model loaded once, one process) against
//! one `msd segment` process per case, on small synthetic head CTs.
//!
//! `cargo run --release --example batch_segment -- [MSD_BINARY] [CASES] [WORK_DIR]`
//!
//! `MSD_BINARY` defaults to `target/release/msd` (build it with `cargo build --release -p msd-cli`),
//! `CASES` to 10, `WORK_DIR` to a temporary folder. Each case is a 48 × 88 × 72 phantom
//! (`PhantomConfig::quick`, 1.25 × 1.25 × 2 mm). Both ways write the labels and the mesh of every
//! case and must give the same bytes; the example checks that, then prints the wall time of each
//! way in all and per case.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use msd::io::write_volume;
use msd::phantom::{PhantomConfig, generate};

fn run(msd: &Path, args: &[&str], dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let out = Command::new(msd).args(args).arg("--quiet").current_dir(dir).output()?;
    // A batch exits 1 when a case failed; none should here.
    if !out.status.success() {
        return Err(
            format!("{} {args:?} failed: {}", msd.display(), String::from_utf8_lossy(&out.stderr)).into()
        );
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let msd = PathBuf::from(args.next().unwrap_or_else(|| "target/release/msd".into()));
    let msd = std::fs::canonicalize(&msd).map_err(|e| format!("{}: {e}", msd.display()))?;
    let n: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(10);
    let tmp = tempfile::tempdir()?;
    let work = args.next().map(PathBuf::from).unwrap_or_else(|| tmp.path().to_path_buf());
    let cases = work.join("cases");
    std::fs::create_dir_all(&cases)?;
    for i in 0..n {
        let head = generate(&PhantomConfig::quick(), 1000 + i as u64)?;
        write_volume(cases.join(format!("case{i:02}.nii.gz")), &head.ct)?;
    }

    let start = Instant::now();
    run(&msd, &["segment", "cases", "--out-dir", "batch", "--force"], &work)?;
    let batch = start.elapsed().as_secs_f64();

    let start = Instant::now();
    for i in 0..n {
        let case = format!("case{i:02}");
        std::fs::create_dir_all(work.join("single").join(&case))?;
        run(
            &msd,
            &[
                "segment",
                &format!("cases/{case}.nii.gz"),
                "--out",
                &format!("single/{case}/skull.nii.gz"),
                "--mesh",
                &format!("single/{case}/skull.stl"),
            ],
            &work,
        )?;
    }
    let single = start.elapsed().as_secs_f64();

    for i in 0..n {
        for file in ["skull.nii.gz", "skull.stl"] {
            let case = format!("case{i:02}");
            let a = std::fs::read(work.join("batch").join(&case).join(file))?;
            let b = std::fs::read(work.join("single").join(&case).join(file))?;
            if a != b {
                return Err(format!("{case}/{file} differs between the two ways").into());
            }
        }
    }
    println!("{n} cases of 48 × 88 × 72 voxels, labels + mesh each, identical both ways");
    println!("one batch process (--out-dir): {batch:.2} s in all, {:.3} s per case", batch / n as f64);
    println!("one process per case:          {single:.2} s in all, {:.3} s per case", single / n as f64);
    println!("batch speed-up: {:.2}×", single / batch);
    Ok(())
}
