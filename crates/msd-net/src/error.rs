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
    /// Two arrays that must have the same shape do not (a CT and its probability volume, ...).
    #[error("{op}: shapes {lhs:?} and {rhs:?} differ")]
    ShapeMismatch {
        /// The operation that needed them to agree.
        op: &'static str,
        /// The first array's shape.
        lhs: Vec<usize>,
        /// The second array's shape.
        rhs: Vec<usize>,
    },
    /// An image (or every image of a batch) has no pixels.
    #[error("an image of {height} × {width} pixels is empty")]
    EmptyImage {
        /// Rows.
        height: usize,
        /// Columns.
        width: usize,
    },
    /// A batch holds no image.
    #[error("the batch holds no image")]
    EmptyBatch,
    /// A buffer or volume whose size overflows what can be addressed or allocated; use smaller
    /// images or batches, or coarser pixels.
    #[error("{what} of {dims:?} is too large to address")]
    TooLarge {
        /// What would be allocated.
        what: &'static str,
        /// Its dimensions.
        dims: Vec<usize>,
    },
    /// A number given as an argument or option is outside the values it may take.
    #[error("{name} = {value} is not usable: it must be {expected}")]
    InvalidValue {
        /// The argument, option or field (`pixel size (mm)`, `input_channels`, ...).
        name: &'static str,
        /// The value given.
        value: f64,
        /// What it must be.
        expected: &'static str,
    },
    /// A [`Normalization`](crate::Normalization) with a non-finite value, an empty window or a
    /// deviation that is not positive.
    #[error(
        "normalisation {normalization:?} is not usable: the window must be finite and increasing, the mean finite and the deviation finite and > 0"
    )]
    InvalidNormalization {
        /// The normalisation given.
        normalization: crate::Normalization,
    },
    /// A normalisation was to be computed from volumes that hold no voxel (or only NaN).
    #[error("no voxels to compute the normalisation from (every volume is empty or NaN)")]
    NoVoxels,
    /// A label is not a class of the model (`label >= n_classes`).
    #[error("label {label} at pixel {pixel} is not a class of a {n_classes}-class model")]
    LabelOutOfRange {
        /// The label found.
        label: u8,
        /// Its flat index in the label batch.
        pixel: usize,
        /// Classes of the model.
        n_classes: usize,
    },
    /// A slice asked of a [`Dataset`](crate::Dataset) that it does not hold.
    #[error("no slice {z} in case {case}: the dataset has {cases} case(s){}", slices.map(|n| format!("; that one has {n} slices")).unwrap_or_default())]
    NoSuchSlice {
        /// The case asked for.
        case: usize,
        /// The slice asked for.
        z: usize,
        /// Cases in the dataset.
        cases: usize,
        /// Slices of that case, when it exists.
        slices: Option<usize>,
    },
    /// A CPU instruction set was asked for that this CPU lacks; use [`Isa::detect`](crate::kernels::Isa::detect).
    #[error("this CPU does not support the {isa} kernels")]
    UnsupportedIsa {
        /// The instruction set's name (`avx2`, `avx512`).
        isa: &'static str,
    },
    /// An operation of a [`Backend`](crate::Backend) that needs an earlier step (backward before a
    /// loss, probabilities before a forward pass).
    #[error("{op} needs {needs} first")]
    OutOfOrder {
        /// The operation called.
        op: &'static str,
        /// What must run before it.
        needs: &'static str,
    },
    /// A feature storage this backend does not offer (reduced precision is the CUDA backend's);
    /// use [`FeatureStorage::F32`](crate::FeatureStorage::F32) or the CUDA backend.
    #[error("the {backend} backend does not offer {storage:?} feature storage (use F32)")]
    UnsupportedStorage {
        /// The backend's name.
        backend: String,
        /// The storage asked for.
        storage: crate::FeatureStorage,
    },
    /// [`SegmentOptions::axes`](crate::SegmentOptions::axes) is empty: give at least one slice axis.
    #[error("no slice axis to segment along (SegmentOptions::axes is empty)")]
    NoSliceAxis,
    /// [`Device::Auto`](crate::Device::Auto) reached code that needs a concrete device; resolve it
    /// first with [`Device::resolve`](crate::Device::resolve).
    #[error("the device {device} was not resolved to a concrete one")]
    UnresolvedDevice {
        /// The device given.
        device: crate::Device,
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
    /// The CUDA backend failed (a driver call, a kernel compilation, a launch or an argument the
    /// kernels refuse); the CUDA error is the source.
    #[cfg(feature = "cuda")]
    #[error("CUDA backend")]
    Cuda(#[source] crate::cuda::Error),
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
