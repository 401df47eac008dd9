//! [`CudaMsd`]: an MSDnet whose parameters, optimiser state and batch buffers live on one GPU.

use std::sync::Arc;

use cudarc::driver::CudaSlice;

use super::device::CudaDevice;
use super::error::{DriverContext, Error, Result};
use super::launch::{
    self, AdamStep, Batch, DzInput, DzLayout, FeatureStorage, Features, Group, Head, Layer, LossBackward,
    Normalisation,
};
use super::shape::{InputNorm, Layout, check_config, check_params, flatten, unflatten};
use crate::{AdamConfig, LossConfig, LossValue, MsdConfig, Params};

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

/// An MSDnet on one GPU: parameters, gradients, Adam moments and batch buffers stay on the device, so a
/// training step moves only its input slices and labels in and one loss value out.
///
/// Inputs are `[images][c_in][h][w]` f32 (raw intensities; the stored [`InputNorm`] is applied on the
/// device); labels are `[images][h][w]` class indices.
pub struct CudaMsd {
    pub(crate) dev: Arc<CudaDevice>,
    pub(crate) shape: MsdConfig,
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

impl std::fmt::Debug for CudaMsd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaMsd")
            .field("device", &self.dev)
            .field("shape", &self.shape)
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

impl CudaMsd {
    /// Puts a network on `dev` with `params` and input normalisation `norm` (use
    /// [`InputNorm::identity`] for inputs normalised already).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `params` or `norm` do not fit `shape`, [`Error::Driver`] when
    /// device memory runs out.
    pub fn new(dev: Arc<CudaDevice>, shape: MsdConfig, params: &Params, norm: InputNorm) -> Result<Self> {
        check_config(&shape)?;
        check_params(params, &shape)?;
        norm.check(shape.input_channels)?;
        let n = shape.parameter_count();
        let stream = dev.compute_stream().clone();
        let flat = flatten(params);
        let inv_std: Vec<f32> = norm.std.iter().map(|s| 1.0 / s).collect();
        // check_config bounds every dilation by 2^16.
        let dils: Vec<i32> = shape.dilations.iter().map(|&d| d as i32).collect();
        Ok(CudaMsd {
            params: upload(&dev, "uploading parameters", &flat)?,
            grads: stream.alloc_zeros(n).during("allocating gradients")?,
            adam_m: stream.alloc_zeros(n).during("allocating Adam moments")?,
            adam_v: stream.alloc_zeros(n).during("allocating Adam moments")?,
            adam_t: 0,
            norm_mean: upload(&dev, "uploading the input normalisation", &norm.mean)?,
            norm_inv_std: upload(&dev, "uploading the input normalisation", &inv_std)?,
            dils: upload(&dev, "uploading dilations", &dils)?,
            norm,
            class_weights_dev: stream.alloc_zeros(shape.n_classes).during("allocating class weights")?,
            train: None,
            stage: Stage::Empty,
            infer: None,
            dev,
            shape,
        })
    }

    /// The device.
    pub fn device(&self) -> &Arc<CudaDevice> {
        &self.dev
    }

    /// The network's shape.
    pub fn shape(&self) -> &MsdConfig {
        &self.shape
    }

    /// The input normalisation.
    pub fn input_norm(&self) -> &InputNorm {
        &self.norm
    }

    /// Adam steps taken since creation or [`CudaMsd::reset_optimizer`].
    pub fn steps(&self) -> u64 {
        self.adam_t
    }

    /// Replaces the parameters (the optimiser state is kept; see [`CudaMsd::reset_optimizer`]).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `params` does not fit the shape.
    pub fn set_params(&mut self, params: &Params) -> Result<()> {
        check_params(params, &self.shape)?;
        let flat = flatten(params);
        self.dev.compute_stream().memcpy_htod(&flat, &mut self.params).during("uploading parameters")?;
        self.stage = Stage::Empty;
        Ok(())
    }

    /// Downloads the parameters.
    ///
    /// # Errors
    /// [`Error::Driver`] when the copy fails (also reports earlier failed kernels).
    pub fn params(&self) -> Result<Params> {
        let flat = download(&self.dev, &self.params, "downloading parameters")?;
        unflatten(&self.shape, &flat)
    }

    /// Zeroes the Adam moments and the step count.
    ///
    /// # Errors
    /// [`Error::Driver`] when the device fails.
    pub fn reset_optimizer(&mut self) -> Result<()> {
        let s = self.dev.compute_stream();
        s.memset_zeros(&mut self.adam_m).during("resetting Adam")?;
        s.memset_zeros(&mut self.adam_v).during("resetting Adam")?;
        self.adam_t = 0;
        Ok(())
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
            .checked_mul(self.shape.input_channels)
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
                        self.shape.input_channels
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
        let sh = &self.shape;
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
        let sh = &self.shape;
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
    /// and probabilities stay on the device for [`CudaMsd::loss`] and [`CudaMsd::backward`].
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `input` is not `images·c_in·h·w` finite values, launch and driver
    /// errors otherwise.
    pub fn forward(&mut self, input: &[f32], images: usize, h: usize, w: usize) -> Result<()> {
        self.forward_features("forward", input, images, h, w)?;
        self.stage = Stage::Empty;
        let dev = &*self.dev;
        let sh = &self.shape;
        let t = self.train.as_mut().ok_or(Error::OutOfOrder { op: "forward", needs: "batch buffers" })?;
        let (hw, hb) = head_views(sh, &self.params);
        launch::head_softmax(dev, &t.feat, &hw, &hb, &mut t.probs, head_of(sh), t.batch)?;
        self.stage = Stage::Forward;
        Ok(())
    }

    /// Class probabilities `[images][n_classes][h][w]` of the last forward pass.
    ///
    /// # Errors
    /// [`Error::OutOfOrder`] before any forward pass.
    pub fn probabilities(&self) -> Result<Vec<f32>> {
        match (&self.train, self.stage) {
            (Some(t), Stage::Forward | Stage::Loss | Stage::Backward) => {
                download(&self.dev, &t.probs, "downloading probabilities")
            }
            _ => Err(Error::OutOfOrder { op: "probabilities", needs: "a forward pass" }),
        }
    }

    /// Downloads the feature buffer `[images][c_total][h][w]` of the last forward pass.
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
    /// [`CudaMsd::backward`] needs.
    ///
    /// # Errors
    /// [`Error::OutOfOrder`] without a forward pass of the current parameters; [`Error::InvalidArgument`]
    /// for a wrong label count, a label `>= n_classes` or an invalid [`LossConfig`].
    pub fn loss(&mut self, labels: &[u8], spec: &LossConfig) -> Result<LossValue> {
        const OP: &str = "loss";
        if !matches!(self.stage, Stage::Forward | Stage::Loss | Stage::Backward) {
            return Err(Error::OutOfOrder { op: OP, needs: "a forward pass with the current parameters" });
        }
        let k = self.shape.n_classes;
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
        let head = head_of(&self.shape);
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

    /// Back-propagates the loss of [`CudaMsd::loss`] through the head and every 3×3 layer; the parameter
    /// gradients replace the previous ones and stay on the device for [`CudaMsd::adam_step`].
    ///
    /// # Errors
    /// [`Error::OutOfOrder`] unless [`CudaMsd::loss`] ran on the current forward pass.
    pub fn backward(&mut self) -> Result<()> {
        const OP: &str = "backward";
        if self.stage != Stage::Loss {
            return Err(Error::OutOfOrder { op: OP, needs: "loss() on the current forward pass" });
        }
        let dev = &*self.dev;
        let sh = &self.shape;
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

    /// Downloads the parameter gradients of the last [`CudaMsd::backward`].
    ///
    /// # Errors
    /// [`Error::OutOfOrder`] before any backward pass.
    pub fn gradients(&self) -> Result<Params> {
        if !matches!(self.stage, Stage::Backward | Stage::Stepped) {
            return Err(Error::OutOfOrder { op: "gradients", needs: "a backward pass" });
        }
        unflatten(&self.shape, &download(&self.dev, &self.grads, "downloading gradients")?)
    }

    /// Downloads the loss gradient with respect to every feature channel, `[images][c_total][h][w]`
    /// (channels `0..c_in`: the normalised input), of the last [`CudaMsd::backward`].
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

    /// One Adam update of every parameter from the gradients of the last [`CudaMsd::backward`].
    ///
    /// # Errors
    /// [`Error::OutOfOrder`] unless a backward pass of the current parameters came first;
    /// [`Error::InvalidArgument`] for non-finite or out-of-range hyper-parameters.
    pub fn adam_step(&mut self, adam: &AdamConfig) -> Result<()> {
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
    ///
    /// # Errors
    /// [`Error::Driver`] when the download fails.
    pub fn optimizer_state(&self) -> Result<(u64, Params, Params)> {
        let m = unflatten(&self.shape, &download(&self.dev, &self.adam_m, "downloading Adam state")?)?;
        let v = unflatten(&self.shape, &download(&self.dev, &self.adam_v, "downloading Adam state")?)?;
        Ok((self.adam_t, m, v))
    }

    /// Restores the optimiser state (resuming from a checkpoint).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when a moment does not fit the shape.
    pub fn set_optimizer_state(&mut self, step: u64, m: &Params, v: &Params) -> Result<()> {
        check_params(m, &self.shape)?;
        check_params(v, &self.shape)?;
        let s = self.dev.compute_stream();
        s.memcpy_htod(&flatten(m), &mut self.adam_m).during("uploading Adam state")?;
        s.memcpy_htod(&flatten(v), &mut self.adam_v).during("uploading Adam state")?;
        self.adam_t = step;
        Ok(())
    }

    /// One training step: forward, loss, backward and Adam update of a batch. Returns the loss before
    /// the update.
    ///
    /// # Errors
    /// As [`CudaMsd::forward`], [`CudaMsd::loss`] and [`CudaMsd::adam_step`].
    pub fn train_step(
        &mut self,
        input: &[f32],
        labels: &[u8],
        batch: [usize; 3],
        spec: &LossConfig,
        adam: &AdamConfig,
    ) -> Result<LossValue> {
        let [images, h, w] = batch;
        self.forward(input, images, h, w)?;
        let report = self.loss(labels, spec)?;
        self.backward()?;
        self.adam_step(adam)?;
        Ok(report)
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

/// Copies a device buffer to a new host vector and waits for it.
pub(crate) fn download<T: cudarc::driver::DeviceRepr + Default + Clone>(
    dev: &CudaDevice,
    src: &CudaSlice<T>,
    what: &'static str,
) -> Result<Vec<T>> {
    let s = dev.compute_stream();
    let v = s.clone_dtoh(src).during(what)?;
    s.synchronize().during(what)?;
    Ok(v)
}

/// The head's weight and bias views in the flat parameter vector.
pub(crate) fn head_views<'a>(
    sh: &MsdConfig,
    params: &'a CudaSlice<f32>,
) -> (cudarc::driver::CudaView<'a, f32>, cudarc::driver::CudaView<'a, f32>) {
    let start = sh.conv_weight_len() + sh.conv_bias_len();
    let mid = start + sh.head_weight_len();
    (params.slice(start..mid), params.slice(mid..mid + sh.n_classes))
}

pub(crate) fn head_of(sh: &MsdConfig) -> Head {
    Head { c_total: sh.total_channels(), n_classes: sh.n_classes }
}

/// Layers per group of the grouped backward (their masked gradients fill at most
/// [`launch::GROUP_SLOTS`] channels).
pub(crate) fn group_layers(sh: &MsdConfig) -> usize {
    (launch::GROUP_SLOTS / sh.width).max(1)
}

/// The group of layers `i0..i1`.
pub(crate) fn group_of(sh: &MsdConfig, i0: usize, i1: usize) -> Group {
    Group {
        cin0: sh.layer_inputs(i0),
        layers: i1 - i0,
        width: sh.width,
        c_total: sh.total_channels(),
        dmax: sh.dilations[i0..i1].iter().copied().max().unwrap_or(1),
    }
}

pub(crate) fn layer_of(sh: &MsdConfig, i: usize) -> Layer {
    Layer { cin: sh.layer_inputs(i), width: sh.width, c_total: sh.total_channels(), dil: sh.dilations[i] }
}

/// Runs every 3×3 layer over `feat` (channels `0..c_in` already filled).
pub(crate) fn run_layers(
    dev: &CudaDevice,
    sh: &MsdConfig,
    params: &CudaSlice<f32>,
    feat: &mut Features,
    batch: Batch,
) -> Result<()> {
    let bias0 = sh.conv_weight_len();
    for i in 0..sh.depth {
        let wo = sh.weight_offset(i);
        let weight = params.slice(wo..wo + sh.layer_weight_len(i));
        let bias = params.slice(bias0 + i * sh.width..bias0 + (i + 1) * sh.width);
        launch::conv_forward(dev, feat, &weight, &bias, layer_of(sh, i), batch)?;
    }
    Ok(())
}

pub(crate) fn adam_bias_corrections(adam: &AdamConfig, t: u64) -> (f32, f32) {
    let t = i32::try_from(t).unwrap_or(i32::MAX);
    ((1.0 - f64::from(adam.beta1).powi(t)) as f32, (1.0 - f64::from(adam.beta2).powi(t)) as f32)
}
