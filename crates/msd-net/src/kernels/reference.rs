//! Naive scalar MSDnet kernels: the plainest possible loops, the oracle the fast kernels are tested
//! against. Generic over the float type so the gradient check can run them in `f64`.
use super::border::reflect;
use crate::MsdConfig;

/// Float types the reference kernels run in (`f32` and `f64`).
pub trait Real:
    Copy + Default + std::ops::Add<Output = Self> + std::ops::Mul<Output = Self> + PartialOrd
{
    /// Conversion from `f32` (parameters are stored in `f32`).
    fn from_f32(v: f32) -> Self;
}

impl Real for f32 {
    fn from_f32(v: f32) -> Self {
        v
    }
}

impl Real for f64 {
    fn from_f32(v: f32) -> Self {
        v as f64
    }
}

/// Forward pass of all 3×3 layers over one image, writing channels `input_channels..` of
/// `features` (`[total_channels][h][w]`; channels `0..input_channels` hold the input).
///
/// `conv_weights` and `conv_biases` are in the crate's flat layouts. Lengths are the caller's
/// responsibility (this is the test oracle: it panics on a wrong length).
pub fn forward<T: Real>(
    config: &MsdConfig,
    conv_weights: &[T],
    conv_biases: &[T],
    features: &mut [T],
    h: usize,
    w: usize,
) {
    let hw = h * w;
    for (layer, &d) in config.dilations.iter().enumerate() {
        let cin = config.layer_inputs(layer);
        let d = d as isize;
        let off = config.weight_offset(layer);
        for o in 0..config.width {
            let bias = conv_biases[layer * config.width + o];
            for y in 0..h {
                for x in 0..w {
                    let mut s = bias;
                    for c in 0..cin {
                        for ky in 0..3 {
                            let sy = reflect(y as isize + (ky as isize - 1) * d, h);
                            for kx in 0..3 {
                                let sx = reflect(x as isize + (kx as isize - 1) * d, w);
                                let k = conv_weights[off + ((o * cin + c) * 3 + ky) * 3 + kx];
                                s = s + k * features[c * hw + sy * w + sx];
                            }
                        }
                    }
                    let s = if s > T::default() { s } else { T::default() };
                    features[(cin + o) * hw + y * w + x] = s;
                }
            }
        }
    }
}

/// Backward pass of all 3×3 layers over one image: the exact adjoint of [`forward`].
///
/// On entry `grads` (`[total_channels][h][w]`) holds the loss gradient with respect to every
/// feature channel as seen from the final layer; on return channels `input_channels..` hold the
/// total gradient before each layer's ReLU was applied, and channels `0..input_channels` the
/// gradient with respect to the network's input. Weight and bias gradients are added to
/// `weight_grads` / `bias_grads`.
#[allow(clippy::too_many_arguments)]
pub fn backward<T: Real>(
    config: &MsdConfig,
    conv_weights: &[T],
    features: &[T],
    grads: &mut [T],
    weight_grads: &mut [T],
    bias_grads: &mut [T],
    h: usize,
    w: usize,
) {
    let hw = h * w;
    for (layer, &d) in config.dilations.iter().enumerate().rev() {
        let cin = config.layer_inputs(layer);
        let d = d as isize;
        let off = config.weight_offset(layer);
        for o in 0..config.width {
            let ch = cin + o;
            for p in 0..hw {
                if features[ch * hw + p] <= T::default() {
                    grads[ch * hw + p] = T::default();
                }
            }
            for y in 0..h {
                for x in 0..w {
                    let g = grads[ch * hw + y * w + x];
                    bias_grads[layer * config.width + o] = bias_grads[layer * config.width + o] + g;
                    for c in 0..cin {
                        for ky in 0..3 {
                            let sy = reflect(y as isize + (ky as isize - 1) * d, h);
                            for kx in 0..3 {
                                let sx = reflect(x as isize + (kx as isize - 1) * d, w);
                                let wi = off + ((o * cin + c) * 3 + ky) * 3 + kx;
                                let src = c * hw + sy * w + sx;
                                weight_grads[wi] = weight_grads[wi] + g * features[src];
                                grads[src] = grads[src] + g * conv_weights[wi];
                            }
                        }
                    }
                }
            }
        }
    }
}
