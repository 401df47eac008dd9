//! Segmenting a whole study in one run: cases found in folders and lists, one model and one thread
//! pool for all of them, and a manifest rewritten after every case so that a killed run resumes
//! where it stopped.
//!
//! # Cases
//!
//! [`find_cases`] turns paths into [`Case`]s: a NIfTI or NRRD file, or a DICOM file, is one case; a
//! folder is either one DICOM series or a *folder of cases*, where each subfolder is a DICOM series
//! and each NIfTI / NRRD file a case. A folder is a folder of cases when it holds a subfolder or a
//! NIfTI / NRRD file (and no `DICOMDIR`). [`read_case_list`] reads such paths from a text file.
//!
//! # Output folder
//!
//! ```text
//! DIR/manifest.json                  every case: status, input, outputs, timings, skull volume, error
//! DIR/<case>/skull.nii.gz            the labels (0 background, 1 skull) on the scan's grid
//! DIR/<case>/skull.stl               the cleaned, watertight skull surface (LPS mm)
//! DIR/<case>/skull_probability.nii.gz  with BatchOptions::probabilities
//! DIR/<case>/preview/skull_*.png     with BatchOptions::previews
//! ```
//!
//! Every file, the manifest included, is written through [`msd_io::write_atomic`] (a temporary file
//! beside it, then a rename), so a run killed at any point leaves whole files only; the temporary
//! files a kill strands (`.msd-io-*.part`) are removed when the next run starts. A case is done when
//! all its outputs are written; the manifest then records it. A later run skips every case the
//! manifest records as done (or skipped) whose outputs are all present, unless
//! [`BatchOptions::force`] is set; a failed case is recorded with its error and the others go on.
//!
//! ```no_run
//! use msd_pipeline::batch::{BatchOptions, find_cases, segment_batch};
//! use msd_net::Model;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let cases = find_cases(&["study/".into()])?;
//! let model = Model::default_skull()?;
//! let manifest = segment_batch(&model, &cases, "out".as_ref(), &BatchOptions::default(), |_| {})?;
//! println!("{} done, {} failed", manifest.summary.done, manifest.summary.failed);
//! # Ok(())
//! # }
//! ```
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use msd_geom::Cleanup;
use msd_io::LabelVolume;
use msd_net::{Model, SegmentOptions};
use serde::{Deserialize, Serialize};

use crate::{Error, Result, error_chain};
use msd_report::preview::{Overlay, PreviewOptions, SEGMENTATION_COLOUR, write_previews};

/// The manifest's file name in the output folder.
pub const MANIFEST_FILE: &str = "manifest.json";
/// A case's label volume, in its folder.
pub const LABELS_FILE: &str = "skull.nii.gz";
/// A case's skull surface, in its folder.
pub const MESH_FILE: &str = "skull.stl";
/// A case's skull probability volume, in its folder ([`BatchOptions::probabilities`]).
pub const PROBABILITIES_FILE: &str = "skull_probability.nii.gz";
/// A case's preview folder, in its folder ([`BatchOptions::previews`]).
pub const PREVIEW_DIR: &str = "preview";
/// The version of the manifest's layout, stored in it.
pub const MANIFEST_VERSION: u32 = 1;

/// The prefix and suffix of [`msd_io::write_atomic`]'s temporary files.
const TEMP_PREFIX: &str = ".msd-io-";
const TEMP_SUFFIX: &str = ".part";

/// One scan of a batch: a name (its folder in the output) and where it is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// The case's name: the file name without its volume extension, or the DICOM folder's name;
    /// only letters, digits, `.`, `_` and `-`, unique within a batch.
    pub name: String,
    /// The scan: a NIfTI or NRRD file, a DICOM file or a DICOM series folder.
    pub input: PathBuf,
}

/// Whether a file name has a volume extension msd reads by name (NIfTI, NRRD).
fn is_volume_file(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    [".nii", ".nii.gz", ".nrrd", ".nhdr"].iter().any(|ext| lower.ends_with(ext))
}

/// A path's case name: the file name less its volume extension, made safe as a folder name.
fn case_name(path: &Path) -> String {
    let file = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let lower = file.to_ascii_lowercase();
    let stem = [".nii.gz", ".nii", ".nrrd", ".nhdr", ".dcm"]
        .iter()
        .find(|ext| lower.ends_with(*ext))
        .map(|ext| &file[..file.len() - ext.len()])
        .unwrap_or(&file);
    let safe: String = stem
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' })
        .collect();
    let safe = safe.trim_start_matches('.').to_owned();
    if safe.is_empty() { "case".to_owned() } else { safe }
}

/// The entries of a folder, sorted by name, hidden ones left out.
fn sorted_entries(dir: &Path) -> Result<Vec<(String, PathBuf, bool)>> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::file(dir, e))? {
        let entry = entry.map_err(|e| Error::file(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        entries.push((name, path.clone(), path.is_dir()));
    }
    entries.sort();
    Ok(entries)
}

/// Whether a folder holds cases (subfolders or NIfTI / NRRD files) rather than one DICOM series.
fn is_folder_of_cases(entries: &[(String, PathBuf, bool)]) -> bool {
    let dicomdir = entries.iter().any(|(n, _, dir)| !dir && n.eq_ignore_ascii_case("DICOMDIR"));
    !dicomdir && entries.iter().any(|(n, _, dir)| *dir || is_volume_file(n))
}

/// The cases of `inputs`, in order: files and DICOM series folders as given, folders of cases
/// expanded (subfolders and NIfTI / NRRD files, sorted by name; other files in them are left out).
/// A path that does not exist is kept as a case, so that it is recorded as failed with the reason.
/// Names that repeat get `-2`, `-3`, ... appended.
///
/// # Errors
/// [`Error::File`] when a folder cannot be listed.
pub fn find_cases(inputs: &[PathBuf]) -> Result<Vec<Case>> {
    let mut found = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let entries = sorted_entries(input)?;
            if is_folder_of_cases(&entries) {
                found.extend(
                    entries
                        .into_iter()
                        .filter(|(name, _, dir)| *dir || is_volume_file(name))
                        .map(|(_, path, _)| path),
                );
                continue;
            }
        }
        found.push(input.clone());
    }
    let mut used = HashSet::new();
    Ok(found
        .into_iter()
        .map(|input| {
            let base = case_name(&input);
            let mut name = base.clone();
            let mut k = 2;
            while !used.insert(name.clone()) {
                name = format!("{base}-{k}");
                k += 1;
            }
            Case { name, input }
        })
        .collect())
}

/// The paths listed in a text file, one a line; blank lines and lines starting with `#` are skipped,
/// and relative paths are taken relative to the file's folder.
///
/// # Errors
/// [`Error::File`] when the file cannot be read.
pub fn read_case_list(path: &Path) -> Result<Vec<PathBuf>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::file(path, e))?;
    let base = path.parent().unwrap_or(Path::new(""));
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| base.join(l))
        .collect())
}

/// How [`segment_batch`] runs. Build it with [`BatchOptions::default`] and the `with_` methods.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct BatchOptions {
    /// How the network runs on each scan (planes, resampling, device). Probabilities are kept when
    /// [`BatchOptions::probabilities`] asks for them.
    pub segment: SegmentOptions,
    /// The clean-up after the network (default: the engineers', [`Cleanup::default`]).
    pub cleanup: Cleanup,
    /// How DICOM series are read (uneven spacing and gantry tilt refused or resampled).
    pub dicom: msd_io::dicom::ReadOptions,
    /// Also write each case's skull probability volume (default `false`).
    pub probabilities: bool,
    /// Also write each case's axial, coronal and sagittal preview PNGs (default `false`).
    pub previews: bool,
    /// Segment every case again, even those the manifest records as done (default `false`).
    pub force: bool,
    /// What the manifest names the model as (a path, or `the shipped skull model`).
    pub model_name: String,
}

impl Default for BatchOptions {
    /// The default [`SegmentOptions`] and [`Cleanup`], DICOM irregularities refused, labels and mesh
    /// only, finished cases skipped.
    fn default() -> Self {
        BatchOptions {
            segment: SegmentOptions::default(),
            cleanup: Cleanup::default(),
            dicom: msd_io::dicom::ReadOptions::default(),
            probabilities: false,
            previews: false,
            force: false,
            model_name: "model".to_owned(),
        }
    }
}

impl BatchOptions {
    /// Returns the options with these segmentation options.
    pub fn with_segment(mut self, segment: SegmentOptions) -> Self {
        self.segment = segment;
        self
    }

    /// Returns the options with this clean-up.
    pub fn with_cleanup(mut self, cleanup: Cleanup) -> Self {
        self.cleanup = cleanup;
        self
    }

    /// Returns the options with these DICOM read options.
    pub fn with_dicom(mut self, dicom: msd_io::dicom::ReadOptions) -> Self {
        self.dicom = dicom;
        self
    }

    /// Returns the options with probability volumes written or not.
    pub fn with_probabilities(mut self, write: bool) -> Self {
        self.probabilities = write;
        self
    }

    /// Returns the options with preview PNGs written or not.
    pub fn with_previews(mut self, write: bool) -> Self {
        self.previews = write;
        self
    }

    /// Returns the options with finished cases segmented again or skipped.
    pub fn with_force(mut self, force: bool) -> Self {
        self.force = force;
        self
    }

    /// Returns the options with the model's name for the manifest.
    pub fn with_model_name(mut self, name: impl Into<String>) -> Self {
        self.model_name = name.into();
        self
    }
}

/// Where a case stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CaseStatus {
    /// Not yet run in this run.
    Pending,
    /// Segmented in this run; all outputs written.
    Done,
    /// Something failed; [`CaseRecord::error`] says what.
    Failed,
    /// Done in an earlier run with all outputs present, so not run again.
    Skipped,
}

/// A case's output files, relative to the output folder.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseOutputs {
    /// The label volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<PathBuf>,
    /// The skull surface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mesh: Option<PathBuf>,
    /// The skull probability volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probabilities: Option<PathBuf>,
    /// The preview PNGs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub previews: Vec<PathBuf>,
}

impl CaseOutputs {
    /// Every file, in a fixed order.
    pub fn files(&self) -> Vec<&Path> {
        let singles = [&self.labels, &self.mesh, &self.probabilities];
        singles
            .into_iter()
            .flatten()
            .map(PathBuf::as_path)
            .chain(self.previews.iter().map(PathBuf::as_path))
            .collect()
    }
}

/// Wall time of a case's steps, in seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct CaseSeconds {
    /// Reading the scan.
    pub read: f64,
    /// The network and the clean-up.
    pub segment: f64,
    /// Writing the volumes.
    pub write: f64,
    /// Extracting and writing the surface.
    pub mesh: f64,
    /// Writing the previews.
    pub previews: f64,
    /// The whole case.
    pub total: f64,
}

/// One case in the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseRecord {
    /// The case's name (its folder in the output).
    pub case: String,
    /// The scan it was read from.
    pub input: PathBuf,
    /// Where it stands.
    pub status: CaseStatus,
    /// Its output files, relative to the output folder (those written so far).
    #[serde(default)]
    pub outputs: CaseOutputs,
    /// How long its steps took (for a skipped case: in the run that did it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<CaseSeconds>,
    /// The skull's volume in mm³ (voxels labelled 1 or more × voxel volume).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skull_volume_mm3: Option<f64>,
    /// The scan's measured noise σ (HU) when the boundary was placed on the model's iso-surface
    /// ([`msd_net::IsoSnap`]): a case far noisier than the others stands out here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise_hu: Option<f32>,
    /// What failed, with its causes, for a failed case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl CaseRecord {
    fn pending(case: &Case) -> Self {
        CaseRecord {
            case: case.name.clone(),
            input: case.input.clone(),
            status: CaseStatus::Pending,
            outputs: CaseOutputs::default(),
            seconds: None,
            skull_volume_mm3: None,
            noise_hu: None,
            error: None,
        }
    }
}

/// How many cases stand where.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Cases not yet run.
    pub pending: usize,
    /// Cases segmented in this run.
    pub done: usize,
    /// Cases that failed.
    pub failed: usize,
    /// Cases done in an earlier run and skipped.
    pub skipped: usize,
}

/// `DIR/manifest.json`: every case of the output folder and where it stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`MANIFEST_VERSION`].
    pub version: u32,
    /// The model that segmented the cases of this run.
    pub model: String,
    /// The device it ran on (`cpu`, `cuda:0`).
    pub device: String,
    /// The counts of [`Manifest::cases`] by status.
    pub summary: Summary,
    /// The cases of this run in order, then those of earlier runs that this one did not name.
    pub cases: Vec<CaseRecord>,
}

impl Manifest {
    /// Reads a manifest; `Ok(None)` when the file does not exist.
    ///
    /// # Errors
    /// [`Error::File`] when it cannot be read, [`Error::InvalidConfig`] when it is not a manifest of
    /// this version.
    pub fn read(path: &Path) -> Result<Option<Self>> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::file(path, e)),
        };
        let manifest: Manifest = serde_json::from_str(&text).map_err(|e| Error::InvalidConfig {
            what: format!(
                "{} is not a batch manifest ({e}): delete it, or segment every case again with force",
                path.display()
            ),
        })?;
        if manifest.version != MANIFEST_VERSION {
            return Err(Error::InvalidConfig {
                what: format!(
                    "{} has manifest version {}, this msd writes version {MANIFEST_VERSION}",
                    path.display(),
                    manifest.version
                ),
            });
        }
        Ok(Some(manifest))
    }

    /// Writes the manifest as pretty JSON, atomically.
    ///
    /// # Errors
    /// [`Error::File`] / [`Error::Io`] when the file cannot be written.
    pub fn write(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(self).map_err(|e| Error::InvalidConfig {
            what: format!("the manifest cannot be encoded as JSON: {e}"),
        })?;
        crate::atomic::write(path, format!("{json}\n").as_bytes())
    }

    fn recount(&mut self) {
        let mut s = Summary::default();
        for c in &self.cases {
            match c.status {
                CaseStatus::Pending => s.pending += 1,
                CaseStatus::Done => s.done += 1,
                CaseStatus::Failed => s.failed += 1,
                CaseStatus::Skipped => s.skipped += 1,
            }
        }
        self.summary = s;
    }
}

/// What [`segment_batch`] reports as it goes, for progress bars and logs.
#[derive(Debug)]
#[non_exhaustive]
pub enum BatchEvent<'a> {
    /// A case starts (`index` counts from 0 over all cases).
    CaseStarted {
        /// Its position.
        index: usize,
        /// How many cases the batch has.
        total: usize,
        /// The case.
        case: &'a Case,
    },
    /// The network finished `done` of a case's `total` planes.
    Planes {
        /// Planes done.
        done: usize,
        /// Planes in all.
        total: usize,
    },
    /// A case is done, failed or skipped; the manifest on disk records it.
    CaseFinished {
        /// Its position.
        index: usize,
        /// How many cases the batch has.
        total: usize,
        /// Its record.
        record: &'a CaseRecord,
    },
}

/// Removes the temporary files a killed run left in `dir` (only [`msd_io::write_atomic`]'s own).
fn remove_stale_temp_files(dir: &Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(()) };
    for entry in entries {
        let entry = entry.map_err(|e| Error::file(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if name.starts_with(TEMP_PREFIX) && name.ends_with(TEMP_SUFFIX) && path.is_file() {
            std::fs::remove_file(&path).map_err(|e| Error::file(&path, e))?;
        }
    }
    Ok(())
}

/// The outputs a case has under `options`, relative to the output folder (previews aside: their
/// names come from the writer).
fn planned_outputs(case: &str, options: &BatchOptions) -> CaseOutputs {
    let dir = Path::new(case);
    CaseOutputs {
        labels: Some(dir.join(LABELS_FILE)),
        mesh: Some(dir.join(MESH_FILE)),
        probabilities: options.probabilities.then(|| dir.join(PROBABILITIES_FILE)),
        previews: Vec::new(),
    }
}

/// Whether an earlier record shows `case` finished under `options`, with every output on disk.
fn finished(previous: Option<&CaseRecord>, case: &Case, out_dir: &Path, options: &BatchOptions) -> bool {
    let Some(prev) = previous else { return false };
    if !matches!(prev.status, CaseStatus::Done | CaseStatus::Skipped) || prev.input != case.input {
        return false;
    }
    let planned = planned_outputs(&case.name, options);
    let recorded = &prev.outputs;
    let has = |want: &Option<PathBuf>, got: &Option<PathBuf>| want.is_none() || want == got;
    has(&planned.labels, &recorded.labels)
        && has(&planned.mesh, &recorded.mesh)
        && has(&planned.probabilities, &recorded.probabilities)
        && (!options.previews || !recorded.previews.is_empty())
        && recorded.files().iter().all(|f| out_dir.join(f).is_file())
}

/// Segments every case into `out_dir`, skipping those an earlier run finished (unless
/// [`BatchOptions::force`]), and returns the final manifest (also written to
/// `out_dir/manifest.json` after every case).
///
/// The model and rayon's thread pool serve every case. A case that cannot be read, segmented or
/// written is recorded as failed, with the error and its causes, and the batch goes on; the files
/// that case would have written are removed, so a failed case never shows stale outputs.
///
/// # Errors
/// Only what stops the whole batch: [`Error::InvalidConfig`] for repeated case names, bad clean-up
/// options or an unreadable manifest, [`Error::File`] / [`Error::Io`] when the output folder or the
/// manifest cannot be written.
pub fn segment_batch(
    model: &Model,
    cases: &[Case],
    out_dir: &Path,
    options: &BatchOptions,
    mut events: impl FnMut(BatchEvent<'_>),
) -> Result<Manifest> {
    options.cleanup.validate()?;
    let mut names = HashSet::new();
    if let Some(dup) = cases.iter().find(|c| !names.insert(c.name.as_str())) {
        return Err(Error::InvalidConfig { what: format!("two cases are named {:?}", dup.name) });
    }
    std::fs::create_dir_all(out_dir).map_err(|e| Error::file(out_dir, e))?;
    let manifest_path = out_dir.join(MANIFEST_FILE);
    // A forced run ignores what the manifest says is done, and an unreadable manifest, but keeps the
    // records of cases it does not name.
    let old = match Manifest::read(&manifest_path) {
        Ok(m) => m,
        Err(_) if options.force => None,
        Err(e) => return Err(e),
    };
    let mut earlier: BTreeMap<String, CaseRecord> =
        old.map(|m| m.cases.into_iter().map(|c| (c.case.clone(), c)).collect()).unwrap_or_default();

    remove_stale_temp_files(out_dir)?;
    for case in cases {
        let dir = out_dir.join(&case.name);
        remove_stale_temp_files(&dir)?;
        remove_stale_temp_files(&dir.join(PREVIEW_DIR))?;
    }

    let mut manifest = Manifest {
        version: MANIFEST_VERSION,
        model: options.model_name.clone(),
        device: options.segment.device.to_string(),
        summary: Summary::default(),
        cases: Vec::with_capacity(cases.len()),
    };
    let mut resume = Vec::with_capacity(cases.len());
    for case in cases {
        let prev = earlier.remove(&case.name);
        let done = !options.force && finished(prev.as_ref(), case, out_dir, options);
        manifest.cases.push(match (done, prev) {
            (true, Some(p)) => p,
            _ => CaseRecord::pending(case),
        });
        resume.push(done);
    }
    manifest.cases.extend(earlier.into_values());
    manifest.recount();
    manifest.write(&manifest_path)?;

    let total = cases.len();
    for (index, case) in cases.iter().enumerate() {
        if resume[index] {
            manifest.cases[index].status = CaseStatus::Skipped;
        } else {
            events(BatchEvent::CaseStarted { index, total, case });
            manifest.cases[index] = run_case(model, case, out_dir, options, &mut events);
        }
        manifest.recount();
        manifest.write(&manifest_path)?;
        events(BatchEvent::CaseFinished { index, total, record: &manifest.cases[index] });
    }
    Ok(manifest)
}

/// Runs one case and returns its record: done, or failed with the error (and its outputs removed).
fn run_case(
    model: &Model,
    case: &Case,
    out_dir: &Path,
    options: &BatchOptions,
    events: &mut impl FnMut(BatchEvent<'_>),
) -> CaseRecord {
    let mut record = CaseRecord::pending(case);
    let mut seconds = CaseSeconds::default();
    let start = Instant::now();
    let result = segment_case(model, case, out_dir, options, events, &mut record, &mut seconds);
    seconds.total = start.elapsed().as_secs_f64();
    record.seconds = Some(seconds);
    match result {
        Ok(()) => record.status = CaseStatus::Done,
        Err(message) => {
            record.status = CaseStatus::Failed;
            record.error = Some(message);
            record.skull_volume_mm3 = None;
            record.noise_hu = None;
            let planned = planned_outputs(&case.name, options);
            for f in planned.files().into_iter().chain(record.outputs.files()) {
                // Best effort: a file that is not there is what we want.
                let _ = std::fs::remove_file(out_dir.join(f));
            }
            let _ = std::fs::remove_dir(out_dir.join(&case.name).join(PREVIEW_DIR));
            let _ = std::fs::remove_dir(out_dir.join(&case.name));
            record.outputs = CaseOutputs::default();
        }
    }
    record
}

/// The steps of one case; an error is returned as its one-line message.
fn segment_case(
    model: &Model,
    case: &Case,
    out_dir: &Path,
    options: &BatchOptions,
    events: &mut impl FnMut(BatchEvent<'_>),
    record: &mut CaseRecord,
    seconds: &mut CaseSeconds,
) -> std::result::Result<(), String> {
    let chain = |what: &str, e: &(dyn std::error::Error + 'static)| format!("{what}: {}", error_chain(e));
    let t = Instant::now();
    let ct = msd_io::read_volume_with(&case.input, &options.dicom)
        .map_err(|e| chain(&format!("cannot read the CT {}", case.input.display()), &e))?;
    seconds.read = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let segment = options.segment.clone().with_probabilities(options.probabilities);
    let (seg, _) = crate::training::segment_with(model, &ct, &segment, &options.cleanup, |done, total| {
        events(BatchEvent::Planes { done, total })
    })
    .map_err(|e| chain(&format!("cannot segment {}", case.input.display()), &e))?;
    seconds.segment = t.elapsed().as_secs_f64();

    let planned = planned_outputs(&case.name, options);
    let dir = out_dir.join(&case.name);
    std::fs::create_dir_all(&dir).map_err(|e| chain(&format!("cannot create {}", dir.display()), &e))?;
    let t = Instant::now();
    let labels_rel = planned.labels.clone().unwrap_or_default();
    let labels_path = out_dir.join(&labels_rel);
    msd_io::write_volume(&labels_path, &seg.labels)
        .map_err(|e| chain(&format!("cannot write {}", labels_path.display()), &e))?;
    record.outputs.labels = Some(labels_rel);
    record.skull_volume_mm3 = Some(skull_volume_mm3(&seg.labels));
    record.noise_hu = seg.iso_snap.map(|s| s.noise_hu);
    if let Some(rel) = planned.probabilities.clone() {
        let path = out_dir.join(&rel);
        let skull = seg
            .probabilities
            .get(1)
            .ok_or_else(|| format!("the model has no skull class (class 1) to write {}", path.display()))?;
        msd_io::write_volume(&path, skull)
            .map_err(|e| chain(&format!("cannot write {}", path.display()), &e))?;
        record.outputs.probabilities = Some(rel);
    }
    seconds.write = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let mesh_rel = planned.mesh.clone().unwrap_or_default();
    let mesh_path = out_dir.join(&mesh_rel);
    let mesh = crate::surface::SurfaceOptions::for_cleanup(&options.cleanup)
        .extract(&seg.labels)
        .map_err(|e| chain(&format!("cannot extract the surface of {}", case.name), &e))?;
    msd_geom::write_mesh(&mesh_path, &mesh)
        .map_err(|e| chain(&format!("cannot write {}", mesh_path.display()), &e))?;
    record.outputs.mesh = Some(mesh_rel);
    seconds.mesh = t.elapsed().as_secs_f64();

    if options.previews {
        let t = Instant::now();
        let preview_dir = dir.join(PREVIEW_DIR);
        let overlays = [Overlay::new(&seg.labels, SEGMENTATION_COLOUR)];
        let written = write_previews(&preview_dir, "skull", &ct, None, &overlays, &PreviewOptions::default())
            .map_err(|e| chain(&format!("cannot write the previews in {}", preview_dir.display()), &e))?;
        record.outputs.previews = written
            .into_iter()
            .map(|p| p.strip_prefix(out_dir).map(Path::to_path_buf).unwrap_or(p))
            .collect();
        seconds.previews = t.elapsed().as_secs_f64();
    }
    Ok(())
}

/// Voxels labelled 1 or more, in mm³.
fn skull_volume_mm3(labels: &LabelVolume) -> f64 {
    let n = labels.data().iter().filter(|&&v| v != 0).count();
    n as f64 * labels.geometry().voxel_volume_mm3()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_names_drop_volume_extensions_and_odd_characters() {
        assert_eq!(case_name(Path::new("a/b/head 1.nii.gz")), "head_1");
        assert_eq!(case_name(Path::new("x.NRRD")), "x");
        assert_eq!(case_name(Path::new("study/S2010")), "S2010");
        assert_eq!(case_name(Path::new("..")), "case");
        assert_eq!(case_name(Path::new("/")), "case");
    }

    #[test]
    fn folders_of_cases_expand_and_repeated_names_get_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let study = dir.path().join("study");
        std::fs::create_dir_all(study.join("series1")).unwrap();
        std::fs::write(study.join("series1/I1"), b"x").unwrap();
        std::fs::write(study.join("b.nii.gz"), b"x").unwrap();
        std::fs::write(study.join("a.nrrd"), b"x").unwrap();
        std::fs::write(study.join("notes.txt"), b"x").unwrap();
        std::fs::write(study.join(".hidden.nii"), b"x").unwrap();
        let cases = find_cases(&[study.clone(), study.join("series1"), dir.path().join("b.nii")]).unwrap();
        let names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "series1", "series1-2", "b-2"]);
        assert_eq!(cases[2].input, study.join("series1"));
        assert_eq!(cases[3].input, study.join("series1"), "a series folder given itself is one case");
    }

    #[test]
    fn case_lists_skip_comments_and_resolve_relative_paths() {
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("cases.txt");
        std::fs::write(&list, "# study 1\na.nii.gz\n\n  /abs/b.nrrd  \n").unwrap();
        let paths = read_case_list(&list).unwrap();
        assert_eq!(paths, [dir.path().join("a.nii.gz"), PathBuf::from("/abs/b.nrrd")]);
        assert!(matches!(read_case_list(&dir.path().join("none.txt")), Err(Error::File { .. })));
    }

    #[test]
    fn the_error_chain_is_one_line() {
        let e =
            Error::Case { case: "a".into(), source: Box::new(Error::InvalidConfig { what: "x\ny".into() }) };
        assert_eq!(error_chain(&e), "case a: invalid configuration: x y");
    }
}
