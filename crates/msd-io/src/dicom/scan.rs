//! Finding DICOM files (folders, file lists, DICOMDIR) and reading what each instance says about
//! itself and its frames, without touching pixel data.
use std::path::{Path, PathBuf};

use dicom::dictionary_std::tags;
use dicom::object::{InMemDicomObject, OpenFileOptions};
use rayon::prelude::*;

use crate::{Error, Result};

/// One frame (a slice) of an instance: where it lies and how its values are rescaled.
#[derive(Debug, Clone)]
pub(crate) struct Frame {
    /// Frame index within the instance.
    pub index: u32,
    /// ImagePositionPatient: LPS mm of the centre of the first transmitted pixel.
    pub position: [f64; 3],
    /// ImageOrientationPatient: row direction then column direction.
    pub orientation: [f64; 6],
    /// PixelSpacing: (between rows, between columns) in mm.
    pub pixel_spacing: [f64; 2],
    pub slope: f64,
    pub intercept: f64,
}

/// What one DICOM file says about itself.
#[derive(Debug, Clone)]
pub(crate) struct Instance {
    pub path: PathBuf,
    pub series_uid: String,
    pub sop_class_uid: String,
    pub modality: String,
    pub description: String,
    pub series_number: Option<i32>,
    pub transfer_syntax: String,
    pub rows: u32,
    pub columns: u32,
    pub bits_allocated: u16,
    pub bits_stored: u16,
    pub high_bit: u16,
    pub signed: bool,
    pub frames: Vec<Frame>,
    pub slice_spacing_tag: Option<f64>,
    /// Why this instance cannot be a slice of a volume, if it cannot.
    pub problem: Option<String>,
}

/// Expands `input` into the DICOM candidate files: a folder (walked recursively, in name order), a
/// DICOMDIR (the files its records reference) or a single file.
pub(crate) fn files_of(input: &Path) -> Result<Vec<PathBuf>> {
    if input.is_dir() {
        let mut out = Vec::new();
        walk(input, &mut out, 0)?;
        return Ok(out);
    }
    let is_dicomdir = input.file_name().is_some_and(|n| n.eq_ignore_ascii_case("DICOMDIR"));
    if is_dicomdir {
        return dicomdir_files(input);
    }
    if !input.exists() {
        return Err(Error::io(input, std::io::Error::from(std::io::ErrorKind::NotFound)));
    }
    Ok(vec![input.to_path_buf()])
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) -> Result<()> {
    // Symbolic-link loops would recurse forever; real exports are a few levels deep.
    if depth > 32 {
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out, depth + 1)?;
        } else if p.file_name().is_some_and(|n| !n.eq_ignore_ascii_case("DICOMDIR")) {
            out.push(p);
        }
    }
    Ok(())
}

fn dicomdir_files(path: &Path) -> Result<Vec<PathBuf>> {
    let obj = OpenFileOptions::new()
        .open_file(path)
        .map_err(|e| Error::Dicom { path: path.to_path_buf(), what: format!("cannot read DICOMDIR: {e}") })?;
    let base = path.parent().unwrap_or(Path::new("."));
    let records =
        obj.get(tags::DIRECTORY_RECORD_SEQUENCE).and_then(|e| e.items()).ok_or_else(|| Error::Dicom {
            path: path.to_path_buf(),
            what: "DICOMDIR has no DirectoryRecordSequence (0004,1220)".into(),
        })?;
    let mut out = Vec::new();
    for record in records {
        if let Some(parts) = record.get(tags::REFERENCED_FILE_ID).and_then(|e| e.to_multi_str().ok()) {
            let mut p = base.to_path_buf();
            for part in parts.iter() {
                p.push(part.trim());
            }
            out.push(p);
        }
    }
    if out.is_empty() {
        return Err(Error::Dicom { path: path.to_path_buf(), what: "DICOMDIR references no files".into() });
    }
    Ok(out)
}

/// Reads the headers of `files` in parallel. Files that are not DICOM are skipped when `skip_foreign`
/// (folder scans: exports hold DIRFILEs, thumbnails, reports); otherwise they are an error.
pub(crate) fn scan(files: &[PathBuf], skip_foreign: bool) -> Result<Vec<Instance>> {
    let results: Vec<Result<Option<Instance>>> = files
        .par_iter()
        .map(|p| match open_header(p) {
            Ok(obj) => Ok(Some(describe(p, &obj))),
            Err(_) if skip_foreign => Ok(None),
            Err(e) => Err(e),
        })
        .collect();
    let mut out = Vec::new();
    for r in results {
        if let Some(i) = r? {
            out.push(i);
        }
    }
    Ok(out)
}

fn open_header(path: &Path) -> Result<dicom::object::DefaultDicomObject> {
    super::guard::check_lengths(path)?;
    OpenFileOptions::new().read_until(tags::PIXEL_DATA).open_file(path).map_err(|e| Error::Dicom {
        path: path.to_path_buf(),
        what: format!("not a readable DICOM file: {e}"),
    })
}

pub(crate) fn text(obj: &InMemDicomObject, tag: dicom::core::Tag) -> Option<String> {
    obj.get(tag)
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_matches(|c: char| c == '\0' || c.is_whitespace()).to_string())
}

pub(crate) fn floats(obj: &InMemDicomObject, tag: dicom::core::Tag) -> Option<Vec<f64>> {
    obj.get(tag).and_then(|e| e.to_multi_float64().ok()).filter(|v| v.iter().all(|x| x.is_finite()))
}

fn float(obj: &InMemDicomObject, tag: dicom::core::Tag) -> Option<f64> {
    floats(obj, tag).and_then(|v| v.first().copied())
}

fn int(obj: &InMemDicomObject, tag: dicom::core::Tag) -> Option<i64> {
    obj.get(tag).and_then(|e| e.to_int::<i64>().ok())
}

/// The first item of sequence `seq` in `obj`.
fn item(obj: &InMemDicomObject, seq: dicom::core::Tag) -> Option<&InMemDicomObject> {
    obj.get(seq).and_then(|e| e.items()).and_then(|items| items.first())
}

/// Looks for `attr` inside sequence `seq`, first in the frame's own functional group, then in the shared
/// one, then at the top level.
fn functional<T>(
    frame_group: Option<&InMemDicomObject>,
    shared: Option<&InMemDicomObject>,
    top: &InMemDicomObject,
    seq: dicom::core::Tag,
    get: impl Fn(&InMemDicomObject) -> Option<T>,
) -> Option<T> {
    frame_group
        .and_then(|g| item(g, seq))
        .and_then(&get)
        .or_else(|| shared.and_then(|g| item(g, seq)).and_then(&get))
        .or_else(|| get(top))
}

fn describe(path: &Path, obj: &dicom::object::DefaultDicomObject) -> Instance {
    let top: &InMemDicomObject = obj;
    let mut problems: Vec<String> = Vec::new();
    let sop_class_uid = text(top, tags::SOP_CLASS_UID)
        .unwrap_or_else(|| obj.meta().media_storage_sop_class_uid().trim_end_matches('\0').to_string());
    let rows = int(top, tags::ROWS).unwrap_or(0);
    let columns = int(top, tags::COLUMNS).unwrap_or(0);
    if !(1..=65535).contains(&rows) || !(1..=65535).contains(&columns) {
        problems.push(format!("Rows (0028,0010) × Columns (0028,0011) is {rows} × {columns}"));
    }
    let samples = int(top, tags::SAMPLES_PER_PIXEL).unwrap_or(1);
    if samples != 1 {
        problems.push(format!("SamplesPerPixel (0028,0002) is {samples}: a colour image, not a CT slice"));
    }
    let bits_allocated = int(top, tags::BITS_ALLOCATED).unwrap_or(0);
    if !matches!(bits_allocated, 8 | 16 | 32) {
        problems.push(format!("BitsAllocated (0028,0100) is {bits_allocated}, expected 8, 16 or 32"));
    }
    let bits_stored = int(top, tags::BITS_STORED).unwrap_or(bits_allocated);
    let high_bit = int(top, tags::HIGH_BIT).unwrap_or(bits_stored - 1);
    if bits_stored < 1
        || bits_stored > bits_allocated
        || high_bit < bits_stored - 1
        || high_bit >= bits_allocated
    {
        problems.push(format!(
            "BitsStored {bits_stored} / HighBit {high_bit} do not fit BitsAllocated {bits_allocated}"
        ));
    }
    // Secondary captures (screenshots, dose reports) may carry a position but are never slices.
    if sop_class_uid.starts_with("1.2.840.10008.5.1.4.1.1.7") {
        problems.push(format!("SOPClassUID {sop_class_uid} is a Secondary Capture, not an acquired slice"));
    }
    let n_frames = int(top, tags::NUMBER_OF_FRAMES).unwrap_or(1).max(1);
    let shared = item(top, tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE);
    let per_frame: Vec<&InMemDicomObject> = top
        .get(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE)
        .and_then(|e| e.items())
        .map(|i| i.iter().collect())
        .unwrap_or_default();
    if n_frames > 1 && per_frame.len() as i64 != n_frames {
        problems.push(format!(
            "{n_frames} frames but {} per-frame functional groups: frame positions unknown",
            per_frame.len()
        ));
    }
    let mut frames = Vec::new();
    if problems.is_empty() {
        for f in 0..n_frames as usize {
            let group = per_frame.get(f).copied();
            let position = functional(group, shared, top, tags::PLANE_POSITION_SEQUENCE, |o| {
                floats(o, tags::IMAGE_POSITION_PATIENT)
            });
            let orientation = functional(group, shared, top, tags::PLANE_ORIENTATION_SEQUENCE, |o| {
                floats(o, tags::IMAGE_ORIENTATION_PATIENT)
            });
            let spacing = functional(group, shared, top, tags::PIXEL_MEASURES_SEQUENCE, |o| {
                floats(o, tags::PIXEL_SPACING)
            });
            let slope = functional(group, shared, top, tags::PIXEL_VALUE_TRANSFORMATION_SEQUENCE, |o| {
                float(o, tags::RESCALE_SLOPE)
            });
            let intercept = functional(group, shared, top, tags::PIXEL_VALUE_TRANSFORMATION_SEQUENCE, |o| {
                float(o, tags::RESCALE_INTERCEPT)
            });
            let (Some(p), Some(o)) = (position, orientation) else {
                problems
                    .push("no ImagePositionPatient (0020,0032) / ImageOrientationPatient (0020,0037)".into());
                break;
            };
            if p.len() != 3 || o.len() != 6 {
                problems
                    .push(format!("ImagePositionPatient {p:?} / ImageOrientationPatient {o:?} malformed"));
                break;
            }
            let spacing = match spacing.as_deref() {
                Some([r, c, ..]) if *r > 0.0 && *c > 0.0 => [*r, *c],
                other => {
                    problems.push(format!("PixelSpacing (0028,0030) is {other:?}"));
                    break;
                }
            };
            let slope = slope.filter(|s| *s != 0.0).unwrap_or(1.0);
            frames.push(Frame {
                index: f as u32,
                position: [p[0], p[1], p[2]],
                orientation: [o[0], o[1], o[2], o[3], o[4], o[5]],
                pixel_spacing: spacing,
                slope,
                intercept: intercept.unwrap_or(0.0),
            });
        }
    }
    Instance {
        path: path.to_path_buf(),
        series_uid: text(top, tags::SERIES_INSTANCE_UID).unwrap_or_default(),
        sop_class_uid,
        modality: text(top, tags::MODALITY).unwrap_or_default(),
        description: text(top, tags::SERIES_DESCRIPTION).unwrap_or_default(),
        series_number: int(top, tags::SERIES_NUMBER).and_then(|v| i32::try_from(v).ok()),
        transfer_syntax: obj.meta().transfer_syntax().trim_end_matches('\0').to_string(),
        rows: rows.clamp(0, 65535) as u32,
        columns: columns.clamp(0, 65535) as u32,
        bits_allocated: bits_allocated.clamp(0, 64) as u16,
        bits_stored: bits_stored.clamp(0, 64) as u16,
        high_bit: high_bit.clamp(0, 64) as u16,
        signed: int(top, tags::PIXEL_REPRESENTATION) == Some(1),
        frames,
        slice_spacing_tag: float(top, tags::SPACING_BETWEEN_SLICES)
            .or_else(|| float(top, tags::SLICE_THICKNESS)),
        problem: if problems.is_empty() { None } else { Some(problems.join("; ")) },
    }
}
