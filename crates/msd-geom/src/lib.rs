//! Geometry for CT segmentation: surfaces from label volumes, label volumes from surfaces, mesh
//! files, clean-up and rigid alignment.
//!
//! The principal type is [`Mesh`], an indexed triangle mesh (shared vertices) whose vertices are in
//! world LPS millimetres (DICOM patient coordinates), so a surface extracted from a volume lands
//! exactly where the anatomy is and can be compared with a gold-standard model made elsewhere.
//!
//! | task | functions |
//! |---|---|
//! | label / scalar volume → surface | [`label_surface`], [`marching_cubes`] (watertight, edge-manifold, outward; slab-parallel) |
//! | surface → label | [`voxelize()`] (voxel centre inside; three-direction winding-number vote), [`mesh_to_labels`] (onto a CT's grid) |
//! | files | [`read_mesh`], [`write_mesh`], [`read_stl`], [`write_stl`], [`write_stl_ascii`], [`read_ply`], [`write_ply`], [`write_ply_with`] ([`PlyOptions`]: colour, scalars), [`read_obj`], [`write_obj`] |
//! | measures and checks | [`Mesh::area`], [`Mesh::enclosed_volume`], [`Mesh::bounds`], [`Mesh::vertex_normals`], [`Mesh::connected_components`], [`Mesh::check`] → [`MeshCheck`] |
//! | label clean-up | [`Cleanup`] (the engineers' recipe: largest 26-connected component, pockets filled), [`label_components`] |
//! | clean-up | [`Mesh::keep_largest_components`], [`Mesh::drop_small_components`], [`Mesh::select_components`], [`fill_cavities`], [`smooth_taubin`], [`decimate()`] |
//! | alignment | [`align_icp`], [`align_to_volume`] |
//!
//! # Example: label volume → cleaned, smoothed STL
//!
//! ```
//! use msd_geom::{DecimateOptions, SmoothOptions, decimate, fill_cavities, label_surface, smooth_taubin, write_mesh};
//! use msd_io::{Geometry, LabelVolume};
//! use ndarray::Array3;
//!
//! // A hollow ball of "bone" with a pocket inside and one stray voxel of noise, on a grid of
//! // 0.5 × 0.5 × 1 mm voxels placed in LPS millimetres.
//! let geometry = Geometry::new([0.5, 0.5, 1.0], [-8.0, -8.0, -12.0], Geometry::IDENTITY)?;
//! let labels = LabelVolume::new(
//!     Array3::from_shape_fn((24, 34, 34), |(z, y, x)| {
//!         let (dx, dy, dz) = (x as f64 - 16.5, y as f64 - 16.5, 2.0 * (z as f64 - 11.5));
//!         let r = (dx * dx + dy * dy + dz * dz).sqrt();
//!         u8::from((r < 14.0 && r > 3.0) || (x, y, z) == (1, 1, 1))
//!     }),
//!     geometry,
//! )?;
//! // Fill enclosed pockets up to 100 mm³, extract the surface, keep the largest piece.
//! let (labels, _filled) = fill_cavities(&labels, 1, 100.0)?;
//! let surface = label_surface(&labels, 1)?.keep_largest_components(1);
//! // Remove the voxel staircase without shrinking, then reduce the face count within 0.1 mm.
//! let smooth = smooth_taubin(&surface, &SmoothOptions::default())?;
//! let target_triangles = smooth.triangles().len() / 2;
//! let small = decimate(&smooth, &DecimateOptions { target_triangles, max_deviation_mm: 0.1 })?.mesh;
//! let check = small.check();
//! assert!(check.is_watertight() && check.is_edge_manifold() && check.components == 1);
//!
//! let dir = tempfile::tempdir()?;
//! write_mesh(dir.path().join("skull.stl"), &small)?;
//! # let back = msd_geom::read_mesh(dir.path().join("skull.stl"))?;
//! # assert_eq!(back.triangles().len(), small.triangles().len());
//! Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Dependencies and why
//!
//! * `parry3d` (f32, glam) answers the spatial queries: exact closest points on a triangle mesh
//!   through its BVH, for ICP correspondences ([`align_icp`]) and for the measured deviation bound of
//!   [`decimate()`].
//! * `tri-mesh` is used only in tests, as an independent oracle for closedness, components and the
//!   λ|μ smoothing steps. The library does not build on it: its half-edge mesh is made through
//!   `HashMap`s of `f64` positions one face at a time (slow and memory-hungry for the million-triangle
//!   skulls here, and single-threaded), it links a third triangle on an edge without complaint, so it
//!   cannot report the non-manifold edges [`Mesh::check`] must count, and its smoothing is the plain
//!   step that [`smooth_taubin`] alternates with an inflating one. The flat index arrays of [`Mesh`]
//!   with sorted edge keys do these jobs in parallel and in a fraction of the memory.
//! * `rayon` runs the slabs of marching cubes, the ray families of voxelisation and the per-vertex
//!   loops.
//!
//! # Mesh files
//!
//! Formats are read by content ([`read_mesh`]) and written by extension ([`write_mesh`]). Readers
//! check every count against the file's size before allocating, refuse NaN and infinite
//! coordinates and faces that are not triangles, and say where a file is wrong. Writers write to a
//! temporary file in the destination folder and rename it into place, so a crash never leaves a
//! half-written mesh behind.
//!
//! # Method notes
//!
//! The docs of the functions that implement them hold the method notes: how marching cubes
//! resolves its ambiguous cases ([`marching_cubes`]), how voxelisation decides inside
//! ([`voxelize()`]), what the decimation bound means ([`decimate()`]), how ICP finds closest points
//! ([`align_icp`]) and how components are found ([`Cleanup`]). Every item is reached from the
//! crate root, by one path.
#![deny(missing_docs)]
// Index loops over x, y, z read like the formulas they implement in the geometric kernels.
#![allow(clippy::needless_range_loop)]

mod align;
mod cavities;
mod components;
mod decimate;
mod error;
mod io;
mod mesh;
mod smooth;
mod surface;
mod voxelize;

pub use align::{AlignOptions, Alignment, align_icp, align_to_volume};
pub use cavities::fill_cavities;
pub use components::{
    Cleanup, CleanupReport, Connectivity, KeepComponents, LabelComponents, label_components,
};
pub use decimate::{DecimateOptions, Decimation, decimate};
pub use error::{Error, Result};
pub use io::{
    PlyEncoding, PlyOptions, read_mesh, read_obj, read_ply, read_stl, write_mesh, write_obj, write_ply,
    write_ply_with, write_stl, write_stl_ascii,
};
pub use mesh::{Aabb, Components, Mesh, MeshCheck};
pub use smooth::{SmoothOptions, smooth_taubin};
pub use surface::{label_surface, marching_cubes};
pub use voxelize::{mesh_to_labels, voxelize};
