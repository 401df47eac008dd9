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
//! The entry points are [`read_volume`] (any supported format, as `f32`), [`read_labels`] (integer
//! label files) and [`write_volume`] (NIfTI-1 or NRRD by extension, written atomically). The
//! [`dicom`], [`nifti`] and [`nrrd`] modules hold the format-specific readers, writers and options:
//! series listing and selection, gantry-tilt and uneven-spacing policies, compression levels.
//!
//! | format | read | write |
//! |---|---|---|
//! | DICOM series (folder, file list, DICOMDIR; native, deflate, RLE, JPEG, JPEG 2000, JPEG-LS with the `jpeg-ls` feature; enhanced multi-frame) | [`dicom::read_series`] | – |
//! | NIfTI-1 `.nii`, `.nii.gz` (sform/qform, `scl_slope`/`scl_inter`) | [`nifti::read`] | [`nifti::write`] |
//! | NRRD `.nrrd`, `.nhdr` (raw, gzip, ascii; LPS/RAS/LAS) | [`nrrd::read`] | [`nrrd::write`] |
//!
//! Every failure is an [`Error`] that names the file and the field or tag at fault. Bad input
//! (truncated files, absurd sizes, NaN spacing) is an error, never a panic, and no allocation is
//! sized by a header field before it is checked against the file.
//!
//! # Example: a DICOM series to NIfTI
//!
//! ```no_run
//! use msd_io::dicom::{self, ReadOptions};
//!
//! // What is in the folder?
//! for s in dicom::list_series("scans/patient1")? {
//!     println!("{} {} {:?}: {} slices", s.uid, s.modality, s.description, s.slices);
//! }
//! // The CT series with the most slices, in Hounsfield units.
//! let ct = dicom::read_series("scans/patient1", &ReadOptions::default())?;
//! let g = ct.volume.geometry();
//! println!("shape (z, y, x) {:?}", ct.volume.shape());
//! println!("spacing {:?} mm, origin {:?} mm (LPS)", g.spacing(), g.origin());
//! println!("direction {:?}, gantry tilt {:.1}°", g.direction(), ct.tilt_deg);
//! msd_io::write_volume("patient1_ct.nii.gz", &ct.volume.map(|&hu| hu.round() as i16))?;
//! # Ok::<(), msd_io::Error>(())
//! ```
//!
//! # Example: volumes and their geometry
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
// Matrix and affine code reads best with the indices of the formulas it implements.
#![allow(clippy::needless_range_loop)]

mod atomic_file;
pub mod dicom;
mod error;
mod format;
mod geometry;
pub mod nifti;
pub mod nrrd;
mod payload;
mod volume;
mod voxel;

use std::path::Path;

pub use atomic_file::write_atomic;
pub use error::{Error, Result};
pub use geometry::Geometry;
pub use volume::{LabelVolume, Volume};
pub use voxel::VoxelType;

use format::Format;

/// Reads a volume from any supported format as `f32` values (Hounsfield units for CT, after the
/// file's rescale slope and intercept), with its geometry in LPS millimetres.
///
/// The format is chosen by name (`.nii`, `.nii.gz`, `.nrrd`, `.nhdr`) and otherwise by content.
pub fn read_volume(path: impl AsRef<Path>) -> Result<Volume<f32>> {
    let path = path.as_ref();
    match detect(path)? {
        Format::Nifti => nifti::read(path),
        Format::Nrrd => nrrd::read(path),
        Format::Dicom => dicom::read(path),
    }
}

/// Reads a volume like [`read_volume`], with explicit options for DICOM input (series, and whether
/// a series with uneven slice spacing or gantry tilt is resampled onto a regular grid or refused).
/// NIfTI and NRRD files ignore the options.
pub fn read_volume_with(path: impl AsRef<Path>, options: &dicom::ReadOptions) -> Result<Volume<f32>> {
    let path = path.as_ref();
    match detect(path)? {
        Format::Nifti => nifti::read(path),
        Format::Nrrd => nrrd::read(path),
        Format::Dicom => Ok(dicom::read_series(path, options)?.volume),
    }
}

/// Reads a label volume (NIfTI-1 or NRRD) whose values are integers in 0..=255.
///
/// Any other value (fractional, negative, above 255, NaN) gives [`Error::NotLabels`] naming the first
/// offending voxel.
pub fn read_labels(path: impl AsRef<Path>) -> Result<LabelVolume> {
    let path = path.as_ref();
    let volume = read_volume(path)?;
    if let Some(((z, y, x), &v)) =
        volume.data().indexed_iter().find(|(_, v)| !(v.fract() == 0.0 && (0.0..=255.0).contains(*v)))
    {
        return Err(Error::NotLabels { path: path.to_path_buf(), index: [z, y, x], value: f64::from(v) });
    }
    Ok(volume.map(|&v| v as u8))
}

/// Writes a volume in the format its extension names: `.nii` or `.nii.gz` (NIfTI-1), `.nrrd`
/// (gzip-encoded NRRD) or `.nhdr` (detached NRRD header beside a gzip data file). The file appears
/// atomically: it is written to a temporary file in the same folder and renamed.
pub fn write_volume<T: VoxelType>(path: impl AsRef<Path>, volume: &Volume<T>) -> Result<()> {
    let path = path.as_ref();
    match format::by_name(path) {
        Some(Format::Nifti) => nifti::write(path, volume, &nifti::WriteOptions::default()),
        Some(Format::Nrrd) => {
            let detached = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("nhdr"));
            nrrd::write(path, volume, &nrrd::WriteOptions { detached, ..Default::default() })
        }
        _ => Err(Error::Unsupported {
            path: path.to_path_buf(),
            what: "output format: use a .nii, .nii.gz, .nrrd or .nhdr file name".into(),
        }),
    }
}

fn detect(path: &Path) -> Result<Format> {
    if path.is_dir() {
        return Ok(Format::Dicom);
    }
    if !path.exists() {
        return Err(Error::io(path, std::io::Error::from(std::io::ErrorKind::NotFound)));
    }
    format::by_name(path)
        .or_else(|| format::by_content(path))
        .ok_or_else(|| Error::UnknownFormat { path: path.to_path_buf() })
}
