//! The error type of `msd-io`: every failure says what went wrong and where.
use std::path::PathBuf;

/// Result with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong when reading, writing or building volumes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be opened, read or written.
    #[error("I/O error on {path}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying cause.
        #[source]
        source: std::io::Error,
    },
    /// The geometry is not usable: a spacing that is not finite and positive, a non-finite
    /// origin, or a direction matrix whose columns are not unit vectors.
    #[error("invalid geometry: {what}")]
    InvalidGeometry {
        /// What is wrong, with the offending values.
        what: String,
    },
    /// Two volumes that must share a grid do not.
    #[error("volumes do not share a grid: {what}")]
    GridMismatch {
        /// Which property differs, with both values.
        what: String,
    },
    /// The array's shape does not fit what it is paired with.
    #[error("shape mismatch: expected {expected:?} (z, y, x), found {found:?}")]
    ShapeMismatch {
        /// The expected shape `[z, y, x]`.
        expected: [usize; 3],
        /// The shape found.
        found: [usize; 3],
    },
    /// A file's content is malformed: a header field that is missing, unreadable or out of range,
    /// or data that contradicts the header.
    #[error("{path}: {field}: {what}")]
    Malformed {
        /// The file involved.
        path: PathBuf,
        /// The header field, tag or part of the file at fault.
        field: String,
        /// What is wrong, with the offending value.
        what: String,
    },
    /// A file ends before the data its header announces.
    #[error("{path}: truncated: the header announces {expected} bytes of voxel data, only {found} are there")]
    Truncated {
        /// The file involved.
        path: PathBuf,
        /// Bytes the header announces.
        expected: u64,
        /// Bytes actually present.
        found: u64,
    },
    /// The file is valid but uses a feature this crate does not read or write.
    #[error("{path}: unsupported: {what}")]
    Unsupported {
        /// The file involved.
        path: PathBuf,
        /// The feature, with the value that selects it.
        what: String,
    },
    /// The format of a path could not be recognised from its name or content.
    #[error("{path}: not a DICOM, NIfTI-1 or NRRD file (by name and content)")]
    UnknownFormat {
        /// The file involved.
        path: PathBuf,
    },
    /// A label file holds a value that is not an integer in 0..=255.
    #[error(
        "{path}: not a label volume: voxel [z, y, x] = {index:?} holds {value}, not an integer in 0..=255"
    )]
    NotLabels {
        /// The file involved.
        path: PathBuf,
        /// The first offending voxel, `[z, y, x]`.
        index: [usize; 3],
        /// Its value.
        value: f64,
    },
    /// A DICOM file or series could not be read.
    #[error("{path}: DICOM: {what}")]
    Dicom {
        /// The file or folder involved.
        path: PathBuf,
        /// What failed, naming the tag where there is one.
        what: String,
    },
    /// The DICOM input holds no image series that forms a volume.
    #[error("{path}: no volume: {what}")]
    NotAVolume {
        /// The file or folder involved.
        path: PathBuf,
        /// Why each candidate was rejected.
        what: String,
    },
    /// A DICOM series was acquired with a tilted gantry: its slices are sheared, not stacked along
    /// their normal. Returned when resampling is not allowed by the options.
    #[error(
        "{path}: series {series_uid}: gantry tilt of {angle_deg:.2}° (the slice step is not along the slice \
         normal); allow resampling in the DICOM options to get a regular grid"
    )]
    GantryTilt {
        /// The folder or file involved.
        path: PathBuf,
        /// The series.
        series_uid: String,
        /// Angle between the slice step and the slice normal, in degrees.
        angle_deg: f64,
    },
    /// The slices of a DICOM series are not evenly spaced (uneven steps or missing slices).
    #[error(
        "{path}: series {series_uid}: slice spacing is not uniform (steps from {min_mm:.4} to {max_mm:.4} mm \
         along the normal); allow resampling in the DICOM options to get a regular grid"
    )]
    UnevenSpacing {
        /// The folder or file involved.
        path: PathBuf,
        /// The series.
        series_uid: String,
        /// Smallest step between consecutive slices along the normal, in mm.
        min_mm: f64,
        /// Largest step, in mm.
        max_mm: f64,
    },
}

impl Error {
    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}

/// Shorthand for a [`Error::Malformed`].
pub(crate) fn malformed(path: &std::path::Path, field: impl Into<String>, what: impl Into<String>) -> Error {
    Error::Malformed { path: path.to_path_buf(), field: field.into(), what: what.into() }
}

/// A [`Error::NotLabels`] for the voxel at flat index `flat` of a volume of `shape` (`[z, y, x]`).
pub(crate) fn not_labels(path: &std::path::Path, shape: [usize; 3], flat: usize, value: f64) -> Error {
    let [_, ny, nx] = shape;
    Error::NotLabels {
        path: path.to_path_buf(),
        index: [flat / (ny * nx), (flat / nx) % ny, flat % nx],
        value,
    }
}

/// Shorthand for a [`Error::Unsupported`].
pub(crate) fn unsupported(path: &std::path::Path, what: impl Into<String>) -> Error {
    Error::Unsupported { path: path.to_path_buf(), what: what.into() }
}
