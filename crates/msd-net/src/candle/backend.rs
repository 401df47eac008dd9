//! A [`Backend`] that trains through candle's autograd: the parameters are candle [`Var`]s, the
//! 3×3 block is the [`msd_block`] custom op (its backward calls the hand-written kernels), the
//! final 1×1 layer, softmax and loss are candle tensor operations, and `loss.backward()` fills
//! the gradients. It computes what [`crate::CpuBackend`] computes, by another road: the
//! integration of the kernels with candle is exercised end to end by the same training loop.
use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::optim::Optimizer;

use crate::backend::{AdamConfig, AdamState, Backend, BatchShape};
use crate::kernels::Isa;
use crate::{Error, LossConfig, LossValue, MsdConfig, Params, Result, msd_block};

/// Added to both sides of the soft Dice ratio; the value of [`crate::LossConfig`]'s definition.
const DICE_EPS: f64 = 1e-6;

/// The four parameter tensors in the order of [`Params`]'s vectors (and of the model file).
#[derive(Debug)]
struct ParamVars {
    /// `[conv_weight_len]`, the flat layout of [`Params::conv_weights`] that [`msd_block`] reads.
    conv_weights: Var,
    /// `[depth · width]`.
    conv_biases: Var,
    /// `[n_classes, total_channels]`.
    final_weights: Var,
    /// `[n_classes]`.
    final_biases: Var,
}

impl ParamVars {
    fn zeros(config: &MsdConfig, device: &Device) -> Result<Self> {
        let z = |shape: &[usize]| Var::zeros(shape, DType::F32, device);
        Ok(ParamVars {
            conv_weights: z(&[config.conv_weight_len()])?,
            conv_biases: z(&[config.conv_bias_len()])?,
            final_weights: z(&[config.n_classes, config.total_channels()])?,
            final_biases: z(&[config.n_classes])?,
        })
    }

    fn all(&self) -> [&Var; 4] {
        [&self.conv_weights, &self.conv_biases, &self.final_weights, &self.final_biases]
    }

    /// Overwrites the variables with `values` (already checked against the configuration).
    fn set(&self, values: &Params) -> Result<()> {
        for (var, v) in self.all().into_iter().zip(values.vectors()) {
            var.set(&Tensor::from_slice(v, var.shape(), var.device())?)?;
        }
        Ok(())
    }

    fn get(&self) -> Result<Params> {
        let [a, b, c, d] = self.all().map(|v| v.as_tensor().flatten_all()?.to_vec1::<f32>());
        Ok(Params { conv_weights: a?, conv_biases: b?, final_weights: c?, final_biases: d? })
    }
}

/// Adam on candle variables, with its moments readable and restorable.
///
/// `candle_nn::AdamW` with `weight_decay = 0` computes the same update, but it keeps its step count
/// and moments in private fields: a checkpoint could neither save nor restore them, and training
/// could not resume without losing the optimiser's state. So the update is written here with
/// candle tensor operations, behind candle-nn's [`Optimizer`] trait, with the bias correction of
/// [`AdamState::update`] (so that this backend and the CPU backend take the same steps).
#[derive(Debug)]
struct CandleAdam {
    /// `(parameter, first moment, second moment)`, in the order of [`ParamVars::all`].
    vars: Vec<(Var, Var, Var)>,
    step: u64,
    config: AdamConfig,
}

impl Optimizer for CandleAdam {
    type Config = AdamConfig;

    fn new(vars: Vec<Var>, config: AdamConfig) -> candle_core::Result<Self> {
        let vars = vars
            .into_iter()
            .map(|v| {
                let m = Var::zeros(v.shape(), v.dtype(), v.device())?;
                let s = Var::zeros(v.shape(), v.dtype(), v.device())?;
                Ok((v, m, s))
            })
            .collect::<candle_core::Result<_>>()?;
        Ok(CandleAdam { vars, step: 0, config })
    }

    /// One step; a variable without a gradient in `grads` is stepped with a zero gradient (its
    /// moments decay), as [`AdamState::update`] does.
    fn step(&mut self, grads: &GradStore) -> candle_core::Result<()> {
        self.step += 1;
        let t = self.step as f64;
        let AdamConfig { lr, beta1, beta2, eps } = self.config;
        let (b1, b2) = (beta1 as f64, beta2 as f64);
        let c1 = 1.0 / (1.0 - b1.powf(t));
        let c2 = 1.0 / (1.0 - b2.powf(t));
        for (theta, m, v) in &self.vars {
            let g = match grads.get(theta.as_tensor()) {
                Some(g) => g.detach(),
                None => theta.as_tensor().zeros_like()?,
            };
            let m_next = (m.as_tensor().detach().affine(b1, 0.0)? + g.affine(1.0 - b1, 0.0)?)?;
            let v_next = (v.as_tensor().detach().affine(b2, 0.0)? + g.sqr()?.affine(1.0 - b2, 0.0)?)?;
            let denom = v_next.affine(c2, 0.0)?.sqrt()?.affine(1.0, eps as f64)?;
            let update = m_next.affine(lr as f64 * c1, 0.0)?.div(&denom)?;
            let theta_next = theta.as_tensor().detach().sub(&update)?;
            m.set(&m_next)?;
            v.set(&v_next)?;
            theta.set(&theta_next)?;
        }
        Ok(())
    }

    fn learning_rate(&self) -> f64 {
        self.config.lr as f64
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.config.lr = lr as f32;
    }
}

impl CandleAdam {
    fn state(&self, config: &MsdConfig) -> Result<AdamState> {
        let (mut m, mut v) = (Params::zeros(config), Params::zeros(config));
        let dst = m.vectors_mut().into_iter().zip(v.vectors_mut());
        for ((_, vm, vv), (dm, dv)) in self.vars.iter().zip(dst) {
            *dm = vm.as_tensor().flatten_all()?.to_vec1::<f32>()?;
            *dv = vv.as_tensor().flatten_all()?.to_vec1::<f32>()?;
        }
        Ok(AdamState { step: self.step, m, v })
    }

    /// Restores the moments (already checked against the configuration) and the step count.
    fn set_state(&mut self, state: &AdamState) -> Result<()> {
        for ((_, m, v), (sm, sv)) in
            self.vars.iter().zip(state.m.vectors().into_iter().zip(state.v.vectors()))
        {
            m.set(&Tensor::from_slice(sm, m.shape(), m.device())?)?;
            v.set(&Tensor::from_slice(sv, v.shape(), v.device())?)?;
        }
        self.step = state.step;
        Ok(())
    }
}

/// What the last forward pass left for the loss and for [`Backend::probabilities`].
#[derive(Debug)]
struct Pass {
    shape: BatchShape,
    /// `[images, n_classes, h·w]`, attached to the autograd graph of the parameters.
    logits: Tensor,
    /// Softmax of `logits` over the classes.
    probs: Tensor,
}

/// The [`Backend`] that runs MSDnet entirely through candle, on the CPU.
///
/// - Parameters are four candle [`Var`]s ([`CandleBackend::vars`]) in the flat layouts of
///   [`Params`].
/// - [`Backend::forward`] applies the [`msd_block`] custom op (the hand-written kernels), then the
///   final 1×1 layer as a candle `matmul` plus bias and `candle_nn::ops::softmax`.
/// - [`Backend::loss`] builds the loss of [`LossConfig`] from candle operations in `f64` (like the
///   CPU backend's sums): `candle_nn::ops::log_softmax`, `candle_nn::loss::nll` for plain
///   cross-entropy or a gathered, class-weighted mean, plus the soft Dice term.
/// - [`Backend::backward`] is `loss.backward()`: candle's autograd, which calls the kernels'
///   backward through the custom op; the parameters' gradients are kept in a [`GradStore`].
/// - [`Backend::adam_step`] is Adam on the variables written with candle tensor operations behind
///   candle-nn's `Optimizer` trait (`candle_nn::AdamW` hides its moments, which checkpoints need).
///
/// It gives the same loss, gradients and Adam steps as [`crate::CpuBackend`] up to `f32`
/// rounding, and drops into [`crate::train_with_backend`]. The CPU backend is faster and leaner
/// (it reuses its buffers and needs no autograd graph); this one shows the kernels working inside
/// candle, and is the starting point for networks that put more candle layers around the block.
///
/// ```
/// use msd_net::{Backend, BatchShape, CandleBackend, LossConfig, MsdConfig, Params};
///
/// let config = MsdConfig::new(3, 1, 1, 2);
/// let mut backend = CandleBackend::new(&config)?;
/// backend.set_params(&Params::init(&config, 1)?)?;
/// let shape = BatchShape { images: 1, height: 8, width: 8 };
/// backend.forward(&vec![0.5; 64], shape)?;
/// let loss = backend.loss(&vec![1; 64], &LossConfig::default())?;
/// backend.backward()?;
/// backend.adam_step(&Default::default())?;
/// assert!(loss.loss > 0.0);
/// assert_eq!(backend.optimizer_state()?.step, 1);
/// # Ok::<(), msd_net::Error>(())
/// ```
#[derive(Debug)]
pub struct CandleBackend {
    config: MsdConfig,
    device: Device,
    isa: Isa,
    vars: ParamVars,
    adam: CandleAdam,
    pass: Option<Pass>,
    /// The scalar loss of the last [`Backend::loss`], the root of the autograd graph.
    loss: Option<Tensor>,
    /// Gradients of the four variables only (the rest of the graph's gradients are dropped).
    grads: Option<GradStore>,
}

impl CandleBackend {
    /// A backend with zero parameters and a fresh optimiser, on the CPU (the [`msd_block`] op has
    /// CPU kernels only).
    pub fn new(config: &MsdConfig) -> Result<Self> {
        config.validate()?;
        let device = Device::Cpu;
        let vars = ParamVars::zeros(config, &device)?;
        let adam = CandleAdam::new(vars.all().map(|v| v.clone()).to_vec(), AdamConfig::default())?;
        Ok(CandleBackend {
            config: config.clone(),
            device,
            isa: Isa::detect(),
            vars,
            adam,
            pass: None,
            loss: None,
            grads: None,
        })
    }

    /// The parameter variables: 3×3 weights `[conv_weight_len]`, biases `[depth · width]`, final
    /// weights `[n_classes, total_channels]` and final biases `[n_classes]` (the layouts of
    /// [`Params`]). Changing them changes the backend's parameters.
    pub fn vars(&self) -> [&Var; 4] {
        self.vars.all()
    }

    /// The device the tensors live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    fn pass(&self) -> Result<&Pass> {
        self.pass.as_ref().ok_or(Error::OutOfOrder { op: "this step", needs: "a forward pass" })
    }
}

impl Backend for CandleBackend {
    fn name(&self) -> String {
        format!("candle-cpu-{}", self.isa.name())
    }

    fn config(&self) -> &MsdConfig {
        &self.config
    }

    fn set_params(&mut self, params: &Params) -> Result<()> {
        params.check_shape(&self.config)?;
        params.check_finite()?;
        self.vars.set(params)
    }

    fn params(&self) -> Result<Params> {
        self.vars.get()
    }

    fn forward(&mut self, inputs: &[f32], shape: BatchShape) -> Result<()> {
        let (n, h, w) = (shape.images, shape.height, shape.width);
        let hw = shape.check_inputs(&self.config, inputs)?;
        let c_in = self.config.input_channels;
        self.pass = None;
        self.loss = None;
        let (k, c_total) = (self.config.n_classes, self.config.total_channels());
        let x = Tensor::from_slice(inputs, (n, c_in, h, w), &self.device)?;
        let features = msd_block(
            &self.config,
            &x,
            self.vars.conv_weights.as_tensor(),
            self.vars.conv_biases.as_tensor(),
        )?
        .reshape((n, c_total, hw))?;
        let logits = self
            .vars
            .final_weights
            .as_tensor()
            .broadcast_matmul(&features)?
            .broadcast_add(&self.vars.final_biases.as_tensor().reshape((1, k, 1))?)?;
        let probs = candle_nn::ops::softmax(&logits, 1)?;
        self.pass = Some(Pass { shape, logits, probs });
        Ok(())
    }

    fn probabilities(&mut self, out: &mut [f32]) -> Result<()> {
        let pass = self.pass()?;
        let len = pass.probs.elem_count();
        if out.len() != len {
            return Err(Error::len("probability output", len, out.len()));
        }
        out.copy_from_slice(&pass.probs.flatten_all()?.to_vec1::<f32>()?);
        Ok(())
    }

    fn loss(&mut self, labels: &[u8], loss: &LossConfig) -> Result<LossValue> {
        let pass = self.pass()?;
        let k = self.config.n_classes;
        let px = pass.shape.images * pass.shape.pixels();
        if labels.len() != px {
            return Err(Error::len("label batch", px, labels.len()));
        }
        loss.validate(k)?;
        if let Some(bad) = labels.iter().position(|&l| l as usize >= k) {
            return Err(Error::LabelOutOfRange { label: labels[bad], pixel: bad, n_classes: k });
        }
        // One row of class scores per pixel of the batch, in f64: the loss sums over every pixel,
        // as `loss_and_grad` does in f64.
        let z = pass.logits.transpose(1, 2)?.reshape((px, k))?.to_dtype(DType::F64)?;
        let log_p = candle_nn::ops::log_softmax(&z, 1)?;
        let target = Tensor::from_iter(labels.iter().map(|&l| l as u32), &self.device)?;
        let cross_entropy = match &loss.class_weights {
            None => candle_nn::loss::nll(&log_p, &target)?,
            Some(cw) => {
                // Σ w·CE / Σ w with w = class_weights[label] (PyTorch's weighted mean).
                let wpix: Vec<f64> = labels.iter().map(|&l| cw[l as usize] as f64).collect();
                let total: f64 = wpix.iter().sum();
                let norm = if total > 0.0 { 1.0 / total } else { 0.0 };
                let picked = log_p.gather(&target.unsqueeze(1)?, 1)?.squeeze(1)?;
                (picked * Tensor::from_vec(wpix, px, &self.device)?)?.sum_all()?.affine(-norm, 0.0)?
            }
        };
        // Soft Dice per class over the whole batch: (2·Σ p·y + ε) / (Σ p + Σ y + ε).
        let mut onehot = vec![0.0f64; px * k];
        let mut ysum = vec![0.0f64; k];
        for (row, &l) in onehot.chunks_exact_mut(k).zip(labels) {
            row[l as usize] = 1.0;
            ysum[l as usize] += 1.0;
        }
        let p = log_p.exp()?;
        let onehot = Tensor::from_vec(onehot, (px, k), &self.device)?;
        let inter = (&p * &onehot)?.sum(0)?;
        let denom = (p.sum(0)? + Tensor::from_vec(ysum, k, &self.device)?)?.affine(1.0, DICE_EPS)?;
        let dice = inter.affine(2.0, DICE_EPS)?.div(&denom)?;
        let soft_dice = dice.narrow(0, 1, k - 1)?.mean_all()?;
        let lambda = loss.dice_weight as f64;
        let total = if lambda > 0.0 {
            (&cross_entropy + soft_dice.affine(-lambda, lambda)?)?
        } else {
            cross_entropy.clone()
        };
        let value = LossValue {
            loss: total.to_scalar::<f64>()?,
            cross_entropy: cross_entropy.to_scalar::<f64>()?,
            soft_dice: soft_dice.to_scalar::<f64>()?,
            pixels: px,
        };
        self.loss = Some(total);
        Ok(value)
    }

    fn backward(&mut self) -> Result<()> {
        let loss = self
            .loss
            .as_ref()
            .ok_or(Error::OutOfOrder { op: "backward", needs: "a loss of the last forward pass" })?;
        let mut all = loss.backward()?;
        // Keep the parameters' gradients only: the store also holds one for every intermediate
        // tensor, among them the gradient of all feature channels.
        let mut kept = GradStore::default();
        for var in self.vars.all() {
            if let Some(g) = all.remove(var.as_tensor()) {
                kept.insert(var.as_tensor(), g);
            }
        }
        self.grads = Some(kept);
        Ok(())
    }

    fn gradients(&self) -> Result<Params> {
        let mut out = Params::zeros(&self.config);
        if let Some(grads) = &self.grads {
            for (var, dst) in self.vars.all().into_iter().zip(out.vectors_mut()) {
                if let Some(g) = grads.get(var.as_tensor()) {
                    *dst = g.flatten_all()?.to_vec1::<f32>()?;
                }
            }
        }
        Ok(out)
    }

    fn adam_step(&mut self, adam: &AdamConfig) -> Result<()> {
        self.adam.config = *adam;
        let none = GradStore::default();
        self.adam.step(self.grads.as_ref().unwrap_or(&none))?;
        Ok(())
    }

    fn optimizer_state(&self) -> Result<AdamState> {
        self.adam.state(&self.config)
    }

    fn set_optimizer_state(&mut self, state: &AdamState) -> Result<()> {
        state.m.check_shape(&self.config)?;
        state.v.check_shape(&self.config)?;
        self.adam.set_state(state)
    }
}
