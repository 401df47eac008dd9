//! The register-blocked inner loops of the kernels, written once over fixed-size arrays (`[f32; L]`
//! is one SIMD vector of `L` lanes) and generic over how a multiply-add is done ([`Mad`]);
//! `x86.rs` compiles them inside `#[target_feature]` frames, where the compiler turns every
//! `[f32; L]` loop into one vector instruction.
//!
//! All of them read *padded scratch planes* (see `scratch.rs`): every tap is in range, so there is
//! no border logic here. They block vertically: the `R` output rows `u, u + d, …, u + (R−1)d` of a
//! dilation-`d` layer share `R + 2` input rows instead of reading `3R`, which halves the loads per
//! multiply-add — the loads, not the arithmetic, bound a 3×3 convolution on one channel.

/// How a multiply-add is evaluated: fused on FMA hardware, plain elsewhere (a fused multiply-add
/// without hardware support is a slow library call).
pub(crate) trait Mad {
    /// `a * b + c`.
    fn mad(a: f32, b: f32, c: f32) -> f32;
}

/// Fused multiply-add (`vfmadd` when compiled with the `fma` target feature).
pub(crate) struct Fused;

impl Mad for Fused {
    #[inline(always)]
    fn mad(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
}

/// Separate multiply and add: the portable fallback.
pub(crate) struct Plain;

impl Mad for Plain {
    #[inline(always)]
    fn mad(a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
}

/// Most output rows blocked together (vertical reuse of input rows).
pub(crate) const MAX_ROWS: usize = 4;

/// A padded scratch plane: `data[row * stride + col]`.
#[derive(Clone, Copy)]
pub(crate) struct Plane<'a> {
    pub data: &'a [f32],
    pub stride: usize,
}

impl<'a> Plane<'a> {
    #[inline(always)]
    fn vec<const L: usize>(&self, row: usize, col: usize) -> &'a [f32; L] {
        let s = row * self.stride + col;
        self.data[s..s + L].try_into().expect("L lanes")
    }
}

/// Output blocks of one call to [`conv_block`]: `N` output planes × `R` rows × `V` vectors of `L`.
pub(crate) type Block<const N: usize, const R: usize, const V: usize, const L: usize> =
    [[[[f32; L]; V]; R]; N];

/// `acc[n][i][v] += Σ_m Σ_{ky,kx} k[m][n][3ky+kx] · src[m][row0 + (i + ky − 1)d][col + vL + (kx−1)d]`:
/// `N` outputs (sharing every input load) over inputs `m`, for the `R` output rows
/// `row0, row0 + d, …` (in input-row coordinates, centre tap) and `V` vectors from column `col`.
#[inline(always)]
pub(crate) fn conv_block<M: Mad, const N: usize, const R: usize, const V: usize, const L: usize>(
    acc: &mut Block<N, R, V, L>,
    inputs: &[Plane<'_>],
    weights: &[[[f32; 9]; N]],
    row0: usize,
    col: usize,
    d: usize,
) {
    for (src, k) in inputs.iter().zip(weights) {
        for t in 0..R + 2 {
            let row = row0 + t * d - d;
            for v in 0..V {
                let c = col + v * L;
                let l = src.vec::<L>(row, c - d);
                let m = src.vec::<L>(row, c);
                let q = src.vec::<L>(row, c + d);
                for i in 0..R {
                    // Input row t is kernel row ky = t − i of output row i.
                    if t < i || t - i > 2 {
                        continue;
                    }
                    let ky = t - i;
                    for n in 0..N {
                        let (k0, k1, k2) = (k[n][3 * ky], k[n][3 * ky + 1], k[n][3 * ky + 2]);
                        let a = &mut acc[n][i][v];
                        for lane in 0..L {
                            let s = M::mad(k0, l[lane], a[lane]);
                            let s = M::mad(k1, m[lane], s);
                            a[lane] = M::mad(k2, q[lane], s);
                        }
                    }
                }
            }
        }
    }
}

/// Weight-gradient taps of one (output gradient, input) pair over `R` rows spaced by `d`:
/// `acc[3ky+kx] += g[grow0 + i·d][gcol + x] · f[frow0 + (i + ky − 1)d][fcol + x + (kx−1)d]` summed
/// over `i < R` and `x` in one vector of `L` lanes (lane-wise; the caller reduces the lanes).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn weight_grad_block<M: Mad, const R: usize, const L: usize>(
    acc: &mut [[f32; L]; 9],
    g: Plane<'_>,
    grow0: usize,
    gcol: usize,
    f: Plane<'_>,
    frow0: usize,
    fcol: usize,
    d: usize,
) {
    let gv: [&[f32; L]; R] = std::array::from_fn(|i| g.vec::<L>(grow0 + i * d, gcol));
    for t in 0..R + 2 {
        let row = frow0 + t * d - d;
        let l = f.vec::<L>(row, fcol - d);
        let m = f.vec::<L>(row, fcol);
        let q = f.vec::<L>(row, fcol + d);
        for (i, gi) in gv.iter().enumerate() {
            if t < i || t - i > 2 {
                continue;
            }
            let ky = t - i;
            for lane in 0..L {
                let gl = gi[lane];
                acc[3 * ky][lane] = M::mad(gl, l[lane], acc[3 * ky][lane]);
                acc[3 * ky + 1][lane] = M::mad(gl, m[lane], acc[3 * ky + 1][lane]);
                acc[3 * ky + 2][lane] = M::mad(gl, q[lane], acc[3 * ky + 2][lane]);
            }
        }
    }
}
