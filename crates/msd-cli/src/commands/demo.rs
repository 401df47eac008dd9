//! `msd demo`: the whole workflow on synthetic head CTs, with no data to download.
use anyhow::Context as _;

use crate::Ui;
use crate::cli::DemoArgs;
use crate::demo::{DemoConfig, DemoEvent, run as run_demo, summary_table};

pub fn run(args: &DemoArgs, ui: &Ui) -> anyhow::Result<()> {
    let config = if args.quick { DemoConfig::quick() } else { DemoConfig::full() }.with_seed(args.seed);
    ui.say(format!(
        "msd demo{}: {} training and {} test phantoms ({}×{}×{} voxels), MSDnet depth {} on {}, writing to {}",
        if args.quick { " --quick" } else { "" },
        config.train_cases,
        config.test_cases,
        config.phantom.shape[2],
        config.phantom.shape[1],
        config.phantom.shape[0],
        config.train.network.depth,
        super::backend_name(&config.train.network)?,
        args.out.display()
    ));
    let start = std::time::Instant::now();
    let phantoms = ui.bar((config.train_cases + config.test_cases) as u64, "phantoms");
    let training = ui.bar(0, "training");
    training.finish_and_clear();
    let mut training_bar = None;
    let mut testing_bar = None;
    let summary = run_demo(&config, &args.out, |event| match event {
        DemoEvent::Phantom { done, total } => {
            phantoms.set_position(done as u64);
            if done == total {
                phantoms.finish_and_clear();
                ui.say(format!("generated {total} phantoms"));
            }
        }
        DemoEvent::Training(p) => {
            let bar = training_bar.get_or_insert_with(|| ui.bar(p.batches as u64, "training"));
            ui.training_progress(bar, p);
        }
        DemoEvent::Tested { case, done, total } => {
            if let Some(bar) = training_bar.take() {
                bar.finish_and_clear();
            }
            let bar = testing_bar.get_or_insert_with(|| ui.bar(total as u64, "testing"));
            bar.set_position(done as u64);
            bar.suspend(|| ui.say(format!("segmented and evaluated {case}")));
            if done == total {
                bar.finish_and_clear();
            }
        }
    })
    .context("the demo failed")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!();
        print!("{}", summary_table(&summary));
        let a = &summary.acceptance;
        println!(
            "\nMSDnet Dice {:.3} (required ≥ {:.2}); at the higher noise MSDnet {:.3} vs threshold {:.3}: {}",
            a.msdnet_dice,
            a.min_dice,
            a.msdnet_dice_high_noise,
            a.threshold_dice_high_noise,
            if a.passed { "PASSED" } else { "FAILED" }
        );
    }
    ui.say(format!(
        "wrote the report, STLs and previews to {} in {:.0} s (report: {})",
        args.out.display(),
        start.elapsed().as_secs_f64(),
        args.out.join("report.md").display()
    ));
    if args.check && !summary.acceptance.passed {
        anyhow::bail!("the demo's acceptance check failed (see {})", args.out.join("report.md").display());
    }
    Ok(())
}
