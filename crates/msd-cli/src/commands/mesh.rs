//! `msd mesh`: label volume → cleaned, watertight surface.
use msd::surface::SurfaceOptions;

use crate::Ui;
use crate::cli::MeshArgs;

pub fn run(args: &MeshArgs, ui: &Ui) -> anyhow::Result<()> {
    let mut labels = super::read_labels(&args.labels)?;
    if let Some(l) = args.label {
        labels = labels.map(|&v| u8::from(v == l));
    }
    // Whether any voxel is labelled: stops at the first one (a count would read all 134 M voxels
    // of a 512³ label on one core).
    if !labels.data().iter().any(|&v| v != 0) {
        anyhow::bail!(
            "{} has no voxel to mesh{}",
            args.labels.display(),
            match args.label {
                Some(l) => format!(" with label {l}"),
                None => String::new(),
            }
        );
    }
    if !(args.max_deviation.is_finite() && args.max_deviation >= 0.0) {
        return Err(crate::UsageError(format!(
            "--max-deviation {} mm must be finite and non-negative",
            args.max_deviation
        ))
        .into());
    }
    let spinner = ui.spinner("meshing");
    let mut options = SurfaceOptions::default()
        .keep_components(args.keep)
        .min_component_triangles(args.min_triangles)
        .smooth(args.smooth);
    if let Some(target) = args.decimate {
        options = options.decimate(target, args.max_deviation);
    }
    let mesh = options.extract(&labels)?;
    // The volume is not needed any more: give its memory back before the file is written.
    drop(labels);
    spinner.finish_and_clear();
    super::write_mesh(&args.out, &mesh)?;
    let check = mesh.check();
    ui.say(format!(
        "wrote {}: {} triangles, {:.0} mm², {} component(s), {}",
        args.out.display(),
        mesh.triangles().len(),
        mesh.area(),
        check.components,
        if check.is_watertight() { "watertight" } else { "NOT watertight" }
    ));
    Ok(())
}
