//! One module per subcommand.
pub mod convert;
pub mod demo;
pub mod eval;
pub mod implant;
pub mod info;
pub mod label;
pub mod mesh;
pub mod segment;
pub mod threshold;
pub mod train;

use std::path::Path;

use anyhow::Context as _;
use msd::io::{LabelVolume, Volume};
use msd::net::{Backend as _, CandleBackend, CpuBackend, Device, Engine, MsdConfig, ResolvedDevice};

use crate::Ui;

/// Reads a CT volume (HU), naming the file in the error. A DICOM series with uneven slice spacing
/// or gantry tilt is refused (the error says to pass `--resample`).
pub fn read_ct(path: &Path) -> anyhow::Result<Volume<f32>> {
    read_ct_resampled(path, false)
}

/// The DICOM read options of the `--resample` flag: uneven spacing and gantry tilt resampled onto
/// a regular grid, or both refused.
pub fn dicom_options(resample: bool) -> msd::io::dicom::ReadOptions {
    use msd::io::dicom::{ReadOptions, Resampling};
    let r = if resample { Resampling::Resample } else { Resampling::Refuse };
    ReadOptions { gantry_tilt: r, uneven_spacing: r, ..ReadOptions::default() }
}

/// Reads a CT volume (HU); with `resample`, a DICOM series with uneven slice spacing or gantry tilt
/// is resampled onto a regular grid instead of refused.
pub fn read_ct_resampled(path: &Path, resample: bool) -> anyhow::Result<Volume<f32>> {
    msd::io::read_volume_with(path, &dicom_options(resample))
        .map_err(|e| with_resample_hint(e.into()))
        .with_context(|| format!("cannot read the CT {}", path.display()))
}

/// Adds "pass --resample" to an error that a DICOM series is not a regular grid.
pub fn with_resample_hint(e: anyhow::Error) -> anyhow::Error {
    let irregular = e.chain().any(|c| {
        matches!(
            c.downcast_ref::<msd::io::Error>(),
            Some(msd::io::Error::GantryTilt { .. } | msd::io::Error::UnevenSpacing { .. })
        )
    });
    if irregular {
        e.context("the series is not a regular grid: pass --resample to resample it onto one")
    } else {
        e
    }
}

/// Reads a label volume, naming the file in the error.
pub fn read_labels(path: &Path) -> anyhow::Result<LabelVolume> {
    msd::io::read_labels(path).with_context(|| format!("cannot read the labels {}", path.display()))
}

/// Reads a mesh, naming the file in the error.
pub fn read_mesh(path: &Path) -> anyhow::Result<msd::geom::Mesh> {
    msd::geom::read_mesh(path).with_context(|| format!("cannot read the mesh {}", path.display()))
}

/// Writes a volume, naming the file in the error.
pub fn write_volume<T: msd::io::VoxelType>(path: &Path, volume: &Volume<T>) -> anyhow::Result<()> {
    msd::io::write_volume(path, volume).with_context(|| format!("cannot write {}", path.display()))
}

/// Writes a mesh, naming the file in the error.
pub fn write_mesh(path: &Path, mesh: &msd::geom::Mesh) -> anyhow::Result<()> {
    msd::geom::write_mesh(path, mesh).with_context(|| format!("cannot write {}", path.display()))
}

/// Number of non-zero voxels.
pub fn count_labelled(labels: &LabelVolume) -> usize {
    labels.data().iter().filter(|&&v| v != 0).count()
}

/// The name of the backend that trains or applies `network` (`cpu-avx512`, `cpu-avx2`, ...), for
/// the line `msd train` and `msd segment` print when they start.
pub fn backend_name(network: &MsdConfig) -> anyhow::Result<String> {
    engine_backend_name(network, Engine::Kernels)
}

/// [`backend_name`] for a training engine (`candle-cpu-avx512` for candle's autograd).
pub fn engine_backend_name(network: &MsdConfig, engine: Engine) -> anyhow::Result<String> {
    let name = match engine {
        Engine::Kernels => CpuBackend::new(network).map(|b| b.name()),
        Engine::Candle => CandleBackend::new(network).map(|b| b.name()),
    };
    name.context("cannot set up the MSDnet")
}

/// Resolves `--device` once, before any work, and prints the line saying which device runs and
/// why (`device: CPU (auto: built without CUDA support)`). A GPU this build or machine cannot use
/// is an error (exit status 1) before anything is read or written.
pub fn resolve_device(device: Device, ui: &Ui) -> anyhow::Result<ResolvedDevice> {
    let resolved = device.resolve().with_context(|| format!("cannot use --device {device}"))?;
    ui.say(format!("device: {resolved}"));
    Ok(resolved)
}

/// The backend of the `msd segment` start line on a resolved device: the CPU inference kernels
/// of its precision (`cpu-amx-bf16`, `cpu-avx512`, ...) or `cuda:N`.
pub fn inference_backend_name(options: &msd::net::SegmentOptions, device: Device) -> String {
    match device {
        Device::Cuda(n) => format!("cuda:{n}"),
        _ => format!("cpu-{}", options.cpu_kernels()),
    }
}

/// The backend name of the `msd train` start line on a resolved device: the CPU
/// kernels' (`cpu-avx512`, ...) or `cuda:N`.
pub fn device_backend_name(network: &MsdConfig, engine: Engine, device: Device) -> anyhow::Result<String> {
    match device {
        Device::Cuda(n) => Ok(format!("cuda:{n}")),
        _ => engine_backend_name(network, engine),
    }
}
