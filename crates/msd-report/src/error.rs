//! The error type of `msd-report`: bad drawing parameters, and the files and crates involved.
use std::path::PathBuf;

/// Result with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong drawing or writing a picture or a report. Errors of the underlying
/// crates are kept whole as the source, so a caller can print the full chain. `msd_pipeline::Error`
/// converts from it variant by variant (`InvalidConfig`, `File`, `Png`, `Io`, `Geom`, `Metrics`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Writing a file through [`msd_io::write_atomic`] failed (its temporary file or the rename).
    #[error(transparent)]
    Io(Box<msd_io::Error>),
    /// A mesh operation failed (display smoothing).
    #[error(transparent)]
    Geom(Box<msd_geom::Error>),
    /// A metric could not be computed (the signed deviation of a report case).
    #[error(transparent)]
    Metrics(Box<msd_metrics::Error>),
    /// A parameter is outside what a picture can use (a window that does not rise, a size out of
    /// range, deviations that do not match the mesh); the message names it and its value.
    #[error("invalid configuration: {what}")]
    InvalidConfig {
        /// What is wrong, with the offending value.
        what: String,
    },
    /// A file or folder could not be written or read.
    #[error("I/O error on {path}")]
    File {
        /// The file involved.
        path: PathBuf,
        /// The underlying cause.
        #[source]
        source: std::io::Error,
    },
    /// Encoding a PNG failed.
    #[error("could not encode PNG {path}")]
    Png {
        /// The file being written.
        path: PathBuf,
        /// The underlying cause.
        #[source]
        source: Box<png::EncodingError>,
    },
}

macro_rules! boxed_from {
    ($($variant:ident: $ty:ty),*) => {$(
        impl From<$ty> for Error {
            fn from(e: $ty) -> Self {
                Error::$variant(Box::new(e))
            }
        }
    )*};
}

// The crates' errors are boxed so that `Result<T, msd_report::Error>` stays small.
boxed_from!(Io: msd_io::Error, Geom: msd_geom::Error, Metrics: msd_metrics::Error);

impl Error {
    /// Wraps an I/O error with the path it happened on.
    pub fn file(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::File { path: path.into(), source }
    }
}
