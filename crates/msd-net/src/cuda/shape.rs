//! The crate's [`MsdConfig`] and [`Params`] as the kernels see them: per-layer offsets, the flat device
//! layout of the parameters, the limits of the kernels, and the optional on-device input normalisation.

use crate::{MsdConfig, Params};

use super::error::{Error, Result};
use super::launch::MAX_CLASSES;

/// Per-layer sizes of the parameter layout that [`MsdConfig`] gives only in total.
pub(crate) trait Layout {
    /// Length of layer `i`'s weight block `[width][c_in + i·width][3][3]`.
    fn layer_weight_len(&self, i: usize) -> usize;
    /// Length of the final layer's weights `[n_classes][c_total]`.
    fn head_weight_len(&self) -> usize;
}

impl Layout for MsdConfig {
    fn layer_weight_len(&self, i: usize) -> usize {
        9 * self.width * self.layer_inputs(i)
    }
    fn head_weight_len(&self) -> usize {
        self.n_classes * self.total_channels()
    }
}

/// Checks that the kernels can run `config`: a valid configuration, at most [`MAX_CLASSES`] classes
/// (the head kernels keep the classes in registers) and parameter counts within `i32`.
///
/// # Errors
/// [`Error::Net`] for an invalid configuration, [`Error::InvalidShape`] for one the kernels cannot run.
pub fn check_config(config: &MsdConfig) -> Result<()> {
    config.validate()?;
    if config.n_classes > MAX_CLASSES {
        return Err(Error::InvalidShape(format!(
            "{} classes; the CUDA kernels handle at most {MAX_CLASSES}",
            config.n_classes
        )));
    }
    if i32::try_from(config.parameter_count()).is_err() {
        return Err(Error::InvalidShape(format!(
            "{} parameters exceed the kernels' 32-bit indices",
            config.parameter_count()
        )));
    }
    Ok(())
}

/// Checks `params` against `config` (lengths, finite values).
pub(crate) fn check_params(params: &Params, config: &MsdConfig) -> Result<()> {
    params.check_shape(config)?;
    params.check_finite()?;
    Ok(())
}

/// All parameters as one flat vector in the device layout: 3×3 weights, 3×3 biases, final weights,
/// final biases.
pub(crate) fn flatten(params: &Params) -> Vec<f32> {
    let mut v = Vec::with_capacity(params.len());
    v.extend_from_slice(&params.conv_weights);
    v.extend_from_slice(&params.conv_biases);
    v.extend_from_slice(&params.final_weights);
    v.extend_from_slice(&params.final_biases);
    v
}

/// Splits a flat vector in the device layout.
pub(crate) fn unflatten(config: &MsdConfig, flat: &[f32]) -> Result<Params> {
    if flat.len() != config.parameter_count() {
        return Err(Error::InvalidArgument {
            op: "unflatten",
            reason: format!("{} values, the configuration needs {}", flat.len(), config.parameter_count()),
        });
    }
    let (w, rest) = flat.split_at(config.conv_weight_len());
    let (b, rest) = rest.split_at(config.conv_bias_len());
    let (fw, fb) = rest.split_at(config.head_weight_len());
    Ok(Params {
        conv_weights: w.to_vec(),
        conv_biases: b.to_vec(),
        final_weights: fw.to_vec(),
        final_biases: fb.to_vec(),
    })
}

/// Per-channel input normalisation `(x − mean) / std` applied on the device before the first layer
/// (for raw intensities; [`InputNorm::identity`] for inputs normalised already).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_blocks_tile_the_weights() {
        let c = MsdConfig::new(13, 2, 3, 4);
        let mut off = 0;
        for i in 0..c.depth {
            assert_eq!(c.weight_offset(i), off, "layer {i}");
            off += c.layer_weight_len(i);
        }
        assert_eq!(c.conv_weight_len(), off);
    }

    #[test]
    fn flat_round_trip_and_length_errors() {
        let c = MsdConfig::new(5, 1, 1, 2);
        let flat: Vec<f32> = (0..c.parameter_count()).map(|i| i as f32).collect();
        let p = unflatten(&c, &flat).unwrap();
        check_params(&p, &c).unwrap();
        assert_eq!(flatten(&p), flat);
        assert!(unflatten(&c, &flat[1..]).is_err());
        let mut bad = p.clone();
        bad.final_biases[1] = f32::NAN;
        assert!(check_params(&bad, &c).is_err());
    }

    #[test]
    fn rejects_what_the_kernels_cannot_run() {
        assert!(check_config(&MsdConfig::new(5, 1, 1, 9)).is_err());
        assert!(check_config(&MsdConfig::new(5, 1, 0, 2)).is_err());
        assert!(check_config(&MsdConfig::new(100, 1, 1, 2)).is_ok());
        assert!(InputNorm { mean: vec![0.0], std: vec![0.0] }.check(1).is_err());
        assert!(InputNorm::identity(2).check(2).is_ok());
    }
}
