//! `msd segment`: a trained model applied to a CT, written as labels (and mesh, previews).
use anyhow::Context as _;
use msd::evaluation::Shape;
use msd::net::{Model, SegmentOptions, SliceAxis};
use msd::preview::{Overlay, PreviewOptions, REFERENCE_COLOUR, SEGMENTATION_COLOUR, write_previews};

use crate::Ui;
use crate::cli::{Axes, SegmentArgs};

pub fn run(args: &SegmentArgs, ui: &Ui) -> anyhow::Result<()> {
    let model = Model::load(&args.model)
        .with_context(|| format!("cannot load the model {}", args.model.display()))?;
    let ct = super::read_ct(&args.input)?;
    let mut options = SegmentOptions::default();
    if args.axes == Axes::All {
        options.axes = vec![SliceAxis::Axial, SliceAxis::Coronal, SliceAxis::Sagittal];
    }
    ui.say(format!(
        "segmenting {} ({} slices) with an MSDnet (depth {}, {} input channel(s), backend {})",
        args.input.display(),
        ct.shape()[0],
        model.config.depth,
        model.config.input_channels,
        super::backend_name(&model.config)?
    ));
    let start = std::time::Instant::now();
    let bar = ui.bar(0, "segmenting");
    let seg = model
        .segment_with(&ct, &options, |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        })
        .with_context(|| format!("cannot segment {} with {}", args.input.display(), args.model.display()))?;
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
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
