//! A mixed-scale dense convolutional network (MSDnet, Pelt & Sethian, PNAS 2018) for CT
//! segmentation, with hand-written dilated-convolution kernels.
#![deny(missing_docs)]

mod backend;
mod candle_msd;
mod config;
mod cpu;
#[cfg(feature = "cuda")]
pub mod cuda;
mod dataset;
mod error;
mod infer;
pub mod kernels;
mod loss;
mod model;
mod normalization;
mod params;
mod resample;
mod train;

pub use backend::{AdamConfig, AdamState, Backend, BatchShape};
pub use candle_msd::{CandleMsd, symmetric_pad};
pub use config::MsdConfig;
pub use cpu::CpuBackend;
pub use dataset::{Dataset, SliceRef};
pub use error::{Error, Result};
pub use infer::{SegmentOptions, Segmentation, SliceAxis};
pub use loss::{LossConfig, LossValue};
pub use model::{MODEL_FORMAT_VERSION, Model};
pub use normalization::Normalization;
pub use params::Params;
pub use train::{
    Augmentation, EpochStats, StopReason, TrainConfig, TrainOutcome, TrainProgress, train, train_with_backend,
};
