//! The band kernels of `band.rs` compiled for AVX2 + FMA and for AVX-512: the only `unsafe` of
//! the CPU path. Each function is the generic kernel inside a `#[target_feature]` frame, so the
//! compiler vectorises the same safe slice code with 8- or 16-lane registers and fused
//! multiply-adds.
use super::avx512::Avx512;
use super::band::{self, BackwardPass, BandGrads, ForwardPass};
use super::micro::{Fused, Portable};
use super::scratch::Scratch;

/// AVX2 + FMA build of [`band::forward_band`].
///
/// # Safety
/// The CPU must support AVX2 and FMA (checked by [`super::Isa::is_supported`]).
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn forward_band_avx2(
    p: &ForwardPass<'_>,
    y0: usize,
    outs: &mut [&mut [f32]],
    scratch: &mut Scratch,
) {
    band::forward_band::<Portable<Fused>, 8>(p, y0, outs, scratch)
}

/// AVX-512 build of [`band::forward_band`].
///
/// # Safety
/// The CPU must support AVX-512F/VL, AVX2 and FMA (checked by [`super::Isa::is_supported`]).
#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
pub(super) unsafe fn forward_band_avx512(
    p: &ForwardPass<'_>,
    y0: usize,
    outs: &mut [&mut [f32]],
    scratch: &mut Scratch,
) {
    band::forward_band::<Avx512, 16>(p, y0, outs, scratch)
}

/// AVX2 + FMA build of [`band::backward_band`].
///
/// # Safety
/// The CPU must support AVX2 and FMA (checked by [`super::Isa::is_supported`]).
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn backward_band_avx2(
    p: &BackwardPass<'_>,
    b: usize,
    gin: &mut [&mut [f32]],
    scratch: &mut Scratch,
) -> BandGrads {
    band::backward_band::<Portable<Fused>, 8>(p, b, gin, scratch)
}

/// AVX-512 build of [`band::backward_band`].
///
/// # Safety
/// The CPU must support AVX-512F/VL, AVX2 and FMA (checked by [`super::Isa::is_supported`]).
#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
pub(super) unsafe fn backward_band_avx512(
    p: &BackwardPass<'_>,
    b: usize,
    gin: &mut [&mut [f32]],
    scratch: &mut Scratch,
) -> BandGrads {
    band::backward_band::<Avx512, 16>(p, b, gin, scratch)
}
