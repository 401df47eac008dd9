//! The study's workflow on the real head CT in `../shared/data/cthead`: train an MSDnet from a CT and
//! its gold-standard mesh (plus synthetic phantoms), segment the other scan, mesh it and evaluate it
//! against its reference, whole skull and near the craniectomy, beside the 300 HU threshold.
//!
//! The two scans are the same head with and without a craniectomy, so each is segmented by a model
//! trained on the other (two folds): no scan is evaluated by a model that saw it.
//!
//! `cargo run --release --example cthead -- [OUT_DIR] [DEPTH] [MINUTES_PER_FOLD] [PHANTOMS]`
use std::path::PathBuf;
use std::time::{Duration, Instant};

use msd::baseline::threshold;
use msd::evaluation::{EvaluationOptions, Shape};
use msd::metrics::{Region, Report};
use msd::net::MsdConfig;
use msd::phantom::{PhantomConfig, generate};
use msd::preview::{Overlay, PreviewOptions, REFERENCE_COLOUR, SEGMENTATION_COLOUR, write_previews};
use msd::training::{TrainingSet, skull_train_config, train_with_progress};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(args.next().unwrap_or_else(|| "cthead-out".into()));
    let depth: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(40);
    let minutes: f64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(4.0);
    let phantoms: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(4);
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/cthead");
    std::fs::create_dir_all(&out)?;

    // (CT, gold-standard mesh, reference label) of each scan.
    let scans = [
        ("ct", "ct.nii.gz", "skull_ref.stl", "skull_ref.nii.gz"),
        ("ct_defect", "ct_defect.nii.gz", "skull_defect_ref.stl", "skull_defect_ref.nii.gz"),
    ];
    let region = Region::Mask(msd::io::read_labels(data.join("defect_region.nii.gz"))?);
    let mut msdnet = Report::new().with_region_name("near defect");
    let mut baseline = Report::new().with_region_name("near defect");
    for (fold, test) in scans.iter().enumerate() {
        let train_scan = &scans[1 - fold];
        let mut set = TrainingSet::new();
        let ct = msd::io::read_volume(data.join(train_scan.1))?;
        let mesh = msd::geom::read_mesh(data.join(train_scan.2))?;
        set.push_mesh(train_scan.0, ct, &mesh)?;
        for seed in 0..phantoms as u64 {
            let config = PhantomConfig::standard().with_noise(if seed % 2 == 0 { 20.0 } else { 60.0 });
            let head = generate(&config, 1000 + seed)?;
            set.push_labels(format!("phantom {seed}"), head.ct, head.skull)?;
        }
        let mut config = skull_train_config(MsdConfig::new(depth, 1, 1, 2));
        config.epochs = 100;
        config.patch_size = Some(128);
        config.time_budget = Some(Duration::from_secs_f64(minutes * 60.0));
        let start = Instant::now();
        let outcome = train_with_progress(&set, &config, |p| {
            if let Some(e) = &p.epoch_done {
                eprintln!(
                    "fold {fold}: epoch {:>3} train loss {:.4} validation loss {:.4}",
                    e.epoch,
                    e.train_loss,
                    e.validation_loss.unwrap_or(f64::NAN)
                );
            }
        })?;
        let train_s = start.elapsed().as_secs_f64();
        outcome.model.save(out.join(format!("model_{}.safetensors", train_scan.0)))?;

        let ct = msd::io::read_volume(data.join(test.1))?;
        let truth = msd::io::read_labels(data.join(test.3))?;
        let start = Instant::now();
        let seg = msd::segment(&outcome.model, &ct)?;
        let segment_s = start.elapsed().as_secs_f64();
        msd::io::write_volume(out.join(format!("{}_msdnet.nii.gz", test.0)), &seg.labels)?;
        msd::geom::write_mesh(out.join(format!("{}_msdnet.stl", test.0)), &msd::surface(&seg.labels)?)?;
        let overlays =
            [Overlay::new(&truth, REFERENCE_COLOUR), Overlay::new(&seg.labels, SEGMENTATION_COLOUR)];
        let at = msd::preview::label_centre(match &region {
            Region::Mask(m) => m,
            _ => &truth,
        });
        write_previews(&out, test.0, &ct, Some(at), &overlays, &PreviewOptions::default())?;
        eprintln!(
            "fold {fold}: trained {train_s:.0} s on {}, segmented {} in {segment_s:.1} s",
            train_scan.0, test.0
        );

        let options = EvaluationOptions::default().region(region.clone());
        let reference = Shape::Labels(truth);
        msdnet.push(options.evaluate(test.0, &Shape::Labels(seg.labels), &reference)?);
        baseline.push(options.evaluate(test.0, &Shape::Labels(threshold(&ct, 300.0)), &reference)?);
    }
    let text = format!(
        "## MSDnet (depth {depth}, {minutes} min per fold, {phantoms} phantoms)\n\n{}\n## Threshold 300 HU\n\n{}",
        msdnet.to_markdown(),
        baseline.to_markdown()
    );
    msd::atomic::write_text(&out.join("report.md"), &text)?;
    println!("{text}");
    Ok(())
}
