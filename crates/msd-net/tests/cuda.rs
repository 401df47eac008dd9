//! Tests of the CUDA backend (feature `cuda`).
//!
//! - Without a GPU: creating the backend answers a typed "CUDA unavailable" error.
//! - With `libnvrtc` on `LD_LIBRARY_PATH` (no GPU needed): every kernel source compiles for several
//!   architectures and exports exactly the entry points the Rust side launches (ignored by default).
//! - With an NVIDIA GPU (ignored by default; run with `--include-ignored`, see src/cuda/README.md): forward,
//!   backward and training steps equal the CPU backend on random inputs (relative error < 1e-4), also for
//!   images smaller than a dilation and for dilations whose halo does not fit in shared memory; streamed
//!   inference equals the batch forward pass; f16 / bf16 feature storage stays close to f32.
#![cfg(feature = "cuda")]

use msd_net::cuda::{self, ComputeCapability, CudaBackend, CudaDevice, Error, KernelModule};
use msd_net::{
    AdamConfig, Augmentation, Backend, BatchShape, CpuBackend, Dataset, FeatureStorage, InferenceOptions,
    LossConfig, MsdConfig, Params, TrainConfig, train_with_backend,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

#[test]
fn without_a_gpu_creation_is_a_typed_error() {
    let config = MsdConfig::new(4, 1, 1, 2);
    if !cuda::driver_available() {
        assert!(matches!(CudaDevice::new(0), Err(Error::CudaUnavailable { .. })));
        let err = CudaBackend::new(0, &config).expect_err("no driver, no backend");
        assert!(matches!(err, Error::CudaUnavailable { .. }), "{err}");
        // The crate's error keeps the CUDA error whole, as its source.
        let as_crate: msd_net::Error = err.into();
        assert!(matches!(&as_crate, msd_net::Error::Cuda(Error::CudaUnavailable { .. })), "{as_crate:?}");
        let source = std::error::Error::source(&as_crate).map(|s| s.to_string()).unwrap_or_default();
        assert!(source.contains("CUDA is not available"), "{source}");
        return;
    }
    // A machine with a driver: either a working device or a typed reason why not.
    match CudaBackend::new(0, &config) {
        Ok(b) => assert!(b.name().starts_with("cuda:0")),
        Err(e) => assert!(
            matches!(
                e,
                Error::CudaUnavailable { .. } | Error::NvrtcUnavailable { .. } | Error::Driver { .. }
            ),
            "{e}"
        ),
    }
}

#[test]
fn a_device_ordinal_past_the_last_is_refused() {
    match cuda::device_count() {
        Ok(n) => assert!(matches!(CudaDevice::new(n), Err(Error::CudaUnavailable { .. }))),
        Err(e) => assert!(matches!(e, Error::CudaUnavailable { .. })),
    }
}

#[test]
fn configurations_the_kernels_cannot_run_are_refused_before_any_device_call() {
    assert!(matches!(cuda::check_config(&MsdConfig::new(3, 1, 1, 9)), Err(Error::InvalidShape(_))));
    assert!(matches!(cuda::check_config(&MsdConfig::new(0, 1, 1, 2)), Err(Error::Net(_))));
    assert!(cuda::check_config(&MsdConfig::new(100, 1, 1, 2)).is_ok());
}

/// The `.entry` names of a PTX text.
fn ptx_entries(ptx: &str) -> Vec<String> {
    ptx.lines()
        .filter_map(|l| {
            let l = l.trim_start();
            let rest = l.strip_prefix(".visible .entry ").or_else(|| l.strip_prefix(".entry "))?;
            Some(rest.split(|c: char| c == '(' || c.is_whitespace()).next()?.to_owned())
        })
        .collect()
}

#[test]
#[ignore = "needs libnvrtc on LD_LIBRARY_PATH (no GPU); see src/cuda/README.md"]
fn nvrtc_compiles_every_kernel_for_every_supported_arch() {
    assert!(cuda::nvrtc_available(), "libnvrtc not found: set LD_LIBRARY_PATH");
    let archs = [(7, 5), (8, 0), (8, 6), (8, 9), (9, 0)];
    for (major, minor) in archs {
        let cc = ComputeCapability { major, minor };
        for module in KernelModule::ALL {
            let ptx = match cuda::compile(module, cc, &[]) {
                Ok(p) => p.to_src(),
                Err(e) => panic!("{e}"),
            };
            let mut found = ptx_entries(&ptx);
            found.sort();
            let mut wanted: Vec<String> = module.entry_points().iter().map(|s| (*s).to_owned()).collect();
            wanted.sort();
            assert_eq!(found, wanted, "{} for {}", module.file_name(), cc.virtual_arch());
            assert!(ptx.contains(&format!(".target sm_{major}{minor}")), "{}", module.file_name());
        }
    }
}

#[test]
#[ignore = "needs libnvrtc on LD_LIBRARY_PATH (no GPU); see src/cuda/README.md"]
fn nvrtc_reports_errors_and_picks_supported_archs() {
    assert!(cuda::nvrtc_available(), "libnvrtc not found: set LD_LIBRARY_PATH");
    let h100 = ComputeCapability { major: 9, minor: 0 };
    assert_eq!(cuda::best_arch_for(h100).unwrap(), h100);
    let future = ComputeCapability { major: 99, minor: 9 };
    let best = cuda::best_arch_for(future).unwrap();
    assert!(best >= h100 && best < future, "{best:?}");
    let ancient = ComputeCapability { major: 1, minor: 0 };
    assert!(matches!(cuda::best_arch_for(ancient), Err(Error::NvrtcUnavailable { .. })));
    // Extra options reach the compiler: a tuning macro compiles, a broken one is reported with its log.
    let tuned = ["-DMSD_CONV_MIN_BLOCKS=3".to_owned()];
    assert!(cuda::compile(KernelModule::ConvForward, h100, &tuned).is_ok());
    let broken = ["-DMSD_CONV_MIN_BLOCKS=(".to_owned()];
    match cuda::compile(KernelModule::ConvForward, h100, &broken) {
        Err(Error::Compile { module, log, .. }) => {
            assert_eq!(module, "conv_forward.cu");
            assert!(!log.is_empty());
        }
        other => panic!("expected a compile error, got {:?}", other.map(|_| ())),
    }
}

// ---------------------------------------------------------------------------------------------------
// GPU tests: the CUDA backend against the CPU backend.

fn normal(rng: &mut StdRng, scale: f32) -> f32 {
    scale * rng.sample::<f32, _>(StandardNormal)
}

/// Random parameters with non-zero biases and head, so every gradient path carries signal.
fn random_params(config: &MsdConfig, seed: u64) -> Params {
    let mut p = Params::init(config, seed).unwrap();
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
    for v in &mut p.conv_biases {
        *v = normal(&mut rng, 0.1);
    }
    for v in &mut p.final_weights {
        *v = normal(&mut rng, 0.5);
    }
    for v in &mut p.final_biases {
        *v = normal(&mut rng, 0.1);
    }
    p
}

struct Case {
    name: &'static str,
    config: MsdConfig,
    images: usize,
    h: usize,
    w: usize,
}

fn cases() -> Vec<Case> {
    vec![
        // Default dilations 1..10 over images that are not multiples of the 32×32 tiles.
        Case { name: "depth12", config: MsdConfig::new(12, 1, 1, 2), images: 3, h: 37, w: 29 },
        // Images smaller than most dilations: the mirror reflects several times.
        Case { name: "tiny", config: MsdConfig::new(10, 1, 1, 2), images: 2, h: 5, w: 7 },
        // Width 5 (a group of 4 output channels and a remainder), 2 input channels, 3 classes.
        Case { name: "wide", config: MsdConfig::new(6, 5, 2, 3), images: 2, h: 40, w: 33 },
        // Halos too large for shared memory: the direct kernels.
        Case {
            name: "direct",
            config: MsdConfig::new(3, 2, 1, 2).with_dilations(vec![40, 3, 57]),
            images: 1,
            h: 70,
            w: 90,
        },
        // One-pixel-wide images.
        Case { name: "column", config: MsdConfig::new(4, 1, 1, 2), images: 2, h: 19, w: 1 },
    ]
}

fn rel_err(got: &[f32], want: &[f32]) -> f64 {
    assert_eq!(got.len(), want.len());
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for (&g, &w) in got.iter().zip(want) {
        assert!(g.is_finite(), "non-finite GPU value");
        num += (f64::from(g) - f64::from(w)).powi(2);
        den += f64::from(w).powi(2);
    }
    if den == 0.0 { num.sqrt() } else { (num / den).sqrt() }
}

fn assert_close(what: &str, got: &[f32], want: &[f32]) {
    let e = rel_err(got, want);
    assert!(e < 1e-4, "{what}: relative error {e:.3e}");
}

fn batch_data(case: &Case, seed: u64) -> (Vec<f32>, Vec<u8>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let n = case.images * case.h * case.w;
    let input = (0..n * case.config.input_channels).map(|_| normal(&mut rng, 1.0)).collect();
    let labels = (0..n).map(|_| rng.random_range(0..case.config.n_classes as u8)).collect();
    (input, labels)
}

fn shape_of(case: &Case) -> BatchShape {
    BatchShape { images: case.images, height: case.h, width: case.w }
}

fn backends(case: &Case, seed: u64) -> (CudaBackend, CpuBackend) {
    let params = random_params(&case.config, seed);
    let mut gpu = CudaBackend::new(0, &case.config).expect("a CUDA device");
    let mut cpu = CpuBackend::new(&case.config).unwrap();
    gpu.set_params(&params).unwrap();
    cpu.set_params(&params).unwrap();
    (gpu, cpu)
}

fn probabilities(b: &mut dyn Backend, case: &Case) -> Vec<f32> {
    let mut out = vec![f32::NAN; case.images * case.config.n_classes * case.h * case.w];
    b.probabilities(&mut out).unwrap();
    out
}

#[test]
#[ignore = "needs an NVIDIA GPU"]
fn forward_equals_cpu() {
    for (k, case) in cases().iter().enumerate() {
        let (mut gpu, mut cpu) = backends(case, 11 + k as u64);
        let (input, _) = batch_data(case, 100 + k as u64);
        gpu.forward(&input, shape_of(case)).unwrap();
        cpu.forward(&input, shape_of(case)).unwrap();
        let feats = gpu.features().unwrap();
        let per_image = case.config.total_channels() * case.h * case.w;
        for i in 0..case.images {
            let want = cpu.features(i).unwrap();
            assert_close(
                &format!("{}: features of image {i}", case.name),
                &feats[i * per_image..(i + 1) * per_image],
                want,
            );
        }
        assert_close(case.name, &probabilities(&mut gpu, case), &probabilities(&mut cpu, case));
    }
}

#[test]
#[ignore = "needs an NVIDIA GPU"]
fn loss_and_backward_equal_cpu() {
    for (k, case) in cases().iter().enumerate() {
        let (mut gpu, mut cpu) = backends(case, 21 + k as u64);
        let (input, labels) = batch_data(case, 200 + k as u64);
        let mut weights = vec![1.0f32; case.config.n_classes];
        weights[0] = 0.3;
        for loss in [LossConfig::default(), LossConfig { class_weights: Some(weights), dice_weight: 0.5 }] {
            gpu.forward(&input, shape_of(case)).unwrap();
            cpu.forward(&input, shape_of(case)).unwrap();
            let lg = gpu.loss(&labels, &loss).unwrap();
            let lc = cpu.loss(&labels, &loss).unwrap();
            for (what, g, c) in [
                ("loss", lg.loss, lc.loss),
                ("cross-entropy", lg.cross_entropy, lc.cross_entropy),
                ("soft Dice", lg.soft_dice, lc.soft_dice),
            ] {
                assert!((g - c).abs() <= 1e-4 * c.abs().max(1e-3), "{}: {what} {g} vs {c}", case.name);
            }
            assert_eq!(lg.pixels, lc.pixels);
            gpu.backward().unwrap();
            cpu.backward().unwrap();
            let (g, c) = (gpu.gradients().unwrap(), cpu.gradients().unwrap());
            let tag = format!("{} (dice {})", case.name, loss.dice_weight);
            assert_close(&format!("{tag}: conv weight gradients"), &g.conv_weights, &c.conv_weights);
            assert_close(&format!("{tag}: conv bias gradients"), &g.conv_biases, &c.conv_biases);
            assert_close(&format!("{tag}: head weight gradients"), &g.final_weights, &c.final_weights);
            assert_close(&format!("{tag}: head bias gradients"), &g.final_biases, &c.final_biases);
        }
    }
}

/// The input gradient (channels 0..c_in of the feature gradient) against a central finite difference of
/// the GPU loss itself, at a few random pixels near the borders: checks the mirrored adjoint end to end.
#[test]
#[ignore = "needs an NVIDIA GPU"]
fn input_gradient_matches_finite_differences() {
    let case = &cases()[1];
    let (mut gpu, _) = backends(case, 31);
    let (input, labels) = batch_data(case, 301);
    let loss = LossConfig::default();
    gpu.forward(&input, shape_of(case)).unwrap();
    gpu.loss(&labels, &loss).unwrap();
    gpu.backward().unwrap();
    let grad = gpu.feature_gradients().unwrap();
    let plane = case.h * case.w;
    let c_total = case.config.total_channels();
    let eval = |net: &mut CudaBackend, x: &[f32]| -> f64 {
        net.forward(x, shape_of(case)).unwrap();
        net.loss(&labels, &loss).unwrap().loss
    };
    let mut rng = StdRng::seed_from_u64(7);
    for _ in 0..12 {
        let img = rng.random_range(0..case.images);
        let p = rng.random_range(0..plane);
        let idx = img * plane + p;
        let eps = 1e-2f32;
        let mut x = input.clone();
        x[idx] += eps;
        let up = eval(&mut gpu, &x);
        x[idx] -= 2.0 * eps;
        let down = eval(&mut gpu, &x);
        let fd = (up - down) / (2.0 * f64::from(eps));
        let an = f64::from(grad[img * c_total * plane + p]);
        assert!((fd - an).abs() <= 2e-2 * an.abs().max(1e-3), "pixel {idx}: analytic {an}, numeric {fd}");
    }
}

#[test]
#[ignore = "needs an NVIDIA GPU"]
fn training_steps_equal_cpu() {
    for (k, case) in cases().iter().enumerate() {
        let (mut gpu, mut cpu) = backends(case, 41 + k as u64);
        let loss = LossConfig { class_weights: None, dice_weight: 0.25 };
        let adam = AdamConfig { lr: 1e-3, ..AdamConfig::default() };
        for step in 0..3 {
            let (input, labels) = batch_data(case, 400 + 10 * k as u64 + step);
            for b in [&mut gpu as &mut dyn Backend, &mut cpu as &mut dyn Backend] {
                b.forward(&input, shape_of(case)).unwrap();
                b.loss(&labels, &loss).unwrap();
                b.backward().unwrap();
                b.adam_step(&adam).unwrap();
            }
        }
        let (g, c) = (gpu.params().unwrap(), cpu.params().unwrap());
        assert_close(&format!("{}: conv weights after 3 steps", case.name), &g.conv_weights, &c.conv_weights);
        assert_close(&format!("{}: conv biases after 3 steps", case.name), &g.conv_biases, &c.conv_biases);
        assert_close(
            &format!("{}: head weights after 3 steps", case.name),
            &g.final_weights,
            &c.final_weights,
        );
        assert_close(&format!("{}: head bias after 3 steps", case.name), &g.final_biases, &c.final_biases);
        let (sg, sc) = (gpu.optimizer_state().unwrap(), cpu.optimizer_state().unwrap());
        assert_eq!(sg.step, sc.step);
        assert_close(&format!("{}: Adam second moment", case.name), &sg.v.conv_weights, &sc.v.conv_weights);
    }
}

fn argmax(probs: &[f32], images: usize, classes: usize, plane: usize) -> Vec<u8> {
    let mut out = vec![0u8; images * plane];
    for i in 0..images {
        for p in 0..plane {
            let mut best = 0;
            for k in 1..classes {
                if probs[(i * classes + k) * plane + p] > probs[(i * classes + best) * plane + p] {
                    best = k;
                }
            }
            out[i * plane + p] = best as u8;
        }
    }
    out
}

#[test]
#[ignore = "needs an NVIDIA GPU"]
fn streamed_segmentation_equals_the_batch_forward_pass() {
    let case = Case { name: "stream", config: MsdConfig::new(10, 1, 1, 2), images: 7, h: 45, w: 38 };
    let (mut gpu, _) = backends(&case, 51);
    let (input, _) = batch_data(&case, 501);
    gpu.forward(&input, shape_of(&case)).unwrap();
    let probs = probabilities(&mut gpu, &case);
    let want = argmax(&probs, case.images, 2, case.h * case.w);
    for batch in [1, 3, 7, 16] {
        let opts = InferenceOptions::default().with_batch(batch);
        let got = gpu.segment_slices(&input, shape_of(&case), opts).unwrap();
        assert_eq!(got, want, "batch {batch}");
    }
    // Reduced precision: labels agree wherever f32 is not close to a tie.
    for storage in [FeatureStorage::F16, FeatureStorage::Bf16] {
        let opts = InferenceOptions::default().with_batch(3).with_storage(storage);
        let got = gpu.segment_slices(&input, shape_of(&case), opts).unwrap();
        let plane = case.h * case.w;
        let mut disagree = 0;
        for i in 0..case.images {
            for p in 0..plane {
                let margin = (probs[(i * 2 + 1) * plane + p] - probs[(i * 2) * plane + p]).abs();
                let (g, w) = (got[i * plane + p], want[i * plane + p]);
                if margin > 0.05 {
                    assert_eq!(g, w, "{storage:?}: image {i} pixel {p} (margin {margin})");
                }
                disagree += usize::from(g != w);
            }
        }
        assert!(disagree * 100 <= want.len(), "{storage:?}: {disagree} of {} labels differ", want.len());
    }
}

#[test]
#[ignore = "needs an NVIDIA GPU"]
fn segment_volume_keeps_the_geometry() {
    let config = MsdConfig::new(5, 1, 1, 2);
    let mut gpu = CudaBackend::new(0, &config).unwrap();
    gpu.set_params(&random_params(&config, 61)).unwrap();
    let mut rng = StdRng::seed_from_u64(62);
    let data = ndarray::Array3::from_shape_fn((4, 20, 24), |_| normal(&mut rng, 1.0));
    let volume = msd_io::Volume::new(data.clone(), msd_io::Geometry::default()).unwrap();
    let labels = gpu.segment_volume(&volume, InferenceOptions::default()).unwrap();
    assert_eq!(labels.shape(), [4, 20, 24]);
    assert_eq!(labels.geometry(), volume.geometry());
    let flat = data.as_standard_layout().as_slice().unwrap().to_vec();
    let shape = BatchShape { images: 4, height: 20, width: 24 };
    let direct = gpu.segment_slices(&flat, shape, InferenceOptions::default()).unwrap();
    assert_eq!(labels.data().as_standard_layout().as_slice().unwrap(), &direct[..]);
}

#[test]
#[ignore = "needs an NVIDIA GPU"]
fn bad_input_gets_typed_errors() {
    let config = MsdConfig::new(3, 1, 1, 2);
    let mut net = CudaBackend::new(0, &config).unwrap();
    use msd_net::Error::Cuda;
    let one = BatchShape { images: 1, height: 3, width: 4 };
    assert!(matches!(net.backward(), Err(Cuda(Error::OutOfOrder { .. }))));
    assert!(matches!(net.forward(&[0.0; 10], one), Err(Cuda(Error::InvalidArgument { .. }))));
    let mut x = vec![0.5f32; 12];
    x[5] = f32::NAN;
    assert!(matches!(net.forward(&x, one), Err(Cuda(Error::InvalidArgument { .. }))));
    net.forward(&[0.5; 12], one).unwrap();
    assert!(matches!(
        net.loss(&[0, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0], &LossConfig::default()),
        Err(Cuda(Error::InvalidArgument { .. }))
    ));
    assert!(matches!(net.adam_step(&AdamConfig::default()), Err(Cuda(Error::OutOfOrder { .. }))));
    let opts = InferenceOptions::default().with_batch(0);
    assert!(matches!(net.segment_slices(&[0.5; 12], one, opts), Err(Cuda(Error::InvalidArgument { .. }))));
}

/// The crate's training loop (the same code the CPU path uses) drives the CUDA backend to the same
/// losses and parameters as the CPU backend.
#[test]
#[ignore = "needs an NVIDIA GPU"]
fn the_crates_training_loop_gives_the_same_model_on_gpu_and_cpu() {
    let mut dataset = Dataset::new(1).unwrap();
    for case in 0..2u64 {
        let (d, h, w) = (4, 24, 28);
        let mut rng = StdRng::seed_from_u64(case);
        let inside = |z: usize, y: usize, x: usize| {
            let r = ((y as f32 - 12.0).powi(2) + (x as f32 - 14.0).powi(2)).sqrt();
            r < 5.0 + z as f32
        };
        let ct =
            ndarray::Array3::from_shape_fn((d, h, w), |(z, y, x)| if inside(z, y, x) { 1000.0 } else { 0.0 })
                + ndarray::Array3::from_shape_fn((d, h, w), |_| normal(&mut rng, 80.0));
        let labels = ndarray::Array3::from_shape_fn((d, h, w), |(z, y, x)| u8::from(inside(z, y, x)));
        let geometry = msd_io::Geometry::default();
        let ct = msd_io::Volume::new(ct, geometry).unwrap();
        let labels = msd_io::Volume::new(labels, geometry).unwrap();
        dataset.add(&ct, &labels).unwrap();
    }
    let config = TrainConfig {
        network: MsdConfig::new(6, 1, 1, 2),
        epochs: 2,
        batch_size: 2,
        patch_size: None,
        augmentation: Augmentation::none(),
        validation_fraction: 0.25,
        early_stopping_patience: None,
        ..TrainConfig::default()
    };
    let cpu = train_with_backend(&mut CpuBackend::new(&config.network).unwrap(), &dataset, &config, |_| {})
        .unwrap();
    let mut gpu_backend = CudaBackend::new(0, &config.network).unwrap();
    let gpu = train_with_backend(&mut gpu_backend, &dataset, &config, |_| {}).unwrap();
    assert_eq!(cpu.steps, gpu.steps);
    assert_eq!(cpu.history.len(), gpu.history.len());
    for (c, g) in cpu.history.iter().zip(&gpu.history) {
        let tol = 1e-3 * c.train_loss.abs().max(1e-3);
        assert!(
            (c.train_loss - g.train_loss).abs() <= tol,
            "epoch {}: {} vs {}",
            c.epoch,
            c.train_loss,
            g.train_loss
        );
    }
    // Adam's update is nearly sign(g)·lr for tiny gradients, so allow rounding to flip a few of them.
    for (what, g, c) in [
        ("conv weights", &gpu.model.params.conv_weights, &cpu.model.params.conv_weights),
        ("head weights", &gpu.model.params.final_weights, &cpu.model.params.final_weights),
    ] {
        let e = rel_err(g, c);
        assert!(e < 1e-3, "trained {what}: relative error {e:.3e}");
    }
}
