//! The Adam update of the flat parameter vector (`adam.cu`).

use cudarc::driver::{CudaSlice, PushKernelArg};

use super::super::device::CudaDevice;
use super::super::error::Result;
use super::super::kernels::KernelModule;
use super::{Kernel, int, linear, need, one_d};

/// The entry points launched from here.
#[cfg(test)]
pub(super) const KERNELS: [&str; 1] = ["adam_step"];

/// Adam hyper-parameters of one step, with the bias corrections for step `t`.
#[derive(Copy, Clone, Debug)]
pub(crate) struct AdamStep {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub bias_correction1: f32,
    pub bias_correction2: f32,
}

/// One Adam update of `param` from `grad`, updating the moments `m` and `v`.
pub(crate) fn adam_step(
    dev: &CudaDevice,
    param: &mut CudaSlice<f32>,
    grad: &CudaSlice<f32>,
    m: &mut CudaSlice<f32>,
    v: &mut CudaSlice<f32>,
    step: AdamStep,
) -> Result<()> {
    const OP: &str = "adam_step";
    let n = param.len();
    need(grad.len() == n && m.len() == n && v.len() == n, OP, || {
        format!("lengths differ: param {n}, grad {}, m {}, v {}", grad.len(), m.len(), v.len())
    })?;
    need(step.bias_correction1 > 0.0 && step.bias_correction2 > 0.0, OP, || {
        "bias corrections must be > 0".to_owned()
    })?;
    let n_i = int(n, OP, "parameter count")?;
    let kernel = Kernel::load(dev, KernelModule::Adam, "adam_step")?;
    // SAFETY: arguments match adam_step (param, grad, m, v, n, lr, beta1, beta2, eps, bc1, bc2); the
    // grid-stride loop touches indices < n, the common length of all four buffers (checked).
    unsafe {
        kernel.launch(linear(one_d(n), 0), &[], |b| {
            b.arg(param).arg(grad).arg(m).arg(v).arg(&n_i);
            b.arg(&step.lr).arg(&step.beta1).arg(&step.beta2).arg(&step.eps);
            b.arg(&step.bias_correction1).arg(&step.bias_correction2);
        })
    }
}
