//! DICOM: read a CT (or any cross-sectional) series from a folder, a list of files or a DICOMDIR into a
//! [`Volume`] in rescaled units (Hounsfield units for CT) with its exact geometry.
//!
//! What the reader does, in order:
//! 1. collects files (folders recursively; a DICOMDIR's referenced files) and reads their headers,
//!    skipping files that are not DICOM;
//! 2. groups instances by SeriesInstanceUID ([`list_series`] shows them) and picks one: the UID given
//!    in [`ReadOptions::series_uid`], or else the CT series with the most slices (any modality when
//!    there is no CT). Secondary captures, colour images and images without a position are never
//!    stacked ([`Error::NotAVolume`]);
//! 3. requires one image size, orientation and pixel spacing in the series (a typed error otherwise),
//!    sorts slices by position along the slice normal (file names and InstanceNumber are ignored),
//!    refuses repeated positions (multi-volume series), and takes the slice spacing from the
//!    positions, never from SliceThickness;
//! 4. decodes pixel data in parallel in every transfer syntax the build supports (native, deflate,
//!    RLE, JPEG baseline/extended/lossless, JPEG 2000; JPEG-LS needs the `charls` codec, and without
//!    it the error names the transfer syntax), masks the stored bits, sign-extends signed data and
//!    applies RescaleSlope / RescaleIntercept per frame; enhanced multi-frame images are read through
//!    their functional groups;
//! 5. detects gantry tilt (slice step not along the normal) and uneven spacing or missing slices, and
//!    resamples them onto a regular grid or refuses, per [`ReadOptions`].
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::{Error, Result, Volume};

mod grid;
mod guard;
mod pixels;
mod scan;

/// What to do with a series that is not a regular grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resampling {
    /// Return a typed error ([`Error::GantryTilt`] or [`Error::UnevenSpacing`]).
    Refuse,
    /// Resample onto a regular grid (linear interpolation).
    Resample,
}

/// Options for [`read_series`].
#[derive(Debug, Clone, PartialEq)]
pub struct ReadOptions {
    /// The SeriesInstanceUID to read; `None` picks the CT series with the most slices.
    pub series_uid: Option<String>,
    /// Gantry-tilted series (sheared grid). Default [`Resampling::Resample`]: each slice is shifted in
    /// its plane so the slices stack along their normal (dcm2niix's tilt correction); the grid grows
    /// so nothing is cut off, and the added area holds the series' minimum value.
    pub gantry_tilt: Resampling,
    /// Uneven slice spacing or missing slices. Default [`Resampling::Refuse`]; with
    /// [`Resampling::Resample`] slices are interpolated linearly onto the median step.
    pub uneven_spacing: Resampling,
    /// Relative tolerance on slice steps before spacing counts as uneven (default 0.01 = 1 %).
    pub spacing_tolerance: f64,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            series_uid: None,
            gantry_tilt: Resampling::Resample,
            uneven_spacing: Resampling::Refuse,
            spacing_tolerance: 0.01,
        }
    }
}

/// One series found in the input.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesInfo {
    /// SeriesInstanceUID (0020,000E).
    pub uid: String,
    /// SeriesDescription (0008,103E), empty when absent.
    pub description: String,
    /// SOPClassUID (0008,0016) of the first file, e.g. `1.2.840.10008.5.1.4.1.1.2` (CT Image Storage).
    pub sop_class_uid: String,
    /// Modality (0008,0060), e.g. `CT`.
    pub modality: String,
    /// SeriesNumber (0020,0011).
    pub number: Option<i32>,
    /// Number of slices (frames with a position) usable for a volume.
    pub slices: usize,
    /// The files of the series, in input order.
    pub files: Vec<PathBuf>,
    /// Why the series (or some of its files) cannot be stacked into a volume, if so.
    pub not_a_volume: Option<String>,
}

/// A series read as a volume, with what the reader found on the way.
#[derive(Debug, Clone)]
pub struct SeriesVolume {
    /// The voxels (rescaled, e.g. HU) and their geometry.
    pub volume: Volume<f32>,
    /// The series read.
    pub series: SeriesInfo,
    /// Angle (degrees) between the slice step and the slice normal; above 0.1 is a gantry tilt.
    pub tilt_deg: f64,
    /// Whether the slices were shifted in-plane to undo a gantry tilt.
    pub resampled_tilt: bool,
    /// Whether slices were interpolated onto a uniform spacing.
    pub resampled_spacing: bool,
}

/// Lists the series in a folder (recursively), DICOMDIR or file, in SeriesNumber order.
pub fn list_series(input: impl AsRef<Path>) -> Result<Vec<SeriesInfo>> {
    let input = input.as_ref();
    let files = scan::files_of(input)?;
    let instances = scan::scan(&files, files.len() > 1 || input.is_dir())?;
    Ok(group(&instances).into_iter().map(|(info, _)| info).collect())
}

/// Reads the default series (the CT series with the most slices) of a folder, DICOMDIR or file with
/// default options.
pub fn read(input: impl AsRef<Path>) -> Result<Volume<f32>> {
    Ok(read_series(input, &ReadOptions::default())?.volume)
}

/// Reads one series of a folder (recursively), DICOMDIR or single file.
pub fn read_series(input: impl AsRef<Path>, options: &ReadOptions) -> Result<SeriesVolume> {
    let input = input.as_ref();
    let files = scan::files_of(input)?;
    read_from(input, &files, input.is_dir() || files.len() > 1, options)
}

/// Reads one series from an explicit list of files (every one must be DICOM).
pub fn read_files<P: AsRef<Path>>(files: &[P], options: &ReadOptions) -> Result<SeriesVolume> {
    let files: Vec<PathBuf> = files.iter().map(|p| p.as_ref().to_path_buf()).collect();
    let first = files.first().cloned().unwrap_or_default();
    read_from(&first, &files, false, options)
}

fn read_from(
    input: &Path,
    files: &[PathBuf],
    skip_foreign: bool,
    options: &ReadOptions,
) -> Result<SeriesVolume> {
    let instances = scan::scan(files, skip_foreign)?;
    if instances.is_empty() {
        return Err(Error::NotAVolume { path: input.to_path_buf(), what: "no DICOM files found".into() });
    }
    let series = group(&instances);
    let chosen = match &options.series_uid {
        Some(uid) => series.iter().find(|(info, _)| &info.uid == uid).ok_or_else(|| Error::Dicom {
            path: input.to_path_buf(),
            what: format!(
                "series {uid} not found; the input holds {}",
                series.iter().map(|(i, _)| i.uid.as_str()).collect::<Vec<_>>().join(", ")
            ),
        })?,
        None => series
            .iter()
            .filter(|(info, _)| info.slices > 0)
            .max_by_key(|(info, _)| (info.modality == "CT", info.slices))
            .ok_or_else(|| Error::NotAVolume {
                path: input.to_path_buf(),
                what: series
                    .iter()
                    .map(|(i, _)| {
                        format!("series {}: {}", i.uid, i.not_a_volume.as_deref().unwrap_or("no slices"))
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
            })?,
    };
    let (info, members) = chosen;
    if info.slices == 0 {
        return Err(Error::NotAVolume {
            path: input.to_path_buf(),
            what: format!("series {}: {}", info.uid, info.not_a_volume.as_deref().unwrap_or("no slices")),
        });
    }
    let frames: Vec<(&scan::Instance, usize)> = members
        .iter()
        .filter(|i| i.problem.is_none())
        .flat_map(|i| (0..i.frames.len()).map(move |f| (*i, f)))
        .collect();
    let plan = grid::plan(input, &info.uid, frames)?;
    // Decode each instance once, in parallel, then put its frames in plan order.
    // For each file: the instance and its (slot in the plan, frame index) pairs.
    type Wanted<'a> = (&'a scan::Instance, Vec<(usize, usize)>);
    let mut by_instance: BTreeMap<&Path, Wanted<'_>> = BTreeMap::new();
    for (slot, (inst, f)) in plan.slices.iter().enumerate() {
        by_instance.entry(inst.path.as_path()).or_insert_with(|| (*inst, Vec::new())).1.push((slot, *f));
    }
    type Slots = Vec<(usize, Vec<f32>)>;
    let decoded: Vec<Result<Slots>> = by_instance
        .into_par_iter()
        .map(|(_, (inst, slots))| {
            let frames: Vec<usize> = slots.iter().map(|s| s.1).collect();
            let data = pixels::decode(inst, &frames)?;
            Ok(slots.iter().map(|s| s.0).zip(data).collect())
        })
        .collect();
    let mut slices: Vec<Vec<f32>> = vec![Vec::new(); plan.slices.len()];
    for d in decoded {
        for (slot, data) in d? {
            slices[slot] = data;
        }
    }
    let (volume, report) = grid::assemble(input, &info.uid, &plan, slices, options)?;
    Ok(SeriesVolume {
        volume,
        series: info.clone(),
        tilt_deg: report.tilt_deg,
        resampled_tilt: report.resampled_tilt,
        resampled_spacing: report.resampled_spacing,
    })
}

/// Groups instances by series, in (SeriesNumber, UID) order.
fn group(instances: &[scan::Instance]) -> Vec<(SeriesInfo, Vec<&scan::Instance>)> {
    let mut map: BTreeMap<(i64, &str), Vec<&scan::Instance>> = BTreeMap::new();
    for inst in instances {
        map.entry((inst.series_number.map_or(i64::MAX, i64::from), inst.series_uid.as_str()))
            .or_default()
            .push(inst);
    }
    map.into_values()
        .map(|members| {
            let first = members[0];
            let slices = members.iter().filter(|i| i.problem.is_none()).map(|i| i.frames.len()).sum();
            let problems: Vec<String> = members
                .iter()
                .filter_map(|i| i.problem.as_ref().map(|p| format!("{}: {p}", i.path.display())))
                .collect();
            let info = SeriesInfo {
                uid: first.series_uid.clone(),
                description: first.description.clone(),
                sop_class_uid: first.sop_class_uid.clone(),
                modality: first.modality.clone(),
                number: first.series_number,
                slices,
                files: members.iter().map(|i| i.path.clone()).collect(),
                not_a_volume: if problems.is_empty() { None } else { Some(problems.join("; ")) },
            };
            (info, members)
        })
        .collect()
}
