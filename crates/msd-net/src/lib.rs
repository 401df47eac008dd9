//! A mixed-scale dense convolutional network (MSDnet, Pelt & Sethian, PNAS 2018) for CT
//! segmentation, with hand-written dilated-convolution kernels.
//!
//! An MSDnet is a stack of 3×3 dilated convolutions in which every layer reads *all* earlier
//! channels (the input and every earlier layer's output), adds a bias and applies ReLU; a final
//! 1×1 layer reads all channels and gives one logit per class. With width 1 and depth 100 it has
//! about 45 000 parameters and segments bone in CT as well as a U-Net, from few training scans.
//!
//! The crate covers the whole life of such a model:
//!
//! - [`MsdConfig`]: the architecture (depth, width, dilations `1 + (i mod 10)`, input channels —
//!   1 or `2k + 1` for 2.5D slabs — and classes);
//! - [`kernels`]: the CPU forward and backward kernels (AVX-512, AVX2 + FMA or portable, chosen at
//!   run time), inference with bf16 feature maps on AMX or AVX512-BF16 ([`kernels::Bf16Forward`],
//!   chosen by [`Precision`]), and the naive reference loops they are tested against;
//! - [`Backend`] / [`CpuBackend`]: the kernel-level operations of training and inference behind
//!   one trait, with streamed segmentation of whole stacks of slices ([`Backend::segment_slices`],
//!   [`InferenceOptions`]), so that the GPU backend (`cuda::CudaBackend`, feature `cuda`) plugs
//!   into the same training loop and inference;
//! - the candle integration and the test oracle (one module, `src/candle/`, re-exported here):
//!   [`msd_block`] / [`MsdBlockOp`], the 3×3 block as a candle custom op whose forward and
//!   backward call the kernels, so a model can train through candle's autograd and optimisers;
//!   [`CandleBackend`], the same [`Backend`] run entirely through candle (parameters as `Var`s,
//!   [`msd_block`] plus candle's final layer, softmax and loss, `loss.backward()` and Adam on the
//!   variables); and [`CandleMsd`], the network composed from candle's `conv2d` alone, the oracle
//!   the kernels are tested against and the baseline they are benchmarked against;
//! - [`train`]: seeded training with Adam, augmentation, class weights or a Dice term,
//!   validation, best-checkpoint keeping, early stopping, a time budget and resumable checkpoints,
//!   reporting progress through a callback, run by the kernels directly or through candle's
//!   autograd ([`Engine`]);
//! - [`Device`]: where training and inference run (the CPU, a CUDA GPU or `auto`), resolved once
//!   into a [`ResolvedDevice`] that says why; the same API with and without the `cuda` feature;
//! - [`Model`]: weights + [`Normalization`] + class names + the pixel spacing it was trained at +
//!   provenance, saved as one safetensors file; [`Model::segment`] applies it to a whole CT volume
//!   slice by slice in parallel, resampling to the model's spacing and back, optionally fusing
//!   axial, coronal and sagittal passes ([`Model::segment_with`]);
//! - [`snap_to_iso`]: for models trained on threshold-defined labels, the boundary placed on the
//!   scan's own iso-surface near the network's boundary, weighed by the scan's measured noise
//!   ([`estimate_noise_hu`]), so that a clean scan gets the definition's boundary exactly.
//!
//! # Memory layouts
//!
//! These layouts are fixed; the CPU and CUDA kernels and the model file share them.
//!
//! - **Feature buffer** (one per image): `[C_total][H][W]` `f32`, contiguous, with
//!   `C_total = input_channels + depth · width`. Channels `0..input_channels` hold the normalised
//!   input, then layer 0's `width` outputs, then layer 1's, and so on. The gradient buffer of the
//!   backward pass has the same layout.
//! - **Layer `i`** (0-based) reads channels `0..input_channels + i·width` and writes the next
//!   `width` channels. Its dilation is `d_i = dilations[i]`.
//! - **3×3 weights**: all layers concatenated in layer order in one flat vector
//!   ([`Params::conv_weights`]); layer `i` is the contiguous block
//!   `[width][input_channels + i·width][3][3]` (row-major: output channel, input channel, `ky`,
//!   `kx`) at [`MsdConfig::weight_offset`]`(i)`. Tap `(ky, kx)` multiplies the input at
//!   `(y + (ky − 1)·d_i, x + (kx − 1)·d_i)`.
//! - **Borders**: numpy's `symmetric` mirroring, the edge pixel repeated (`−1 → 0`, `−2 → 1`,
//!   `n → n − 1`, `n + 1 → n − 2`), reflecting again (period `2n`) for dilations larger than the
//!   image ([`kernels::reflect`]). The backward pass is the exact adjoint.
//! - **Biases**: one flat vector `[depth · width]` ([`Params::conv_biases`]).
//! - **Final 1×1 layer**: weights `[n_classes][C_total]`, biases `[n_classes]`; softmax over
//!   classes; (optionally class-weighted) cross-entropy plus an optional soft Dice term
//!   ([`LossConfig`]).
//! - **Batches** handed to a [`Backend`]: inputs `[images][input_channels][H][W]`, labels
//!   `[images][H][W]` (`u8` class indices), probabilities `[images][n_classes][H][W]`.
//!
//! # Example
//!
//! ```
//! use msd_io::{Geometry, Volume};
//! use msd_net::{Model, MsdConfig, Normalization, SegmentOptions};
//! use ndarray::Array3;
//!
//! // A small untrained network (depth 4) applied to a 3-slice volume.
//! let model = Model::new(MsdConfig::new(4, 1, 1, 2), Normalization::default(), 42)?;
//! let ct = Volume::new(Array3::<f32>::from_elem((3, 20, 24), -1000.0), Geometry::default())?;
//! let seg = model.segment(&ct)?; // on the scan's own grid, labels only
//! assert_eq!(seg.labels.shape(), [3, 20, 24]);
//! let with_probs = model.segment_with(&ct, &SegmentOptions::default().with_probabilities(true), |_, _| {})?;
//! assert_eq!(with_probs.probabilities.len(), 2);
//!
//! // Save and load (safetensors with JSON metadata, written atomically).
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("skull.safetensors");
//! model.save(&path)?;
//! assert_eq!(Model::load(&path)?, model);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

mod augment;
mod backend;
mod boundary;
mod candle;
mod config;
mod cpu;
#[cfg(feature = "cuda")]
pub mod cuda;
mod dataset;
mod device;
mod error;
mod infer;
pub mod kernels;
mod loss;
mod model;
mod normalization;
mod params;
mod resample;
mod schedule;
mod train;

pub use augment::{Augmentation, add_correlated_noise};
pub use backend::{AdamConfig, AdamState, Backend, BatchShape, FeatureStorage, InferenceOptions};
pub use boundary::{DEFAULT_BAND_VOXELS, MIN_NOISE_HU, estimate_noise_hu, snap_to_iso};
pub use candle::{CandleBackend, CandleMsd, MsdBlockOp, msd_block, symmetric_pad};
pub use config::MsdConfig;
pub use cpu::CpuBackend;
pub use dataset::{Dataset, SliceRef};
pub use device::{Device, ParseDeviceError, ResolvedDevice};
pub use error::{Error, Result};
pub use infer::{IsoSnap, SegmentOptions, Segmentation, SliceAxis};
pub use kernels::Precision;
pub use loss::{LossConfig, LossValue};
pub use model::{MODEL_FORMAT_VERSION, Model};
pub use normalization::Normalization;
pub use params::Params;
pub use resample::{gaussian_blur, resample_in_plane};
pub use schedule::LrSchedule;
pub use train::{
    Engine, EpochStats, StopReason, TrainConfig, TrainOutcome, TrainProgress, train, train_with_backend,
};
