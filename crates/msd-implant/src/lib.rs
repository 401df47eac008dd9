//! Cranial implant design: from a defective skull (a label volume) to the implant that closes its
//! defect, as a label volume on the skull's grid and a watertight, outward-oriented mesh in LPS
//! millimetres, ready for printing.
//!
//! # How
//!
//! 1. **Frame.** A sphere is fitted to the top of the bone; rays cast from its centre in every
//!    direction (1° grid) find the inner and outer table along each.
//! 2. **Defect.** Directions whose ray meets no bone form the shell's openings. Openings that reach
//!    the bottom of the grid or whose centre points low (below about −20° elevation: foramen
//!    magnum, orbits, the skull base) are natural, and so are openings under 15 mm (thin bone at the
//!    threshold); the others are defects. With several defects,
//!    [`design_implant`] asks for a point ([`Error::SeveralDefects`] lists their centres).
//! 3. **Tables over the defect.** Around the defect a gnomonic chart of directions (1 mm cells)
//!    holds the inner and outer table radii. The opening is widened by 3 mm and its tables are
//!    modelled from a 10 mm ring of healthy bone around it, less the rays that graze a table
//!    (normal more than 60° from the ray: the floor of the anterior or middle cranial fossa, an
//!    orbit's roof, the zygomatic arch, which large frontal and temporal defects reach):
//!    * [`Method::Patch`]: a quadric surface per table (x'Ax + b'x = 1 about the centre) fitted
//!      robustly to every healthy direction of the vault carries the curvature across the opening,
//!      and thin-plate splines of the ring's departure from it (the biharmonic interpolant, with
//!      outlier rejection) fit it to the rim, so the thickness follows the rim's;
//!    * [`Method::Mirror`]: the mid-sagittal plane is found by registering the outer table to its
//!      own mirror image (point-to-plane ICP, [`msd_geom::align_icp`]); rays cast in the mirrored
//!      skull give the healthy side's tables over the defect, and the difference to the real tables
//!      on the ring, spread by a thin-plate spline, fits them to the rim.
//!
//!    [`MethodChoice::Auto`] mirrors unless the defect crosses the symmetry plane, the mirrored side
//!    lacks bone too, or the mirrored tables disagree with the real ones on the healthy ring
//!    before the rim fit (more than 3 mm RMS, or more than 2 mm RMS once an affine correction is
//!    taken out): the mirror is judged against the bone, not against the patch, which over a large
//!    opening is the weaker estimate. The [`Implant`] says which method was used and why.
//! 4. **Voxels.** Every voxel without bone whose direction falls in the widened opening and whose
//!    distance from the centre lies between the modelled tables becomes implant. A clearance
//!    removes voxels nearer than it to bone; an opening removes one-voxel slivers along the rim;
//!    only the largest 6-connected piece is kept. The implant shares no voxel with the skull.
//! 5. **Mesh.** Marching cubes of the implant label ([`msd_geom::label_surface`]): watertight,
//!    edge-manifold, outward.
//!
//! # Example
//!
//! ```
//! use msd_implant::{ImplantOptions, Method, design_implant, synthetic};
//! use msd_io::Geometry;
//!
//! // A synthetic skull on a 2.5 mm grid with a 50 mm craniectomy on the right parietal bone.
//! let spec = synthetic::ShellSpec::default();
//! let (geometry, shape) = synthetic::grid_for(&spec, [2.5; 3], Geometry::IDENTITY)?;
//! let skull = synthetic::skull_shell(&spec, geometry, shape)?;
//! let centre = spec.outer_point([-0.7, 0.2, 0.7]);
//! let (defective, removed) = synthetic::cut_sphere(&skull, centre, 25.0)?;
//!
//! let implant = design_implant(&defective, &ImplantOptions::default())?;
//! println!("{} ({}): {:.1} ml", implant.method.name(), implant.reason, implant.volume_ml);
//! assert_eq!(implant.method, Method::Mirror);
//! assert!(implant.mesh.check().is_watertight());
//! // The implant restores the bone that was removed, without touching the remaining skull.
//! let scores = msd_implant::overlap_dice(&implant.labels, &removed)?;
//! assert!(scores > 0.8, "Dice {scores}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]
#![allow(clippy::needless_range_loop)]

mod design;
mod error;
mod rays;
mod shape;
mod skull;
mod symmetry;
pub mod synthetic;
mod tps;

pub use design::{
    Implant, ImplantOptions, Method, MethodChoice, design_implant, find_openings, restore, symmetry_plane,
};
pub use error::{Error, Result};
pub use skull::Opening;
pub use symmetry::SymmetryPlane;

/// Dice overlap of the non-zero voxels of two label volumes on the same grid (1 when both are
/// empty): a quick check without `msd-metrics`.
pub fn overlap_dice(a: &msd_io::LabelVolume, b: &msd_io::LabelVolume) -> Result<f64> {
    a.check_same_grid(b, 1e-3)
        .map_err(|e| Error::GridMismatch { what: "the two volumes", detail: e.to_string() })?;
    let (mut both, mut na, mut nb) = (0u64, 0u64, 0u64);
    for (&x, &y) in a.data().iter().zip(b.data().iter()) {
        let (x, y) = (x != 0, y != 0);
        both += u64::from(x && y);
        na += u64::from(x);
        nb += u64::from(y);
    }
    Ok(if na + nb == 0 { 1.0 } else { 2.0 * both as f64 / (na + nb) as f64 })
}
