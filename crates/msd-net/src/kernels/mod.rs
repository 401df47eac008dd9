//! The dilated-convolution kernels of the MSD block on the CPU.
//!
//! [`forward`] and [`backward`] run all 3×3 layers of one image over its feature buffer
//! (`[total_channels][h][w]`, see the crate docs for the layouts). The instruction set is chosen
//! at run time ([`Isa::detect`], cached once): AVX-512, AVX2 + FMA, or a portable fallback that
//! every CPU runs. [`mod@reference`] holds the naive loops the fast kernels are tested against.
//!
//! How they are fast, from the outside in:
//!
//! - **Layer groups** (`schedule.rs`). Sixteen consecutive layers all read the channels that
//!   exist before them, so one pass reads each of those channels once for all sixteen, each layer
//!   with its own dilation; only the small triangle inside the group is done layer by layer. A
//!   depth-100 network at 512² then streams about 0.35 GB from memory per forward pass instead
//!   of 5 GB.
//! - **Row bands** (`band.rs`), the parallel tasks (rayon). A band's input rows, with a halo as
//!   wide as the largest dilation, are copied into a per-thread scratch plane with the mirrored
//!   borders already filled in, so the inner loops have no border cases; the backward pass
//!   correlates the zero-padded output gradients with the flipped taps on the padded plane and
//!   folds the padding back onto the pixels it mirrors, which is the exact adjoint of the mirror.
//! - **Register blocks** (`micro.rs`, `x86_micro.rs`). Up to four output rows `u, u + d, …` of a
//!   dilation-`d` layer share `R + 2` input rows, two vectors wide, with the accumulators in
//!   registers (AVX-512 / AVX2 intrinsics, one bounds check per call).
//!
//! **Inference in bf16** (`bf16/`): a forward pass for inference that stores the feature maps as
//! bfloat16 and sums in `f32`, on AMX tiles or AVX512-BF16 dot products ([`Bf16Forward`]);
//! [`Precision`] and [`InferenceKernels`] choose between it and the `f32` kernels at run time.
//! Training always runs in `f32`.
//!
//! Band boundaries depend only on the image size, and weight gradients are summed band by band in
//! order, so results are bit-identical whatever the number of threads. Memory: the feature and
//! gradient buffers, plus a few MB of scratch per thread. Networks with a dilation above 64 (the
//! study uses at most 10) run the plain loops of [`mod@reference`] instead, in bounded memory.
use std::sync::OnceLock;

use crate::{Error, MsdConfig, Result};

mod band;
mod bf16;
mod border;
mod inference;
mod micro;
pub mod reference;
mod schedule;
mod scratch;
#[cfg(target_arch = "x86_64")]
mod x86;
#[cfg(target_arch = "x86_64")]
mod x86_micro;

pub use bf16::{Bf16Forward, Bf16Isa};
pub use border::reflect;
pub use inference::{InferenceKernels, ParsePrecisionError, Precision};

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
        if self.is_supported() { Ok(()) } else { Err(Error::UnsupportedIsa { isa: self.name() }) }
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
        return Err(Error::EmptyImage { height: h, width: w });
    }
    if conv_weights.len() != config.conv_weight_len() {
        return Err(Error::len("3×3 weights", config.conv_weight_len(), conv_weights.len()));
    }
    if conv_biases.len() != config.conv_bias_len() {
        return Err(Error::len("3×3 biases", config.conv_bias_len(), conv_biases.len()));
    }
    let need = config
        .total_channels()
        .checked_mul(h * w)
        .ok_or(Error::TooLarge { what: "feature buffer", dims: vec![config.total_channels(), h, w] })?;
    if features.len() != need {
        return Err(Error::len("feature buffer", need, features.len()));
    }
    Ok(())
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
    schedule::forward(isa, config, conv_weights, conv_biases, features, h, w);
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
    schedule::backward(isa, config, conv_weights, features, grads, weight_grads, bias_grads, h, w);
    Ok(())
}
