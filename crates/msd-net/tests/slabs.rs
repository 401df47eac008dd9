//! 2.5D input end to end: a 3-channel MSDnet (each slice with one neighbour on each side) trains on
//! a synthetic head-like volume and segments an unseen one; slabs repeat the edge slice where the
//! volume ends, in the dataset and at inference; channel mismatches are typed errors.
use msd_io::{Geometry, LabelVolume, Volume};
use msd_net::{
    Augmentation, Dataset, Error, LossConfig, Model, MsdConfig, Normalization, SegmentOptions, SliceAxis,
    SliceRef, StopReason, TrainConfig, train,
};
use ndarray::Array3;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};

/// A `n × size × size` volume at 1 mm: a ball of soft tissue (the scalp, 40 HU) around a bone
/// shell (900 HU, label 1) around brain (30 HU), in air, with noise. The ball's centre lies near
/// the top slice, so its cross-section shrinks from slice to slice and is cut by the volume's edge.
fn head_ball(n: usize, size: usize, seed: u64) -> (Volume<f32>, LabelVolume) {
    let mut rng = StdRng::seed_from_u64(seed);
    let noise = Normal::new(0.0f32, 50.0).unwrap();
    let s = size as f64;
    let centre = [
        rng.random_range(0.1..0.3) * n as f64,
        rng.random_range(0.45..0.55) * s,
        rng.random_range(0.45..0.55) * s,
    ];
    let outer = rng.random_range(0.38..0.44) * s;
    let scalp = rng.random_range(1.5..2.5);
    let bone = rng.random_range(2.5..4.0);
    let mut ct = Array3::<f32>::zeros((n, size, size));
    let mut lb = Array3::<u8>::zeros((n, size, size));
    for ((z, y, x), v) in ct.indexed_iter_mut() {
        let d = [z as f64 - centre[0], y as f64 - centre[1], x as f64 - centre[2]];
        let r = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt();
        let (hu, label) = if r > outer {
            (-1000.0, 0)
        } else if r > outer - scalp {
            (40.0, 0)
        } else if r > outer - scalp - bone {
            (900.0, 1)
        } else {
            (30.0, 0)
        };
        *v = hu + noise.sample(&mut rng);
        lb[[z, y, x]] = label;
    }
    let g = Geometry::new([1.0, 1.0, 1.0], [0.0; 3], Geometry::IDENTITY).unwrap();
    (Volume::new(ct, g).unwrap(), Volume::new(lb, g).unwrap())
}

/// Dice of label 1 between two label volumes, over the axial slices `zs`.
fn dice(a: &LabelVolume, b: &LabelVolume, zs: impl Iterator<Item = usize>) -> f64 {
    let (mut inter, mut sum) = (0usize, 0usize);
    for z in zs {
        let (pa, pb) = (a.data().index_axis(ndarray::Axis(0), z), b.data().index_axis(ndarray::Axis(0), z));
        for (x, y) in pa.iter().zip(pb.iter()) {
            inter += (*x == 1 && *y == 1) as usize;
            sum += (*x == 1) as usize + (*y == 1) as usize;
        }
    }
    2.0 * inter as f64 / sum.max(1) as f64
}

/// A volume whose slice `z` holds `10 z` HU everywhere (labels: slice parity).
fn numbered_slices(n: usize, h: usize, w: usize) -> (Volume<f32>, LabelVolume) {
    let ct = Array3::from_shape_fn((n, h, w), |(z, _, _)| 10.0 * z as f32);
    let lb = Array3::from_shape_fn((n, h, w), |(z, _, _)| (z % 2) as u8);
    (Volume::new(ct, Geometry::default()).unwrap(), Volume::new(lb, Geometry::default()).unwrap())
}

#[test]
fn a_slab_model_trains_and_segments_an_unseen_volume() {
    let (ct, lb) = head_ball(20, 40, 11);
    let mut data = Dataset::new(3).unwrap();
    data.add(&ct, &lb).unwrap();
    let config = TrainConfig {
        network: MsdConfig::new(10, 1, 3, 2),
        epochs: 60,
        batch_size: 4,
        patch_size: Some(32),
        validation_fraction: 0.15,
        early_stopping_patience: None,
        augmentation: Augmentation::default(),
        loss: LossConfig { class_weights: Some(vec![1.0, 2.0]), dice_weight: 0.5 },
        seed: 5,
        ..TrainConfig::default()
    };
    let out = train(&data, &config, |_| {}).unwrap();
    assert_eq!(out.stop_reason, StopReason::Epochs);
    assert_eq!(out.model.config.input_channels, 3);
    let provenance = &out.model.provenance;
    assert!(provenance["backend"].starts_with("cpu-"), "{provenance:?}");
    let aug: Augmentation = serde_json::from_str(&provenance["augmentation"]).unwrap();
    assert_eq!(aug, config.augmentation);
    let first = out.history.first().unwrap().train_loss;
    let last = out.history.last().unwrap().train_loss;
    assert!(last < 0.5 * first, "loss did not fall: {first} → {last}");
    let best = out.history[out.best_epoch.unwrap()];
    assert!(best.validation_dice.unwrap() > 0.9, "validation Dice on held-back slices: {best:?}");

    // An unseen volume (another ball, another noise draw), every slice including both edges.
    let (test_ct, test_lb) = head_ball(20, 40, 12);
    let seg = out.model.segment(&test_ct).unwrap();
    assert_eq!(seg.labels.shape(), test_ct.shape());
    let d = dice(&seg.labels, &test_lb, 0..20);
    assert!(d > 0.9, "Dice {d}");
    let edges = dice(&seg.labels, &test_lb, [0, 1, 18, 19].into_iter());
    assert!(edges > 0.85, "Dice on the edge slices {edges}");

    // The model file keeps the slab width.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("slab.safetensors");
    out.model.save(&path).unwrap();
    let back = Model::load(&path).unwrap();
    assert_eq!(back.config.input_channels, 3);
    assert_eq!(back.segment(&test_ct).unwrap().labels, seg.labels);
}

#[test]
fn dataset_slabs_repeat_the_edge_slice() {
    let (ct, lb) = numbered_slices(4, 3, 5);
    let channel_values = |data: &Dataset, z: usize| -> Vec<f32> {
        let (input, labels) = data.sample(SliceRef { case: 0, z }).unwrap();
        assert_eq!(input.len(), data.input_channels() * 15);
        assert!(labels.iter().all(|&l| l as usize == z % 2), "labels come from the centre slice");
        input
            .chunks(15)
            .map(|plane| {
                assert!(plane.iter().all(|&v| v == plane[0]));
                plane[0]
            })
            .collect()
    };
    let mut three = Dataset::new(3).unwrap();
    three.add(&ct, &lb).unwrap();
    assert_eq!(channel_values(&three, 0), [0.0, 0.0, 10.0]);
    assert_eq!(channel_values(&three, 2), [10.0, 20.0, 30.0]);
    assert_eq!(channel_values(&three, 3), [20.0, 30.0, 30.0]);
    let mut five = Dataset::new(5).unwrap();
    five.add(&ct, &lb).unwrap();
    assert_eq!(channel_values(&five, 0), [0.0, 0.0, 0.0, 10.0, 20.0]);
    assert_eq!(channel_values(&five, 3), [10.0, 20.0, 30.0, 30.0, 30.0]);
    // One slice: every channel is that slice.
    let (single, single_lb) = numbered_slices(1, 3, 5);
    let mut one = Dataset::new(5).unwrap();
    one.add(&single, &single_lb).unwrap();
    assert_eq!(channel_values(&one, 0), [0.0; 5]);

    // Samples that do not exist, and even slab widths, are errors.
    assert!(matches!(
        three.sample(SliceRef { case: 0, z: 4 }),
        Err(Error::NoSuchSlice { case: 0, z: 4, cases: 1, slices: Some(_) })
    ));
    assert!(matches!(
        three.sample(SliceRef { case: 1, z: 0 }),
        Err(Error::NoSuchSlice { case: 1, z: 0, cases: 1, slices: None })
    ));
    assert!(matches!(Dataset::new(2), Err(Error::InvalidValue { name: "input_channels", .. })));
    assert!(matches!(Dataset::new(0), Err(Error::InvalidValue { name: "input_channels", .. })));
}

#[test]
fn inference_slabs_repeat_the_edge_slice() {
    let mut rng = StdRng::seed_from_u64(3);
    let (n, h, w) = (3, 12, 14);
    let ct = Array3::from_shape_fn((n, h, w), |_| rng.random_range(-1000.0f32..1500.0));
    let ct = Volume::new(ct, Geometry::default()).unwrap();
    let mut model = Model::new(MsdConfig::new(6, 1, 3, 2), Normalization::default(), 9).unwrap();
    // The study's initialisation zeroes the final layer (every output 1/2): give it weights so
    // that the output depends on every input channel.
    for w in &mut model.params.final_weights {
        *w = rng.random_range(-1.0..1.0);
    }
    // f32 feature maps, as `predict_image` computes them: the check is of the slabs, exactly.
    let options = SegmentOptions::default()
        .with_axes(vec![SliceAxis::Axial])
        .with_probabilities(true)
        .with_precision(msd_net::Precision::F32);
    let seg = model.segment_with(&ct, &options, |_, _| {}).unwrap();
    let skull = seg.probabilities[1].data();
    assert!(skull.iter().any(|&p| (p - skull[[0, 0, 0]]).abs() > 1e-3), "the output does not vary");
    let plane = |z: usize| ct.data().index_axis(ndarray::Axis(0), z).iter().copied().collect::<Vec<f32>>();
    for (z, neighbours) in [(0, [0, 0, 1]), (1, [0, 1, 2]), (2, [1, 2, 2])] {
        let slab: Vec<f32> = neighbours.iter().flat_map(|&j| plane(j)).collect();
        let probs = model.predict_image(&slab, h, w).unwrap();
        let got =
            seg.probabilities[1].data().index_axis(ndarray::Axis(0), z).iter().copied().collect::<Vec<_>>();
        let max_err = got.iter().zip(&probs[h * w..]).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(max_err < 1e-6, "slice {z}: slab {neighbours:?} differs by {max_err}");
    }
    // A slab that ignored the edge rule (the wrong neighbour) gives another answer, so the check
    // above can fail.
    let wrong: Vec<f32> = [1, 0, 1].iter().flat_map(|&j| plane(j)).collect();
    let probs = model.predict_image(&wrong, h, w).unwrap();
    let first =
        seg.probabilities[1].data().index_axis(ndarray::Axis(0), 0).iter().copied().collect::<Vec<_>>();
    assert!(first.iter().zip(&probs[h * w..]).any(|(a, b)| (a - b).abs() > 1e-4));

    // A one-slice volume segments with every channel holding that slice.
    let one =
        Volume::new(ct.data().slice(ndarray::s![0..1, .., ..]).to_owned(), Geometry::default()).unwrap();
    let seg = model.segment_with(&one, &options, |_, _| {}).unwrap();
    let slab: Vec<f32> = [0, 0, 0].iter().flat_map(|&j| plane(j)).collect();
    let probs = model.predict_image(&slab, h, w).unwrap();
    let got = seg.probabilities[1].data().iter().copied().collect::<Vec<_>>();
    assert!(got.iter().zip(&probs[h * w..]).all(|(a, b)| (a - b).abs() < 1e-6));
}

#[test]
fn a_model_and_a_dataset_of_different_slab_widths_are_refused() {
    let (ct, lb) = head_ball(6, 16, 1);
    let config = |channels| TrainConfig {
        network: MsdConfig::new(3, 1, channels, 2),
        epochs: 1,
        patch_size: Some(8),
        ..TrainConfig::default()
    };
    for (model_channels, data_channels) in [(1, 3), (3, 1), (3, 5)] {
        let mut data = Dataset::new(data_channels).unwrap();
        data.add(&ct, &lb).unwrap();
        let err = train(&data, &config(model_channels), |_| {}).unwrap_err();
        match err {
            Error::InvalidTrainConfig { what } => {
                assert!(what.contains("channels"), "{what}");
                assert!(what.contains(&model_channels.to_string()), "{what}");
            }
            other => panic!("{model_channels}-channel model, {data_channels}-channel data: {other}"),
        }
        // The same pairing trains once the widths agree.
        assert!(train(&data, &config(data_channels), |_| {}).is_ok());
    }
    // At inference, a slice handed to a 3-channel model must be a 3-channel slab.
    let model = Model::new(MsdConfig::new(3, 1, 3, 2), Normalization::default(), 1).unwrap();
    let err = model.predict_image(&vec![0.0; 8 * 8], 8, 8).unwrap_err();
    assert!(matches!(err, Error::BufferLength { expected: 192, found: 64, .. }), "{err}");
}
