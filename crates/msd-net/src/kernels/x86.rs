//! The kernels of `rows.rs` compiled for AVX2 + FMA and for AVX-512: the only `unsafe` of the
//! CPU path. Each function is the generic kernel inside a `#[target_feature]` frame, so the
//! compiler vectorises the same safe slice code with wider registers and fused multiply-adds.
use super::rows::{self, Fused, STRIP_256, STRIP_512};

/// AVX2 + FMA build of [`rows::forward_rows`].
///
/// # Safety
/// The CPU must support AVX2 and FMA (checked by [`super::Isa::is_supported`]).
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn forward_rows_avx2(
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
    rows::forward_rows::<Fused, STRIP_256>(input, cin, h, w, d, weights, bias, y0, out)
}

/// AVX-512 build of [`rows::forward_rows`].
///
/// # Safety
/// The CPU must support AVX-512F/VL, AVX2 and FMA (checked by [`super::Isa::is_supported`]).
#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn forward_rows_avx512(
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
    rows::forward_rows::<Fused, STRIP_512>(input, cin, h, w, d, weights, bias, y0, out)
}

/// AVX2 + FMA build of [`rows::backward_channel`].
///
/// # Safety
/// The CPU must support AVX2 and FMA (checked by [`super::Isa::is_supported`]).
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn backward_channel_avx2(
    gpre: &[f32],
    src: &[f32],
    gin: Option<&mut [f32]>,
    weights: &[[f32; 9]],
    h: usize,
    w: usize,
    d: usize,
) -> Vec<[f32; 9]> {
    rows::backward_channel::<Fused>(gpre, src, gin, weights, h, w, d)
}

/// AVX-512 build of [`rows::backward_channel`].
///
/// # Safety
/// The CPU must support AVX-512F/VL, AVX2 and FMA (checked by [`super::Isa::is_supported`]).
#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
pub(super) unsafe fn backward_channel_avx512(
    gpre: &[f32],
    src: &[f32],
    gin: Option<&mut [f32]>,
    weights: &[[f32; 9]],
    h: usize,
    w: usize,
    d: usize,
) -> Vec<[f32; 9]> {
    rows::backward_channel::<Fused>(gpre, src, gin, weights, h, w, d)
}
