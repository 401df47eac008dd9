//! The built-in demonstration: the study's workflow end to end on synthetic head CTs.
//!
//! [`run`] generates head phantoms ([`msd::phantom`]) at two noise levels, trains an MSDnet on 15
//! of them, segments the 5 unseen ones, meshes the result, and evaluates it against the exact
//! ground truth, side by side with the global-threshold baseline ([`msd::baseline`]): Dice, MAD
//! and HD95 for the whole skull and, where a phantom has a craniectomy, near the defect. It writes
//! STLs, preview PNGs, the loss curve and the report (Markdown, CSV, JSON) into a folder.
//!
//! [`DemoConfig::quick`] is sized for CI (about a minute on two cores); [`DemoConfig::full`] for a
//! first look at the tool (about ten minutes).
//!
//! It is an application of the libraries, not part of them: everything it does goes through the
//! `msd` facade's public API, and `msd demo` (`commands/demo.rs`) shows its progress and result.
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use msd::baseline::{DEFAULT_BONE_HU, threshold};
use msd::evaluation::{EvaluationOptions, Shape};
use msd::html::{HtmlCase, HtmlReport, MeshRole};
use msd::io::LabelVolume;
use msd::metrics::{CaseMetrics, MetricSummary, Region, Report};
use msd::net::{MsdConfig, StopReason, TrainConfig, TrainProgress};
use msd::phantom::{Phantom, PhantomConfig, generate};
use msd::preview::{Overlay, PreviewOptions, REFERENCE_COLOUR, RgbImage, SEGMENTATION_COLOUR, render_slice};
use msd::render::{Figure, Paint};
use msd::surface::SurfaceOptions;
use msd::training::TrainingSet;
use msd::{Error, Result};
use serde::Serialize;

/// What the demo runs.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// The phantoms' grid and anatomy; the noise level is set per case from `noise_levels_hu`.
    pub phantom: PhantomConfig,
    /// Number of training phantoms.
    pub train_cases: usize,
    /// Number of unseen test phantoms.
    pub test_cases: usize,
    /// The two noise levels (HU standard deviation), low and high; cases alternate between them.
    pub noise_levels_hu: [f64; 2],
    /// The training run.
    pub train: TrainConfig,
    /// Seed of everything random (phantoms, training).
    pub seed: u64,
    /// The threshold of the baseline, HU.
    pub threshold_hu: f32,
    /// The lowest mean MSDnet Dice on the test phantoms that passes [`DemoSummary::acceptance`].
    pub min_dice: f64,
}

impl DemoConfig {
    /// The CI-sized demo: small phantoms, a shallow network, about a minute on two cores.
    pub fn quick() -> Self {
        let mut train = Self::train_config(MsdConfig::new(20, 1, 1, 2));
        // A fixed number of epochs, not a time budget, so the CI result does not depend on the
        // machine's speed.
        train.epochs = 6;
        train.patch_size = Some(64);
        train.batch_size = 4;
        DemoConfig {
            phantom: PhantomConfig::quick(),
            train_cases: 15,
            test_cases: 5,
            noise_levels_hu: [20.0, 80.0],
            train,
            seed: 0,
            threshold_hu: DEFAULT_BONE_HU,
            min_dice: 0.95,
        }
    }

    /// The full demo: adult-sized phantoms at 1 mm pixels, a deeper network, about ten minutes.
    pub fn full() -> Self {
        let mut train = Self::train_config(MsdConfig::new(40, 1, 1, 2));
        train.epochs = 30;
        train.patch_size = Some(96);
        train.batch_size = 4;
        train.time_budget = Some(Duration::from_secs(7 * 60));
        DemoConfig {
            phantom: PhantomConfig::standard(),
            train_cases: 15,
            test_cases: 5,
            noise_levels_hu: [20.0, 80.0],
            train,
            seed: 0,
            threshold_hu: DEFAULT_BONE_HU,
            min_dice: 0.95,
        }
    }

    fn train_config(network: MsdConfig) -> TrainConfig {
        TrainConfig { early_stopping_patience: Some(5), ..msd::training::skull_train_config(network) }
    }

    /// Returns the config with another seed (phantoms and training).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Phantom `index` (training cases first, then test cases): its seed and config. Noise levels
    /// alternate; every other case has a craniectomy; one case in five carries metal.
    fn case(&self, index: usize) -> (u64, PhantomConfig) {
        let config = self
            .phantom
            .clone()
            .with_noise(self.noise_levels_hu[index % 2])
            .with_craniectomy_probability(if (index / 2).is_multiple_of(2) { 1.0 } else { 0.0 })
            .with_metal(index % 5 == 3);
        (self.seed.wrapping_mul(1_000_003).wrapping_add(index as u64), config)
    }
}

/// Something the demo reports as it goes (for progress bars and logs).
#[derive(Debug)]
pub enum DemoEvent<'a> {
    /// A phantom was generated.
    Phantom {
        /// How many are done.
        done: usize,
        /// How many in all.
        total: usize,
    },
    /// A training batch finished.
    Training(&'a TrainProgress),
    /// A test phantom was segmented and evaluated.
    Tested {
        /// The case's name.
        case: &'a str,
        /// How many are done.
        done: usize,
        /// How many in all.
        total: usize,
    },
}

/// One test case's result for one method.
#[derive(Debug, Clone, Serialize)]
pub struct MethodResult {
    /// `msdnet` or `threshold`.
    pub method: String,
    /// The whole-skull metrics.
    pub metrics: CaseMetrics,
    /// The metrics near the defect, for phantoms with a craniectomy.
    pub near_defect: Option<CaseMetrics>,
    /// Seconds to segment the scan.
    pub seconds: f64,
}

/// One test phantom.
#[derive(Debug, Clone, Serialize)]
pub struct DemoCase {
    /// The case's name.
    pub case: String,
    /// Its noise level (HU standard deviation).
    pub noise_hu: f64,
    /// Whether it has a craniectomy.
    pub craniectomy: bool,
    /// Whether it carries metal.
    pub metal: bool,
    /// One result per method.
    pub results: Vec<MethodResult>,
}

/// Mean ± sd of the key metrics for one method at one noise level (or all).
#[derive(Debug, Clone, Serialize)]
pub struct MethodSummary {
    /// `msdnet` or `threshold`.
    pub method: String,
    /// The noise level, or `None` for all test cases.
    pub noise_hu: Option<f64>,
    /// Dice over the cases.
    pub dice: MetricSummary,
    /// Symmetric MAD (mm) over the cases.
    pub mad_mm: MetricSummary,
    /// HD95 (mm) over the cases.
    pub hd95_mm: MetricSummary,
    /// Dice near the defect over the cases with one.
    pub defect_dice: MetricSummary,
    /// MAD near the defect (mm) over the cases with one.
    pub defect_mad_mm: MetricSummary,
}

/// How the training went.
#[derive(Debug, Clone, Serialize)]
pub struct TrainingSummary {
    /// Epochs run.
    pub epochs: usize,
    /// The epoch of the kept model.
    pub best_epoch: Option<usize>,
    /// Why training stopped.
    pub stop_reason: String,
    /// Wall time in seconds.
    pub seconds: f64,
    /// Network depth.
    pub depth: usize,
    /// Training phantoms.
    pub cases: usize,
}

/// The demo's pass/fail checks, for CI.
#[derive(Debug, Clone, Serialize)]
pub struct Acceptance {
    /// Mean MSDnet Dice over the test phantoms.
    pub msdnet_dice: f64,
    /// The minimum required.
    pub min_dice: f64,
    /// Mean MSDnet Dice at the higher noise level.
    pub msdnet_dice_high_noise: f64,
    /// Mean threshold-baseline Dice at the higher noise level.
    pub threshold_dice_high_noise: f64,
    /// Whether MSDnet reaches `min_dice` and at least the baseline's Dice at the higher noise.
    pub passed: bool,
}

/// Everything the demo measured.
#[derive(Debug, Clone, Serialize)]
pub struct DemoSummary {
    /// The test cases.
    pub cases: Vec<DemoCase>,
    /// Per method: all cases, then each noise level.
    pub summaries: Vec<MethodSummary>,
    /// The training run.
    pub training: TrainingSummary,
    /// The CI checks.
    pub acceptance: Acceptance,
    /// Files written, relative to the output folder.
    pub files: Vec<PathBuf>,
}

const METHODS: [&str; 2] = ["msdnet", "threshold"];

/// Runs the demo, writing into `out` (created if missing), and reports progress through
/// `progress`. Returns the summary (also written as `report.json`).
pub fn run(config: &DemoConfig, out: &Path, mut progress: impl FnMut(DemoEvent<'_>)) -> Result<DemoSummary> {
    if config.train_cases == 0 || config.test_cases == 0 {
        return Err(Error::InvalidConfig {
            what: "the demo needs at least one training and one test case".into(),
        });
    }
    for dir in ["stl", "previews"] {
        std::fs::create_dir_all(out.join(dir)).map_err(|e| Error::file(out.join(dir), e))?;
    }
    let total = config.train_cases + config.test_cases;
    let mut phantoms: Vec<Phantom> = Vec::with_capacity(total);
    for i in 0..total {
        let (seed, pc) = config.case(i);
        phantoms.push(generate(&pc, seed)?);
        progress(DemoEvent::Phantom { done: i + 1, total });
    }
    let test = phantoms.split_off(config.train_cases);

    let mut set = TrainingSet::new();
    for (i, p) in phantoms.into_iter().enumerate() {
        set.push_labels(format!("train{:02}", i + 1), p.ct, p.skull)?;
    }
    let mut train_config = config.train.clone();
    train_config.seed = config.seed;
    let start = Instant::now();
    let outcome =
        msd::training::train_with_progress(&set, &train_config, |p| progress(DemoEvent::Training(p)))?;
    let training = TrainingSummary {
        epochs: outcome.history.len(),
        best_epoch: outcome.best_epoch,
        stop_reason: match outcome.stop_reason {
            StopReason::Epochs => "epochs",
            StopReason::TimeBudget => "time budget",
            StopReason::EarlyStopping => "early stopping",
        }
        .to_string(),
        seconds: start.elapsed().as_secs_f64(),
        depth: train_config.network.depth,
        cases: set.len(),
    };
    drop(set);
    let mut files = Vec::new();
    let model_path = out.join("model.safetensors");
    outcome.model.save(&model_path)?;
    files.push(PathBuf::from("model.safetensors"));
    msd::loss_curve::write_csv(&out.join("loss.csv"), &outcome.history)?;
    msd::loss_curve::write_png(&out.join("loss.png"), &outcome.history, outcome.best_epoch)?;
    files.extend(["loss.csv", "loss.png"].map(PathBuf::from));

    let mut cases = Vec::with_capacity(test.len());
    let mut html_cases = Vec::with_capacity(test.len());
    let mut reports =
        [Report::new().with_region_name("near defect"), Report::new().with_region_name("near defect")];
    for (k, head) in test.iter().enumerate() {
        let name = format!("test{:02}", k + 1);
        let t0 = Instant::now();
        let seg = outcome.model.segment(&head.ct)?;
        let msd_seconds = t0.elapsed().as_secs_f64();
        let t0 = Instant::now();
        let thr = threshold(&head.ct, config.threshold_hu);
        let thr_seconds = t0.elapsed().as_secs_f64();
        let labels: [&LabelVolume; 2] = [&seg.labels, &thr];
        let seconds = [msd_seconds, thr_seconds];

        let options = EvaluationOptions::default().region(head.defect_region.clone().map(Region::Mask));
        let reference = Shape::Labels(head.skull.clone());
        let mut results = Vec::new();
        for (m, method) in METHODS.iter().enumerate() {
            let report = options.evaluate(&name, &Shape::Labels(labels[m].clone()), &reference)?;
            let mut named = report.clone();
            named.case = format!("{name} ({method})");
            reports[m].push(named);
            results.push(MethodResult {
                method: method.to_string(),
                metrics: report.metrics,
                near_defect: report.region,
                seconds: seconds[m],
            });
            let mesh = SurfaceOptions::default().extract(labels[m])?;
            let stl = PathBuf::from("stl").join(format!("{name}_{method}.stl"));
            msd::geom::write_mesh(out.join(&stl), &mesh)?;
            files.push(stl);
        }
        let truth = PathBuf::from("stl").join(format!("{name}_truth.stl"));
        let truth_mesh = msd::surface::surface(&head.skull)?;
        msd::geom::write_mesh(out.join(&truth), &truth_mesh)?;
        files.push(truth);
        let msd_mesh = SurfaceOptions::default().extract(&seg.labels)?;
        let deviation = if msd_mesh.is_empty() {
            Vec::new()
        } else {
            msd::metrics::signed_vertex_distances(&msd_mesh, &truth_mesh)?
        };
        let (render_path, render) = write_deviation_render(out, &name, head, &msd_mesh, &deviation)?;
        files.push(render_path);
        let (preview_path, preview) = write_case_preview(out, &name, head, &seg.labels, &thr)?;
        files.push(preview_path);
        html_cases.push(
            HtmlCase::new(&name)
                .image("MSDnet surface coloured by its signed distance to the truth", &render)?
                .image(
                    "Slices through the case (the defect where there is one): MSDnet (top), threshold (bottom), over the truth",
                    &preview,
                )?
                .mesh("truth", MeshRole::Reference, &truth_mesh, None)?
                .mesh("MSDnet", MeshRole::Prediction, &msd_mesh, Some(&deviation))?,
        );
        cases.push(DemoCase {
            case: name.clone(),
            noise_hu: head.noise_hu,
            craniectomy: head.craniectomy.is_some(),
            metal: head.ct.data().iter().any(|&v| v > 2500.0),
            results,
        });
        progress(DemoEvent::Tested { case: &name, done: k + 1, total: test.len() });
    }

    let summaries = summarise(&cases, config.noise_levels_hu);
    let find = |method: &str, noise: Option<f64>| {
        summaries
            .iter()
            .find(|s| s.method == method && s.noise_hu == noise)
            .map(|s| s.dice.mean)
            .unwrap_or(f64::NAN)
    };
    let high = Some(config.noise_levels_hu[1]);
    let acceptance = Acceptance {
        msdnet_dice: find("msdnet", None),
        min_dice: config.min_dice,
        msdnet_dice_high_noise: find("msdnet", high),
        threshold_dice_high_noise: find("threshold", high),
        passed: false,
    };
    let passed = acceptance.msdnet_dice >= config.min_dice
        && acceptance.msdnet_dice_high_noise >= acceptance.threshold_dice_high_noise;
    let acceptance = Acceptance { passed, ..acceptance };
    files.extend(
        ["report.md", "report.json", "report.html", "msdnet.csv", "threshold.csv"].map(PathBuf::from),
    );
    let summary = DemoSummary { cases, summaries, training, acceptance, files };

    let json = serde_json::to_string_pretty(&summary)
        .map_err(|e| Error::InvalidConfig { what: format!("demo summary is not serialisable: {e}") })?;
    msd::atomic::write_text(&out.join("report.json"), &json)?;
    msd::atomic::write_text(&out.join("msdnet.csv"), &reports[0].to_csv())?;
    msd::atomic::write_text(&out.join("threshold.csv"), &reports[1].to_csv())?;
    let markdown = to_markdown(&summary, &reports);
    msd::atomic::write_text(&out.join("report.md"), &markdown)?;
    let mut html =
        HtmlReport::new("msd demo: MSDnet vs the threshold baseline on synthetic head CTs").intro(format!(
            "{} training phantoms, {} unseen test phantoms. Acceptance: MSDnet Dice {:.3} (at least {:.2}); \
         at the higher noise MSDnet {:.3} vs threshold {:.3}: {}.",
            summary.training.cases,
            summary.cases.len(),
            summary.acceptance.msdnet_dice,
            summary.acceptance.min_dice,
            summary.acceptance.msdnet_dice_high_noise,
            summary.acceptance.threshold_dice_high_noise,
            if summary.acceptance.passed { "passed" } else { "FAILED" }
        ));
    html = html.table("MSDnet", &reports[0]).table("Threshold 300 HU", &reports[1]);
    for case in html_cases {
        html = html.case(case);
    }
    html.write(&out.join("report.html"))?;
    Ok(summary)
}

/// Axial, coronal and sagittal slices through the case (through the defect when there is one),
/// MSDnet (red) over the truth (green) on the top row, the threshold baseline on the bottom row.
fn write_case_preview(
    out: &Path,
    name: &str,
    head: &Phantom,
    msdnet: &LabelVolume,
    thr: &LabelVolume,
) -> Result<(PathBuf, RgbImage)> {
    let at = head.defect_region.as_ref().map(msd::preview::label_centre);
    let options = PreviewOptions::default().pixel_mm(0.5);
    let mut rows = Vec::new();
    for (labels, method) in [(msdnet, "MSDnet"), (thr, "threshold 300 HU")] {
        let overlays = [
            Overlay::new(&head.skull, REFERENCE_COLOUR).named("truth"),
            Overlay::new(labels, SEGMENTATION_COLOUR).named(method),
        ];
        let panels = msd::preview::Plane::ALL
            .iter()
            .map(|&plane| render_slice(&head.ct, plane, at, &overlays, &options))
            .collect::<Result<Vec<_>, msd::report::Error>>()?;
        rows.push(RgbImage::side_by_side(&panels));
    }
    let image = RgbImage::stacked(&rows);
    let rel = PathBuf::from("previews").join(format!("{name}.png"));
    image.write_png(&out.join(&rel))?;
    Ok((rel, image))
}

/// The MSDnet surface coloured by its signed distance to the truth (blue: too little bone, white:
/// on the truth, red: too much), from the front, the left, above and, where the phantom has a
/// craniectomy, facing the defect; with the colour bar in mm.
fn write_deviation_render(
    out: &Path,
    name: &str,
    head: &Phantom,
    mesh: &msd::geom::Mesh,
    deviation: &[f32],
) -> Result<(PathBuf, RgbImage)> {
    let rel = PathBuf::from("previews").join(format!("{name}_deviation.png"));
    let title = format!("{name}: MSDnet surface vs the truth");
    let mut figure = Figure::new(title)
        .layer("MSDnet, signed distance to the truth", mesh, Paint::Deviation(deviation))
        .panel_px(300);
    if let Some(c) = &head.craniectomy {
        figure = figure.defect_view(c.direction);
    }
    let image = figure.render()?;
    image.write_png(&out.join(&rel))?;
    Ok((rel, image))
}

fn summarise(cases: &[DemoCase], noise_levels: [f64; 2]) -> Vec<MethodSummary> {
    let mut out = Vec::new();
    for method in METHODS {
        for noise in [None, Some(noise_levels[0]), Some(noise_levels[1])] {
            let results: Vec<&MethodResult> = cases
                .iter()
                .filter(|c| noise.is_none_or(|n| (c.noise_hu - n).abs() < 1e-9))
                .flat_map(|c| c.results.iter().filter(|r| r.method == method))
                .collect();
            let of =
                |f: &dyn Fn(&MethodResult) -> Option<f64>| MetricSummary::of(results.iter().map(|r| f(r)));
            out.push(MethodSummary {
                method: method.to_string(),
                noise_hu: noise,
                dice: of(&|r| r.metrics.dice),
                mad_mm: of(&|r| r.metrics.mad_mm),
                hd95_mm: of(&|r| r.metrics.hd95_mm),
                defect_dice: of(&|r| r.near_defect.as_ref().and_then(|m| m.dice)),
                defect_mad_mm: of(&|r| r.near_defect.as_ref().and_then(|m| m.mad_mm)),
            });
        }
    }
    out
}

fn pm(s: &MetricSummary, digits: usize) -> String {
    if s.n == 0 || !s.mean.is_finite() {
        "–".into()
    } else {
        format!("{:.digits$} ± {:.digits$}", s.mean, s.sd)
    }
}

/// The summary table (method × noise level) as Markdown.
pub fn summary_table(summary: &DemoSummary) -> String {
    let mut s = String::from(
        "| Method | Noise (HU) | Dice | MAD (mm) | HD95 (mm) | Dice near defect | MAD near defect (mm) |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
    );
    for m in &summary.summaries {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            if m.method == "msdnet" { "MSDnet" } else { "threshold 300 HU" },
            m.noise_hu.map(|n| format!("{n:.0}")).unwrap_or_else(|| "all".into()),
            pm(&m.dice, 3),
            pm(&m.mad_mm, 2),
            pm(&m.hd95_mm, 2),
            pm(&m.defect_dice, 3),
            pm(&m.defect_mad_mm, 2),
        ));
    }
    s
}

fn to_markdown(summary: &DemoSummary, reports: &[Report; 2]) -> String {
    let t = &summary.training;
    let a = &summary.acceptance;
    let mut s = String::from("# msd demo: MSDnet vs the threshold baseline on synthetic head CTs\n\n");
    s.push_str(&format!(
        "Trained on {} phantoms: depth {}, {} epochs (best {}), stopped by {}, {:.0} s.\n\n",
        t.cases,
        t.depth,
        t.epochs,
        t.best_epoch.map(|e| e.to_string()).unwrap_or_else(|| "-".into()),
        t.stop_reason,
        t.seconds
    ));
    s.push_str(&summary_table(summary));
    s.push_str(&format!(
        "\nAcceptance: MSDnet Dice {:.3} (≥ {:.2}), at the higher noise MSDnet {:.3} vs threshold {:.3}: {}\n",
        a.msdnet_dice,
        a.min_dice,
        a.msdnet_dice_high_noise,
        a.threshold_dice_high_noise,
        if a.passed { "PASSED" } else { "FAILED" }
    ));
    for (title, r) in [("MSDnet", &reports[0]), ("Threshold baseline", &reports[1])] {
        s.push_str(&format!("\n## {title}, per case\n\n"));
        s.push_str(&r.to_markdown());
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases_alternate_noise_defects_and_metal() {
        let c = DemoConfig::quick();
        let noise: Vec<f64> = (0..4).map(|i| c.case(i).1.noise_hu).collect();
        assert_eq!(noise, vec![20.0, 80.0, 20.0, 80.0]);
        let defects: Vec<f64> = (0..4).map(|i| c.case(i).1.craniectomy_probability).collect();
        assert_eq!(defects, vec![1.0, 1.0, 0.0, 0.0]);
        assert!(c.case(3).1.metal && !c.case(2).1.metal);
        assert_ne!(c.case(0).0, c.case(1).0);
    }

    #[test]
    fn an_empty_demo_is_refused() {
        let mut c = DemoConfig::quick();
        c.test_cases = 0;
        let dir = tempfile::tempdir().unwrap();
        assert!(run(&c, dir.path(), |_| {}).is_err());
    }

    /// A miniature demo run: every file is written and the report is consistent.
    #[test]
    fn a_tiny_demo_writes_its_report_stls_and_previews() {
        let mut config = DemoConfig::quick();
        config.train_cases = 2;
        config.test_cases = 2;
        config.train.network = msd::net::MsdConfig::new(4, 1, 1, 2);
        config.train.epochs = 1;
        let dir = tempfile::tempdir().unwrap();
        let mut events = 0;
        let summary = run(&config, dir.path(), |_| events += 1).unwrap();
        assert!(events > 4);
        assert_eq!(summary.cases.len(), 2);
        for file in &summary.files {
            assert!(dir.path().join(file).is_file(), "{}", file.display());
        }
        assert!(summary.files.iter().any(|f| f.extension().is_some_and(|e| e == "stl")));
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap()).unwrap();
        let a = &json["acceptance"];
        assert_eq!(a["passed"].as_bool().unwrap(), summary.acceptance.passed);
        let thr = a["threshold_dice_high_noise"].as_f64().unwrap();
        assert!(thr > 0.5 && thr < 1.0, "{thr}");
        let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
        assert!(md.contains("| MSDnet | all |") && md.contains("threshold 300 HU"), "{md}");
        // The HTML report: both test cases in the 3D view's data, two pictures each, both tables.
        let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
        assert!(summary.files.iter().any(|f| f.as_os_str() == "report.html"));
        assert_eq!(html.matches("data:image/png;base64,").count(), 4);
        assert!(html.contains("\"name\":\"test01\"") && html.contains("\"name\":\"test02\""));
        assert!(html.contains("Study table: MSDnet") && html.contains("Study table: Threshold 300 HU"));
    }
}
