//! The device feature buffer `[images][c_total][h][w]` in its storage type ([`FeatureStorage`]): what
//! every layer reads and writes, f32 for training, f16 or bf16 to halve the memory traffic of inference.

use cudarc::driver::{CudaSlice, LaunchArgs, PushKernelArg};

use super::super::device::CudaDevice;
use super::super::error::{DriverContext, Error, Result};
use crate::FeatureStorage;

/// A device feature buffer `[images][c_total][h][w]` in one of the storage types.
#[derive(Debug)]
pub(crate) enum Features {
    F32(CudaSlice<f32>),
    F16(CudaSlice<u16>),
    Bf16(CudaSlice<u16>),
}

impl Features {
    /// A zeroed buffer of `len` values.
    pub(crate) fn zeros(dev: &CudaDevice, storage: FeatureStorage, len: usize) -> Result<Self> {
        let s = dev.compute_stream();
        let what = "allocating a feature buffer";
        Ok(match storage {
            FeatureStorage::F32 => Features::F32(s.alloc_zeros(len).during(what)?),
            FeatureStorage::F16 => Features::F16(s.alloc_zeros(len).during(what)?),
            FeatureStorage::Bf16 => Features::Bf16(s.alloc_zeros(len).during(what)?),
        })
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Features::F32(s) => s.len(),
            Features::F16(s) | Features::Bf16(s) => s.len(),
        }
    }

    /// The f32 buffer, or an error for reduced-precision storage (training needs f32).
    pub(crate) fn as_f32(&self) -> Result<&CudaSlice<f32>> {
        match self {
            Features::F32(s) => Ok(s),
            _ => Err(Error::InvalidArgument {
                op: "training",
                reason: "gradients need f32 feature storage".to_owned(),
            }),
        }
    }

    /// The index of this buffer's storage in the `[f32, f16, bf16]` tables of kernel names.
    pub(super) fn kernel_index(&self) -> usize {
        match self {
            Features::F32(_) => 0,
            Features::F16(_) => 1,
            Features::Bf16(_) => 2,
        }
    }

    /// Adds the buffer as the argument of a kernel that only reads it.
    pub(super) fn arg<'a>(&'a self, args: &mut LaunchArgs<'a>) {
        match self {
            Features::F32(s) => args.arg(s),
            Features::F16(s) | Features::Bf16(s) => args.arg(s),
        };
    }

    /// Adds the buffer as the argument of a kernel that writes it (so later reads wait for it).
    pub(super) fn arg_mut<'a>(&'a mut self, args: &mut LaunchArgs<'a>) {
        match self {
            Features::F32(s) => args.arg(s),
            Features::F16(s) | Features::Bf16(s) => args.arg(s),
        };
    }
}
