//! The CT skull segmentation workflow: the steps that span the msd crates.
//!
//! Each lower crate does one thing (`msd_io` reads and writes volumes, `msd_net` trains and applies
//! the MSDnet, `msd_geom` makes and cleans surfaces, `msd_metrics` measures). The study's workflow
//! strings them together, and that glue lives here:
//!
//! | module | step |
//! |---|---|
//! | [`training`] | [`TrainingSet`] from CT + labels or CT + gold-standard meshes; [`train`]; [`segment`] and [`segment_with`](training::segment_with): the network, then the engineers' clean-up |
//! | [`baseline`] | the global 300 HU threshold engineers use today, and its connected-component clean-up |
//! | [`surface`](mod@surface) | label volume → cleaned, watertight skull mesh ([`surface()`]) |
//! | [`evaluation`] | [`Shape`] (labels or mesh) and [`evaluate`]: Dice and surface distances, whole skull and near the defect |
//! | [`batch`] | many scans in one run: cases from folders and lists, one model load, a resumable manifest |
//! | [`atomic`] | whole-file writes through [`msd_io::write_atomic`], with this crate's [`Error`] |
//!
//! Every step returns [`Result`]: an [`Error`] keeps the failing crate's error whole as its source
//! (and names the case of a training set), and [`error_chain`] prints the chain on one line. Nothing
//! here prints: long steps report through callbacks the caller owns.
//!
//! # Example: the threshold baseline on a synthetic head, meshed and evaluated
//!
//! ```
//! use msd_pipeline::baseline::engineers_recipe;
//! use msd_pipeline::{Shape, evaluate, surface};
//!
//! // A small synthetic head CT with its exact skull labels.
//! let head = msd_phantom::generate(&msd_phantom::PhantomConfig::quick().with_noise(20.0), 3)?;
//! // The engineers' skull: 300 HU, then the largest component with its pockets filled.
//! let skull = engineers_recipe(&head.ct, 300.0)?;
//! let mesh = surface(&skull)?;
//! assert!(mesh.check().is_watertight());
//! // Against the truth: Dice between the label volumes, surface distances between their surfaces.
//! let report = evaluate(&Shape::Labels(skull), &Shape::Labels(head.skull.clone()))?;
//! assert!(report.metrics.dice.unwrap() > 0.6);
//! Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

pub mod atomic;
pub mod baseline;
pub mod batch;
mod error;
pub mod evaluation;
pub mod surface;
pub mod training;

pub use error::{Error, Result, error_chain};
pub use evaluation::{Shape, evaluate};
pub use surface::surface;
pub use training::{TrainingSet, segment, train};
