//! The error type of `msd-geom`: every failure says what went wrong and where.
use std::path::PathBuf;

/// Result with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong building, reading, writing or converting meshes.
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
    /// The mesh itself is invalid: a triangle refers to a vertex that does not exist, or a vertex
    /// is not finite.
    #[error("invalid mesh: {what}")]
    InvalidMesh {
        /// What is wrong and where (triangle or vertex index).
        what: String,
    },
    /// An error from the volume layer (geometry, grids).
    #[error(transparent)]
    Volume(#[from] msd_io::Error),
}

impl Error {
    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}
