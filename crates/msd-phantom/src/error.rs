//! The error type of `msd-phantom`.

/// Result with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong when making a phantom.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A config value is outside what makes a phantom; the message names the field and its value.
    #[error("invalid phantom configuration: {what}")]
    InvalidConfig {
        /// What is wrong, with the offending value.
        what: String,
    },
    /// Building the CT or label volume (its geometry) failed.
    #[error("could not build the phantom's volume")]
    Volume(#[from] msd_io::Error),
    /// Meshing the ground-truth skull failed.
    #[error("could not mesh the phantom's skull")]
    Mesh(#[from] msd_geom::Error),
}
