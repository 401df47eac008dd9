//! The dilated-convolution kernels of the MSD block on the CPU.
//!
//! [`forward`] and [`backward`] run all 3×3 layers of one image over its feature buffer
//! (`[total_channels][h][w]`, see the crate docs for the layouts), in parallel over row blocks
//! (forward) and input channels (backward) with rayon. The instruction set is chosen at run time
//! ([`Isa::detect`], cached once): AVX-512, AVX2 + FMA, or a portable scalar fallback that every
//! CPU runs. [`reference`] holds the naive loops the fast kernels are tested against.
use std::sync::OnceLock;

use rayon::prelude::*;

use crate::{Error, MsdConfig, Result};

mod border;
pub mod reference;
mod rows;
#[cfg(target_arch = "x86_64")]
mod x86;

pub use border::reflect;

/// The instruction set a kernel runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Isa {
    /// Portable code (compiled for the baseline target; separate multiply and add).
    Scalar,
    /// 256-bit AVX2 with fused multiply-add.
    Avx2Fma,
    /// 512-bit AVX-512 (F + VL) with fused multiply-add.
    Avx512,
}

impl Isa {
    /// The best instruction set this CPU supports, detected on first use and cached.
    pub fn detect() -> Isa {
        static CHOSEN: OnceLock<Isa> = OnceLock::new();
        *CHOSEN.get_or_init(|| {
            [Isa::Avx512, Isa::Avx2Fma].into_iter().find(|isa| isa.is_supported()).unwrap_or(Isa::Scalar)
        })
    }

    /// Every instruction set this CPU runs, best first (tests run each against the reference).
    pub fn available() -> Vec<Isa> {
        [Isa::Avx512, Isa::Avx2Fma, Isa::Scalar].into_iter().filter(|isa| isa.is_supported()).collect()
    }

    /// Whether this CPU supports the instruction set.
    pub fn is_supported(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Fma => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => {
                is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx512vl")
                    && is_x86_feature_detected!("avx2")
                    && is_x86_feature_detected!("fma")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// A short name for logs and benchmark labels (`scalar`, `avx2`, `avx512`).
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2Fma => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    fn check(self) -> Result<()> {
        if self.is_supported() {
            Ok(())
        } else {
            Err(Error::InvalidInput {
                what: format!("this CPU does not support the {} kernels", self.name()),
            })
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn forward_rows(
    isa: Isa,
    input: &[f32],
    cin: usize,
    h: usize,
    w: usize,
    d: usize,
    weights: &[f32],
    bias: f32,
    y0: usize,
    out: &mut [f32],
) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `forward` only runs with an `isa` that passed `Isa::check`, so the CPU has AVX2+FMA.
        Isa::Avx2Fma => unsafe { x86::forward_rows_avx2(input, cin, h, w, d, weights, bias, y0, out) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above, the CPU was checked for AVX-512F/VL, AVX2 and FMA.
        Isa::Avx512 => unsafe { x86::forward_rows_avx512(input, cin, h, w, d, weights, bias, y0, out) },
        _ => rows::forward_rows::<rows::Plain, { rows::STRIP_256 }>(
            input, cin, h, w, d, weights, bias, y0, out,
        ),
    }
}

#[allow(clippy::too_many_arguments)]
fn backward_channel(
    isa: Isa,
    gpre: &[f32],
    src: &[f32],
    gin: Option<&mut [f32]>,
    weights: &[[f32; 9]],
    h: usize,
    w: usize,
    d: usize,
) -> Vec<[f32; 9]> {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `backward` only runs with an `isa` that passed `Isa::check` (AVX2+FMA present).
        Isa::Avx2Fma => unsafe { x86::backward_channel_avx2(gpre, src, gin, weights, h, w, d) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above, the CPU was checked for AVX-512F/VL, AVX2 and FMA.
        Isa::Avx512 => unsafe { x86::backward_channel_avx512(gpre, src, gin, weights, h, w, d) },
        _ => rows::backward_channel::<rows::Plain>(gpre, src, gin, weights, h, w, d),
    }
}

fn check_lengths(
    config: &MsdConfig,
    conv_weights: &[f32],
    conv_biases: &[f32],
    features: &[f32],
    h: usize,
    w: usize,
) -> Result<()> {
    config.validate()?;
    if h == 0 || w == 0 {
        return Err(Error::InvalidInput { what: format!("image of {h} × {w} pixels is empty") });
    }
    if conv_weights.len() != config.conv_weight_len() {
        return Err(Error::len("3×3 weights", config.conv_weight_len(), conv_weights.len()));
    }
    if conv_biases.len() != config.conv_bias_len() {
        return Err(Error::len("3×3 biases", config.conv_bias_len(), conv_biases.len()));
    }
    let need = config.total_channels().checked_mul(h * w).ok_or_else(|| Error::InvalidInput {
        what: format!("feature buffer of {} channels × {h} × {w} overflows", config.total_channels()),
    })?;
    if features.len() != need {
        return Err(Error::len("feature buffer", need, features.len()));
    }
    Ok(())
}

/// Rows per parallel task: enough tasks to balance the threads, few enough to amortise the
/// three-row halo each block reads.
fn rows_per_task(h: usize) -> usize {
    let tasks = 4 * rayon::current_num_threads().max(1);
    h.div_ceil(tasks).max(4)
}

/// Forward pass of all 3×3 layers over one image.
///
/// `features` is the image's feature buffer `[total_channels][h][w]`; channels
/// `0..input_channels` must hold the (normalised) input, and every other channel is overwritten
/// with the layers' outputs.
pub fn forward(
    isa: Isa,
    config: &MsdConfig,
    conv_weights: &[f32],
    conv_biases: &[f32],
    features: &mut [f32],
    h: usize,
    w: usize,
) -> Result<()> {
    isa.check()?;
    check_lengths(config, conv_weights, conv_biases, features, h, w)?;
    let hw = h * w;
    let rb = rows_per_task(h);
    for (layer, &d) in config.dilations.iter().enumerate() {
        let cin = config.layer_inputs(layer);
        let off = config.weight_offset(layer);
        let (input, rest) = features.split_at_mut(cin * hw);
        let input: &[f32] = input;
        let out = &mut rest[..config.width * hw];
        out.par_chunks_mut(hw).enumerate().for_each(|(o, plane)| {
            let weights = &conv_weights[off + o * cin * 9..off + (o + 1) * cin * 9];
            let bias = conv_biases[layer * config.width + o];
            plane.par_chunks_mut(rb * w).enumerate().for_each(|(b, rows)| {
                forward_rows(isa, input, cin, h, w, d, weights, bias, b * rb, rows);
            });
        });
    }
    Ok(())
}

/// Sum of a slice in fixed-order lanes (deterministic, and faster than a serial sum).
pub(crate) fn lane_sum(v: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 16];
    let chunks = v.chunks_exact(16);
    let tail: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for (l, x) in lanes.iter_mut().zip(c) {
            *l += x;
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// Backward pass of all 3×3 layers over one image: the exact adjoint of [`forward`].
///
/// On entry `grads` (`[total_channels][h][w]`) holds the gradient of the loss with respect to
/// every feature channel as seen by the final 1×1 layer; on return channels
/// `input_channels..` hold each layer's gradient before its ReLU, and channels
/// `0..input_channels` are unchanged (the network's input needs no gradient). The 3×3 weight and
/// bias gradients are added to `weight_grads` and `bias_grads` (flat layouts as the parameters).
/// Each input channel's weight gradient is summed in a fixed order by one task, so the result does
/// not depend on the number of threads.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    isa: Isa,
    config: &MsdConfig,
    conv_weights: &[f32],
    features: &[f32],
    grads: &mut [f32],
    weight_grads: &mut [f32],
    bias_grads: &mut [f32],
    h: usize,
    w: usize,
) -> Result<()> {
    isa.check()?;
    check_lengths(config, conv_weights, bias_grads, features, h, w)?;
    if grads.len() != features.len() {
        return Err(Error::len("gradient buffer", features.len(), grads.len()));
    }
    if weight_grads.len() != conv_weights.len() {
        return Err(Error::len("3×3 weight gradients", conv_weights.len(), weight_grads.len()));
    }
    let hw = h * w;
    let width = config.width;
    let c_in = config.input_channels;
    for (layer, &d) in config.dilations.iter().enumerate().rev() {
        let cin = config.layer_inputs(layer);
        let off = config.weight_offset(layer);
        let (g_lo, g_hi) = grads.split_at_mut(cin * hw);
        let g_out = &mut g_hi[..width * hw];
        let f_out = &features[cin * hw..(cin + width) * hw];
        g_out.par_chunks_mut(4096).zip(f_out.par_chunks(4096)).for_each(|(g, f)| {
            for (g, &f) in g.iter_mut().zip(f) {
                if f <= 0.0 {
                    *g = 0.0;
                }
            }
        });
        let g_out: &[f32] = g_out;
        for o in 0..width {
            bias_grads[layer * width + o] += lane_sum(&g_out[o * hw..(o + 1) * hw]);
        }
        let dws: Vec<Vec<[f32; 9]>> = g_lo
            .par_chunks_mut(hw)
            .enumerate()
            .map(|(c, gin)| {
                let taps: Vec<[f32; 9]> = (0..width)
                    .map(|o| {
                        let s = off + (o * cin + c) * 9;
                        conv_weights[s..s + 9].try_into().expect("slice of 9")
                    })
                    .collect();
                let gin = (c >= c_in).then_some(gin);
                backward_channel(isa, g_out, &features[c * hw..(c + 1) * hw], gin, &taps, h, w, d)
            })
            .collect();
        for (c, dw) in dws.iter().enumerate() {
            for (o, k) in dw.iter().enumerate() {
                let s = off + (o * cin + c) * 9;
                for (t, v) in weight_grads[s..s + 9].iter_mut().zip(k) {
                    *t += v;
                }
            }
        }
    }
    Ok(())
}
