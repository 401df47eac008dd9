//! The register-blocked inner loops of the kernels: the [`Micro`] trait, one implementation per
//! instruction set, and [`Portable`], plain Rust over fixed-size arrays (`[f32; L]` standing for
//! one vector of `L` lanes) that every CPU runs. The x86 ones are in `x86_micro.rs`.
//!
//! All of them read *padded scratch planes* (see `scratch.rs`): every tap is in range, so there is
//! no border logic here. They block vertically: the `R` output rows `u, u + d, …, u + (R−1)d` of a
//! dilation-`d` layer share `R + 2` input rows instead of reading `3R`, which halves the loads per
//! multiply-add — the loads, not the arithmetic, bound a 3×3 convolution on one channel.

/// `a · b + c` in the portable loops (separate multiply and add: a fused multiply-add without
/// hardware support is a slow library call).
#[inline(always)]
fn mad(a: f32, b: f32, c: f32) -> f32 {
    a * b + c
}

/// Most output rows blocked together (vertical reuse of input rows).
pub(crate) const MAX_ROWS: usize = 4;

/// Where a strip of output vectors sits: output row `u` (then `u + d`, …) and column `x` of the
/// accumulator planes (`[N][rows][stride]`, `plane` floats apart), and the offsets `(row_off,
/// col_off)` from an output pixel to the scratch position of its centre tap.
#[derive(Clone, Copy)]
pub(crate) struct StripAt {
    pub plane: usize,
    pub stride: usize,
    pub u: usize,
    pub x: usize,
    pub row_off: usize,
    pub col_off: usize,
    pub d: usize,
}

/// The two inner loops, per instruction set, for vectors of `L` lanes.
pub(crate) trait Micro<const L: usize> {
    /// Adds to the `N × R × V` output vectors at `at` (rows `u, u + d, …`) the convolution of
    /// every input plane with its taps `weights[m][n]`; all `N` outputs share each input load.
    fn conv_strip<const N: usize, const R: usize, const V: usize>(
        acc: &mut [f32],
        inputs: &[Plane<'_>],
        weights: &[[[f32; 9]; N]],
        at: StripAt,
    );

    /// Adds to `acc[3ky + kx]` (lane-wise) `g[grow + i·d][gcol + x] ·
    /// f[frow + (i + ky − 1)d][fcol + x + (kx − 1)d]` for the `R` rows `i` and the columns
    /// `x < ncols` (a multiple of `L`).
    fn weight_grad_rows<const R: usize>(
        acc: &mut [[f32; L]; 9],
        g: (Plane<'_>, usize, usize),
        f: (Plane<'_>, usize, usize),
        d: usize,
        ncols: usize,
    );
}

/// The portable inner loops: plain Rust over `[f32; L]` arrays that the compiler vectorises for
/// whatever target features the calling frame enables.
pub(crate) struct Portable;

impl<const L: usize> Micro<L> for Portable {
    #[inline(always)]
    fn conv_strip<const N: usize, const R: usize, const V: usize>(
        acc: &mut [f32],
        inputs: &[Plane<'_>],
        weights: &[[[f32; 9]; N]],
        at: StripAt,
    ) {
        let pos = |n: usize, i: usize, v: usize| n * at.plane + (at.u + i * at.d) * at.stride + at.x + v * L;
        let mut blk: Block<N, R, V, L> = [[[[0.0; L]; V]; R]; N];
        for (n, bn) in blk.iter_mut().enumerate() {
            for (i, bi) in bn.iter_mut().enumerate() {
                for (v, bv) in bi.iter_mut().enumerate() {
                    let s = pos(n, i, v);
                    *bv = acc[s..s + L].try_into().expect("L lanes");
                }
            }
        }
        conv_block::<N, R, V, L>(&mut blk, inputs, weights, at.u + at.row_off, at.x + at.col_off, at.d);
        for (n, bn) in blk.iter().enumerate() {
            for (i, bi) in bn.iter().enumerate() {
                for (v, bv) in bi.iter().enumerate() {
                    let s = pos(n, i, v);
                    acc[s..s + L].copy_from_slice(bv);
                }
            }
        }
    }

    #[inline(always)]
    fn weight_grad_rows<const R: usize>(
        acc: &mut [[f32; L]; 9],
        (g, grow, gcol): (Plane<'_>, usize, usize),
        (f, frow, fcol): (Plane<'_>, usize, usize),
        d: usize,
        ncols: usize,
    ) {
        for x in (0..ncols).step_by(L) {
            weight_grad_block::<R, L>(acc, g, grow, gcol + x, f, frow, fcol + x, d);
        }
    }
}

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
type Block<const N: usize, const R: usize, const V: usize, const L: usize> = [[[[f32; L]; V]; R]; N];

/// `acc[n][i][v] += Σ_m Σ_{ky,kx} k[m][n][3ky+kx] · src[m][row0 + (i + ky − 1)d][col + vL + (kx−1)d]`:
/// `N` outputs (sharing every input load) over inputs `m`, for the `R` output rows
/// `row0, row0 + d, …` (in input-row coordinates, centre tap) and `V` vectors from column `col`.
#[inline(always)]
// Lane loops indexed in lockstep over several arrays are the clearest form for the vectoriser.
#[allow(clippy::needless_range_loop)]
fn conv_block<const N: usize, const R: usize, const V: usize, const L: usize>(
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
                            let s = mad(k0, l[lane], a[lane]);
                            let s = mad(k1, m[lane], s);
                            a[lane] = mad(k2, q[lane], s);
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
#[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
fn weight_grad_block<const R: usize, const L: usize>(
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
                acc[3 * ky][lane] = mad(gl, l[lane], acc[3 * ky][lane]);
                acc[3 * ky + 1][lane] = mad(gl, m[lane], acc[3 * ky + 1][lane]);
                acc[3 * ky + 2][lane] = mad(gl, q[lane], acc[3 * ky + 2][lane]);
            }
        }
    }
}
