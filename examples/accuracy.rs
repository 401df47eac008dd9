//! How well a skull model reproduces the engineers' definition of bone on real scans, side by side
//! with that definition applied to the scan itself (the 300 HU recipe), as scanned, with noise and
//! at other pixel sizes.
//!
//! ```sh
//! cargo run --release --example accuracy                         # the shipped model
//! cargo run --release --example accuracy -- --model my.safetensors --out accuracy-out
//! ```
//!
//! The reference of every row is the recipe (`≥ 300 HU`, largest 26-connected component, pockets up
//! to 100 mm³ filled: `msd::baseline::engineers_recipe`) applied to the noise-free scan on the row's
//! grid, which is how the references of the project's accuracy targets are made. So the recipe
//! scores 1.0 wherever the scan is noise-free, by construction; what the rows show is how close the
//! network comes to it there, and who degrades less under noise. Noise is added to the CT only:
//! white Gaussian (σ in HU) or spatially correlated (white noise under a Gaussian of 1 pixel,
//! rescaled to σ), seeded. Resampled rows resample the CT in-plane (Keys cubic,
//! `msd::net::resample_in_plane`); the row with 0.5 mm pixels and noise stands for the fine, noisy
//! scans that most scanners make today (0.4–0.5 mm pixels), with the noise added on the fine grid.
//!
//! Scans: `../shared/data/cthead` with its craniectomy (`ct_defect.nii.gz`; "near defect" is
//! `defect_region.nii.gz`) — note that the shipped model was trained on this head, so these rows
//! measure robustness, not generalisation — and `../shared/data/headsq` (a different scanner and
//! head, 3.2 mm pixels, not used in training).
use std::path::PathBuf;
use std::time::Instant;

use msd::baseline::engineers_recipe;
use msd::evaluation::{EvaluationOptions, Shape};
use msd::geom::Cleanup;
use msd::io::Volume;
use msd::metrics::{CaseReport, Region};
use msd::net::{Model, SegmentOptions, add_correlated_noise, resample_in_plane};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Normal};

/// One row's change to the scan.
#[derive(Debug, Clone, Copy)]
enum Condition {
    AsScanned,
    WhiteNoise(f32),
    CorrelatedNoise(f32),
    Pixels(f64),
    /// Resampled to these pixels (mm), then white noise of this σ (HU) on the finer grid.
    PixelsWithNoise(f64, f32),
}

impl Condition {
    fn name(self) -> String {
        match self {
            Condition::AsScanned => "as scanned".into(),
            Condition::WhiteNoise(s) => format!("+{s:.0} HU white noise"),
            Condition::CorrelatedNoise(s) => format!("+{s:.0} HU correlated noise"),
            Condition::Pixels(p) => format!("resampled to {p} mm pixels"),
            Condition::PixelsWithNoise(p, s) => format!("{p} mm pixels, +{s:.0} HU white noise"),
        }
    }
}

/// A scan to evaluate: its name, the CT, the region "near the defect" if any, and its rows.
type Case<'a> = (&'a str, &'a Volume<f32>, Option<&'a Region>, Vec<Condition>);

/// Adds seeded Gaussian noise of σ `sigma` HU to every slice, white or correlated over `corr`
/// pixels (msd-net's augmentation noise, `add_correlated_noise`).
fn add_noise(ct: &Volume<f32>, sigma: f32, corr: Option<f64>, seed: u64) -> Volume<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    let [_, ny, nx] = ct.shape();
    let mut noisy = ct.data().clone();
    for mut slice in noisy.outer_iter_mut() {
        let mut plane: Vec<f32> = slice.iter().copied().collect();
        match corr {
            Some(c) => add_correlated_noise(&mut plane, ny, nx, sigma, c, &mut rng),
            None => {
                let n = Normal::new(0.0f32, sigma).expect("σ is finite and positive");
                plane.iter_mut().for_each(|v| *v += n.sample(&mut rng));
            }
        }
        slice.iter_mut().zip(plane).for_each(|(d, s)| *d = s);
    }
    ct.with_data(noisy).expect("same shape")
}

/// Dice, MAD and MAD near the defect of one segmentation against the reference.
fn score(
    name: &str,
    pred: &msd::io::LabelVolume,
    reference: &msd::io::LabelVolume,
    region: Option<&Region>,
) -> Result<CaseReport, msd::Error> {
    EvaluationOptions::default().region(region.cloned()).evaluate(
        name,
        &Shape::Labels(pred.clone()),
        &Shape::Labels(reference.clone()),
    )
}

fn fmt(v: Option<f64>, digits: usize) -> String {
    v.map(|v| format!("{v:.digits$}")).unwrap_or_else(|| "–".into())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (mut model_path, mut out) = (None, None);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--model" => model_path = Some(PathBuf::from(args.next().ok_or("--model needs a path")?)),
            "--out" => out = Some(PathBuf::from(args.next().ok_or("--out needs a folder")?)),
            other => {
                return Err(
                    format!("unknown argument {other}; usage: accuracy [--model M] [--out DIR]").into()
                );
            }
        }
    }
    let model = match &model_path {
        Some(p) => Model::load(p)?,
        None => Model::default_skull()?,
    };
    let shared = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    if !shared.join("cthead/ct_defect.nii.gz").exists() {
        return Err(format!("{} is missing", shared.join("cthead").display()).into());
    }
    if let Some(o) = &out {
        std::fs::create_dir_all(o)?;
    }
    let cthead = msd::io::read_volume(shared.join("cthead/ct_defect.nii.gz"))?;
    let region = Region::Mask(msd::io::read_labels(shared.join("cthead/defect_region.nii.gz"))?);
    let headsq = msd::io::read_volume(shared.join("headsq/ct.nii.gz")).ok();
    let conditions = [
        Condition::AsScanned,
        Condition::WhiteNoise(50.0),
        Condition::WhiteNoise(100.0),
        Condition::WhiteNoise(150.0),
        Condition::CorrelatedNoise(100.0),
        Condition::Pixels(0.5),
        Condition::Pixels(2.0),
        Condition::PixelsWithNoise(0.5, 100.0),
    ];
    let mut rows = Vec::new();
    let mut biases = Vec::new();
    let mut cases: Vec<Case> = vec![("cthead (craniectomy)", &cthead, Some(&region), conditions.to_vec())];
    if let Some(h) = &headsq {
        cases.push(("headsq", h, None, vec![Condition::AsScanned, Condition::WhiteNoise(100.0)]));
    }
    println!(
        "model: depth {}, trained: {}",
        model.config.depth,
        model.provenance.get("trained_by").map(String::as_str).unwrap_or("(not recorded)")
    );
    for (scan, ct, region, conds) in &cases {
        for (i, &cond) in conds.iter().enumerate() {
            let clean = match cond {
                Condition::Pixels(p) | Condition::PixelsWithNoise(p, _) => resample_in_plane(ct, p)?,
                _ => (*ct).clone(),
            };
            let reference = engineers_recipe(&clean, 300.0)?;
            let input = match cond {
                Condition::WhiteNoise(s) | Condition::PixelsWithNoise(_, s) => {
                    add_noise(&clean, s, None, 1000 + i as u64)
                }
                Condition::CorrelatedNoise(s) => add_noise(&clean, s, Some(1.0), 1000 + i as u64),
                _ => clean.clone(),
            };
            let start = Instant::now();
            let (seg, _) = msd::training::segment_with(
                &model,
                &input,
                &SegmentOptions::default(),
                &Cleanup::default(),
                |_, _| {},
            )?;
            let net_s = start.elapsed().as_secs_f64();
            // The same network with its own boundary (no iso-surface snap), to show what the snap adds.
            let start = Instant::now();
            let (raw, _) = msd::training::segment_with(
                &model,
                &input,
                &SegmentOptions::default().with_snap_to_iso(false),
                &Cleanup::default(),
                |_, _| {},
            )?;
            let raw_s = start.elapsed().as_secs_f64();
            let noise = seg.iso_snap.map(|s| format!("{:.0} HU", s.noise_hu)).unwrap_or_else(|| "–".into());
            let start = Instant::now();
            let recipe = engineers_recipe(&input, 300.0)?;
            let recipe_s = start.elapsed().as_secs_f64();
            let net = score(scan, &seg.labels, &reference, *region)?;
            let net_raw = score(scan, &raw.labels, &reference, *region)?;
            let thr = score(scan, &recipe, &reference, *region)?;
            if matches!(cond, Condition::AsScanned) {
                // The boundary's bias in HU: the recipe threshold that the network's skull matches best.
                let mut best = (0.0f32, 0.0f64);
                for t in (200..=400).step_by(10) {
                    let d = msd::metrics::overlap(&engineers_recipe(&clean, t as f32)?, &seg.labels)?.dice();
                    if d > best.1 {
                        best = (t as f32, d);
                    }
                }
                biases.push(format!(
                    "{scan}: the network's skull matches the recipe at {} HU best (Dice {:.4}): a bias of {:+} HU",
                    best.0,
                    best.1,
                    best.0 - 300.0
                ));
            }
            if let Some(o) = &out {
                let stem = format!(
                    "{}_{}",
                    scan.split(' ').next().unwrap_or("scan"),
                    cond.name().replace([' ', '+'], "_")
                );
                msd::io::write_volume(o.join(format!("{stem}_msdnet.nii.gz")), &seg.labels)?;
            }
            for (method, r, s) in [
                ("MSDnet", &net, net_s),
                ("MSDnet, network boundary", &net_raw, raw_s),
                ("300 HU recipe", &thr, recipe_s),
            ] {
                let row = format!(
                    "| {scan} | {} | {noise} | {method} | {} | {} | {} | {} | {s:.1} |",
                    cond.name(),
                    fmt(r.metrics.dice, 4),
                    fmt(r.metrics.mad_mm, 3),
                    fmt(r.metrics.hd95_mm, 2),
                    fmt(r.region.as_ref().and_then(|m| m.mad_mm), 3),
                );
                eprintln!("{row}");
                rows.push(row);
            }
        }
    }
    println!(
        "\n| scan | condition | measured noise | method | Dice | MAD (mm) | HD95 (mm) | MAD near defect (mm) | time (s) |"
    );
    println!("|---|---|---:|---|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!("{r}");
    }
    println!();
    for b in &biases {
        println!("{b}");
    }
    Ok(())
}
