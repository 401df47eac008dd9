//! The forward 3×3 layer (`conv_forward.cu`): a dilated convolution over all earlier channels,
//! bias and ReLU, tiled through shared memory, or direct when a halo tile does not fit.

use cudarc::driver::{CudaView, PushKernelArg};

use super::super::device::CudaDevice;
use super::super::error::Result;
use super::super::kernels::KernelModule;
use super::{
    BLOCK_X, BLOCK_Y, Batch, Features, Kernel, checked_len, chunk_for, grid_check, int, need,
    outputs_per_block, tiled,
};

/// Rows of output each thread of the forward kernel computes (`FWD_ROWS` in conv_forward.cu).
const FWD_ROWS: usize = 4;

/// The entry points, by `[tiled o1, tiled o4, direct o1, direct o4]`, then `[f32, f16, bf16]`.
pub(super) const KERNELS: [[&str; 3]; 4] = [
    ["conv3x3_forward_tiled_o1_f32", "conv3x3_forward_tiled_o1_f16", "conv3x3_forward_tiled_o1_bf16"],
    ["conv3x3_forward_tiled_o4_f32", "conv3x3_forward_tiled_o4_f16", "conv3x3_forward_tiled_o4_bf16"],
    ["conv3x3_forward_direct_o1_f32", "conv3x3_forward_direct_o1_f16", "conv3x3_forward_direct_o1_bf16"],
    ["conv3x3_forward_direct_o4_f32", "conv3x3_forward_direct_o4_f16", "conv3x3_forward_direct_o4_bf16"],
];

/// One 3×3 layer within the feature buffer.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Layer {
    /// Channels read (`c_in + i·width`); also the first channel written.
    pub cin: usize,
    /// Output channels.
    pub width: usize,
    /// Channels per image of the feature buffer.
    pub c_total: usize,
    /// Dilation.
    pub dil: usize,
}

/// The `int` arguments of the kernels that read a layer's inputs in chunks of channels (the
/// forward pass and the weight gradient), in their order: cin, width, c_total, h, w, dilation,
/// chunk.
pub(super) fn chunked_layer_ints(
    op: &'static str,
    layer: &Layer,
    batch: &Batch,
    chunk: usize,
) -> Result<[i32; 7]> {
    Ok([
        int(layer.cin, op, "cin")?,
        int(layer.width, op, "width")?,
        int(layer.c_total, op, "c_total")?,
        int(batch.h, op, "h")?,
        int(batch.w, op, "w")?,
        int(layer.dil, op, "dilation")?,
        int(chunk, op, "chunk")?,
    ])
}

/// Checks a layer and a batch against each other and against the kernels' 32-bit index arithmetic
/// (shared by the forward and backward wrappers of a layer).
pub(super) fn validate_layer(op: &'static str, layer: &Layer, batch: &Batch) -> Result<()> {
    need(layer.width > 0 && layer.cin > 0 && layer.dil > 0, op, || format!("empty layer {layer:?}"))?;
    need(layer.cin + layer.width <= layer.c_total, op, || {
        format!("channels {}..{} exceed c_total {}", layer.cin, layer.cin + layer.width, layer.c_total)
    })?;
    need(batch.images > 0 && batch.h > 0 && batch.w > 0, op, || format!("empty batch {batch:?}"))?;
    // Index arithmetic inside the kernels is 32-bit within a plane and for 2·dil + size.
    int(batch.plane(), op, "h·w")?;
    int(2 * (batch.h.max(batch.w) + 2 * layer.dil + 64), op, "2·(size + 2·dilation)")?;
    int(layer.c_total * 9 * layer.width, op, "c_total·9·width")?;
    Ok(())
}

/// Forward pass of one 3×3 layer: reads channels `0..cin`, writes `cin..cin+width` (bias + ReLU).
pub(crate) fn conv_forward(
    dev: &CudaDevice,
    feat: &mut Features,
    weight: &CudaView<'_, f32>,
    bias: &CudaView<'_, f32>,
    layer: Layer,
    batch: Batch,
) -> Result<()> {
    const OP: &str = "conv3x3_forward";
    validate_layer(OP, &layer, &batch)?;
    let n_feat = checked_len(OP, &[batch.images, layer.c_total, batch.plane()])?;
    need(feat.len() >= n_feat, OP, || format!("feature buffer holds {}, needs {n_feat}", feat.len()))?;
    need(weight.len() == layer.width * layer.cin * 9, OP, || {
        format!("weights hold {}, layer needs {}", weight.len(), layer.width * layer.cin * 9)
    })?;
    need(bias.len() == layer.width, OP, || {
        format!("bias holds {}, layer needs {}", bias.len(), layer.width)
    })?;

    let ocb = outputs_per_block(layer.width);
    let (tile_h, tile_w) = (BLOCK_Y * FWD_ROWS + 2 * layer.dil, BLOCK_X + 2 * layer.dil);
    let tables = tile_h + tile_w;
    let (tiled_path, chunk) = match chunk_for(dev, layer.cin, tile_h * tile_w, ocb * 9, tables) {
        Some(k) => (true, k),
        None => (false, layer.cin.min(64)),
    };
    let smem_floats = if tiled_path { chunk * (tile_h * tile_w + ocb * 9) + tables } else { chunk * ocb * 9 };
    let groups = layer.width.div_ceil(ocb);
    let grid = grid_check(
        OP,
        (batch.w.div_ceil(BLOCK_X), batch.h.div_ceil(BLOCK_Y * FWD_ROWS), batch.images * groups),
    )?;
    let name = KERNELS[usize::from(!tiled_path) * 2 + usize::from(ocb == 4)][feat.kernel_index()];
    let kernel = Kernel::load(dev, KernelModule::ConvForward, name)?;
    let ints = chunked_layer_ints(OP, &layer, &batch, chunk)?;
    // SAFETY: arguments match conv3x3_forward_* (feat, weight, bias, cin, width, c_total, h, w, dil, chunk).
    // The grid covers images × channel groups × the plane; every global index the kernel forms is
    // img·c_total·plane + c·plane + (mirrored y)·w + (mirrored x) with c < cin + width <= c_total, inside
    // the checked feature length; weights index (j·cin + c)·9 + tap < width·cin·9 and bias j < width,
    // both checked. Dynamic shared memory is sized for `chunk` channel tiles plus their weights and stays
    // within the device's per-block limit (chunk_for), followed by the tile_h + tile_w offset tables.
    unsafe {
        kernel.launch(tiled(grid, (smem_floats * 4) as u32), &ints, |b| {
            feat.arg_mut(b);
            b.arg(weight).arg(bias);
        })
    }
}
