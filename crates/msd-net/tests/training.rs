//! Training end to end: a small MSDnet learns to segment synthetic disc-and-ring images; the model
//! file round-trips; resuming and seeding behave.
use msd_io::LabelVolume;
use msd_net::{Dataset, Model, MsdConfig, SegmentOptions, SliceAxis, StopReason, train};
mod common;

use common::{disc_and_ring, small_config};

fn dice(a: &LabelVolume, b: &LabelVolume) -> f64 {
    let (mut i, mut s) = (0usize, 0usize);
    for (x, y) in a.data().iter().zip(b.data().iter()) {
        i += (*x == 1 && *y == 1) as usize;
        s += (*x == 1) as usize + (*y == 1) as usize;
    }
    2.0 * i as f64 / s as f64
}

#[test]
fn learns_disc_and_ring_and_round_trips() {
    let (ct, lb) = disc_and_ring(16, 48, 1, 1.0);
    let mut data = Dataset::new(1).unwrap();
    data.add(&ct, &lb).unwrap();
    let config = small_config();
    let mut reports = 0;
    let out = train(&data, &config, |_| reports += 1).unwrap();
    assert!(reports > config.epochs);
    assert_eq!(out.stop_reason, StopReason::Epochs);
    let first = out.history.first().unwrap().train_loss;
    let last = out.history.last().unwrap().train_loss;
    assert!(last < 0.5 * first, "loss did not fall: {first} → {last}");

    // Unseen slices.
    let (test_ct, test_lb) = disc_and_ring(4, 48, 99, 1.0);
    let seg = out
        .model
        .segment_with(&test_ct, &SegmentOptions::default().with_probabilities(true), |_, _| {})
        .unwrap();
    let d = dice(&seg.labels, &test_lb);
    assert!(d > 0.95, "Dice {d}");
    // Labels alone are the same labels.
    assert_eq!(out.model.segment(&test_ct).unwrap().labels.data(), seg.labels.data());
    // Probabilities sum to one.
    let s: f32 = seg.probabilities.iter().map(|p| p.data()[[1, 20, 20]]).sum();
    assert!((s - 1.0).abs() < 1e-4);

    // The same scan at 0.5 mm, resampled to the model's 1 mm (it was trained at 1 mm only) and the
    // probabilities back.
    let (fine_ct, fine_lb) = disc_and_ring(2, 96, 99, 0.5);
    let seg = out
        .model
        .segment_with(&fine_ct, &SegmentOptions::default().with_resample_to_model(true), |_, _| {})
        .unwrap();
    let d_fine = dice(&seg.labels, &fine_lb);
    assert!(d_fine > 0.9, "Dice at 0.5 mm {d_fine}");

    // Three-axis fusion runs and agrees with the axial result on most voxels.
    let fused = out
        .model
        .segment_with(
            &test_ct,
            &SegmentOptions::default()
                .with_axes(vec![SliceAxis::Axial, SliceAxis::Coronal, SliceAxis::Sagittal])
                .with_resample_to_model(true),
            |_, _| {},
        )
        .unwrap();
    assert_eq!(fused.labels.shape(), test_ct.shape());

    // Training records the pixel sizes it saw (the data's own, widened by the zoom jitter) and no
    // threshold definition (these labels are not a threshold's).
    let [lo, hi] = out.model.trained_pixel_range_mm.expect("recorded");
    assert!(lo <= out.model.pixel_spacing_mm[0] && out.model.pixel_spacing_mm[0] <= hi, "{lo}..{hi}");
    assert_eq!(out.model.label_iso_hu, None);

    // Model file round trip, with the label definition and trained pixels it may record.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    out.model.save(&path).unwrap();
    let back = Model::load(&path).unwrap();
    assert_eq!(back, out.model);
    let mut recorded = out.model.clone();
    recorded.label_iso_hu = Some(300.0);
    recorded.trained_pixel_range_mm = Some([0.3, 1.0]);
    recorded.save(&path).unwrap();
    assert_eq!(Model::load(&path).unwrap(), recorded);
    recorded.trained_pixel_range_mm = Some([1.0, 0.3]);
    assert!(recorded.save(&path).is_err(), "an inverted pixel range is refused");
}

#[test]
fn same_seed_same_model_and_resume_continues() {
    let (ct, lb) = disc_and_ring(8, 24, 3, 1.0);
    let mut data = Dataset::new(1).unwrap();
    data.add(&ct, &lb).unwrap();
    let mut config = small_config();
    config.network = MsdConfig::new(4, 1, 1, 2);
    config.epochs = 4;
    config.patch_size = Some(16);
    let a = train(&data, &config, |_| {}).unwrap();
    let b = train(&data, &config, |_| {}).unwrap();
    assert_eq!(a.model.params, b.model.params);

    // Kill after 2 epochs (simulated by an epoch limit), then resume to 4 from the checkpoint.
    let dir = tempfile::tempdir().unwrap();
    let mut ck = config.clone();
    ck.checkpoint = Some(dir.path().join("ck.safetensors"));
    ck.epochs = 2;
    let first = train(&data, &ck, |_| {}).unwrap();
    assert_eq!(first.history.len(), 2);
    ck.epochs = 4;
    let resumed = train(&data, &ck, |_| {}).unwrap();
    assert_eq!(resumed.history.len(), 4);
    assert_eq!(resumed.model.params, a.model.params, "resumed run differs from an uninterrupted one");
}
