//! [`CudaBackend`]: the crate's [`Backend`] on a GPU, so the CPU path's training loop and model file
//! drive the CUDA kernels unchanged.

use std::sync::Arc;

use crate::{AdamConfig, AdamState, Backend, BatchShape, LossConfig, LossValue, MsdConfig, Params};

use super::device::CudaDevice;
use super::error::Result;
use super::network::CudaMsd;
use super::shape::InputNorm;

/// An MSDnet on one GPU behind the crate's [`Backend`] trait. Inputs arrive normalised (as for the CPU
/// backend); parameters, gradients and Adam's moments stay on the device between calls.
#[derive(Debug)]
pub struct CudaBackend {
    net: CudaMsd,
    config: MsdConfig,
}

impl CudaBackend {
    /// A backend for `config` on device `ordinal`, with all parameters zero until
    /// [`Backend::set_params`].
    ///
    /// # Errors
    /// [`super::Error::CudaUnavailable`] / [`super::Error::NvrtcUnavailable`] without a GPU or without
    /// NVRTC; [`super::Error::InvalidShape`] / [`super::Error::Net`] for a configuration the kernels
    /// cannot run.
    pub fn new(ordinal: usize, config: &MsdConfig) -> Result<Self> {
        Self::on_device(CudaDevice::new(ordinal)?, config)
    }

    /// A backend for `config` on an opened device.
    ///
    /// # Errors
    /// As [`CudaBackend::new`], except for opening the device.
    pub fn on_device(dev: Arc<CudaDevice>, config: &MsdConfig) -> Result<Self> {
        super::shape::check_config(config)?;
        let net = CudaMsd::new(
            dev,
            config.clone(),
            &Params::zeros(config),
            InputNorm::identity(config.input_channels),
        )?;
        Ok(CudaBackend { net, config: config.clone() })
    }

    /// The network underneath, for what the trait does not cover (streamed whole-volume segmentation,
    /// reduced-precision inference, feature and input gradients).
    pub fn network(&mut self) -> &mut CudaMsd {
        &mut self.net
    }
}

impl Backend for CudaBackend {
    fn name(&self) -> String {
        let dev = self.net.device();
        format!("cuda:{} ({})", dev.context().ordinal(), dev.name())
    }

    fn config(&self) -> &MsdConfig {
        &self.config
    }

    fn set_params(&mut self, params: &Params) -> crate::Result<()> {
        Ok(self.net.set_params(params)?)
    }

    fn params(&self) -> crate::Result<Params> {
        Ok(self.net.params()?)
    }

    fn forward(&mut self, inputs: &[f32], shape: BatchShape) -> crate::Result<()> {
        Ok(self.net.forward(inputs, shape.images, shape.height, shape.width)?)
    }

    fn probabilities(&mut self, out: &mut [f32]) -> crate::Result<()> {
        let probs = self.net.probabilities()?;
        if out.len() != probs.len() {
            return Err(crate::Error::BufferLength {
                what: "class probabilities".to_owned(),
                expected: probs.len(),
                found: out.len(),
            });
        }
        out.copy_from_slice(&probs);
        Ok(())
    }

    fn loss(&mut self, labels: &[u8], loss: &LossConfig) -> crate::Result<LossValue> {
        Ok(self.net.loss(labels, loss)?)
    }

    fn backward(&mut self) -> crate::Result<()> {
        Ok(self.net.backward()?)
    }

    fn gradients(&self) -> crate::Result<Params> {
        Ok(self.net.gradients()?)
    }

    fn adam_step(&mut self, adam: &AdamConfig) -> crate::Result<()> {
        Ok(self.net.adam_step(adam)?)
    }

    fn optimizer_state(&self) -> crate::Result<AdamState> {
        let (step, m, v) = self.net.optimizer_state()?;
        Ok(AdamState { step, m, v })
    }

    fn set_optimizer_state(&mut self, state: &AdamState) -> crate::Result<()> {
        Ok(self.net.set_optimizer_state(state.step, &state.m, &state.v)?)
    }
}
