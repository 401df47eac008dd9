//! `msd segment`: a model (the shipped skull model unless one is given) applied to a CT, with the
//! engineers' clean-up, written as labels (and mesh, previews).
use anyhow::Context as _;
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

pub fn run(args: &SegmentArgs, ui: &Ui) -> anyhow::Result<()> {
    let cleanup = cleanup(args)?;
    let input = args.scan.as_ref().or(args.input.as_ref()).context("no scan given")?;
    let (model, model_name) = match &args.model {
        Some(path) => (
            Model::load(path).with_context(|| format!("cannot load the model {}", path.display()))?,
            path.display().to_string(),
        ),
        None => (
            Model::default_skull().context("cannot load the shipped skull model")?,
            "the shipped skull model".into(),
        ),
    };
    let ct = super::read_ct_resampled(input, args.resample)?;
    let mut options = SegmentOptions::default()
        .with_resample_to_model(args.resample_to_model)
        .with_probabilities(args.probabilities.is_some());
    if args.axes == Axes::All {
        options = options.with_axes(vec![SliceAxis::Axial, SliceAxis::Coronal, SliceAxis::Sagittal]);
    }
    let [sx, sy, sz] = ct.geometry().spacing();
    ui.say(format!(
        "segmenting {} ({} slices, {sx:.2} × {sy:.2} × {sz:.2} mm) with {model_name} (MSDnet depth {}, {} input channel(s), backend {}), {}",
        input.display(),
        ct.shape()[0],
        model.config.depth,
        model.config.input_channels,
        super::backend_name(&model.config)?,
        if args.resample_to_model {
            format!("resampled to {:.2} mm pixels", model.pixel_spacing_mm[0])
        } else {
            "on the scan's own grid".into()
        }
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
    if !args.no_cleanup {
        ui.say(format!(
            "clean-up: {} bone component(s), {} removed ({} voxels), {} pocket voxels filled",
            report.components, report.components_removed, report.voxels_removed, report.voxels_filled
        ));
    }
    super::write_volume(&args.out, &seg.labels)?;
    let n = super::count_labelled(&seg.labels);
    ui.say(format!(
        "wrote {}: {n} skull voxels ({:.1} ml) in {seconds:.1} s",
        args.out.display(),
        n as f64 * seg.labels.geometry().voxel_volume_mm3() / 1000.0
    ));
    if let Some(path) = &args.probabilities {
        let skull = seg.probabilities.get(1).context("the model has no skull class (class 1)")?;
        super::write_volume(path, skull)?;
        ui.say(format!("wrote {}", path.display()));
    }
    if let Some(path) = &args.mesh {
        let mesh = msd::surface(&seg.labels)?;
        super::write_mesh(path, &mesh)?;
        ui.say(format!("wrote {}: {} triangles", path.display(), mesh.triangles().len()));
    }
    if let Some(dir) = &args.preview {
        let reference = match &args.reference {
            None => None,
            Some(p) => {
                Some(match Shape::read(p).with_context(|| format!("cannot read {}", p.display()))? {
                    Shape::Labels(l) => l,
                    Shape::Mesh(m) => msd::training::mesh_to_labels(&m, &ct)?,
                })
            }
        };
        let mut overlays = vec![Overlay::new(&seg.labels, SEGMENTATION_COLOUR)];
        if let Some(r) = &reference {
            overlays.push(Overlay::new(r, REFERENCE_COLOUR));
        }
        let stem =
            args.out.file_name().map(|n| n.to_string_lossy().split('.').next().unwrap_or("seg").to_string());
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
