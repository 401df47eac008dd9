//! msd: CT skull segmentation for cranial implants.
//!
//! This facade re-exports the workspace's library crates; it holds no code of its own. Each crate is
//! a module:
//!
//! | module | crate | what it does |
//! |---|---|---|
//! | [`io`] | `msd-io` | CT volumes in and out (DICOM, NIfTI, NRRD) with exact LPS geometry |
//! | [`net`] | `msd-net` | the MSDnet: training and inference |
//! | [`geom`] | `msd-geom` | marching cubes, mesh ↔ label, mesh files, alignment |
//! | [`metrics`] | `msd-metrics` | Dice, surface distances, reports |
//! | [`phantom`] | `msd-phantom` | synthetic head CTs with exact ground truth, deterministic from a seed |
//! | [`report`] | `msd-report` | pictures and reports people look at |
//! | [`pipeline`] | `msd-pipeline` | the workflow steps that span the crates |
//!
//! and the modules of the last two are also here, by their own names:
//!
//! | module | crate | what it does |
//! |---|---|---|
//! | [`image`] | `msd-report` | the one raster type of every picture ([`image::RgbImage`]): drawing, text, PNG |
//! | [`preview`] | `msd-report` | PNG slices (axial, coronal, sagittal) with contours, legend, orientation letters and scale |
//! | [`render`] | `msd-report` | labelled, smooth-shaded views of meshes, deviation colour bar in mm ([`render::Figure`]) |
//! | [`html`] | `msd-report` | the self-contained HTML study report with an interactive 3D view |
//! | [`loss_curve`] | `msd-report` | a training run's loss curve as CSV and PNG |
//! | [`training`] | `msd-pipeline` | training sets from CT + labels or CT + meshes; train and segment |
//! | [`baseline`] | `msd-pipeline` | the global-threshold baseline and connected-component clean-up |
//! | [`surface`](mod@surface) | `msd-pipeline` | label volume → cleaned, watertight skull mesh |
//! | [`evaluation`] | `msd-pipeline` | Dice and surface distances between label volumes and/or meshes |
//! | [`batch`] | `msd-pipeline` | many scans in one run: cases from folders and lists, a resumable manifest |
//! | [`atomic`] | `msd-pipeline` | atomic file writes (temporary file, then rename) |
//!
//! with the workflow's [`Error`], [`Result`] and [`error_chain`], and its entry points [`train`],
//! [`segment`], [`surface()`] and [`evaluate`] at the root. The built-in demonstration (`msd demo`)
//! is an application and lives in the `msd-cli` crate. How a CT travels through the crates:
//! `docs/architecture.md`.
#![deny(missing_docs)]

pub use msd_geom as geom;
pub use msd_io as io;
pub use msd_metrics as metrics;
pub use msd_net as net;
pub use msd_phantom as phantom;
pub use msd_pipeline as pipeline;
pub use msd_report as report;

pub use msd_pipeline::{atomic, baseline, batch, evaluation, surface, training};
pub use msd_report::{html, image, loss_curve, preview, render};

pub use msd_pipeline::{Error, Result, Shape, TrainingSet, error_chain, evaluate, segment, train};
