//! A mixed-scale dense convolutional network (MSDnet, Pelt & Sethian, PNAS 2018) for CT
//! segmentation, with hand-written dilated-convolution kernels.
#![deny(missing_docs)]

mod backend;
mod candle_msd;
mod config;
mod cpu;
#[cfg(feature = "cuda")]
pub mod cuda;
mod error;
pub mod kernels;
mod loss;
mod params;

pub use backend::{AdamConfig, AdamState, Backend, BatchShape};
pub use candle_msd::{CandleMsd, symmetric_pad};
pub use config::MsdConfig;
pub use cpu::CpuBackend;
pub use error::{Error, Result};
pub use loss::{LossConfig, LossValue};
pub use params::Params;
