//! [`CudaBackend`]: the crate's [`Backend`] on one GPU. Parameters, gradients, Adam's moments and
//! the batch buffers stay on the device, so the CPU path's training loop, model file and whole-volume
//! streaming drive the CUDA kernels unchanged.

use std::sync::Arc;

use cudarc::driver::CudaSlice;

use super::device::CudaDevice;
use super::error::{DriverContext, Error, Result};
use super::launch::{self, AdamStep, Batch, DzInput, DzLayout, Features, LossBackward, Normalisation};
use super::network::{
    adam_bias_corrections, download, group_layers, group_of, head_of, head_views, layer_of, run_layers,
};
use super::shape::{InputNorm, Layout, check_config, check_params, flatten, unflatten};
use crate::{
    AdamConfig, AdamState, Backend, BatchShape, FeatureStorage, InferenceOptions, LossConfig, LossValue,
    MsdConfig, Params,
};

/// Buffers of one training or evaluation batch, all on the device.
pub(crate) struct TrainBuffers {
    pub batch: Batch,
    pub raw: CudaSlice<f32>,
    pub feat: Features,
    pub grad: CudaSlice<f32>,
    pub dz: CudaSlice<f32>,
    pub labels: CudaSlice<u8>,
    pub dlogits: CudaSlice<f32>,
    pub probs: CudaSlice<f32>,
    pub partials: CudaSlice<f32>,
    pub stats: CudaSlice<f32>,
    pub loss_consts: CudaSlice<f32>,
}

/// How far the current batch has got: what the next call may rely on.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Stage {
    /// Nothing valid.
    Empty,
    /// Features of the current parameters.
    Forward,
    /// Features and the loss (labels and gradient constants) of the current parameters.
    Loss,
    /// Features and gradients of the current parameters.
    Backward,
    /// Gradients of the previous parameters (after an Adam step).
    Stepped,
}

/// An MSDnet on one GPU behind the crate's [`Backend`] trait: parameters, gradients, Adam moments and
/// batch buffers stay on the device, so a training step moves only its input slices and labels in and
/// one loss value out, and [`Backend::segment_slices`] streams whole volumes through in batches.
///
/// Inputs are `[images][c_in][h][w]` f32, normalised as for the CPU backend; with
/// [`CudaBackend::set_input_norm`] they may be raw intensities instead, normalised on the device.
/// Labels are `[images][h][w]` class indices. Besides the trait: the feature buffer and the feature
/// gradients of the last passes ([`CudaBackend::features`], [`CudaBackend::feature_gradients`]) and
/// reduced-precision inference ([`FeatureStorage`] in [`InferenceOptions`]).
pub struct CudaBackend {
    pub(crate) dev: Arc<CudaDevice>,
    pub(crate) config: MsdConfig,
    pub(crate) params: CudaSlice<f32>,
    grads: CudaSlice<f32>,
    adam_m: CudaSlice<f32>,
    adam_v: CudaSlice<f32>,
    adam_t: u64,
    norm: InputNorm,
    pub(crate) norm_mean: CudaSlice<f32>,
    pub(crate) norm_inv_std: CudaSlice<f32>,
    /// Every layer's dilation, for the grouped backward kernels.
    dils: CudaSlice<i32>,
    class_weights_dev: CudaSlice<f32>,
    train: Option<TrainBuffers>,
    stage: Stage,
    pub(crate) infer: Option<super::inference::InferBuffers>,
}

impl std::fmt::Debug for CudaBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaBackend")
            .field("device", &self.dev)
            .field("config", &self.config)
            .field("adam_t", &self.adam_t)
            .finish_non_exhaustive()
    }
}

fn upload<T: cudarc::driver::DeviceRepr>(
    dev: &CudaDevice,
    what: &'static str,
    v: &[T],
) -> Result<CudaSlice<T>> {
    dev.compute_stream().clone_htod(v).during(what)
}

impl CudaBackend {
    /// A backend for `config` on device `ordinal`, with all parameters zero until
    /// [`Backend::set_params`] and no input normalisation.
    ///
    /// # Errors
    /// [`Error::CudaUnavailable`] / [`Error::NvrtcUnavailable`] without a GPU or without NVRTC;
    /// [`Error::InvalidShape`] / [`Error::Net`] for a configuration the kernels cannot run;
    /// [`Error::Driver`] when device memory runs out.
    pub fn new(ordinal: usize, config: &MsdConfig) -> Result<Self> {
        Self::on_device(CudaDevice::new(ordinal)?, config)
    }

    /// A backend for `config` on an opened device (one device serves many backends: its context
    /// and compiled kernels are shared).
    ///
    /// # Errors
    /// As [`CudaBackend::new`], except for opening the device.
    pub fn on_device(dev: Arc<CudaDevice>, config: &MsdConfig) -> Result<Self> {
        check_config(config)?;
        let config = config.clone();
        let norm = InputNorm::identity(config.input_channels);
        let n = config.parameter_count();
        let stream = dev.compute_stream().clone();
        let inv_std: Vec<f32> = norm.std.iter().map(|s| 1.0 / s).collect();
        // check_config bounds every dilation by 2^16.
        let dils: Vec<i32> = config.dilations.iter().map(|&d| d as i32).collect();
        Ok(CudaBackend {
            params: stream.alloc_zeros(n).during("allocating parameters")?,
            grads: stream.alloc_zeros(n).during("allocating gradients")?,
            adam_m: stream.alloc_zeros(n).during("allocating Adam moments")?,
            adam_v: stream.alloc_zeros(n).during("allocating Adam moments")?,
            adam_t: 0,
            norm_mean: upload(&dev, "uploading the input normalisation", &norm.mean)?,
            norm_inv_std: upload(&dev, "uploading the input normalisation", &inv_std)?,
            dils: upload(&dev, "uploading dilations", &dils)?,
            norm,
            class_weights_dev: stream.alloc_zeros(config.n_classes).during("allocating class weights")?,
            train: None,
            stage: Stage::Empty,
            infer: None,
            dev,
            config,
        })
    }

    /// The device.
    pub fn device(&self) -> &Arc<CudaDevice> {
        &self.dev
    }

    /// The input normalisation applied on the device before the first layer (identity unless
    /// [`CudaBackend::set_input_norm`] set one).
    pub fn input_norm(&self) -> &InputNorm {
        &self.norm
    }

    /// Normalises inputs on the device, `(x − mean) / std` per input channel, so that
    /// [`Backend::forward`] and [`Backend::segment_slices`] take raw intensities (use
    /// [`InputNorm::identity`] for inputs normalised already).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `norm` does not fit the input channels, [`Error::Driver`] when the
    /// upload fails.
    pub fn set_input_norm(&mut self, norm: InputNorm) -> Result<()> {
        norm.check(self.config.input_channels)?;
        let inv_std: Vec<f32> = norm.std.iter().map(|s| 1.0 / s).collect();
        let s = self.dev.compute_stream();
        s.memcpy_htod(&norm.mean, &mut self.norm_mean).during("uploading the input normalisation")?;
        s.memcpy_htod(&inv_std, &mut self.norm_inv_std).during("uploading the input normalisation")?;
        self.norm = norm;
        self.stage = Stage::Empty;
        Ok(())
    }

    fn upload_params(&mut self, params: &Params) -> Result<()> {
        check_params(params, &self.config)?;
        let flat = flatten(params);
        self.dev.compute_stream().memcpy_htod(&flat, &mut self.params).during("uploading parameters")?;
        self.stage = Stage::Empty;
        Ok(())
    }

    fn download_params(&self) -> Result<Params> {
        let flat = download(&self.dev, &self.params, "downloading parameters")?;
        unflatten(&self.config, &flat)
    }

    fn check_batch(
        &self,
        op: &'static str,
        input: &[f32],
        images: usize,
        h: usize,
        w: usize,
    ) -> Result<Batch> {
        let expected = images
            .checked_mul(self.config.input_channels)
            .and_then(|n| n.checked_mul(h))
            .and_then(|n| n.checked_mul(w));
        match expected {
            Some(n) if n > 0 && n == input.len() => {}
            _ => {
                return Err(Error::InvalidArgument {
                    op,
                    reason: format!(
                        "input holds {} values; {images} images × {} channels × {h} × {w} expected (all > 0)",
                        input.len(),
                        self.config.input_channels
                    ),
                });
            }
        }
        if let Some(i) = input.iter().position(|v| !v.is_finite()) {
            return Err(Error::InvalidArgument { op, reason: format!("input[{i}] is {}", input[i]) });
        }
        Ok(Batch { images, h, w })
    }

    /// Allocates the batch buffers for `batch` unless the current ones have that size.
    fn ensure_train_buffers(&mut self, batch: Batch) -> Result<()> {
        if self.train.as_ref().is_some_and(|t| t.batch == batch) {
            return Ok(());
        }
        self.train = None;
        let sh = &self.config;
        let plane = batch.plane();
        let px = batch.images * plane;
        let c_total = sh.total_channels();
        let last_cin = sh.layer_inputs(sh.depth - 1);
        let conv_part = launch::weight_grad_rows(batch) * (sh.width * last_cin * 9 + sh.width);
        // The top group has the most weights of all groups.
        let gl = group_layers(sh).min(sh.depth);
        let top = group_of(sh, sh.depth - gl, sh.depth);
        let group_part = launch::weight_grad_rows(batch) * (top.weights_len() + top.slots());
        let dz_channels = sh.width.max(top.slots());
        let head_part = launch::head_grad_rows(batch) * (sh.n_classes * (c_total + 1));
        let stat_part = launch::loss_stat_rows(batch) * launch::LOSS_STATS;
        let s = self.dev.compute_stream();
        let what = "allocating batch buffers";
        let too_big = || Error::InvalidArgument {
            op: "allocating batch buffers",
            reason: format!("{batch:?} with {c_total} channels overflows usize"),
        };
        let feat_len = px.checked_mul(c_total).ok_or_else(too_big)?;
        self.train = Some(TrainBuffers {
            batch,
            raw: s.alloc_zeros(px * sh.input_channels).during(what)?,
            feat: Features::zeros(&self.dev, FeatureStorage::F32, feat_len)?,
            grad: s.alloc_zeros(feat_len).during(what)?,
            dz: s.alloc_zeros(px * dz_channels).during(what)?,
            labels: s.alloc_zeros(px).during(what)?,
            dlogits: s.alloc_zeros(px * sh.n_classes).during(what)?,
            probs: s.alloc_zeros(px * sh.n_classes).during(what)?,
            partials: s.alloc_zeros(conv_part.max(group_part).max(head_part).max(stat_part)).during(what)?,
            stats: s.alloc_zeros(launch::LOSS_STATS).during(what)?,
            loss_consts: s.alloc_zeros(launch::LOSS_CONSTS).during(what)?,
        });
        Ok(())
    }

    /// Uploads `input`, normalises it into channels `0..c_in` and runs every 3×3 layer.
    fn forward_features(
        &mut self,
        op: &'static str,
        input: &[f32],
        images: usize,
        h: usize,
        w: usize,
    ) -> Result<()> {
        let batch = self.check_batch(op, input, images, h, w)?;
        self.ensure_train_buffers(batch)?;
        self.stage = Stage::Empty;
        let dev = &*self.dev;
        let sh = &self.config;
        let t = self.train.as_mut().ok_or(Error::OutOfOrder { op, needs: "batch buffers" })?;
        dev.compute_stream().memcpy_htod(input, &mut t.raw).during("uploading the input batch")?;
        launch::input_normalize(
            dev,
            &t.raw.slice(..),
            &mut t.feat,
            Normalisation { mean: &self.norm_mean, inv_std: &self.norm_inv_std },
            sh.total_channels(),
            batch,
        )?;
        run_layers(dev, sh, &self.params, &mut t.feat, batch)?;
        self.stage = Stage::Forward;
        Ok(())
    }

    /// Forward pass of a batch `[images][c_in][h][w]`: every layer, then the class probabilities. Features
    /// and probabilities stay on the device for the loss and the backward pass.
    fn run_forward(&mut self, input: &[f32], images: usize, h: usize, w: usize) -> Result<()> {
        self.forward_features("forward", input, images, h, w)?;
        self.stage = Stage::Empty;
        let dev = &*self.dev;
        let sh = &self.config;
        let t = self.train.as_mut().ok_or(Error::OutOfOrder { op: "forward", needs: "batch buffers" })?;
        let (hw, hb) = head_views(sh, &self.params);
        launch::head_softmax(dev, &t.feat, &hw, &hb, &mut t.probs, head_of(sh), t.batch)?;
        self.stage = Stage::Forward;
        Ok(())
    }

    /// Class probabilities `[images][n_classes][h][w]` of the last forward pass.
    fn download_probabilities(&self) -> Result<Vec<f32>> {
        match (&self.train, self.stage) {
            (Some(t), Stage::Forward | Stage::Loss | Stage::Backward) => {
                download(&self.dev, &t.probs, "downloading probabilities")
            }
            _ => Err(Error::OutOfOrder { op: "probabilities", needs: "a forward pass" }),
        }
    }

    /// Downloads the feature buffer `[images][c_total][h][w]` of the last [`Backend::forward`].
    ///
    /// # Errors
    /// [`Error::OutOfOrder`] before any forward pass.
    pub fn features(&self) -> Result<Vec<f32>> {
        match (&self.train, self.stage) {
            (Some(t), Stage::Forward | Stage::Loss | Stage::Backward) => {
                download(&self.dev, t.feat.as_f32()?, "downloading features")
            }
            _ => Err(Error::OutOfOrder { op: "features", needs: "a forward pass" }),
        }
    }

    /// The loss of the last forward pass against `labels` (`[images][h][w]`): class-weighted
    /// cross-entropy (`Σ w·CE / Σ w`) plus `dice_weight · (1 − mean foreground soft Dice)`. Keeps what
    /// the backward pass needs.
    fn run_loss(&mut self, labels: &[u8], spec: &LossConfig) -> Result<LossValue> {
        const OP: &str = "loss";
        if !matches!(self.stage, Stage::Forward | Stage::Loss | Stage::Backward) {
            return Err(Error::OutOfOrder { op: OP, needs: "a forward pass with the current parameters" });
        }
        let k = self.config.n_classes;
        spec.validate(k)?;
        let dev = &*self.dev;
        let t = self.train.as_mut().ok_or(Error::OutOfOrder { op: OP, needs: "a forward pass" })?;
        let batch = t.batch;
        let n_pix = batch.images * batch.plane();
        if labels.len() != n_pix {
            return Err(Error::InvalidArgument {
                op: OP,
                reason: format!("{} labels for {n_pix} pixels", labels.len()),
            });
        }
        if let Some(i) = labels.iter().position(|&y| usize::from(y) >= k) {
            return Err(Error::InvalidArgument {
                op: OP,
                reason: format!("label[{i}] = {} but the network has {k} classes", labels[i]),
            });
        }
        let cw = spec.class_weights.clone().unwrap_or_else(|| vec![1.0; k]);
        let s = dev.compute_stream();
        s.memcpy_htod(labels, &mut t.labels).during("uploading labels")?;
        s.memcpy_htod(&cw, &mut self.class_weights_dev).during("uploading class weights")?;
        let head = head_of(&self.config);
        let rows = launch::head_loss_stats(
            dev,
            &t.probs,
            &t.labels,
            &self.class_weights_dev,
            &mut t.partials,
            head,
            batch,
        )?;
        {
            let (mut a, mut b) = t.stats.split_at_mut(launch::LOSS_STATS);
            launch::reduce_partials(dev, &t.partials, rows, &mut a, &mut b)?;
        }
        let stats = download(dev, &t.stats, "downloading loss statistics")?;
        let (report, consts) = loss_from_stats(&stats, &cw, spec.dice_weight, k, n_pix);
        s.memcpy_htod(&consts, &mut t.loss_consts).during("uploading loss constants")?;
        self.stage = Stage::Loss;
        Ok(report)
    }

    /// Back-propagates the loss of the last forward pass through the head and every 3×3 layer; the
    /// parameter gradients replace the previous ones and stay on the device for the Adam step.
    fn run_backward(&mut self) -> Result<()> {
        const OP: &str = "backward";
        if self.stage != Stage::Loss {
            return Err(Error::OutOfOrder { op: OP, needs: "loss() on the current forward pass" });
        }
        let dev = &*self.dev;
        let sh = &self.config;
        let t = self.train.as_mut().ok_or(Error::OutOfOrder { op: OP, needs: "a forward pass" })?;
        let batch = t.batch;
        let feat = t.feat.as_f32()?;
        let head = head_of(sh);
        let (hw, _) = head_views(sh, &self.params);
        launch::head_loss_backward(
            dev,
            &hw,
            LossBackward {
                probs: &t.probs,
                labels: &t.labels,
                class_weight: &self.class_weights_dev,
                consts: &t.loss_consts,
                dlogits: &mut t.dlogits,
                grad: &mut t.grad,
            },
            head,
            batch,
        )?;
        let rows = launch::head_weight_grad(dev, feat, &t.dlogits, &mut t.partials, head, batch)?;
        {
            let start = sh.conv_weight_len() + sh.conv_bias_len();
            let mid = start + sh.head_weight_len();
            let (mut lo, mut hi) = self.grads.split_at_mut(mid);
            let mut weights = lo.slice_mut(start..mid);
            launch::reduce_partials(dev, &t.partials, rows, &mut weights, &mut hi)?;
        }
        // Layers in groups from the top: within a group layer by layer down to its first layer's inputs,
        // then one pass over the channels below the group for the input and weight gradients of all its
        // layers (see conv_backward.cu); a group that cannot run so goes layer by layer.
        let bias0 = sh.conv_weight_len();
        let mut i1 = sh.depth;
        while i1 > 0 {
            let i0 = i1.saturating_sub(group_layers(sh));
            let group = group_of(sh, i0, i1);
            if i1 - i0 < 2 || group.chunk(dev).is_none() {
                for i in (i0..i1).rev() {
                    let layer = layer_of(sh, i);
                    let (wo, wl) = (sh.weight_offset(i), sh.layer_weight_len(i));
                    let single = DzLayout { channels: sh.width, first: 0 };
                    launch::relu_mask(dev, feat, &t.grad, &mut t.dz, single, layer, batch)?;
                    let weight = self.params.slice(wo..wo + wl);
                    let view = t.dz.slice(..);
                    let dz = DzInput { data: &view, channels: sh.width };
                    launch::conv_backward_input(dev, &mut t.grad, dz, &weight, 0, layer, batch)?;
                    let rows = launch::conv_weight_grad(dev, feat, &t.dz, &mut t.partials, layer, batch)?;
                    let (mut lo, mut hi) = self.grads.split_at_mut(bias0);
                    let mut wg = lo.slice_mut(wo..wo + wl);
                    let mut bg = hi.slice_mut(i * sh.width..(i + 1) * sh.width);
                    launch::reduce_partials(dev, &t.partials, rows, &mut wg, &mut bg)?;
                }
            } else {
                let slots = group.slots();
                let plane = batch.plane();
                for i in (i0..i1).rev() {
                    let layer = layer_of(sh, i);
                    let slot = (i - i0) * sh.width;
                    let layout = DzLayout { channels: slots, first: slot };
                    launch::relu_mask(dev, feat, &t.grad, &mut t.dz, layout, layer, batch)?;
                    if i > i0 {
                        // Into the outputs of the group's earlier layers, before their own masks.
                        let (wo, wl) = (sh.weight_offset(i), sh.layer_weight_len(i));
                        let weight = self.params.slice(wo..wo + wl);
                        let view = t.dz.slice(slot * plane..);
                        let dz = DzInput { data: &view, channels: slots };
                        launch::conv_backward_input(dev, &mut t.grad, dz, &weight, group.cin0, layer, batch)?;
                    }
                }
                let (w0, w1) = (sh.weight_offset(i0), sh.weight_offset(i1));
                let dils = self.dils.slice(i0..i1);
                let weight = self.params.slice(w0..w1);
                launch::conv_backward_input_group(dev, &mut t.grad, &t.dz, &weight, &dils, group, batch)?;
                let rows =
                    launch::conv_weight_grad_group(dev, feat, &t.dz, &mut t.partials, &dils, group, batch)?;
                let (mut lo, mut hi) = self.grads.split_at_mut(bias0);
                let mut wg = lo.slice_mut(w0..w1);
                let mut bg = hi.slice_mut(i0 * sh.width..i1 * sh.width);
                launch::reduce_partials(dev, &t.partials, rows, &mut wg, &mut bg)?;
            }
            i1 = i0;
        }
        self.stage = Stage::Backward;
        Ok(())
    }

    /// Downloads the parameter gradients of the last backward pass.
    fn download_gradients(&self) -> Result<Params> {
        if !matches!(self.stage, Stage::Backward | Stage::Stepped) {
            return Err(Error::OutOfOrder { op: "gradients", needs: "a backward pass" });
        }
        unflatten(&self.config, &download(&self.dev, &self.grads, "downloading gradients")?)
    }

    /// Downloads the loss gradient with respect to every feature channel, `[images][c_total][h][w]`
    /// (channels `0..c_in`: the normalised input), of the last [`Backend::backward`].
    ///
    /// # Errors
    /// [`Error::OutOfOrder`] before any backward pass.
    pub fn feature_gradients(&self) -> Result<Vec<f32>> {
        match (&self.train, self.stage) {
            (Some(t), Stage::Backward | Stage::Stepped) => {
                download(&self.dev, &t.grad, "downloading gradients")
            }
            _ => Err(Error::OutOfOrder { op: "feature_gradients", needs: "a backward pass" }),
        }
    }

    /// One Adam update of every parameter from the gradients of the last backward pass.
    fn run_adam_step(&mut self, adam: &AdamConfig) -> Result<()> {
        if self.stage != Stage::Backward {
            return Err(Error::OutOfOrder {
                op: "adam_step",
                needs: "a backward pass with the current parameters",
            });
        }
        let ok = adam.lr.is_finite()
            && adam.eps.is_finite()
            && adam.eps >= 0.0
            && (0.0..1.0).contains(&adam.beta1)
            && (0.0..1.0).contains(&adam.beta2);
        if !ok {
            return Err(Error::InvalidArgument { op: "adam_step", reason: format!("{adam:?}") });
        }
        let t = self.adam_t + 1;
        let (bias_correction1, bias_correction2) = adam_bias_corrections(adam, t);
        let step = AdamStep {
            lr: adam.lr,
            beta1: adam.beta1,
            beta2: adam.beta2,
            eps: adam.eps,
            bias_correction1,
            bias_correction2,
        };
        launch::adam_step(
            &self.dev,
            &mut self.params,
            &self.grads,
            &mut self.adam_m,
            &mut self.adam_v,
            step,
        )?;
        self.adam_t = t;
        self.stage = Stage::Stepped;
        Ok(())
    }

    /// The optimiser state: steps taken and both moments, in the parameter layout.
    fn download_optimizer_state(&self) -> Result<AdamState> {
        let m = unflatten(&self.config, &download(&self.dev, &self.adam_m, "downloading Adam state")?)?;
        let v = unflatten(&self.config, &download(&self.dev, &self.adam_v, "downloading Adam state")?)?;
        Ok(AdamState { step: self.adam_t, m, v })
    }

    /// Restores the optimiser state (resuming from a checkpoint).
    fn upload_optimizer_state(&mut self, step: u64, m: &Params, v: &Params) -> Result<()> {
        check_params(m, &self.config)?;
        check_params(v, &self.config)?;
        let s = self.dev.compute_stream();
        s.memcpy_htod(&flatten(m), &mut self.adam_m).during("uploading Adam state")?;
        s.memcpy_htod(&flatten(v), &mut self.adam_v).during("uploading Adam state")?;
        self.adam_t = step;
        Ok(())
    }
}

impl Backend for CudaBackend {
    fn name(&self) -> String {
        format!("cuda:{} ({})", self.dev.context().ordinal(), self.dev.name())
    }

    fn config(&self) -> &MsdConfig {
        &self.config
    }

    fn set_params(&mut self, params: &Params) -> crate::Result<()> {
        Ok(self.upload_params(params)?)
    }

    fn params(&self) -> crate::Result<Params> {
        Ok(self.download_params()?)
    }

    fn forward(&mut self, inputs: &[f32], shape: BatchShape) -> crate::Result<()> {
        Ok(self.run_forward(inputs, shape.images, shape.height, shape.width)?)
    }

    fn probabilities(&mut self, out: &mut [f32]) -> crate::Result<()> {
        let probs = self.download_probabilities()?;
        if out.len() != probs.len() {
            return Err(crate::Error::len("class probabilities", probs.len(), out.len()));
        }
        out.copy_from_slice(&probs);
        Ok(())
    }

    fn loss(&mut self, labels: &[u8], loss: &LossConfig) -> crate::Result<LossValue> {
        Ok(self.run_loss(labels, loss)?)
    }

    fn backward(&mut self) -> crate::Result<()> {
        Ok(self.run_backward()?)
    }

    fn gradients(&self) -> crate::Result<Params> {
        Ok(self.download_gradients()?)
    }

    fn adam_step(&mut self, adam: &AdamConfig) -> crate::Result<()> {
        Ok(self.run_adam_step(adam)?)
    }

    fn optimizer_state(&self) -> crate::Result<AdamState> {
        Ok(self.download_optimizer_state()?)
    }

    fn set_optimizer_state(&mut self, state: &AdamState) -> crate::Result<()> {
        Ok(self.upload_optimizer_state(state.step, &state.m, &state.v)?)
    }

    /// Streams the slices through the GPU in batches of `options.batch`: while the GPU runs one
    /// batch, the next one is uploaded and the previous one's labels come back (copy stream, pinned
    /// buffers), with the feature maps in `options.storage`.
    fn segment_slices(
        &mut self,
        inputs: &[f32],
        shape: BatchShape,
        options: InferenceOptions,
    ) -> crate::Result<Vec<u8>> {
        Ok(self.stream_slices(inputs, shape.images, shape.height, shape.width, options)?)
    }
}

/// Turns the reduced loss statistics into the report and the constants of the gradient kernel,
/// `[norm, dice_a[0..8], dice_b[0..8]]` (formulas of the CPU path's `loss_and_grad`).
fn loss_from_stats(
    stats: &[f32],
    cw: &[f32],
    dice_weight: f32,
    k: usize,
    pixels: usize,
) -> (LossValue, Vec<f32>) {
    let mc = launch::MAX_CLASSES;
    let st = |i: usize| f64::from(stats[i]);
    let inter: Vec<f64> = (0..k).map(|c| st(1 + c)).collect();
    let psum: Vec<f64> = (0..k).map(|c| st(1 + mc + c)).collect();
    let ysum: Vec<f64> = (0..k).map(|c| st(1 + 2 * mc + c)).collect();
    let total_w: f64 = (0..k).map(|c| f64::from(cw[c]) * ysum[c]).sum();
    let norm = if total_w > 0.0 { 1.0 / total_w } else { 0.0 };
    let ce = st(0) * norm;
    let eps = 1e-6;
    let fg = (k - 1) as f64;
    let soft_dice = (1..k).map(|c| (2.0 * inter[c] + eps) / (psum[c] + ysum[c] + eps)).sum::<f64>() / fg;
    let lambda = f64::from(dice_weight);
    let mut consts = vec![0.0f32; launch::LOSS_CONSTS];
    consts[0] = norm as f32;
    for c in 1..k {
        let den = psum[c] + ysum[c] + eps;
        consts[1 + c] = (-lambda / fg * 2.0 / den) as f32;
        consts[1 + mc + c] = (lambda / fg * 2.0 * (inter[c] + eps / 2.0) / (den * den)) as f32;
    }
    (LossValue { loss: ce + lambda * (1.0 - soft_dice), cross_entropy: ce, soft_dice, pixels }, consts)
}
