//! The second stage of every gradient sum (`reduce_partials` in `conv_backward.cu`): the rows of
//! per-block partial sums added in a fixed order, so gradients are deterministic without atomics.

use cudarc::driver::{CudaSlice, CudaViewMut, PushKernelArg};

use super::super::device::CudaDevice;
use super::super::error::Result;
use super::super::kernels::KernelModule;
use super::{Kernel, checked_len, int, linear, need, one_d};

/// The entry points launched from here.
#[cfg(test)]
pub(super) const KERNELS: [&str; 1] = ["reduce_partials"];

/// Sums `rows` rows of `partials` (`row_len` each); the first `out_a.len()` sums go to `out_a`, the
/// rest to `out_b`.
pub(crate) fn reduce_partials(
    dev: &CudaDevice,
    partials: &CudaSlice<f32>,
    rows: usize,
    out_a: &mut CudaViewMut<'_, f32>,
    out_b: &mut CudaViewMut<'_, f32>,
) -> Result<()> {
    const OP: &str = "reduce_partials";
    let row_len = out_a.len() + out_b.len();
    need(rows > 0 && row_len > 0, OP, || format!("empty reduction {rows} × {row_len}"))?;
    let n = checked_len(OP, &[rows, row_len])?;
    need(partials.len() >= n, OP, || format!("partials hold {}, need {n}", partials.len()))?;
    let kernel = Kernel::load(dev, KernelModule::ConvBackward, "reduce_partials")?;
    let (rows_i, row_len_i, len_a) =
        (int(rows, OP, "rows")?, int(row_len, OP, "row_len")?, int(out_a.len(), OP, "len_a")?);
    // SAFETY: arguments match reduce_partials (partials, n_rows, row_len, out_a, len_a, out_b). Thread k <
    // row_len reads partials[r·row_len + k] for r < rows (within the checked length) and writes out_a[k]
    // for k < len_a = out_a.len() or out_b[k − len_a] < out_b.len().
    unsafe {
        kernel.launch(linear(one_d(row_len), 0), &[], |b| {
            b.arg(partials).arg(&rows_i).arg(&row_len_i).arg(out_a).arg(&len_a).arg(out_b);
        })
    }
}
