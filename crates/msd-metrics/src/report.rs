//! Evaluation reports over cases: the paper's Table 1 (case, Dice, MAD of the whole skull, MAD near
//! the defect) plus every other metric, with mean ± standard deviation, as Markdown, CSV and JSON.
use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::atomic_write::write_atomically;
use crate::overlap::Overlap;
use crate::surface_distance::SurfaceDistances;
use crate::{Error, Result};

/// The metrics of one case, everywhere or inside a region. A metric that was not computed is `None`
/// (`null` in JSON, empty in CSV); a computed metric that is undefined (no surface in the region)
/// is NaN, also written as `null` / empty.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CaseMetrics {
    /// Dice similarity coefficient of the label volumes.
    pub dice: Option<f64>,
    /// Jaccard index of the label volumes.
    pub jaccard: Option<f64>,
    /// Sensitivity (recall).
    pub sensitivity: Option<f64>,
    /// Precision.
    pub precision: Option<f64>,
    /// Predicted minus reference volume, mL.
    pub volume_difference_ml: Option<f64>,
    /// Volume difference relative to the reference, %.
    pub volume_difference_percent: Option<f64>,
    /// Symmetric mean absolute surface distance, mm.
    pub mad_mm: Option<f64>,
    /// Mean distance from the prediction to the reference, mm.
    pub mad_pred_to_ref_mm: Option<f64>,
    /// Mean distance from the reference to the prediction, mm.
    pub mad_ref_to_pred_mm: Option<f64>,
    /// Symmetric RMS surface distance, mm.
    pub rms_mm: Option<f64>,
    /// Symmetric median surface distance, mm.
    pub median_mm: Option<f64>,
    /// 95th-percentile Hausdorff distance, mm.
    pub hd95_mm: Option<f64>,
    /// Hausdorff distance, mm.
    pub max_mm: Option<f64>,
    /// Surface Dice at `surface_dice_tolerance_mm`.
    pub surface_dice: Option<f64>,
    /// Tolerance of the surface Dice, mm.
    pub surface_dice_tolerance_mm: Option<f64>,
}

/// Reads one metric out of a [`CaseMetrics`].
type Accessor = fn(&CaseMetrics) -> Option<f64>;

/// Column names and accessors, in report order.
const COLUMNS: [(&str, Accessor); 15] = [
    ("dice", |m| m.dice),
    ("jaccard", |m| m.jaccard),
    ("sensitivity", |m| m.sensitivity),
    ("precision", |m| m.precision),
    ("volume_difference_ml", |m| m.volume_difference_ml),
    ("volume_difference_percent", |m| m.volume_difference_percent),
    ("mad_mm", |m| m.mad_mm),
    ("mad_pred_to_ref_mm", |m| m.mad_pred_to_ref_mm),
    ("mad_ref_to_pred_mm", |m| m.mad_ref_to_pred_mm),
    ("rms_mm", |m| m.rms_mm),
    ("median_mm", |m| m.median_mm),
    ("hd95_mm", |m| m.hd95_mm),
    ("max_mm", |m| m.max_mm),
    ("surface_dice", |m| m.surface_dice),
    ("surface_dice_tolerance_mm", |m| m.surface_dice_tolerance_mm),
];

impl CaseMetrics {
    /// Fills the overlap metrics.
    pub fn set_overlap(&mut self, o: &Overlap) {
        self.dice = Some(o.dice());
        self.jaccard = Some(o.jaccard());
        self.sensitivity = Some(o.sensitivity());
        self.precision = Some(o.precision());
        self.volume_difference_ml = Some(o.volume_difference_ml());
        self.volume_difference_percent = o.volume_difference_percent();
    }

    /// Fills the surface-distance metrics.
    pub fn set_surface(&mut self, s: &SurfaceDistances) {
        self.mad_mm = Some(s.mad_mm());
        self.mad_pred_to_ref_mm = Some(s.pred_to_ref.mean_mm);
        self.mad_ref_to_pred_mm = Some(s.ref_to_pred.mean_mm);
        self.rms_mm = Some(s.symmetric.rms_mm);
        self.median_mm = Some(s.symmetric.median_mm);
        self.hd95_mm = Some(s.hd95_mm());
        self.max_mm = Some(s.hausdorff_mm());
        self.surface_dice = Some(s.surface_dice);
        self.surface_dice_tolerance_mm = Some(s.tolerance_mm);
    }

    /// `(name, value)` of every metric, in report order.
    pub fn values(&self) -> impl Iterator<Item = (&'static str, Option<f64>)> + '_ {
        COLUMNS.iter().map(move |(name, get)| (*name, get(self)))
    }
}

/// One evaluated case: metrics everywhere and, optionally, inside a region (near the defect).
///
/// In JSON the whole-volume metrics sit at the top level beside `case` (`dice`, `mad_mm`,
/// `hd95_mm`, …) and the region's under `region` (`region.dice`, `region.mad_mm`, …).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CaseReport {
    /// The case's name.
    pub case: String,
    /// Metrics over the whole volume / surface.
    #[serde(flatten)]
    pub metrics: CaseMetrics,
    /// Metrics inside the region, if one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<CaseMetrics>,
}

impl CaseReport {
    /// An empty report for a case.
    pub fn new(case: impl Into<String>) -> Self {
        CaseReport { case: case.into(), ..Default::default() }
    }

    /// Adds whole-volume overlap metrics.
    pub fn with_overlap(mut self, o: &Overlap) -> Self {
        self.metrics.set_overlap(o);
        self
    }

    /// Adds whole-surface distance metrics.
    pub fn with_surface(mut self, s: &SurfaceDistances) -> Self {
        self.metrics.set_surface(s);
        self
    }

    /// Adds overlap metrics inside the region.
    pub fn with_region_overlap(mut self, o: &Overlap) -> Self {
        self.region.get_or_insert_with(CaseMetrics::default).set_overlap(o);
        self
    }

    /// Adds surface-distance metrics inside the region.
    pub fn with_region_surface(mut self, s: &SurfaceDistances) -> Self {
        self.region.get_or_insert_with(CaseMetrics::default).set_surface(s);
        self
    }

    /// The case as pretty JSON.
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self).map_err(Error::Json)
    }
}

/// Mean and sample standard deviation of one metric over the cases where it is defined.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MetricSummary {
    /// Number of cases with a finite value.
    pub n: usize,
    /// Mean over those cases (NaN when `n` is 0).
    pub mean: f64,
    /// Sample standard deviation (n − 1 in the denominator; 0 for one case, NaN for none).
    pub sd: f64,
}

impl MetricSummary {
    /// Summarises the finite values; others (missing, NaN) are skipped.
    pub fn of(values: impl IntoIterator<Item = Option<f64>>) -> Self {
        let v: Vec<f64> = values.into_iter().flatten().filter(|x| x.is_finite()).collect();
        let n = v.len();
        if n == 0 {
            return MetricSummary { n, mean: f64::NAN, sd: f64::NAN };
        }
        let mean = v.iter().sum::<f64>() / n as f64;
        let sd = if n > 1 {
            (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
        } else {
            0.0
        };
        MetricSummary { n, mean, sd }
    }
}

/// A report over several cases.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Report {
    /// What the region is ("near the defect"), used in headings.
    pub region_name: Option<String>,
    /// The cases, in order.
    pub cases: Vec<CaseReport>,
}

#[derive(Serialize)]
struct ReportJson<'a> {
    region_name: &'a Option<String>,
    cases: &'a [CaseReport],
    summary: Vec<(&'static str, MetricSummary)>,
    region_summary: Vec<(&'static str, MetricSummary)>,
}

impl Report {
    /// An empty report.
    pub fn new() -> Self {
        Self::default()
    }

    /// Names the region (e.g. "near defect").
    pub fn with_region_name(mut self, name: impl Into<String>) -> Self {
        self.region_name = Some(name.into());
        self
    }

    /// Appends a case.
    pub fn push(&mut self, case: CaseReport) {
        self.cases.push(case);
    }

    /// Mean ± sd of every whole-volume metric over the cases.
    pub fn summary(&self) -> Vec<(&'static str, MetricSummary)> {
        COLUMNS
            .iter()
            .map(|(name, get)| (*name, MetricSummary::of(self.cases.iter().map(|c| get(&c.metrics)))))
            .collect()
    }

    /// Mean ± sd of every region metric over the cases that have a region.
    pub fn region_summary(&self) -> Vec<(&'static str, MetricSummary)> {
        COLUMNS
            .iter()
            .map(|(name, get)| {
                (*name, MetricSummary::of(self.cases.iter().filter_map(|c| c.region.as_ref().map(get))))
            })
            .collect()
    }

    /// The report as Markdown: Table 1 (case, Dice, MAD whole, MAD in the region, plus HD95,
    /// surface Dice and the region's Dice) with a mean ± sd row, then every metric's summary.
    pub fn to_markdown(&self) -> String {
        let region = self.region_name.as_deref().unwrap_or("region");
        let mut s = String::new();
        let _ = writeln!(
            s,
            "| Case | Dice | MAD whole (mm) | MAD {region} (mm) | HD95 (mm) | Surface Dice | Dice {region} |"
        );
        s.push_str("|---|---:|---:|---:|---:|---:|---:|\n");
        let cell = |v: Option<f64>, digits: usize| match v {
            Some(x) if x.is_finite() => format!("{x:.digits$}"),
            _ => "–".to_string(),
        };
        for c in &self.cases {
            let r = c.region.as_ref();
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} |",
                c.case.replace('|', "\\|"),
                cell(c.metrics.dice, 3),
                cell(c.metrics.mad_mm, 2),
                cell(r.and_then(|m| m.mad_mm), 2),
                cell(c.metrics.hd95_mm, 2),
                cell(c.metrics.surface_dice, 3),
                cell(r.and_then(|m| m.dice), 3),
            );
        }
        let (all, reg) = (self.summary(), self.region_summary());
        let pm = |list: &[(&str, MetricSummary)], name: &str, digits: usize| {
            list.iter().find(|(n, _)| *n == name).map_or("–".to_string(), |(_, m)| fmt_pm(m, digits))
        };
        let _ = writeln!(
            s,
            "| **mean ± sd** | {} | {} | {} | {} | {} | {} |",
            pm(&all, "dice", 3),
            pm(&all, "mad_mm", 2),
            pm(&reg, "mad_mm", 2),
            pm(&all, "hd95_mm", 2),
            pm(&all, "surface_dice", 3),
            pm(&reg, "dice", 3),
        );
        s.push_str("\n| Metric | whole: mean ± sd (n) |");
        let has_region = self.cases.iter().any(|c| c.region.is_some());
        if has_region {
            let _ = write!(s, " {region}: mean ± sd (n) |");
        }
        s.push_str(if has_region { "\n|---|---:|---:|\n" } else { "\n|---|---:|\n" });
        for ((name, m), (_, r)) in all.iter().zip(&reg) {
            let _ = write!(s, "| {name} | {} ({}) |", fmt_pm(m, 4), m.n);
            if has_region {
                let _ = write!(s, " {} ({}) |", fmt_pm(r, 4), r.n);
            }
            s.push('\n');
        }
        s
    }

    /// The report as CSV: a header, one row per case (whole-volume columns, then `region_`
    /// columns), then rows `mean` and `sd`. Missing or undefined values are empty cells.
    pub fn to_csv(&self) -> String {
        let mut s = String::from("case");
        for (name, _) in COLUMNS {
            let _ = write!(s, ",{name}");
        }
        for (name, _) in COLUMNS {
            let _ = write!(s, ",region_{name}");
        }
        s.push('\n');
        let num = |v: Option<f64>| v.filter(|x| x.is_finite()).map_or(String::new(), |x| format!("{x}"));
        for c in &self.cases {
            s.push_str(&csv_field(&c.case));
            for (_, get) in COLUMNS {
                let _ = write!(s, ",{}", num(get(&c.metrics)));
            }
            for (_, get) in COLUMNS {
                let _ = write!(s, ",{}", num(c.region.as_ref().and_then(get)));
            }
            s.push('\n');
        }
        let (all, reg) = (self.summary(), self.region_summary());
        for (label, pick) in
            [("mean", (|m: &MetricSummary| m.mean) as fn(&MetricSummary) -> f64), ("sd", |m| m.sd)]
        {
            s.push_str(label);
            for (_, m) in all.iter().chain(&reg) {
                let _ = write!(s, ",{}", num(Some(pick(m))));
            }
            s.push('\n');
        }
        s
    }

    /// The report as pretty JSON: `cases` (each as [`CaseReport`]), `summary` and
    /// `region_summary` (metric → `{n, mean, sd}`).
    pub fn to_json(&self) -> Result<String> {
        let json = ReportJson {
            region_name: &self.region_name,
            cases: &self.cases,
            summary: self.summary(),
            region_summary: self.region_summary(),
        };
        let mut value = serde_json::to_value(&json).map_err(Error::Json)?;
        // Pairs serialise as arrays; a map reads better.
        for key in ["summary", "region_summary"] {
            if let Some(serde_json::Value::Array(items)) = value.get(key).cloned() {
                let map: serde_json::Map<String, serde_json::Value> = items
                    .into_iter()
                    .filter_map(|item| match item {
                        serde_json::Value::Array(mut kv) if kv.len() == 2 => {
                            let v = kv.pop()?;
                            Some((kv.pop()?.as_str()?.to_string(), v))
                        }
                        _ => None,
                    })
                    .collect();
                value[key] = serde_json::Value::Object(map);
            }
        }
        serde_json::to_string_pretty(&value).map_err(Error::Json)
    }

    /// Writes the Markdown report (atomically).
    pub fn write_markdown(&self, path: impl AsRef<Path>) -> Result<()> {
        write_text(path.as_ref(), &self.to_markdown())
    }

    /// Writes the CSV report (atomically).
    pub fn write_csv(&self, path: impl AsRef<Path>) -> Result<()> {
        write_text(path.as_ref(), &self.to_csv())
    }

    /// Writes the JSON report (atomically).
    pub fn write_json(&self, path: impl AsRef<Path>) -> Result<()> {
        write_text(path.as_ref(), &self.to_json()?)
    }
}

fn write_text(path: &Path, text: &str) -> Result<()> {
    write_atomically(path, |w| w.write_all(text.as_bytes()).map_err(|e| Error::io(path, e)))
}

fn fmt_pm(m: &MetricSummary, digits: usize) -> String {
    if m.n == 0 { "–".to_string() } else { format!("{:.digits$} ± {:.digits$}", m.mean, m.sd) }
}

/// Quotes a CSV field when it holds a comma, quote or line break (RFC 4180).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(name: &str, dice: f64, mad: f64, region_mad: f64) -> CaseReport {
        let mut c = CaseReport::new(name);
        c.metrics.dice = Some(dice);
        c.metrics.mad_mm = Some(mad);
        c.metrics.hd95_mm = Some(2.0 * mad);
        c.region =
            Some(CaseMetrics { mad_mm: Some(region_mad), dice: Some(dice - 0.1), ..Default::default() });
        c
    }

    #[test]
    fn summary_is_mean_and_sample_sd() {
        let m = MetricSummary::of([Some(1.0), Some(3.0), None, Some(f64::NAN)]);
        assert_eq!(m.n, 2);
        assert_eq!(m.mean, 2.0);
        assert!((m.sd - 2f64.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn formats_carry_table_one_columns() {
        let mut r = Report::new().with_region_name("near defect");
        r.push(case("a,1", 0.96, 0.3, 0.2));
        r.push(case("b", 0.94, 0.5, 0.4));
        let md = r.to_markdown();
        assert!(md.contains("| Case | Dice | MAD whole (mm) | MAD near defect (mm) |"), "{md}");
        assert!(md.contains("0.950 ± 0.014"), "{md}");
        let csv = r.to_csv();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 5);
        assert!(lines[1].starts_with("\"a,1\",0.96,"));
        assert_eq!(lines[0].split(',').count(), lines[3].split(',').count());
        let json: serde_json::Value = serde_json::from_str(&r.to_json().unwrap()).unwrap();
        assert_eq!(json["cases"][0]["dice"], 0.96);
        assert_eq!(json["cases"][1]["region"]["mad_mm"], 0.4);
        assert!((json["summary"]["mad_mm"]["mean"].as_f64().unwrap() - 0.4).abs() < 1e-12);
        let one: serde_json::Value = serde_json::from_str(&r.cases[0].to_json().unwrap()).unwrap();
        assert_eq!(one["hd95_mm"], 0.6);
        assert!(one["jaccard"].is_null());
    }

    #[test]
    fn files_are_written_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Report::new();
        r.push(case("a", 0.9, 0.3, 0.2));
        let (md, csv, json) = (dir.path().join("r.md"), dir.path().join("r.csv"), dir.path().join("r.json"));
        r.write_markdown(&md).unwrap();
        r.write_csv(&csv).unwrap();
        r.write_json(&json).unwrap();
        assert_eq!(std::fs::read_to_string(&md).unwrap(), r.to_markdown());
        assert_eq!(std::fs::read_to_string(&csv).unwrap(), r.to_csv());
        assert_eq!(std::fs::read_to_string(&json).unwrap(), r.to_json().unwrap());
        // Only the three files: no temporary left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 3);
        let bad = dir.path().join("missing/r.md");
        assert!(matches!(r.write_markdown(&bad), Err(Error::Io { .. })));
    }
}
