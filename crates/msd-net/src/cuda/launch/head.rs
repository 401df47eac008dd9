//! The ends of the network (`head.cu`): the input normalisation into the first channels, the final
//! 1×1 layer with softmax or arg-max, and the loss with its gradients (statistics per block of
//! pixels, the gradient at the logits and into every feature channel, the head's weight gradients).

use cudarc::driver::{CudaSlice, CudaView, PushKernelArg};

use super::super::device::CudaDevice;
use super::super::error::{Error, Result};
use super::super::kernels::KernelModule;
use super::{Batch, Features, Kernel, THREADS, checked_len, grid_check, int, linear, need, one_d};

/// Most classes the head kernels handle (`MSD_MAX_CLASSES` in head.cu).
pub const MAX_CLASSES: usize = 8;
/// Pixels each block of the head weight-gradient kernel sums over.
const HEAD_PIXELS_PER_BLOCK: usize = 8192;

const INPUT_NORMALIZE: [&str; 3] = ["input_normalize_f32", "input_normalize_f16", "input_normalize_bf16"];
const HEAD_SOFTMAX: [&str; 3] = ["head_softmax_f32", "head_softmax_f16", "head_softmax_bf16"];
const HEAD_ARGMAX: [&str; 3] = ["head_argmax_f32", "head_argmax_f16", "head_argmax_bf16"];

/// The entry points launched from here.
#[cfg(test)]
pub(super) const KERNELS: [&str; 12] = [
    INPUT_NORMALIZE[0],
    INPUT_NORMALIZE[1],
    INPUT_NORMALIZE[2],
    HEAD_SOFTMAX[0],
    HEAD_SOFTMAX[1],
    HEAD_SOFTMAX[2],
    HEAD_ARGMAX[0],
    HEAD_ARGMAX[1],
    HEAD_ARGMAX[2],
    "head_loss_stats",
    "head_loss_backward",
    "head_weight_grad",
];

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
    let ints = [
        int(batch.images, OP, "images")?,
        int(c_in, OP, "c_in")?,
        int(c_total, OP, "c_total")?,
        int(batch.plane(), OP, "h·w")?,
    ];
    let kernel = Kernel::load(dev, KernelModule::Head, INPUT_NORMALIZE[feat.kernel_index()])?;
    // SAFETY: the argument list matches input_normalize_* (raw, feat, mean, inv_std, images, c_in, c_total,
    // plane); the kernel reads images·c_in·plane raw values and writes the first c_in channels of
    // images·c_total·plane feature values, both checked above; the grid-stride loop bounds every index.
    unsafe {
        kernel.launch(linear(one_d(n_raw), 0), &ints, |b| {
            b.arg(raw);
            feat.arg_mut(b);
            b.arg(mean).arg(inv_std);
        })
    }
}

/// Head geometry: `n_classes` outputs over `c_total` channels.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Head {
    pub c_total: usize,
    pub n_classes: usize,
}

/// Checks the head and batch and that the head's weights (plus `extra_smem` floats) fit in shared
/// memory; returns the shared memory in bytes.
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

/// The integer arguments `(images, c_total, n_classes, plane)` every per-pixel head kernel takes.
fn head_ints(op: &'static str, head: &Head, batch: &Batch) -> Result<[i32; 4]> {
    Ok([
        int(batch.images, op, "images")?,
        int(head.c_total, op, "c_total")?,
        int(head.n_classes, op, "n_classes")?,
        int(batch.plane(), op, "h·w")?,
    ])
}

/// One thread per pixel of the batch, in blocks of `THREADS`.
fn per_pixel(op: &'static str, batch: &Batch) -> Result<(u32, u32, u32)> {
    grid_check(op, ((batch.images * batch.plane()).div_ceil(THREADS as usize), 1, 1))
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
    let kernel = Kernel::load(dev, KernelModule::Head, HEAD_SOFTMAX[feat.kernel_index()])?;
    let ints = head_ints(OP, &head, &batch)?;
    // SAFETY: arguments match head_softmax_* (feat, weight, bias, probs, images, c_total, n_classes,
    // plane). One thread per pixel of images·plane (threads past it return after the barrier); it reads
    // c_total channels of its pixel and writes n_classes probabilities, within the checked lengths;
    // shared memory holds exactly n_classes·c_total weights.
    unsafe {
        kernel.launch(linear(per_pixel(OP, &batch)?, smem), &ints, |b| {
            feat.arg(b);
            b.arg(weight).arg(bias).arg(probs);
        })
    }
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
    let kernel = Kernel::load(dev, KernelModule::Head, HEAD_ARGMAX[feat.kernel_index()])?;
    let ints = head_ints(OP, &head, &batch)?;
    // SAFETY: arguments match head_argmax_* (feat, weight, bias, labels, images, c_total, n_classes,
    // plane); as head_softmax, writing one label per pixel of images·plane (checked).
    unsafe {
        kernel.launch(linear(per_pixel(OP, &batch)?, smem), &ints, |b| {
            feat.arg(b);
            b.arg(weight).arg(bias).arg(labels);
        })
    }
}

/// Floats per row of the loss statistics (`MSD_LOSS_STATS` in head.cu): weighted cross-entropy, then
/// per class (8 slots) the soft-Dice intersection, prediction mass and label count.
pub(crate) const LOSS_STATS: usize = 1 + 3 * MAX_CLASSES;

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
    let kernel = Kernel::load(dev, KernelModule::Head, "head_loss_stats")?;
    let ints = [
        int(batch.images, OP, "images")?,
        int(head.n_classes, OP, "n_classes")?,
        int(batch.plane(), OP, "h·w")?,
    ];
    // SAFETY: arguments match head_loss_stats (probs, labels, class_weight, partials, images, n_classes,
    // plane). Thread gp < images·plane reads its label, n_classes probabilities and (for a label <
    // n_classes) one class weight; thread t < LOSS_STATS of block b writes partials[b·LOSS_STATS + t],
    // b < rows. Lengths checked above; the reduction scratch is static shared memory.
    unsafe {
        kernel.launch(linear(grid_check(OP, (rows, 1, 1))?, 0), &ints, |b| {
            b.arg(probs).arg(labels).arg(class_weight).arg(partials);
        })
    }?;
    Ok(rows)
}

/// Floats of the loss-gradient constants: `[norm, dice_a[0..8], dice_b[0..8]]`.
pub(crate) const LOSS_CONSTS: usize = 1 + 2 * MAX_CLASSES;

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
    let kernel = Kernel::load(dev, KernelModule::Head, "head_loss_backward")?;
    let ints = head_ints(OP, &head, &batch)?;
    let LossBackward { probs, labels, class_weight, consts, dlogits, grad } = bufs;
    // SAFETY: arguments match head_loss_backward (probs, labels, class_weight, consts, weight, dlogits, grad,
    // images, c_total, n_classes, plane). Thread gp < images·plane reads its label, n_classes
    // probabilities, LOSS_CONSTS constants and (label < n_classes) one class weight, and writes n_classes
    // dlogits and c_total gradient values of its pixel; lengths checked above. Shared memory holds the
    // n_classes·c_total head weights.
    unsafe {
        kernel.launch(linear(per_pixel(OP, &batch)?, smem), &ints, |b| {
            b.arg(probs).arg(labels).arg(class_weight).arg(consts).arg(weight);
            b.arg(dlogits).arg(grad);
        })
    }
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
    let kernel = Kernel::load(dev, KernelModule::Head, "head_weight_grad")?;
    let ints = [
        int(batch.images, OP, "images")?,
        int(head.c_total, OP, "c_total")?,
        int(head.n_classes, OP, "n_classes")?,
        int(batch.plane(), OP, "h·w")?,
        int(HEAD_PIXELS_PER_BLOCK, OP, "pixels per block")?,
    ];
    // SAFETY: arguments match head_weight_grad (feat, dlogits, partials, images, c_total, n_classes, plane,
    // pixels_per_block). Block (bx, c) reads pixels [bx·ppb, min((bx+1)·ppb, images·plane)) of channel
    // c < c_total and of n_classes dlogits, and writes row bx < rows at offsets < n_classes·(c_total+1);
    // lengths checked above. Its 64 floats of shared memory are static.
    unsafe {
        kernel.launch(linear(grid_check(OP, (rows, head.c_total, 1))?, 0), &ints, |b| {
            b.arg(feat).arg(dlogits).arg(partials);
        })
    }?;
    Ok(rows)
}
