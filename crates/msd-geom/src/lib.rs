//! Geometry for CT segmentation: surfaces from label volumes and label volumes from surfaces.
//!
//! The principal type is [`Mesh`], an indexed triangle mesh whose vertices are in world LPS
//! millimetres (DICOM patient coordinates), so a surface extracted from a volume lands exactly where
//! the anatomy is and can be compared with a gold-standard model made elsewhere.
//!
//! # Example
//!
//! ```
//! use msd_geom::Mesh;
//!
//! // A single triangle in the z = 0 plane.
//! let mesh = Mesh::new(vec![[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], vec![[0, 1, 2]])?;
//! assert_eq!(mesh.triangles().len(), 1);
//! Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]
// Index loops over x, y, z read like the formulas they implement in the geometric kernels.
#![allow(clippy::needless_range_loop)]

mod align;
mod cavities;
mod decimate;
mod error;
pub mod io;
mod mesh;
mod smooth;
mod surface;
mod voxelize;

pub use align::{AlignOptions, Alignment, align_icp, align_to_volume};
pub use cavities::fill_cavities;
pub use decimate::{DecimateOptions, Decimation, decimate};
pub use error::{Error, Result};
pub use io::{read_mesh, read_stl, write_mesh, write_stl};
pub use mesh::{Aabb, Components, Mesh, MeshCheck};
pub use smooth::{SmoothOptions, smooth_taubin};
pub use surface::{label_surface, marching_cubes};
pub use voxelize::voxelize;
