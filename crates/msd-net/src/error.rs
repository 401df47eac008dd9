//! The error type of `msd-net`: every failure says what went wrong and where.
use std::path::PathBuf;

/// Result with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong when building, training, saving, loading or applying an MSDnet.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The network configuration is not usable (zero depth, a dilation of 0, too few classes, ...).
    #[error("invalid MSDnet configuration: {what}")]
    InvalidConfig {
        /// What is wrong, with the offending values.
        what: String,
    },
    /// A training option is not usable.
    #[error("invalid training configuration: {what}")]
    InvalidTrainConfig {
        /// What is wrong, with the offending values.
        what: String,
    },
    /// A buffer handed to a kernel or backend does not have the length its shape implies.
    #[error("{what}: expected {expected} values, found {found}")]
    BufferLength {
        /// Which buffer.
        what: String,
        /// Length implied by the shape.
        expected: usize,
        /// Length given.
        found: usize,
    },
    /// Input data (images, labels, volumes) cannot be used as given.
    #[error("invalid input: {what}")]
    InvalidInput {
        /// What is wrong and where.
        what: String,
    },
    /// A file could not be opened, read or written.
    #[error("I/O error on {path}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying cause.
        #[source]
        source: std::io::Error,
    },
    /// A model or checkpoint file is not a readable safetensors file.
    #[error("{path}: not a valid safetensors file: {what}")]
    Format {
        /// The file involved.
        path: PathBuf,
        /// What the safetensors parser reported.
        what: String,
    },
    /// A tensor the model needs is absent from the file.
    #[error("{path}: tensor `{name}` is missing")]
    MissingTensor {
        /// The file involved.
        path: PathBuf,
        /// The tensor's name.
        name: String,
    },
    /// A tensor has another shape or dtype than the metadata implies.
    #[error("{path}: tensor `{name}` has shape {found:?} ({dtype}), expected {expected:?} (F32)")]
    TensorShape {
        /// The file involved.
        path: PathBuf,
        /// The tensor's name.
        name: String,
        /// The shape the architecture implies.
        expected: Vec<usize>,
        /// The shape stored.
        found: Vec<usize>,
        /// The stored dtype.
        dtype: String,
    },
    /// A tensor holds NaN or infinite values.
    #[error("{path}: tensor `{name}` holds a non-finite value at flat index {index}")]
    NonFinite {
        /// The file involved (empty for in-memory parameters).
        path: PathBuf,
        /// The tensor's name.
        name: String,
        /// Index of the first non-finite value.
        index: usize,
    },
    /// The JSON metadata of a model file is missing, unparsable or inconsistent.
    #[error("{path}: bad model metadata: {what}")]
    Metadata {
        /// The file involved.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// Training produced a non-finite loss (diverged).
    #[error("training diverged: non-finite loss at epoch {epoch}, step {step}")]
    Diverged {
        /// Epoch (0-based).
        epoch: usize,
        /// Optimiser step (0-based, counted over the whole run).
        step: u64,
    },
    /// An error from candle (the reference implementation and tensor glue).
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    /// An error from `msd-io` (volume geometry, shapes).
    #[error(transparent)]
    Io3d(#[from] msd_io::Error),
    /// A CUDA device was asked for, but this build has no CUDA kernels.
    ///
    /// Rebuild with the `cuda` feature (`cargo build --features cuda`; no CUDA toolkit is needed, the
    /// kernels compile at run time), or ask for [`Device::Cpu`](crate::Device::Cpu) or
    /// [`Device::Auto`](crate::Device::Auto).
    #[error(
        "{device} was asked for, but msd was built without CUDA support (rebuild with --features cuda, or use the CPU)"
    )]
    CudaNotBuilt {
        /// The device asked for.
        device: crate::Device,
    },
    /// A CUDA device was asked for; the build has CUDA, but this machine cannot run it (no NVIDIA
    /// driver, no such GPU, or no NVRTC library to compile the kernels).
    #[error("{device} was asked for, but CUDA cannot run here: {reason}")]
    CudaUnavailable {
        /// The device asked for.
        device: crate::Device,
        /// What is missing.
        reason: String,
    },
    /// A backend (for example CUDA) failed.
    #[error("{backend} backend: {what}")]
    Backend {
        /// The backend's name.
        backend: String,
        /// What failed.
        what: String,
    },
}

impl Error {
    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    pub(crate) fn len(what: impl Into<String>, expected: usize, found: usize) -> Self {
        Error::BufferLength { what: what.into(), expected, found }
    }
}
