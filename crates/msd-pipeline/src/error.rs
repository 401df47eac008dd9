//! The error type of the workflow: the crates' errors, plus the workflow's own.
use std::path::PathBuf;

/// Result with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the workflow. Errors of the underlying crates are kept whole as
/// the source, so a caller can print the full chain.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading, writing or building a volume failed.
    #[error(transparent)]
    Io(Box<msd_io::Error>),
    /// A mesh operation failed (reading, writing, meshing, voxelising).
    #[error(transparent)]
    Geom(Box<msd_geom::Error>),
    /// A metric could not be computed.
    #[error(transparent)]
    Metrics(Box<msd_metrics::Error>),
    /// Training or applying the network failed.
    #[error(transparent)]
    Net(Box<msd_net::Error>),
    /// A synthetic phantom could not be made.
    #[error(transparent)]
    Phantom(Box<msd_phantom::Error>),
    /// A picture or report failed in a way none of the other variants describes (PNG encoding,
    /// among others). The report's errors that have a variant here (invalid parameters, files, the
    /// crates' errors)
    /// convert into that variant instead, so a preview that fails in a batch reads the same as one
    /// that fails on its own.
    #[error(transparent)]
    Report(Box<msd_report::Error>),
    /// Something failed for one case of a set; the case is named.
    #[error("case {case}")]
    Case {
        /// The case's name.
        case: String,
        /// What failed.
        #[source]
        source: Box<Error>,
    },
    /// A parameter is outside what the workflow can use; the message names it and its value.
    #[error("invalid configuration: {what}")]
    InvalidConfig {
        /// What is wrong, with the offending value.
        what: String,
    },
    /// A file could not be written or read by the workflow itself (manifests, case lists, previews,
    /// reports).
    #[error("I/O error on {path}")]
    File {
        /// The file involved.
        path: PathBuf,
        /// The underlying cause.
        #[source]
        source: std::io::Error,
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

// The crates' errors are boxed so that `Result<T, msd_pipeline::Error>` stays small.
boxed_from!(Io: msd_io::Error, Geom: msd_geom::Error, Metrics: msd_metrics::Error, Net: msd_net::Error, Phantom: msd_phantom::Error);

impl From<msd_report::Error> for Error {
    /// Variant by variant: the report's `InvalidConfig`, `File`, `Io`, `Geom` and `Metrics`
    /// become the same variants here (the workflow's errors before the report had a crate of its
    /// own); anything else is kept whole in [`Error::Report`].
    fn from(e: msd_report::Error) -> Self {
        use msd_report::Error as R;
        match e {
            R::InvalidConfig { what } => Error::InvalidConfig { what },
            R::File { path, source } => Error::File { path, source },
            R::Io(e) => Error::Io(e),
            R::Geom(e) => Error::Geom(e),
            R::Metrics(e) => Error::Metrics(e),
            other => Error::Report(Box::new(other)),
        }
    }
}

impl Error {
    /// Wraps an I/O error with the path it happened on.
    pub fn file(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::File { path: path.into(), source }
    }
}

/// The error and its causes on one line: `what failed: because: because` (transparent wrappers,
/// which repeat their source's message, appear once). The CLI prints its errors this way, and the
/// batch manifest records each failed case's error so.
///
/// ```
/// let e = msd_pipeline::Error::InvalidConfig { what: "no skull".into() };
/// assert_eq!(msd_pipeline::error_chain(&e), "invalid configuration: no skull");
/// ```
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut line = String::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        if !line.ends_with(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
        next = e.source();
    }
    line.replace('\n', " ")
}
