//! The training loop: seeded sampling and augmentation, Adam, validation, best-checkpoint keeping,
//! early stopping, time budget and resumable checkpoints, over any [`Backend`].
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::augment::training_sample;
use crate::dataset::SliceRef;
use crate::model::{read_checkpoint, write_checkpoint};
use crate::{
    AdamConfig, Augmentation, Backend, BatchShape, CpuBackend, Dataset, Device, Error, LossConfig,
    LrSchedule, Model, MsdConfig, Normalization, Result,
};

/// Everything that controls a training run.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    /// The architecture to train (its `input_channels` must match the dataset's).
    pub network: MsdConfig,
    /// Maximum number of epochs (one epoch = every training slice once).
    pub epochs: usize,
    /// Stop after this much wall time (checked after every batch; the epoch is then closed with a
    /// validation pass).
    pub time_budget: Option<Duration>,
    /// Images per optimiser step.
    pub batch_size: usize,
    /// Side of the random square crops taken from slices (`None`: whole slices, which must then
    /// all have one shape). Clamped to the smallest slice.
    pub patch_size: Option<usize>,
    /// Adam hyper-parameters (lr 1e-3).
    pub adam: AdamConfig,
    /// How the learning rate changes over the run (constant by default).
    pub lr_schedule: LrSchedule,
    /// Seed for initialisation, the validation split, sampling and augmentation: the same seed
    /// (and thread-independent kernels) give the same model twice.
    pub seed: u64,
    /// Augmentation switches.
    pub augmentation: Augmentation,
    /// Class weights and Dice term.
    pub loss: LossConfig,
    /// Fraction of slices held back for validation (0 disables validation; the last model is
    /// returned).
    pub validation_fraction: f32,
    /// Stop when the validation loss has not improved for this many epochs.
    pub early_stopping_patience: Option<usize>,
    /// Checkpoint file, written atomically after every epoch; if it exists when training starts,
    /// training resumes from it.
    pub checkpoint: Option<PathBuf>,
    /// HU window of the input normalisation.
    pub window_hu: [f32; 2],
    /// Class names stored in the model (`None`: `background`, `class1`, ...).
    pub class_names: Option<Vec<String>>,
    /// What runs the training steps.
    pub engine: Engine,
    /// Where [`train`] runs them: the CPU (the default), a CUDA GPU (with [`Engine::Kernels`]
    /// only: candle's autograd runs on the CPU here) or [`Device::Auto`].
    pub device: Device,
}

/// What runs the training steps of [`train`]. Both use the same kernels and give the same model
/// up to rounding (tested to 1e-5).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Engine {
    /// [`CpuBackend`]: the kernels called directly, flat parameter buffers (the fastest).
    #[default]
    Kernels,
    /// [`crate::CandleBackend`]: parameters as candle `Var`s, the block as a candle custom op,
    /// gradients from candle's autograd.
    Candle,
}

impl Default for TrainConfig {
    /// Default network, 50 epochs, batch 4, 128² crops, Adam 1e-3, seed 0, default augmentation,
    /// plain cross-entropy, 10 % validation, patience 10, no checkpoint.
    fn default() -> Self {
        TrainConfig {
            network: MsdConfig::default(),
            epochs: 50,
            time_budget: None,
            batch_size: 4,
            patch_size: Some(128),
            adam: AdamConfig::default(),
            lr_schedule: LrSchedule::Constant,
            seed: 0,
            augmentation: Augmentation::default(),
            loss: LossConfig::default(),
            validation_fraction: 0.1,
            early_stopping_patience: Some(10),
            checkpoint: None,
            window_hu: Normalization::DEFAULT_WINDOW_HU,
            class_names: None,
            engine: Engine::Kernels,
            device: Device::Cpu,
        }
    }
}

/// Statistics of one finished epoch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EpochStats {
    /// Epoch index (0-based).
    pub epoch: usize,
    /// Mean training loss over the epoch's batches.
    pub train_loss: f64,
    /// Mean validation loss over the held-back slices (whole slices, no augmentation).
    pub validation_loss: Option<f64>,
    /// Dice of the arg-max segmentation on the held-back slices (mean over foreground classes).
    pub validation_dice: Option<f64>,
    /// Wall time of the epoch in seconds (training and validation).
    pub seconds: f64,
}

/// A progress report, sent after every batch and at the end of every epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainProgress {
    /// Current epoch (0-based).
    pub epoch: usize,
    /// Maximum number of epochs.
    pub epochs: usize,
    /// Batches done in this epoch.
    pub batch: usize,
    /// Batches per epoch.
    pub batches: usize,
    /// Loss of the last batch.
    pub batch_loss: f64,
    /// Wall time since training (or resuming) started.
    pub elapsed: Duration,
    /// Set on the report that closes an epoch.
    pub epoch_done: Option<EpochStats>,
}

/// Why training ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StopReason {
    /// All epochs ran.
    Epochs,
    /// The time budget ran out.
    TimeBudget,
    /// The validation loss stopped improving.
    EarlyStopping,
}

/// The result of a training run.
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    /// The model with the best validation loss (the last one without validation).
    pub model: Model,
    /// One entry per finished epoch (including epochs before a resume).
    pub history: Vec<EpochStats>,
    /// Epoch of the returned model.
    pub best_epoch: Option<usize>,
    /// Why training ended.
    pub stop_reason: StopReason,
    /// Optimiser steps taken in all.
    pub steps: u64,
}

/// What a checkpoint remembers besides tensors.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TrainState {
    epochs_done: usize,
    history: Vec<EpochStats>,
    best_loss: Option<f64>,
    best_epoch: Option<usize>,
    since_best: usize,
    steps: u64,
}

impl TrainConfig {
    /// Checks the options against each other and against the dataset.
    pub fn validate(&self, dataset: &Dataset) -> Result<()> {
        self.network.validate()?;
        self.loss.validate(self.network.n_classes)?;
        self.augmentation.validate()?;
        self.lr_schedule.validate()?;
        let bad = |what: String| Err(Error::InvalidTrainConfig { what });
        if self.network.input_channels != dataset.input_channels() {
            return bad(format!(
                "network reads {} channels, dataset gives {}",
                self.network.input_channels,
                dataset.input_channels()
            ));
        }
        if dataset.n_classes() > self.network.n_classes {
            return bad(format!(
                "labels hold {} classes, network has {}",
                dataset.n_classes(),
                self.network.n_classes
            ));
        }
        if self.batch_size == 0 || self.epochs == 0 {
            return bad(format!(
                "batch size {} and epochs {} must be positive",
                self.batch_size, self.epochs
            ));
        }
        if !(0.0..1.0).contains(&self.validation_fraction) {
            return bad(format!("validation fraction {} is not in [0, 1)", self.validation_fraction));
        }
        if self.patch_size == Some(0) {
            return bad("patch size 0".into());
        }
        if let Some(names) = &self.class_names
            && names.len() != self.network.n_classes
        {
            return bad(format!("{} class names for {} classes", names.len(), self.network.n_classes));
        }
        if dataset.cases() == 0 {
            return bad("the dataset is empty".into());
        }
        Ok(())
    }
}

/// Trains an MSDnet with the backend of [`TrainConfig::engine`] on [`TrainConfig::device`]; see
/// [`train_with_backend`].
///
/// # Errors
/// As [`train_with_backend`]; [`Error::CudaNotBuilt`] / [`Error::CudaUnavailable`] when the device is
/// a GPU this build or machine cannot use; [`Error::InvalidTrainConfig`] for [`Engine::Candle`] on a
/// GPU.
pub fn train(
    dataset: &Dataset,
    config: &TrainConfig,
    progress: impl FnMut(&TrainProgress),
) -> Result<TrainOutcome> {
    let device = config.device.resolve()?.device();
    match (config.engine, device) {
        (Engine::Kernels, Device::Cuda(ordinal)) => train_on_cuda(ordinal, dataset, config, progress),
        (Engine::Candle, Device::Cuda(_)) => Err(Error::InvalidTrainConfig {
            what: format!(
                "the candle engine runs on the CPU only; use the kernels engine on {device}, or the CPU"
            ),
        }),
        (Engine::Kernels, _) => {
            train_with_backend(&mut CpuBackend::new(&config.network)?, dataset, config, progress)
        }
        (Engine::Candle, _) => {
            train_with_backend(&mut crate::CandleBackend::new(&config.network)?, dataset, config, progress)
        }
    }
}

/// [`train`] on CUDA GPU `ordinal` with the hand-written CUDA kernels.
#[cfg(feature = "cuda")]
fn train_on_cuda(
    ordinal: usize,
    dataset: &Dataset,
    config: &TrainConfig,
    progress: impl FnMut(&TrainProgress),
) -> Result<TrainOutcome> {
    let mut backend = crate::cuda::CudaBackend::new(ordinal, &config.network)?;
    train_with_backend(&mut backend, dataset, config, progress)
}

/// Without the `cuda` feature a GPU never resolves; kept so [`train`] reads the same in both builds.
#[cfg(not(feature = "cuda"))]
fn train_on_cuda(
    ordinal: usize,
    _dataset: &Dataset,
    _config: &TrainConfig,
    _progress: impl FnMut(&TrainProgress),
) -> Result<TrainOutcome> {
    Err(Error::CudaNotBuilt { device: Device::Cuda(ordinal) })
}

/// Splits the dataset's slices into (training, validation) with the seed.
fn split(dataset: &Dataset, config: &TrainConfig) -> (Vec<SliceRef>, Vec<SliceRef>) {
    let mut all = dataset.slices();
    let mut rng = StdRng::seed_from_u64(config.seed ^ 0x5151_7a1d);
    all.shuffle(&mut rng);
    let n_val = if config.validation_fraction > 0.0 && all.len() >= 2 {
        ((all.len() as f64 * config.validation_fraction as f64).round() as usize).clamp(1, all.len() - 1)
    } else {
        0
    };
    let mut val = all.split_off(all.len() - n_val);
    val.sort_by_key(|s| (s.case, s.z));
    (all, val)
}

/// Trains an MSDnet on any [`Backend`], reporting through `progress`.
pub fn train_with_backend<B: Backend + ?Sized>(
    backend: &mut B,
    dataset: &Dataset,
    config: &TrainConfig,
    mut progress: impl FnMut(&TrainProgress),
) -> Result<TrainOutcome> {
    config.validate(dataset)?;
    let start = Instant::now();
    let normalization = Normalization::from_volumes(dataset.volumes(), config.window_hu)?;
    let mut model = Model::new(config.network.clone(), normalization, config.seed)?;
    if let Some(names) = &config.class_names {
        model.class_names = names.clone();
    }
    // Labels that follow a threshold through the augmentation are defined by it: segmenting then
    // places the boundary on that iso-surface.
    model.label_iso_hu = config.augmentation.threshold_labels_hu;
    // The spacing inference resamples to when asked: the middle (geometric mean) of the trained
    // range, or the data's own.
    model.pixel_spacing_mm = match config.augmentation.pixel_spacing_mm {
        Some([lo, hi]) => [(lo * hi).sqrt(); 2],
        None => dataset.pixel_spacing_mm().unwrap_or([1.0, 1.0]),
    };
    // The pixel sizes it has seen: the augmentation's range, or the data's own widened by the zoom
    // jitter. Scans outside it are resampled into it when segmenting.
    // Rounded to a micrometre: the file's JSON then holds short decimals that read back exactly.
    let jitter = f64::from(config.augmentation.scale_range);
    let um = |v: f64| (v * 1e3).round() / 1e3;
    model.trained_pixel_range_mm = match config.augmentation.pixel_spacing_mm {
        Some([lo, hi]) => Some([lo * (1.0 - jitter), hi * (1.0 + jitter)]),
        None => {
            dataset.pixel_spacing_mm().map(|[a, b]| [a.min(b) * (1.0 - jitter), a.max(b) * (1.0 + jitter)])
        }
    }
    .map(|[lo, hi]| [um(lo), um(hi)]);
    let (train_set, val_set) = split(dataset, config);
    if train_set.is_empty() {
        return Err(Error::InvalidTrainConfig {
            what: "no training slices after the validation split".into(),
        });
    }
    let min_h = train_set.iter().map(|s| dataset.slice_shape(*s).0).min().unwrap_or(1);
    let min_w = train_set.iter().map(|s| dataset.slice_shape(*s).1).min().unwrap_or(1);
    let (ch, cw) = match config.patch_size {
        Some(p) => (p.min(min_h), p.min(min_w)),
        None => {
            if train_set.iter().any(|s| dataset.slice_shape(*s) != (min_h, min_w)) {
                return Err(Error::InvalidTrainConfig {
                    what: "slices differ in shape: set a patch size to train on crops".into(),
                });
            }
            (min_h, min_w)
        }
    };

    let mut state = TrainState {
        epochs_done: 0,
        history: Vec::new(),
        best_loss: None,
        best_epoch: None,
        since_best: 0,
        steps: 0,
    };
    let mut best = model.params.clone();
    backend.set_params(&model.params)?;
    if let Some(path) = config.checkpoint.as_ref().filter(|p| p.exists()) {
        let (saved, saved_best, adam, json) = read_checkpoint(path)?;
        if saved.config != config.network {
            return Err(Error::Metadata {
                path: path.clone(),
                what: "checkpoint was written for another network configuration".into(),
            });
        }
        state = serde_json::from_str(&json)
            .map_err(|e| Error::Metadata { path: path.clone(), what: format!("train state: {e}") })?;
        model.normalization = saved.normalization;
        model.params = saved.params;
        best = saved_best;
        backend.set_params(&model.params)?;
        backend.set_optimizer_state(&adam)?;
    }

    let c_in = config.network.input_channels;
    let batches = train_set.len().div_ceil(config.batch_size);
    let aug = config.augmentation;
    let mut stop_reason = StopReason::Epochs;
    if state.epochs_done >= config.epochs {
        stop_reason = StopReason::Epochs;
    }
    for epoch in state.epochs_done..config.epochs {
        let epoch_start = Instant::now();
        let mut rng = StdRng::seed_from_u64(
            config.seed.wrapping_add((epoch as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
        );
        let mut order = train_set.clone();
        order.shuffle(&mut rng);
        let mut loss_sum = 0.0;
        let mut done = 0;
        let mut out_of_time = false;
        for (b, chunk) in order.chunks(config.batch_size).enumerate() {
            let mut inputs = Vec::with_capacity(chunk.len() * c_in * ch * cw);
            let mut labels = Vec::with_capacity(chunk.len() * ch * cw);
            for s in chunk {
                let (x, l) = training_sample(dataset, *s, (ch, cw), &aug, &model.normalization, &mut rng);
                inputs.extend(x);
                labels.extend(l);
            }
            let shape = BatchShape { images: chunk.len(), height: ch, width: cw };
            backend.forward(&inputs, shape)?;
            let lv = backend.loss(&labels, &config.loss)?;
            if !lv.loss.is_finite() {
                return Err(Error::Diverged { epoch, step: state.steps });
            }
            backend.backward()?;
            let total_steps = (config.epochs * batches) as u64;
            let lr = config.lr_schedule.rate(config.adam.lr, state.steps, total_steps);
            backend.adam_step(&AdamConfig { lr, ..config.adam })?;
            state.steps += 1;
            loss_sum += lv.loss;
            done += 1;
            progress(&TrainProgress {
                epoch,
                epochs: config.epochs,
                batch: b + 1,
                batches,
                batch_loss: lv.loss,
                elapsed: start.elapsed(),
                epoch_done: None,
            });
            if config.time_budget.is_some_and(|t| start.elapsed() >= t) {
                out_of_time = true;
                break;
            }
        }
        let (val_loss, val_dice) = if val_set.is_empty() {
            (None, None)
        } else {
            let (l, d) = evaluate(backend, dataset, &val_set, &model.normalization, &config.loss)?;
            (Some(l), Some(d))
        };
        let stats = EpochStats {
            epoch,
            train_loss: loss_sum / done.max(1) as f64,
            validation_loss: val_loss,
            validation_dice: val_dice,
            seconds: epoch_start.elapsed().as_secs_f64(),
        };
        state.history.push(stats);
        state.epochs_done = epoch + 1;
        model.params = backend.params()?;
        let improved = match (val_loss, state.best_loss) {
            (None, _) => true,
            (Some(v), None) => v.is_finite(),
            (Some(v), Some(b)) => v < b,
        };
        if improved {
            state.best_loss = val_loss;
            state.best_epoch = Some(epoch);
            state.since_best = 0;
            best = model.params.clone();
        } else {
            state.since_best += 1;
        }
        if let Some(path) = &config.checkpoint {
            let json = serde_json::to_string(&state)
                .map_err(|e| Error::Metadata { path: path.clone(), what: e.to_string() })?;
            write_checkpoint(path, &model, &best, &backend.optimizer_state()?, json)?;
        }
        progress(&TrainProgress {
            epoch,
            epochs: config.epochs,
            batch: done,
            batches,
            batch_loss: stats.train_loss,
            elapsed: start.elapsed(),
            epoch_done: Some(stats),
        });
        if out_of_time {
            stop_reason = StopReason::TimeBudget;
            break;
        }
        if config.early_stopping_patience.is_some_and(|p| state.since_best >= p) {
            stop_reason = StopReason::EarlyStopping;
            break;
        }
    }
    model.params = best;
    let p = &mut model.provenance;
    p.insert("backend".into(), backend.name());
    p.insert("epochs_run".into(), state.epochs_done.to_string());
    p.insert("steps".into(), state.steps.to_string());
    p.insert("seed".into(), config.seed.to_string());
    p.insert("learning_rate".into(), format!("{} ({:?})", config.adam.lr, config.lr_schedule));
    p.insert("training_slices".into(), train_set.len().to_string());
    p.insert("validation_slices".into(), val_set.len().to_string());
    p.insert("crop".into(), format!("{ch}x{cw}"));
    // Serialising plain numbers and booleans cannot fail; an empty string would only lose a note.
    p.insert("augmentation".into(), serde_json::to_string(&config.augmentation).unwrap_or_default());
    if let Some(e) = state.best_epoch {
        p.insert("best_epoch".into(), e.to_string());
        if let Some(s) = state.history.iter().find(|s| s.epoch == e) {
            p.insert("train_loss".into(), format!("{:.6}", s.train_loss));
            if let (Some(l), Some(d)) = (s.validation_loss, s.validation_dice) {
                p.insert("validation_loss".into(), format!("{l:.6}"));
                p.insert("validation_dice".into(), format!("{d:.5}"));
            }
        }
    }
    Ok(TrainOutcome {
        model,
        history: state.history,
        best_epoch: state.best_epoch,
        stop_reason,
        steps: state.steps,
    })
}

/// Mean loss and foreground Dice of the arg-max prediction over whole slices (no augmentation).
fn evaluate<B: Backend + ?Sized>(
    backend: &mut B,
    dataset: &Dataset,
    slices: &[SliceRef],
    normalization: &Normalization,
    loss: &LossConfig,
) -> Result<(f64, f64)> {
    let k = backend.config().n_classes;
    let mut inter = vec![0u64; k];
    let mut total = vec![0u64; k];
    let mut loss_sum = 0.0;
    for s in slices {
        let (h, w) = dataset.slice_shape(*s);
        let (mut x, l) = dataset.crop(*s, 0, 0, h, w);
        x.iter_mut().for_each(|v| *v = normalization.apply(*v));
        backend.forward(&x, BatchShape { images: 1, height: h, width: w })?;
        loss_sum += backend.loss(&l, loss)?.loss;
        let mut probs = vec![0.0; k * h * w];
        backend.probabilities(&mut probs)?;
        for (p, &lab) in l.iter().enumerate() {
            let pred = argmax((0..k).map(|c| probs[c * h * w + p]));
            total[pred] += 1;
            total[lab as usize] += 1;
            if pred == lab as usize {
                inter[pred] += 2;
            }
        }
    }
    let dice: Vec<f64> =
        (1..k).map(|c| if total[c] == 0 { 1.0 } else { inter[c] as f64 / total[c] as f64 }).collect();
    Ok((loss_sum / slices.len() as f64, dice.iter().sum::<f64>() / dice.len() as f64))
}

/// Index of the largest value (the first on ties).
pub(crate) fn argmax(values: impl Iterator<Item = f32>) -> usize {
    let mut best = (0, f32::NEG_INFINITY);
    for (i, v) in values.enumerate() {
        if v > best.1 {
            best = (i, v);
        }
    }
    best.0
}

#[cfg(test)]
mod tests {
    use msd_io::{Geometry, Volume};
    use ndarray::Array3;

    use super::*;

    #[test]
    fn bad_augmentation_amounts_fail_the_training_config() {
        let ct = Array3::from_shape_fn((3, 30, 30), |(z, y, x)| (z * 100 + y * 3 + x) as f32 - 500.0);
        let lb = Array3::from_shape_fn((3, 30, 30), |(_, y, x)| u8::from((y + x) % 7 == 0));
        let g = Geometry::default();
        let mut d = Dataset::new(3).unwrap();
        d.add(&Volume::new(ct, g).unwrap(), &Volume::new(lb, g).unwrap()).unwrap();
        let config = TrainConfig {
            network: MsdConfig::new(2, 1, 3, 2),
            augmentation: Augmentation { hu_offset: -1.0, ..Augmentation::default() },
            ..TrainConfig::default()
        };
        assert!(matches!(config.validate(&d), Err(Error::InvalidTrainConfig { .. })));
        let config = TrainConfig { network: MsdConfig::new(2, 1, 3, 2), ..TrainConfig::default() };
        assert!(config.validate(&d).is_ok());
    }
}
