//! The trainable parameters of an MSDnet as four flat vectors, and their initialisation.
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Normal};

use crate::{Error, MsdConfig, Result};

/// All trainable parameters (or their gradients), in the fixed flat layouts of the crate docs.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// 3×3 weights of all layers concatenated in layer order; layer `i` is a contiguous block
    /// `[width][input_channels + i·width][3][3]` starting at [`MsdConfig::weight_offset`].
    pub conv_weights: Vec<f32>,
    /// Biases of all 3×3 layers, `[depth · width]`, layer-major.
    pub conv_biases: Vec<f32>,
    /// Final 1×1 layer, `[n_classes][total_channels]`.
    pub final_weights: Vec<f32>,
    /// Final layer biases, `[n_classes]`.
    pub final_biases: Vec<f32>,
}

impl Params {
    /// All-zero parameters (also the shape of a gradient).
    pub fn zeros(config: &MsdConfig) -> Self {
        Params {
            conv_weights: vec![0.0; config.conv_weight_len()],
            conv_biases: vec![0.0; config.conv_bias_len()],
            final_weights: vec![0.0; config.n_classes * config.total_channels()],
            final_biases: vec![0.0; config.n_classes],
        }
    }

    /// The study's initialisation: 3×3 weights from N(0, [`MsdConfig::init_std`]), biases and the
    /// 1×1 layer zero. The same seed gives the same parameters.
    pub fn init(config: &MsdConfig, seed: u64) -> Result<Self> {
        config.validate()?;
        let mut p = Params::zeros(config);
        let normal = Normal::new(0.0f64, config.init_std())
            .map_err(|e| Error::InvalidConfig { what: format!("initial weight distribution: {e}") })?;
        let mut rng = StdRng::seed_from_u64(seed);
        for w in &mut p.conv_weights {
            *w = normal.sample(&mut rng) as f32;
        }
        Ok(p)
    }

    /// Ok when the four vectors have the lengths `config` implies.
    pub fn check_shape(&self, config: &MsdConfig) -> Result<()> {
        let z = Params::zeros(config);
        for ((name, a), (_, b)) in self.named().into_iter().zip(z.named()) {
            if a.len() != b.len() {
                return Err(Error::len(format!("parameter `{name}`"), b.len(), a.len()));
            }
        }
        Ok(())
    }

    /// Ok when every value is finite; otherwise names the first offending tensor and index.
    pub fn check_finite(&self) -> Result<()> {
        for (name, v) in self.named() {
            if let Some(index) = v.iter().position(|x| !x.is_finite()) {
                return Err(Error::NonFinite { path: Default::default(), name: name.into(), index });
            }
        }
        Ok(())
    }

    /// The four vectors with their tensor names, in file order.
    pub(crate) fn named(&self) -> [(&'static str, &[f32]); 4] {
        [
            ("conv_weights", &self.conv_weights),
            ("conv_biases", &self.conv_biases),
            ("final_weights", &self.final_weights),
            ("final_biases", &self.final_biases),
        ]
    }

    /// The four vectors mutably, in file order.
    pub(crate) fn vectors_mut(&mut self) -> [&mut Vec<f32>; 4] {
        [&mut self.conv_weights, &mut self.conv_biases, &mut self.final_weights, &mut self.final_biases]
    }

    /// The four vectors, in file order.
    pub(crate) fn vectors(&self) -> [&Vec<f32>; 4] {
        [&self.conv_weights, &self.conv_biases, &self.final_weights, &self.final_biases]
    }

    /// Total number of values.
    pub fn len(&self) -> usize {
        self.vectors().iter().map(|v| v.len()).sum()
    }

    /// True when there are no values at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
