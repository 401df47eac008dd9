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
    /// A mesh file ends before the data its header or syntax promises.
    #[error("{path} is truncated: {what}")]
    Truncated {
        /// The file involved.
        path: PathBuf,
        /// What was expected and how much of the file there is.
        what: String,
    },
    /// A header declares more elements than the file can hold (checked before anything is allocated).
    #[error("{path} declares {declared} {element}, but its {available_bytes} bytes can hold at most {max}")]
    CountTooLarge {
        /// The file involved.
        path: PathBuf,
        /// What is counted ("triangles", "vertices", "faces").
        element: &'static str,
        /// The count the header declares.
        declared: u64,
        /// The most the file's size allows.
        max: u64,
        /// The bytes available after the header.
        available_bytes: u64,
    },
    /// A coordinate in a mesh file is NaN or infinite.
    #[error("{path}: {element} {index} has a non-finite coordinate {value:?}")]
    NotFinite {
        /// The file involved.
        path: PathBuf,
        /// "facet" (STL) or "vertex" (PLY, OBJ).
        element: &'static str,
        /// Index of the facet or vertex (0-based).
        index: usize,
        /// The offending coordinates.
        value: [f32; 3],
    },
    /// A face with other than three vertices: only triangle meshes are supported.
    #[error("{path}: face {face} has {vertices} vertices; only triangles are supported")]
    NonTriangleFace {
        /// The file involved.
        path: PathBuf,
        /// Index of the face (0-based).
        face: usize,
        /// How many vertices it has.
        vertices: usize,
    },
    /// A mesh file's syntax or header is malformed.
    #[error("{path}: malformed {format} at {location}: {what}")]
    Parse {
        /// The file involved.
        path: PathBuf,
        /// "STL", "PLY" or "OBJ".
        format: &'static str,
        /// Where: "line 12" or "byte 84".
        location: String,
        /// What is wrong.
        what: String,
    },
    /// The file's format (from its content when reading, its extension when writing) is not one
    /// this crate handles.
    #[error("{path}: unsupported mesh format: {what}")]
    UnsupportedFormat {
        /// The file involved.
        path: PathBuf,
        /// Why it was not recognised.
        what: String,
    },
    /// An argument is out of its valid range (an option, a level, a shape).
    #[error("invalid argument: {what}")]
    InvalidArgument {
        /// Which argument and why.
        what: String,
    },
    /// A mesh voxelised onto a volume's grid covers none of its voxel centres: it is in another
    /// frame than the scan (LPS mm), or of another scan. Align it to the scan first
    /// ([`align_to_volume`](crate::align_to_volume)) or check the units it was exported in.
    #[error("the mesh covers no voxel of the {shape:?} (z, y, x) grid: is it in the scan's frame (LPS mm)?")]
    MeshOutsideGrid {
        /// The grid's shape, `[z, y, x]`.
        shape: [usize; 3],
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
