//! One safe function per kernel launch, grouped by kernel family as the `.cu` files are.
//!
//! Every wrapper checks buffer lengths, sizes against `i32` and the grid and shared memory against
//! the device's limits, then ends in the one launch sequence of this module, [`Kernel::launch`]:
//! look the entry point up (compiling its module on first use), push the arguments in the
//! kernel's order, queue it on the device's compute stream.
//!
//! | file | kernels (`.cu`) |
//! |---|---|
//! | `features.rs` | none: the feature buffer in its storage type ([`FeatureStorage`](crate::FeatureStorage)) |
//! | `conv_forward.rs` | `conv3x3_forward_*` (`conv_forward.cu`) |
//! | `conv_backward.rs` | `relu_mask`, `conv3x3_backward_input_o*`, `conv3x3_weight_grad_*` (`conv_backward.cu`) |
//! | `conv_group.rs` | `conv3x3_backward_input_group`, `conv3x3_weight_grad_group`: the grouped backward (`conv_backward.cu`) |
//! | `reduce.rs` | `reduce_partials`, the second stage of every gradient sum (`conv_backward.cu`) |
//! | `head.rs` | `input_normalize_*`, `head_*`: normalisation, final layer, loss (`head.cu`) |
//! | `adam.rs` | `adam_step` (`adam.cu`) |

mod adam;
mod conv_backward;
mod conv_forward;
mod conv_group;
mod features;
mod head;
mod reduce;

use cudarc::driver::{CudaFunction, LaunchArgs, LaunchConfig, PushKernelArg};

pub(crate) use adam::{AdamStep, adam_step};
pub(crate) use conv_backward::{
    DzInput, DzLayout, conv_backward_input, conv_weight_grad, relu_mask, weight_grad_rows,
};
pub(crate) use conv_forward::{Layer, conv_forward};
pub(crate) use conv_group::{GROUP_SLOTS, Group, conv_backward_input_group, conv_weight_grad_group};
pub(crate) use features::Features;
pub use head::MAX_CLASSES;
pub(crate) use head::{
    Head, LOSS_CONSTS, LOSS_STATS, LossBackward, Normalisation, head_argmax, head_grad_rows,
    head_loss_backward, head_loss_stats, head_softmax, head_weight_grad, input_normalize, loss_stat_rows,
};
pub(crate) use reduce::reduce_partials;

use super::device::CudaDevice;
use super::error::{Error, Result};
use super::kernels::KernelModule;

/// Threads per block of every kernel.
const THREADS: u32 = 256;
/// Block shape of the tiled kernels (`MSD_BLOCK_X`, `MSD_BLOCK_Y` in common.cuh).
const BLOCK_X: usize = 32;
const BLOCK_Y: usize = 8;
/// Most input channels staged in shared memory per step of the tiled kernels.
const MAX_CHUNK: usize = 8;
/// Largest grid extent in y and z.
const MAX_GRID_YZ: usize = 65_535;
/// Largest grid extent in x.
const MAX_GRID_X: usize = i32::MAX as usize;

/// Image batch geometry: `images` planes of `h × w` pixels.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Batch {
    pub images: usize,
    pub h: usize,
    pub w: usize,
}

impl Batch {
    pub(crate) fn plane(&self) -> usize {
        self.h * self.w
    }
}

/// One entry point of a kernel module, loaded (its module compiled by NVRTC on first use), ready to
/// launch on the device's compute stream.
struct Kernel<'d> {
    dev: &'d CudaDevice,
    name: &'static str,
    func: CudaFunction,
}

impl<'d> Kernel<'d> {
    /// The entry point `name` of `module` on `dev`.
    fn load(dev: &'d CudaDevice, module: KernelModule, name: &'static str) -> Result<Self> {
        debug_assert!(module.entry_points().contains(&name), "{name} is not an entry point of {module:?}");
        Ok(Kernel { dev, name, func: dev.function(module, name)? })
    }

    /// Queues the kernel with `cfg`: `push` adds the arguments before the integers, in the kernel's
    /// order, then `ints` follow.
    ///
    /// # Safety
    /// The arguments `push` adds followed by `ints` must be exactly the kernel's parameters, in
    /// order and type; and under `cfg`'s grid and shared memory every global and shared access the
    /// kernel makes must stay inside the buffers passed and the shared memory requested (the
    /// wrappers check the lengths this depends on before they call this).
    unsafe fn launch<'a>(
        &'a self,
        cfg: LaunchConfig,
        ints: &'a [i32],
        push: impl FnOnce(&mut LaunchArgs<'a>),
    ) -> Result<()> {
        let mut args = self.dev.compute_stream().launch_builder(&self.func);
        push(&mut args);
        for v in ints {
            args.arg(v);
        }
        // SAFETY: the argument list and the bounds are the caller's contract (see `# Safety`).
        unsafe { args.launch(cfg) }.map_err(|source| Error::Launch { kernel: self.name, source })?;
        Ok(())
    }
}

/// `THREADS` threads per block along x on `grid`, with `smem_bytes` of dynamic shared memory: the
/// element-wise and per-pixel kernels.
fn linear(grid: (u32, u32, u32), smem_bytes: u32) -> LaunchConfig {
    LaunchConfig { grid_dim: grid, block_dim: (THREADS, 1, 1), shared_mem_bytes: smem_bytes }
}

/// Blocks of `BLOCK_X × BLOCK_Y` threads on `grid`, with `smem_bytes` of dynamic shared memory: the
/// tiled 3×3 kernels.
fn tiled(grid: (u32, u32, u32), smem_bytes: u32) -> LaunchConfig {
    LaunchConfig {
        grid_dim: grid,
        block_dim: (BLOCK_X as u32, BLOCK_Y as u32, 1),
        shared_mem_bytes: smem_bytes,
    }
}

/// `v` as a kernel's `int` argument, or an error naming the operation and the value.
fn int(v: usize, op: &'static str, what: &str) -> Result<i32> {
    i32::try_from(v).map_err(|_| Error::InvalidArgument { op, reason: format!("{what} = {v} exceeds i32") })
}

/// `Ok` when `ok`, else an [`Error::InvalidArgument`] of `op` with the reason.
fn need(ok: bool, op: &'static str, reason: impl FnOnce() -> String) -> Result<()> {
    if ok { Ok(()) } else { Err(Error::InvalidArgument { op, reason: reason() }) }
}

/// Checks a grid against the device's limits and converts it for the launch.
fn grid_check(kernel: &'static str, grid: (usize, usize, usize)) -> Result<(u32, u32, u32)> {
    if grid.0 == 0 || grid.1 == 0 || grid.2 == 0 {
        return Err(Error::LaunchTooLarge { kernel, reason: format!("empty grid {grid:?}") });
    }
    if grid.0 > MAX_GRID_X || grid.1 > MAX_GRID_YZ || grid.2 > MAX_GRID_YZ {
        return Err(Error::LaunchTooLarge {
            kernel,
            reason: format!("grid {grid:?} exceeds ({MAX_GRID_X}, {MAX_GRID_YZ}, {MAX_GRID_YZ})"),
        });
    }
    // The checks above bound every extent by i32::MAX.
    Ok((grid.0 as u32, grid.1 as u32, grid.2 as u32))
}

/// Blocks of a grid-stride loop over `n` elements (at most 2²⁰; the loop covers the rest).
fn one_d(n: usize) -> (u32, u32, u32) {
    (n.div_ceil(THREADS as usize).clamp(1, 1 << 20) as u32, 1, 1)
}

/// The product of `parts`, or an error when it overflows.
fn checked_len(op: &'static str, parts: &[usize]) -> Result<usize> {
    parts
        .iter()
        .try_fold(1usize, |acc, &p| acc.checked_mul(p))
        .ok_or_else(|| Error::InvalidArgument { op, reason: format!("size {parts:?} overflows usize") })
}

/// Output channels per block for a layer of `width` outputs (instantiated kernels: 1 and 4).
fn outputs_per_block(width: usize) -> usize {
    if width >= 4 { 4 } else { 1 }
}

/// Channels per shared-memory stage for a tile of `tile_floats` floats per channel plus `per_channel_extra`
/// and `fixed` floats, or `None` when not even one channel fits (then the direct kernel runs).
fn chunk_for(
    dev: &CudaDevice,
    cin: usize,
    tile_floats: usize,
    per_channel_extra: usize,
    fixed: usize,
) -> Option<usize> {
    let limit = dev.shared_memory_per_block() as usize / 4;
    (1..=cin.min(MAX_CHUNK)).rev().find(|k| fixed + k * (tile_floats + per_channel_extra) <= limit)
}

#[cfg(test)]
mod tests {
    use super::KernelModule;

    /// Every entry point a wrapper launches, with its module.
    fn launched() -> Vec<(KernelModule, &'static str)> {
        let mut all = Vec::new();
        all.extend(super::conv_forward::KERNELS.iter().flatten().map(|&k| (KernelModule::ConvForward, k)));
        all.extend(super::conv_backward::KERNELS.iter().map(|&k| (KernelModule::ConvBackward, k)));
        all.extend(super::conv_group::KERNELS.iter().map(|&k| (KernelModule::ConvBackward, k)));
        all.extend(super::reduce::KERNELS.iter().map(|&k| (KernelModule::ConvBackward, k)));
        all.extend(super::head::KERNELS.iter().map(|&k| (KernelModule::Head, k)));
        all.extend(super::adam::KERNELS.iter().map(|&k| (KernelModule::Adam, k)));
        all
    }

    #[test]
    fn every_entry_point_has_one_launcher_in_its_module() {
        let launched = launched();
        for &(module, name) in &launched {
            assert!(module.entry_points().contains(&name), "{name} is not an entry point of {module:?}");
        }
        for module in KernelModule::ALL {
            for name in module.entry_points() {
                let n = launched.iter().filter(|(m, k)| *m == module && k == name).count();
                assert_eq!(n, 1, "{name} of {module:?} is launched by {n} wrappers");
            }
        }
    }
}
