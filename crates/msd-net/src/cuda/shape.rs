//! The network's shape and the flat host-side parameter layout shared with the CPU path.

use rand::Rng;
use rand_distr::StandardNormal;

use super::error::{Error, Result};
use super::launch::MAX_CLASSES;

/// The MSDnet's shape: `depth` dilated 3×3 layers of `width` channels over `c_in` input channels, and a
/// final 1×1 layer to `n_classes` outputs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetShape {
    c_in: usize,
    width: usize,
    depth: usize,
    n_classes: usize,
    dilations: Vec<usize>,
}

impl NetShape {
    /// A network with the default dilations `1 + (i mod 10)` for layer `i`.
    ///
    /// # Errors
    /// [`Error::InvalidShape`] as for [`NetShape::with_dilations`].
    pub fn new(c_in: usize, width: usize, depth: usize, n_classes: usize) -> Result<Self> {
        Self::with_dilations(c_in, width, n_classes, (0..depth).map(|i| 1 + i % 10).collect())
    }

    /// A network with one dilation per layer (`depth = dilations.len()`).
    ///
    /// # Errors
    /// [`Error::InvalidShape`] for zero sizes, a zero dilation, more than 8 classes (the head kernels
    /// keep the classes in registers), or sizes whose parameter or channel count overflows `i32`.
    pub fn with_dilations(
        c_in: usize,
        width: usize,
        n_classes: usize,
        dilations: Vec<usize>,
    ) -> Result<Self> {
        if c_in == 0 || width == 0 || dilations.is_empty() {
            return Err(Error::InvalidShape(format!(
                "c_in {c_in}, width {width} and depth {} must all be at least 1",
                dilations.len()
            )));
        }
        if !(2..=MAX_CLASSES).contains(&n_classes) {
            return Err(Error::InvalidShape(format!("{n_classes} classes; 2..={MAX_CLASSES} are supported")));
        }
        if let Some(i) = dilations.iter().position(|&d| d == 0 || d > 1 << 20) {
            return Err(Error::InvalidShape(format!("layer {i} has dilation {}", dilations[i])));
        }
        let shape = NetShape { c_in, width, depth: dilations.len(), n_classes, dilations };
        let c_total = shape.depth.checked_mul(width).and_then(|d| d.checked_add(c_in));
        let params = c_total.and_then(|_| shape.checked_param_len());
        match (c_total, params) {
            (Some(c), Some(p)) if i32::try_from(c).is_ok() && i32::try_from(p).is_ok() => Ok(shape),
            _ => Err(Error::InvalidShape(format!(
                "c_in {c_in}, width {width}, depth {} overflows the kernels' 32-bit sizes",
                shape.depth
            ))),
        }
    }

    fn checked_param_len(&self) -> Option<usize> {
        let mut n = 0usize;
        for i in 0..self.depth {
            let cin = self.c_in.checked_add(i.checked_mul(self.width)?)?;
            n = n.checked_add(self.width.checked_mul(cin)?.checked_mul(9)?)?;
        }
        let c_total = self.c_in.checked_add(self.depth.checked_mul(self.width)?)?;
        n.checked_add(self.depth * self.width)?.checked_add(self.n_classes.checked_mul(c_total + 1)?)
    }

    /// Input channels.
    pub fn c_in(&self) -> usize {
        self.c_in
    }
    /// Channels each 3×3 layer adds.
    pub fn width(&self) -> usize {
        self.width
    }
    /// Number of 3×3 layers.
    pub fn depth(&self) -> usize {
        self.depth
    }
    /// Output classes.
    pub fn n_classes(&self) -> usize {
        self.n_classes
    }
    /// Dilation of each layer.
    pub fn dilations(&self) -> &[usize] {
        &self.dilations
    }
    /// Channels of the feature buffer: `c_in + depth·width`.
    pub fn c_total(&self) -> usize {
        self.c_in + self.depth * self.width
    }
    /// Channels layer `i` reads: `c_in + i·width` (also the first channel it writes).
    pub fn layer_inputs(&self, i: usize) -> usize {
        self.c_in + i * self.width
    }
    /// Offset of layer `i`'s block `[width][c_in + i·width][3][3]` in the concatenated 3×3 weights.
    pub fn conv_weight_offset(&self, i: usize) -> usize {
        // Σ_{l<i} width·(c_in + l·width)·9, in closed form.
        9 * self.width * (i * self.c_in + self.width * i * i.saturating_sub(1) / 2)
    }
    /// Length of layer `i`'s weight block.
    pub fn conv_weight_len(&self, i: usize) -> usize {
        9 * self.width * self.layer_inputs(i)
    }
    /// Length of all 3×3 weights.
    pub fn conv_weights_len(&self) -> usize {
        self.conv_weight_offset(self.depth)
    }
    /// Length of all 3×3 biases, `depth·width`.
    pub fn conv_biases_len(&self) -> usize {
        self.depth * self.width
    }
    /// Length of the final layer's weights `[n_classes][c_total]`.
    pub fn head_weights_len(&self) -> usize {
        self.n_classes * self.c_total()
    }
    /// All parameters: 3×3 weights, 3×3 biases, head weights, head bias.
    pub fn param_len(&self) -> usize {
        self.conv_weights_len() + self.conv_biases_len() + self.head_weights_len() + self.n_classes
    }
    /// Multiply-adds ×2 of one forward pass over `pixels` pixels (3×3 layers and head).
    pub fn forward_flops(&self, pixels: usize) -> f64 {
        let conv: usize = (0..self.depth).map(|i| self.conv_weight_len(i)).sum();
        2.0 * pixels as f64 * (conv + self.head_weights_len()) as f64
    }
}

/// The network's parameters on the host, in the layout shared with the CPU path: all 3×3 weight blocks
/// `[width][c_in + i·width][3][3]` concatenated, biases `[depth·width]`, head weights
/// `[n_classes][c_total]`, head bias `[n_classes]`.
#[derive(Clone, Debug, PartialEq)]
pub struct HostParams {
    /// Concatenated 3×3 weights.
    pub conv_weights: Vec<f32>,
    /// 3×3 biases.
    pub conv_biases: Vec<f32>,
    /// Final 1×1 layer weights.
    pub head_weights: Vec<f32>,
    /// Final 1×1 layer bias.
    pub head_bias: Vec<f32>,
}

impl HostParams {
    /// The MSDnet initialisation: 3×3 weights from N(0, σ²) with σ = sqrt(2 / (9·(c_in + depth − 1) +
    /// n_classes)) (the spec's formula with width 1 generalised to c_total − 1), biases and the head zero.
    pub fn msd_init<R: Rng + ?Sized>(shape: &NetShape, rng: &mut R) -> Self {
        let fan = 9.0 * (shape.c_total() as f64 - 1.0) + shape.n_classes() as f64;
        let sigma = (2.0 / fan).sqrt();
        HostParams {
            conv_weights: (0..shape.conv_weights_len())
                .map(|_| (sigma * rng.sample::<f64, _>(StandardNormal)) as f32)
                .collect(),
            conv_biases: vec![0.0; shape.conv_biases_len()],
            head_weights: vec![0.0; shape.head_weights_len()],
            head_bias: vec![0.0; shape.n_classes()],
        }
    }

    /// Checks every part's length against `shape` and that all values are finite.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the part that does not fit.
    pub fn check(&self, shape: &NetShape) -> Result<()> {
        let parts: [(&str, &[f32], usize); 4] = [
            ("conv_weights", &self.conv_weights, shape.conv_weights_len()),
            ("conv_biases", &self.conv_biases, shape.conv_biases_len()),
            ("head_weights", &self.head_weights, shape.head_weights_len()),
            ("head_bias", &self.head_bias, shape.n_classes()),
        ];
        for (name, values, len) in parts {
            if values.len() != len {
                return Err(Error::InvalidArgument {
                    op: "HostParams::check",
                    reason: format!("{name} holds {} values, the shape needs {len}", values.len()),
                });
            }
            if let Some(i) = values.iter().position(|v| !v.is_finite()) {
                return Err(Error::InvalidArgument {
                    op: "HostParams::check",
                    reason: format!("{name}[{i}] is {}", values[i]),
                });
            }
        }
        Ok(())
    }

    /// All parameters as one flat vector (the device layout).
    pub fn to_flat(&self) -> Vec<f32> {
        let mut v = Vec::with_capacity(
            self.conv_weights.len() + self.conv_biases.len() + self.head_weights.len() + self.head_bias.len(),
        );
        v.extend_from_slice(&self.conv_weights);
        v.extend_from_slice(&self.conv_biases);
        v.extend_from_slice(&self.head_weights);
        v.extend_from_slice(&self.head_bias);
        v
    }

    /// Splits a flat vector in the device layout.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `flat` is not `shape.param_len()` long.
    pub fn from_flat(shape: &NetShape, flat: &[f32]) -> Result<Self> {
        if flat.len() != shape.param_len() {
            return Err(Error::InvalidArgument {
                op: "HostParams::from_flat",
                reason: format!("{} values, the shape needs {}", flat.len(), shape.param_len()),
            });
        }
        let (w, rest) = flat.split_at(shape.conv_weights_len());
        let (b, rest) = rest.split_at(shape.conv_biases_len());
        let (hw, hb) = rest.split_at(shape.head_weights_len());
        Ok(HostParams {
            conv_weights: w.to_vec(),
            conv_biases: b.to_vec(),
            head_weights: hw.to_vec(),
            head_bias: hb.to_vec(),
        })
    }
}

/// Per-channel input normalisation `(x − mean) / std`, stored with the model.
#[derive(Clone, Debug, PartialEq)]
pub struct InputNorm {
    /// Mean of each input channel.
    pub mean: Vec<f32>,
    /// Standard deviation of each input channel (> 0).
    pub std: Vec<f32>,
}

impl InputNorm {
    /// No normalisation (mean 0, std 1) for `c_in` channels.
    pub fn identity(c_in: usize) -> Self {
        InputNorm { mean: vec![0.0; c_in], std: vec![1.0; c_in] }
    }

    /// Checks lengths against `c_in`, finite means and positive finite deviations.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] saying which entry is wrong.
    pub fn check(&self, c_in: usize) -> Result<()> {
        let bad = |reason: String| Err(Error::InvalidArgument { op: "InputNorm::check", reason });
        if self.mean.len() != c_in || self.std.len() != c_in {
            return bad(format!(
                "{} means and {} deviations for {c_in} channels",
                self.mean.len(),
                self.std.len()
            ));
        }
        if let Some(i) = self.mean.iter().position(|m| !m.is_finite()) {
            return bad(format!("mean[{i}] is {}", self.mean[i]));
        }
        if let Some(i) = self.std.iter().position(|s| !(s.is_finite() && *s > 0.0)) {
            return bad(format!("std[{i}] is {}; it must be finite and > 0", self.std[i]));
        }
        Ok(())
    }
}

/// Adam's hyper-parameters (defaults: lr 1e-3, β = (0.9, 0.999), ε = 1e-8).
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct AdamConfig {
    /// Learning rate.
    pub lr: f32,
    /// First-moment decay.
    pub beta1: f32,
    /// Second-moment decay.
    pub beta2: f32,
    /// Denominator guard.
    pub eps: f32,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_match_a_running_sum() {
        let shape = NetShape::new(3, 2, 13, 4).unwrap();
        let mut off = 0;
        for i in 0..shape.depth() {
            assert_eq!(shape.conv_weight_offset(i), off, "layer {i}");
            off += shape.conv_weight_len(i);
        }
        assert_eq!(shape.conv_weights_len(), off);
        assert_eq!(shape.dilations()[12], 3);
        assert_eq!(shape.c_total(), 3 + 26);
    }

    #[test]
    fn flat_round_trip_and_length_errors() {
        let shape = NetShape::new(1, 1, 5, 2).unwrap();
        let flat: Vec<f32> = (0..shape.param_len()).map(|i| i as f32).collect();
        let p = HostParams::from_flat(&shape, &flat).unwrap();
        p.check(&shape).unwrap();
        assert_eq!(p.to_flat(), flat);
        assert!(HostParams::from_flat(&shape, &flat[1..]).is_err());
        let mut bad = p.clone();
        bad.head_bias[1] = f32::NAN;
        assert!(bad.check(&shape).is_err());
    }

    #[test]
    fn rejects_unsupported_shapes() {
        assert!(NetShape::new(0, 1, 5, 2).is_err());
        assert!(NetShape::new(1, 1, 5, 9).is_err());
        assert!(NetShape::with_dilations(1, 1, 2, vec![1, 0]).is_err());
        assert!(NetShape::new(1, 1 << 20, 1 << 12, 2).is_err());
        assert!(InputNorm { mean: vec![0.0], std: vec![0.0] }.check(1).is_err());
    }
}
