//! CUDA benchmarks of the MSDnet (feature `cuda`): forward pass and training step per 512² slice, and
//! segmentation of a whole 512×512×250 volume including host↔device transfers, at depth 100.
//!
//! Criterion measures each case; a table follows with per-slice times, achieved FLOP/s and DRAM
//! traffic against the device's peaks (FP32 FMA peak from SM count × clock; copy bandwidth measured
//! here with a 1 GiB device-to-device copy). Without a GPU the bench says why and exits cleanly.
//!
//! `cargo bench -p msd-net --features cuda --bench cuda` (see src/cuda/README.md for the GPU runbook;
//! `MSD_BENCH_QUICK=1` shrinks the volume to 32 slices for a smoke run).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use cudarc::driver::sys::CUdevice_attribute;
use msd_net::cuda::{CudaBackend, CudaDevice};
use msd_net::{
    AdamConfig, Backend, BatchShape, FeatureStorage, InferenceOptions, LossConfig, LossValue, MsdConfig,
    Params,
};

const H: usize = 512;
const W: usize = 512;
const FORWARD_BATCH: usize = 8;
const TRAIN_BATCH: usize = 4;

/// Deterministic, cheap pseudo-random values in [-1, 1) (xorshift), so that setup stays fast.
fn noise(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 23) as f32) - 1.0
        })
        .collect()
}

fn labels(n: usize) -> Vec<u8> {
    noise(n, 99).iter().map(|v| u8::from(*v > 0.6)).collect()
}

/// One training step through the trait: forward, loss, backward, Adam; the loss before the update.
fn train_step(
    net: &mut CudaBackend,
    input: &[f32],
    labels: &[u8],
    shape: BatchShape,
    loss: &LossConfig,
    adam: &AdamConfig,
) -> LossValue {
    net.forward(input, shape).expect("forward");
    let value = net.loss(labels, loss).expect("loss");
    net.backward().expect("backward");
    net.adam_step(adam).expect("Adam step");
    value
}

fn median_seconds(runs: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut t: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

/// Measured device-to-device copy bandwidth (bytes read + written per second).
fn copy_bandwidth(dev: &Arc<CudaDevice>) -> f64 {
    let n = 1usize << 28; // 1 GiB of f32
    let s = dev.compute_stream();
    let (Ok(src), Ok(mut dst)) = (s.alloc_zeros::<f32>(n), s.alloc_zeros::<f32>(n)) else {
        return f64::NAN;
    };
    let secs = median_seconds(5, || {
        s.memcpy_dtod(&src, &mut dst).expect("device copy");
        s.synchronize().expect("sync");
    });
    2.0 * (n * 4) as f64 / secs
}

/// FP32 FMA peak: SMs × 128 FP32 lanes × 2 FLOP × boost clock.
fn fp32_peak(dev: &Arc<CudaDevice>) -> f64 {
    let clock_khz = dev.context().attribute(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_CLOCK_RATE).unwrap_or(0);
    f64::from(dev.multiprocessors()) * 128.0 * 2.0 * f64::from(clock_khz) * 1e3
}

/// DRAM bytes of one forward pass per slice if each layer reads its input channels once and writes its
/// outputs once (the halo re-reads hit L2): the floor the kernels are measured against.
fn forward_bytes(config: &MsdConfig, bytes_per_value: usize) -> f64 {
    let px = (H * W) as f64;
    let reads: usize = (0..config.depth).map(|i| config.layer_inputs(i) + config.width).sum();
    (reads + config.total_channels()) as f64 * px * bytes_per_value as f64
}

/// DRAM bytes of one training step per slice under the same model: the forward pass, the head's gradient
/// written to every channel, and the grouped backward (10 layers per group: the lower channels' gradient
/// read and written and their features read once per group; within a group, per layer).
fn train_bytes(config: &MsdConfig) -> f64 {
    let px = (H * W) as f64;
    let gl = (10 / config.width).max(1);
    let mut channels = config.total_channels();
    let mut i1 = config.depth;
    while i1 > 0 {
        let i0 = i1.saturating_sub(gl);
        let cin0 = config.layer_inputs(i0);
        channels += 2 * cin0 + config.layer_inputs(i1 - 1);
        for i in i0..i1 {
            channels += 2 * (config.layer_inputs(i) - cin0) + 3 * config.width;
        }
        i1 = i0;
    }
    forward_bytes(config, 4) + channels as f64 * px * 4.0
}

fn main() {
    let quick = std::env::var_os("MSD_BENCH_QUICK").is_some();
    let slices = if quick { 32 } else { 250 };
    let dev = match CudaDevice::new(0) {
        Ok(d) => d,
        Err(e) => {
            println!("cuda bench skipped: {e}");
            return;
        }
    };
    let config = MsdConfig::new(100, 1, 1, 2);
    let mut params = Params::init(&config, 1).expect("parameters");
    for (i, w) in params.final_weights.iter_mut().enumerate() {
        *w = if i % 2 == 0 { 0.05 } else { -0.05 };
    }
    let mut net = CudaBackend::on_device(dev.clone(), &config).expect("network");
    net.set_params(&params).expect("parameters");
    let fwd_shape = BatchShape { images: FORWARD_BATCH, height: H, width: W };
    let train_shape = BatchShape { images: TRAIN_BATCH, height: H, width: W };
    let volume_shape = BatchShape { images: slices, height: H, width: W };
    dev.load_all().expect("kernels compile");
    let fwd_input = noise(FORWARD_BATCH * H * W, 1);
    let train_input = noise(TRAIN_BATCH * H * W, 2);
    let train_labels = labels(TRAIN_BATCH * H * W);
    let volume = noise(slices * H * W, 3);
    let loss = LossConfig::default();
    let adam = AdamConfig::default();
    let fwd_flops = config.forward_flops(H, W);
    let train_flops = config.train_step_flops(H, W);

    // Defaults first, so that command-line options (--measurement-time, filters, ...) override them.
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    {
        let mut g = c.benchmark_group("cuda_msd_d100");
        g.throughput(Throughput::Elements((fwd_flops * FORWARD_BATCH as f64) as u64));
        g.bench_function("forward_8x512x512", |b| {
            b.iter(|| {
                net.forward(black_box(&fwd_input), fwd_shape).expect("forward");
                dev.synchronize().expect("sync");
            })
        });
        g.throughput(Throughput::Elements((train_flops * TRAIN_BATCH as f64) as u64));
        g.bench_function("train_step_4x512x512", |b| {
            b.iter(|| train_step(&mut net, black_box(&train_input), &train_labels, train_shape, &loss, &adam))
        });
        g.throughput(Throughput::Elements((slices * H * W) as u64));
        for storage in [FeatureStorage::F32, FeatureStorage::F16, FeatureStorage::Bf16] {
            let opts = InferenceOptions::default().with_batch(8).with_storage(storage);
            g.bench_function(format!("segment_{slices}x512x512_{storage:?}"), |b| {
                b.iter(|| net.segment_slices(black_box(&volume), volume_shape, opts).expect("segment"))
            });
        }
        g.finish();
    }
    c.final_summary();

    // The table.
    let bw = copy_bandwidth(&dev);
    let peak = fp32_peak(&dev);
    let fwd = median_seconds(10, || {
        net.forward(&fwd_input, fwd_shape).expect("forward");
        dev.synchronize().expect("sync");
    }) / FORWARD_BATCH as f64;
    let step = median_seconds(10, || {
        train_step(&mut net, &train_input, &train_labels, train_shape, &loss, &adam);
    }) / TRAIN_BATCH as f64;
    println!();
    println!(
        "MSDnet depth 100, width 1, 512×512 slices on {} (sm_{}{}, {} SMs)",
        dev.name(),
        dev.capability().major,
        dev.capability().minor,
        dev.multiprocessors()
    );
    println!(
        "device peaks: FP32 FMA {:.1} TFLOP/s (SMs × 128 × 2 × clock), copy {:.0} GB/s (measured D2D, read+write)",
        peak / 1e12,
        bw / 1e9
    );
    println!("| case | time | per slice | GFLOP/s | % FP32 peak | DRAM GB/s (floor model) | % copy BW |");
    println!("|---|---|---|---|---|---|---|");
    let row = |name: &str, total: f64, per_slice: f64, flops: f64, bytes: f64| {
        println!(
            "| {name} | {:.2} ms | {:.3} ms | {:.0} | {:.1} % | {:.0} | {:.1} % |",
            total * 1e3,
            per_slice * 1e3,
            flops / per_slice / 1e9,
            100.0 * flops / per_slice / peak,
            bytes / per_slice / 1e9,
            100.0 * bytes / per_slice / bw
        );
    };
    row("forward (f32, batch 8)", fwd * FORWARD_BATCH as f64, fwd, fwd_flops, forward_bytes(&config, 4));
    row("training step (batch 4)", step * TRAIN_BATCH as f64, step, train_flops, train_bytes(&config));
    for (storage, bytes) in [(FeatureStorage::F32, 4), (FeatureStorage::F16, 2), (FeatureStorage::Bf16, 2)] {
        let opts = InferenceOptions::default().with_batch(8).with_storage(storage);
        let total = median_seconds(3, || {
            net.segment_slices(&volume, volume_shape, opts).expect("segment");
        });
        row(
            &format!("volume 512×512×{slices} {storage:?} incl. transfers"),
            total,
            total / slices as f64,
            fwd_flops,
            forward_bytes(&config, bytes),
        );
    }
    println!(
        "projected training run, 10 epochs × 3000 slices: {:.1} min (target ≤ 5 min)",
        step * 30_000.0 / 60.0
    );
}
