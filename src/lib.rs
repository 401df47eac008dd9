//! msd: CT skull segmentation for cranial implants.
//!
//! This facade re-exports the workspace's crates as modules:
//!
//! | module | crate | what it does |
//! |---|---|---|
//! | [`io`] | `msd-io` | CT volumes in and out (DICOM, NIfTI, NRRD) with exact LPS geometry |
//! | [`net`] | `msd-net` | the MSDnet: training and inference |
//! | [`geom`] | `msd-geom` | marching cubes, mesh ↔ label, mesh files, alignment |
//! | [`metrics`] | `msd-metrics` | Dice, surface distances, reports |
//! | [`phantom`] | `msd-phantom` | synthetic head CTs with exact ground truth, deterministic from a seed |
//!
//! and adds what spans them:
//!
//! | module | what it does |
//! |---|---|
//! | [`image`] | the one raster type of every picture ([`image::RgbImage`]): drawing, text, PNG |
//! | [`preview`] | PNG slices (axial, coronal, sagittal) with contours, legend, orientation letters and scale |
//! | [`render`] | labelled, smooth-shaded views of meshes, deviation colour bar in mm ([`render::Figure`]) |
//! | [`html`] | the self-contained HTML study report with an interactive 3D view |
//! | [`batch`] | many scans in one run: cases from folders and lists, a resumable manifest |
//! | [`baseline`] | the global-threshold baseline and connected-component clean-up |
//! | [`surface`](mod@surface) | label volume → cleaned, watertight skull mesh |
//! | [`evaluation`] | Dice and surface distances between label volumes and/or meshes |
//! | [`loss_curve`] | a training run's loss curve as CSV and PNG |
//! | [`atomic`] | atomic file writes (temporary file, then rename) |
//! | [`demo`] | the whole workflow on synthetic heads, MSDnet vs the threshold baseline |
//! | [`training`] | training sets from CT + labels or CT + meshes; train and segment |
#![deny(missing_docs)]

pub use msd_geom as geom;
pub use msd_io as io;
pub use msd_metrics as metrics;
pub use msd_net as net;
pub use msd_phantom as phantom;

pub mod atomic;
pub mod baseline;
pub mod batch;
pub mod demo;
mod error;
pub mod evaluation;
pub mod html;
pub mod image;
pub mod loss_curve;
pub mod preview;
pub mod render;
pub mod surface;
pub mod training;

pub use error::{Error, Result, error_chain};
pub use evaluation::{Shape, evaluate};
pub use surface::surface;
pub use training::{TrainingSet, segment, train};
