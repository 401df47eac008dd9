//! The backward 3×3 layer, one layer at a time (`conv_backward.cu`): the ReLU mask, the input
//! gradient in gather form (the exact adjoint of the mirrored dilated convolution) and the first
//! stage of the weight and bias gradients.

use cudarc::driver::{CudaSlice, CudaView, PushKernelArg};

use super::super::device::CudaDevice;
use super::super::error::Result;
use super::super::kernels::KernelModule;
use super::conv_forward::{Layer, chunked_layer_ints, validate_layer};
use super::{
    BLOCK_X, BLOCK_Y, Batch, Kernel, MAX_CHUNK, THREADS, checked_len, chunk_for, grid_check, int, linear,
    need, one_d, outputs_per_block, tiled,
};

/// Rows each thread of the weight-gradient kernels covers (`WGRAD_ROWS` in conv_backward.cu).
pub(super) const WGRAD_ROWS: usize = 8;

/// The entry points launched from here.
#[cfg(test)]
pub(super) const KERNELS: [&str; 7] = [
    "relu_mask",
    "conv3x3_backward_input_o1",
    "conv3x3_backward_input_o4",
    "conv3x3_weight_grad_tiled_o1",
    "conv3x3_weight_grad_tiled_o4",
    "conv3x3_weight_grad_direct_o1",
    "conv3x3_weight_grad_direct_o4",
];

/// Where a layer's masked gradient goes: channel `first` of a dz buffer holding `channels` channels per
/// image (a single layer: `first` 0, `channels` = width; a group: its slots).
#[derive(Copy, Clone, Debug)]
pub(crate) struct DzLayout {
    pub channels: usize,
    pub first: usize,
}

/// `dz[img][first + j] = grad[img][cin + j] · (feat[img][cin + j] > 0)` for the layer's outputs.
pub(crate) fn relu_mask(
    dev: &CudaDevice,
    feat: &CudaSlice<f32>,
    grad: &CudaSlice<f32>,
    dz: &mut CudaSlice<f32>,
    layout: DzLayout,
    layer: Layer,
    batch: Batch,
) -> Result<()> {
    const OP: &str = "relu_mask";
    validate_layer(OP, &layer, &batch)?;
    let n_feat = checked_len(OP, &[batch.images, layer.c_total, batch.plane()])?;
    let n_dz = checked_len(OP, &[batch.images, layout.channels, batch.plane()])?;
    need(feat.len() >= n_feat && grad.len() >= n_feat, OP, || {
        format!("feature/gradient buffers hold {}/{}, need {n_feat}", feat.len(), grad.len())
    })?;
    need(layout.first + layer.width <= layout.channels, OP, || {
        format!("{layout:?} for width {}", layer.width)
    })?;
    need(dz.len() >= n_dz, OP, || format!("dz holds {}, needs {n_dz}", dz.len()))?;
    let kernel = Kernel::load(dev, KernelModule::ConvBackward, "relu_mask")?;
    let n = checked_len(OP, &[batch.images, layer.width, batch.plane()])?;
    let ints = [
        int(batch.images, OP, "images")?,
        int(layer.c_total, OP, "c_total")?,
        int(layer.cin, OP, "cin")?,
        int(layer.width, OP, "width")?,
        int(batch.plane(), OP, "h·w")?,
        int(layout.channels, OP, "dz channels")?,
        int(layout.first, OP, "dz channel")?,
    ];
    // SAFETY: arguments match relu_mask (feat, grad, dz, images, c_total, c_out0, width, plane,
    // dz_channels, dz_c0). The grid-stride loop covers images·width·plane; it reads channel c_out0 + j <
    // c_total of feat and grad and writes dz channel dz_c0 + j < dz_channels of the same image, inside the
    // checked lengths.
    unsafe {
        kernel.launch(linear(one_d(n), 0), &ints, |b| {
            b.arg(feat).arg(grad).arg(dz);
        })
    }
}

/// A layer's masked gradient as an input: `data` starts at its first channel of image 0, images are
/// `channels` channels apart.
#[derive(Copy, Clone)]
pub(crate) struct DzInput<'a, 'b> {
    pub data: &'a CudaView<'b, f32>,
    pub channels: usize,
}

/// Adds the layer's input gradient (the adjoint of the mirrored dilated convolution) into `grad`
/// channels `c_begin..cin`. `dz` starts at the layer's first masked-gradient channel of image 0, images
/// `dz_channels` channels apart.
pub(crate) fn conv_backward_input(
    dev: &CudaDevice,
    grad: &mut CudaSlice<f32>,
    dz: DzInput<'_, '_>,
    weight: &CudaView<'_, f32>,
    c_begin: usize,
    layer: Layer,
    batch: Batch,
) -> Result<()> {
    const OP: &str = "conv3x3_backward_input";
    let DzInput { data: dz, channels: dz_channels } = dz;
    validate_layer(OP, &layer, &batch)?;
    let n_feat = checked_len(OP, &[batch.images, layer.c_total, batch.plane()])?;
    // The last image's last output channel ends here.
    let n_dz = checked_len(OP, &[(batch.images - 1) * dz_channels + layer.width, batch.plane()])?;
    need(grad.len() >= n_feat, OP, || format!("gradient buffer holds {}, needs {n_feat}", grad.len()))?;
    need(dz_channels >= layer.width && dz.len() >= n_dz, OP, || {
        format!("dz holds {} ({dz_channels} channels per image), needs {n_dz}", dz.len())
    })?;
    need(c_begin <= layer.cin, OP, || format!("channels {c_begin}..{}", layer.cin))?;
    need(weight.len() == layer.width * layer.cin * 9, OP, || {
        format!("weights hold {}, layer needs {}", weight.len(), layer.width * layer.cin * 9)
    })?;
    let ocb = outputs_per_block(layer.width);
    let rows = if ocb == 1 { 4 } else { 1 };
    let grid = grid_check(OP, (batch.w.div_ceil(BLOCK_X), batch.h.div_ceil(BLOCK_Y * rows), batch.images))?;
    let name = if ocb == 1 { "conv3x3_backward_input_o1" } else { "conv3x3_backward_input_o4" };
    let kernel = Kernel::load(dev, KernelModule::ConvBackward, name)?;
    let ints = [
        int(c_begin, OP, "c_begin")?,
        int(layer.cin, OP, "cin")?,
        int(layer.width, OP, "width")?,
        int(layer.c_total, OP, "c_total")?,
        int(batch.h, OP, "h")?,
        int(batch.w, OP, "w")?,
        int(layer.dil, OP, "dilation")?,
        int(dz_channels, OP, "dz channels")?,
    ];
    // SAFETY: arguments match conv3x3_backward_input_o* (grad, dz, weight, c_begin, cin, width, c_total, h,
    // w, dil, dz_channels). The grid covers the plane (rows per thread as in BWD_ROWS) for every image; dz
    // is read at channel img·dz_channels + j (j < width) and preimage coordinates reduced modulo 2h / 2w
    // kept only inside the plane, grad is written at channels c_begin..cin of in-plane pixels, weights at
    // (j·cin + c)·9 + tap: all within the lengths checked above. No shared memory.
    unsafe {
        kernel.launch(tiled(grid, 0), &ints, |b| {
            b.arg(grad).arg(dz).arg(weight);
        })
    }
}

/// Rows of the partial-sum buffer the weight-gradient kernels write for `batch`.
pub(crate) fn weight_grad_rows(batch: Batch) -> usize {
    batch.w.div_ceil(BLOCK_X) * batch.h.div_ceil(BLOCK_Y * WGRAD_ROWS) * batch.images
}

/// First stage of the layer's weight and bias gradients: one row of block sums per 32×64 tile in
/// `partials` (`[rows][width·cin·9 + width]`). Returns the number of rows written.
pub(crate) fn conv_weight_grad(
    dev: &CudaDevice,
    feat: &CudaSlice<f32>,
    dz: &CudaSlice<f32>,
    partials: &mut CudaSlice<f32>,
    layer: Layer,
    batch: Batch,
) -> Result<usize> {
    const OP: &str = "conv3x3_weight_grad";
    validate_layer(OP, &layer, &batch)?;
    let n_feat = checked_len(OP, &[batch.images, layer.c_total, batch.plane()])?;
    let n_dz = checked_len(OP, &[batch.images, layer.width, batch.plane()])?;
    let rows = weight_grad_rows(batch);
    let row_len = layer.width * layer.cin * 9 + layer.width;
    let n_part = checked_len(OP, &[rows, row_len])?;
    need(feat.len() >= n_feat, OP, || format!("feature buffer holds {}, needs {n_feat}", feat.len()))?;
    need(dz.len() >= n_dz, OP, || format!("dz holds {}, needs {n_dz}", dz.len()))?;
    need(partials.len() >= n_part, OP, || format!("partials hold {}, need {n_part}", partials.len()))?;
    let ocb = outputs_per_block(layer.width);
    let scratch = ocb * 9 * (THREADS as usize / 32);
    let (tile_h, tile_w) = (BLOCK_Y * WGRAD_ROWS + 2 * layer.dil, BLOCK_X + 2 * layer.dil);
    let tables = tile_h + tile_w;
    let (tiled_path, chunk) = match chunk_for(dev, layer.cin, tile_h * tile_w, 0, scratch + tables) {
        Some(k) => (true, k),
        None => (false, layer.cin.min(MAX_CHUNK)),
    };
    let smem_floats = scratch + if tiled_path { chunk * tile_h * tile_w + tables } else { 0 };
    let groups = layer.width.div_ceil(ocb);
    let grid = grid_check(
        OP,
        (batch.w.div_ceil(BLOCK_X), batch.h.div_ceil(BLOCK_Y * WGRAD_ROWS), batch.images * groups),
    )?;
    let name = match (tiled_path, ocb) {
        (true, 1) => "conv3x3_weight_grad_tiled_o1",
        (true, _) => "conv3x3_weight_grad_tiled_o4",
        (false, 1) => "conv3x3_weight_grad_direct_o1",
        (false, _) => "conv3x3_weight_grad_direct_o4",
    };
    let kernel = Kernel::load(dev, KernelModule::ConvBackward, name)?;
    let ints = chunked_layer_ints(OP, &layer, &batch, chunk)?;
    // SAFETY: arguments match conv3x3_weight_grad_* (feat, dz, partials, cin, width, c_total, h, w, dil,
    // chunk). Features are read at mirrored in-plane coordinates of channels < cin, dz at in-plane pixels
    // of channels < width, and row (img·tiles_y + by)·tiles_x + bx < rows of `partials` is written at
    // offsets < width·cin·9 + width; all lengths checked above. Shared memory holds the reduction scratch
    // plus `chunk` halo tiles and the tile_h + tile_w offset tables, within the per-block limit (chunk_for).
    unsafe {
        kernel.launch(tiled(grid, (smem_floats * 4) as u32), &ints, |b| {
            b.arg(feat).arg(dz).arg(partials);
        })
    }?;
    Ok(rows)
}
