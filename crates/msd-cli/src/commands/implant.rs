//! `msd implant`: the implant that closes a skull's defect, as a label volume and a mesh.
use anyhow::Context as _;
use msd::net::Model;
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
    let skull = match (&args.skull, &args.ct, &args.model) {
        (Some(path), None, None) => super::read_labels(path)?,
        (Some(_), None, Some(_)) => {
            return Err(UsageError(
                "--model segments a --ct; with --skull there is nothing to segment".into(),
            )
            .into());
        }
        (None, Some(ct_path), Some(model_path)) => {
            let model = Model::load(model_path)
                .with_context(|| format!("cannot load the model {}", model_path.display()))?;
            let ct = super::read_ct(ct_path)?;
            ui.say(format!("segmenting {} with {}", ct_path.display(), model_path.display()));
            model
                .segment(&ct)
                .with_context(|| {
                    format!("cannot segment {} with {}", ct_path.display(), model_path.display())
                })?
                .labels
        }
        (None, Some(_), None) => {
            return Err(UsageError(
                "--ct needs --model: no default skull model is shipped yet; segment with a trained model (msd train)"
                    .into(),
            )
            .into());
        }
        (None, None, _) => {
            return Err(
                UsageError("give the defective skull: --skull SKULL, or --ct CT --model M".into()).into()
            );
        }
        (Some(_), Some(_), _) => unreachable!("clap rejects --skull with --ct"),
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
