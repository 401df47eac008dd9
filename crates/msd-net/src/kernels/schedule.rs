//! The order of work over a whole network: layer groups, and passes split into row bands.
//!
//! Layer `i` reads every earlier channel, so a layer-by-layer forward pass streams the whole
//! feature buffer from memory once per layer — 5 GB for depth 100 at 512², far more than the
//! caches hold. But the next [`GROUP`] layers all read the channels that exist *before* the
//! group, so one *bulk* pass reads each of those channels once and adds its contributions to all
//! `GROUP` layers' pre-activations (with each layer's own dilation), which cuts the memory traffic
//! by `GROUP`. What is left is the small triangle inside the group: layer `s` of the group,
//! completed by ReLU, is added to the layers after it, one short pass per layer. The backward
//! pass runs the same schedule in reverse.
//!
//! Every pass is split into bands of rows, the parallel tasks. Band boundaries depend only on
//! the image size, and each band's weight-gradient sums are added in band order, so the results
//! do not depend on the number of threads.
use rayon::prelude::*;

use super::Isa;
use super::band::{self, BackwardOut, BackwardPass, BandGrads, ForwardOut, ForwardPass};
use super::micro::Portable;
use super::scratch::Scratch;
use crate::MsdConfig;

/// Layers per group: one bulk pass serves them all. Measured at depth 100, 512²: 8 → 189 ms
/// forward, 16 → 159 ms, 25 → 156 ms, 34 → 163 ms; the training step is fastest at 16.
pub(crate) const GROUP: usize = 16;
/// Output rows per forward band.
const FORWARD_BAND: usize = 32;
/// Padded rows per backward band.
const BACKWARD_BAND: usize = 32;

fn forward_band(isa: Isa, p: &ForwardPass<'_>, y0: usize, outs: &mut [&mut [f32]]) {
    Scratch::with_thread_local(|s| match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the public entry points run only with an `isa` that passed `Isa::check`.
        Isa::Avx512 => unsafe { super::x86::forward_band_avx512(p, y0, outs, s) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above (AVX2 + FMA present).
        Isa::Avx2Fma => unsafe { super::x86::forward_band_avx2(p, y0, outs, s) },
        _ => band::forward_band::<Portable, 8>(p, y0, outs, s),
    })
}

fn backward_band(isa: Isa, p: &BackwardPass<'_>, b: usize, gin: &mut [&mut [f32]]) -> BandGrads {
    Scratch::with_thread_local(|s| match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the public entry points run only with an `isa` that passed `Isa::check`.
        Isa::Avx512 => unsafe { super::x86::backward_band_avx512(p, b, gin, s) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above (AVX2 + FMA present).
        Isa::Avx2Fma => unsafe { super::x86::backward_band_avx2(p, b, gin, s) },
        _ => band::backward_band::<Portable, 8>(p, b, gin, s),
    })
}

/// The padding every scratch plane gets: the largest dilation.
fn halo(config: &MsdConfig) -> usize {
    config.dilations.iter().copied().max().unwrap_or(1)
}

/// The largest dilation the banded kernels take. Their scratch grows with the halo (a band of
/// `32 + 2·halo` rows of `w + 2·halo` columns per plane), so a network with a larger dilation —
/// far beyond the study's 10, and mostly mirrored padding on any CT slice — runs the plain loops
/// of [`super::reference`] instead, slowly but in bounded memory.
pub(crate) const MAX_BANDED_DILATION: usize = 64;

/// The groups of `size` layers, in forward order.
fn groups(depth: usize, size: usize) -> impl DoubleEndedIterator<Item = std::ops::Range<usize>> {
    (0..depth.div_ceil(size)).map(move |g| g * size..((g + 1) * size).min(depth))
}

/// Adds the contributions of channels `channels` to the layers `layers` (whose output channels
/// follow `channels.end` directly), starting from their biases or from what they hold.
#[allow(clippy::too_many_arguments)]
fn forward_pass(
    isa: Isa,
    config: &MsdConfig,
    (conv_weights, conv_biases): (&[f32], &[f32]),
    features: &mut [f32],
    (h, w): (usize, usize),
    channels: std::ops::Range<usize>,
    layers: std::ops::Range<usize>,
    from_bias: bool,
) {
    let hw = h * w;
    let width = config.width;
    debug_assert_eq!(config.layer_inputs(layers.start), channels.end);
    let (lo, hi) = features.split_at_mut(channels.end * hw);
    let outs: Vec<ForwardOut<'_>> = layers
        .clone()
        .flat_map(|j| (0..width).map(move |o| (j, o)))
        .map(|(j, o)| {
            let cin = config.layer_inputs(j);
            let at = config.weight_offset(j) + o * cin * 9;
            ForwardOut {
                d: config.dilations[j],
                weights: &conv_weights[at + channels.start * 9..at + channels.end * 9],
                bias: conv_biases[j * width + o],
                relu: j == layers.start,
            }
        })
        .collect();
    conv_planes(
        isa,
        (h, w),
        halo(config),
        &lo[channels.start * hw..],
        &outs,
        &mut hi[..outs.len() * hw],
        from_bias,
    );
}

/// Adds the 3×3 convolutions of the planes `inputs` (`[channels][h][w]`) to the planes `planes`
/// (`[outs.len()][h][w]`, one per entry of `outs`, starting from their biases when `from_bias`),
/// in parallel bands of rows; `pad` is the scratch halo (at least every dilation).
pub(crate) fn conv_planes(
    isa: Isa,
    (h, w): (usize, usize),
    pad: usize,
    inputs: &[f32],
    outs: &[ForwardOut<'_>],
    planes: &mut [f32],
    from_bias: bool,
) {
    let hw = h * w;
    let pass = ForwardPass { h, w, pad, inputs, outs, from_bias };
    let mut per_band: Vec<Vec<&mut [f32]>> = (0..h.div_ceil(FORWARD_BAND)).map(|_| Vec::new()).collect();
    for plane in planes[..outs.len() * hw].chunks_exact_mut(hw) {
        for (b, rows) in plane.chunks_mut(FORWARD_BAND * w).enumerate() {
            per_band[b].push(rows);
        }
    }
    per_band.into_par_iter().enumerate().for_each(|(b, mut rows)| {
        forward_band(isa, &pass, b * FORWARD_BAND, &mut rows);
    });
}

/// Forward pass of all 3×3 layers; lengths checked by the caller.
pub(crate) fn forward(
    isa: Isa,
    config: &MsdConfig,
    conv_weights: &[f32],
    conv_biases: &[f32],
    features: &mut [f32],
    h: usize,
    w: usize,
) {
    if halo(config) > MAX_BANDED_DILATION {
        super::reference::forward(config, conv_weights, conv_biases, features, h, w);
        return;
    }
    let params = (conv_weights, conv_biases);
    for group in groups(config.dilations.len(), GROUP) {
        let bulk = 0..config.layer_inputs(group.start);
        forward_pass(isa, config, params, features, (h, w), bulk, group.clone(), true);
        for s in group.start..group.end - 1 {
            let own = config.layer_inputs(s)..config.layer_inputs(s + 1);
            forward_pass(isa, config, params, features, (h, w), own, s + 1..group.end, false);
        }
    }
}

/// Adds, from the (masked) gradients of layers `layers`, the gradients of channels `channels`
/// (which end where the layers' outputs begin) and the weight gradients of every pair.
#[allow(clippy::too_many_arguments)]
fn backward_pass(
    isa: Isa,
    config: &MsdConfig,
    conv_weights: &[f32],
    features: &[f32],
    grads: &mut [f32],
    weight_grads: &mut [f32],
    (h, w): (usize, usize),
    channels: std::ops::Range<usize>,
    layers: std::ops::Range<usize>,
) {
    let hw = h * w;
    let width = config.width;
    debug_assert_eq!(config.layer_inputs(layers.start), channels.end);
    let pairs: Vec<(usize, usize)> = layers.clone().flat_map(|j| (0..width).map(move |o| (j, o))).collect();
    let offsets: Vec<usize> = pairs
        .iter()
        .map(|&(j, o)| config.weight_offset(j) + o * config.layer_inputs(j) * 9 + channels.start * 9)
        .collect();
    let nch = channels.len();
    let results: Vec<BandGrads> = {
        let (lo, hi) = grads.split_at_mut(channels.end * hw);
        let outs: Vec<BackwardOut<'_>> = pairs
            .iter()
            .zip(&offsets)
            .map(|(&(j, _), &at)| BackwardOut {
                d: config.dilations[j],
                weights: &conv_weights[at..at + nch * 9],
            })
            .collect();
        let pass = BackwardPass {
            h,
            w,
            pad: halo(config),
            band: BACKWARD_BAND,
            first_with_grad: config.input_channels.saturating_sub(channels.start).min(nch),
            features: &features[channels.start * hw..channels.end * hw],
            grads: &hi[..pairs.len() * hw],
            outs: &outs,
        };
        let bands = pass.bands();
        let mut per_band: Vec<Vec<&mut [f32]>> = (0..bands).map(|_| Vec::with_capacity(nch)).collect();
        for (m, plane) in lo[channels.start * hw..].chunks_exact_mut(hw).enumerate() {
            if m < pass.first_with_grad {
                per_band.iter_mut().for_each(|v| v.push(&mut []));
                continue;
            }
            let mut rest = plane;
            for (b, views) in per_band.iter_mut().enumerate() {
                let rows = pass.owned_rows(b);
                let (mine, tail) = rest.split_at_mut(rows.len() * w);
                views.push(mine);
                rest = tail;
            }
        }
        per_band
            .into_par_iter()
            .enumerate()
            .map(|(b, mut gin)| backward_band(isa, &pass, b, &mut gin))
            .collect()
    };
    for band in &results {
        for (q, at) in offsets.iter().enumerate() {
            let src = &band.weights[q * nch * 9..(q + 1) * nch * 9];
            for (t, v) in weight_grads[*at..at + nch * 9].iter_mut().zip(src) {
                *t += v;
            }
        }
    }
    for band in results {
        for (m, y, row) in band.mirrored_rows {
            let at = (channels.start + m) * hw + y * w;
            for (t, v) in grads[at..at + w].iter_mut().zip(row) {
                *t += v;
            }
        }
    }
}

/// Backward pass of all 3×3 layers; lengths checked by the caller.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward(
    isa: Isa,
    config: &MsdConfig,
    conv_weights: &[f32],
    features: &[f32],
    grads: &mut [f32],
    weight_grads: &mut [f32],
    bias_grads: &mut [f32],
    h: usize,
    w: usize,
) {
    if halo(config) > MAX_BANDED_DILATION {
        super::reference::backward(config, conv_weights, features, grads, weight_grads, bias_grads, h, w);
        return;
    }
    let hw = h * w;
    let width = config.width;
    for group in groups(config.dilations.len(), GROUP).rev() {
        for s in group.clone().rev() {
            // Layer s has received every contribution now: apply its ReLU's mask.
            let first = config.layer_inputs(s);
            let g = &mut grads[first * hw..(first + width) * hw];
            let f = &features[first * hw..(first + width) * hw];
            g.par_chunks_mut(4096).zip(f.par_chunks(4096)).for_each(|(g, f)| {
                for (g, &f) in g.iter_mut().zip(f) {
                    if f <= 0.0 {
                        *g = 0.0;
                    }
                }
            });
            for (o, plane) in g.chunks_exact(hw).enumerate() {
                bias_grads[s * width + o] += super::lane_sum(plane);
            }
            if s > group.start {
                let own = config.layer_inputs(group.start)..first;
                backward_pass(
                    isa,
                    config,
                    conv_weights,
                    features,
                    grads,
                    weight_grads,
                    (h, w),
                    own,
                    s..s + 1,
                );
            }
        }
        let bulk = 0..config.layer_inputs(group.start);
        backward_pass(isa, config, conv_weights, features, grads, weight_grads, (h, w), bulk, group);
    }
}
