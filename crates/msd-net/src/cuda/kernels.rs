//! The kernel sources, their typed list and their NVRTC compilation.
//!
//! Each `.cu` file is one kernel family; `common.cuh` is prepended to every one before compilation
//! (NVRTC gets no include paths, so the build needs no CUDA toolkit and the run needs only the driver
//! and `libnvrtc`).

use cudarc::nvrtc::{CompileError, CompileOptions, Ptx};

use super::error::{Error, Result};

/// The shared header, prepended to every module.
const COMMON: &str = include_str!("common.cuh");

/// One compiled unit: a `.cu` file and the entry points the Rust side launches from it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum KernelModule {
    /// `conv_forward.cu`: dilated 3×3 + bias + ReLU, f32 / f16 / bf16 feature storage.
    ConvForward,
    /// `conv_backward.cu`: ReLU mask, input gradient, weight and bias gradients, partial-sum reduction.
    ConvBackward,
    /// `head.cu`: input normalisation, the final 1×1 layer, softmax / cross-entropy and gradients.
    Head,
    /// `adam.cu`: the Adam update.
    Adam,
}

impl KernelModule {
    /// Every module, in a fixed order.
    pub const ALL: [KernelModule; 4] =
        [KernelModule::ConvForward, KernelModule::ConvBackward, KernelModule::Head, KernelModule::Adam];

    /// The file name, as NVRTC reports it in diagnostics.
    pub fn file_name(self) -> &'static str {
        match self {
            KernelModule::ConvForward => "conv_forward.cu",
            KernelModule::ConvBackward => "conv_backward.cu",
            KernelModule::Head => "head.cu",
            KernelModule::Adam => "adam.cu",
        }
    }

    /// The module's own source (without the shared header).
    pub fn source(self) -> &'static str {
        match self {
            KernelModule::ConvForward => include_str!("conv_forward.cu"),
            KernelModule::ConvBackward => include_str!("conv_backward.cu"),
            KernelModule::Head => include_str!("head.cu"),
            KernelModule::Adam => include_str!("adam.cu"),
        }
    }

    /// The source NVRTC compiles: the shared header, then the module.
    pub fn full_source(self) -> String {
        let mut src = String::with_capacity(COMMON.len() + self.source().len() + 1);
        src.push_str(COMMON);
        src.push('\n');
        src.push_str(self.source());
        src
    }

    /// Every `extern "C"` entry point the Rust side looks up in this module.
    pub fn entry_points(self) -> &'static [&'static str] {
        match self {
            KernelModule::ConvForward => &[
                "conv3x3_forward_tiled_o1_f32",
                "conv3x3_forward_tiled_o4_f32",
                "conv3x3_forward_direct_o1_f32",
                "conv3x3_forward_direct_o4_f32",
                "conv3x3_forward_tiled_o1_f16",
                "conv3x3_forward_tiled_o4_f16",
                "conv3x3_forward_direct_o1_f16",
                "conv3x3_forward_direct_o4_f16",
                "conv3x3_forward_tiled_o1_bf16",
                "conv3x3_forward_tiled_o4_bf16",
                "conv3x3_forward_direct_o1_bf16",
                "conv3x3_forward_direct_o4_bf16",
            ],
            KernelModule::ConvBackward => &[
                "relu_mask",
                "conv3x3_backward_input_o1",
                "conv3x3_backward_input_o4",
                "conv3x3_weight_grad_tiled_o1",
                "conv3x3_weight_grad_tiled_o4",
                "conv3x3_weight_grad_direct_o1",
                "conv3x3_weight_grad_direct_o4",
                "conv3x3_backward_input_group",
                "conv3x3_weight_grad_group",
                "reduce_partials",
            ],
            KernelModule::Head => &[
                "input_normalize_f32",
                "input_normalize_f16",
                "input_normalize_bf16",
                "head_softmax_f32",
                "head_softmax_f16",
                "head_softmax_bf16",
                "head_argmax_f32",
                "head_argmax_f16",
                "head_argmax_bf16",
                "head_loss_stats",
                "head_loss_backward",
                "head_weight_grad",
            ],
            KernelModule::Adam => &["adam_step"],
        }
    }
}

/// A compute capability, `(major, minor)`, e.g. `(9, 0)` for an H100.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ComputeCapability {
    /// Major version.
    pub major: u32,
    /// Minor version.
    pub minor: u32,
}

impl ComputeCapability {
    /// The virtual architecture name NVRTC compiles PTX for, e.g. `compute_90`.
    pub fn virtual_arch(self) -> String {
        format!("compute_{}{}", self.major, self.minor)
    }
}

/// Whether the NVRTC library can be loaded on this machine (looked up on the library path).
pub fn nvrtc_available() -> bool {
    // SAFETY: only tries to open the library with `dlopen` and closes it again; no NVRTC symbol is called.
    unsafe { cudarc::nvrtc::sys::is_culib_present() }
}

/// The explicit NVRTC options every module is compiled with: PTX for `arch`, C++17, IEEE-exact division
/// and square root, denormals kept (no `--use_fast_math`: the CPU comparison tests hold to 1e-4).
///
/// `extra` options follow the fixed ones (tuning runs pass `-D` macros this way, see
/// [`CudaDevice::new`](super::CudaDevice::new)).
pub fn compile_options(module: KernelModule, arch: ComputeCapability, extra: &[String]) -> CompileOptions {
    let mut options = vec![format!("--gpu-architecture={}", arch.virtual_arch()), "--std=c++17".to_owned()];
    options.extend(extra.iter().cloned());
    CompileOptions {
        ftz: Some(false),
        prec_sqrt: Some(true),
        prec_div: Some(true),
        fmad: Some(true),
        options,
        name: Some(module.file_name().to_owned()),
        ..Default::default()
    }
}

/// Compiles `module` to PTX for `arch` with NVRTC and the [`compile_options`] (plus `extra`). Needs
/// `libnvrtc` but no GPU.
///
/// # Errors
/// [`Error::NvrtcUnavailable`] when `libnvrtc` cannot be loaded, [`Error::Compile`] with the compiler's
/// log when NVRTC rejects the source.
pub fn compile(module: KernelModule, arch: ComputeCapability, extra: &[String]) -> Result<Ptx> {
    if !nvrtc_available() {
        return Err(Error::NvrtcUnavailable {
            reason: "libnvrtc was not found on the library path (LD_LIBRARY_PATH)".to_owned(),
        });
    }
    cudarc::nvrtc::compile_ptx_with_opts(module.full_source(), compile_options(module, arch, extra)).map_err(
        |e| {
            let log = match e {
                CompileError::CompileError { log, .. } => log.to_string_lossy().into_owned(),
                other => other.to_string(),
            };
            Error::Compile { module: module.file_name(), arch: arch.virtual_arch(), log }
        },
    )
}

/// The newest virtual architecture this NVRTC can compile for that is not newer than `device`: PTX for
/// an older architecture runs on newer devices (the driver compiles it at load time).
///
/// # Errors
/// [`Error::NvrtcUnavailable`] when `libnvrtc` cannot be loaded or answers with an error.
pub fn best_arch_for(device: ComputeCapability) -> Result<ComputeCapability> {
    if !nvrtc_available() {
        return Err(Error::NvrtcUnavailable {
            reason: "libnvrtc was not found on the library path".to_owned(),
        });
    }
    let mut n: std::ffi::c_int = 0;
    // SAFETY: the library is present (checked above); the call writes one int through a valid pointer.
    let status = unsafe { cudarc::nvrtc::sys::nvrtcGetNumSupportedArchs(&mut n) };
    if status != cudarc::nvrtc::sys::nvrtcResult::NVRTC_SUCCESS || n <= 0 || n > 4096 {
        return Err(Error::NvrtcUnavailable {
            reason: format!("nvrtcGetNumSupportedArchs answered {status:?}"),
        });
    }
    let mut archs = vec![0 as std::ffi::c_int; n as usize];
    // SAFETY: `archs` holds exactly the number of entries NVRTC just reported.
    let status = unsafe { cudarc::nvrtc::sys::nvrtcGetSupportedArchs(archs.as_mut_ptr()) };
    if status != cudarc::nvrtc::sys::nvrtcResult::NVRTC_SUCCESS {
        return Err(Error::NvrtcUnavailable {
            reason: format!("nvrtcGetSupportedArchs answered {status:?}"),
        });
    }
    let wanted = device.major * 10 + device.minor;
    archs
        .iter()
        .filter_map(|&a| u32::try_from(a).ok())
        .filter(|&a| a <= wanted)
        .max()
        .map(|a| ComputeCapability { major: a / 10, minor: a % 10 })
        .ok_or_else(|| Error::NvrtcUnavailable {
            reason: format!(
                "this NVRTC supports none of the architectures up to the device's {}",
                device.virtual_arch()
            ),
        })
}
