//! The grouped backward (`conv_backward.cu`): up to [`GROUP_SLOTS`] masked-gradient channels of
//! consecutive layers served by one pass over their common lower channels, so each feature-gradient
//! channel is read and written once per group rather than once per layer.

use cudarc::driver::{CudaSlice, CudaView, PushKernelArg};

use super::super::device::CudaDevice;
use super::super::error::{Error, Result};
use super::super::kernels::KernelModule;
use super::conv_backward::{WGRAD_ROWS, weight_grad_rows};
use super::{BLOCK_X, BLOCK_Y, Batch, Kernel, THREADS, checked_len, chunk_for, grid_check, int, need, tiled};

/// Most masked-gradient channels (layers × width) one group of the grouped backward covers
/// (`MSD_GROUP_SLOTS` in conv_backward.cu).
pub(crate) const GROUP_SLOTS: usize = 10;

/// The entry points launched from here.
#[cfg(test)]
pub(super) const KERNELS: [&str; 2] = ["conv3x3_backward_input_group", "conv3x3_weight_grad_group"];

/// Consecutive layers whose backward shares one pass over their common input channels.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Group {
    /// Input channels of the first layer.
    pub cin0: usize,
    /// Layers in the group.
    pub layers: usize,
    /// Output channels per layer.
    pub width: usize,
    /// Channels of the feature buffer.
    pub c_total: usize,
    /// Largest dilation of the group.
    pub dmax: usize,
}

impl Group {
    pub(crate) fn slots(&self) -> usize {
        self.layers * self.width
    }
    /// Input channels of the last layer.
    pub(crate) fn c_hi(&self) -> usize {
        self.cin0 + (self.layers - 1) * self.width
    }
    /// Length of the group's weights (its layers' blocks, consecutive).
    pub(crate) fn weights_len(&self) -> usize {
        9 * self.width * (self.layers * self.cin0 + self.width * self.layers * (self.layers - 1) / 2)
    }
    fn tile(&self) -> (usize, usize) {
        (BLOCK_Y * WGRAD_ROWS + 2 * self.dmax, BLOCK_X + 2 * self.dmax)
    }
    /// Channels per shared-memory stage of the group weight-gradient kernel, `None` when a single halo
    /// tile does not fit (then the group runs layer by layer).
    pub(crate) fn chunk(&self, dev: &CudaDevice) -> Option<usize> {
        let (th, tw) = self.tile();
        chunk_for(dev, self.c_hi(), th * tw, 0, GROUP_SLOTS * (THREADS as usize / 32) + th + tw)
    }
}

fn validate_group(op: &'static str, g: &Group, batch: &Batch, dils: &CudaView<'_, i32>) -> Result<()> {
    need(g.layers >= 1 && g.width >= 1 && g.slots() <= GROUP_SLOTS, op, || format!("{g:?}"))?;
    need(g.cin0 >= 1 && g.c_hi() + g.width <= g.c_total && g.dmax >= 1, op, || format!("{g:?}"))?;
    need(dils.len() == g.layers, op, || format!("{} dilations for {} layers", dils.len(), g.layers))?;
    need(batch.images > 0 && batch.h > 0 && batch.w > 0, op, || format!("empty batch {batch:?}"))?;
    int(batch.plane(), op, "h·w")?;
    int(2 * (batch.h.max(batch.w) + 2 * g.dmax + 64), op, "2·(size + 2·dilation)")?;
    int(g.weights_len() + g.slots(), op, "group row length")?;
    Ok(())
}

/// Adds the input gradients of all the group's layers into `grad` channels `0..cin0` (those below the
/// group) in one pass. `dz` is `[images][slots][plane]`, `dils` the group's dilations (device, each ≤ dmax).
pub(crate) fn conv_backward_input_group(
    dev: &CudaDevice,
    grad: &mut CudaSlice<f32>,
    dz: &CudaSlice<f32>,
    weight: &CudaView<'_, f32>,
    dils: &CudaView<'_, i32>,
    group: Group,
    batch: Batch,
) -> Result<()> {
    const OP: &str = "conv3x3_backward_input_group";
    validate_group(OP, &group, &batch, dils)?;
    let n_feat = checked_len(OP, &[batch.images, group.c_total, batch.plane()])?;
    let n_dz = checked_len(OP, &[batch.images, group.slots(), batch.plane()])?;
    need(grad.len() >= n_feat, OP, || format!("gradient buffer holds {}, needs {n_feat}", grad.len()))?;
    need(dz.len() >= n_dz, OP, || format!("dz holds {}, needs {n_dz}", dz.len()))?;
    need(weight.len() == group.weights_len(), OP, || {
        format!("weights hold {}, the group needs {}", weight.len(), group.weights_len())
    })?;
    let grid = grid_check(OP, (batch.w.div_ceil(BLOCK_X), batch.h.div_ceil(BLOCK_Y), batch.images))?;
    let kernel = Kernel::load(dev, KernelModule::ConvBackward, "conv3x3_backward_input_group")?;
    let ints = [
        int(group.slots(), OP, "slots")?,
        int(group.width, OP, "width")?,
        int(group.cin0, OP, "cin0")?,
        int(group.cin0, OP, "c_end")?,
        int(group.c_total, OP, "c_total")?,
        int(batch.h, OP, "h")?,
        int(batch.w, OP, "w")?,
    ];
    // SAFETY: arguments match conv3x3_backward_input_group (grad, dz, weight, dils, slots, width, cin0,
    // c_end, c_total, h, w). One pixel per thread over every image; dz is read at slot s < slots of the
    // image at preimage coordinates kept only inside the plane; dils[l] for l < layers; weights at
    // group offset(l) + (j·cin_l + c)·9 + k < weights_len (c < cin0 <= cin_l); grad written at channels
    // < cin0 of in-plane pixels. Lengths checked above; no shared memory.
    unsafe {
        kernel.launch(tiled(grid, 0), &ints, |b| {
            b.arg(grad).arg(dz).arg(weight).arg(dils);
        })
    }
}

/// First stage of the weight and bias gradients of all the group's layers: one row per 32×64 tile in
/// `partials` (`[rows][weights_len + slots]`, the group's weights in parameter order, then its biases).
/// Returns the number of rows.
pub(crate) fn conv_weight_grad_group(
    dev: &CudaDevice,
    feat: &CudaSlice<f32>,
    dz: &CudaSlice<f32>,
    partials: &mut CudaSlice<f32>,
    dils: &CudaView<'_, i32>,
    group: Group,
    batch: Batch,
) -> Result<usize> {
    const OP: &str = "conv3x3_weight_grad_group";
    validate_group(OP, &group, &batch, dils)?;
    let n_feat = checked_len(OP, &[batch.images, group.c_total, batch.plane()])?;
    let n_dz = checked_len(OP, &[batch.images, group.slots(), batch.plane()])?;
    let rows = weight_grad_rows(batch);
    let n_part = checked_len(OP, &[rows, group.weights_len() + group.slots()])?;
    need(feat.len() >= n_feat, OP, || format!("feature buffer holds {}, needs {n_feat}", feat.len()))?;
    need(dz.len() >= n_dz, OP, || format!("dz holds {}, needs {n_dz}", dz.len()))?;
    need(partials.len() >= n_part, OP, || format!("partials hold {}, need {n_part}", partials.len()))?;
    let chunk = group.chunk(dev).ok_or_else(|| Error::LaunchTooLarge {
        kernel: OP,
        reason: format!("a halo tile of dilation {} exceeds the shared memory per block", group.dmax),
    })?;
    let (th, tw) = group.tile();
    let smem_floats = GROUP_SLOTS * (THREADS as usize / 32) + chunk * th * tw + th + tw;
    let grid =
        grid_check(OP, (batch.w.div_ceil(BLOCK_X), batch.h.div_ceil(BLOCK_Y * WGRAD_ROWS), batch.images))?;
    let kernel = Kernel::load(dev, KernelModule::ConvBackward, "conv3x3_weight_grad_group")?;
    let ints = [
        int(group.slots(), OP, "slots")?,
        int(group.width, OP, "width")?,
        int(group.cin0, OP, "cin0")?,
        int(group.c_hi(), OP, "c_hi")?,
        int(group.c_total, OP, "c_total")?,
        int(batch.h, OP, "h")?,
        int(batch.w, OP, "w")?,
        int(group.dmax, OP, "dmax")?,
        int(chunk, OP, "chunk")?,
    ];
    // SAFETY: arguments match conv3x3_weight_grad_group (feat, dz, partials, dils, slots, width, cin0,
    // c_hi, c_total, h, w, dmax, chunk). Features are read at mirrored in-plane coordinates of channels
    // < c_hi, dz at in-plane pixels of slots < slots, and row (img·tiles_y + by)·tiles_x + bx < rows of
    // `partials` is written at offsets < weights_len + slots; every dilation is <= dmax (the caller's
    // group), so tap reads stay inside the halo tile. Shared memory: the reduction scratch, `chunk` tiles
    // and the tile_h + tile_w offset tables, within the per-block limit (Group::chunk).
    unsafe {
        kernel.launch(tiled(grid, (smem_floats * 4) as u32), &ints, |b| {
            b.arg(feat).arg(dz).arg(partials).arg(dils);
        })
    }?;
    Ok(rows)
}
