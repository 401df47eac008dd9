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

/// Output columns per register-blocked strip for AVX2 and the portable path: eight 256-bit
/// accumulators, enough independent chains to cover the FMA latency.
pub(crate) const STRIP_256: usize = 64;
/// Output columns per strip for AVX-512: eight 512-bit accumulators (two FMA pipes × 4 cycles).
pub(crate) const STRIP_512: usize = 128;
/// Output columns of the narrow strips that follow the wide ones.
const NARROW: usize = 32;
/// Input channels summed per pass over an output row.
const CHANNEL_BLOCK: usize = 16;

/// `acc[x] += Σ_{ky,kx} k[3ky+kx] · rows[ky][x + (kx−1)d]` for the columns `x` in `from..to`
/// (all within the interior `d..w-d`, so no reflection is needed).
#[inline(always)]
fn taps9_interior<M: Mad>(
    acc: &mut [f32],
    rows: [&[f32]; 3],
    k: &[f32; 9],
    d: usize,
    from: usize,
    to: usize,
) {
    if to <= from {
        return;
    }
    let n = to - from;
    let a = &mut acc[from..to];
    let [r0, r1, r2] = rows;
    let (b, e) = (from - d, from + d);
    let (l0, c0, q0) = (&r0[b..b + n], &r0[from..to], &r0[e..e + n]);
    let (l1, c1, q1) = (&r1[b..b + n], &r1[from..to], &r1[e..e + n]);
    let (l2, c2, q2) = (&r2[b..b + n], &r2[from..to], &r2[e..e + n]);
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

/// The border columns: every column whose taps may leave the row, with [`reflect`].
#[inline(always)]
fn taps9_border<M: Mad>(acc: &mut [f32], rows: [&[f32]; 3], k: &[f32; 9], d: usize) {
    let w = acc.len();
    let di = d as isize;
    for x in border_columns(w, d) {
        let xs = [reflect(x as isize - di, w), x, reflect(x as isize + di, w)];
        let mut s = acc[x];
        for (ky, row) in rows.iter().enumerate() {
            for (kx, &sx) in xs.iter().enumerate() {
                s = M::mad(k[3 * ky + kx], row[sx], s);
            }
        }
        acc[x] = s;
    }
}

/// One strip of `S` interior output columns starting at `x0`, summed over all `cin` channels
/// with the accumulators held in registers.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn strip<M: Mad, const S: usize>(
    input: &[f32],
    hw: usize,
    w: usize,
    ys: [usize; 3],
    weights: &[f32],
    cin: usize,
    d: usize,
    x0: usize,
    out: &mut [f32; S],
) {
    let mut a = *out;
    for c in 0..cin {
        let k: &[f32; 9] = weights[c * 9..c * 9 + 9].try_into().expect("9 taps");
        let plane = &input[c * hw..(c + 1) * hw];
        for ky in 0..3 {
            let row = &plane[ys[ky] * w..(ys[ky] + 1) * w];
            let l: &[f32; S] = row[x0 - d..x0 - d + S].try_into().expect("strip");
            let m: &[f32; S] = row[x0..x0 + S].try_into().expect("strip");
            let q: &[f32; S] = row[x0 + d..x0 + d + S].try_into().expect("strip");
            let (k0, k1, k2) = (k[3 * ky], k[3 * ky + 1], k[3 * ky + 2]);
            for i in 0..S {
                a[i] = M::mad(k0, l[i], a[i]);
                a[i] = M::mad(k1, m[i], a[i]);
                a[i] = M::mad(k2, q[i], a[i]);
            }
        }
    }
    *out = a;
}

/// One output channel of one layer over the rows `y0..y0 + out.len() / w`:
/// `out = relu(bias + Σ_c conv3x3_d(input[c], weights[c]))`.
///
/// `input` holds the `cin` channels the layer reads (`[cin][h][w]`), `weights` this output
/// channel's `[cin][3][3]` block.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward_rows<M: Mad, const S: usize>(
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
    // Wide strips first, then narrow ones, so that little is left for the unblocked tail.
    let strips = if w > 2 * d { (w - 2 * d) / S } else { 0 };
    let narrow_from = d + strips * S;
    let narrow = if w > 2 * d { (w - d - narrow_from) / NARROW } else { 0 };
    let tail_from = narrow_from + narrow * NARROW;
    out.fill(bias);
    // Channels in blocks, outermost: while one block is summed into every row of this task, its
    // input rows (the task's rows plus a 2d halo) stay in L2, so each is fetched from memory about
    // once although three output rows read it; few rows at a time also suit the prefetchers.
    for c0 in (0..cin).step_by(CHANNEL_BLOCK) {
        let nc = CHANNEL_BLOCK.min(cin - c0);
        let (inp, wts) = (&input[c0 * hw..], &weights[c0 * 9..]);
        for (r, acc) in out.chunks_exact_mut(w).enumerate() {
            let y = y0 + r;
            let ys = [reflect(y as isize - d as isize, h), y, reflect((y + d) as isize, h)];
            for s in 0..strips {
                let x0 = d + s * S;
                let out: &mut [f32; S] = (&mut acc[x0..x0 + S]).try_into().expect("strip");
                strip::<M, S>(inp, hw, w, ys, wts, nc, d, x0, out);
            }
            for s in 0..narrow {
                let x0 = narrow_from + s * NARROW;
                let out: &mut [f32; NARROW] = (&mut acc[x0..x0 + NARROW]).try_into().expect("strip");
                strip::<M, NARROW>(inp, hw, w, ys, wts, nc, d, x0, out);
            }
            for (c, k) in wts.chunks_exact(9).take(nc).enumerate() {
                let plane = &inp[c * hw..(c + 1) * hw];
                let rows = ys.map(|sy| &plane[sy * w..(sy + 1) * w]);
                let k: &[f32; 9] = k.try_into().expect("chunks_exact(9) yields 9 values");
                if w > 2 * d {
                    taps9_interior::<M>(acc, rows, k, d, tail_from, w - d);
                }
                taps9_border::<M>(acc, rows, k, d);
            }
        }
    }
    for v in out.iter_mut() {
        *v = v.max(0.0);
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

/// Three [`adjoint3`] calls fused for an interior row `r` (`d ≤ r < h − d`): `gp[ky]` is the
/// gradient row `r − (ky−1)d` whose kernel row `ky` reads input row `r`. The input and gradient
/// rows are read once for all nine taps. Returns the nine weight-gradient contributions.
#[inline(always)]
// Indexing eleven slices in lockstep is the clearest form for the vectoriser.
#[allow(clippy::needless_range_loop)]
fn adjoint9<M: Mad>(
    gp: [&[f32]; 3],
    src: &[f32],
    mut gin: Option<&mut [f32]>,
    k: &[f32; 9],
    d: usize,
) -> [f32; 9] {
    let w = src.len();
    let mut dots = [0.0f32; 9];
    if w <= 2 * d + LANES {
        for ky in 0..3 {
            let k3 = [k[3 * ky], k[3 * ky + 1], k[3 * ky + 2]];
            let r = adjoint3::<M>(gp[ky], src, gin.as_deref_mut(), k3, d);
            dots[3 * ky..3 * ky + 3].copy_from_slice(&r);
        }
        return dots;
    }
    let n = w - 2 * d;
    let chunks = n / LANES;
    let (sl, sc, sr) = (&src[..n], &src[d..d + n], &src[2 * d..2 * d + n]);
    let [g0, g1, g2] = gp;
    let (g0l, g0c, g0r) = (&g0[..n], &g0[d..d + n], &g0[2 * d..2 * d + n]);
    let (g1l, g1c, g1r) = (&g1[..n], &g1[d..d + n], &g1[2 * d..2 * d + n]);
    let (g2l, g2c, g2r) = (&g2[..n], &g2[d..d + n], &g2[2 * d..2 * d + n]);
    let mut acc = [[0.0f32; LANES]; 9];
    for ch in 0..chunks {
        let b = ch * LANES;
        for l in 0..LANES {
            let i = b + l;
            let (a, c, e) = (sl[i], sc[i], sr[i]);
            acc[0][l] = M::mad(g0c[i], a, acc[0][l]);
            acc[1][l] = M::mad(g0c[i], c, acc[1][l]);
            acc[2][l] = M::mad(g0c[i], e, acc[2][l]);
            acc[3][l] = M::mad(g1c[i], a, acc[3][l]);
            acc[4][l] = M::mad(g1c[i], c, acc[4][l]);
            acc[5][l] = M::mad(g1c[i], e, acc[5][l]);
            acc[6][l] = M::mad(g2c[i], a, acc[6][l]);
            acc[7][l] = M::mad(g2c[i], c, acc[7][l]);
            acc[8][l] = M::mad(g2c[i], e, acc[8][l]);
        }
    }
    for (dot, lanes) in dots.iter_mut().zip(&acc) {
        *dot = lanes.iter().sum();
    }
    for i in chunks * LANES..n {
        let (a, c, e) = (sl[i], sc[i], sr[i]);
        for (ky, g) in [g0c, g1c, g2c].iter().enumerate() {
            dots[3 * ky] = M::mad(g[i], a, dots[3 * ky]);
            dots[3 * ky + 1] = M::mad(g[i], c, dots[3 * ky + 1]);
            dots[3 * ky + 2] = M::mad(g[i], e, dots[3 * ky + 2]);
        }
    }
    let di = d as isize;
    for x in border_columns(w, d) {
        for (ky, g) in gp.iter().enumerate() {
            for kx in 0..3 {
                let sx = reflect(x as isize + (kx as isize - 1) * di, w);
                dots[3 * ky + kx] = M::mad(g[x], src[sx], dots[3 * ky + kx]);
            }
        }
    }
    if let Some(gin) = gin {
        let a = &mut gin[d..d + n];
        for i in 0..n {
            let mut s = a[i];
            s = M::mad(k[0], g0r[i], s);
            s = M::mad(k[1], g0c[i], s);
            s = M::mad(k[2], g0l[i], s);
            s = M::mad(k[3], g1r[i], s);
            s = M::mad(k[4], g1c[i], s);
            s = M::mad(k[5], g1l[i], s);
            s = M::mad(k[6], g2r[i], s);
            s = M::mad(k[7], g2c[i], s);
            s = M::mad(k[8], g2l[i], s);
            a[i] = s;
        }
        for ky in 0..3 {
            adjoint3_border_scatter::<M>(gp[ky], gin, [k[3 * ky], k[3 * ky + 1], k[3 * ky + 2]], d);
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
    // Interior input rows r gather from the three gradient rows r + d, r, r − d (kernel rows
    // 0, 1, 2) in one fused pass; every (gradient row, kernel row) pair whose input row is a
    // border row or was mirrored goes through the per-pair path below. Each pair is done once.
    let interior = if h > 2 * d { d..h - d } else { 0..0 };
    for (o, (k, dwo)) in weights.iter().zip(dw.iter_mut()).enumerate() {
        let g_plane = &gpre[o * hw..(o + 1) * hw];
        let grow = |y: usize| &g_plane[y * w..(y + 1) * w];
        for r in interior.clone() {
            let srow = &src[r * w..(r + 1) * w];
            let girow = gin.as_deref_mut().map(|g| &mut g[r * w..(r + 1) * w]);
            let dots = adjoint9::<M>([grow(r + d), grow(r), grow(r - d)], srow, girow, k, d);
            for (t, v) in dwo.iter_mut().zip(dots) {
                *t += v;
            }
        }
        for y in 0..h {
            for ky in 0..3 {
                let t = y as isize + (ky as isize - 1) * d as isize;
                if t >= 0 && interior.contains(&(t as usize)) {
                    continue;
                }
                let sy = reflect(t, h);
                let srow = &src[sy * w..(sy + 1) * w];
                let girow = gin.as_deref_mut().map(|g| &mut g[sy * w..(sy + 1) * w]);
                let k3 = [k[3 * ky], k[3 * ky + 1], k[3 * ky + 2]];
                let dots = adjoint3::<M>(grow(y), srow, girow, k3, d);
                for kx in 0..3 {
                    dwo[3 * ky + kx] += dots[kx];
                }
            }
        }
    }
    dw
}
