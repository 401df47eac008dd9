//! The GPU: driver context, the two streams, device limits and the lazily compiled module cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cudarc::driver::sys::CUdevice_attribute;
use cudarc::driver::{CudaContext, CudaFunction, CudaModule, CudaStream};

use super::error::{DriverContext, Error, Result};
use super::kernels::{self, ComputeCapability, KernelModule};

/// Whether the CUDA driver library (`libcuda`) can be loaded on this machine.
///
/// Every driver call of this module is preceded by this check, so that a machine without a GPU gets
/// [`Error::CudaUnavailable`] instead of a panic inside the dynamically loaded bindings.
pub fn driver_available() -> bool {
    // SAFETY: only tries to `dlopen` the driver library; no driver symbol is called.
    unsafe { cudarc::driver::sys::is_culib_present() }
}

/// Number of CUDA devices, or [`Error::CudaUnavailable`] when the driver is missing or fails to start.
///
/// # Errors
/// [`Error::CudaUnavailable`] when `libcuda` is missing or `cuInit` fails (no device, driver mismatch).
pub fn device_count() -> Result<usize> {
    if !driver_available() {
        return Err(Error::CudaUnavailable {
            reason: "the CUDA driver library (libcuda.so) was not found; is an NVIDIA driver installed?"
                .to_owned(),
        });
    }
    cudarc::driver::result::init()
        .map_err(|e| Error::CudaUnavailable { reason: format!("cuInit failed: {e}") })?;
    let n = CudaContext::device_count()
        .map_err(|e| Error::CudaUnavailable { reason: format!("cuDeviceGetCount failed: {e}") })?;
    Ok(usize::try_from(n).unwrap_or(0))
}

/// One GPU with everything the kernels need: its context, a compute stream and a copy stream, its limits,
/// and the kernel modules, each compiled by NVRTC the first time one of its kernels is launched.
pub struct CudaDevice {
    ctx: Arc<CudaContext>,
    compute: Arc<CudaStream>,
    copy: Arc<CudaStream>,
    name: String,
    capability: ComputeCapability,
    arch: ComputeCapability,
    multiprocessors: u32,
    shared_memory_per_block: u32,
    total_memory: usize,
    extra_options: Vec<String>,
    modules: Mutex<HashMap<KernelModule, Arc<CudaModule>>>,
    functions: Mutex<HashMap<&'static str, CudaFunction>>,
}

impl std::fmt::Debug for CudaDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaDevice")
            .field("ordinal", &self.ctx.ordinal())
            .field("name", &self.name)
            .field("capability", &self.capability)
            .field("arch", &self.arch)
            .field("multiprocessors", &self.multiprocessors)
            .finish_non_exhaustive()
    }
}

impl CudaDevice {
    /// Opens device `ordinal` (0 for the first GPU).
    ///
    /// The environment variable `MSD_NVRTC_OPTIONS`, when set, adds whitespace-separated NVRTC options
    /// to every kernel compilation on this device (tuning knobs such as `-DMSD_CONV_MIN_BLOCKS=3`,
    /// without rebuilding the program).
    ///
    /// # Errors
    /// [`Error::CudaUnavailable`] without a driver or without such a device, [`Error::NvrtcUnavailable`]
    /// when `libnvrtc` is missing (the kernels cannot be compiled), [`Error::Driver`] when the driver
    /// refuses a context or a stream.
    pub fn new(ordinal: usize) -> Result<Arc<Self>> {
        let count = device_count()?;
        if ordinal >= count {
            return Err(Error::CudaUnavailable {
                reason: format!("no CUDA device {ordinal}: the driver reports {count} device(s)"),
            });
        }
        if !kernels::nvrtc_available() {
            return Err(Error::NvrtcUnavailable {
                reason: "libnvrtc was not found on the library path (LD_LIBRARY_PATH); it compiles the \
                         kernels at run time"
                    .to_owned(),
            });
        }
        let ctx = CudaContext::new(ordinal).during("creating the CUDA context")?;
        let (major, minor) = ctx.compute_capability().during("reading the compute capability")?;
        let capability = ComputeCapability {
            major: u32::try_from(major).unwrap_or(0),
            minor: u32::try_from(minor).unwrap_or(0),
        };
        let arch = kernels::best_arch_for(capability)?;
        let attr = |a: CUdevice_attribute, what: &'static str| -> Result<u32> {
            let v = ctx.attribute(a).during(what)?;
            Ok(u32::try_from(v).unwrap_or(0))
        };
        let multiprocessors =
            attr(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, "reading the SM count")?;
        let shared_memory_per_block = attr(
            CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK,
            "reading the shared-memory limit",
        )?;
        let name = ctx.name().during("reading the device name")?;
        let total_memory = ctx.total_mem().during("reading the device memory size")?;
        let extra_options = std::env::var("MSD_NVRTC_OPTIONS")
            .map(|v| v.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default();
        let compute = ctx.new_stream().during("creating the compute stream")?;
        let copy = ctx.new_stream().during("creating the copy stream")?;
        Ok(Arc::new(CudaDevice {
            ctx,
            compute,
            copy,
            name,
            capability,
            arch,
            multiprocessors,
            shared_memory_per_block,
            total_memory,
            extra_options,
            modules: Mutex::new(HashMap::new()),
            functions: Mutex::new(HashMap::new()),
        }))
    }

    /// The device's name, e.g. `NVIDIA H100 80GB HBM3`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The device's compute capability.
    pub fn capability(&self) -> ComputeCapability {
        self.capability
    }

    /// The virtual architecture the kernels are compiled for (the device's, or the newest older one the
    /// loaded NVRTC knows).
    pub fn arch(&self) -> ComputeCapability {
        self.arch
    }

    /// Number of streaming multiprocessors.
    pub fn multiprocessors(&self) -> u32 {
        self.multiprocessors
    }

    /// Shared memory a block may use without opting in, in bytes (48 KiB on current GPUs).
    pub fn shared_memory_per_block(&self) -> u32 {
        self.shared_memory_per_block
    }

    /// The NVRTC options added from `MSD_NVRTC_OPTIONS`.
    pub fn extra_nvrtc_options(&self) -> &[String] {
        &self.extra_options
    }

    /// Device memory in bytes.
    pub fn total_memory(&self) -> usize {
        self.total_memory
    }

    /// The driver context.
    pub fn context(&self) -> &Arc<CudaContext> {
        &self.ctx
    }

    /// The stream all kernels run on.
    pub fn compute_stream(&self) -> &Arc<CudaStream> {
        &self.compute
    }

    /// The stream host↔device copies of streamed inference run on, overlapping the compute stream.
    pub fn copy_stream(&self) -> &Arc<CudaStream> {
        &self.copy
    }

    /// Waits until all work queued on both streams has finished.
    ///
    /// # Errors
    /// [`Error::Driver`] when a kernel or copy failed.
    pub fn synchronize(&self) -> Result<()> {
        self.compute.synchronize().during("waiting for the compute stream")?;
        self.copy.synchronize().during("waiting for the copy stream")
    }

    /// Compiles and loads every module now rather than at first use (keeps compilation out of timings).
    ///
    /// # Errors
    /// [`Error::Compile`] or [`Error::Driver`] as for a launch.
    pub fn load_all(&self) -> Result<()> {
        for module in KernelModule::ALL {
            for name in module.entry_points() {
                self.function(module, name)?;
            }
        }
        Ok(())
    }

    /// The kernel `name` of `module`, compiling and loading the module the first time.
    pub(crate) fn function(&self, module: KernelModule, name: &'static str) -> Result<CudaFunction> {
        if let Some(f) = self.functions.lock().unwrap_or_else(|p| p.into_inner()).get(name) {
            return Ok(f.clone());
        }
        let loaded = {
            let mut modules = self.modules.lock().unwrap_or_else(|p| p.into_inner());
            match modules.get(&module) {
                Some(m) => m.clone(),
                None => {
                    let ptx = kernels::compile(module, self.arch, &self.extra_options)?;
                    let m = self.ctx.load_module(ptx).during("loading a compiled kernel module")?;
                    modules.insert(module, m.clone());
                    m
                }
            }
        };
        let f = loaded.load_function(name).during("looking up a kernel entry point")?;
        self.functions.lock().unwrap_or_else(|p| p.into_inner()).insert(name, f.clone());
        Ok(f)
    }
}
