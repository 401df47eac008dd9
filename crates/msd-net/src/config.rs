//! The architecture of an MSDnet: depth, width, dilation schedule, input channels and classes.
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The largest depth, width, channel or class count accepted: keeps every buffer size computed from a
/// configuration (possibly read from a file) far from overflow.
const MAX_COUNT: usize = 1 << 16;

/// The architecture of a mixed-scale dense network.
///
/// Layer `i` (0-based) is a 3×3 convolution with dilation `dilations[i]` over all earlier channels
/// (the `input_channels` inputs plus the `width` outputs of each layer before it), plus a bias, then
/// ReLU. A final 1×1 layer reads all [`MsdConfig::total_channels`] channels and gives one logit per
/// class; softmax turns them into class probabilities.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MsdConfig {
    /// Number of 3×3 layers (100 in the study).
    pub depth: usize,
    /// Channels written by each layer (1 in the study).
    pub width: usize,
    /// Dilation of each layer; `dilations.len() == depth`. Default `1 + (i mod 10)`.
    pub dilations: Vec<usize>,
    /// Input channels: 1 for single slices, `2k + 1` for 2.5D slabs (the slice and `k` neighbours
    /// on each side).
    pub input_channels: usize,
    /// Output classes (2: background and bone).
    pub n_classes: usize,
}

impl Default for MsdConfig {
    /// Depth 100, width 1, dilations `1 + (i mod 10)`, one input channel, two classes.
    fn default() -> Self {
        MsdConfig::new(100, 1, 1, 2)
    }
}

impl MsdConfig {
    /// A configuration with the default dilation schedule `1 + (i mod 10)`.
    pub fn new(depth: usize, width: usize, input_channels: usize, n_classes: usize) -> Self {
        MsdConfig { depth, width, dilations: Self::default_dilations(depth), input_channels, n_classes }
    }

    /// The schedule of the study: `1 + (i mod 10)` for layer `i`.
    pub fn default_dilations(depth: usize) -> Vec<usize> {
        (0..depth).map(|i| 1 + i % 10).collect()
    }

    /// Replaces the dilation schedule (checked by [`MsdConfig::validate`]).
    pub fn with_dilations(mut self, dilations: Vec<usize>) -> Self {
        self.dilations = dilations;
        self
    }

    /// Checks that every count is positive and bounded and that there is one dilation per layer.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: String| Err(Error::InvalidConfig { what });
        if self.depth == 0 || self.depth > MAX_COUNT {
            return bad(format!("depth {} is not in 1..={MAX_COUNT}", self.depth));
        }
        if self.width == 0 || self.width > MAX_COUNT {
            return bad(format!("width {} is not in 1..={MAX_COUNT}", self.width));
        }
        if self.input_channels == 0 || self.input_channels > MAX_COUNT {
            return bad(format!("input_channels {} is not in 1..={MAX_COUNT}", self.input_channels));
        }
        if self.n_classes < 2 || self.n_classes > 256 {
            return bad(format!("n_classes {} is not in 2..=256", self.n_classes));
        }
        if self.dilations.len() != self.depth {
            return bad(format!("{} dilations given for depth {}", self.dilations.len(), self.depth));
        }
        if let Some(i) = self.dilations.iter().position(|&d| d == 0 || d > MAX_COUNT) {
            return bad(format!(
                "dilation of layer {i} is {}; it must be in 1..={MAX_COUNT}",
                self.dilations[i]
            ));
        }
        if self.total_channels() > MAX_COUNT {
            return bad(format!("{} channels in all is more than {MAX_COUNT}", self.total_channels()));
        }
        Ok(())
    }

    /// All channels of the feature buffer: `input_channels + depth · width`.
    pub fn total_channels(&self) -> usize {
        self.input_channels + self.depth * self.width
    }

    /// Channels read by layer `i`: `input_channels + i · width`.
    pub fn layer_inputs(&self, layer: usize) -> usize {
        self.input_channels + layer * self.width
    }

    /// Offset of layer `i`'s block `[width][layer_inputs(i)][3][3]` in the flat 3×3 weight vector.
    pub fn weight_offset(&self, layer: usize) -> usize {
        // Σ_{j<i} width · (c_in + j·width) · 9
        9 * self.width * (layer * self.input_channels + self.width * layer * layer.saturating_sub(1) / 2)
    }

    /// Length of the flat 3×3 weight vector (all layers).
    pub fn conv_weight_len(&self) -> usize {
        self.weight_offset(self.depth)
    }

    /// Length of the flat bias vector: `depth · width`.
    pub fn conv_bias_len(&self) -> usize {
        self.depth * self.width
    }

    /// Number of trainable parameters.
    pub fn parameter_count(&self) -> usize {
        self.conv_weight_len() + self.conv_bias_len() + self.n_classes * (self.total_channels() + 1)
    }

    /// Floating-point operations of one forward pass over an `h × w` image (3×3 layers and the
    /// final 1×1 layer; multiply and add counted separately).
    pub fn forward_flops(&self, h: usize, w: usize) -> f64 {
        let px = (h * w) as f64;
        let conv = 2.0 * self.conv_weight_len() as f64 * px;
        conv + 2.0 * (self.n_classes * self.total_channels()) as f64 * px
    }

    /// Floating-point operations of one training step (forward + backward) on an `h × w` image:
    /// the backward pass costs a forward for the weight gradients plus one for the gradients of
    /// all channels but the network's inputs (which need none).
    pub fn train_step_flops(&self, h: usize, w: usize) -> f64 {
        let px = (h * w) as f64;
        let input_taps = (9 * self.width * self.input_channels * self.depth) as f64;
        3.0 * self.forward_flops(h, w) - 2.0 * input_taps * px
    }

    /// Standard deviation of the initial 3×3 weights: `sqrt(2 / (9·(c_in + d − 1) + c_out))` with
    /// `d` the depth and `c_out` the number of classes, as in the study's reference code.
    pub fn init_std(&self) -> f64 {
        let fan = 9.0 * (self.input_channels + self.depth * self.width - 1) as f64 + self.n_classes as f64;
        (2.0 / fan).sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_offsets_are_cumulative() {
        let c = MsdConfig::new(7, 3, 2, 2);
        let mut off = 0;
        for i in 0..=c.depth {
            assert_eq!(c.weight_offset(i), off);
            if i < c.depth {
                off += c.width * c.layer_inputs(i) * 9;
            }
        }
    }

    #[test]
    fn flop_count_matches_the_guide() {
        let c = MsdConfig::default();
        let f = c.forward_flops(512, 512) / 1e9;
        assert!((f - 23.9).abs() < 0.1, "{f}");
        let s = c.train_step_flops(512, 512) / 1e9;
        assert!((s - 71.3).abs() < 0.2, "{s}");
    }

    #[test]
    fn validate_rejects_bad_configs() {
        assert!(MsdConfig::default().validate().is_ok());
        assert!(MsdConfig::new(0, 1, 1, 2).validate().is_err());
        assert!(MsdConfig::new(3, 1, 1, 1).validate().is_err());
        assert!(MsdConfig::new(3, 1, 1, 2).with_dilations(vec![1, 0, 2]).validate().is_err());
        assert!(MsdConfig::new(3, 1, 1, 2).with_dilations(vec![1, 2]).validate().is_err());
    }
}
