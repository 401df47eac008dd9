//! Training on the real CThead scan (`../shared/data/cthead`): CT and its craniectomy variant with
//! their reference skull labels; reports Dice on held-back slices. Takes minutes on two cores,
//! hence `#[ignore]`: run with `cargo test -p msd-net --release --test cthead -- --ignored --nocapture`.
use std::path::PathBuf;
use std::time::Duration;

use msd_net::{Augmentation, Dataset, LossConfig, MsdConfig, StopReason, TrainConfig, train};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/cthead").join(name)
}

#[test]
#[cfg_attr(not(msd_shared_data), ignore = "needs ../shared/data")]
#[ignore = "trains for several minutes"]
fn cthead_skull_dice_on_held_back_slices() {
    let mut dataset = Dataset::new(1).unwrap();
    for (ct, label) in [("ct.nii.gz", "skull_ref.nii.gz"), ("ct_defect.nii.gz", "skull_defect_ref.nii.gz")] {
        let ct = msd_io::read_volume(data(ct)).unwrap();
        let label = msd_io::read_labels(data(label)).unwrap();
        dataset.add(&ct, &label).unwrap();
    }
    let minutes: u64 = std::env::var("MSD_CTHEAD_MINUTES").ok().and_then(|m| m.parse().ok()).unwrap_or(8);
    let depth: usize = std::env::var("MSD_CTHEAD_DEPTH").ok().and_then(|m| m.parse().ok()).unwrap_or(40);
    let config = TrainConfig {
        network: MsdConfig::new(depth, 1, 1, 2),
        epochs: 200,
        time_budget: Some(Duration::from_secs(60 * minutes)),
        batch_size: 4,
        patch_size: Some(128),
        validation_fraction: 0.1,
        early_stopping_patience: Some(8),
        augmentation: Augmentation::default(),
        loss: LossConfig { class_weights: Some(vec![1.0, 3.0]), dice_weight: 0.5 },
        seed: 1,
        class_names: Some(vec!["background".into(), "bone".into()]),
        ..TrainConfig::default()
    };
    let out = train(&dataset, &config, |p| {
        if let Some(s) = p.epoch_done {
            eprintln!(
                "epoch {:3} train {:.4} val {:.4} dice {:.4} ({:.1} s, {:.0} s total)",
                s.epoch,
                s.train_loss,
                s.validation_loss.unwrap_or(f64::NAN),
                s.validation_dice.unwrap_or(f64::NAN),
                s.seconds,
                p.elapsed.as_secs_f64()
            );
        }
    })
    .unwrap();
    let best = out.best_epoch.unwrap();
    let dice = out.history[best].validation_dice.unwrap();
    eprintln!(
        "stopped: {:?}; best epoch {best}; held-back-slice Dice {dice:.4}; {:?}",
        out.stop_reason, out.model.provenance
    );
    assert!(matches!(
        out.stop_reason,
        StopReason::TimeBudget | StopReason::EarlyStopping | StopReason::Epochs
    ));
    assert!(dice > 0.9, "held-back-slice Dice {dice}");
}
