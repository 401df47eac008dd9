//! MSDnet CPU benchmarks: one dilated layer at several channel counts, the depth-100 width-1
//! network's forward pass (`f32` on each instruction set, and bf16 on AVX512-BF16 and AMX) and
//! training step at 256² and 512², the candle-composed reference in the same run for the ratio,
//! and this machine's FP32 FMA, bf16 dot-product and AMX peaks and memory bandwidth for scale.
//!
//! `cargo bench -p msd-net --bench msdnet -- --warm-up-time 1 --measurement-time 3`
use std::hint::black_box;

use candle_core::{Device, Tensor};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use msd_net::kernels::{self, Bf16Forward, Bf16Isa, Isa};
use msd_net::{Backend, BatchShape, CandleMsd, CpuBackend, LossConfig, MsdConfig, Params};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

fn random(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
}

fn params(config: &MsdConfig) -> Params {
    let mut p = Params::init(config, 0).unwrap();
    // Small positive biases keep most ReLUs active, the realistic (and slower) case.
    p.conv_biases.iter_mut().for_each(|b| *b = 0.05);
    p.final_weights = random(p.final_weights.len(), 1);
    p
}

fn name(what: &str) -> String {
    format!("cpu_{}_{what}", Isa::detect().name())
}

/// One 3×3 dilated layer reading `c` channels of a 512² image.
fn layer(c: &mut Criterion) {
    let mut g = c.benchmark_group(name("layer_512"));
    let (h, w) = (512, 512);
    for channels in [1usize, 10, 50, 100] {
        let config = MsdConfig::new(1, 1, channels, 2).with_dilations(vec![5]);
        let p = params(&config);
        let mut feats = random(config.total_channels() * h * w, 2);
        g.throughput(Throughput::Elements((2 * 9 * channels * h * w) as u64));
        g.bench_with_input(BenchmarkId::new("forward", channels), &channels, |b, _| {
            b.iter(|| {
                kernels::forward(Isa::detect(), &config, &p.conv_weights, &p.conv_biases, &mut feats, h, w)
                    .unwrap()
            })
        });
        let mut grads = random(feats.len(), 3);
        let mut dw = vec![0.0; p.conv_weights.len()];
        let mut db = vec![0.0; p.conv_biases.len()];
        g.throughput(Throughput::Elements((4 * 9 * channels * h * w) as u64));
        g.bench_with_input(BenchmarkId::new("backward", channels), &channels, |b, _| {
            b.iter(|| {
                kernels::backward(
                    Isa::detect(),
                    &config,
                    &p.conv_weights,
                    &feats,
                    &mut grads,
                    &mut dw,
                    &mut db,
                    h,
                    w,
                )
                .unwrap()
            })
        });
    }
    g.finish();
}

/// Depth 100, width 1, one image: forward and training step, ours and candle's.
fn network(c: &mut Criterion) {
    let config = MsdConfig::default();
    let p = params(&config);
    let mut g = c.benchmark_group(name("msdnet_d100"));
    g.sample_size(10);
    for size in [256usize, 512] {
        let shape = BatchShape { images: 1, height: size, width: size };
        let input = random(size * size, 4);
        let labels: Vec<u8> = random(size * size, 5).iter().map(|&v| (v > 0.6) as u8).collect();
        let mut cpu = CpuBackend::new(&config).unwrap();
        cpu.set_params(&p).unwrap();
        g.throughput(Throughput::Elements(config.forward_flops(size, size) as u64));
        g.bench_function(BenchmarkId::new("forward", size), |b| {
            b.iter(|| cpu.forward(black_box(&input), shape).unwrap())
        });
        g.throughput(Throughput::Elements(config.train_step_flops(size, size) as u64));
        g.bench_function(BenchmarkId::new("train_step", size), |b| {
            b.iter(|| {
                cpu.forward(&input, shape).unwrap();
                cpu.loss(&labels, &LossConfig::default()).unwrap();
                cpu.backward().unwrap();
            })
        });
        // The other instruction sets this CPU runs (the portable one compiled for the baseline
        // target), at 512²: what a machine without AVX-512 gets.
        if size == 512 {
            for isa in Isa::available().into_iter().filter(|&isa| isa != Isa::detect()) {
                let mut other = CpuBackend::with_isa(&config, isa).unwrap();
                other.set_params(&p).unwrap();
                g.throughput(Throughput::Elements(config.forward_flops(size, size) as u64));
                g.bench_function(BenchmarkId::new(format!("forward_{}", isa.name()), size), |b| {
                    b.iter(|| other.forward(black_box(&input), shape).unwrap())
                });
            }
        }
        // Inference with bf16 feature maps on each bf16 instruction set this CPU has (the same
        // FLOP count: the work is the same network's).
        if size == 512 {
            for isa in Bf16Isa::available().into_iter().filter(|&isa| isa != Bf16Isa::Portable) {
                let mut net = Bf16Forward::new(isa, &config, &p).unwrap();
                let mut logits = Vec::new();
                g.throughput(Throughput::Elements(config.forward_flops(size, size) as u64));
                g.bench_function(BenchmarkId::new(format!("forward_{}", isa.name()), size), |b| {
                    b.iter(|| net.forward(black_box(&input), size, size, &mut logits).unwrap())
                });
            }
        }
        // The candle composition takes seconds per pass: measured at 256² only, for the ratio.
        if size == 256 {
            let dev = Device::Cpu;
            let net = CandleMsd::new(&config, &p, &dev).unwrap();
            let x = Tensor::from_slice(&input, (1, 1, size, size), &dev).unwrap();
            g.throughput(Throughput::Elements(config.forward_flops(size, size) as u64));
            g.bench_function(BenchmarkId::new("candle_reference_forward", size), |b| {
                b.iter(|| {
                    let f = net.features(&x).unwrap();
                    net.logits(&f).unwrap()
                })
            });
            g.throughput(Throughput::Elements(config.train_step_flops(size, size) as u64));
            g.bench_function(BenchmarkId::new("candle_reference_train_step", size), |b| {
                b.iter(|| {
                    let f = net.features(&x).unwrap();
                    let l = net.logits(&f).unwrap().sum_all().unwrap();
                    net.gradients(&l).unwrap()
                })
            });
        }
    }
    g.finish();
}

/// FP32 FMA peak of all cores: independent fused multiply-adds on 16 lanes × 12 accumulators.
fn machine(c: &mut Criterion) {
    let mut g = c.benchmark_group("machine");
    const ITERS: usize = 1 << 20;
    let threads = rayon::current_num_threads();
    g.throughput(Throughput::Elements((threads * ITERS * 12 * 16 * 2) as u64));
    g.bench_function(format!("fp32_fma_peak_{threads}_threads"), |b| {
        b.iter(|| (0..threads).into_par_iter().map(|t| fma_loop(ITERS, t as f32)).sum::<f32>())
    });
    // bf16 dot products (`vdpbf16ps`: 32 multiply-adds per instruction) and AMX tiles
    // (`tdpbf16ps`: 16 × 16 × 32), where the CPU has them.
    if Bf16Isa::Avx512Bf16.is_supported() {
        g.throughput(Throughput::Elements((threads * ITERS * 12 * 16 * 4) as u64));
        g.bench_function(format!("bf16_dot_peak_{threads}_threads"), |b| {
            b.iter(|| {
                (0..threads).into_par_iter().map(|t| peaks::bf16_dot_loop(ITERS, t as f32)).sum::<f32>()
            })
        });
    }
    if Bf16Isa::Amx.is_supported() {
        const TILE_ITERS: usize = 1 << 14;
        g.throughput(Throughput::Elements((threads * TILE_ITERS * 4 * 16 * 16 * 32 * 2) as u64));
        g.bench_function(format!("amx_bf16_peak_{threads}_threads"), |b| {
            b.iter(|| (0..threads).into_par_iter().map(|_| peaks::amx_loop(TILE_ITERS)).sum::<f32>())
        });
    }
    // Stream-like copy of 256 MiB (read + write counted).
    let n = 64 << 20;
    let src = vec![1.0f32; n];
    let mut dst = vec![0.0f32; n];
    g.throughput(Throughput::Bytes((2 * 4 * n) as u64));
    g.bench_function(format!("copy_256MiB_{threads}_threads"), |b| {
        b.iter(|| {
            dst.par_chunks_mut(1 << 16).zip(src.par_chunks(1 << 16)).for_each(|(d, s)| d.copy_from_slice(s));
            black_box(&dst);
        })
    });
    g.finish();
}

/// Runs `iters` rounds of 12 independent 16-lane FMAs (12 dependency chains, enough to cover
/// the FMA latency on two pipes) and returns a value depending on all of them.
fn fma_loop(iters: usize, seed: f32) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        #[target_feature(enable = "avx512f")]
        fn avx512(iters: usize, seed: f32) -> f32 {
            let a = _mm512_set1_ps(black_box(0.999));
            let b = _mm512_set1_ps(black_box(1e-3));
            let mut acc = [_mm512_set1_ps(seed); 12];
            for _ in 0..iters {
                for v in acc.iter_mut() {
                    *v = _mm512_fmadd_ps(*v, a, b);
                }
            }
            acc.iter().map(|v| _mm512_reduce_add_ps(*v)).sum()
        }
        #[target_feature(enable = "avx2,fma")]
        fn avx2(iters: usize, seed: f32) -> f32 {
            let a = _mm256_set1_ps(black_box(0.999));
            let b = _mm256_set1_ps(black_box(1e-3));
            let mut acc = [_mm256_set1_ps(seed); 12];
            for _ in 0..iters {
                for _ in 0..2 {
                    for v in acc.iter_mut() {
                        *v = _mm256_fmadd_ps(*v, a, b);
                    }
                }
            }
            let mut out = [0.0f32; 8];
            acc.iter().fold(0.0, |s, v| {
                // SAFETY: `out` has room for the 8 lanes of a 256-bit vector.
                unsafe { _mm256_storeu_ps(out.as_mut_ptr(), *v) };
                s + out.iter().sum::<f32>()
            })
        }
        match Isa::detect() {
            // SAFETY: `Isa::detect` found AVX-512F on this CPU.
            Isa::Avx512 => return unsafe { avx512(iters, seed) },
            // SAFETY: `Isa::detect` found AVX2 and FMA on this CPU.
            Isa::Avx2Fma => return unsafe { avx2(iters, seed) },
            Isa::Scalar => {}
        }
    }
    let mut acc = [seed; 192];
    for _ in 0..iters {
        for v in acc.iter_mut() {
            *v = *v * black_box(0.999) + 1e-3;
        }
    }
    acc.iter().sum()
}

/// The bf16 peaks, on the instructions the bf16 kernels use.
mod peaks {
    #[cfg(target_arch = "x86_64")]
    use std::arch::x86_64::*;
    use std::hint::black_box;

    /// `iters` rounds of 12 independent `vdpbf16ps` (64 FLOP each per lane pair: 16 lanes × 2
    /// products × 2); returns a value depending on all of them. Call only where AVX512-BF16 is.
    #[cfg(target_arch = "x86_64")]
    pub fn bf16_dot_loop(iters: usize, seed: f32) -> f32 {
        #[target_feature(enable = "avx512f,avx512bf16")]
        fn run(iters: usize, seed: f32) -> f32 {
            let a = _mm512_cvtne2ps_pbh(_mm512_set1_ps(black_box(0.5)), _mm512_set1_ps(black_box(0.25)));
            let mut acc = [_mm512_set1_ps(seed); 12];
            for _ in 0..iters {
                for v in acc.iter_mut() {
                    *v = _mm512_dpbf16_ps(*v, a, a);
                }
            }
            acc.iter().map(|v| _mm512_reduce_add_ps(*v)).sum()
        }
        assert!(is_x86_feature_detected!("avx512bf16"));
        // SAFETY: AVX512-BF16 (and so AVX-512F) checked just above.
        unsafe { run(iters, seed) }
    }

    /// `iters` rounds of 4 independent `tdpbf16ps` on tiles already loaded; returns the first
    /// accumulator's first value. Call only where AMX is usable (`Bf16Isa::Amx.is_supported()`,
    /// which also asks Linux for the permission).
    #[cfg(target_arch = "x86_64")]
    pub fn amx_loop(iters: usize) -> f32 {
        use std::arch::asm;
        #[repr(C, align(64))]
        struct TileConfig {
            palette: u8,
            start_row: u8,
            reserved: [u8; 14],
            colsb: [u16; 16],
            rows: [u8; 16],
        }
        let mut cfg =
            TileConfig { palette: 1, start_row: 0, reserved: [0; 14], colsb: [0; 16], rows: [0; 16] };
        for t in 0..8 {
            cfg.colsb[t] = 64;
            cfg.rows[t] = 16;
        }
        let ones = vec![0x3f80u16; 16 * 32];
        let mut out = vec![0f32; 16 * 16];
        // SAFETY: the caller checked AMX and the permission; every load reads 16 rows of 64 bytes
        // of `ones` and the store writes 16 rows of 64 bytes into `out`.
        unsafe {
            asm!("ldtilecfg [{}]", in(reg) &cfg, options(nostack, readonly));
            asm!(
                "tileloadd tmm4, [{p} + {s}*1]",
                "tileloadd tmm5, [{p} + {s}*1]",
                "tileloadd tmm6, [{p} + {s}*1]",
                "tileloadd tmm7, [{p} + {s}*1]",
                "tilezero tmm0", "tilezero tmm1", "tilezero tmm2", "tilezero tmm3",
                p = in(reg) ones.as_ptr(), s = in(reg) 64usize, options(nostack, readonly)
            );
            for _ in 0..iters {
                asm!(
                    "tdpbf16ps tmm0, tmm4, tmm6",
                    "tdpbf16ps tmm1, tmm4, tmm7",
                    "tdpbf16ps tmm2, tmm5, tmm6",
                    "tdpbf16ps tmm3, tmm5, tmm7",
                    options(nostack, nomem)
                );
            }
            asm!("tilestored [{p} + {s}*1], tmm0", p = in(reg) out.as_mut_ptr(), s = in(reg) 64usize, options(nostack));
            asm!("tilerelease", options(nostack, nomem));
        }
        out[0]
    }

    #[cfg(not(target_arch = "x86_64"))]
    pub fn bf16_dot_loop(_iters: usize, _seed: f32) -> f32 {
        unreachable!("AVX512-BF16 is x86_64 only")
    }

    #[cfg(not(target_arch = "x86_64"))]
    pub fn amx_loop(_iters: usize) -> f32 {
        unreachable!("AMX is x86_64 only")
    }
}

criterion_group!(benches, machine, layer, network);
criterion_main!(benches);
