//! The inner loops of `micro.rs` written with AVX-512 intrinsics.
//!
//! The portable loops leave it to the compiler to unroll the small constant loops and keep the
//! accumulators in registers; for the 3×3 taps it does not do so reliably (it keeps the row loop,
//! re-tests which taps apply and bounds-checks every load). Here the accumulators are `__m512`
//! values, each call checks its bounds once up front, and every load is a plain unaligned load.
use std::arch::x86_64::{
    __m512, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_set1_ps, _mm512_setzero_ps, _mm512_storeu_ps,
};

use super::micro::{Micro, Plane, StripAt};

/// The AVX-512 inner loops. Only the `*_avx512` band kernels of `x86.rs` use this type, and those
/// run only after [`super::Isa::check`] confirmed AVX-512F.
pub(crate) struct Avx512;

const L: usize = 16;

impl Micro<16> for Avx512 {
    #[inline(always)]
    fn conv_strip<const N: usize, const R: usize, const V: usize>(
        acc: &mut [f32],
        inputs: &[Plane<'_>],
        weights: &[[[f32; 9]; N]],
        at: StripAt,
    ) {
        // SAFETY: `Avx512` is only used by kernels that run after the CPU was checked for
        // AVX-512F (see the type's docs); the function checks its own bounds.
        unsafe { conv_strip::<N, R, V>(acc, inputs, weights, at) }
    }

    #[inline(always)]
    fn weight_grad_rows<const R: usize>(
        acc: &mut [[f32; 16]; 9],
        g: (Plane<'_>, usize, usize),
        f: (Plane<'_>, usize, usize),
        d: usize,
        ncols: usize,
    ) {
        // SAFETY: as above.
        unsafe { weight_grad_rows::<R>(acc, g, f, d, ncols) }
    }
}

/// # Safety
/// The CPU must support AVX-512F. Bounds are checked here (a violation panics).
#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
#[inline]
unsafe fn conv_strip<const N: usize, const R: usize, const V: usize>(
    acc: &mut [f32],
    inputs: &[Plane<'_>],
    weights: &[[[f32; 9]; N]],
    at: StripAt,
) {
    let StripAt { plane, stride, u, x, row_off, col_off, d } = at;
    let pos = |n: usize, i: usize, v: usize| n * plane + (u + i * d) * stride + x + v * L;
    assert!(pos(N - 1, R - 1, V - 1) + L <= acc.len(), "accumulator strip out of bounds");
    let ap = acc.as_mut_ptr();
    let mut a = [[[_mm512_setzero_ps(); V]; R]; N];
    for (n, an) in a.iter_mut().enumerate() {
        for (i, ai) in an.iter_mut().enumerate() {
            for (v, av) in ai.iter_mut().enumerate() {
                // SAFETY: within `acc` by the assertion above (positions grow with n, i, v).
                *av = unsafe { _mm512_loadu_ps(ap.add(pos(n, i, v))) };
            }
        }
    }
    let (row0, col) = (u + row_off, x + col_off);
    assert!(row0 >= d && col >= d, "strip reads before its scratch plane");
    for (src, k) in inputs.iter().zip(weights) {
        let end = (row0 + R * d) * src.stride + col + (V - 1) * L + d + L;
        assert!(end <= src.data.len(), "input strip out of bounds");
        let sp = src.data.as_ptr();
        for t in 0..R + 2 {
            let mut taps = [[_mm512_setzero_ps(); 3]; V];
            for (v, tv) in taps.iter_mut().enumerate() {
                let c = (row0 + t * d - d) * src.stride + col + v * L;
                // SAFETY: `c − d ≥ 0` and `c + d + L ≤ end` by the assertions above.
                *tv = unsafe {
                    [
                        _mm512_loadu_ps(sp.add(c - d)),
                        _mm512_loadu_ps(sp.add(c)),
                        _mm512_loadu_ps(sp.add(c + d)),
                    ]
                };
            }
            for i in 0..R {
                // Input row t is kernel row ky = t − i of output row i.
                if t < i || t - i > 2 {
                    continue;
                }
                let ky = t - i;
                for (n, kn) in k.iter().enumerate() {
                    let k0 = _mm512_set1_ps(kn[3 * ky]);
                    let k1 = _mm512_set1_ps(kn[3 * ky + 1]);
                    let k2 = _mm512_set1_ps(kn[3 * ky + 2]);
                    for (v, tv) in taps.iter().enumerate() {
                        let s = _mm512_fmadd_ps(k0, tv[0], a[n][i][v]);
                        let s = _mm512_fmadd_ps(k1, tv[1], s);
                        a[n][i][v] = _mm512_fmadd_ps(k2, tv[2], s);
                    }
                }
            }
        }
    }
    for (n, an) in a.iter().enumerate() {
        for (i, ai) in an.iter().enumerate() {
            for (v, av) in ai.iter().enumerate() {
                // SAFETY: the same positions as loaded above.
                unsafe { _mm512_storeu_ps(ap.add(pos(n, i, v)), *av) };
            }
        }
    }
}

/// # Safety
/// The CPU must support AVX-512F. Bounds are checked here (a violation panics).
#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
#[inline]
unsafe fn weight_grad_rows<const R: usize>(
    acc: &mut [[f32; 16]; 9],
    (g, grow, gcol): (Plane<'_>, usize, usize),
    (f, frow, fcol): (Plane<'_>, usize, usize),
    d: usize,
    ncols: usize,
) {
    assert!(ncols.is_multiple_of(L) && frow >= d && fcol >= d, "weight-gradient rows out of bounds");
    assert!((grow + (R - 1) * d) * g.stride + gcol + ncols <= g.data.len(), "gradient rows out of bounds");
    assert!((frow + R * d) * f.stride + fcol + ncols + d <= f.data.len(), "feature rows out of bounds");
    let (gp, fp) = (g.data.as_ptr(), f.data.as_ptr());
    let mut a: [__m512; 9] = [_mm512_setzero_ps(); 9];
    for (t, at) in a.iter_mut().enumerate() {
        // SAFETY: `acc[t]` is 16 floats.
        *at = unsafe { _mm512_loadu_ps(acc[t].as_ptr()) };
    }
    for x in (0..ncols).step_by(L) {
        let mut gv = [_mm512_setzero_ps(); R];
        for (i, gi) in gv.iter_mut().enumerate() {
            // SAFETY: within `g` by the assertion above.
            *gi = unsafe { _mm512_loadu_ps(gp.add((grow + i * d) * g.stride + gcol + x)) };
        }
        for t in 0..R + 2 {
            let c = (frow + t * d - d) * f.stride + fcol + x;
            // SAFETY: within `f` by the assertions above.
            let (l, m, q) = unsafe {
                (_mm512_loadu_ps(fp.add(c - d)), _mm512_loadu_ps(fp.add(c)), _mm512_loadu_ps(fp.add(c + d)))
            };
            for (i, &gi) in gv.iter().enumerate() {
                if t < i || t - i > 2 {
                    continue;
                }
                let ky = t - i;
                a[3 * ky] = _mm512_fmadd_ps(gi, l, a[3 * ky]);
                a[3 * ky + 1] = _mm512_fmadd_ps(gi, m, a[3 * ky + 1]);
                a[3 * ky + 2] = _mm512_fmadd_ps(gi, q, a[3 * ky + 2]);
            }
        }
    }
    for (t, at) in a.iter().enumerate() {
        // SAFETY: `acc[t]` is 16 floats.
        unsafe { _mm512_storeu_ps(acc[t].as_mut_ptr(), *at) };
    }
}
