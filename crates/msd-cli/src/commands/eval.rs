//! `msd eval`: Table-1-style report of predictions against references.
use std::path::Path;

use anyhow::Context as _;
use msd::evaluation::{EvaluationOptions, Shape};
use msd::metrics::{Region, Report};

use crate::cli::EvalArgs;
use crate::{Ui, UsageError};

pub fn run(args: &EvalArgs, ui: &Ui) -> anyhow::Result<()> {
    if args.pred.len() != args.reference.len() {
        return Err(UsageError(format!(
            "{} --pred but {} --ref: give one reference per prediction, in the same order",
            args.pred.len(),
            args.reference.len()
        ))
        .into());
    }
    if args.region.len() > 1 && args.region.len() != args.pred.len() {
        return Err(UsageError(format!(
            "{} --region for {} cases: give one region for all cases or one per case",
            args.region.len(),
            args.pred.len()
        ))
        .into());
    }
    let mut report = Report::new();
    if !args.region.is_empty() {
        report = report.with_region_name("region");
    }
    let bar = ui.bar(args.pred.len() as u64, "evaluating");
    for (i, (pred_path, ref_path)) in args.pred.iter().zip(&args.reference).enumerate() {
        let pred = read_shape(pred_path)?;
        let reference = read_shape(ref_path)?;
        let region = match args.region.get(if args.region.len() == 1 { 0 } else { i }) {
            Some(p) => Some(Region::Mask(super::read_labels(p)?)),
            None => None,
        };
        let options = EvaluationOptions::default().region(region).surface_metrics(!args.no_surface);
        let case = case_name(pred_path);
        let result = options.evaluate(&case, &pred, &reference).with_context(|| {
            format!("cannot evaluate {} against {}", pred_path.display(), ref_path.display())
        })?;
        report.push(result);
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
