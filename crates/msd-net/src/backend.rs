//! The seam between the training loop and the hardware: a [`Backend`] runs the network's
//! kernel-level operations on a batch and keeps the parameters, gradients and optimiser state
//! wherever its device wants them. [`crate::CpuBackend`] is the CPU implementation; a GPU backend
//! implements the same trait.
use serde::{Deserialize, Serialize};

use crate::{Error, LossConfig, LossValue, MsdConfig, Params, Result};

/// The shape of a batch: `images` images of `height × width` pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BatchShape {
    /// Number of images.
    pub images: usize,
    /// Rows per image.
    pub height: usize,
    /// Columns per image.
    pub width: usize,
}

impl BatchShape {
    /// Pixels of one image.
    pub fn pixels(&self) -> usize {
        self.height * self.width
    }

    /// Checks that the batch is not empty and that `inputs` holds `images × input_channels ×
    /// height × width` values for `config`; returns the pixels of one image.
    pub fn check_inputs(&self, config: &MsdConfig, inputs: &[f32]) -> Result<usize> {
        let dims = || vec![self.images, config.input_channels, self.height, self.width];
        let hw = self
            .height
            .checked_mul(self.width)
            .ok_or_else(|| Error::TooLarge { what: "input batch", dims: dims() })?;
        if hw == 0 {
            return Err(Error::EmptyImage { height: self.height, width: self.width });
        }
        if self.images == 0 {
            return Err(Error::EmptyBatch);
        }
        let need = hw
            .checked_mul(config.input_channels)
            .and_then(|v| v.checked_mul(self.images))
            .ok_or_else(|| Error::TooLarge { what: "input batch", dims: dims() })?;
        if inputs.len() != need {
            return Err(Error::len("input batch", need, inputs.len()));
        }
        Ok(hw)
    }
}

/// Adam hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdamConfig {
    /// Learning rate (1e-3 as in the study).
    pub lr: f32,
    /// Decay of the first moment.
    pub beta1: f32,
    /// Decay of the second moment.
    pub beta2: f32,
    /// Added to the root of the second moment.
    pub eps: f32,
}

impl Default for AdamConfig {
    /// lr 1e-3, β = (0.9, 0.999), ε = 1e-8.
    fn default() -> Self {
        AdamConfig { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8 }
    }
}

/// Adam's state: the step count and both moments, in the parameters' layout.
#[derive(Debug, Clone, PartialEq)]
pub struct AdamState {
    /// Steps taken so far.
    pub step: u64,
    /// First moment (mean of gradients).
    pub m: Params,
    /// Second moment (mean of squared gradients).
    pub v: Params,
}

impl AdamState {
    /// The state before the first step.
    pub fn new(config: &MsdConfig) -> Self {
        AdamState { step: 0, m: Params::zeros(config), v: Params::zeros(config) }
    }

    /// One Adam step on flat buffers: updates `params` in place from `grads`.
    pub fn update(&mut self, params: &mut Params, grads: &Params, adam: &AdamConfig) {
        self.step += 1;
        let t = self.step as f64;
        let c1 = 1.0 / (1.0 - (adam.beta1 as f64).powf(t));
        let c2 = 1.0 / (1.0 - (adam.beta2 as f64).powf(t));
        let (b1, b2, lr, eps) = (adam.beta1, adam.beta2, adam.lr as f64, adam.eps as f64);
        let groups = params
            .vectors_mut()
            .into_iter()
            .zip(grads.vectors())
            .zip(self.m.vectors_mut())
            .zip(self.v.vectors_mut());
        for (((p, g), m), v) in groups {
            for (((p, &g), m), v) in p.iter_mut().zip(g.iter()).zip(m.iter_mut()).zip(v.iter_mut()) {
                *m = b1 * *m + (1.0 - b1) * g;
                *v = b2 * *v + (1.0 - b2) * g * g;
                let step = lr * (*m as f64 * c1) / ((*v as f64 * c2).sqrt() + eps);
                *p -= step as f32;
            }
        }
    }
}

/// The kernel-level operations of MSDnet training and inference on one device.
///
/// The training loop drives a backend as: [`Backend::set_params`] once, then per batch
/// [`Backend::forward`] → [`Backend::loss`] → [`Backend::backward`] → [`Backend::adam_step`];
/// inference is [`Backend::forward`] → [`Backend::probabilities`]. Inputs are normalised images
/// `[images][input_channels][h][w]`, labels `[images][h][w]`, probabilities
/// `[images][n_classes][h][w]`, all row-major `f32` / `u8` on the host.
pub trait Backend {
    /// A short name for logs and errors (`cpu-avx512`, `cuda:0`, ...).
    fn name(&self) -> String;

    /// The architecture this backend runs.
    fn config(&self) -> &MsdConfig;

    /// Replaces the parameters (uploads them to the device).
    fn set_params(&mut self, params: &Params) -> Result<()>;

    /// The current parameters (downloaded from the device).
    fn params(&self) -> Result<Params>;

    /// Runs all layers (the 3×3 block and the final 1×1 layer with softmax) over a batch and keeps
    /// what [`Backend::loss`], [`Backend::backward`] and [`Backend::probabilities`] need.
    fn forward(&mut self, inputs: &[f32], shape: BatchShape) -> Result<()>;

    /// Class probabilities of the last forward pass, `[images][n_classes][h][w]`, into `out`.
    fn probabilities(&mut self, out: &mut [f32]) -> Result<()>;

    /// The loss of the last forward pass against `labels` (`[images][h][w]`), keeping its gradient
    /// at the logits for [`Backend::backward`].
    fn loss(&mut self, labels: &[u8], loss: &LossConfig) -> Result<LossValue>;

    /// Back-propagates the gradient kept by [`Backend::loss`] through the final layer and the
    /// 3×3 block of the last forward pass; the parameter gradients replace the previous ones.
    fn backward(&mut self) -> Result<()>;

    /// The parameter gradients of the last [`Backend::backward`].
    fn gradients(&self) -> Result<Params>;

    /// One Adam step with the last gradients.
    fn adam_step(&mut self, adam: &AdamConfig) -> Result<()>;

    /// The optimiser state (for checkpoints).
    fn optimizer_state(&self) -> Result<AdamState>;

    /// Restores the optimiser state (resuming from a checkpoint).
    fn set_optimizer_state(&mut self, state: &AdamState) -> Result<()>;
}
