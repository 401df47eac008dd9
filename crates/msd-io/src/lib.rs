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
//! label files, straight to `u8`), [`read_volume_native`] (the stored integer type),
//! [`read_volume_header`] (shape and geometry, no voxel decoded) and [`write_volume`] (NIfTI-1 or
//! NRRD by extension, written atomically). The
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

use rayon::prelude::*;

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
/// offending voxel. The values go straight from the file's type to `u8` (no `f32` copy of the
/// volume), decoded in parallel while the next part of the file is read or decompressed. A DICOM
/// series (not a label format, but accepted) is read as `f32` and checked.
pub fn read_labels(path: impl AsRef<Path>) -> Result<LabelVolume> {
    let path = path.as_ref();
    match detect(path)? {
        Format::Nifti => return nifti::read_labels(path),
        Format::Nrrd => return nrrd::read_labels(path),
        Format::Dicom => {}
    }
    let volume = dicom::read(path)?;
    if let Some(((z, y, x), &v)) =
        volume.data().indexed_iter().find(|(_, v)| !(v.fract() == 0.0 && (0.0..=255.0).contains(*v)))
    {
        return Err(Error::NotLabels { path: path.to_path_buf(), index: [z, y, x], value: f64::from(v) });
    }
    Ok(volume.map(|&v| v as u8))
}

/// A volume in the number type its file stores, for tools that look at values without computing
/// on them as `f32` (statistics, label checks): a 512³ `u8` label stays 134 MB instead of 537 MB.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum NativeVolume {
    /// Unsigned 8-bit values (labels, masks).
    U8(Volume<u8>),
    /// Signed 16-bit values (CT in Hounsfield units without rescaling).
    I16(Volume<i16>),
    /// Unsigned 16-bit values (labels with many classes, raw detector counts).
    U16(Volume<u16>),
    /// Any other stored type, or values with a rescale slope or intercept, as `f32` after rescaling.
    F32(Volume<f32>),
}

impl NativeVolume {
    /// Shape as `[z, y, x]`.
    pub fn shape(&self) -> [usize; 3] {
        match self {
            NativeVolume::U8(v) => v.shape(),
            NativeVolume::I16(v) => v.shape(),
            NativeVolume::U16(v) => v.shape(),
            NativeVolume::F32(v) => v.shape(),
        }
    }

    /// The geometry placing the voxels in LPS millimetres.
    pub fn geometry(&self) -> &Geometry {
        match self {
            NativeVolume::U8(v) => v.geometry(),
            NativeVolume::I16(v) => v.geometry(),
            NativeVolume::U16(v) => v.geometry(),
            NativeVolume::F32(v) => v.geometry(),
        }
    }

    /// Smallest, largest and mean finite value, and the number of non-finite ones. Integer volumes
    /// are summarised in parallel (their sums are exact, so the result does not depend on the order);
    /// `f32` volumes in one ordered pass.
    pub fn summary(&self) -> ValueSummary {
        fn ints<T>(v: &Volume<T>) -> ValueSummary
        where
            T: Copy + Ord + Send + Sync,
            f64: From<T>,
        {
            let owned;
            let values = match v.data().as_slice_memory_order() {
                Some(s) => s,
                None => {
                    owned = v.data().iter().copied().collect::<Vec<T>>();
                    &owned
                }
            };
            // Chunks are never empty, so each has a first value to start from.
            let found = values
                .par_chunks(1 << 16)
                .map(|c| {
                    let (lo, hi) = c.iter().fold((c[0], c[0]), |(a, b), &x| (a.min(x), b.max(x)));
                    let sum: f64 = c.iter().map(|&x| f64::from(x)).sum();
                    (lo, hi, sum)
                })
                .reduce_with(|a, b| (a.0.min(b.0), a.1.max(b.1), a.2 + b.2));
            match found {
                Some((lo, hi, sum)) => ValueSummary {
                    min: f64::from(lo) as f32,
                    max: f64::from(hi) as f32,
                    mean: sum / values.len() as f64,
                    non_finite: 0,
                },
                None => {
                    ValueSummary { min: f32::INFINITY, max: f32::NEG_INFINITY, mean: f64::NAN, non_finite: 0 }
                }
            }
        }
        match self {
            NativeVolume::U8(v) => ints(v),
            NativeVolume::I16(v) => ints(v),
            NativeVolume::U16(v) => ints(v),
            NativeVolume::F32(v) => {
                let (mut lo, mut hi, mut sum, mut n, mut bad) =
                    (f32::INFINITY, f32::NEG_INFINITY, 0.0f64, 0usize, 0usize);
                for &x in v.data() {
                    if x.is_finite() {
                        lo = lo.min(x);
                        hi = hi.max(x);
                        sum += f64::from(x);
                        n += 1;
                    } else {
                        bad += 1;
                    }
                }
                ValueSummary {
                    min: lo,
                    max: hi,
                    mean: if n > 0 { sum / n as f64 } else { f64::NAN },
                    non_finite: bad,
                }
            }
        }
    }

    /// The volume as `f32` values, as [`read_volume`] gives it.
    pub fn into_f32(self) -> Volume<f32> {
        match self {
            NativeVolume::U8(v) => v.map(|&x| f32::from(x)),
            NativeVolume::I16(v) => v.map(|&x| f32::from(x)),
            NativeVolume::U16(v) => v.map(|&x| f32::from(x)),
            NativeVolume::F32(v) => v,
        }
    }
}

/// What [`NativeVolume::summary`] finds in a volume's values.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct ValueSummary {
    /// Smallest finite value (`+∞` when there is none).
    pub min: f32,
    /// Largest finite value (`−∞` when there is none).
    pub max: f32,
    /// Mean of the finite values (NaN when there is none).
    pub mean: f64,
    /// Number of NaN or infinite values.
    pub non_finite: usize,
}

/// Reads a volume in its stored number type where that is `u8`, `i16` or `u16` without rescaling
/// (NIfTI-1; NRRD with raw or gzip encoding), else as `f32` like [`read_volume`] (DICOM, rescaled,
/// text-encoded or other types). The values are the same as [`read_volume`]'s; only their type
/// differs.
pub fn read_volume_native(path: impl AsRef<Path>) -> Result<NativeVolume> {
    let path = path.as_ref();
    match detect(path)? {
        Format::Nifti => nifti::read_native(path),
        Format::Nrrd => nrrd::read_native(path),
        Format::Dicom => read_volume(path).map(NativeVolume::F32),
    }
}

/// What a volume file's header says about its grid, read without reading or decoding any voxel.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct VolumeHeader {
    /// Shape as `[z, y, x]`.
    pub shape: [usize; 3],
    /// The geometry placing the voxels in LPS millimetres.
    pub geometry: Geometry,
}

/// Reads the shape and geometry of a NIfTI-1 or NRRD volume from its header alone: no voxel is
/// read or decoded (of a `.nii.gz`, only the 348-byte header is decompressed), so it takes the same
/// time for a 512³ volume as for a tiny one. The values are those [`read_volume`] would give.
///
/// A DICOM series has no one header (its grid comes from every slice's position):
/// [`Error::Unsupported`]; [`dicom::list_series`] describes a folder without decoding pixels.
pub fn read_volume_header(path: impl AsRef<Path>) -> Result<VolumeHeader> {
    let path = path.as_ref();
    match detect(path)? {
        Format::Nifti => {
            let h = nifti::read_header(path)?;
            Ok(VolumeHeader { shape: h.shape, geometry: h.geometry })
        }
        Format::Nrrd => {
            let h = nrrd::read_header(path)?;
            Ok(VolumeHeader { shape: h.shape, geometry: h.geometry })
        }
        Format::Dicom => Err(Error::Unsupported {
            path: path.to_path_buf(),
            what: "a header-only read of a DICOM series (its grid comes from every slice)".into(),
        }),
    }
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
