//! The work of one band of rows in one pass: copy the inputs' rows into padded scratch, run the
//! register-blocked inner loops of `micro.rs` over them, and write the band's results back.
//!
//! A *forward pass* adds the contributions of a range of input channels to the pre-activations
//! of several output planes (the layers of a group, see `schedule.rs`); a *backward pass* does the
//! adjoint: from several output planes' gradients, the gradients of a range of input channels and
//! the weight gradients of every (output, input) pair.
//!
//! The backward pass works on the *padded* image: the forward pass reads
//! `pad(F)[y + P + (ky−1)d][x + P + (kx−1)d]` where `pad` mirrors `F` by `P` pixels on every side,
//! so its adjoint first computes the gradient of `pad(F)` — a plain correlation of the zero-padded
//! output gradients with the flipped kernels, no border cases — and then folds every padded pixel
//! back onto the image pixel it mirrors. That is the exact adjoint of the mirrored borders.
use super::border::reflect;
use super::micro::{MAX_ROWS, Micro, Plane, StripAt};
use super::scratch::{Scratch, fill_reflected, fill_zero_padded};

/// Floats of input scratch a forward band keeps in L2 (384 KiB): sets how many channels are
/// copied and summed per round.
const FORWARD_SCRATCH: usize = 96 * 1024;
/// Input channels whose gradients a backward band computes per round; they share every load of
/// the output gradients.
pub(crate) const BACKWARD_CHANNELS: usize = 4;

/// One output plane of a forward pass.
pub(crate) struct ForwardOut<'a> {
    /// Dilation of its layer.
    pub d: usize,
    /// Its 3×3 taps for the pass's input channels, `[channels][9]`.
    pub weights: &'a [f32],
    /// Its bias (the starting value when the pass starts from the biases).
    pub bias: f32,
    /// Whether this pass completes the plane, so ReLU is applied as it is written.
    pub relu: bool,
}

/// The shared, read-only part of a forward pass.
pub(crate) struct ForwardPass<'a> {
    pub h: usize,
    pub w: usize,
    /// Scratch halo: the largest dilation of the network.
    pub pad: usize,
    /// The input channels' planes, `[channels][h][w]`.
    pub inputs: &'a [f32],
    pub outs: &'a [ForwardOut<'a>],
    /// Start from the biases (true) or from what the output planes already hold.
    pub from_bias: bool,
}

/// Adds `Σ_m conv(inputs[m], weights[m][n])` to the `N` planes of `acc` (`[N][nrows][stride]`)
/// over `ncols` columns, with rows blocked by the dilation. `row_off` / `col_off` map an output
/// pixel to the scratch position of its centre tap.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn conv_band<K: Micro<L>, const N: usize, const L: usize>(
    acc: &mut [f32],
    stride: usize,
    nrows: usize,
    ncols: usize,
    inputs: &[Plane<'_>],
    weights: &[[[f32; 9]; N]],
    (row_off, col_off): (usize, usize),
    d: usize,
) {
    // Few outputs: more rows per block; several outputs already share each load.
    let max_rows = if N == 1 { MAX_ROWS } else { 2 };
    for rho in 0..d.min(nrows) {
        let mut u = rho;
        while u < nrows {
            let r = ((nrows - 1 - u) / d + 1).min(max_rows);
            let at = StripAt { plane: nrows * stride, stride, u, x: 0, row_off, col_off, d };
            match r {
                1 => conv_rows::<K, N, 1, L>(acc, ncols, inputs, weights, at),
                2 => conv_rows::<K, N, 2, L>(acc, ncols, inputs, weights, at),
                3 => conv_rows::<K, N, 3, L>(acc, ncols, inputs, weights, at),
                _ => conv_rows::<K, N, MAX_ROWS, L>(acc, ncols, inputs, weights, at),
            }
            u += r * d;
        }
    }
}

/// [`conv_band`] for the `R` rows `u, u + d, …`: strips of two vectors, then one.
#[inline(always)]
fn conv_rows<K: Micro<L>, const N: usize, const R: usize, const L: usize>(
    acc: &mut [f32],
    ncols: usize,
    inputs: &[Plane<'_>],
    weights: &[[[f32; 9]; N]],
    at: StripAt,
) {
    let mut x = 0;
    while x < ncols {
        if x + 2 * L <= ncols {
            K::conv_strip::<N, R, 2>(acc, inputs, weights, StripAt { x, ..at });
            x += 2 * L;
        } else {
            K::conv_strip::<N, R, 1>(acc, inputs, weights, StripAt { x, ..at });
            x += L;
        }
    }
}

/// One band of a forward pass: `outs[n]` holds rows `y0 .. y0 + band` of output plane `n`.
#[inline(always)]
pub(crate) fn forward_band<K: Micro<L>, const L: usize>(
    p: &ForwardPass<'_>,
    y0: usize,
    outs: &mut [&mut [f32]],
    scratch: &mut Scratch,
) {
    let (h, w, pad) = (p.h, p.w, p.pad);
    let hw = h * w;
    let nb = outs.first().map_or(0, |o| o.len() / w);
    let lead = pad.next_multiple_of(L);
    let aw = w.next_multiple_of(L);
    let pw = aw + 2 * lead;
    let plane = (nb + 2 * pad) * pw;
    let nch = p.inputs.len() / hw;
    let cb = (FORWARD_SCRATCH / plane).clamp(1, nch.max(1));
    // When whole vectors tile a row, the outputs accumulate in place in the feature buffer;
    // otherwise in a scratch copy whose rows are padded to whole vectors.
    let direct = w.is_multiple_of(L);
    let acc_plane = if direct { 0 } else { nb * aw };
    let [src, acc, _] = scratch.regions([cb * plane, p.outs.len() * acc_plane, 0]);
    for (n, (spec, out)) in p.outs.iter().zip(outs.iter_mut()).enumerate() {
        if direct {
            if p.from_bias {
                out.fill(spec.bias);
            }
            continue;
        }
        let a = &mut acc[n * acc_plane..(n + 1) * acc_plane];
        for (row, o) in a.chunks_exact_mut(aw).zip(out.chunks_exact(w)) {
            if p.from_bias {
                row.fill(spec.bias);
            } else {
                row[..w].copy_from_slice(o);
                row[w..].fill(0.0);
            }
        }
    }
    let mut weights: Vec<[[f32; 9]; 1]> = Vec::with_capacity(cb);
    for c in (0..nch).step_by(cb) {
        let nc = cb.min(nch - c);
        for (m, s) in src.chunks_exact_mut(plane).take(nc).enumerate() {
            let input = &p.inputs[(c + m) * hw..(c + m + 1) * hw];
            fill_reflected(input, h, w, y0 as isize - pad as isize, -(lead as isize), pw, s);
        }
        let planes: Vec<Plane<'_>> =
            src.chunks_exact(plane).take(nc).map(|data| Plane { data, stride: pw }).collect();
        for (n, (spec, out)) in p.outs.iter().zip(outs.iter_mut()).enumerate() {
            weights.clear();
            weights.extend(
                spec.weights[c * 9..(c + nc) * 9]
                    .chunks_exact(9)
                    .map(|k| [k.try_into().expect("chunks of 9")]),
            );
            if direct {
                conv_band::<K, 1, L>(out, w, nb, w, &planes, &weights, (pad, lead), spec.d);
            } else {
                let a = &mut acc[n * acc_plane..(n + 1) * acc_plane];
                conv_band::<K, 1, L>(a, aw, nb, aw, &planes, &weights, (pad, lead), spec.d);
            }
        }
    }
    for (n, (spec, out)) in p.outs.iter().zip(outs.iter_mut()).enumerate() {
        if direct {
            if spec.relu {
                out.iter_mut().for_each(|v| *v = v.max(0.0));
            }
            continue;
        }
        let a = &acc[n * acc_plane..(n + 1) * acc_plane];
        for (o, row) in out.chunks_exact_mut(w).zip(a.chunks_exact(aw)) {
            if spec.relu {
                for (o, &v) in o.iter_mut().zip(row) {
                    *o = v.max(0.0);
                }
            } else {
                o.copy_from_slice(&row[..w]);
            }
        }
    }
}

/// One output plane of a backward pass.
pub(crate) struct BackwardOut<'a> {
    /// Dilation of its layer.
    pub d: usize,
    /// Its 3×3 taps for the pass's input channels, `[channels][9]`.
    pub weights: &'a [f32],
}

/// The shared, read-only part of a backward pass.
pub(crate) struct BackwardPass<'a> {
    pub h: usize,
    pub w: usize,
    /// Scratch halo and padding of the adjoint: the largest dilation of the network.
    pub pad: usize,
    /// Padded rows per band.
    pub band: usize,
    /// Channels `0..first_with_grad` (of this pass's inputs) get no input gradient.
    pub first_with_grad: usize,
    /// The input channels' features, `[channels][h][w]`.
    pub features: &'a [f32],
    /// The output planes' gradients after the ReLU mask, `[outs][h][w]`.
    pub grads: &'a [f32],
    pub outs: &'a [BackwardOut<'a>],
}

impl BackwardPass<'_> {
    /// The image rows whose input gradients band `b` owns (band `b` covers the padded rows
    /// `b·band ..`; padded row `Y` is image row `Y − pad`).
    pub(crate) fn owned_rows(&self, b: usize) -> std::ops::Range<usize> {
        let top = (b * self.band) as isize - self.pad as isize;
        let clamp = |y: isize| y.clamp(0, self.h as isize) as usize;
        clamp(top)..clamp(top + self.band as isize)
    }

    /// Bands covering the padded image.
    pub(crate) fn bands(&self) -> usize {
        (self.h + 2 * self.pad).div_ceil(self.band)
    }
}

/// What a backward band returns besides the rows it wrote in place.
pub(crate) struct BandGrads {
    /// Weight gradients `[outs][channels][9]` of the band's pixels.
    pub weights: Vec<f32>,
    /// Gradient rows that mirror onto rows other bands own: `(channel, image row, row)`, to be
    /// added after the parallel part, in band order.
    pub mirrored_rows: Vec<(usize, usize, Vec<f32>)>,
}

/// `dst[x] += Σ row[X]` over the padded columns `X` that mirror onto `x`.
#[inline(always)]
fn fold_row(row: &[f32], dst: &mut [f32], pad: usize) {
    let w = dst.len();
    for (o, &v) in dst.iter_mut().zip(&row[pad..pad + w]) {
        *o += v;
    }
    for x in (0..pad).chain(w + pad..w + 2 * pad) {
        dst[reflect(x as isize - pad as isize, w)] += row[x];
    }
}

/// Weight-gradient taps of one (output gradient, input) pair over the band rows `rows`.
#[inline(always)]
fn weight_grad_band<K: Micro<L>, const L: usize>(
    g: Plane<'_>,
    f: Plane<'_>,
    rows: std::ops::Range<usize>,
    (pad, lead, ncols): (usize, usize, usize),
    d: usize,
) -> [f32; 9] {
    let mut acc = [[0.0f32; L]; 9];
    for rho in 0..d.min(rows.len()) {
        let mut u = rows.start + rho;
        while u < rows.end {
            let r = ((rows.end - 1 - u) / d + 1).min(MAX_ROWS);
            let (gs, fs) = ((g, u + pad, pad + lead), (f, u + pad, lead));
            match r {
                1 => K::weight_grad_rows::<1>(&mut acc, gs, fs, d, ncols),
                2 => K::weight_grad_rows::<2>(&mut acc, gs, fs, d, ncols),
                3 => K::weight_grad_rows::<3>(&mut acc, gs, fs, d, ncols),
                _ => K::weight_grad_rows::<MAX_ROWS>(&mut acc, gs, fs, d, ncols),
            }
            u += r * d;
        }
    }
    // Lanes summed in a fixed order: the result does not depend on the number of threads.
    acc.map(|lanes| lanes.iter().sum())
}

/// One band of a backward pass. `gin[m]` holds the rows [`BackwardPass::owned_rows`] of input
/// channel `m`'s gradient (empty for channels that need none); they are added to in place.
#[inline(always)]
pub(crate) fn backward_band<K: Micro<L>, const L: usize>(
    p: &BackwardPass<'_>,
    b: usize,
    gin: &mut [&mut [f32]],
    scratch: &mut Scratch,
) -> BandGrads {
    let (h, w, pad) = (p.h, p.w, p.pad);
    let hw = h * w;
    let top = b * p.band;
    let nb = p.band.min(h + 2 * pad - top);
    let lead = pad.next_multiple_of(L);
    let aw = w.next_multiple_of(L);
    let aw2 = (w + 2 * pad).next_multiple_of(L);
    let srows = nb + 2 * pad;
    let (gw, fw) = (aw2 + 2 * lead, aw + 2 * lead);
    let (gplane, fplane, aplane) = (srows * gw, srows * fw, nb * aw2);
    let ng = p.outs.len();
    let nch = p.features.len() / hw;
    // Scratch row r holds image row `first + r`, for the gradients and the features alike.
    let first = top as isize - 2 * pad as isize;
    let owned = p.owned_rows(b);
    // Band rows u (padded row top + u) whose image row the band owns: its weight-gradient pixels.
    let own_u = if owned.is_empty() { 0..0 } else { owned.start + pad - top..owned.end + pad - top };
    let lens = [ng * gplane, BACKWARD_CHANNELS * fplane, BACKWARD_CHANNELS * aplane];
    let [gs, fs, acc] = scratch.regions(lens);
    {
        for (q, s) in gs.chunks_exact_mut(gplane).enumerate() {
            let g = &p.grads[q * hw..(q + 1) * hw];
            fill_zero_padded(g, h, w, first, -((pad + lead) as isize), gw, s);
        }
        let gplanes: Vec<Plane<'_>> =
            gs.chunks_exact(gplane).map(|data| Plane { data, stride: gw }).collect();
        let mut dw = vec![0.0f32; ng * nch * 9];
        let mut mirrored_rows = Vec::new();
        let mut c = 0;
        while c < nch {
            // Blocks never straddle the first channel with a gradient.
            let limit = if c < p.first_with_grad { p.first_with_grad } else { nch };
            let nc = BACKWARD_CHANNELS.min(limit - c);
            let with_grad = c >= p.first_with_grad;
            for (m, s) in fs.chunks_exact_mut(fplane).take(nc).enumerate() {
                let f = &p.features[(c + m) * hw..(c + m + 1) * hw];
                fill_reflected(f, h, w, first, -(lead as isize), fw, s);
            }
            let fplanes: Vec<Plane<'_>> =
                fs.chunks_exact(fplane).take(nc).map(|data| Plane { data, stride: fw }).collect();
            if with_grad {
                acc[..BACKWARD_CHANNELS * aplane].fill(0.0);
            }
            for (q, (spec, g)) in p.outs.iter().zip(&gplanes).enumerate() {
                for (m, f) in fplanes.iter().enumerate() {
                    let taps = weight_grad_band::<K, L>(*g, *f, own_u.clone(), (pad, lead, aw), spec.d);
                    let at = (q * nch + c + m) * 9;
                    for (t, v) in dw[at..at + 9].iter_mut().zip(taps) {
                        *t += v;
                    }
                }
                if with_grad {
                    // Flipped taps: the adjoint of a correlation is the correlation with the
                    // kernel turned by 180°.
                    let k: [[f32; 9]; BACKWARD_CHANNELS] = std::array::from_fn(|m| {
                        let mut k = [0.0f32; 9];
                        if m < nc {
                            k.copy_from_slice(&spec.weights[(c + m) * 9..(c + m + 1) * 9]);
                            k.reverse();
                        }
                        k
                    });
                    conv_band::<K, BACKWARD_CHANNELS, L>(
                        acc,
                        aw2,
                        nb,
                        aw2,
                        std::slice::from_ref(g),
                        &[k],
                        (pad, lead),
                        spec.d,
                    );
                }
            }
            if with_grad {
                for (m, a) in acc.chunks_exact(aplane).take(nc).enumerate() {
                    for (u, row) in a.chunks_exact(aw2).enumerate() {
                        let y = (top + u) as isize - pad as isize;
                        let row = &row[..w + 2 * pad];
                        if y >= 0 && owned.contains(&(y as usize)) {
                            let r = y as usize - owned.start;
                            fold_row(row, &mut gin[c + m][r * w..(r + 1) * w], pad);
                        } else {
                            let mut folded = vec![0.0f32; w];
                            fold_row(row, &mut folded, pad);
                            mirrored_rows.push((c + m, reflect(y, h), folded));
                        }
                    }
                }
            }
            c += nc;
        }
        BandGrads { weights: dw, mirrored_rows }
    }
}
