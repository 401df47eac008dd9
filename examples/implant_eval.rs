//! Implant design on the real skull in `../shared/data/cthead`: the given craniectomy
//! (`skull_defect_ref.nii.gz`, scored against `implant_ref.nii.gz` in `defect_region.nii.gz`) and
//! seeded cuts of `skull_ref.nii.gz` at several places and sizes (scored in a 10 mm band
//! around each rim), with the AutoImplant measures (Dice, boundary Dice, HD95) and the time of each
//! design. Writes a picture of the craniectomy's skull and implant in two views (from above and from
//! the defect's side).
//!
//! Two tables of seeded defects: sphere cuts (`synthetic::cut_sphere`, as SkullBreak/AutoImplant
//! make them) and full-thickness bone flaps (`synthetic::cut_flap`, as a craniotomy removes them);
//! `--synthetic` adds both on the synthetic head of `synthetic::skull_shell`; `--all-methods` adds
//! rows for the forced patch and the forced mirror beside the automatic choice.
//!
//! `cargo run --release --example implant_eval -- [OUT_DIR] [--all-methods] [--synthetic]`
use std::path::PathBuf;
use std::time::Instant;

use msd::geom::{Mesh, label_surface};
use msd::metrics::{defect_rim_band, implant_scores};
use msd::preview::RgbImage;
use msd::render::{View, render_mesh};
use msd_implant::synthetic::{ShellSpec, cut_flap, cut_sphere, grid_for, outer_surface_point, skull_shell};
use msd_implant::{ImplantOptions, MethodChoice, design_implant};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut out = PathBuf::from("implant-out");
    let (mut all_methods, mut synthetic_heads) = (false, false);
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--all-methods" => all_methods = true,
            "--synthetic" => synthetic_heads = true,
            _ => out = PathBuf::from(arg),
        }
    }
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/cthead");
    if !data.join("skull_ref.nii.gz").exists() {
        eprintln!("implant_eval: {} is absent: nothing to evaluate", data.display());
        std::process::exit(1);
    }
    std::fs::create_dir_all(&out)?;
    let full = msd::io::read_labels(data.join("skull_ref.nii.gz"))?;
    let defective = msd::io::read_labels(data.join("skull_defect_ref.nii.gz"))?;
    let truth = msd::io::read_labels(data.join("implant_ref.nii.gz"))?;
    let region = msd::io::read_labels(data.join("defect_region.nii.gz"))?;

    for (name, skull) in [("skull_ref", &full), ("skull_defect_ref", &defective)] {
        for o in msd_implant::find_openings(skull)? {
            eprintln!(
                "  {name}: opening at ({:.0}, {:.0}, {:.0}) mm, direction ({:.2}, {:.2}, {:.2}), {:.0} mm across, {}",
                o.centre_mm[0],
                o.centre_mm[1],
                o.centre_mm[2],
                o.direction[0],
                o.direction[1],
                o.direction[2],
                o.diameter_mm,
                if o.natural { "natural" } else { "defect" }
            );
        }
    }
    println!("| case | location | size (mm) | method | Dice | boundary Dice | HD95 (mm) | time (s) |");
    println!("|---|---|---:|---|---:|---:|---:|---:|");
    // The given craniectomy.
    let start = Instant::now();
    let implant = design_implant(&defective, &ImplantOptions::default())?;
    let secs = start.elapsed().as_secs_f64();
    let s = implant_scores(&implant.labels, &truth, &region)?;
    println!(
        "| craniectomy | right parietal | 69 | {} | {:.3} | {:.3} | {:.2} | {secs:.1} |",
        implant.method.name(),
        s.dice,
        s.boundary_dice,
        s.hd95_mm
    );
    eprintln!(
        "  craniectomy: {} ({:.1} ml, ref {:.1} ml)",
        implant.reason,
        implant.volume_ml,
        count(&truth) as f64 * 2.0 / 1000.0
    );
    picture(&defective, &implant.mesh, implant.defect.centre_mm[0], &out)?;
    msd::io::write_volume(out.join("implant_craniectomy.nii.gz"), &implant.labels)?;
    msd::geom::write_stl(out.join("implant_craniectomy.stl"), &implant.mesh)?;

    // Seeded cuts: LPS directions from the skull's centre (+x left, +y posterior, +z superior).
    let places: [(&str, [f64; 3], bool); 7] = [
        ("left frontal", [0.45, -0.8, 0.45], false),
        ("right parietal", [-0.7, 0.15, 0.7], false),
        ("left temporal", [1.0, 0.0, 0.15], false),
        ("right occipital", [-0.45, 0.85, 0.25], false),
        ("left parietal", [0.7, 0.2, 0.65], false),
        ("vertex (midline)", [0.0, 0.1, 1.0], true),
        ("frontal (midline)", [0.0, -0.75, 0.65], true),
    ];
    for cut in [Cut::Sphere, Cut::Flap] {
        println!();
        println!("{}", cut.title());
        println!();
        println!("| case | location | size (mm) | method | Dice | boundary Dice | HD95 (mm) | time (s) |");
        println!("|---|---|---:|---|---:|---:|---:|---:|");
        seeded_table(&full, cut, &places, all_methods)?;
    }
    if synthetic_heads {
        let spec = ShellSpec::default();
        let (g, shape) = grid_for(&spec, [1.0; 3], msd::io::Geometry::IDENTITY)?;
        let head = skull_shell(&spec, g, shape)?;
        for cut in [Cut::Sphere, Cut::Flap] {
            println!();
            println!("synthetic head (`msd_implant::synthetic::skull_shell`, 1 mm voxels), {}", cut.title());
            println!();
            println!(
                "| case | location | size (mm) | method | Dice | boundary Dice | HD95 (mm) | time (s) |"
            );
            println!("|---|---|---:|---|---:|---:|---:|---:|");
            seeded_table(&head, cut, &places, all_methods)?;
        }
    }
    Ok(())
}

/// How a seeded defect is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// The bone inside a ball centred on the outer table (`cut_sphere`).
    Sphere,
    /// A full-thickness bone flap inside a round outline (`cut_flap`).
    Flap,
}

impl Cut {
    fn title(self) -> &'static str {
        match self {
            Cut::Sphere => {
                "seeded sphere cuts (`synthetic::cut_sphere`, ball of the given diameter centred on the outer table)"
            }
            Cut::Flap => {
                "seeded bone flaps (`synthetic::cut_flap`, full thickness inside a round outline of the given diameter)"
            }
        }
    }
}

/// One row per place and size: the automatic design (and, with `all_methods`, the forced patch and
/// mirror too), scored against the removed bone in a 10 mm band around the rim.
fn seeded_table(
    full: &msd::io::LabelVolume,
    cut: Cut,
    places: &[(&str, [f64; 3], bool)],
    all_methods: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    for &(name, dir, midline) in places {
        let Some(centre) = outer_surface_point(full, dir)? else {
            println!("| seeded | {name} | – | no bone along the direction | | | | |");
            continue;
        };
        for size in [30.0, 60.0, 90.0] {
            let (defective, removed) = match cut {
                Cut::Sphere => cut_sphere(full, centre, size / 2.0)?,
                Cut::Flap => cut_flap(full, centre, size)?,
            };
            let band = defect_rim_band(&removed, &defective, 10.0)?;
            let choices: &[MethodChoice] = if all_methods {
                &[MethodChoice::Auto, MethodChoice::Patch, MethodChoice::Mirror]
            } else {
                &[MethodChoice::Auto]
            };
            for &choice in choices {
                let start = Instant::now();
                let options = ImplantOptions { method: choice, point_mm: Some(centre), ..Default::default() };
                let row = match design_implant(&defective, &options) {
                    Ok(implant) => {
                        let secs = start.elapsed().as_secs_f64();
                        let s = implant_scores(&implant.labels, &removed, &band)?;
                        eprintln!("  {name} {size} ({choice:?}): {}", implant.reason);
                        let forced = if choice == MethodChoice::Auto { "" } else { " (forced)" };
                        format!(
                            "{}{forced} | {:.3} | {:.3} | {:.2} | {secs:.1}",
                            implant.method.name(),
                            s.dice,
                            s.boundary_dice,
                            s.hd95_mm
                        )
                    }
                    Err(e) => format!("failed ({choice:?}): {e} | | | | "),
                };
                let kind = if midline { "seeded, midline" } else { "seeded" };
                println!("| {kind} | {name} | {size:.0} | {row} |");
            }
        }
    }
    Ok(())
}

fn count(v: &msd::io::LabelVolume) -> usize {
    v.data().iter().filter(|&&x| x != 0).count()
}

/// The skull (bone colour) and the implant (blue) in one picture, from above and from the side of
/// the defect. Both surfaces are smoothed for display only (Taubin, volume kept: the 2 mm slices'
/// staircase would otherwise draw contour lines over everything); the files written are not.
fn picture(
    skull: &msd::io::LabelVolume,
    implant: &Mesh,
    defect_side_x: f64,
    out: &std::path::Path,
) -> Result<(), Box<dyn std::error::Error>> {
    let smooth = |m: &Mesh| msd::geom::smooth_taubin(m, &msd::geom::SmoothOptions::default());
    let skull_mesh = smooth(&label_surface(skull, 1)?.keep_largest_components(1))?;
    let implant = smooth(implant)?;
    let (mut v, mut t) = skull_mesh.into_parts();
    let n = v.len() as u32;
    let mut colours = vec![[228u8, 218, 196]; v.len()];
    v.extend_from_slice(implant.vertices());
    colours.extend(std::iter::repeat_n([60u8, 120, 220], implant.vertices().len()));
    t.extend(implant.triangles().iter().map(|tri| tri.map(|i| i + n)));
    let both = Mesh::new(v, t)?;
    // LPS: x grows to the patient's left.
    let side = if defect_side_x < 0.0 { View::Right } else { View::Left };
    let views: Vec<RgbImage> = [View::Superior, side]
        .into_iter()
        .map(|view| render_mesh(&both, view, 600, Some(&colours)))
        .collect::<Result<_, _>>()?;
    let path = out.join("implant_craniectomy.png");
    RgbImage::side_by_side(&views).write_png(&path)?;
    eprintln!("  picture: {} (from above and from the {side:?} side)", path.display());
    Ok(())
}
