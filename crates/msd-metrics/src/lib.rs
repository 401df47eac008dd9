//! Segmentation metrics for CT: overlap between label volumes and distances between surfaces,
//! everywhere or inside a region, and reports over cases like the paper's Table 1.
//!
//! # Brief overview
//!
//! - **Overlap** of label volumes on one grid ([`overlap`], [`overlap_in_region`],
//!   [`overlap_label`], [`overlap_per_label`]) gives an [`Overlap`]: Dice, Jaccard, sensitivity,
//!   precision and volume difference, with defined values for empty inputs. Volumes on different
//!   grids are an [`Error::GridMismatch`], never a wrong number.
//! - **Surface distances** between meshes ([`surface_distances`] with [`SurfaceDistanceOptions`])
//!   give [`SurfaceDistances`]: one-sided and symmetric MAD, RMS, median, HD95, maximum and surface
//!   Dice at a tolerance, from area-uniform reproducible samples and exact closest points (parry3d
//!   BVH, rayon). Definitions follow DeepMind's `surface-distance` and MONAI; see
//!   [`surface_distance`] for the formulas and citations.
//! - [`label_surface_distances`] does the same from label volumes alone (boundary voxels and an
//!   exact Euclidean distance transform honouring anisotropic spacing).
//! - A [`Region`] (a mask volume such as `defect_region.nii.gz`, or a sphere) restricts any of them:
//!   "MAD near the defect" is one call.
//! - [`DeviationMap`] colours a mesh by its signed distance to a reference ([`SurfaceIndex`],
//!   [`signed_vertex_distances`]) and writes it as PLY (its histogram is drawn by `msd-report`).
//! - **Implants** ([`implant_scores`], [`defect_rim_band`]) get the AutoImplant challenge's
//!   measures: Dice, boundary Dice in a band around the defect's rim, HD95.
//! - [`CaseReport`] and [`Report`] collect cases and write Markdown, CSV and JSON with mean ± sd.
//!
//! All coordinates are LPS millimetres (DICOM patient coordinates); volumes are indexed `[z, y, x]`.
//!
//! # Example
//!
//! Compare a predicted skull surface with the reference, everywhere and near the defect, and print
//! the report:
//!
//! ```no_run
//! use msd_metrics::{CaseReport, Region, Report, SurfaceDistanceOptions, overlap, overlap_in_region};
//!
//! let pred = msd_geom::read_stl("pred_skull.stl")?;
//! let reference = msd_geom::read_stl("skull_ref.stl")?;
//! let near_defect = Region::Mask(msd_io::read_labels("defect_region.nii.gz")?);
//!
//! let options = SurfaceDistanceOptions::new().samples_per_mm2(2.0).tolerance_mm(1.0);
//! let whole = options.compute(&pred, &reference)?;
//! let local = options.clone().region(near_defect.clone()).compute(&pred, &reference)?;
//! println!("MAD {:.3} mm, near the defect {:.3} mm", whole.mad_mm(), local.mad_mm());
//!
//! // With label volumes on the CT grid, add Dice.
//! let pred_labels = msd_io::read_labels("pred_skull.nii.gz")?;
//! let ref_labels = msd_io::read_labels("skull_ref.nii.gz")?;
//! let case = CaseReport::new("case 1")
//!     .with_overlap(&overlap(&pred_labels, &ref_labels)?)
//!     .with_surface(&whole)
//!     .with_region_overlap(&overlap_in_region(&pred_labels, &ref_labels, &near_defect)?)
//!     .with_region_surface(&local);
//! println!("{}", case.to_json()?);
//!
//! let mut report = Report::new().with_region_name("near defect");
//! report.push(case);
//! println!("{}", report.to_markdown());
//! report.write_csv("report.csv")?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod atomic_write;
mod deviation;
mod distance_summary;
mod edt;
mod error;
mod implant;
mod label_distance;
mod overlap;
mod region;
mod report;
mod sampling;
pub mod surface_distance;

pub use deviation::{DeviationMap, deviation_colour};
pub use distance_summary::DistanceSummary;
pub use error::{Error, Result};
pub use implant::{ImplantScores, defect_rim_band, implant_scores};
pub use label_distance::label_surface_distances;
pub use overlap::{GRID_TOLERANCE_MM, Overlap, overlap, overlap_in_region, overlap_label, overlap_per_label};
pub use region::Region;
pub use report::{CaseMetrics, CaseReport, MetricSummary, Report};
pub use surface_distance::{
    SurfaceDistanceOptions, SurfaceDistances, SurfaceIndex, signed_vertex_distances, surface_distances,
};
