//! Pictures and reports of CT skull segmentation: what people look at.
//!
//! Numbers say how good a segmentation is; pictures say where it went wrong. This crate draws them
//! without a GPU, a window or a browser at build time, so they come out of tests, CI and batch runs
//! alike:
//!
//! | module | what it draws |
//! |---|---|
//! | [`image`] | [`RgbImage`], the one raster type of every picture: rectangles, lines, text in a built-in 5 × 7 font, composition, PNG |
//! | [`preview`] | axial, coronal and sagittal CT slices with label contours, the slice's position (LPS mm), orientation letters, a scale bar and a legend |
//! | [`render`] | smooth-shaded views of meshes from anatomical directions; [`Figure`](render::Figure): labelled views, a deviation colour bar in mm, a legend |
//! | [`html`] | the self-contained HTML study report ([`HtmlReport`]): the metrics tables, the pictures and a three.js 3D view of each case's meshes |
//! | [`loss_curve`] | a training run's loss curve as CSV and PNG |
//! | [`histogram`] | the histogram of a surface's signed deviations, in the renders' colours, its axis in mm |
//!
//! Everything is in the workspace's conventions: volumes are `msd_io` volumes indexed `[z, y, x]`,
//! meshes are `msd_geom` meshes in LPS millimetres, and every file is written whole or not at all
//! through [`msd_io::write_atomic`]. Failures are an [`Error`] that names the parameter or the file.
//!
//! three.js r147 and its OrbitControls (MIT) are vendored under this crate's `assets/three/` and
//! inlined into every HTML report, so a report opens offline; nothing is fetched at build or run time.
//!
//! # Example: a slice preview, a mesh figure and an HTML report of one head
//!
//! ```
//! use msd_report::html::{HtmlCase, HtmlReport, MeshRole};
//! use msd_report::preview::{Overlay, Plane, PreviewOptions, REFERENCE_COLOUR, render_slice};
//! use msd_report::render::{Figure, Paint};
//!
//! // A small synthetic head with its exact skull labels, and the skull's surface.
//! let head = msd_phantom::generate(&msd_phantom::PhantomConfig::quick(), 7)?;
//! let skull = msd_geom::label_surface(&head.skull, 1)?;
//!
//! // An axial slice with the skull's contour, and the skull from the front, left and top.
//! let overlays = [Overlay::new(&head.skull, REFERENCE_COLOUR).named("skull")];
//! let slice = render_slice(&head.ct, Plane::Axial, None, &overlays, &PreviewOptions::default())?;
//! let figure = Figure::new("head 7").layer("skull", &skull, Paint::Solid([235, 225, 200])).panel_px(96).render()?;
//!
//! // Both pictures and a 3D view of the skull in one HTML file.
//! let case = HtmlCase::new("head 7")
//!     .image("axial slice", &slice)?
//!     .image("skull", &figure)?
//!     .mesh("skull", MeshRole::Reference, &skull, None)?;
//! let dir = tempfile::tempdir()?;
//! HtmlReport::new("one head").case(case).write(&dir.path().join("report.html"))?;
//! assert!(std::fs::read_to_string(dir.path().join("report.html"))?.contains("head 7"));
//! Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

mod atomic;
mod error;
pub mod histogram;
pub mod html;
pub mod image;
pub mod loss_curve;
pub mod preview;
pub mod render;

pub use error::{Error, Result};
pub use html::{HtmlCase, HtmlReport};
pub use image::RgbImage;
