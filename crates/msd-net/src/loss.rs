//! Softmax, (class-weighted) cross-entropy and the soft Dice term, with their gradient at the logits.
use serde::{Deserialize, Serialize};

use rayon::prelude::*;

use crate::{Error, Result};

/// What the training loss is made of.
///
/// `loss = CE_w + dice_weight · (1 − mean_{k ≥ 1} Dice_k)`, where `CE_w` is the cross-entropy
/// averaged over pixels with weight `class_weights[label]` (`Σ w·CE / Σ w`, as PyTorch's weighted
/// mean) and `Dice_k` the soft Dice of foreground class `k` over the whole batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LossConfig {
    /// One weight per class (`None`: all 1). Bone is a small fraction of the voxels; a weight
    /// above 1 for it keeps the network from settling on "all background".
    pub class_weights: Option<Vec<f32>>,
    /// Weight of the soft Dice term (0 disables it).
    pub dice_weight: f32,
}

impl Default for LossConfig {
    /// Plain cross-entropy.
    fn default() -> Self {
        LossConfig { class_weights: None, dice_weight: 0.0 }
    }
}

impl LossConfig {
    /// Checks the weights against the number of classes.
    pub fn validate(&self, n_classes: usize) -> Result<()> {
        if let Some(w) = &self.class_weights {
            if w.len() != n_classes {
                return Err(Error::InvalidTrainConfig {
                    what: format!("{} class weights for {n_classes} classes", w.len()),
                });
            }
            if w.iter().any(|v| !(v.is_finite() && *v >= 0.0)) || w.iter().all(|v| *v == 0.0) {
                return Err(Error::InvalidTrainConfig {
                    what: format!("class weights {w:?} must be finite, non-negative and not all 0"),
                });
            }
        }
        if !(self.dice_weight.is_finite() && self.dice_weight >= 0.0) {
            return Err(Error::InvalidTrainConfig {
                what: format!("dice weight {} must be finite and non-negative", self.dice_weight),
            });
        }
        Ok(())
    }
}

/// The value of the loss over one batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossValue {
    /// The total loss (what is minimised).
    pub loss: f64,
    /// The (weighted) cross-entropy part.
    pub cross_entropy: f64,
    /// Mean soft Dice of the foreground classes (reported even when not in the loss).
    pub soft_dice: f64,
    /// Pixels in the batch.
    pub pixels: usize,
}

/// Softmax over classes in place; `logits` is `[n_classes][pixels]`.
pub(crate) fn softmax_planes(logits: &mut [f32], n_classes: usize) {
    // In parallel chunks of pixels (each pixel's arithmetic as in a serial loop, so the result
    // does not depend on the chunking): a 512² plane took 5 ms on one core, 1.3 s of a whole scan.
    const CHUNK: usize = 4096;
    let hw = logits.len() / n_classes;
    let mut chunks: Vec<Vec<&mut [f32]>> =
        (0..hw.div_ceil(CHUNK)).map(|_| Vec::with_capacity(n_classes)).collect();
    for plane in logits.chunks_exact_mut(hw.max(1)) {
        for (chunk, part) in chunks.iter_mut().zip(plane.chunks_mut(CHUNK)) {
            chunk.push(part);
        }
    }
    chunks.into_par_iter().for_each(|mut planes| {
        let mut col = vec![0.0f32; n_classes];
        for p in 0..planes[0].len() {
            let mut m = f32::NEG_INFINITY;
            for (c, plane) in col.iter_mut().zip(planes.iter()) {
                *c = plane[p];
                m = m.max(*c);
            }
            let mut s = 0.0;
            for c in col.iter_mut() {
                *c = (*c - m).exp();
                s += *c;
            }
            for (c, plane) in col.iter().zip(planes.iter_mut()) {
                plane[p] = c / s;
            }
        }
    });
}

/// The loss of a batch and its gradient at the logits.
///
/// `probs` are softmax outputs, `[images][n_classes][hw]`; `labels` `[images][hw]`;
/// `dlogits` receives the gradient in the layout of `probs`.
pub(crate) fn loss_and_grad(
    probs: &[f32],
    labels: &[u8],
    n_classes: usize,
    hw: usize,
    config: &LossConfig,
    dlogits: &mut [f32],
) -> Result<LossValue> {
    let px = labels.len();
    if hw == 0 || !px.is_multiple_of(hw) {
        return Err(Error::len("labels", hw, px));
    }
    if probs.len() != px * n_classes || dlogits.len() != probs.len() {
        return Err(Error::len("class probabilities", px * n_classes, probs.len()));
    }
    config.validate(n_classes)?;
    if let Some(bad) = labels.iter().position(|&l| l as usize >= n_classes) {
        return Err(Error::LabelOutOfRange { label: labels[bad], pixel: bad, n_classes });
    }
    let images = px / hw;
    let ones = vec![1.0f32; n_classes];
    let cw = config.class_weights.as_deref().unwrap_or(&ones);
    let total_w: f64 = labels.iter().map(|&l| cw[l as usize] as f64).sum();
    let norm = if total_w > 0.0 { 1.0 / total_w } else { 0.0 };
    // Soft Dice sums per foreground class over the batch: I = Σ p·y, P = Σ p, Y = Σ y.
    let mut inter = vec![0.0f64; n_classes];
    let mut psum = vec![0.0f64; n_classes];
    let mut ysum = vec![0.0f64; n_classes];
    let mut ce = 0.0f64;
    for i in 0..images {
        let pr = &probs[i * n_classes * hw..(i + 1) * n_classes * hw];
        let lb = &labels[i * hw..(i + 1) * hw];
        for (p, &l) in lb.iter().enumerate() {
            let l = l as usize;
            let pl = pr[l * hw + p].max(1e-30) as f64;
            ce -= cw[l] as f64 * pl.ln();
            inter[l] += pl;
            ysum[l] += 1.0;
            for (k, s) in psum.iter_mut().enumerate() {
                *s += pr[k * hw + p] as f64;
            }
        }
    }
    let ce = ce * norm;
    let eps = 1e-6;
    let fg = (n_classes - 1) as f64;
    let dice: Vec<f64> = (0..n_classes).map(|k| (2.0 * inter[k] + eps) / (psum[k] + ysum[k] + eps)).collect();
    let soft_dice = dice[1..].iter().sum::<f64>() / fg;
    let lambda = config.dice_weight as f64;
    // dL/dp_k at a pixel from the Dice term: −λ/K' · (2y/(P+Y) − 2I/(P+Y)²) for k ≥ 1.
    let dice_a: Vec<f64> = (0..n_classes).map(|k| -lambda / fg * 2.0 / (psum[k] + ysum[k] + eps)).collect();
    let dice_b: Vec<f64> = (0..n_classes)
        .map(|k| lambda / fg * 2.0 * (inter[k] + eps / 2.0) / (psum[k] + ysum[k] + eps).powi(2))
        .collect();
    let mut g = vec![0.0f64; n_classes];
    for i in 0..images {
        let base = i * n_classes * hw;
        let lb = &labels[i * hw..(i + 1) * hw];
        for (p, &l) in lb.iter().enumerate() {
            let l = l as usize;
            let a = cw[l] as f64 * norm;
            if lambda > 0.0 {
                for (k, gk) in g.iter_mut().enumerate().skip(1) {
                    *gk = dice_b[k] + if k == l { dice_a[k] } else { 0.0 };
                }
                let pg: f64 = (1..n_classes).map(|k| probs[base + k * hw + p] as f64 * g[k]).sum();
                for k in 0..n_classes {
                    let pk = probs[base + k * hw + p] as f64;
                    let gk = if k == 0 { 0.0 } else { g[k] };
                    let ce_part = a * (pk - if k == l { 1.0 } else { 0.0 });
                    dlogits[base + k * hw + p] = (ce_part + pk * (gk - pg)) as f32;
                }
            } else {
                for k in 0..n_classes {
                    let pk = probs[base + k * hw + p] as f64;
                    dlogits[base + k * hw + p] = (a * (pk - if k == l { 1.0 } else { 0.0 })) as f32;
                }
            }
        }
    }
    Ok(LossValue { loss: ce + lambda * (1.0 - soft_dice), cross_entropy: ce, soft_dice, pixels: px })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_softmax_equals_the_serial_loop_bit_for_bit() {
        let (k, hw) = (3, 10_007); // several chunks and a partial one
        let logits: Vec<f32> = (0..k * hw).map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.173).collect();
        let mut got = logits.clone();
        softmax_planes(&mut got, k);
        for p in 0..hw {
            let l: Vec<f32> = (0..k).map(|c| logits[c * hw + p]).collect();
            let m = l.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
            let e: Vec<f32> = l.iter().map(|&v| (v - m).exp()).collect();
            let s: f32 = e.iter().sum();
            for c in 0..k {
                assert_eq!(got[c * hw + p].to_bits(), (e[c] / s).to_bits(), "pixel {p}, class {c}");
            }
        }
        let mut empty: Vec<f32> = Vec::new();
        softmax_planes(&mut empty, 2);
    }
}
