//! The inner loops of `micro.rs` written with x86 intrinsics, for AVX-512 (16 lanes) and AVX2 +
//! FMA (8 lanes) from one macro.
//!
//! The portable loops leave it to the compiler to unroll the small constant loops and keep the
//! accumulators in registers; for the 3×3 taps it does not do so reliably (it keeps the row loop,
//! re-tests which taps apply and bounds-checks every load). Here the accumulators are vector
//! values, each call checks its bounds once up front, and every load is a plain unaligned load.
use std::arch::x86_64::{
    __m256, __m512, _mm256_fmadd_ps, _mm256_loadu_ps, _mm256_set1_ps, _mm256_setzero_ps, _mm256_storeu_ps,
    _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_set1_ps, _mm512_setzero_ps, _mm512_storeu_ps,
};

use super::micro::{Micro, Plane, StripAt};

/// Defines a [`Micro`] implementation `$name` for `$lanes`-lane vectors `$vec`, with its two
/// `#[target_feature]` functions `$strip` and `$wgrad`.
macro_rules! x86_micro {
    (
        $doc:literal, $name:ident, $lanes:literal, $features:literal, $strip:ident, $wgrad:ident,
        $vec:ty, $zero:ident, $load:ident, $store:ident, $fmadd:ident, $set1:ident
    ) => {
        #[doc = $doc]
        pub(crate) struct $name;

        impl Micro<$lanes> for $name {
            #[inline(always)]
            fn conv_strip<const N: usize, const R: usize, const V: usize>(
                acc: &mut [f32],
                inputs: &[Plane<'_>],
                weights: &[[[f32; 9]; N]],
                at: StripAt,
            ) {
                // SAFETY: `Avx512` is only used by kernels that run after the CPU was checked for
                // its instruction set (see the type's docs); the function checks its own bounds.
                unsafe { $strip::<N, R, V>(acc, inputs, weights, at) }
            }

            #[inline(always)]
            fn weight_grad_rows<const R: usize>(
                acc: &mut [[f32; $lanes]; 9],
                g: (Plane<'_>, usize, usize),
                f: (Plane<'_>, usize, usize),
                d: usize,
                ncols: usize,
            ) {
                // SAFETY: as above.
                unsafe { $wgrad::<R>(acc, g, f, d, ncols) }
            }
        }

        /// # Safety
        /// The CPU must support the target features enabled below. Bounds are checked here (a violation panics).
        #[target_feature(enable = $features)]
        #[inline]
        // Output row i and input row t index the accumulators together.
        #[allow(clippy::needless_range_loop)]
        unsafe fn $strip<const N: usize, const R: usize, const V: usize>(
            acc: &mut [f32],
            inputs: &[Plane<'_>],
            weights: &[[[f32; 9]; N]],
            at: StripAt,
        ) {
            let StripAt { plane, stride, u, x, row_off, col_off, d } = at;
            let pos = |n: usize, i: usize, v: usize| n * plane + (u + i * d) * stride + x + v * $lanes;
            assert!(pos(N - 1, R - 1, V - 1) + $lanes <= acc.len(), "accumulator strip out of bounds");
            let ap = acc.as_mut_ptr();
            let mut a = [[[$zero(); V]; R]; N];
            for (n, an) in a.iter_mut().enumerate() {
                for (i, ai) in an.iter_mut().enumerate() {
                    for (v, av) in ai.iter_mut().enumerate() {
                        // SAFETY: within `acc` by the assertion above (positions grow with n, i, v).
                        *av = unsafe { $load(ap.add(pos(n, i, v))) };
                    }
                }
            }
            let (row0, col) = (u + row_off, x + col_off);
            assert!(row0 >= d && col >= d, "strip reads before its scratch plane");
            for (src, k) in inputs.iter().zip(weights) {
                let end = (row0 + R * d) * src.stride + col + (V - 1) * $lanes + d + $lanes;
                assert!(end <= src.data.len(), "input strip out of bounds");
                let sp = src.data.as_ptr();
                for t in 0..R + 2 {
                    let mut taps = [[$zero(); 3]; V];
                    for (v, tv) in taps.iter_mut().enumerate() {
                        let c = (row0 + t * d - d) * src.stride + col + v * $lanes;
                        // SAFETY: `c − d ≥ 0` and `c + d + lanes ≤ end` by the assertions above.
                        *tv = unsafe { [$load(sp.add(c - d)), $load(sp.add(c)), $load(sp.add(c + d))] };
                    }
                    for i in 0..R {
                        // Input row t is kernel row ky = t − i of output row i.
                        if t < i || t - i > 2 {
                            continue;
                        }
                        let ky = t - i;
                        for (n, kn) in k.iter().enumerate() {
                            let k0 = $set1(kn[3 * ky]);
                            let k1 = $set1(kn[3 * ky + 1]);
                            let k2 = $set1(kn[3 * ky + 2]);
                            for (v, tv) in taps.iter().enumerate() {
                                let s = $fmadd(k0, tv[0], a[n][i][v]);
                                let s = $fmadd(k1, tv[1], s);
                                a[n][i][v] = $fmadd(k2, tv[2], s);
                            }
                        }
                    }
                }
            }
            for (n, an) in a.iter().enumerate() {
                for (i, ai) in an.iter().enumerate() {
                    for (v, av) in ai.iter().enumerate() {
                        // SAFETY: the same positions as loaded above.
                        unsafe { $store(ap.add(pos(n, i, v)), *av) };
                    }
                }
            }
        }

        /// # Safety
        /// The CPU must support the target features enabled below. Bounds are checked here (a violation panics).
        #[target_feature(enable = $features)]
        #[inline]
        unsafe fn $wgrad<const R: usize>(
            acc: &mut [[f32; $lanes]; 9],
            (g, grow, gcol): (Plane<'_>, usize, usize),
            (f, frow, fcol): (Plane<'_>, usize, usize),
            d: usize,
            ncols: usize,
        ) {
            assert!(
                ncols.is_multiple_of($lanes) && frow >= d && fcol >= d,
                "weight-gradient rows out of bounds"
            );
            assert!(
                (grow + (R - 1) * d) * g.stride + gcol + ncols <= g.data.len(),
                "gradient rows out of bounds"
            );
            assert!(
                (frow + R * d) * f.stride + fcol + ncols + d <= f.data.len(),
                "feature rows out of bounds"
            );
            let (gp, fp) = (g.data.as_ptr(), f.data.as_ptr());
            let mut a: [$vec; 9] = [$zero(); 9];
            for (t, at) in a.iter_mut().enumerate() {
                // SAFETY: `acc[t]` is one vector of floats.
                *at = unsafe { $load(acc[t].as_ptr()) };
            }
            for x in (0..ncols).step_by($lanes) {
                let mut gv = [$zero(); R];
                for (i, gi) in gv.iter_mut().enumerate() {
                    // SAFETY: within `g` by the assertion above.
                    *gi = unsafe { $load(gp.add((grow + i * d) * g.stride + gcol + x)) };
                }
                for t in 0..R + 2 {
                    let c = (frow + t * d - d) * f.stride + fcol + x;
                    // SAFETY: within `f` by the assertions above.
                    let (l, m, q) = unsafe { ($load(fp.add(c - d)), $load(fp.add(c)), $load(fp.add(c + d))) };
                    for (i, &gi) in gv.iter().enumerate() {
                        if t < i || t - i > 2 {
                            continue;
                        }
                        let ky = t - i;
                        a[3 * ky] = $fmadd(gi, l, a[3 * ky]);
                        a[3 * ky + 1] = $fmadd(gi, m, a[3 * ky + 1]);
                        a[3 * ky + 2] = $fmadd(gi, q, a[3 * ky + 2]);
                    }
                }
            }
            for (t, at) in a.iter().enumerate() {
                // SAFETY: `acc[t]` is one vector of floats.
                unsafe { $store(acc[t].as_mut_ptr(), *at) };
            }
        }
    };
}

x86_micro!(
    "The AVX-512 inner loops. Only the `*_avx512` band kernels of `x86.rs` use this type, and \
     those run only after `Isa::check` confirmed AVX-512F.",
    Avx512,
    16,
    "avx512f,avx512vl,avx2,fma",
    conv_strip_avx512,
    weight_grad_rows_avx512,
    __m512,
    _mm512_setzero_ps,
    _mm512_loadu_ps,
    _mm512_storeu_ps,
    _mm512_fmadd_ps,
    _mm512_set1_ps
);

x86_micro!(
    "The AVX2 + FMA inner loops. Only the `*_avx2` band kernels of `x86.rs` use this type, and \
     those run only after `Isa::check` confirmed AVX2 and FMA.",
    Avx2,
    8,
    "avx2,fma",
    conv_strip_avx2,
    weight_grad_rows_avx2,
    __m256,
    _mm256_setzero_ps,
    _mm256_loadu_ps,
    _mm256_storeu_ps,
    _mm256_fmadd_ps,
    _mm256_set1_ps
);
