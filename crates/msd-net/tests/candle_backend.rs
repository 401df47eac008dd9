//! The candle backend against the CPU backend: the same loss, gradients and Adam steps on random
//! data, an optimiser state that survives a round trip (and a resumed training run), and
//! training through candle's autograd that learns a synthetic disc-and-ring segmentation.
mod common;

use common::{disc_and_ring, small_config};
use msd_net::{
    AdamConfig, AdamState, Backend, BatchShape, CandleBackend, CpuBackend, Dataset, Engine, LossConfig,
    MsdConfig, Params, StopReason, TrainConfig, train, train_with_backend,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Initial parameters with non-zero biases and final layer, so that every path carries signal;
/// the biases straddle 0 so that some ReLUs are active and some are not.
fn random_params(config: &MsdConfig, seed: u64) -> Params {
    let mut p = Params::init(config, seed).unwrap();
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
    for b in &mut p.conv_biases {
        *b = rng.random_range(-0.2..0.3);
    }
    for v in p.final_weights.iter_mut().chain(p.final_biases.iter_mut()) {
        *v = rng.random_range(-1.0..1.0);
    }
    p
}

fn random_inputs(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
}

fn random_labels(n: usize, classes: usize, seed: u64) -> Vec<u8> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(0..classes) as u8).collect()
}

/// ‖a − b‖ / ‖b‖.
fn rel_err(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let num: f64 = a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
    let den: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum();
    (num / den.max(1e-30)).sqrt()
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-12)
}

const NAMES: [&str; 4] = ["conv_weights", "conv_biases", "final_weights", "final_biases"];

fn vectors(p: &Params) -> [&[f32]; 4] {
    [&p.conv_weights, &p.conv_biases, &p.final_weights, &p.final_biases]
}

/// The loss settings every comparison runs with: plain, class-weighted, Dice, both.
fn loss_configs(classes: usize) -> Vec<LossConfig> {
    let weights: Vec<f32> = (0..classes).map(|k| 1.0 + 1.5 * k as f32).collect();
    vec![
        LossConfig::default(),
        LossConfig { class_weights: Some(weights.clone()), dice_weight: 0.0 },
        LossConfig { class_weights: None, dice_weight: 0.7 },
        LossConfig { class_weights: Some(weights), dice_weight: 0.5 },
    ]
}

/// One forward, loss and backward on both backends; asserts that probabilities, loss values and
/// the four parameter gradients agree.
fn assert_same_step(config: &MsdConfig, shape: BatchShape, seed: u64) {
    let params = random_params(config, seed);
    let inputs = random_inputs(shape.images * config.input_channels * shape.pixels(), seed + 1);
    let labels = random_labels(shape.images * shape.pixels(), config.n_classes, seed + 2);
    let mut cpu = CpuBackend::new(config).unwrap();
    let mut cdl = CandleBackend::new(config).unwrap();
    cpu.set_params(&params).unwrap();
    cdl.set_params(&params).unwrap();
    assert_eq!(cdl.params().unwrap(), params);
    cpu.forward(&inputs, shape).unwrap();
    cdl.forward(&inputs, shape).unwrap();
    let len = shape.images * config.n_classes * shape.pixels();
    let (mut pa, mut pb) = (vec![0.0; len], vec![0.0; len]);
    cpu.probabilities(&mut pa).unwrap();
    cdl.probabilities(&mut pb).unwrap();
    let e = rel_err(&pb, &pa);
    assert!(e < 1e-5, "{config:?} {shape:?}: probabilities differ by {e:e}");
    for loss in loss_configs(config.n_classes) {
        let what = format!("{config:?} {shape:?} {loss:?}");
        let a = cpu.loss(&labels, &loss).unwrap();
        let b = cdl.loss(&labels, &loss).unwrap();
        assert_eq!(a.pixels, b.pixels);
        for (name, x, y) in [
            ("loss", b.loss, a.loss),
            ("cross-entropy", b.cross_entropy, a.cross_entropy),
            ("soft Dice", b.soft_dice, a.soft_dice),
        ] {
            assert!(rel(x, y) < 1e-5, "{what}: {name} {x} vs CPU {y}");
        }
        cpu.backward().unwrap();
        cdl.backward().unwrap();
        let (ga, gb) = (cpu.gradients().unwrap(), cdl.gradients().unwrap());
        for (name, (x, y)) in NAMES.iter().zip(vectors(&gb).into_iter().zip(vectors(&ga))) {
            assert!(y.iter().any(|v| *v != 0.0), "{what}: CPU gradient of {name} is all zero");
            let e = rel_err(x, y);
            assert!(e < 1e-4, "{what}: gradient of {name} differs by {e:e}");
        }
    }
}

#[test]
fn loss_and_gradients_equal_the_cpu_backend() {
    let cases = [
        // (depth, width, input channels, classes, images, height, width)
        (1, 1, 1, 2, 2, 9, 7),
        (4, 2, 1, 2, 2, 12, 10),
        (6, 1, 3, 2, 1, 11, 13),
        (5, 2, 3, 3, 2, 10, 9),
        // Images smaller than the dilations of the later layers (mirrored more than once).
        (8, 1, 1, 2, 2, 5, 6),
    ];
    for (i, &(depth, width, c_in, k, n, h, w)) in cases.iter().enumerate() {
        let config = MsdConfig::new(depth, width, c_in, k);
        assert_same_step(&config, BatchShape { images: n, height: h, width: w }, 100 + i as u64);
    }
}

#[test]
fn adam_steps_equal_the_cpu_backend() {
    let config = MsdConfig::new(5, 2, 3, 2);
    let shape = BatchShape { images: 2, height: 12, width: 11 };
    let params = random_params(&config, 7);
    let loss = LossConfig { class_weights: Some(vec![1.0, 2.5]), dice_weight: 0.5 };
    let adam = AdamConfig { lr: 1e-2, ..AdamConfig::default() };
    let mut cpu = CpuBackend::new(&config).unwrap();
    let mut cdl = CandleBackend::new(&config).unwrap();
    cpu.set_params(&params).unwrap();
    cdl.set_params(&params).unwrap();
    let steps = 4;
    for step in 0..steps {
        let inputs = random_inputs(shape.images * config.input_channels * shape.pixels(), 20 + step);
        let labels = random_labels(shape.images * shape.pixels(), 2, 40 + step);
        for b in [&mut cpu as &mut dyn Backend, &mut cdl] {
            b.forward(&inputs, shape).unwrap();
            b.loss(&labels, &loss).unwrap();
            b.backward().unwrap();
            b.adam_step(&adam).unwrap();
        }
    }
    let (pa, pb) = (cpu.params().unwrap(), cdl.params().unwrap());
    let moved: f32 = vectors(&pa)
        .iter()
        .zip(vectors(&params))
        .flat_map(|(a, b)| a.iter().zip(b).map(|(x, y)| (x - y).abs()))
        .fold(0.0, f32::max);
    assert!(moved > 0.5 * adam.lr, "the parameters barely moved ({moved})");
    for (name, (x, y)) in NAMES.iter().zip(vectors(&pb).into_iter().zip(vectors(&pa))) {
        let diff = x.iter().zip(y).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        // Each step moves a parameter by at most about lr; rounding may change it by a tiny
        // fraction of that.
        assert!(diff < 1e-3 * adam.lr * steps as f32, "{name}: parameters differ by {diff:e}");
    }
    let (sa, sb) = (cpu.optimizer_state().unwrap(), cdl.optimizer_state().unwrap());
    assert_eq!(sb.step, steps);
    assert_eq!(sa.step, steps);
    for (moment, a, b) in [("m", &sa.m, &sb.m), ("v", &sa.v, &sb.v)] {
        for (name, (x, y)) in NAMES.iter().zip(vectors(b).into_iter().zip(vectors(a))) {
            let e = rel_err(x, y);
            assert!(e < 1e-4, "Adam {moment} of {name} differs by {e:e}");
        }
    }
}

#[test]
fn optimizer_state_round_trips() {
    let config = MsdConfig::new(4, 1, 1, 2);
    let shape = BatchShape { images: 2, height: 10, width: 10 };
    let loss = LossConfig::default();
    let adam = AdamConfig::default();
    let batch = |seed: u64| {
        (
            random_inputs(shape.images * shape.pixels(), seed),
            random_labels(shape.images * shape.pixels(), 2, seed + 1),
        )
    };
    let step = |b: &mut CandleBackend, seed: u64| {
        let (x, l) = batch(seed);
        b.forward(&x, shape).unwrap();
        b.loss(&l, &loss).unwrap();
        b.backward().unwrap();
        b.adam_step(&adam).unwrap();
    };
    let mut a = CandleBackend::new(&config).unwrap();
    a.set_params(&random_params(&config, 3)).unwrap();
    assert_eq!(a.optimizer_state().unwrap(), AdamState::new(&config));
    step(&mut a, 1);
    step(&mut a, 2);
    let state = a.optimizer_state().unwrap();
    assert_eq!(state.step, 2);
    assert!(state.v.final_weights.iter().all(|v| *v > 0.0));

    // A fresh backend given the parameters and the optimiser state continues exactly like `a`.
    let mut b = CandleBackend::new(&config).unwrap();
    b.set_params(&a.params().unwrap()).unwrap();
    b.set_optimizer_state(&state).unwrap();
    assert_eq!(b.optimizer_state().unwrap(), state);
    step(&mut a, 3);
    step(&mut b, 3);
    assert_eq!(a.params().unwrap(), b.params().unwrap());
    assert_eq!(a.optimizer_state().unwrap(), b.optimizer_state().unwrap());
    // Without the state the next step is another one (Adam's first step is about lr per weight).
    let mut c = CandleBackend::new(&config).unwrap();
    c.set_params(&b.params().unwrap()).unwrap();
    step(&mut b, 4);
    step(&mut c, 4);
    assert_ne!(b.params().unwrap(), c.params().unwrap());

    // A state of another architecture is refused.
    let other = AdamState::new(&MsdConfig::new(5, 1, 1, 2));
    assert!(b.set_optimizer_state(&other).is_err());
}

#[test]
fn misuse_is_an_error() {
    let config = MsdConfig::new(2, 1, 1, 2);
    let mut b = CandleBackend::new(&config).unwrap();
    assert!(b.name().starts_with("candle-cpu-"));
    let shape = BatchShape { images: 1, height: 4, width: 4 };
    assert!(b.loss(&[0; 16], &LossConfig::default()).is_err(), "loss before forward");
    assert!(b.backward().is_err(), "backward before loss");
    assert!(b.forward(&[0.0; 15], shape).is_err(), "short input");
    assert!(b.forward(&[], BatchShape { images: 0, ..shape }).is_err(), "empty batch");
    b.forward(&[0.0; 16], shape).unwrap();
    assert!(b.probabilities(&mut [0.0; 31]).is_err(), "short output");
    assert!(b.loss(&[0; 15], &LossConfig::default()).is_err(), "short labels");
    assert!(b.loss(&[2; 16], &LossConfig::default()).is_err(), "label 2 of a 2-class model");
    let bad = LossConfig { class_weights: Some(vec![1.0]), dice_weight: 0.0 };
    assert!(b.loss(&[0; 16], &bad).is_err(), "one class weight for two classes");
    let mut p = Params::zeros(&config);
    p.final_biases[0] = f32::NAN;
    assert!(b.set_params(&p).is_err(), "NaN parameter");
    assert!(b.set_params(&Params::zeros(&MsdConfig::new(3, 1, 1, 2))).is_err(), "wrong shape");
}

fn disc_and_ring_dataset(n: usize, size: usize, seed: u64) -> Dataset {
    let (ct, lb) = disc_and_ring(n, size, seed, 1.0);
    let mut data = Dataset::new(1).unwrap();
    data.add(&ct, &lb).unwrap();
    data
}

#[test]
fn trains_disc_and_ring_through_candle() {
    let data = disc_and_ring_dataset(16, 48, 1);
    let config = small_config();
    let mut backend = CandleBackend::new(&config.network).unwrap();
    let mut reports = 0;
    let out = train_with_backend(&mut backend, &data, &config, |_| reports += 1).unwrap();
    assert!(reports > config.epochs);
    assert_eq!(out.stop_reason, StopReason::Epochs);
    assert_eq!(out.model.provenance["backend"], backend.name());
    let first = out.history.first().unwrap().train_loss;
    let last = out.history.last().unwrap().train_loss;
    assert!(last < 0.5 * first, "loss did not fall: {first} → {last}");
    // Unseen slices, segmented by the trained model.
    let (test_ct, test_lb) = disc_and_ring(4, 48, 99, 1.0);
    let seg = out.model.segment(&test_ct).unwrap();
    let (mut inter, mut sum) = (0usize, 0usize);
    for (x, y) in seg.labels.data().iter().zip(test_lb.data().iter()) {
        inter += (*x == 1 && *y == 1) as usize;
        sum += (*x == 1) as usize + (*y == 1) as usize;
    }
    let dice = 2.0 * inter as f64 / sum as f64;
    assert!(dice > 0.95, "Dice on unseen slices {dice}");
}

#[test]
fn training_matches_the_cpu_backend_and_resumes() {
    let data = disc_and_ring_dataset(8, 24, 3);
    let mut config = small_config();
    config.network = MsdConfig::new(4, 1, 1, 2);
    config.epochs = 4;
    config.patch_size = Some(16);
    // `train` with `Engine::Candle` runs `CandleBackend`; the default engine runs the kernels.
    let run = |config: &TrainConfig| {
        train(&data, &TrainConfig { engine: Engine::Candle, ..config.clone() }, |_| {}).unwrap()
    };
    let a = run(&config);
    assert!(a.model.provenance["backend"].starts_with("candle-cpu-"), "{:?}", a.model.provenance);
    let reference = train(&data, &config, |_| {}).unwrap();
    assert!(reference.model.provenance["backend"].starts_with("cpu-"), "{:?}", reference.model.provenance);
    for (x, y) in a.history.iter().zip(&reference.history) {
        assert!(rel(x.train_loss, y.train_loss) < 1e-5, "epoch {}: {x:?} vs CPU {y:?}", x.epoch);
    }
    let e = rel_err(&a.model.params.final_weights, &reference.model.params.final_weights);
    assert!(e < 1e-5, "final weights differ from the CPU run by {e:e}");

    // Same seed, same model; and a run killed after 2 epochs resumes to the same result.
    let b = run(&config);
    assert_eq!(a.model.params, b.model.params);
    let dir = tempfile::tempdir().unwrap();
    let mut ck = config.clone();
    ck.checkpoint = Some(dir.path().join("ck.safetensors"));
    ck.epochs = 2;
    assert_eq!(run(&ck).history.len(), 2);
    ck.epochs = 4;
    let resumed = run(&ck);
    assert_eq!(resumed.history.len(), 4);
    assert_eq!(resumed.model.params, a.model.params, "resumed run differs from an uninterrupted one");
}
