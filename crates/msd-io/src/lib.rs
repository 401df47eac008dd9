//! Volume I/O for CT segmentation, with exact geometry.
//!
//! `msd-io` reads CT scans (DICOM series, NIfTI-1, NRRD) into a [`Volume`]: an `ndarray::Array3`
//! indexed `[z, y, x]`, in Hounsfield units for CT, together with the [`Geometry`] that places every
//! voxel in the patient: spacing in millimetres, the origin (the centre of voxel `[0, 0, 0]`) and the
//! direction cosines, all in DICOM patient coordinates (LPS: +x to the patient's left, +y posterior,
//! +z superior). Label volumes (`Volume<u8>`) share the same type, so a segmentation carries the
//! grid of the scan it came from, and [`Geometry::check_same_grid`] refuses to compare volumes that
//! do not share one.
//!
//! # Example
//!
//! ```
//! use msd_io::{Geometry, Volume};
//! use ndarray::Array3;
//!
//! // A 4×3×2 (x×y×z) volume with 0.5 mm pixels and 2 mm slices.
//! let geometry = Geometry::new([0.5, 0.5, 2.0], [-10.0, -20.0, 30.0], Geometry::IDENTITY)?;
//! let ct = Volume::new(Array3::<f32>::zeros((2, 3, 4)), geometry)?;
//! // World position (LPS mm) of voxel x = 1, y = 2, z = 1.
//! let p = ct.geometry().index_to_world([1.0, 2.0, 1.0]);
//! assert_eq!(p, [-9.5, -19.0, 32.0]);
//! Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
mod geometry;
mod volume;

pub use error::{Error, Result};
pub use geometry::Geometry;
pub use volume::{LabelVolume, Volume};
