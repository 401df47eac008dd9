//! The MSDnet on NVIDIA GPUs: hand-written CUDA kernels, compiled at run time by NVRTC for the device
//! found, behind safe Rust wrappers (feature `cuda`).
//!
//! Building needs no CUDA toolkit: `cudarc` loads `libcuda` and `libnvrtc` when the program runs, and
//! [`CudaDevice::new`] answers [`Error::CudaUnavailable`] (or [`Error::NvrtcUnavailable`]) on a machine
//! without them instead of panicking.
//!
//! The layouts are those of the CPU path: feature buffer `[images][c_total][h][w]` (input channels, then
//! each layer's outputs in order), 3×3 weights `[width][c_in + i·width][3][3]` per layer, concatenated,
//! biases `[depth·width]`, head `[n_classes][c_total]` and `[n_classes]` (see [`crate::Params`]).
//!
//! Kernels (`*.cu` beside this file, one per family, `common.cuh` shared):
//! - `conv_forward.cu`: dilated 3×3 over all earlier channels + bias + ReLU; 32×32 output tiles, each
//!   thread 4 pixels × up to 4 output channels, input channels staged in shared memory with the mirrored
//!   halo; batched over images; f32, f16 or bf16 feature storage with f32 arithmetic.
//! - `conv_backward.cu`: ReLU mask; input gradient in gather form (the exact adjoint of the numpy
//!   'symmetric' border at any dilation); weight and bias gradients as block-level reductions into
//!   per-tile partial sums, then one reduction kernel (no atomics, deterministic).
//! - `head.cu`: input normalisation, final 1×1 layer, fused softmax / class-weighted cross-entropy with
//!   its gradient, head weight gradients.
//! - `adam.cu`: the Adam update of the flat parameter vector.
//!
//! Rust side, by layer: `device.rs` (the GPU, its streams and the compiled-module cache),
//! `kernels.rs` (the sources and their NVRTC compilation), `launch/` (one checked launch per
//! kernel), `network.rs` (the network's layout on the device), `backend.rs` ([`CudaBackend`], the
//! crate's [`Backend`](crate::Backend) on a GPU) and `inference.rs` (its streamed whole-volume
//! segmentation).
//!
//! ```no_run
//! use msd_net::cuda::{CudaBackend, CudaDevice, InputNorm};
//! use msd_net::{
//!     AdamConfig, Backend, BatchShape, FeatureStorage, InferenceOptions, LossConfig, MsdConfig, Params,
//! };
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = MsdConfig::new(100, 1, 1, 2);
//! // The crate's training loop drives any Backend; this one answers Err(CudaUnavailable) without a GPU.
//! let mut gpu = CudaBackend::new(0, &config)?;
//! gpu.set_params(&Params::init(&config, 7)?)?;
//! let (h, w) = (64, 64);
//! let (slices, labels) = (vec![0.0f32; 4 * h * w], vec![0u8; 4 * h * w]);
//! let shape = BatchShape { images: 4, height: h, width: w };
//! gpu.forward(&slices, shape)?;
//! let loss = gpu.loss(&labels, &LossConfig::default())?;
//! gpu.backward()?;
//! gpu.adam_step(&AdamConfig::default())?;
//! // Whole volumes stream through in batches, here with f16 feature maps.
//! let opts = InferenceOptions::default().with_batch(8).with_storage(FeatureStorage::F16);
//! let segmentation = gpu.segment_slices(&slices, shape, opts)?;
//! # let _ = (loss, segmentation, CudaDevice::new, InputNorm::identity);
//! # Ok(())
//! # }
//! ```

mod backend;
mod device;
mod error;
mod inference;
mod kernels;
mod launch;
mod network;
mod shape;

pub use backend::CudaBackend;
pub use device::{CudaDevice, device_count, driver_available};
pub use error::{Error, Result};
pub use kernels::{
    ComputeCapability, KernelModule, best_arch_for, compile, compile_options, nvrtc_available,
};
pub use launch::MAX_CLASSES;
pub use shape::{InputNorm, check_config};
