//! `msd train`: an MSDnet from CT scans with label volumes or gold-standard meshes.
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::ArgMatches;
use msd::net::{Augmentation, MsdConfig, TrainConfig};
use msd::phantom::{PhantomConfig, generate};
use msd::training::{TrainingSet, skull_train_config, train_with_progress};

use crate::cli::{AugmentArg, TrainArgs};
use crate::{Ui, UsageError};

/// What a `--ct` is paired with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// The next `--labels`.
    Labels,
    /// The next `--meshes`.
    Mesh,
}

/// The kinds of the `--labels` and `--meshes` options in the order they were given, so that the
/// k-th `--ct` is paired with the k-th of them whatever their kinds.
pub fn target_order(matches: &ArgMatches) -> Vec<TargetKind> {
    let mut order: Vec<(usize, TargetKind)> = Vec::new();
    for (id, kind) in [("labels", TargetKind::Labels), ("meshes", TargetKind::Mesh)] {
        if let Some(indices) = matches.indices_of(id) {
            order.extend(indices.map(|i| (i, kind)));
        }
    }
    order.sort_by_key(|(i, _)| *i);
    order.into_iter().map(|(_, k)| k).collect()
}

/// The checkpoint file of a training run writing `out`.
pub fn checkpoint_path(out: &std::path::Path) -> PathBuf {
    let mut s = out.as_os_str().to_owned();
    s.push(".checkpoint");
    PathBuf::from(s)
}

/// The augmentation `--augment`, `--scale-jitter` and `--label-threshold` ask for.
fn augmentation(args: &TrainArgs) -> anyhow::Result<Augmentation> {
    let base = match args.augment {
        AugmentArg::Robust => Augmentation::robust(300.0),
        AugmentArg::Basic => Augmentation::default(),
        AugmentArg::None => Augmentation::none(),
    };
    if let Some(t) = args.label_threshold
        && !t.is_finite()
    {
        return Err(UsageError(format!("--label-threshold {t} must be a HU value")).into());
    }
    let a =
        Augmentation { scale_range: args.scale_jitter, threshold_labels_hu: args.label_threshold, ..base };
    a.validate().map_err(|e| UsageError(e.to_string()))?;
    Ok(a)
}

pub fn run(args: &TrainArgs, order: &[TargetKind], ui: &Ui) -> anyhow::Result<()> {
    if args.ct.len() != order.len() {
        return Err(UsageError(format!(
            "{} --ct but {} --labels/--meshes: give each CT its labels or mesh, in order",
            args.ct.len(),
            order.len()
        ))
        .into());
    }
    if args.channels.is_multiple_of(2) {
        return Err(UsageError(format!("--channels {} must be odd (1, 3, 5, ...)", args.channels)).into());
    }
    if !(args.scale_jitter.is_finite() && (0.0..1.0).contains(&args.scale_jitter)) {
        return Err(UsageError(format!("--scale-jitter {} must be in [0, 1)", args.scale_jitter)).into());
    }
    if let Some(m) = args.minutes
        && !(m.is_finite() && m > 0.0)
    {
        return Err(UsageError(format!("--minutes {m} must be positive")).into());
    }
    let engine: msd::net::Engine = args.engine.into();
    // candle's autograd runs on the CPU: `auto` then means the CPU, an explicit GPU is refused.
    let device = match (engine, args.device) {
        (msd::net::Engine::Candle, msd::net::Device::Auto) => {
            ui.say("device: CPU (auto: the candle engine runs on the CPU)");
            msd::net::Device::Cpu
        }
        (msd::net::Engine::Candle, d @ msd::net::Device::Cuda(_)) => {
            return Err(
                UsageError(format!("--engine candle runs on the CPU only, not on --device {d}")).into()
            );
        }
        (_, d) => super::resolve_device(d, ui)?.device(),
    };
    let checkpoint = checkpoint_path(&args.out);
    if checkpoint.exists() && !args.resume {
        anyhow::bail!(
            "a checkpoint of an interrupted run exists at {}: pass --resume to continue it, or delete it",
            checkpoint.display()
        );
    }
    if args.resume && !checkpoint.exists() {
        ui.say(format!("no checkpoint at {}: starting afresh", checkpoint.display()));
    }

    let mut set = TrainingSet::new();
    let (mut labels, mut meshes) = (args.labels.iter(), args.meshes.iter());
    for (ct_path, kind) in args.ct.iter().zip(order) {
        let ct = super::read_ct(ct_path)?;
        let name = ct_path.display().to_string();
        match kind {
            TargetKind::Labels => {
                let p = labels.next().expect("counted above");
                let l = super::read_labels(p)?;
                set.push_labels(&name, ct, l)
                    .with_context(|| format!("cannot pair {} with {}", ct_path.display(), p.display()))?;
            }
            TargetKind::Mesh => {
                let p = meshes.next().expect("counted above");
                let m = super::read_mesh(p)?;
                let pair = || format!("cannot pair {} with {}", ct_path.display(), p.display());
                if args.align {
                    let a = set.push_mesh_aligned(&name, ct, &m, 300.0).with_context(pair)?;
                    ui.say(format!("aligned {} to its CT: RMS residual {:.2} mm", p.display(), a.rms_mm));
                } else {
                    set.push_mesh(&name, ct, &m).with_context(pair)?;
                }
            }
        }
        ui.say(format!("case {}: {}", set.len(), ct_path.display()));
    }
    if args.synthetic > 0 {
        let bar = ui.bar(args.synthetic as u64, "phantoms");
        for i in 0..args.synthetic {
            let seed = args.seed.wrapping_mul(1000).wrapping_add(i as u64);
            let config = PhantomConfig::standard().with_noise(if i % 2 == 0 { 20.0 } else { 60.0 });
            let head = generate(&config, seed)?;
            set.push_labels(format!("phantom {seed}"), head.ct, head.skull)?;
            bar.inc(1);
        }
        bar.finish_and_clear();
    }

    let network = MsdConfig::new(args.depth, 1, args.channels, 2);
    let backend = super::device_backend_name(&network, engine, device)?;
    let config = TrainConfig {
        epochs: args.epochs,
        time_budget: args.minutes.map(|m| Duration::from_secs_f64(m * 60.0)),
        batch_size: args.batch,
        patch_size: Some(args.patch),
        seed: args.seed,
        validation_fraction: args.validation,
        checkpoint: Some(checkpoint.clone()),
        augmentation: augmentation(args)?,
        engine,
        device,
        ..skull_train_config(network)
    };
    ui.say(format!(
        "training an MSDnet (depth {}, {} input channel(s), backend {}) on {} case(s), at most {} epochs{}",
        args.depth,
        args.channels,
        backend,
        set.len(),
        args.epochs,
        args.minutes.map(|m| format!(" or {m} minutes")).unwrap_or_default()
    ));
    let bar = ui.bar(0, "epoch 1");
    let outcome = train_with_progress(&set, &config, |p| {
        ui.training_progress(&bar, p);
    })
    .context("training failed")?;
    bar.finish_and_clear();
    outcome
        .model
        .save(&args.out)
        .with_context(|| format!("cannot write the model {}", args.out.display()))?;
    let csv = args.out.with_extension("loss.csv");
    let png = args.out.with_extension("loss.png");
    msd::loss_curve::write_csv(&csv, &outcome.history)?;
    msd::loss_curve::write_png(&png, &outcome.history, outcome.best_epoch)?;
    if checkpoint.exists() {
        std::fs::remove_file(&checkpoint)
            .with_context(|| format!("cannot remove {}", checkpoint.display()))?;
    }
    ui.say(format!(
        "wrote {} (best epoch {}, stopped: {:?}), loss curve {} and {}",
        args.out.display(),
        outcome.best_epoch.map(|e| e.to_string()).unwrap_or_else(|| "-".into()),
        outcome.stop_reason,
        csv.display(),
        png.display()
    ));
    Ok(())
}
