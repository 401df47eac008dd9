//! Acceptance: every series of the DICOM conformance set (real files from dcm2niix's validation
//! suites) read and matched against `manifest.json`: shape, spacing, origin and direction within
//! 1e-3 mm (1e-4 for direction cosines), value statistics and probe voxels exact, slice means and the
//! intensity centroid in LPS. One runner, two data sets: the full set in `../shared/data` and the
//! small subset kept in `tests/data` (with its licence) so the test runs everywhere.
#![allow(clippy::needless_range_loop)] // index loops over 3-vectors read like the formulas
use std::path::{Path, PathBuf};

use msd_io::dicom::{ReadOptions, Resampling};
use serde_json::Value;

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn vec3(v: &Value) -> [f64; 3] {
    let a = v.as_array().unwrap();
    [f(&a[0]), f(&a[1]), f(&a[2])]
}

fn mat3(v: &Value) -> [[f64; 3]; 3] {
    let a = v.as_array().unwrap();
    [vec3(&a[0]), vec3(&a[1]), vec3(&a[2])]
}

struct Stats {
    min: f64,
    max: f64,
    mean: f64,
    std: f64,
    slice_means: Vec<f64>,
    centroid: [f64; 3],
}

fn stats(v: &msd_io::Volume<f32>) -> Stats {
    let d = v.data();
    let n = d.len() as f64;
    let min = d.iter().map(|&x| f64::from(x)).fold(f64::INFINITY, f64::min);
    let max = d.iter().map(|&x| f64::from(x)).fold(f64::NEG_INFINITY, f64::max);
    let mean = d.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
    let std = (d.iter().map(|&x| (f64::from(x) - mean).powi(2)).sum::<f64>() / n).sqrt();
    let slice_means =
        d.outer_iter().map(|s| s.iter().map(|&x| f64::from(x)).sum::<f64>() / s.len() as f64).collect();
    let (mut w, mut c) = (0.0, [0.0; 3]);
    for ((z, y, x), &val) in d.indexed_iter() {
        let weight = f64::from(val) - min;
        if weight != 0.0 {
            let p = v.geometry().index_to_world([x as f64, y as f64, z as f64]);
            for k in 0..3 {
                c[k] += weight * p[k];
            }
            w += weight;
        }
    }
    Stats { min, max, mean, std, slice_means, centroid: c.map(|ck| ck / w) }
}

struct Checker {
    id: String,
    failures: Vec<String>,
}

impl Checker {
    fn close(&mut self, what: &str, got: f64, want: f64, tol: f64) {
        if (got - want).abs() > tol || got.is_nan() {
            self.failures.push(format!("{}: {what}: got {got}, expected {want} (±{tol})", self.id));
        }
    }
    fn rel(&mut self, what: &str, got: f64, want: f64, tol: f64) {
        self.close(what, got, want, tol * want.abs().max(1.0));
    }
}

fn is_jpeg_ls(series: &Value) -> bool {
    series["transfer_syntax_uids"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t.as_str().unwrap().starts_with("1.2.840.10008.1.2.4.8"))
}

/// Runs every series of `root/manifest.json`; returns one line per failed check and a summary.
fn run(root: &Path) -> (Vec<String>, Vec<String>) {
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("manifest.json")).unwrap()).unwrap();
    let mut failures = Vec::new();
    let mut summary = Vec::new();
    let mut volumes = std::collections::HashMap::new();
    for series in manifest["series"].as_array().unwrap() {
        let id = series["id"].as_str().unwrap().to_string();
        let input = root.join(series["input"].as_str().unwrap());
        let mut c = Checker { id: id.clone(), failures: Vec::new() };
        let result = msd_io::dicom::read_series(&input, &ReadOptions::default());
        if series["input_kind"] == "nonvolume" {
            match result {
                Err(msd_io::Error::NotAVolume { what, .. }) => {
                    summary.push(format!("{id}: refused as not a volume ({what:.80})"))
                }
                other => failures
                    .push(format!("{id}: expected NotAVolume, got {:?}", other.map(|s| s.volume.shape()))),
            }
            continue;
        }
        if is_jpeg_ls(series) && !cfg!(feature = "jpeg-ls") {
            match result {
                Err(e @ msd_io::Error::Dicom { .. }) if e.to_string().contains("1.2.840.10008.1.2.4.8") => {
                    summary.push(format!(
                        "{id}: JPEG-LS refused with a typed error (build without the `jpeg-ls` feature)"
                    ));
                }
                other => failures.push(format!(
                    "{id}: expected a JPEG-LS decoding error, got {:?}",
                    other.map(|s| s.volume.shape())
                )),
            }
            continue;
        }
        let sv = match result {
            Ok(sv) => sv,
            Err(e) => {
                failures.push(format!("{id}: read failed: {e}"));
                continue;
            }
        };
        let v = &sv.volume;
        let g = v.geometry();
        let st = stats(v);
        let centroid = vec3(&series["centroid_lps_mm"]);
        if series["gantry_tilt"]["present"].as_bool() == Some(true) {
            // Resampled onto a regular grid: orthonormal, z along the normal, centroid kept.
            let ortho = &series["orthonormal_equivalent"];
            let want_dir = mat3(&ortho["direction_lps"]);
            for r in 0..3 {
                for k in 0..3 {
                    c.close(&format!("direction[{r}][{k}]"), g.direction()[r][k], want_dir[r][k], 1e-4);
                }
            }
            let sp = series["spacing_xyz_mm"].as_array().unwrap();
            c.close("spacing x", g.spacing()[0], f(&sp[0]), 1e-3);
            c.close("spacing y", g.spacing()[1], f(&sp[1]), 1e-3);
            c.close(
                "spacing z (along the normal)",
                g.spacing()[2],
                f(&ortho["spacing_z_along_normal_mm"]),
                1e-3,
            );
            for k in 0..3 {
                c.close(&format!("centroid[{k}] after tilt resampling"), st.centroid[k], centroid[k], 1.0);
            }
            if !sv.resampled_tilt {
                c.failures.push(format!("{id}: tilt not reported as resampled"));
            }
            c.close("tilt angle", sv.tilt_deg, 18.5, 0.05);
            c.close("min", st.min, f(&series["values"]["min"]), 0.0);
            if st.max > f(&series["values"]["max"]) {
                c.failures.push(format!("{id}: interpolation overshoots the maximum: {}", st.max));
            }
            // With resampling refused, the same series is a typed error.
            let refuse = ReadOptions { gantry_tilt: Resampling::Refuse, ..ReadOptions::default() };
            match msd_io::dicom::read_series(&input, &refuse) {
                Err(msd_io::Error::GantryTilt { angle_deg, .. }) => {
                    c.close("refused tilt angle", angle_deg, 18.5, 0.05)
                }
                other => c.failures.push(format!(
                    "{id}: expected GantryTilt with Refuse, got {:?}",
                    other.map(|s| s.volume.shape())
                )),
            }
            summary.push(format!(
                "{id}: gantry tilt {:.2}° resampled to {:?} (z along the normal, {:.4} mm); centroid {:?} vs {:?}",
                sv.tilt_deg,
                v.shape(),
                g.spacing()[2],
                st.centroid,
                centroid
            ));
            failures.extend(c.failures);
            continue;
        }
        let shape: Vec<usize> =
            series["shape_zyx"].as_array().unwrap().iter().map(|s| s.as_u64().unwrap() as usize).collect();
        if v.shape().as_slice() != shape.as_slice() {
            failures.push(format!("{id}: shape {:?}, expected {shape:?}", v.shape()));
            continue;
        }
        let sp = series["spacing_xyz_mm"].as_array().unwrap();
        for k in 0..3 {
            if !sp[k].is_null() {
                c.close(&format!("spacing[{k}]"), g.spacing()[k], f(&sp[k]), 1e-3);
            }
        }
        let origin = vec3(&series["origin_lps_mm"]);
        let dir = mat3(&series["direction_lps"]);
        for r in 0..3 {
            c.close(&format!("origin[{r}]"), g.origin()[r], origin[r], 1e-3);
            for k in 0..3 {
                c.close(&format!("direction[{r}][{k}]"), g.direction()[r][k], dir[r][k], 1e-4);
            }
        }
        let values = &series["values"];
        c.close("min", st.min, f(&values["min"]), 0.0);
        c.close("max", st.max, f(&values["max"]), 0.0);
        c.rel("mean", st.mean, f(&values["mean"]), 1e-6);
        c.rel("std", st.std, f(&values["std"]), 1e-6);
        for (z, want) in series["slice_means"].as_array().unwrap().iter().enumerate() {
            // The manifest rounds slice means to 4 decimals.
            c.close(&format!("slice_means[{z}]"), st.slice_means[z], f(want), 5.1e-5 + 1e-6 * f(want).abs());
        }
        for probe in series["probe_voxels"].as_array().unwrap() {
            let i: Vec<usize> =
                probe["index_zyx"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect();
            let got = f64::from(v.data()[[i[0], i[1], i[2]]]);
            c.close(&format!("probe {i:?}"), got, f(&probe["value"]), 0.0);
        }
        for k in 0..3 {
            c.close(&format!("centroid[{k}]"), st.centroid[k], centroid[k], 1e-3);
        }
        summary.push(format!("{id}: {:?} ok={}", v.shape(), c.failures.is_empty()));
        failures.extend(c.failures);
        volumes.insert(id, sv.volume);
    }
    for check in manifest["cross_checks"].as_array().unwrap() {
        let (a, b) = (check["a"].as_str().unwrap(), check["b"].as_str().unwrap());
        if let (Some(va), Some(vb)) = (volumes.get(a), volumes.get(b)) {
            let diff =
                va.data().iter().zip(vb.data().iter()).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
            if f64::from(diff) != f(&check["values_max_abs_diff"]) {
                failures.push(format!(
                    "cross-check {a} vs {b}: max difference {diff}, expected {}",
                    check["values_max_abs_diff"]
                ));
            }
        }
    }
    (failures, summary)
}

fn report(root: PathBuf) {
    let (failures, summary) = run(&root);
    for line in &summary {
        println!("{line}");
    }
    assert!(failures.is_empty(), "{} failed checks:\n{}", failures.len(), failures.join("\n"));
}

#[test]
#[cfg_attr(not(msd_shared_data), ignore = "needs ../shared/data")]
fn shared_conformance_set_matches_manifest() {
    report(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/dicom-conformance"));
}

#[test]
fn bundled_conformance_subset_matches_manifest() {
    report(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/dicom-conformance"));
}
