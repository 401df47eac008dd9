//! The CPU [`Backend`]: the SIMD kernels of [`crate::kernels`], rayon across the images of a batch
//! and within each image, parameters and optimiser state in host memory.
use rayon::prelude::*;

use crate::backend::{AdamConfig, AdamState, Backend, BatchShape};
use crate::kernels::{self, Isa, lane_sum};
use crate::loss::{loss_and_grad, softmax_planes};
use crate::{Error, LossConfig, LossValue, MsdConfig, Params, Result};

/// The CPU implementation of [`Backend`].
///
/// Memory: one feature buffer and one gradient buffer of `total_channels · h · w` floats per image
/// of the batch, reused from batch to batch while the shape stays the same.
#[derive(Debug)]
pub struct CpuBackend {
    isa: Isa,
    config: MsdConfig,
    params: Params,
    grads: Params,
    adam: AdamState,
    shape: Option<BatchShape>,
    features: Vec<Vec<f32>>,
    feature_grads: Vec<Vec<f32>>,
    probs: Vec<f32>,
    dlogits: Vec<f32>,
    have_loss: bool,
}

impl CpuBackend {
    /// A backend with the best instruction set of this CPU and zero parameters.
    pub fn new(config: &MsdConfig) -> Result<Self> {
        Self::with_isa(config, Isa::detect())
    }

    /// A backend forced to one instruction set (fails if this CPU lacks it).
    pub fn with_isa(config: &MsdConfig, isa: Isa) -> Result<Self> {
        config.validate()?;
        if !isa.is_supported() {
            return Err(Error::UnsupportedIsa { isa: isa.name() });
        }
        Ok(CpuBackend {
            isa,
            config: config.clone(),
            params: Params::zeros(config),
            grads: Params::zeros(config),
            adam: AdamState::new(config),
            shape: None,
            features: Vec::new(),
            feature_grads: Vec::new(),
            probs: Vec::new(),
            dlogits: Vec::new(),
            have_loss: false,
        })
    }

    /// The instruction set the kernels run with.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// The feature buffer `[total_channels][h][w]` of image `i` of the last forward pass.
    pub fn features(&self, image: usize) -> Option<&[f32]> {
        self.features.get(image).map(|v| v.as_slice())
    }

    /// Replaces the gradient at the logits (`[images][n_classes][h][w]`) that
    /// [`Backend::backward`] propagates, instead of the one from [`Backend::loss`]: for
    /// vector-Jacobian products in tests and for losses computed elsewhere.
    pub fn set_logit_gradients(&mut self, dlogits: &[f32]) -> Result<()> {
        if dlogits.len() != self.probs.len() || self.shape.is_none() {
            return Err(Error::len("logit gradients", self.probs.len(), dlogits.len()));
        }
        self.dlogits.copy_from_slice(dlogits);
        self.have_loss = true;
        Ok(())
    }

    fn shape(&self) -> Result<BatchShape> {
        self.shape.ok_or(Error::OutOfOrder { op: "this step", needs: "a forward pass" })
    }
}

/// Logits of the final 1×1 layer for one image, `[k][hw]`.
pub(crate) fn final_layer(
    config: &MsdConfig,
    params: &Params,
    features: &[f32],
    hw: usize,
    logits: &mut [f32],
) {
    let c_total = config.total_channels();
    const CHUNK: usize = 4096;
    logits.par_chunks_mut(hw).enumerate().for_each(|(k, plane)| {
        let wk = &params.final_weights[k * c_total..(k + 1) * c_total];
        plane.par_chunks_mut(CHUNK).enumerate().for_each(|(b, out)| {
            let start = b * CHUNK;
            out.fill(params.final_biases[k]);
            for (c, &wc) in wk.iter().enumerate() {
                let f = &features[c * hw + start..c * hw + start + out.len()];
                for (o, &v) in out.iter_mut().zip(f) {
                    *o += wc * v;
                }
            }
        });
    });
}

impl Backend for CpuBackend {
    fn name(&self) -> String {
        format!("cpu-{}", self.isa.name())
    }

    fn config(&self) -> &MsdConfig {
        &self.config
    }

    fn set_params(&mut self, params: &Params) -> Result<()> {
        params.check_shape(&self.config)?;
        params.check_finite()?;
        self.params = params.clone();
        Ok(())
    }

    fn params(&self) -> Result<Params> {
        Ok(self.params.clone())
    }

    fn forward(&mut self, inputs: &[f32], shape: BatchShape) -> Result<()> {
        let (h, w, n) = (shape.height, shape.width, shape.images);
        let hw = shape.check_inputs(&self.config, inputs)?;
        let c_in = self.config.input_channels;
        let per_image = c_in * hw;
        let c_total = self.config.total_channels();
        if self.shape != Some(shape) {
            self.features = (0..n).map(|_| vec![0.0; c_total * hw]).collect();
            self.feature_grads = (0..n).map(|_| vec![0.0; c_total * hw]).collect();
            self.probs = vec![0.0; n * self.config.n_classes * hw];
            self.dlogits = vec![0.0; n * self.config.n_classes * hw];
            self.shape = Some(shape);
        }
        self.have_loss = false;
        let (isa, config, params) = (self.isa, &self.config, &self.params);
        let k = config.n_classes;
        self.features
            .par_iter_mut()
            .zip(self.probs.par_chunks_mut(k * hw))
            .zip(inputs.par_chunks(per_image))
            .try_for_each(|((feat, probs), input)| -> Result<()> {
                feat[..per_image].copy_from_slice(input);
                kernels::forward(isa, config, &params.conv_weights, &params.conv_biases, feat, h, w)?;
                final_layer(config, params, feat, hw, probs);
                softmax_planes(probs, k);
                Ok(())
            })
    }

    fn probabilities(&mut self, out: &mut [f32]) -> Result<()> {
        self.shape()?;
        if out.len() != self.probs.len() {
            return Err(Error::len("probability output", self.probs.len(), out.len()));
        }
        out.copy_from_slice(&self.probs);
        Ok(())
    }

    fn loss(&mut self, labels: &[u8], loss: &LossConfig) -> Result<LossValue> {
        let shape = self.shape()?;
        if labels.len() != shape.images * shape.pixels() {
            return Err(Error::len("label batch", shape.images * shape.pixels(), labels.len()));
        }
        let v = loss_and_grad(
            &self.probs,
            labels,
            self.config.n_classes,
            shape.pixels(),
            loss,
            &mut self.dlogits,
        )?;
        self.have_loss = true;
        Ok(v)
    }

    fn backward(&mut self) -> Result<()> {
        let shape = self.shape()?;
        if !self.have_loss {
            return Err(Error::OutOfOrder { op: "backward", needs: "a loss of the last forward pass" });
        }
        let (isa, config, params) = (self.isa, &self.config, &self.params);
        let (h, w, hw) = (shape.height, shape.width, shape.pixels());
        let k = config.n_classes;
        let c_total = config.total_channels();
        let per_image: Vec<Params> = self
            .features
            .par_iter()
            .zip(self.feature_grads.par_iter_mut())
            .zip(self.dlogits.par_chunks(k * hw))
            .map(|((feat, grad), dlog)| -> Result<Params> {
                let mut g = Params::zeros(config);
                // Final layer: G[c] = Σ_k W[k][c] dlogit[k]; dW[k][c] = <dlogit[k], F[c]>.
                let dwf: Vec<Vec<f32>> = grad
                    .par_chunks_mut(hw)
                    .zip(feat.par_chunks(hw))
                    .enumerate()
                    .map(|(c, (gc, fc))| {
                        gc.fill(0.0);
                        let mut dw = vec![0.0f32; k];
                        for (kk, dwk) in dw.iter_mut().enumerate() {
                            let wkc = params.final_weights[kk * c_total + c];
                            let dl = &dlog[kk * hw..(kk + 1) * hw];
                            for (o, &d) in gc.iter_mut().zip(dl) {
                                *o += wkc * d;
                            }
                            *dwk = dot(dl, fc);
                        }
                        dw
                    })
                    .collect();
                for (c, dw) in dwf.iter().enumerate() {
                    for (kk, v) in dw.iter().enumerate() {
                        g.final_weights[kk * c_total + c] = *v;
                    }
                }
                for (kk, b) in g.final_biases.iter_mut().enumerate() {
                    *b = lane_sum(&dlog[kk * hw..(kk + 1) * hw]);
                }
                kernels::backward(
                    isa,
                    config,
                    &params.conv_weights,
                    feat,
                    grad,
                    &mut g.conv_weights,
                    &mut g.conv_biases,
                    h,
                    w,
                )?;
                Ok(g)
            })
            .collect::<Result<_>>()?;
        // Sum the images' gradients in batch order: the result does not depend on scheduling.
        let mut total = Params::zeros(config);
        for g in &per_image {
            for (t, s) in total.vectors_mut().into_iter().zip(g.vectors()) {
                for (a, b) in t.iter_mut().zip(s) {
                    *a += b;
                }
            }
        }
        self.grads = total;
        Ok(())
    }

    fn gradients(&self) -> Result<Params> {
        Ok(self.grads.clone())
    }

    fn adam_step(&mut self, adam: &AdamConfig) -> Result<()> {
        self.adam.update(&mut self.params, &self.grads, adam);
        Ok(())
    }

    fn optimizer_state(&self) -> Result<AdamState> {
        Ok(self.adam.clone())
    }

    fn set_optimizer_state(&mut self, state: &AdamState) -> Result<()> {
        state.m.check_shape(&self.config)?;
        state.v.check_shape(&self.config)?;
        self.adam = state.clone();
        Ok(())
    }
}

/// Dot product in fixed-order lanes.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 16];
    let ca = a.chunks_exact(16);
    let cb = b.chunks_exact(16);
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..16 {
            lanes[l] += x[l] * y[l];
        }
    }
    lanes.iter().sum::<f32>() + tail
}
