//! The hand-written kernels against candle's conv2d composition (the oracle), the naive reference
//! loops, and finite differences in f64.
use candle_core::{Device, Tensor};
use msd_net::kernels::{self, Isa};
use msd_net::{Backend, BatchShape, CandleMsd, CpuBackend, MsdConfig, Params};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn random_params(config: &MsdConfig, seed: u64) -> Params {
    let mut p = Params::init(config, seed).unwrap();
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
    // Non-zero biases and final layer so every path carries signal; biases straddle 0 so some
    // ReLUs are active and some are not.
    for b in &mut p.conv_biases {
        *b = rng.random_range(-0.2..0.3);
    }
    for v in p.final_weights.iter_mut().chain(p.final_biases.iter_mut()) {
        *v = rng.random_range(-1.0..1.0);
    }
    p
}

fn random_vec(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
}

fn rel_err(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let num: f64 = a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
    let den: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum();
    (num / den.max(1e-30)).sqrt()
}

/// Forward and vector-Jacobian product of the whole network on the CPU backend and on the candle
/// composition; returns relative errors (features, parameter gradients).
fn compare_with_candle(config: &MsdConfig, n: usize, h: usize, w: usize, seed: u64, isa: Isa) -> (f64, f64) {
    let params = random_params(config, seed);
    let input = random_vec(n * config.input_channels * h * w, seed + 1);
    let upstream = random_vec(n * config.n_classes * h * w, seed + 2);

    let mut cpu = CpuBackend::with_isa(config, isa).unwrap();
    cpu.set_params(&params).unwrap();
    let shape = BatchShape { images: n, height: h, width: w };
    cpu.forward(&input, shape).unwrap();
    cpu.set_logit_gradients(&upstream).unwrap();
    cpu.backward().unwrap();
    let grads = cpu.gradients().unwrap();
    let feats: Vec<f32> = (0..n).flat_map(|i| cpu.features(i).unwrap().to_vec()).collect();

    let dev = Device::Cpu;
    let net = CandleMsd::new(config, &params, &dev).unwrap();
    let x = Tensor::from_slice(&input, (n, config.input_channels, h, w), &dev).unwrap();
    let f = net.features(&x).unwrap();
    let logits = net.logits(&f).unwrap();
    let r = Tensor::from_slice(&upstream, (n, config.n_classes, h, w), &dev).unwrap();
    let loss = (logits * r).unwrap().sum_all().unwrap();
    let ref_grads = net.gradients(&loss).unwrap();
    let ref_feats = f.flatten_all().unwrap().to_vec1::<f32>().unwrap();

    let ef = rel_err(&feats, &ref_feats);
    let flat = |p: &Params| -> Vec<f32> {
        p.conv_weights
            .iter()
            .chain(&p.conv_biases)
            .chain(&p.final_weights)
            .chain(&p.final_biases)
            .copied()
            .collect()
    };
    let eg = rel_err(&flat(&grads), &flat(&ref_grads));
    // Each part on its own too, so a small tensor cannot hide behind a large one.
    for (name, a, b) in [
        ("conv weights", &grads.conv_weights, &ref_grads.conv_weights),
        ("conv biases", &grads.conv_biases, &ref_grads.conv_biases),
        ("final weights", &grads.final_weights, &ref_grads.final_weights),
    ] {
        let e = rel_err(a, b);
        assert!(e < 1e-4, "{name} gradient rel err {e} ({config:?}, {h}x{w}, {isa:?})");
    }
    (ef, eg)
}

#[test]
fn matches_candle_on_several_shapes_and_isas() {
    let cases = [
        (MsdConfig::new(12, 1, 1, 2), 2, 23, 31),
        (MsdConfig::new(11, 1, 1, 2), 1, 30, 170),
        (MsdConfig::new(5, 2, 3, 3), 1, 17, 40),
        // Images smaller than the dilation: reflection wraps more than once.
        (MsdConfig::new(4, 1, 1, 2).with_dilations(vec![7, 3, 12, 1]), 1, 5, 6),
        (MsdConfig::new(3, 1, 2, 2).with_dilations(vec![2, 9, 4]), 2, 1, 9),
        // A dilation past the banded kernels' limit: the plain loops serve it.
        (MsdConfig::new(3, 1, 1, 2).with_dilations(vec![1, 300, 2]), 1, 9, 11),
    ];
    for isa in Isa::available() {
        for (k, (config, n, h, w)) in cases.iter().enumerate() {
            let (ef, eg) = compare_with_candle(config, *n, *h, *w, 10 + k as u64, isa);
            assert!(ef < 1e-4, "features rel err {ef} for {config:?} {h}x{w} {isa:?}");
            assert!(eg < 1e-4, "gradients rel err {eg} for {config:?} {h}x{w} {isa:?}");
        }
    }
}

#[test]
fn fast_kernels_match_the_naive_loops() {
    // Rows of whole vectors (accumulated in place) and not (padded scratch rows); several bands.
    for (h, w) in [(37, 45), (29, 157), (70, 64)] {
        fast_matches_naive(h, w);
    }
}

fn fast_matches_naive(h: usize, w: usize) {
    // Deep enough that layers read more channels than one channel block.
    let config = MsdConfig::new(23, 1, 1, 2);
    let params = random_params(&config, 3);
    let hw = h * w;
    let mut naive = vec![0.0f32; config.total_channels() * hw];
    naive[..hw].copy_from_slice(&random_vec(hw, 4));
    let mut fast = naive.clone();
    kernels::reference::forward(&config, &params.conv_weights, &params.conv_biases, &mut naive, h, w);
    let upstream = random_vec(naive.len(), 5);
    let mut g_naive = upstream.clone();
    let mut dw_naive = vec![0.0; params.conv_weights.len()];
    let mut db_naive = vec![0.0; params.conv_biases.len()];
    kernels::reference::backward(
        &config,
        &params.conv_weights,
        &naive,
        &mut g_naive,
        &mut dw_naive,
        &mut db_naive,
        h,
        w,
    );
    for isa in Isa::available() {
        kernels::forward(isa, &config, &params.conv_weights, &params.conv_biases, &mut fast, h, w).unwrap();
        assert!(rel_err(&fast, &naive) < 1e-5, "{isa:?}");
        let mut g = upstream.clone();
        let mut dw = vec![0.0; params.conv_weights.len()];
        let mut db = vec![0.0; params.conv_biases.len()];
        kernels::backward(isa, &config, &params.conv_weights, &fast, &mut g, &mut dw, &mut db, h, w).unwrap();
        assert!(rel_err(&dw, &dw_naive) < 1e-5, "{isa:?}");
        assert!(rel_err(&db, &db_naive) < 1e-5, "{isa:?}");
        // Channels past the input hold the pre-ReLU gradients; the input channel is left alone.
        assert!(rel_err(&g[hw..], &g_naive[hw..]) < 1e-5, "{isa:?}");
        assert_eq!(&g[..hw], &upstream[..hw]);
    }
}

#[test]
fn gradient_matches_finite_differences_in_f64() {
    // L = Σ r ⊙ F over all layer outputs, in f64 through the naive loops.
    let config = MsdConfig::new(4, 2, 1, 2).with_dilations(vec![1, 3, 2, 5]);
    let (h, w) = (6, 7);
    let hw = h * w;
    let p = random_params(&config, 9);
    let wts: Vec<f64> = p.conv_weights.iter().map(|&v| v as f64).collect();
    let bs: Vec<f64> = p.conv_biases.iter().map(|&v| v as f64 + 0.1).collect();
    let input: Vec<f64> = random_vec(hw, 10).iter().map(|&v| v as f64).collect();
    let r: Vec<f64> = random_vec(config.total_channels() * hw, 11).iter().map(|&v| v as f64).collect();
    let loss = |wts: &[f64], bs: &[f64]| -> f64 {
        let mut f = vec![0.0f64; config.total_channels() * hw];
        f[..hw].copy_from_slice(&input);
        kernels::reference::forward(&config, wts, bs, &mut f, h, w);
        f[hw..].iter().zip(&r[hw..]).map(|(a, b)| a * b).sum()
    };
    let mut f = vec![0.0f64; config.total_channels() * hw];
    f[..hw].copy_from_slice(&input);
    kernels::reference::forward(&config, &wts, &bs, &mut f, h, w);
    let mut g = r.clone();
    g[..hw].iter_mut().for_each(|v| *v = 0.0);
    let mut dw = vec![0.0f64; wts.len()];
    let mut db = vec![0.0f64; bs.len()];
    kernels::reference::backward(&config, &wts, &f, &mut g, &mut dw, &mut db, h, w);
    let eps = 1e-6;
    for i in (0..wts.len()).step_by(7) {
        let (mut a, mut b) = (wts.clone(), wts.clone());
        a[i] += eps;
        b[i] -= eps;
        let fd = (loss(&a, &bs) - loss(&b, &bs)) / (2.0 * eps);
        assert!((fd - dw[i]).abs() < 1e-6 * (1.0 + fd.abs()), "weight {i}: fd {fd} vs {}", dw[i]);
    }
    for i in 0..bs.len() {
        let (mut a, mut b) = (bs.clone(), bs.clone());
        a[i] += eps;
        b[i] -= eps;
        let fd = (loss(&wts, &a) - loss(&wts, &b)) / (2.0 * eps);
        assert!((fd - db[i]).abs() < 1e-6 * (1.0 + fd.abs()), "bias {i}: fd {fd} vs {}", db[i]);
    }
    // The f32 fast kernels agree with the f64 gradient.
    let f32s = |v: &[f64]| -> Vec<f32> { v.iter().map(|&x| x as f32).collect() };
    let mut ff = vec![0.0f32; f.len()];
    ff[..hw].copy_from_slice(&f32s(&input));
    kernels::forward(Isa::detect(), &config, &f32s(&wts), &f32s(&bs), &mut ff, h, w).unwrap();
    let mut gf = f32s(&r);
    let mut dwf = vec![0.0f32; wts.len()];
    let mut dbf = vec![0.0f32; bs.len()];
    kernels::backward(Isa::detect(), &config, &f32s(&wts), &ff, &mut gf, &mut dwf, &mut dbf, h, w).unwrap();
    assert!(rel_err(&dwf, &f32s(&dw)) < 1e-5);
}

#[test]
fn rejects_wrong_lengths() {
    let config = MsdConfig::new(3, 1, 1, 2);
    let p = Params::zeros(&config);
    let mut feats = vec![0.0; 10];
    let err = kernels::forward(Isa::Scalar, &config, &p.conv_weights, &p.conv_biases, &mut feats, 4, 4);
    assert!(matches!(err, Err(msd_net::Error::BufferLength { .. })), "{err:?}");
    let mut cpu = CpuBackend::new(&config).unwrap();
    let bad = cpu.forward(&[0.0; 15], BatchShape { images: 1, height: 4, width: 4 });
    assert!(bad.is_err());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]
    #[test]
    fn any_shape_and_schedule_matches_candle(
        depth in 1usize..6,
        width in 1usize..3,
        c_in in 1usize..3,
        h in 1usize..14,
        w in 1usize..14,
        dil in proptest::collection::vec(1usize..16, 6),
        seed in 0u64..1000,
    ) {
        let config = MsdConfig::new(depth, width, c_in, 2).with_dilations(dil[..depth].to_vec());
        let (ef, eg) = compare_with_candle(&config, 1, h, w, seed, Isa::detect());
        prop_assert!(ef < 1e-4, "features {ef}");
        prop_assert!(eg < 1e-4, "gradients {eg}");
    }
}

#[test]
fn candle_custom_op_gradients_match_and_train_with_candle_nn() {
    use candle_core::Var;
    use candle_nn::{AdamW, Optimizer, ParamsAdamW};
    let config = MsdConfig::new(6, 1, 1, 2);
    let (n, h, w) = (2, 19, 26);
    let p = random_params(&config, 21);
    let dev = Device::Cpu;
    let x = Tensor::from_vec(random_vec(n * h * w, 22), (n, 1, h, w), &dev).unwrap();
    let r = Tensor::from_vec(random_vec(n * config.n_classes * h * w, 23), (n, config.n_classes, h, w), &dev)
        .unwrap();
    // Reference gradients from the candle composition.
    let net = CandleMsd::new(&config, &p, &dev).unwrap();
    let loss = (net.logits(&net.features(&x).unwrap()).unwrap() * &r).unwrap().sum_all().unwrap();
    let want = net.gradients(&loss).unwrap();
    // The same through the custom op.
    let wv = Var::from_vec(p.conv_weights.clone(), p.conv_weights.len(), &dev).unwrap();
    let bv = Var::from_vec(p.conv_biases.clone(), p.conv_biases.len(), &dev).unwrap();
    let fw = Tensor::from_vec(p.final_weights.clone(), (1, 2, config.total_channels()), &dev).unwrap();
    let fb = Tensor::from_vec(p.final_biases.clone(), (1, 2, 1), &dev).unwrap();
    let head = |f: &Tensor| -> Tensor {
        let flat = f.reshape((n, config.total_channels(), h * w)).unwrap();
        let fwb = fw.broadcast_as((n, 2, config.total_channels())).unwrap().contiguous().unwrap();
        fwb.matmul(&flat).unwrap().broadcast_add(&fb).unwrap().reshape((n, 2, h, w)).unwrap()
    };
    let feats = msd_net::msd_block(&config, &x, wv.as_tensor(), bv.as_tensor()).unwrap();
    let loss = (head(&feats) * &r).unwrap().sum_all().unwrap();
    let grads = loss.backward().unwrap();
    let gw = grads.get(wv.as_tensor()).unwrap().to_vec1::<f32>().unwrap();
    let gb = grads.get(bv.as_tensor()).unwrap().to_vec1::<f32>().unwrap();
    assert!(rel_err(&gw, &want.conv_weights) < 1e-4);
    assert!(rel_err(&gb, &want.conv_biases) < 1e-4);

    // candle-nn's AdamW lowers a loss through the op.
    let target = x.gt(0.3).unwrap().to_dtype(candle_core::DType::F32).unwrap();
    let mut opt = AdamW::new(
        vec![wv.clone(), bv.clone()],
        ParamsAdamW { lr: 1e-2, weight_decay: 0.0, ..Default::default() },
    )
    .unwrap();
    let objective = || -> Tensor {
        let f = msd_net::msd_block(&config, &x, wv.as_tensor(), bv.as_tensor()).unwrap();
        let last = f.narrow(1, config.total_channels() - 1, 1).unwrap();
        (last - &target).unwrap().sqr().unwrap().mean_all().unwrap()
    };
    let first = objective().to_scalar::<f32>().unwrap();
    for _ in 0..30 {
        opt.backward_step(&objective()).unwrap();
    }
    let last = objective().to_scalar::<f32>().unwrap();
    assert!(last < 0.7 * first, "{first} → {last}");
}

/// Band boundaries depend only on the image, and band sums are added in order: the same inputs
/// give bit-identical results with any number of threads.
#[test]
fn results_do_not_depend_on_the_number_of_threads() {
    let config = MsdConfig::new(13, 1, 1, 2);
    let params = random_params(&config, 21);
    let (h, w) = (70, 53);
    let hw = h * w;
    let input = random_vec(hw, 22);
    let upstream = random_vec(config.total_channels() * hw, 23);
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let mut feats = vec![0.0f32; config.total_channels() * hw];
            feats[..hw].copy_from_slice(&input);
            kernels::forward(
                Isa::detect(),
                &config,
                &params.conv_weights,
                &params.conv_biases,
                &mut feats,
                h,
                w,
            )
            .unwrap();
            let mut g = upstream.clone();
            let mut dw = vec![0.0; params.conv_weights.len()];
            let mut db = vec![0.0; params.conv_biases.len()];
            kernels::backward(
                Isa::detect(),
                &config,
                &params.conv_weights,
                &feats,
                &mut g,
                &mut dw,
                &mut db,
                h,
                w,
            )
            .unwrap();
            (feats, g, dw, db)
        })
    };
    let one = run(1);
    for threads in [2, 3] {
        assert!(run(threads) == one, "{threads} threads differ from one");
    }
}
