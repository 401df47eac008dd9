//! `msd segment`: a model (the shipped skull model unless one is given) applied to a CT, with the
//! engineers' clean-up, written as labels (and mesh, previews); with `--out-dir`, to many scans in
//! one run ([`msd::batch`]).
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use msd::batch::{
    BatchEvent, BatchOptions, CaseStatus, MANIFEST_FILE, find_cases, read_case_list, segment_batch,
};
use msd::evaluation::Shape;
use msd::geom::{Cleanup, KeepComponents};
use msd::net::{Model, SegmentOptions, SliceAxis};
use msd::preview::{Overlay, PreviewOptions, REFERENCE_COLOUR, SEGMENTATION_COLOUR, write_previews};

use crate::cli::{Axes, SegmentArgs};
use crate::{Ui, UsageError};

/// The clean-up the options ask for.
fn cleanup(args: &SegmentArgs) -> anyhow::Result<Cleanup> {
    if args.no_cleanup {
        if args.keep_above.is_some() {
            return Err(UsageError("--keep-above does not go with --no-cleanup".into()).into());
        }
        return Ok(Cleanup::none());
    }
    let keep = match args.keep_above {
        Some(v) if !(v.is_finite() && v >= 0.0) => {
            return Err(UsageError(format!("--keep-above {v} must be a volume in mm³ (≥ 0)")).into());
        }
        Some(v) => KeepComponents::AtLeastMm3(v),
        None => KeepComponents::Largest,
    };
    if !(args.fill_cavities.is_finite() && args.fill_cavities >= 0.0) {
        return Err(UsageError(format!(
            "--fill-cavities {} must be a volume in mm³ (≥ 0)",
            args.fill_cavities
        ))
        .into());
    }
    Ok(Cleanup { keep, fill_cavities_mm3: args.fill_cavities, ..Cleanup::default() })
}

/// The model of `--model`, or the shipped skull model, and the name the messages give it.
fn load_model(path: Option<&Path>) -> anyhow::Result<(Model, String)> {
    Ok(match path {
        Some(path) => (
            Model::load(path).with_context(|| format!("cannot load the model {}", path.display()))?,
            path.display().to_string(),
        ),
        None => (
            Model::default_skull().context("cannot load the shipped skull model")?,
            "the shipped skull model".into(),
        ),
    })
}

/// The pixels the network sees for axial planes of spacing `(rows, columns)`, in words.
fn grid_line(model: &Model, options: &SegmentOptions, rows: f64, cols: f64) -> String {
    let (r, c) = model.network_pixels(options, rows, cols);
    if (r, c) == (rows, cols) {
        return "on the scan's own grid".into();
    }
    let why = match model.trained_pixel_range_mm {
        Some([lo, hi]) if !options.resample_to_model => {
            format!(" (outside the {lo:.2}–{hi:.2} mm it was trained on; --native-pixels keeps them)")
        }
        _ => String::new(),
    };
    format!("resampled to {c:.2} × {r:.2} mm pixels{why}, the probabilities back")
}

/// How the boundary was placed, in one line.
fn boundary_line(model: &Model, seg: &msd::net::Segmentation, network_boundary: bool) -> String {
    match (seg.iso_snap, model.label_iso_hu) {
        (Some(s), _) => format!(
            "boundary: the scan's {:.0} HU iso-surface near the network's boundary, weighed by its measured noise ({:.0} HU)",
            s.iso_hu, s.noise_hu
        ),
        (None, Some(_)) if network_boundary => "boundary: the network's own (--network-boundary)".into(),
        (None, Some(_)) => {
            "boundary: the network's own (the scan has too little soft tissue to measure its noise)".into()
        }
        (None, None) => "boundary: the network's own (the model records no threshold definition)".into(),
    }
}

/// The network options of the flags, on `device`.
fn segment_options(args: &SegmentArgs, device: msd::net::Device) -> SegmentOptions {
    let mut options = SegmentOptions::default()
        .with_resample_to_model(args.resample_to_model)
        .with_probabilities(args.probabilities.is_some())
        .with_snap_to_iso(!args.network_boundary)
        .with_fit_to_trained_pixels(!args.native_pixels)
        .with_precision(args.precision)
        .with_device(device);
    if args.axes == Axes::All {
        options = options.with_axes(vec![SliceAxis::Axial, SliceAxis::Coronal, SliceAxis::Sagittal]);
    }
    options
}

pub fn run(args: &SegmentArgs, ui: &Ui) -> anyhow::Result<()> {
    let cleanup = cleanup(args)?;
    if let Some(dir) = &args.out_dir {
        return run_batch(args, dir, cleanup, ui);
    }
    for (given, flag) in [
        (args.list.is_some(), "--list"),
        (args.force, "--force"),
        (args.save_probabilities, "--save-probabilities"),
        (args.save_previews, "--save-previews"),
    ] {
        if given {
            return Err(
                UsageError(format!("{flag} goes with --out-dir DIR (segmenting several scans)")).into()
            );
        }
    }
    let inputs: Vec<&PathBuf> = args.scans.iter().chain(&args.input).collect();
    let [input] = inputs.as_slice() else {
        return Err(UsageError(format!(
            "{} scans given: segment several scans with --out-dir DIR, or give one scan with --out",
            inputs.len()
        ))
        .into());
    };
    let out = args.out.as_ref().context("no --out given")?;
    let device = super::resolve_device(args.device, ui)?.device();
    let (model, model_name) = load_model(args.model.as_deref())?;
    let ct = super::read_ct_resampled(input, args.resample)?;
    let options = segment_options(args, device);
    let backend = super::inference_backend_name(&options, device);
    let [sx, sy, sz] = ct.geometry().spacing();
    ui.say(format!(
        "segmenting {} ({} slices, {sx:.2} × {sy:.2} × {sz:.2} mm) with {model_name} (MSDnet depth {}, {} input channel(s), backend {}), {}",
        input.display(),
        ct.shape()[0],
        model.config.depth,
        model.config.input_channels,
        backend,
        grid_line(&model, &options, sy, sx)
    ));
    let start = std::time::Instant::now();
    let bar = ui.bar(0, "segmenting");
    let (seg, report) = msd::training::segment_with(&model, &ct, &options, &cleanup, |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })
    .with_context(|| format!("cannot segment {} with {model_name}", input.display()))?;
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    ui.say(boundary_line(&model, &seg, args.network_boundary));
    if !args.no_cleanup {
        ui.say(format!(
            "clean-up: {} bone component(s), {} removed ({} voxels), {} pocket voxels filled",
            report.components, report.components_removed, report.voxels_removed, report.voxels_filled
        ));
    }
    super::write_volume(out, &seg.labels)?;
    let n = super::count_labelled(&seg.labels);
    ui.say(format!(
        "wrote {}: {n} skull voxels ({:.1} ml) in {seconds:.1} s",
        out.display(),
        n as f64 * seg.labels.geometry().voxel_volume_mm3() / 1000.0
    ));
    if let Some(path) = &args.probabilities {
        let skull = seg.probabilities.get(1).context("the model has no skull class (class 1)")?;
        super::write_volume(path, skull)?;
        ui.say(format!("wrote {}", path.display()));
    }
    if let Some(path) = &args.mesh {
        let mesh = msd::surface::SurfaceOptions::for_cleanup(&cleanup).extract(&seg.labels)?;
        super::write_mesh(path, &mesh)?;
        ui.say(format!("wrote {}: {} triangles", path.display(), mesh.triangles().len()));
    }
    if let Some(dir) = &args.preview {
        let reference = match &args.reference {
            None => None,
            Some(p) => {
                Some(match Shape::read(p).with_context(|| format!("cannot read {}", p.display()))? {
                    Shape::Labels(l) => l,
                    Shape::Mesh(m) => msd::geom::mesh_to_labels(&m, &ct)?,
                })
            }
        };
        let mut overlays = vec![Overlay::new(&seg.labels, SEGMENTATION_COLOUR)];
        if let Some(r) = &reference {
            overlays.push(Overlay::new(r, REFERENCE_COLOUR));
        }
        let stem =
            out.file_name().map(|n| n.to_string_lossy().split('.').next().unwrap_or("seg").to_string());
        for p in write_previews(
            dir,
            stem.as_deref().unwrap_or("seg"),
            &ct,
            None,
            &overlays,
            &PreviewOptions::default(),
        )? {
            ui.say(format!("wrote {}", p.display()));
        }
    }
    Ok(())
}

/// `msd segment --out-dir DIR`: every case into `DIR/<case>/`, the manifest updated after each.
fn run_batch(args: &SegmentArgs, out_dir: &Path, cleanup: Cleanup, ui: &Ui) -> anyhow::Result<()> {
    let mut paths: Vec<PathBuf> = args.scans.iter().chain(&args.input).cloned().collect();
    if let Some(list) = &args.list {
        paths.extend(
            read_case_list(list).with_context(|| format!("cannot read the case list {}", list.display()))?,
        );
    }
    let cases = find_cases(&paths).context("cannot find the cases")?;
    if cases.is_empty() {
        anyhow::bail!(
            "no cases found in {}",
            paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        );
    }
    let device = super::resolve_device(args.device, ui)?.device();
    let (model, model_name) = load_model(args.model.as_deref())?;
    let segment = segment_options(args, device);
    ui.say(format!(
        "segmenting {} case(s) into {} with {model_name} (MSDnet depth {}, backend {})",
        cases.len(),
        out_dir.display(),
        model.config.depth,
        super::inference_backend_name(&segment, device),
    ));
    let options = BatchOptions::default()
        .with_segment(segment)
        .with_cleanup(cleanup)
        .with_dicom(super::dicom_options(args.resample))
        .with_probabilities(args.save_probabilities)
        .with_previews(args.save_previews)
        .with_force(args.force)
        .with_model_name(model_name);
    let bar = ui.bar(cases.len() as u64, "cases");
    let manifest = segment_batch(&model, &cases, out_dir, &options, |event| match event {
        BatchEvent::CaseStarted { index, case, .. } => {
            bar.set_position(index as u64);
            bar.set_message(case.name.clone());
        }
        BatchEvent::CaseFinished { index, total, record } => {
            bar.set_position(index as u64 + 1);
            let line = match record.status {
                CaseStatus::Done => format!(
                    "done in {:.1} s, skull {:.1} ml",
                    record.seconds.map(|s| s.total).unwrap_or_default(),
                    record.skull_volume_mm3.unwrap_or_default() / 1000.0
                ),
                CaseStatus::Skipped => "skipped (done in an earlier run; --force segments it again)".into(),
                CaseStatus::Failed => {
                    format!("failed: {}", record.error.as_deref().unwrap_or("unknown error"))
                }
                CaseStatus::Pending => "pending".into(),
            };
            bar.suspend(|| ui.say(format!("[{}/{total}] {}: {line}", index + 1, record.case)));
        }
        _ => {}
    })
    .with_context(|| format!("batch into {} stopped", out_dir.display()))?;
    bar.finish_and_clear();
    let s = manifest.summary;
    let manifest_path = out_dir.join(MANIFEST_FILE);
    ui.say(format!(
        "{} done, {} skipped, {} failed; wrote {}",
        s.done,
        s.skipped,
        s.failed,
        manifest_path.display()
    ));
    let failed_here =
        manifest.cases.iter().take(cases.len()).filter(|c| c.status == CaseStatus::Failed).count();
    if failed_here > 0 {
        anyhow::bail!("{failed_here} of {} case(s) failed; see {}", cases.len(), manifest_path.display());
    }
    Ok(())
}
