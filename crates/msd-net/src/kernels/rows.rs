//! The fast MSDnet kernels, written once over safe slices and generic over how a multiply-add is
//! done ([`Mad`]); `x86.rs` compiles them again inside `#[target_feature]` functions so that the
//! compiler vectorises them for AVX2 + FMA or AVX-512.
//!
//! Work is organised by output row: for each output row and each input channel, the three input
//! rows a 3×3 dilated tap touches are read once and all nine taps are applied in one pass over the
//! row, with the accumulator row kept in L1. The interior columns `d..w-d` need no reflection and
//! run as straight vector loops; the `2d` border columns are done apart with [`reflect`].
use super::border::{border_columns, reflect};

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

/// Lanes of the partial sums in the vectorised dot products (a multiple of every vector width).
const LANES: usize = 16;

/// `acc[x] += Σ_{ky,kx} k[3ky+kx] · rows[ky][reflect(x + (kx−1)d)]` for every column `x`.
#[inline(always)]
fn taps9<M: Mad>(acc: &mut [f32], rows: [&[f32]; 3], k: &[f32; 9], d: usize) {
    let w = acc.len();
    if w > 2 * d {
        let n = w - 2 * d;
        let a = &mut acc[d..d + n];
        let [r0, r1, r2] = rows;
        let (l0, c0, q0) = (&r0[..n], &r0[d..d + n], &r0[2 * d..2 * d + n]);
        let (l1, c1, q1) = (&r1[..n], &r1[d..d + n], &r1[2 * d..2 * d + n]);
        let (l2, c2, q2) = (&r2[..n], &r2[d..d + n], &r2[2 * d..2 * d + n]);
        for i in 0..n {
            let mut s = a[i];
            s = M::mad(k[0], l0[i], s);
            s = M::mad(k[1], c0[i], s);
            s = M::mad(k[2], q0[i], s);
            s = M::mad(k[3], l1[i], s);
            s = M::mad(k[4], c1[i], s);
            s = M::mad(k[5], q1[i], s);
            s = M::mad(k[6], l2[i], s);
            s = M::mad(k[7], c2[i], s);
            s = M::mad(k[8], q2[i], s);
            a[i] = s;
        }
    }
    let d = d as isize;
    for x in border_columns(w, d as usize) {
        let xs = [reflect(x as isize - d, w), x, reflect(x as isize + d, w)];
        let mut s = acc[x];
        for (ky, row) in rows.iter().enumerate() {
            for (kx, &sx) in xs.iter().enumerate() {
                s = M::mad(k[3 * ky + kx], row[sx], s);
            }
        }
        acc[x] = s;
    }
}

/// One output channel of one layer over the rows `y0..y0 + out.len() / w`:
/// `out = relu(bias + Σ_c conv3x3_d(input[c], weights[c]))`.
///
/// `input` holds the `cin` channels the layer reads (`[cin][h][w]`), `weights` this output
/// channel's `[cin][3][3]` block.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward_rows<M: Mad>(
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
    let hw = h * w;
    for (r, acc) in out.chunks_exact_mut(w).enumerate() {
        let y = y0 + r;
        acc.fill(bias);
        let ys = [reflect(y as isize - d as isize, h), y, reflect((y + d) as isize, h)];
        for (c, k) in weights.chunks_exact(9).take(cin).enumerate() {
            let plane = &input[c * hw..(c + 1) * hw];
            let rows = ys.map(|sy| &plane[sy * w..(sy + 1) * w]);
            let k: &[f32; 9] = k.try_into().expect("chunks_exact(9) yields 9 values");
            taps9::<M>(acc, rows, k, d);
        }
        for v in acc.iter_mut() {
            *v = v.max(0.0);
        }
    }
}

/// The adjoint of one tap row: with `gp` the (post-ReLU-mask) gradient of an output row and `src`
/// / `gin` the input row and its gradient row that the taps of kernel row `ky` read,
/// adds `k[kx] · gp[x]` to `gin[reflect(x + (kx−1)d)]` (when `gin` is given) and returns
/// `Σ_x gp[x] · src[reflect(x + (kx−1)d)]` for `kx = 0, 1, 2` (the weight gradients).
#[inline(always)]
fn adjoint3<M: Mad>(gp: &[f32], src: &[f32], gin: Option<&mut [f32]>, k: [f32; 3], d: usize) -> [f32; 3] {
    let w = gp.len();
    let mut dots = [0.0f32; 3];
    if w > 2 * d {
        let n = w - 2 * d;
        let (gl, gc, gr) = (&gp[..n], &gp[d..d + n], &gp[2 * d..2 * d + n]);
        let (sl, sc, sr) = (&src[..n], &src[d..d + n], &src[2 * d..2 * d + n]);
        // Weight gradients: fixed-order lane sums, so the result does not depend on threads.
        let mut acc = [[0.0f32; LANES]; 3];
        let chunks = n / LANES;
        for ch in 0..chunks {
            let base = ch * LANES;
            for l in 0..LANES {
                let g = gc[base + l];
                acc[0][l] = M::mad(g, sl[base + l], acc[0][l]);
                acc[1][l] = M::mad(g, sc[base + l], acc[1][l]);
                acc[2][l] = M::mad(g, sr[base + l], acc[2][l]);
            }
        }
        for i in chunks * LANES..n {
            let g = gc[i];
            acc[0][0] = M::mad(g, sl[i], acc[0][0]);
            acc[1][0] = M::mad(g, sc[i], acc[1][0]);
            acc[2][0] = M::mad(g, sr[i], acc[2][0]);
        }
        for (dot, lanes) in dots.iter_mut().zip(&acc) {
            *dot = lanes.iter().sum();
        }
        if let Some(gin) = gin {
            // Gather form of the scatter for targets whose sources are all in range.
            let a = &mut gin[d..d + n];
            for i in 0..n {
                let mut s = a[i];
                s = M::mad(k[0], gr[i], s);
                s = M::mad(k[1], gc[i], s);
                s = M::mad(k[2], gl[i], s);
                a[i] = s;
            }
            adjoint3_border_scatter::<M>(gp, gin, k, d);
        }
    } else if let Some(gin) = gin {
        adjoint3_border_scatter::<M>(gp, gin, k, d);
    }
    let di = d as isize;
    for x in border_columns(w, d) {
        let g = gp[x];
        for (kx, dot) in dots.iter_mut().enumerate() {
            let sx = reflect(x as isize + (kx as isize - 1) * di, w);
            *dot = M::mad(g, src[sx], *dot);
        }
    }
    dots
}

/// The part of [`adjoint3`]'s scatter the interior gather leaves out: in-range sources of border
/// targets, and every tap that left the row and was mirrored back.
#[inline(always)]
fn adjoint3_border_scatter<M: Mad>(gp: &[f32], gin: &mut [f32], k: [f32; 3], d: usize) {
    let w = gp.len();
    let di = d as isize;
    for t in border_columns(w, d) {
        let mut s = gin[t];
        for (kx, &kv) in k.iter().enumerate() {
            let x = t as isize - (kx as isize - 1) * di;
            if (0..w as isize).contains(&x) {
                s = M::mad(kv, gp[x as usize], s);
            }
        }
        gin[t] = s;
    }
    for x in border_columns(w, d) {
        for (kx, &kv) in k.iter().enumerate() {
            let t = x as isize + (kx as isize - 1) * di;
            if !(0..w as isize).contains(&t) {
                let tr = reflect(t, w);
                gin[tr] = M::mad(kv, gp[x], gin[tr]);
            }
        }
    }
}

/// Backward of one layer for one input channel `c`: adds the channel's share of the input
/// gradient into `gin` (when given; the network's input channels need none) and returns the
/// weight gradients `[width_out][9]` of the taps reading this channel.
///
/// `gpre` holds the masked output gradients `[width_out][h][w]`, `src` the channel's features
/// `[h][w]`, `weights` the taps `[width_out][9]` that read it.
#[inline(always)]
pub(crate) fn backward_channel<M: Mad>(
    gpre: &[f32],
    src: &[f32],
    mut gin: Option<&mut [f32]>,
    weights: &[[f32; 9]],
    h: usize,
    w: usize,
    d: usize,
) -> Vec<[f32; 9]> {
    let hw = h * w;
    let mut dw = vec![[0.0f32; 9]; weights.len()];
    for (o, (k, dwo)) in weights.iter().zip(dw.iter_mut()).enumerate() {
        let g_plane = &gpre[o * hw..(o + 1) * hw];
        for y in 0..h {
            let gp = &g_plane[y * w..(y + 1) * w];
            for ky in 0..3 {
                let sy = reflect(y as isize + (ky as isize - 1) * d as isize, h);
                let srow = &src[sy * w..(sy + 1) * w];
                let grow = gin.as_deref_mut().map(|g| &mut g[sy * w..(sy + 1) * w]);
                let k3 = [k[3 * ky], k[3 * ky + 1], k[3 * ky + 2]];
                let dots = adjoint3::<M>(gp, srow, grow, k3, d);
                for kx in 0..3 {
                    dwo[3 * ky + kx] += dots[kx];
                }
            }
        }
    }
    dw
}
