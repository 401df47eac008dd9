//! Errors of the CUDA backend.

use cudarc::driver::DriverError;

/// Result of the CUDA backend.
pub type Result<T> = std::result::Result<T, Error>;

/// What went wrong in the CUDA backend, and where.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No usable CUDA driver or device: the library was not found, or it found no device.
    #[error("CUDA is not available: {reason}")]
    CudaUnavailable {
        /// Why (missing library, no device, ordinal out of range).
        reason: String,
    },
    /// The NVRTC run-time compiler library could not be loaded.
    #[error("the NVRTC run-time compiler is not available: {reason}")]
    NvrtcUnavailable {
        /// Why.
        reason: String,
    },
    /// A CUDA driver call failed.
    #[error("CUDA driver error while {context}")]
    Driver {
        /// What the backend was doing.
        context: &'static str,
        /// The driver's error code.
        #[source]
        source: DriverError,
    },
    /// NVRTC rejected a kernel source.
    #[error("NVRTC failed to compile {module} for {arch}: {log}")]
    Compile {
        /// The kernel file.
        module: &'static str,
        /// The virtual architecture compiled for, e.g. `compute_90`.
        arch: String,
        /// The compiler's log (or the error, when there is no log).
        log: String,
    },
    /// A network shape the kernels cannot run (zero sizes, too many classes, sizes over `i32`).
    #[error("invalid network shape: {0}")]
    InvalidShape(String),
    /// A buffer or argument whose length or value does not fit the network or batch.
    #[error("invalid argument to {op}: {reason}")]
    InvalidArgument {
        /// The operation that checked it.
        op: &'static str,
        /// What did not fit.
        reason: String,
    },
    /// The driver refused to queue a kernel (a launch that its checks passed; an earlier
    /// asynchronous failure can also surface here).
    #[error("CUDA driver refused to launch {kernel}")]
    Launch {
        /// The kernel's entry point.
        kernel: &'static str,
        /// The driver's error code.
        #[source]
        source: DriverError,
    },
    /// A launch whose grid or shared memory exceeds what the device allows.
    #[error("launch of {kernel} does not fit the device: {reason}")]
    LaunchTooLarge {
        /// The kernel.
        kernel: &'static str,
        /// Which limit.
        reason: String,
    },
    /// A configuration, parameter set or loss setting the crate rejects.
    #[error(transparent)]
    Net(Box<crate::Error>),
    /// An operation that needs an earlier step (e.g. backward before any forward pass).
    #[error("{op} needs {needs} first")]
    OutOfOrder {
        /// The operation called.
        op: &'static str,
        /// What must run before it.
        needs: &'static str,
    },
}

/// Attaches what the backend was doing to a driver error.
pub(crate) trait DriverContext<T> {
    /// Maps a [`DriverError`] to [`Error::Driver`] with `context`.
    fn during(self, context: &'static str) -> Result<T>;
}

impl<T> DriverContext<T> for std::result::Result<T, DriverError> {
    fn during(self, context: &'static str) -> Result<T> {
        self.map_err(|source| Error::Driver { context, source })
    }
}

impl From<Error> for crate::Error {
    /// A crate error that passed through the backend ([`Error::Net`]) comes back as itself; every
    /// other CUDA error is kept whole as the source of [`crate::Error::Cuda`].
    fn from(e: Error) -> Self {
        match e {
            Error::Net(inner) => *inner,
            other => crate::Error::Cuda(other),
        }
    }
}

impl From<crate::Error> for Error {
    fn from(e: crate::Error) -> Self {
        Error::Net(Box::new(e))
    }
}
