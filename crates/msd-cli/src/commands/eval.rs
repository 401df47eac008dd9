//! `msd eval`: Table-1-style report of predictions against references, or (`--implant`) the
//! AutoImplant scores of predicted implants against the true ones.
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use msd::evaluation::{EvaluationOptions, Shape};
use msd::geom::Mesh;
use msd::html::{HtmlCase, HtmlReport, MeshRole};
use msd::io::{LabelVolume, Volume};
use msd::metrics::{MetricSummary, Region, Report, defect_rim_band, implant_scores};
use msd::preview::{
    Overlay, Plane, PreviewOptions, REFERENCE_COLOUR, SEGMENTATION_COLOUR, label_centre, render_slice,
};

use crate::cli::EvalArgs;
use crate::{Ui, UsageError};

/// The reference of `case` in a folder of references (see `--ref-dir`).
fn reference_of(dir: &Path, case: &str) -> Option<PathBuf> {
    ["nii.gz", "nii", "nrrd", "nhdr", "stl", "ply", "obj"]
        .iter()
        .map(|ext| dir.join(format!("{case}.{ext}")))
        .chain(std::iter::once(dir.join(case).join(msd::batch::LABELS_FILE)))
        .find(|p| p.is_file())
}

/// One case to evaluate.
struct EvalCase {
    /// The case's name in the report.
    name: String,
    /// The predicted labels or mesh.
    pred: PathBuf,
    /// The reference labels or mesh.
    reference: PathBuf,
    /// The scan a study's manifest records the case was segmented from (`--pred-dir` only).
    scan: Option<PathBuf>,
}

/// The cases of `--pred-dir` / `--ref-dir`, in the manifest's order.
fn study_cases(pred_dir: &Path, ref_dir: &Path) -> anyhow::Result<Vec<EvalCase>> {
    use msd::batch::{CaseStatus, MANIFEST_FILE, Manifest};
    let path = pred_dir.join(MANIFEST_FILE);
    let manifest = Manifest::read(&path)?.with_context(|| {
        format!("{} has no {MANIFEST_FILE}: is it the --out-dir of msd segment?", pred_dir.display())
    })?;
    let mut cases = Vec::new();
    for record in &manifest.cases {
        if !matches!(record.status, CaseStatus::Done | CaseStatus::Skipped) {
            continue;
        }
        let labels = record
            .outputs
            .labels
            .as_ref()
            .with_context(|| format!("{}: case {} records no labels", path.display(), record.case))?;
        let reference = reference_of(ref_dir, &record.case).with_context(|| {
            format!(
                "no reference for case {} in {} (looked for {0}.nii.gz, {0}.stl, ...)",
                record.case,
                ref_dir.display()
            )
        })?;
        cases.push(EvalCase {
            name: record.case.clone(),
            pred: pred_dir.join(labels),
            reference,
            scan: Some(record.input.clone()),
        });
    }
    if cases.is_empty() {
        anyhow::bail!("{} records no finished case to evaluate", path.display());
    }
    Ok(cases)
}

pub fn run(args: &EvalArgs, ui: &Ui) -> anyhow::Result<()> {
    let cases: Vec<EvalCase> = match (&args.pred_dir, &args.ref_dir) {
        (Some(pred_dir), Some(ref_dir)) => study_cases(pred_dir, ref_dir)?,
        _ => args
            .pred
            .iter()
            .zip(&args.reference)
            .map(|(p, r)| EvalCase { name: case_name(p), pred: p.clone(), reference: r.clone(), scan: None })
            .collect(),
    };
    let n_cases = cases.len().max(args.pred.len());
    if args.pred_dir.is_none() && args.pred.len() != args.reference.len() {
        return Err(UsageError(format!(
            "{} --pred but {} --ref: give one reference per prediction, in the same order",
            args.pred.len(),
            args.reference.len()
        ))
        .into());
    }
    if args.region.len() > 1 && args.region.len() != n_cases {
        return Err(UsageError(format!(
            "{} --region for {} cases: give one region for all cases or one per case",
            args.region.len(),
            n_cases
        ))
        .into());
    }
    for (given, flag) in [(args.ct.len(), "--ct"), (args.implant_mesh.len(), "--implant-mesh")] {
        if given > 0 && args.pred_dir.is_some() {
            return Err(UsageError(format!(
                "{flag} goes with --pred; with --pred-dir the CTs are the manifest's inputs and implants CASE/implant.stl"
            ))
            .into());
        }
        if given > 0 && given != n_cases {
            return Err(UsageError(format!("{given} {flag} for {n_cases} cases: give one per --pred")).into());
        }
    }
    if args.implant {
        return run_implant(args, ui);
    }
    if !args.skull.is_empty() || args.band_mm.is_some() {
        return Err(UsageError(
            "--skull and --band-mm define the boundary band of --implant scores; add --implant".into(),
        )
        .into());
    }
    let mut report = Report::new();
    if !args.region.is_empty() {
        report = report.with_region_name("region");
    }
    let bar = ui.bar(cases.len() as u64, "evaluating");
    let mut html = args.html.as_ref().map(|_| HtmlReport::new("msd eval: predictions against references"));
    for (i, EvalCase { name: case, pred: pred_path, reference: ref_path, scan }) in cases.iter().enumerate() {
        // The two files are independent: read them at the same time (decompression and mesh
        // parsing are mostly one thread each).
        let (pred, reference) = std::thread::scope(|s| {
            let reference = s.spawn(|| read_shape(ref_path));
            let pred = read_shape(pred_path);
            (
                pred,
                reference
                    .join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("reading {} failed", ref_path.display()))),
            )
        });
        let (pred, reference) = (pred?, reference?);
        let region = match args.region.get(if args.region.len() == 1 { 0 } else { i }) {
            Some(p) => Some(Region::Mask(super::read_labels(p)?)),
            None => None,
        };
        let options = EvaluationOptions::default().region(region).surface_metrics(!args.no_surface);
        let result = options.evaluate(case, &pred, &reference).with_context(|| {
            format!("cannot evaluate {} against {}", pred_path.display(), ref_path.display())
        })?;
        report.push(result);
        if let Some(page) = html.take() {
            let mut entry = HtmlCase::from_shapes(case.as_str(), &pred, &reference)
                .with_context(|| format!("cannot draw {} for the HTML report", pred_path.display()))?;
            let (ct, implant) = html_extras(args, i, case, pred_path, scan.as_deref(), ui)?;
            if let Some(ct) = ct {
                entry = slices(entry, &ct, &pred, &reference).with_context(|| {
                    format!("cannot draw the slices of {} for the HTML report", pred_path.display())
                })?;
            }
            if let Some((path, mesh)) = implant {
                entry = entry.mesh("implant", MeshRole::Implant, &mesh, None).with_context(|| {
                    format!("cannot show the implant {} in the HTML report", path.display())
                })?;
            }
            html = Some(page.case(entry));
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let json = report_json(&report)?;
    if let Some(path) = &args.json {
        if path.as_os_str() == "-" {
            println!("{json}");
        } else {
            write_text(path, &json)?;
        }
    }
    if let Some(path) = &args.csv {
        report.write_csv(path).with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let (Some(path), Some(page)) = (&args.html, html) {
        page.table("predictions against references", &report)
            .write(path)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(path) = &args.markdown {
        report.write_markdown(path).with_context(|| format!("cannot write {}", path.display()))?;
    }
    if args.json.as_deref().is_none_or(|p| p.as_os_str() != "-") {
        print!("{}", report.to_markdown());
    }
    Ok(())
}

/// The report's JSON with the means over the cases also at the top level (`dice`, `mad_mm`,
/// `hd95_mm`, ..., and `region.dice`, `region.mad_mm`, ...), so one case reads as `.dice`.
fn report_json(report: &Report) -> anyhow::Result<String> {
    let mut value: serde_json::Value = serde_json::from_str(&report.to_json()?)?;
    let means = |list: Vec<(&'static str, msd::metrics::MetricSummary)>| {
        list.into_iter()
            .filter(|(_, m)| m.n > 0 && m.mean.is_finite())
            .map(|(k, m)| (k.to_string(), serde_json::json!(m.mean)))
            .collect::<serde_json::Map<_, _>>()
    };
    if let serde_json::Value::Object(map) = &mut value {
        map.extend(means(report.summary()));
        let region = means(report.region_summary());
        if !region.is_empty() {
            map.insert("region".into(), serde_json::Value::Object(region));
        }
    }
    Ok(serde_json::to_string_pretty(&value)?)
}

/// A case's CT and implant (its path and mesh) for the HTML report, where there are any.
type HtmlExtras = (Option<Volume<f32>>, Option<(PathBuf, Mesh)>);

/// The CT and the implant mesh of case `i` for the HTML report, where there are any: from --ct and
/// --implant-mesh, or for a study (--pred-dir) the manifest's input `scan` and CASE/implant.stl. A
/// study's CT that cannot be read any more (moved since segmenting) only costs its slices, with a
/// warning.
fn html_extras(
    args: &EvalArgs,
    i: usize,
    case: &str,
    pred_path: &Path,
    scan: Option<&Path>,
    ui: &Ui,
) -> anyhow::Result<HtmlExtras> {
    let read_ct =
        |p: &Path| msd::io::read_volume(p).with_context(|| format!("cannot read the CT {}", p.display()));
    let read_implant = |p: &Path| -> anyhow::Result<(PathBuf, Mesh)> {
        let mesh =
            msd::geom::read_mesh(p).with_context(|| format!("cannot read the implant {}", p.display()))?;
        Ok((p.to_path_buf(), mesh))
    };
    if args.pred_dir.is_none() {
        let ct = args.ct.get(i).map(|p| read_ct(p)).transpose()?;
        let implant = args.implant_mesh.get(i).map(|p| read_implant(p)).transpose()?;
        return Ok((ct, implant));
    }
    let ct = match scan.map(read_ct) {
        Some(Ok(ct)) => Some(ct),
        Some(Err(e)) => {
            ui.say(format!(
                "warning: {}: no slices in the HTML report for case {case}",
                msd::error_chain(&*e)
            ));
            None
        }
        None => None,
    };
    // The case folder holds the labels (CASE/skull.nii.gz); an implant designed for it sits beside.
    let implant = pred_path.parent().map(|d| d.join("implant.stl")).filter(|p| p.is_file());
    Ok((ct, implant.map(|p| read_implant(&p)).transpose()?))
}

/// Adds axial, coronal and sagittal slices of `ct` through the prediction's centre, the prediction
/// (red) and the reference (green) drawn over it; meshes are voxelised on the CT's grid.
fn slices(entry: HtmlCase, ct: &Volume<f32>, pred: &Shape, reference: &Shape) -> anyhow::Result<HtmlCase> {
    let on_grid = |shape: &Shape, what: &str| -> anyhow::Result<LabelVolume> {
        Ok(match shape {
            Shape::Labels(l) => {
                ct.check_same_grid(l, 1e-3).with_context(|| format!("the {what} is not on the CT's grid"))?;
                l.clone()
            }
            Shape::Mesh(m) => msd::geom::mesh_to_labels(m, ct)?,
        })
    };
    let (pred, reference) = (on_grid(pred, "prediction")?, on_grid(reference, "reference")?);
    let overlays = [
        Overlay::new(&pred, SEGMENTATION_COLOUR).named("prediction"),
        Overlay::new(&reference, REFERENCE_COLOUR).named("reference"),
    ];
    let at = Some(label_centre(&pred));
    let mut entry = entry;
    for plane in Plane::ALL {
        let image = render_slice(ct, plane, at, &overlays, &PreviewOptions::default())?;
        entry =
            entry.image(format!("{} slice: prediction (red) and reference (green)", plane.name()), &image)?;
    }
    Ok(entry)
}

fn read_shape(path: &Path) -> anyhow::Result<Shape> {
    Shape::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// The case name: the file name without its extensions (`case7.nii.gz` → `case7`).
fn case_name(path: &Path) -> String {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    name.split('.').next().unwrap_or(&name).to_string()
}

/// Writes text atomically (temporary file in the same folder, then rename).
pub fn write_text(path: &Path, text: &str) -> anyhow::Result<()> {
    msd::atomic::write_text(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// The AutoImplant scores of one case.
struct ImplantCase {
    case: String,
    dice: f64,
    boundary_dice: f64,
    hd95_mm: f64,
}

/// The boundary band's source.
enum Band<'a> {
    /// Band of this width (mm) around the rim where the true implant meets this defective skull.
    Rim(&'a Path, f64),
    /// A ready band mask (e.g. `defect_region.nii.gz`).
    Mask(&'a Path),
}

/// `msd eval --implant`: Dice, boundary Dice and HD95 per case, their mean ± sd, as a Markdown
/// table on stdout and optionally JSON, CSV and Markdown files.
fn run_implant(args: &EvalArgs, ui: &Ui) -> anyhow::Result<()> {
    if args.html.is_some() {
        return Err(UsageError(
            "--html reports --pred/--ref surface studies; it does not take --implant".into(),
        )
        .into());
    }
    if args.no_surface {
        return Err(
            UsageError("--no-surface: the --implant scores include HD95, a surface distance".into()).into()
        );
    }
    let n = args.pred.len();
    let per_case = |given: usize, what: &str| -> anyhow::Result<()> {
        if given > 1 && given != n {
            return Err(UsageError(format!(
                "{given} {what} for {n} cases: give one {what} for all cases or one per case"
            ))
            .into());
        }
        Ok(())
    };
    per_case(args.skull.len(), "--skull")?;
    per_case(args.region.len(), "--region")?;
    let band_mm = args.band_mm.unwrap_or(10.0);
    if !(band_mm.is_finite() && band_mm > 0.0) {
        return Err(UsageError(format!("--band-mm {band_mm}: give a band width above 0 mm")).into());
    }
    match (args.skull.is_empty(), args.region.is_empty()) {
        (true, true) => {
            return Err(UsageError(
                "--implant needs the boundary band: --skull DEFECTIVE_SKULL (a band of --band-mm around the rim) or --region BAND"
                    .into(),
            )
            .into());
        }
        (false, false) => {
            return Err(UsageError(
                "--skull and --region both define the boundary band: give one of them".into(),
            )
            .into());
        }
        _ => {}
    }
    if args.band_mm.is_some() && args.skull.is_empty() {
        return Err(UsageError(
            "--band-mm sizes the band around --skull's rim; --region is the band itself".into(),
        )
        .into());
    }
    let pick = |list: &[std::path::PathBuf], i: usize| list.get(if list.len() == 1 { 0 } else { i }).cloned();
    let bar = ui.bar(n as u64, "scoring implants");
    let mut cases = Vec::with_capacity(n);
    for (i, (pred_path, ref_path)) in args.pred.iter().zip(&args.reference).enumerate() {
        let skull = pick(&args.skull, i);
        let region = pick(&args.region, i);
        let band = match (&skull, &region) {
            (Some(s), _) => Band::Rim(s, band_mm),
            (None, Some(r)) => Band::Mask(r),
            (None, None) => return Err(UsageError("--implant needs --skull or --region".into()).into()),
        };
        let scores = score_implant(pred_path, ref_path, &band).with_context(|| {
            format!("cannot score the implant {} against {}", pred_path.display(), ref_path.display())
        })?;
        cases.push(ImplantCase { case: case_name(pred_path), ..scores });
        bar.inc(1);
    }
    bar.finish_and_clear();
    let band_text = if args.skull.is_empty() {
        "in --region".to_string()
    } else {
        format!("within {band_mm} mm of the defect's rim")
    };
    let json = implant_json(&cases, &band_text)?;
    if let Some(path) = &args.json {
        if path.as_os_str() == "-" {
            println!("{json}");
        } else {
            write_text(path, &json)?;
        }
    }
    if let Some(path) = &args.csv {
        let mut csv = String::from("case,dice,boundary_dice,hd95_mm\n");
        for c in &cases {
            csv += &format!("{},{},{},{}\n", c.case, c.dice, c.boundary_dice, c.hd95_mm);
        }
        write_text(path, &csv)?;
    }
    let markdown = implant_markdown(&cases, &band_text);
    if let Some(path) = &args.markdown {
        write_text(path, &markdown)?;
    }
    if args.json.as_deref().is_none_or(|p| p.as_os_str() != "-") {
        print!("{markdown}");
    }
    Ok(())
}

fn score_implant(pred_path: &Path, ref_path: &Path, band: &Band<'_>) -> anyhow::Result<ImplantCase> {
    let pred = super::read_labels(pred_path)?;
    let reference = super::read_labels(ref_path)?;
    let band = match band {
        Band::Rim(skull_path, mm) => {
            let skull = super::read_labels(skull_path)?;
            defect_rim_band(&reference, &skull, *mm).with_context(|| {
                format!("cannot make the rim band from {} and {}", ref_path.display(), skull_path.display())
            })?
        }
        Band::Mask(path) => super::read_labels(path)?,
    };
    let s = implant_scores(&pred, &reference, &band)?;
    Ok(ImplantCase { case: String::new(), dice: s.dice, boundary_dice: s.boundary_dice, hd95_mm: s.hd95_mm })
}

/// Reads one measure of a case.
type Measure = fn(&ImplantCase) -> f64;

/// The measures' names and getters, in the report's order.
const IMPLANT_COLUMNS: [(&str, Measure); 3] =
    [("dice", |c| c.dice), ("boundary_dice", |c| c.boundary_dice), ("hd95_mm", |c| c.hd95_mm)];

/// `{"band", "cases": [{case, dice, boundary_dice, hd95_mm}], "summary": {metric: {n, mean, sd}}}`
/// with the means also at the top level (`.dice`, `.boundary_dice`, `.hd95_mm`), as the rest of
/// `msd eval`.
fn implant_json(cases: &[ImplantCase], band: &str) -> anyhow::Result<String> {
    let mut value = serde_json::json!({
        "band": band,
        "cases": cases
            .iter()
            .map(|c| serde_json::json!({
                "case": c.case,
                "dice": finite(c.dice),
                "boundary_dice": finite(c.boundary_dice),
                "hd95_mm": finite(c.hd95_mm),
            }))
            .collect::<Vec<_>>(),
    });
    let mut summary = serde_json::Map::new();
    for (name, get) in IMPLANT_COLUMNS {
        let m = MetricSummary::of(cases.iter().map(|c| Some(get(c))));
        summary
            .insert(name.into(), serde_json::json!({"n": m.n, "mean": finite(m.mean), "sd": finite(m.sd)}));
        if m.n > 0 {
            value[name] = serde_json::json!(m.mean);
        }
    }
    value["summary"] = serde_json::Value::Object(summary);
    Ok(serde_json::to_string_pretty(&value)?)
}

/// A number, or null when it is not finite (JSON has no NaN).
fn finite(v: f64) -> serde_json::Value {
    if v.is_finite() { serde_json::json!(v) } else { serde_json::Value::Null }
}

fn implant_markdown(cases: &[ImplantCase], band: &str) -> String {
    let mut s = format!("Implant scores (AutoImplant); boundary Dice {band}.\n\n");
    s += "| case | Dice | boundary Dice | HD95 (mm) |\n|---|---:|---:|---:|\n";
    for c in cases {
        s += &format!("| {} | {:.3} | {:.3} | {:.2} |\n", c.case, c.dice, c.boundary_dice, c.hd95_mm);
    }
    if cases.len() > 1 {
        let cell = |get: Measure, digits: usize| {
            let m = MetricSummary::of(cases.iter().map(|c| Some(get(c))));
            format!("{:.digits$} ± {:.digits$}", m.mean, m.sd)
        };
        s += &format!(
            "| mean ± sd | {} | {} | {} |\n",
            cell(IMPLANT_COLUMNS[0].1, 3),
            cell(IMPLANT_COLUMNS[1].1, 3),
            cell(IMPLANT_COLUMNS[2].1, 2)
        );
    }
    s
}
