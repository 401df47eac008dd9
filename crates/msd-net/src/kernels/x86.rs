//! The band kernels of `band.rs` compiled for AVX2 + FMA and for AVX-512. Each function is the
//! generic band code inside a `#[target_feature]` frame, with the intrinsic inner loops of
//! `x86_micro.rs`: everything they call is inlined and compiled for that instruction set.
use super::band::{self, BackwardPass, BandGrads, ForwardPass};
use super::scratch::Scratch;
use super::x86_micro::{Avx2, Avx512};

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
    band::forward_band::<Avx2, 8>(p, y0, outs, scratch)
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
    band::backward_band::<Avx2, 8>(p, b, gin, scratch)
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
