//! The seam between the training loop and the hardware: a [`Backend`] runs the network's
//! kernel-level operations on a batch and keeps the parameters, gradients and optimiser state
//! wherever its device wants them, and streams whole stacks of slices through the network for
//! inference. [`crate::CpuBackend`] is the CPU implementation, `cuda::CudaBackend` (feature
//! `cuda`) the GPU one, [`crate::CandleBackend`] the one through candle's autograd.
use std::borrow::Cow;

use msd_io::{LabelVolume, Volume};
use ndarray::Array3;
use serde::{Deserialize, Serialize};

use crate::train::argmax;
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

/// How feature maps are stored while streaming slices through [`Backend::segment_slices`].
/// Arithmetic is always f32; reduced precision halves the memory traffic of inference and is not
/// offered for training.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum FeatureStorage {
    /// 32-bit floats (training and exact inference); every backend.
    #[default]
    F32,
    /// IEEE half precision (the CUDA backend).
    F16,
    /// bfloat16 (the CUDA backend).
    Bf16,
}

/// How [`Backend::segment_slices`] streams a stack of slices: [`InferenceOptions::default`] and
/// the `with_` methods.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct InferenceOptions {
    /// Slices per batch (one forward pass, on a GPU one launch per layer, covers the batch); at
    /// least 1. 8 slices of 512² in f32 take about 0.9 GB of feature maps at depth 100.
    pub batch: usize,
    /// Feature-map storage (default f32). Backends that offer only f32 refuse the others with
    /// [`Error::UnsupportedStorage`].
    pub storage: FeatureStorage,
}

impl Default for InferenceOptions {
    /// Batches of 8 slices, f32 feature maps.
    fn default() -> Self {
        InferenceOptions { batch: 8, storage: FeatureStorage::F32 }
    }
}

impl InferenceOptions {
    /// Returns the options with `batch` slices per batch.
    pub fn with_batch(mut self, batch: usize) -> Self {
        self.batch = batch;
        self
    }

    /// Returns the options with feature maps stored as `storage`.
    pub fn with_storage(mut self, storage: FeatureStorage) -> Self {
        self.storage = storage;
        self
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
/// inference is [`Backend::forward`] → [`Backend::probabilities`], or for a whole stack of slices
/// [`Backend::segment_slices`] (a backend may overlap transfers with compute there, as the CUDA one
/// does) and [`Backend::segment_volume`]. Inputs are normalised images
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

    /// The arg-max class of every pixel of `shape.images` slices `[images][input_channels][h][w]`,
    /// `[images][h][w]`, the slices run in batches of at most `options.batch`.
    ///
    /// The provided method runs [`Backend::forward`] and [`Backend::probabilities`] batch by batch
    /// (f32 only); a backend overrides it to stream (the CUDA one overlaps the copies of one batch
    /// with the kernels of the next and offers reduced-precision feature maps). The state of the
    /// last forward pass is that of the last batch afterwards.
    ///
    /// # Errors
    /// As [`BatchShape::check_inputs`]; [`Error::InvalidValue`] for a batch of 0 slices;
    /// [`Error::UnsupportedStorage`] for a storage this backend does not offer; the errors of
    /// [`Backend::forward`].
    fn segment_slices(
        &mut self,
        inputs: &[f32],
        shape: BatchShape,
        options: InferenceOptions,
    ) -> Result<Vec<u8>> {
        let hw = shape.check_inputs(self.config(), inputs)?;
        if options.batch == 0 {
            return Err(Error::InvalidValue {
                name: "InferenceOptions::batch",
                value: 0.0,
                expected: "at least 1 slice",
            });
        }
        if options.storage != FeatureStorage::F32 {
            return Err(Error::UnsupportedStorage { backend: self.name(), storage: options.storage });
        }
        let (k, per_slice) = (self.config().n_classes, self.config().input_channels * hw);
        let mut labels = vec![0u8; shape.images * hw];
        let mut probs = Vec::new();
        for first in (0..shape.images).step_by(options.batch) {
            let count = options.batch.min(shape.images - first);
            self.forward(
                &inputs[first * per_slice..(first + count) * per_slice],
                BatchShape { images: count, ..shape },
            )?;
            probs.resize(count * k * hw, 0.0);
            self.probabilities(&mut probs)?;
            let out = &mut labels[first * hw..(first + count) * hw];
            for (i, slice) in out.chunks_mut(hw).enumerate() {
                let p = &probs[i * k * hw..(i + 1) * k * hw];
                for (px, label) in slice.iter_mut().enumerate() {
                    *label = argmax((0..k).map(|c| p[c * hw + px])) as u8;
                }
            }
        }
        Ok(labels)
    }

    /// Segments a volume slice by slice along z with [`Backend::segment_slices`]; the labels keep the
    /// volume's geometry. The values reach the network as they are: normalise them first (or give
    /// the CUDA backend an input normalisation).
    ///
    /// # Errors
    /// [`Error::InvalidValue`] when the network reads more than one channel per slice (a 2.5D model
    /// needs [`Model::segment_with`](crate::Model::segment_with)); otherwise as
    /// [`Backend::segment_slices`].
    fn segment_volume(&mut self, volume: &Volume<f32>, options: InferenceOptions) -> Result<LabelVolume> {
        let channels = self.config().input_channels;
        if channels != 1 {
            return Err(Error::InvalidValue {
                name: "input channels of a network that segments a volume slice by slice",
                value: channels as f64,
                expected: "1",
            });
        }
        let [nz, ny, nx] = volume.shape();
        let data = volume.data().as_standard_layout();
        let values: Cow<'_, [f32]> = match data.as_slice() {
            Some(v) => Cow::Borrowed(v),
            None => Cow::Owned(data.iter().copied().collect()),
        };
        let labels =
            self.segment_slices(&values, BatchShape { images: nz, height: ny, width: nx }, options)?;
        let found = labels.len();
        let array = Array3::from_shape_vec((nz, ny, nx), labels).map_err(|_| Error::ShapeMismatch {
            op: "segment_volume (labels and volume)",
            lhs: vec![nz, ny, nx],
            rhs: vec![found],
        })?;
        Ok(volume.with_data(array)?)
    }
}

#[cfg(test)]
mod tests {
    use msd_io::{Geometry, Volume};
    use ndarray::Array3;

    use super::*;
    use crate::CpuBackend;

    fn backend() -> CpuBackend {
        let config = MsdConfig::new(4, 1, 1, 3);
        let mut b = CpuBackend::new(&config).unwrap();
        b.set_params(&Params::init(&config, 5).unwrap()).unwrap();
        b
    }

    fn slices(n: usize, h: usize, w: usize) -> Vec<f32> {
        (0..n * h * w).map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0).collect()
    }

    #[test]
    fn streamed_slices_are_the_arg_max_of_one_forward_pass_for_any_batch() {
        let mut b = backend();
        let shape = BatchShape { images: 7, height: 9, width: 11 };
        let input = slices(7, 9, 11);
        b.forward(&input, shape).unwrap();
        let (k, hw) = (3, 99);
        let mut probs = vec![0.0; 7 * k * hw];
        b.probabilities(&mut probs).unwrap();
        let want: Vec<u8> = (0..7 * hw)
            .map(|q| {
                let (i, p) = (q / hw, q % hw);
                argmax((0..k).map(|c| probs[(i * k + c) * hw + p])) as u8
            })
            .collect();
        for batch in [1, 3, 7, 16] {
            let opts = InferenceOptions::default().with_batch(batch);
            assert_eq!(b.segment_slices(&input, shape, opts).unwrap(), want, "batch {batch}");
        }
    }

    #[test]
    fn segment_volume_keeps_the_geometry() {
        let mut b = backend();
        let g = Geometry::new([0.5, 0.7, 2.0], [1.0, 2.0, 3.0], Geometry::IDENTITY).unwrap();
        let data = Array3::from_shape_vec((4, 9, 11), slices(4, 9, 11)).unwrap();
        let volume = Volume::new(data, g).unwrap();
        let labels = b.segment_volume(&volume, InferenceOptions::default()).unwrap();
        assert_eq!(labels.shape(), [4, 9, 11]);
        assert_eq!(labels.geometry(), volume.geometry());
        let shape = BatchShape { images: 4, height: 9, width: 11 };
        let direct = b.segment_slices(&slices(4, 9, 11), shape, InferenceOptions::default()).unwrap();
        assert_eq!(labels.data().as_standard_layout().as_slice().unwrap(), &direct[..]);
    }

    #[test]
    fn what_a_backend_cannot_stream_is_a_typed_error() {
        let mut b = backend();
        let shape = BatchShape { images: 2, height: 3, width: 4 };
        let input = slices(2, 3, 4);
        let zero = InferenceOptions::default().with_batch(0);
        assert!(matches!(b.segment_slices(&input, shape, zero), Err(Error::InvalidValue { .. })));
        let f16 = InferenceOptions::default().with_storage(FeatureStorage::F16);
        match b.segment_slices(&input, shape, f16) {
            Err(Error::UnsupportedStorage { backend, storage }) => {
                assert!(backend.starts_with("cpu"), "{backend}");
                assert_eq!(storage, FeatureStorage::F16);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            b.segment_slices(&input[1..], shape, InferenceOptions::default()),
            Err(Error::BufferLength { .. })
        ));
        let slab = MsdConfig::new(2, 1, 3, 2);
        let mut three = CpuBackend::new(&slab).unwrap();
        let volume = Volume::new(Array3::<f32>::zeros((2, 3, 4)), Geometry::default()).unwrap();
        assert!(matches!(
            three.segment_volume(&volume, InferenceOptions::default()),
            Err(Error::InvalidValue { .. })
        ));
    }
}
