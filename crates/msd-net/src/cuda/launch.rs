//! One safe function per kernel launch. Each checks buffer lengths, sizes against `i32` and the grid and
//! shared memory against the device's limits, then launches on the device's compute stream.

use cudarc::driver::{CudaSlice, CudaView, CudaViewMut, LaunchConfig, PushKernelArg};

use super::device::CudaDevice;
use super::error::{DriverContext, Error, Result};
use super::kernels::KernelModule;

/// Threads per block of every kernel.
const THREADS: u32 = 256;
/// Rows of output each thread of the forward kernel computes (`FWD_ROWS` in conv_forward.cu).
const FWD_ROWS: usize = 4;
/// Rows each thread of the weight-gradient kernel covers (`WGRAD_ROWS` in conv_backward.cu).
const WGRAD_ROWS: usize = 8;
/// Block shape of the tiled kernels (`MSD_BLOCK_X`, `MSD_BLOCK_Y` in common.cuh).
const BLOCK_X: usize = 32;
const BLOCK_Y: usize = 8;
/// Most classes the head kernels handle (`MSD_MAX_CLASSES` in head.cu).
pub const MAX_CLASSES: usize = 8;
/// Most input channels staged in shared memory per step of the tiled kernels.
const MAX_CHUNK: usize = 8;
/// Largest grid extent in y and z.
const MAX_GRID_YZ: usize = 65_535;
/// Largest grid extent in x.
const MAX_GRID_X: usize = i32::MAX as usize;
/// Pixels each block of the head weight-gradient kernel sums over.
pub(crate) const HEAD_PIXELS_PER_BLOCK: usize = 8192;

/// How feature maps are stored on the device. Arithmetic is always f32; reduced precision halves the
/// memory traffic of inference and is not offered for training.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum FeatureStorage {
    /// 32-bit floats (training and exact inference).
    #[default]
    F32,
    /// IEEE half precision.
    F16,
    /// bfloat16.
    Bf16,
}

impl FeatureStorage {
    fn suffix(self) -> usize {
        match self {
            FeatureStorage::F32 => 0,
            FeatureStorage::F16 => 1,
            FeatureStorage::Bf16 => 2,
        }
    }
}

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

    pub(crate) fn storage(&self) -> FeatureStorage {
        match self {
            Features::F32(_) => FeatureStorage::F32,
            Features::F16(_) => FeatureStorage::F16,
            Features::Bf16(_) => FeatureStorage::Bf16,
        }
    }
}

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

fn int(v: usize, op: &'static str, what: &str) -> Result<i32> {
    i32::try_from(v).map_err(|_| Error::InvalidArgument { op, reason: format!("{what} = {v} exceeds i32") })
}

fn need(ok: bool, op: &'static str, reason: impl FnOnce() -> String) -> Result<()> {
    if ok { Ok(()) } else { Err(Error::InvalidArgument { op, reason: reason() }) }
}

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

fn one_d(n: usize) -> usize {
    n.div_ceil(THREADS as usize).clamp(1, 1 << 20)
}

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

fn validate_layer(op: &'static str, layer: &Layer, batch: &Batch) -> Result<()> {
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

/// Per-channel mean and reciprocal deviation of the input channels, on the device.
#[derive(Copy, Clone)]
pub(crate) struct Normalisation<'a> {
    pub mean: &'a CudaSlice<f32>,
    pub inv_std: &'a CudaSlice<f32>,
}

/// `feat[img][c][p] = (raw[img][c][p] − mean[c]) · inv_std[c]` for the first `c_in = mean.len()`
/// channels.
pub(crate) fn input_normalize(
    dev: &CudaDevice,
    raw: &CudaView<'_, f32>,
    feat: &mut Features,
    norm: Normalisation<'_>,
    c_total: usize,
    batch: Batch,
) -> Result<()> {
    const OP: &str = "input_normalize";
    let Normalisation { mean, inv_std } = norm;
    let c_in = mean.len();
    let n_raw = checked_len(OP, &[batch.images, c_in, batch.plane()])?;
    let n_feat = checked_len(OP, &[batch.images, c_total, batch.plane()])?;
    need(raw.len() >= n_raw, OP, || format!("raw input holds {} values, needs {n_raw}", raw.len()))?;
    need(feat.len() >= n_feat, OP, || format!("feature buffer holds {}, needs {n_feat}", feat.len()))?;
    need(mean.len() == c_in && inv_std.len() == c_in && c_in <= c_total, OP, || {
        format!("normalisation has {} / {} entries for {c_in} channels", mean.len(), inv_std.len())
    })?;
    let (images, c_in_i, c_total_i, plane) = (
        int(batch.images, OP, "images")?,
        int(c_in, OP, "c_in")?,
        int(c_total, OP, "c_total")?,
        int(batch.plane(), OP, "h·w")?,
    );
    let name =
        ["input_normalize_f32", "input_normalize_f16", "input_normalize_bf16"][feat.storage().suffix()];
    let f = dev.function(KernelModule::Head, name)?;
    let cfg = LaunchConfig {
        grid_dim: (one_d(n_raw) as u32, 1, 1),
        block_dim: (THREADS, 1, 1),
        shared_mem_bytes: 0,
    };
    let stream = dev.compute_stream();
    let mut b = stream.launch_builder(&f);
    b.arg(raw);
    match feat {
        Features::F32(s) => b.arg(s),
        Features::F16(s) | Features::Bf16(s) => b.arg(s),
    };
    b.arg(mean).arg(inv_std).arg(&images).arg(&c_in_i).arg(&c_total_i).arg(&plane);
    // SAFETY: the argument list matches input_normalize_* (raw, feat, mean, inv_std, images, c_in, c_total,
    // plane); the kernel reads images·c_in·plane raw values and writes the first c_in channels of
    // images·c_total·plane feature values, both checked above; the grid-stride loop bounds every index.
    unsafe { b.launch(cfg) }.during("launching input_normalize")?;
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
    let (tiled, chunk) = match chunk_for(dev, layer.cin, tile_h * tile_w, ocb * 9, tables) {
        Some(k) => (true, k),
        None => (false, layer.cin.min(64)),
    };
    let smem_floats = if tiled { chunk * (tile_h * tile_w + ocb * 9) + tables } else { chunk * ocb * 9 };
    let groups = layer.width.div_ceil(ocb);
    let grid = grid_check(
        OP,
        (batch.w.div_ceil(BLOCK_X), batch.h.div_ceil(BLOCK_Y * FWD_ROWS), batch.images * groups),
    )?;
    let names: [[&'static str; 3]; 4] = [
        ["conv3x3_forward_tiled_o1_f32", "conv3x3_forward_tiled_o1_f16", "conv3x3_forward_tiled_o1_bf16"],
        ["conv3x3_forward_tiled_o4_f32", "conv3x3_forward_tiled_o4_f16", "conv3x3_forward_tiled_o4_bf16"],
        ["conv3x3_forward_direct_o1_f32", "conv3x3_forward_direct_o1_f16", "conv3x3_forward_direct_o1_bf16"],
        ["conv3x3_forward_direct_o4_f32", "conv3x3_forward_direct_o4_f16", "conv3x3_forward_direct_o4_bf16"],
    ];
    let name = names[usize::from(!tiled) * 2 + usize::from(ocb == 4)][feat.storage().suffix()];
    let f = dev.function(KernelModule::ConvForward, name)?;
    let cfg = LaunchConfig {
        grid_dim: grid,
        block_dim: (BLOCK_X as u32, BLOCK_Y as u32, 1),
        shared_mem_bytes: (smem_floats * 4) as u32,
    };
    let args = [
        int(layer.cin, OP, "cin")?,
        int(layer.width, OP, "width")?,
        int(layer.c_total, OP, "c_total")?,
        int(batch.h, OP, "h")?,
        int(batch.w, OP, "w")?,
        int(layer.dil, OP, "dilation")?,
        int(chunk, OP, "chunk")?,
    ];
    let stream = dev.compute_stream();
    let mut b = stream.launch_builder(&f);
    match feat {
        Features::F32(s) => b.arg(s),
        Features::F16(s) | Features::Bf16(s) => b.arg(s),
    };
    b.arg(weight).arg(bias);
    for a in &args {
        b.arg(a);
    }
    // SAFETY: arguments match conv3x3_forward_* (feat, weight, bias, cin, width, c_total, h, w, dil, chunk).
    // The grid covers images × channel groups × the plane; every global index the kernel forms is
    // img·c_total·plane + c·plane + (mirrored y)·w + (mirrored x) with c < cin + width <= c_total, inside
    // the checked feature length; weights index (j·cin + c)·9 + tap < width·cin·9 and bias j < width,
    // both checked. Dynamic shared memory is sized for `chunk` channel tiles plus their weights and stays
    // within the device's per-block limit (chunk_for), followed by the tile_h + tile_w offset tables.
    unsafe { b.launch(cfg) }.during("launching conv3x3_forward")?;
    Ok(())
}

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
    let f = dev.function(KernelModule::ConvBackward, "relu_mask")?;
    let n = checked_len(OP, &[batch.images, layer.width, batch.plane()])?;
    let cfg =
        LaunchConfig { grid_dim: (one_d(n) as u32, 1, 1), block_dim: (THREADS, 1, 1), shared_mem_bytes: 0 };
    let args = [
        int(batch.images, OP, "images")?,
        int(layer.c_total, OP, "c_total")?,
        int(layer.cin, OP, "cin")?,
        int(layer.width, OP, "width")?,
        int(batch.plane(), OP, "h·w")?,
        int(layout.channels, OP, "dz channels")?,
        int(layout.first, OP, "dz channel")?,
    ];
    let stream = dev.compute_stream();
    let mut b = stream.launch_builder(&f);
    b.arg(feat).arg(grad).arg(dz);
    for a in &args {
        b.arg(a);
    }
    // SAFETY: arguments match relu_mask (feat, grad, dz, images, c_total, c_out0, width, plane,
    // dz_channels, dz_c0). The grid-stride loop covers images·width·plane; it reads channel c_out0 + j <
    // c_total of feat and grad and writes dz channel dz_c0 + j < dz_channels of the same image, inside the
    // checked lengths.
    unsafe { b.launch(cfg) }.during("launching relu_mask")?;
    Ok(())
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
    let f = dev.function(KernelModule::ConvBackward, name)?;
    let cfg =
        LaunchConfig { grid_dim: grid, block_dim: (BLOCK_X as u32, BLOCK_Y as u32, 1), shared_mem_bytes: 0 };
    let args = [
        int(c_begin, OP, "c_begin")?,
        int(layer.cin, OP, "cin")?,
        int(layer.width, OP, "width")?,
        int(layer.c_total, OP, "c_total")?,
        int(batch.h, OP, "h")?,
        int(batch.w, OP, "w")?,
        int(layer.dil, OP, "dilation")?,
        int(dz_channels, OP, "dz channels")?,
    ];
    let stream = dev.compute_stream();
    let mut b = stream.launch_builder(&f);
    b.arg(grad).arg(dz).arg(weight);
    for a in &args {
        b.arg(a);
    }
    // SAFETY: arguments match conv3x3_backward_input_o* (grad, dz, weight, c_begin, cin, width, c_total, h,
    // w, dil, dz_channels). The grid covers the plane (rows per thread as in BWD_ROWS) for every image; dz
    // is read at channel img·dz_channels + j (j < width) and preimage coordinates reduced modulo 2h / 2w
    // kept only inside the plane, grad is written at channels c_begin..cin of in-plane pixels, weights at
    // (j·cin + c)·9 + tap: all within the lengths checked above. No shared memory.
    unsafe { b.launch(cfg) }.during("launching conv3x3_backward_input")?;
    Ok(())
}

/// Most masked-gradient channels (layers × width) one group of the grouped backward covers
/// (`MSD_GROUP_SLOTS` in conv_backward.cu).
pub(crate) const GROUP_SLOTS: usize = 10;

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
    let f = dev.function(KernelModule::ConvBackward, "conv3x3_backward_input_group")?;
    let cfg =
        LaunchConfig { grid_dim: grid, block_dim: (BLOCK_X as u32, BLOCK_Y as u32, 1), shared_mem_bytes: 0 };
    let args = [
        int(group.slots(), OP, "slots")?,
        int(group.width, OP, "width")?,
        int(group.cin0, OP, "cin0")?,
        int(group.cin0, OP, "c_end")?,
        int(group.c_total, OP, "c_total")?,
        int(batch.h, OP, "h")?,
        int(batch.w, OP, "w")?,
    ];
    let stream = dev.compute_stream();
    let mut b = stream.launch_builder(&f);
    b.arg(grad).arg(dz).arg(weight).arg(dils);
    for a in &args {
        b.arg(a);
    }
    // SAFETY: arguments match conv3x3_backward_input_group (grad, dz, weight, dils, slots, width, cin0,
    // c_end, c_total, h, w). One pixel per thread over every image; dz is read at slot s < slots of the
    // image at preimage coordinates kept only inside the plane; dils[l] for l < layers; weights at
    // group offset(l) + (j·cin_l + c)·9 + k < weights_len (c < cin0 <= cin_l); grad written at channels
    // < cin0 of in-plane pixels. Lengths checked above; no shared memory.
    unsafe { b.launch(cfg) }.during("launching conv3x3_backward_input_group")?;
    Ok(())
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
    let f = dev.function(KernelModule::ConvBackward, "conv3x3_weight_grad_group")?;
    let cfg = LaunchConfig {
        grid_dim: grid,
        block_dim: (BLOCK_X as u32, BLOCK_Y as u32, 1),
        shared_mem_bytes: (smem_floats * 4) as u32,
    };
    let args = [
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
    let stream = dev.compute_stream();
    let mut b = stream.launch_builder(&f);
    b.arg(feat).arg(dz).arg(partials).arg(dils);
    for a in &args {
        b.arg(a);
    }
    // SAFETY: arguments match conv3x3_weight_grad_group (feat, dz, partials, dils, slots, width, cin0,
    // c_hi, c_total, h, w, dmax, chunk). Features are read at mirrored in-plane coordinates of channels
    // < c_hi, dz at in-plane pixels of slots < slots, and row (img·tiles_y + by)·tiles_x + bx < rows of
    // `partials` is written at offsets < weights_len + slots; every dilation is <= dmax (the caller's
    // group), so tap reads stay inside the halo tile. Shared memory: the reduction scratch, `chunk` tiles
    // and the tile_h + tile_w offset tables, within the per-block limit (Group::chunk).
    unsafe { b.launch(cfg) }.during("launching conv3x3_weight_grad_group")?;
    Ok(rows)
}

/// Rows of the partial-sum buffer the weight-gradient kernel writes for `batch`.
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
    let (tiled, chunk) = match chunk_for(dev, layer.cin, tile_h * tile_w, 0, scratch + tables) {
        Some(k) => (true, k),
        None => (false, layer.cin.min(MAX_CHUNK)),
    };
    let smem_floats = scratch + if tiled { chunk * tile_h * tile_w + tables } else { 0 };
    let groups = layer.width.div_ceil(ocb);
    let grid = grid_check(
        OP,
        (batch.w.div_ceil(BLOCK_X), batch.h.div_ceil(BLOCK_Y * WGRAD_ROWS), batch.images * groups),
    )?;
    let name = match (tiled, ocb) {
        (true, 1) => "conv3x3_weight_grad_tiled_o1",
        (true, _) => "conv3x3_weight_grad_tiled_o4",
        (false, 1) => "conv3x3_weight_grad_direct_o1",
        (false, _) => "conv3x3_weight_grad_direct_o4",
    };
    let f = dev.function(KernelModule::ConvBackward, name)?;
    let cfg = LaunchConfig {
        grid_dim: grid,
        block_dim: (BLOCK_X as u32, BLOCK_Y as u32, 1),
        shared_mem_bytes: (smem_floats * 4) as u32,
    };
    let args = [
        int(layer.cin, OP, "cin")?,
        int(layer.width, OP, "width")?,
        int(layer.c_total, OP, "c_total")?,
        int(batch.h, OP, "h")?,
        int(batch.w, OP, "w")?,
        int(layer.dil, OP, "dilation")?,
        int(chunk, OP, "chunk")?,
    ];
    let stream = dev.compute_stream();
    let mut b = stream.launch_builder(&f);
    b.arg(feat).arg(dz).arg(partials);
    for a in &args {
        b.arg(a);
    }
    // SAFETY: arguments match conv3x3_weight_grad_* (feat, dz, partials, cin, width, c_total, h, w, dil,
    // chunk). Features are read at mirrored in-plane coordinates of channels < cin, dz at in-plane pixels
    // of channels < width, and row (img·tiles_y + by)·tiles_x + bx < rows of `partials` is written at
    // offsets < width·cin·9 + width; all lengths checked above. Shared memory holds the reduction scratch
    // plus `chunk` halo tiles and the tile_h + tile_w offset tables, within the per-block limit (chunk_for).
    unsafe { b.launch(cfg) }.during("launching conv3x3_weight_grad")?;
    Ok(rows)
}

/// Second stage of a gradient reduction: sums `rows` rows of `partials` (`row_len` each); the first
/// `out_a.len()` sums go to `out_a`, the rest to `out_b`.
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
    let f = dev.function(KernelModule::ConvBackward, "reduce_partials")?;
    let cfg = LaunchConfig {
        grid_dim: (one_d(row_len) as u32, 1, 1),
        block_dim: (THREADS, 1, 1),
        shared_mem_bytes: 0,
    };
    let (rows_i, row_len_i, len_a) =
        (int(rows, OP, "rows")?, int(row_len, OP, "row_len")?, int(out_a.len(), OP, "len_a")?);
    let stream = dev.compute_stream();
    let mut b = stream.launch_builder(&f);
    b.arg(partials).arg(&rows_i).arg(&row_len_i).arg(out_a).arg(&len_a).arg(out_b);
    // SAFETY: arguments match reduce_partials (partials, n_rows, row_len, out_a, len_a, out_b). Thread k <
    // row_len reads partials[r·row_len + k] for r < rows (within the checked length) and writes out_a[k]
    // for k < len_a = out_a.len() or out_b[k − len_a] < out_b.len().
    unsafe { b.launch(cfg) }.during("launching reduce_partials")?;
    Ok(())
}

/// Head geometry: `n_classes` outputs over `c_total` channels.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Head {
    pub c_total: usize,
    pub n_classes: usize,
}

fn validate_head(
    op: &'static str,
    dev: &CudaDevice,
    head: &Head,
    batch: &Batch,
    extra_smem: usize,
) -> Result<u32> {
    need((1..=MAX_CLASSES).contains(&head.n_classes), op, || {
        format!("{} classes; the kernels handle 1..={MAX_CLASSES}", head.n_classes)
    })?;
    need(batch.images > 0 && batch.plane() > 0, op, || format!("empty batch {batch:?}"))?;
    int(checked_len(op, &[batch.images, batch.plane()])?, op, "images·h·w")?;
    let smem = (head.n_classes * head.c_total + extra_smem) * 4;
    if smem > dev.shared_memory_per_block() as usize {
        return Err(Error::LaunchTooLarge {
            kernel: op,
            reason: format!(
                "head weights need {smem} bytes of shared memory, the device allows {}",
                dev.shared_memory_per_block()
            ),
        });
    }
    Ok(smem as u32)
}

/// Class probabilities `[images][n_classes][plane]`: softmax of the final 1×1 layer.
pub(crate) fn head_softmax(
    dev: &CudaDevice,
    feat: &Features,
    weight: &CudaView<'_, f32>,
    bias: &CudaView<'_, f32>,
    probs: &mut CudaSlice<f32>,
    head: Head,
    batch: Batch,
) -> Result<()> {
    const OP: &str = "head_softmax";
    let smem = validate_head(OP, dev, &head, &batch, 0)?;
    let n_feat = checked_len(OP, &[batch.images, head.c_total, batch.plane()])?;
    let n_out = checked_len(OP, &[batch.images, head.n_classes, batch.plane()])?;
    need(feat.len() >= n_feat, OP, || format!("feature buffer holds {}, needs {n_feat}", feat.len()))?;
    need(probs.len() >= n_out, OP, || format!("probabilities hold {}, need {n_out}", probs.len()))?;
    need(weight.len() == head.n_classes * head.c_total && bias.len() == head.n_classes, OP, || {
        format!("head weights/bias hold {}/{}", weight.len(), bias.len())
    })?;
    let name = ["head_softmax_f32", "head_softmax_f16", "head_softmax_bf16"][feat.storage().suffix()];
    let f = dev.function(KernelModule::Head, name)?;
    let pixels = batch.images * batch.plane();
    let cfg = LaunchConfig {
        grid_dim: grid_check(OP, (pixels.div_ceil(THREADS as usize), 1, 1))?,
        block_dim: (THREADS, 1, 1),
        shared_mem_bytes: smem,
    };
    let args = [
        int(batch.images, OP, "images")?,
        int(head.c_total, OP, "c_total")?,
        int(head.n_classes, OP, "n_classes")?,
        int(batch.plane(), OP, "h·w")?,
    ];
    let stream = dev.compute_stream();
    let mut b = stream.launch_builder(&f);
    match feat {
        Features::F32(s) => b.arg(s),
        Features::F16(s) | Features::Bf16(s) => b.arg(s),
    };
    b.arg(weight).arg(bias).arg(probs);
    for a in &args {
        b.arg(a);
    }
    // SAFETY: arguments match head_softmax_* (feat, weight, bias, probs, images, c_total, n_classes,
    // plane). One thread per pixel of images·plane (threads past it return after the barrier); it reads
    // c_total channels of its pixel and writes n_classes probabilities, within the checked lengths;
    // shared memory holds exactly n_classes·c_total weights.
    unsafe { b.launch(cfg) }.during("launching head_softmax")?;
    Ok(())
}

/// Most probable class per pixel, `[images][plane]`.
pub(crate) fn head_argmax(
    dev: &CudaDevice,
    feat: &Features,
    weight: &CudaView<'_, f32>,
    bias: &CudaView<'_, f32>,
    labels: &mut CudaSlice<u8>,
    head: Head,
    batch: Batch,
) -> Result<()> {
    const OP: &str = "head_argmax";
    let smem = validate_head(OP, dev, &head, &batch, 0)?;
    let n_feat = checked_len(OP, &[batch.images, head.c_total, batch.plane()])?;
    let n_out = checked_len(OP, &[batch.images, batch.plane()])?;
    need(feat.len() >= n_feat, OP, || format!("feature buffer holds {}, needs {n_feat}", feat.len()))?;
    need(labels.len() >= n_out, OP, || format!("labels hold {}, need {n_out}", labels.len()))?;
    need(weight.len() == head.n_classes * head.c_total && bias.len() == head.n_classes, OP, || {
        format!("head weights/bias hold {}/{}", weight.len(), bias.len())
    })?;
    let name = ["head_argmax_f32", "head_argmax_f16", "head_argmax_bf16"][feat.storage().suffix()];
    let f = dev.function(KernelModule::Head, name)?;
    let cfg = LaunchConfig {
        grid_dim: grid_check(OP, (n_out.div_ceil(THREADS as usize), 1, 1))?,
        block_dim: (THREADS, 1, 1),
        shared_mem_bytes: smem,
    };
    let args = [
        int(batch.images, OP, "images")?,
        int(head.c_total, OP, "c_total")?,
        int(head.n_classes, OP, "n_classes")?,
        int(batch.plane(), OP, "h·w")?,
    ];
    let stream = dev.compute_stream();
    let mut b = stream.launch_builder(&f);
    match feat {
        Features::F32(s) => b.arg(s),
        Features::F16(s) | Features::Bf16(s) => b.arg(s),
    };
    b.arg(weight).arg(bias).arg(labels);
    for a in &args {
        b.arg(a);
    }
    // SAFETY: arguments match head_argmax_* (feat, weight, bias, labels, images, c_total, n_classes,
    // plane); as head_softmax, writing one label per pixel of images·plane (checked).
    unsafe { b.launch(cfg) }.during("launching head_argmax")?;
    Ok(())
}

/// Floats per row of the loss statistics (`MSD_LOSS_STATS` in head.cu): weighted cross-entropy, then
/// per class (8 slots) the soft-Dice intersection, prediction mass and label count.
pub const LOSS_STATS: usize = 1 + 3 * MAX_CLASSES;

/// Rows of loss statistics [`head_loss_stats`] writes for `batch` (one per 256 pixels).
pub(crate) fn loss_stat_rows(batch: Batch) -> usize {
    (batch.images * batch.plane()).div_ceil(THREADS as usize)
}

fn check_probs_labels(
    op: &'static str,
    probs: &CudaSlice<f32>,
    labels: &CudaSlice<u8>,
    cw: &CudaSlice<f32>,
    head: &Head,
    batch: &Batch,
) -> Result<()> {
    need((1..=MAX_CLASSES).contains(&head.n_classes), op, || format!("{} classes", head.n_classes))?;
    let n_pix = checked_len(op, &[batch.images, batch.plane()])?;
    int(n_pix, op, "images·h·w")?;
    let n_p = checked_len(op, &[n_pix, head.n_classes])?;
    need(probs.len() >= n_p, op, || format!("probabilities hold {}, need {n_p}", probs.len()))?;
    need(labels.len() >= n_pix, op, || format!("labels hold {}, need {n_pix}", labels.len()))?;
    need(cw.len() == head.n_classes, op, || {
        format!("{} class weights for {} classes", cw.len(), head.n_classes)
    })
}

/// First stage of the loss: per block of 256 pixels, one row of [`LOSS_STATS`] sums in `partials`.
/// Returns the number of rows.
pub(crate) fn head_loss_stats(
    dev: &CudaDevice,
    probs: &CudaSlice<f32>,
    labels: &CudaSlice<u8>,
    class_weight: &CudaSlice<f32>,
    partials: &mut CudaSlice<f32>,
    head: Head,
    batch: Batch,
) -> Result<usize> {
    const OP: &str = "head_loss_stats";
    check_probs_labels(OP, probs, labels, class_weight, &head, &batch)?;
    let rows = loss_stat_rows(batch);
    let n_part = checked_len(OP, &[rows, LOSS_STATS])?;
    need(partials.len() >= n_part, OP, || format!("partials hold {}, need {n_part}", partials.len()))?;
    let f = dev.function(KernelModule::Head, "head_loss_stats")?;
    let cfg = LaunchConfig {
        grid_dim: grid_check(OP, (rows, 1, 1))?,
        block_dim: (THREADS, 1, 1),
        shared_mem_bytes: 0,
    };
    let args = [
        int(batch.images, OP, "images")?,
        int(head.n_classes, OP, "n_classes")?,
        int(batch.plane(), OP, "h·w")?,
    ];
    let stream = dev.compute_stream();
    let mut b = stream.launch_builder(&f);
    b.arg(probs).arg(labels).arg(class_weight).arg(partials);
    for a in &args {
        b.arg(a);
    }
    // SAFETY: arguments match head_loss_stats (probs, labels, class_weight, partials, images, n_classes,
    // plane). Thread gp < images·plane reads its label, n_classes probabilities and (for a label <
    // n_classes) one class weight; thread t < LOSS_STATS of block b writes partials[b·LOSS_STATS + t],
    // b < rows. Lengths checked above; the reduction scratch is static shared memory.
    unsafe { b.launch(cfg) }.during("launching head_loss_stats")?;
    Ok(rows)
}

/// Floats of the loss-gradient constants: `[norm, dice_a[0..8], dice_b[0..8]]`.
pub const LOSS_CONSTS: usize = 1 + 2 * MAX_CLASSES;

/// Buffers of [`head_loss_backward`].
pub(crate) struct LossBackward<'a> {
    pub probs: &'a CudaSlice<f32>,
    pub labels: &'a CudaSlice<u8>,
    pub class_weight: &'a CudaSlice<f32>,
    pub consts: &'a CudaSlice<f32>,
    pub dlogits: &'a mut CudaSlice<f32>,
    pub grad: &'a mut CudaSlice<f32>,
}

/// Gradient of the loss at the logits (`dlogits`) and through the head into every feature channel
/// (`grad`, overwritten).
pub(crate) fn head_loss_backward(
    dev: &CudaDevice,
    weight: &CudaView<'_, f32>,
    bufs: LossBackward<'_>,
    head: Head,
    batch: Batch,
) -> Result<()> {
    const OP: &str = "head_loss_backward";
    let smem = validate_head(OP, dev, &head, &batch, 0)?;
    check_probs_labels(OP, bufs.probs, bufs.labels, bufs.class_weight, &head, &batch)?;
    let n_feat = checked_len(OP, &[batch.images, head.c_total, batch.plane()])?;
    let n_dl = checked_len(OP, &[batch.images, head.n_classes, batch.plane()])?;
    need(bufs.grad.len() >= n_feat, OP, || {
        format!("gradient buffer holds {}, needs {n_feat}", bufs.grad.len())
    })?;
    need(bufs.dlogits.len() >= n_dl, OP, || format!("dlogits hold {}, need {n_dl}", bufs.dlogits.len()))?;
    need(bufs.consts.len() == LOSS_CONSTS, OP, || format!("{} loss constants", bufs.consts.len()))?;
    need(weight.len() == head.n_classes * head.c_total, OP, || {
        format!("head weights hold {}", weight.len())
    })?;
    let f = dev.function(KernelModule::Head, "head_loss_backward")?;
    let pixels = batch.images * batch.plane();
    let cfg = LaunchConfig {
        grid_dim: grid_check(OP, (pixels.div_ceil(THREADS as usize), 1, 1))?,
        block_dim: (THREADS, 1, 1),
        shared_mem_bytes: smem,
    };
    let args = [
        int(batch.images, OP, "images")?,
        int(head.c_total, OP, "c_total")?,
        int(head.n_classes, OP, "n_classes")?,
        int(batch.plane(), OP, "h·w")?,
    ];
    let stream = dev.compute_stream();
    let mut b = stream.launch_builder(&f);
    b.arg(bufs.probs).arg(bufs.labels).arg(bufs.class_weight).arg(bufs.consts).arg(weight);
    b.arg(bufs.dlogits).arg(bufs.grad);
    for a in &args {
        b.arg(a);
    }
    // SAFETY: arguments match head_loss_backward (probs, labels, class_weight, consts, weight, dlogits, grad,
    // images, c_total, n_classes, plane). Thread gp < images·plane reads its label, n_classes
    // probabilities, LOSS_CONSTS constants and (label < n_classes) one class weight, and writes n_classes
    // dlogits and c_total gradient values of its pixel; lengths checked above. Shared memory holds the
    // n_classes·c_total head weights.
    unsafe { b.launch(cfg) }.during("launching head_loss_backward")?;
    Ok(())
}

/// Rows of partial sums [`head_weight_grad`] writes for `batch`.
pub(crate) fn head_grad_rows(batch: Batch) -> usize {
    (batch.images * batch.plane()).div_ceil(HEAD_PIXELS_PER_BLOCK)
}

/// First stage of the head's weight and bias gradients (`[rows][n_classes·c_total + n_classes]`).
pub(crate) fn head_weight_grad(
    dev: &CudaDevice,
    feat: &CudaSlice<f32>,
    dlogits: &CudaSlice<f32>,
    partials: &mut CudaSlice<f32>,
    head: Head,
    batch: Batch,
) -> Result<usize> {
    const OP: &str = "head_weight_grad";
    validate_head(OP, dev, &head, &batch, 0)?;
    let n_feat = checked_len(OP, &[batch.images, head.c_total, batch.plane()])?;
    let n_dl = checked_len(OP, &[batch.images, head.n_classes, batch.plane()])?;
    let rows = head_grad_rows(batch);
    let n_part = checked_len(OP, &[rows, head.n_classes * head.c_total + head.n_classes])?;
    need(feat.len() >= n_feat, OP, || format!("feature buffer holds {}, needs {n_feat}", feat.len()))?;
    need(dlogits.len() >= n_dl, OP, || format!("dlogits hold {}, need {n_dl}", dlogits.len()))?;
    need(partials.len() >= n_part, OP, || format!("partials hold {}, need {n_part}", partials.len()))?;
    let f = dev.function(KernelModule::Head, "head_weight_grad")?;
    let cfg = LaunchConfig {
        grid_dim: grid_check(OP, (rows, head.c_total, 1))?,
        block_dim: (THREADS, 1, 1),
        shared_mem_bytes: 0,
    };
    let args = [
        int(batch.images, OP, "images")?,
        int(head.c_total, OP, "c_total")?,
        int(head.n_classes, OP, "n_classes")?,
        int(batch.plane(), OP, "h·w")?,
        int(HEAD_PIXELS_PER_BLOCK, OP, "pixels per block")?,
    ];
    let stream = dev.compute_stream();
    let mut b = stream.launch_builder(&f);
    b.arg(feat).arg(dlogits).arg(partials);
    for a in &args {
        b.arg(a);
    }
    // SAFETY: arguments match head_weight_grad (feat, dlogits, partials, images, c_total, n_classes, plane,
    // pixels_per_block). Block (bx, c) reads pixels [bx·ppb, min((bx+1)·ppb, images·plane)) of channel
    // c < c_total and of n_classes dlogits, and writes row bx < rows at offsets < n_classes·(c_total+1);
    // lengths checked above. Its 64 floats of shared memory are static.
    unsafe { b.launch(cfg) }.during("launching head_weight_grad")?;
    Ok(rows)
}

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
    let f = dev.function(KernelModule::Adam, "adam_step")?;
    let cfg =
        LaunchConfig { grid_dim: (one_d(n) as u32, 1, 1), block_dim: (THREADS, 1, 1), shared_mem_bytes: 0 };
    let stream = dev.compute_stream();
    let mut b = stream.launch_builder(&f);
    b.arg(param).arg(grad).arg(m).arg(v).arg(&n_i);
    b.arg(&step.lr).arg(&step.beta1).arg(&step.beta2).arg(&step.eps);
    b.arg(&step.bias_correction1).arg(&step.bias_correction2);
    // SAFETY: arguments match adam_step (param, grad, m, v, n, lr, beta1, beta2, eps, bc1, bc2); the
    // grid-stride loop touches indices < n, the common length of all four buffers (checked).
    unsafe { b.launch(cfg) }.during("launching adam_step")?;
    Ok(())
}
