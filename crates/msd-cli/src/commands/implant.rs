//! `msd implant`: the implant that closes a skull's defect, as a label volume and a mesh.
use anyhow::Context as _;
use std::path::Path;

use msd::geom::Cleanup;
use msd::io::LabelVolume;
use msd::net::{Model, SegmentOptions};
use msd_implant::{ImplantOptions, MethodChoice, design_implant};

use crate::cli::{ImplantArgs, ImplantMethod};
use crate::{Ui, UsageError};

pub fn run(args: &ImplantArgs, ui: &Ui) -> anyhow::Result<()> {
    let point_mm = args.point.as_deref().map(parse_point).transpose()?;
    if !(args.clearance.is_finite() && args.clearance >= 0.0) {
        return Err(
            UsageError(format!("--clearance {} mm: give a gap of 0 mm or more", args.clearance)).into()
        );
    }
    let skull = match (&args.skull, &args.ct) {
        (Some(path), None) => {
            if args.model.is_some() {
                return Err(UsageError(
                    "--model segments a --ct; with --skull there is nothing to segment".into(),
                )
                .into());
            }
            super::read_labels(path)?
        }
        (None, Some(ct_path)) => segment(ct_path, args.model.as_deref(), ui)?,
        (None, None) => {
            return Err(
                UsageError("give the defective skull: --skull SKULL, or --ct CT [--model M]".into()).into()
            );
        }
        (Some(_), Some(_)) => {
            return Err(UsageError("give --skull or --ct, not both".into()).into());
        }
    };
    let method = match args.method {
        ImplantMethod::Auto => MethodChoice::Auto,
        ImplantMethod::Mirror => MethodChoice::Mirror,
        ImplantMethod::Patch => MethodChoice::Patch,
    };
    let start = std::time::Instant::now();
    let implant = design_implant(&skull, &ImplantOptions { method, point_mm, clearance_mm: args.clearance })
        .context("cannot design the implant")?;
    let seconds = start.elapsed().as_secs_f64();
    // Everything is computed before the first file is written: an error writes nothing.
    super::write_volume(&args.out, &implant.labels)?;
    if let Some(path) = &args.mesh {
        super::write_mesh(path, &implant.mesh)?;
    }
    let c = implant.defect.centre_mm;
    println!(
        "defect at ({:.1}, {:.1}, {:.1}) mm, about {:.0} mm across",
        c[0], c[1], c[2], implant.defect.diameter_mm
    );
    println!("method: {} ({})", implant.method.name(), implant.reason);
    println!(
        "implant: {} voxels, {:.2} ml, mean thickness {:.1} mm, {} triangles, designed in {seconds:.1} s",
        implant.voxels,
        implant.volume_ml,
        implant.mean_thickness_mm,
        implant.mesh.triangles().len()
    );
    Ok(())
}

fn parse_point(text: &str) -> anyhow::Result<[f64; 3]> {
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    let bad = || UsageError(format!("--point {text:?}: give three numbers in mm, X,Y,Z (LPS)"));
    if parts.len() != 3 {
        return Err(bad().into());
    }
    let mut p = [0.0; 3];
    for (v, s) in p.iter_mut().zip(&parts) {
        *v = s.parse::<f64>().map_err(|_| bad())?;
        if !v.is_finite() {
            return Err(bad().into());
        }
    }
    Ok(p)
}

/// Segments the CT with `model_path` or, without one, the shipped skull model, then applies the
/// engineers' clean-up (largest bone components, enclosed pockets filled), as `msd segment` does.
fn segment(ct_path: &Path, model_path: Option<&Path>, ui: &Ui) -> anyhow::Result<LabelVolume> {
    let (model, model_name) = match model_path {
        Some(path) => (
            Model::load(path).with_context(|| format!("cannot load the model {}", path.display()))?,
            path.display().to_string(),
        ),
        None => (
            Model::default_skull().context("cannot load the shipped skull model")?,
            "the shipped skull model".to_string(),
        ),
    };
    let ct = super::read_ct(ct_path)?;
    ui.say(format!("segmenting {} with {model_name}", ct_path.display()));
    let bar = ui.bar(0, "segmenting");
    let (seg, _) = msd::training::segment_with(
        &model,
        &ct,
        &SegmentOptions::default(),
        &Cleanup::default(),
        |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        },
    )
    .with_context(|| format!("cannot segment {} with {model_name}", ct_path.display()))?;
    bar.finish_and_clear();
    Ok(seg.labels)
}
