//! A miniature demo run: every file is written and the report is consistent.
use msd::demo::{DemoConfig, run};

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
