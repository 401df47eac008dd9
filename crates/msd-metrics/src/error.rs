//! The error type of `msd-metrics`: every failure says what went wrong and where.
use std::path::PathBuf;

/// Result with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong computing, writing or summarising metrics.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Two volumes compared voxel by voxel do not share a grid (shape, spacing, origin or
    /// direction). Resample one onto the other's grid first; comparing them anyway would give a
    /// wrong number, not an error.
    #[error("{what} do not share a grid")]
    GridMismatch {
        /// Which volumes were compared ("prediction and reference", "region mask and reference").
        what: &'static str,
        /// The difference, from `msd-io`.
        #[source]
        source: msd_io::Error,
    },
    /// A mesh that must have a surface has no triangles (or only zero-area ones).
    #[error("the {which} mesh has no surface: {what}")]
    EmptyMesh {
        /// Which mesh ("predicted", "reference").
        which: &'static str,
        /// What was found (triangle count, total area).
        what: String,
    },
    /// A label volume that must have a surface has no voxel of the label.
    #[error("the {which} volume has no voxel of label {label}, so it has no surface")]
    EmptyLabel {
        /// Which volume ("predicted", "reference").
        which: &'static str,
        /// The label looked for.
        label: u8,
    },
    /// An option or argument is out of its domain (a negative tolerance, a NaN radius, a
    /// vertex-value array of the wrong length).
    #[error("invalid argument {name}: {what}")]
    InvalidArgument {
        /// The argument's name.
        name: &'static str,
        /// What is wrong with it, with the value.
        what: String,
    },
    /// A file could not be written.
    #[error("I/O error on {path}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying cause.
        #[source]
        source: std::io::Error,
    },
    /// An error from the volume layer other than plain file I/O.
    #[error(transparent)]
    Volume(msd_io::Error),
    /// A report could not be serialised to JSON.
    #[error("JSON serialisation of the report failed")]
    Json(#[source] serde_json::Error),
}

impl Error {
    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    pub(crate) fn invalid(name: &'static str, what: impl Into<String>) -> Self {
        Error::InvalidArgument { name, what: what.into() }
    }
}

/// File I/O failures from `msd-io` (its atomic writer) stay [`Error::Io`], with their path.
impl From<msd_io::Error> for Error {
    fn from(e: msd_io::Error) -> Self {
        match e {
            msd_io::Error::Io { path, source } => Error::Io { path, source },
            other => Error::Volume(other),
        }
    }
}
