//! The network as the kernels see it on the device: views of the head in the flat parameter vector,
//! the layer and group descriptors of each launch, the forward pass over every 3×3 layer, and the
//! host side of a download and of Adam's bias corrections, shared by training and streamed inference.

use cudarc::driver::CudaSlice;

use super::device::CudaDevice;
use super::error::{DriverContext, Result};
use super::launch::{self, Batch, Features, Group, Head, Layer};
use super::shape::Layout;
use crate::{AdamConfig, MsdConfig};

/// Copies a device buffer to a new host vector and waits for it.
pub(crate) fn download<T: cudarc::driver::DeviceRepr + Default + Clone>(
    dev: &CudaDevice,
    src: &CudaSlice<T>,
    what: &'static str,
) -> Result<Vec<T>> {
    let s = dev.compute_stream();
    let v = s.clone_dtoh(src).during(what)?;
    s.synchronize().during(what)?;
    Ok(v)
}

/// The head's weight and bias views in the flat parameter vector.
pub(crate) fn head_views<'a>(
    sh: &MsdConfig,
    params: &'a CudaSlice<f32>,
) -> (cudarc::driver::CudaView<'a, f32>, cudarc::driver::CudaView<'a, f32>) {
    let start = sh.conv_weight_len() + sh.conv_bias_len();
    let mid = start + sh.head_weight_len();
    (params.slice(start..mid), params.slice(mid..mid + sh.n_classes))
}

pub(crate) fn head_of(sh: &MsdConfig) -> Head {
    Head { c_total: sh.total_channels(), n_classes: sh.n_classes }
}

/// Layers per group of the grouped backward (their masked gradients fill at most
/// [`launch::GROUP_SLOTS`] channels).
pub(crate) fn group_layers(sh: &MsdConfig) -> usize {
    (launch::GROUP_SLOTS / sh.width).max(1)
}

/// The group of layers `i0..i1`.
pub(crate) fn group_of(sh: &MsdConfig, i0: usize, i1: usize) -> Group {
    Group {
        cin0: sh.layer_inputs(i0),
        layers: i1 - i0,
        width: sh.width,
        c_total: sh.total_channels(),
        dmax: sh.dilations[i0..i1].iter().copied().max().unwrap_or(1),
    }
}

pub(crate) fn layer_of(sh: &MsdConfig, i: usize) -> Layer {
    Layer { cin: sh.layer_inputs(i), width: sh.width, c_total: sh.total_channels(), dil: sh.dilations[i] }
}

/// Runs every 3×3 layer over `feat` (channels `0..c_in` already filled).
pub(crate) fn run_layers(
    dev: &CudaDevice,
    sh: &MsdConfig,
    params: &CudaSlice<f32>,
    feat: &mut Features,
    batch: Batch,
) -> Result<()> {
    let bias0 = sh.conv_weight_len();
    for i in 0..sh.depth {
        let wo = sh.weight_offset(i);
        let weight = params.slice(wo..wo + sh.layer_weight_len(i));
        let bias = params.slice(bias0 + i * sh.width..bias0 + (i + 1) * sh.width);
        launch::conv_forward(dev, feat, &weight, &bias, layer_of(sh, i), batch)?;
    }
    Ok(())
}

pub(crate) fn adam_bias_corrections(adam: &AdamConfig, t: u64) -> (f32, f32) {
    let t = i32::try_from(t).unwrap_or(i32::MAX);
    ((1.0 - f64::from(adam.beta1).powi(t)) as f32, (1.0 - f64::from(adam.beta2).powi(t)) as f32)
}
