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
}

impl Error {
    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}
