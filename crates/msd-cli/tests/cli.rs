//! The `msd` command run as a process in a temporary folder: every subcommand, and bad input that
//! must give a one-line error and a non-zero exit status, never a panic.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use msd::io::write_volume;
use msd::net::{Model, MsdConfig, Normalization};
use msd::phantom::{PhantomConfig, generate};

/// A temporary folder with a small phantom CT, its skull labels and its defect region in it.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = PhantomConfig::quick().with_craniectomy_probability(1.0);
        let head = generate(&config, 21).unwrap();
        write_volume(dir.path().join("ct.nii.gz"), &head.ct).unwrap();
        write_volume(dir.path().join("skull.nii.gz"), &head.skull).unwrap();
        write_volume(dir.path().join("region.nii.gz"), head.defect_region.as_ref().unwrap()).unwrap();
        Fixture { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn msd(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_msd")).args(args).current_dir(self.dir.path()).output().unwrap()
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
fn ok(o: &Output) -> String {
    assert!(o.status.success(), "failed: {}\n{}", stderr(o), stdout(o));
    stdout(o)
}

/// Asserts a clean failure: the given exit status, one `msd: ` line naming `needle`, no panic.
#[track_caller]
fn fails(o: &Output, code: i32, needle: &str) -> String {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    if code == 1 {
        let last = err.lines().last().unwrap_or("");
        assert!(last.starts_with("msd: "), "{err}");
    }
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
    err
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn usage_errors_exit_with_status_2() {
    let f = Fixture::new();
    fails(&f.msd(&["frobnicate"]), 2, "frobnicate");
    fails(&f.msd(&["threshold"]), 2, "<SCAN>");
    let o = f.msd(&["eval", "--pred", "skull.nii.gz", "--pred", "skull.nii.gz", "--ref", "skull.nii.gz"]);
    fails(&o, 2, "2 --pred but 1 --ref");
    ok(&f.msd(&["--help"]));
}

#[test]
fn version_names_the_cpu_kernels_and_whether_cuda_is_built_in() {
    let f = Fixture::new();
    let long = ok(&f.msd(&["--version"]));
    assert!(long.starts_with(&format!("msd {}", env!("CARGO_PKG_VERSION"))), "{long}");
    let kernels =
        long.lines().find_map(|l| l.strip_prefix("CPU kernels: ")).unwrap_or_else(|| panic!("{long}"));
    let isa = kernels.split_whitespace().next().unwrap_or_default();
    assert!(["avx512", "avx2", "scalar"].contains(&isa), "{long}");
    assert!(
        long.contains(if cfg!(feature = "cuda") { "CUDA: compiled in" } else { "CUDA: not compiled in" }),
        "{long}"
    );
    let inference = long
        .lines()
        .find_map(|l| l.strip_prefix("CPU inference: "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("{long}"));
    assert!(["amx-bf16", "avx512-bf16", "avx512", "avx2", "scalar"].contains(&inference), "{long}");
    let short = ok(&f.msd(&["-V"]));
    assert!(
        short.contains(&format!("(CPU kernels: {isa} training, {inference} inference; CUDA: ")),
        "{short}"
    );
    // Subcommands report the same version.
    assert!(ok(&f.msd(&["train", "--version"])).contains("CPU kernels: "));
}

#[test]
fn info_describes_volumes_and_meshes_as_text_and_json() {
    let f = Fixture::new();
    let text = ok(&f.msd(&["info", "ct.nii.gz"]));
    assert!(text.contains("72 × 88 × 48 voxels"), "{text}");
    let v = json(&ok(&f.msd(&["info", "ct.nii.gz", "--json"])));
    assert_eq!(v["kind"], "volume");
    assert_eq!(v["shape_zyx"], serde_json::json!([48, 88, 72]));
    assert_eq!(v["spacing_mm_xyz"][2], 2.0);
    assert!(v["hu_max"].as_f64().unwrap() > 1000.0);

    ok(&f.msd(&["mesh", "skull.nii.gz", "--out", "skull.stl"]));
    let m = json(&ok(&f.msd(&["info", "skull.stl", "--json"])));
    assert_eq!(m["kind"], "mesh");
    assert_eq!(m["watertight"], true);
    assert_eq!(m["components"], 1);
    assert!(m["enclosed_volume_ml"].as_f64().unwrap() > 10.0);
}

/// `--header-only` reads the grid from the header and decodes no voxel: it agrees with the full
/// read, leaves the values out, and succeeds on a file whose voxel data is cut short (#18).
#[test]
fn info_header_only_reads_no_voxel() {
    let f = Fixture::new();
    ok(&f.msd(&["convert", "ct.nii.gz", "ct.nii"]));
    ok(&f.msd(&["convert", "ct.nii.gz", "ct.nrrd"]));
    for name in ["ct.nii.gz", "ct.nii", "ct.nrrd"] {
        let full = json(&ok(&f.msd(&["info", name, "--json"])));
        let header = json(&ok(&f.msd(&["info", name, "--json", "--header-only"])));
        for key in ["kind", "shape_zyx", "spacing_mm_xyz", "origin_lps_mm", "direction", "extent_mm_xyz"] {
            assert_eq!(header[key], full[key], "{name} {key}");
        }
        assert!(full["hu_min"].is_number(), "{name}");
        assert!(header.get("hu_min").is_none() && header.get("hu_mean").is_none(), "{name}: {header}");
        let text = ok(&f.msd(&["info", name, "--header-only"]));
        assert!(text.contains("72 × 88 × 48 voxels") && !text.contains("values"), "{text}");
    }
    // Half the voxel data gone: the full read is a truncation error, the header alone still reads.
    let bytes = std::fs::read(f.path("ct.nii")).unwrap();
    std::fs::write(f.path("cut.nii"), &bytes[..bytes.len() / 2]).unwrap();
    fails(&f.msd(&["info", "cut.nii"]), 1, "cut.nii");
    let header = json(&ok(&f.msd(&["info", "cut.nii", "--json", "--header-only"])));
    assert_eq!(header["shape_zyx"], serde_json::json!([48, 88, 72]));
}

#[test]
fn missing_and_corrupt_files_are_clear_errors() {
    let f = Fixture::new();
    fails(&f.msd(&["info", "nowhere.nii.gz"]), 1, "nowhere.nii.gz");
    fails(&f.msd(&["info", "nowhere.stl"]), 1, "nowhere.stl");
    std::fs::write(f.path("junk.nii"), b"this is not a NIfTI file").unwrap();
    fails(&f.msd(&["info", "junk.nii"]), 1, "junk.nii");
    std::fs::write(f.path("junk.stl"), b"solid x\nfacet normal 0 0 1\n").unwrap();
    fails(&f.msd(&["mesh", "nowhere.nii.gz", "--out", "x.stl"]), 1, "nowhere.nii.gz");
    fails(&f.msd(&["label", "junk.stl", "--like", "ct.nii.gz", "--out", "l.nii.gz"]), 1, "junk.stl");
    fails(
        &f.msd(&["segment", "--model", "none.safetensors", "--input", "ct.nii.gz", "--out", "s.nii.gz"]),
        1,
        "none.safetensors",
    );
    assert!(!f.path("s.nii.gz").exists());
}

#[test]
fn convert_keeps_the_geometry() {
    let f = Fixture::new();
    ok(&f.msd(&["convert", "ct.nii.gz", "ct.nrrd"]));
    let a = json(&ok(&f.msd(&["info", "ct.nii.gz", "--json"])));
    let b = json(&ok(&f.msd(&["info", "ct.nrrd", "--json"])));
    for key in ["shape_zyx", "spacing_mm_xyz", "origin_lps_mm", "direction", "hu_min", "hu_max"] {
        assert_eq!(a[key], b[key], "{key}");
    }
    ok(&f.msd(&["convert", "--labels", "skull.nii.gz", "skull.nrrd"]));
    let o = f.msd(&["eval", "--pred", "skull.nrrd", "--ref", "skull.nii.gz", "--no-surface", "--json", "-"]);
    let r = json(&ok(&o));
    assert_eq!(r["cases"][0]["dice"], 1.0);
    assert_eq!(r["dice"], 1.0);
}

#[test]
fn threshold_mesh_label_and_eval_make_a_report() {
    let f = Fixture::new();
    ok(&f.msd(&["threshold", "ct.nii.gz", "--hu", "300", "--out", "thr.nii.gz"]));
    ok(&f.msd(&["threshold", "ct.nii.gz", "--largest", "--out", "thr_largest.nii.gz"]));
    ok(&f.msd(&["mesh", "skull.nii.gz", "--out", "ref.stl"]));
    ok(&f.msd(&["mesh", "skull.nii.gz", "--out", "smooth.stl", "--smooth", "10", "--decimate", "5000"]));
    let smooth = json(&ok(&f.msd(&["info", "smooth.stl", "--json"])));
    assert!(smooth["triangles"].as_u64().unwrap() <= 5000);
    assert_eq!(smooth["closed"], true);
    ok(&f.msd(&["label", "ref.stl", "--like", "ct.nii.gz", "--out", "ref_back.nii.gz"]));
    let back = json(&ok(&f.msd(&[
        "eval",
        "--pred",
        "ref_back.nii.gz",
        "--ref",
        "skull.nii.gz",
        "--no-surface",
        "--json",
        "-",
    ])));
    assert!(back["dice"].as_f64().unwrap() > 0.999);

    let o = f.msd(&[
        "eval",
        "--pred",
        "thr.nii.gz",
        "--ref",
        "skull.nii.gz",
        "--pred",
        "thr_largest.nii.gz",
        "--ref",
        "ref.stl",
        "--region",
        "region.nii.gz",
        "--json",
        "report.json",
        "--csv",
        "report.csv",
        "--html",
        "report.html",
    ]);
    let table = ok(&o);
    assert!(table.contains("| thr |"), "{table}");
    // The HTML report: both cases, a deviation picture each, the meshes and the viewer inlined.
    let html = std::fs::read_to_string(f.path("report.html")).unwrap();
    assert!(html.contains("<td>thr</td>") && html.contains("<td>thr_largest</td>"));
    // A deviation render and a deviation histogram per case.
    assert_eq!(html.matches("data:image/png;base64,").count(), 4);
    assert!(
        html.contains("id=\"msd-data\"") && html.contains("OrbitControls") && !html.contains("src=\"http")
    );
    let r = json(&std::fs::read_to_string(f.path("report.json")).unwrap());
    let case = &r["cases"][0];
    for key in ["dice", "mad_mm", "hd95_mm"] {
        assert!(case[key].as_f64().is_some(), "{key}: {case}");
        assert!(r[key].as_f64().is_some(), "top-level {key}");
    }
    let dice = case["dice"].as_f64().unwrap();
    assert!(dice > 0.5 && dice < 1.0, "{dice}");
    assert!(case["region"]["dice"].as_f64().is_some() && case["region"]["mad_mm"].as_f64().is_some());
    assert!(r["region"]["dice"].as_f64().is_some() && r["region"]["mad_mm"].as_f64().is_some());
    // A mesh reference has no Dice, but has surface distances.
    assert!(r["cases"][1]["dice"].is_null());
    assert!(r["cases"][1]["mad_mm"].as_f64().is_some());
    assert!(std::fs::read_to_string(f.path("report.csv")).unwrap().lines().count() >= 3);
}

/// An open box: a cube with its top face missing.
fn write_open_box(path: &Path) {
    let v: Vec<[f32; 3]> = (0..8)
        .map(|i| [(i & 1) as f32 * 20.0, ((i >> 1) & 1) as f32 * 20.0, ((i >> 2) & 1) as f32 * 20.0])
        .collect();
    let faces: [[u32; 3]; 10] = [
        [0, 2, 1],
        [1, 2, 3],
        [0, 1, 5],
        [0, 5, 4],
        [2, 6, 7],
        [2, 7, 3],
        [0, 4, 6],
        [0, 6, 2],
        [1, 3, 7],
        [1, 7, 5],
    ];
    let mesh = msd::geom::Mesh::new(v, faces.to_vec()).unwrap();
    msd::geom::write_mesh(path, &mesh).unwrap();
}

#[test]
fn an_open_mesh_is_refused_for_labelling_unless_allowed() {
    let f = Fixture::new();
    write_open_box(&f.path("open.stl"));
    fails(&f.msd(&["label", "open.stl", "--like", "ct.nii.gz", "--out", "l.nii.gz"]), 1, "not a closed mesh");
    assert!(!f.path("l.nii.gz").exists());
    let m = json(&ok(&f.msd(&["info", "open.stl", "--json"])));
    assert_eq!(m["closed"], false);
}

#[test]
fn eval_refuses_volumes_on_different_grids() {
    let f = Fixture::new();
    let other = generate(&PhantomConfig::quick().with_noise(0.0), 1).unwrap();
    let shifted = msd::io::Volume::new(
        other.skull.data().clone(),
        other.skull.geometry().with_origin([5.0, 0.0, 0.0]).unwrap(),
    )
    .unwrap();
    write_volume(f.path("shifted.nii.gz"), &shifted).unwrap();
    fails(&f.msd(&["eval", "--pred", "shifted.nii.gz", "--ref", "skull.nii.gz", "--no-surface"]), 1, "grid");
}

#[test]
fn train_then_segment_with_mesh_and_previews() {
    let f = Fixture::new();
    ok(&f.msd(&["mesh", "skull.nii.gz", "--out", "ref.stl"]));
    let o = f.msd(&[
        "train",
        "--ct",
        "ct.nii.gz",
        "--labels",
        "skull.nii.gz",
        "--ct",
        "ct.nii.gz",
        "--meshes",
        "ref.stl",
        "--out",
        "model.safetensors",
        "--epochs",
        "1",
        "--depth",
        "4",
        "--patch",
        "32",
        "--seed",
        "3",
        "--scale-jitter",
        "0.2",
    ]);
    ok(&o);
    assert!(stderr(&o).contains("epoch"), "{}", stderr(&o));
    assert!(stderr(&o).contains("backend cpu-"), "{}", stderr(&o));
    for file in ["model.safetensors", "model.loss.csv", "model.loss.png"] {
        assert!(f.path(file).exists(), "{file}");
    }
    assert!(!f.path("model.safetensors.checkpoint").exists());
    let o = f.msd(&[
        "segment",
        "--model",
        "model.safetensors",
        "--input",
        "ct.nii.gz",
        "--out",
        "seg.nii.gz",
        "--mesh",
        "seg.stl",
        "--preview",
        "previews",
        "--reference",
        "skull.nii.gz",
        "--probabilities",
        "prob.nii.gz",
    ]);
    ok(&o);
    assert!(stderr(&o).contains("backend cpu-"), "{}", stderr(&o));
    for file in [
        "seg.nii.gz",
        "seg.stl",
        "prob.nii.gz",
        "previews/seg_axial.png",
        "previews/seg_coronal.png",
        "previews/seg_sagittal.png",
    ] {
        assert!(f.path(file).exists(), "{file}");
    }
    let seg = json(&ok(&f.msd(&["info", "seg.nii.gz", "--json"])));
    assert_eq!(seg["shape_zyx"], serde_json::json!([48, 88, 72]));
}

#[test]
fn a_slab_model_trains_and_segments_from_the_command_line() {
    let f = Fixture::new();
    let o = f.msd(&[
        "train",
        "--ct",
        "ct.nii.gz",
        "--labels",
        "skull.nii.gz",
        "--out",
        "slab.safetensors",
        "--channels",
        "3",
        "--epochs",
        "1",
        "--depth",
        "3",
        "--patch",
        "24",
        "--scale-jitter",
        "0",
    ]);
    let err = stderr(&o);
    ok(&o);
    assert!(err.contains("3 input channel(s)"), "{err}");
    let model = Model::load(f.path("slab.safetensors")).unwrap();
    assert_eq!(model.config.input_channels, 3);
    assert!(model.provenance["augmentation"].contains("\"scale_range\":0.0"), "{:?}", model.provenance);
    let o = f.msd(&["segment", "--model", "slab.safetensors", "--input", "ct.nii.gz", "--out", "seg.nii.gz"]);
    ok(&o);
    let seg = json(&ok(&f.msd(&["info", "seg.nii.gz", "--json"])));
    assert_eq!(seg["shape_zyx"], serde_json::json!([48, 88, 72]));
    fails(
        &f.msd(&["train", "--ct", "ct.nii.gz", "--labels", "skull.nii.gz", "--out", "x", "--channels", "2"]),
        2,
        "odd",
    );
}

#[test]
fn training_through_candles_autograd_is_one_flag_away() {
    let f = Fixture::new();
    let args = ["train", "--ct", "ct.nii.gz", "--labels", "skull.nii.gz", "--out", "candle.safetensors"];
    let small = ["--epochs", "1", "--depth", "3", "--patch", "24", "--engine", "candle"];
    let o = f.msd(&[&args[..], &small[..]].concat());
    let err = stderr(&o);
    ok(&o);
    assert!(err.contains("backend candle-cpu-"), "{err}");
    let model = Model::load(f.path("candle.safetensors")).unwrap();
    assert!(model.provenance["backend"].starts_with("candle-cpu-"), "{:?}", model.provenance);
    fails(&f.msd(&[&args[..], &["--engine", "gpu"][..]].concat()), 2, "gpu");
}

#[test]
fn train_needs_a_target_per_ct_and_a_resume_flag_for_a_checkpoint() {
    let f = Fixture::new();
    let o = f.msd(&[
        "train",
        "--ct",
        "ct.nii.gz",
        "--ct",
        "ct.nii.gz",
        "--labels",
        "skull.nii.gz",
        "--out",
        "m.safetensors",
    ]);
    fails(&o, 2, "2 --ct but 1 --labels/--meshes");
    for bad in ["1", "-0.1", "NaN"] {
        let o = f.msd(&[
            "train",
            "--ct",
            "ct.nii.gz",
            "--labels",
            "skull.nii.gz",
            "--out",
            "m.safetensors",
            "--scale-jitter",
            bad,
        ]);
        fails(&o, 2, "--scale-jitter");
    }
    std::fs::write(f.path("m.safetensors.checkpoint"), b"partial").unwrap();
    let o = f.msd(&["train", "--ct", "ct.nii.gz", "--labels", "skull.nii.gz", "--out", "m.safetensors"]);
    fails(&o, 1, "--resume");
    // A label volume on another grid than its CT.
    let other = generate(&PhantomConfig::quick().with_noise(0.0), 1).unwrap();
    let cropped = msd::io::Volume::new(
        other.skull.data().slice(ndarray::s![..40, .., ..]).to_owned(),
        *other.skull.geometry(),
    )
    .unwrap();
    write_volume(f.path("cropped.nii.gz"), &cropped).unwrap();
    let o = f.msd(&[
        "train",
        "--ct",
        "ct.nii.gz",
        "--labels",
        "cropped.nii.gz",
        "--out",
        "n.safetensors",
        "--epochs",
        "1",
    ]);
    fails(&o, 1, "cropped.nii.gz");
}

#[test]
fn a_model_whose_metadata_does_not_fit_its_tensors_is_refused() {
    let f = Fixture::new();
    // A model for 3 input channels, relabelled as a 1-channel model: its weights no longer fit.
    let norm = Normalization::new(Normalization::DEFAULT_WINDOW_HU, 0.0, 1.0).unwrap();
    let model = Model::new(MsdConfig::new(3, 1, 3, 2), norm, 0).unwrap();
    let path = f.path("three.safetensors");
    model.save(&path).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let at = text.find("input_channels\\\":3").expect("the metadata names the input channels");
    let digit = at + "input_channels\\\":".len();
    bytes[digit] = b'1';
    std::fs::write(&path, &bytes).unwrap();
    let o = f.msd(&["segment", "--model", "three.safetensors", "--input", "ct.nii.gz", "--out", "s.nii.gz"]);
    fails(&o, 1, "three.safetensors");
    assert!(!f.path("s.nii.gz").exists());
    // A truncated model file.
    std::fs::write(f.path("cut.safetensors"), &bytes[..bytes.len() / 2]).unwrap();
    fails(
        &f.msd(&["segment", "--model", "cut.safetensors", "--input", "ct.nii.gz", "--out", "s.nii.gz"]),
        1,
        "cut.safetensors",
    );
}

#[test]
fn demo_rejects_an_unwritable_output_folder() {
    let f = Fixture::new();
    std::fs::write(f.path("file"), b"x").unwrap();
    fails(&f.msd(&["demo", "--quick", "--out", "file/sub"]), 1, "file/sub");
}

fn shared(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data").join(path)
}

#[test]
#[cfg_attr(not(msd_shared_data), ignore = "needs ../shared/data")]
fn dicom_series_are_listed_and_one_is_picked_by_uid() {
    let f = Fixture::new();
    let folder = shared("dicom-conformance/dcm_qa_ct");
    let folder = folder.to_str().unwrap();
    let info = json(&ok(&f.msd(&["info", folder, "--json"])));
    assert_eq!(info["kind"], "dicom");
    let series = info["series"].as_array().unwrap();
    assert!(series.len() >= 2);
    let brain = series.iter().find(|s| s["description"] == "STD BRAIN 5MM").expect("the 5 mm brain series");
    let uid = brain["uid"].as_str().unwrap();
    assert_ne!(info["default_series"].as_str(), Some(uid));
    ok(&f.msd(&["convert", folder, "brain.nii.gz", "--series", uid]));
    let v = json(&ok(&f.msd(&["info", "brain.nii.gz", "--json"])));
    assert_eq!(v["shape_zyx"][0], brain["slices"]);
    fails(&f.msd(&["convert", folder, "x.nii.gz", "--series", "1.2.3.4"]), 1, "1.2.3.4");
}

#[test]
#[cfg_attr(not(msd_shared_data), ignore = "needs ../shared/data")]
fn cthead_meshes_label_and_evaluate_like_the_reference() {
    let f = Fixture::new();
    let data = shared("cthead");
    let p = |name: &str| data.join(name).to_str().unwrap().to_string();
    ok(&f.msd(&["label", &p("skull_ref.stl"), "--like", &p("ct.nii.gz"), "--out", "ref.nii.gz"]));
    let o = f.msd(&[
        "eval",
        "--pred",
        &p("skull_defect_ref.nii.gz"),
        "--ref",
        &p("skull_ref.nii.gz"),
        "--region",
        &p("defect_region.nii.gz"),
        "--pred",
        "ref.nii.gz",
        "--ref",
        &p("skull_ref.nii.gz"),
        "--no-surface",
        "--json",
        "-",
    ]);
    let r = json(&ok(&o));
    let defect = r["cases"][0]["dice"].as_f64().unwrap();
    assert!((defect - 0.980).abs() < 0.002, "{defect}");
    let near = r["cases"][0]["region"]["dice"].as_f64().unwrap();
    assert!((near - 0.77).abs() < 0.01, "{near}");
    assert!(r["cases"][1]["dice"].as_f64().unwrap() > 0.99);
}

/// A synthetic skull (2.5 mm voxels) with a 50 mm craniectomy on the right parietal bone, written
/// as `defect.nii.gz`, and the removed bone as `removed.nii.gz`.
fn implant_fixture() -> tempfile::TempDir {
    use msd_implant::synthetic::{ShellSpec, cut_sphere, grid_for, skull_shell};
    let dir = tempfile::tempdir().unwrap();
    let spec = ShellSpec::default();
    let (g, shape) = grid_for(&spec, [2.5; 3], msd::io::Geometry::IDENTITY).unwrap();
    let skull = skull_shell(&spec, g, shape).unwrap();
    let (defect, removed) = cut_sphere(&skull, spec.outer_point([-0.7, 0.2, 0.7]), 25.0).unwrap();
    write_volume(dir.path().join("defect.nii.gz"), &defect).unwrap();
    write_volume(dir.path().join("removed.nii.gz"), &removed).unwrap();
    write_volume(dir.path().join("complete.nii.gz"), &skull).unwrap();
    dir
}

fn msd_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_msd")).args(args).current_dir(dir).output().unwrap()
}

#[test]
fn implant_writes_a_label_and_a_watertight_mesh() {
    let dir = implant_fixture();
    let o = msd_in(
        dir.path(),
        &["implant", "--skull", "defect.nii.gz", "--out", "implant.nii.gz", "--mesh", "implant.stl"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("method: mirror"), "{text}");
    assert!(text.contains(" ml"), "{text}");
    let implant = msd::io::read_labels(dir.path().join("implant.nii.gz")).unwrap();
    let removed = msd::io::read_labels(dir.path().join("removed.nii.gz")).unwrap();
    assert!(msd_implant::overlap_dice(&implant, &removed).unwrap() > 0.8);
    let mesh = msd::geom::read_mesh(dir.path().join("implant.stl")).unwrap();
    assert!(mesh.check().is_watertight());
    // Forced patch, with a clearance.
    let o = msd_in(
        dir.path(),
        &[
            "implant",
            "--skull",
            "defect.nii.gz",
            "--out",
            "patch.nii.gz",
            "--method",
            "patch",
            "--clearance",
            "1",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("method: patch (patch forced)"), "{}", stdout(&o));
}

#[test]
fn implant_bad_input_fails_in_one_line_and_writes_nothing() {
    let dir = implant_fixture();
    let cases: [(&[&str], i32, &str); 4] = [
        (
            &["implant", "--skull", "complete.nii.gz", "--out", "x.nii.gz", "--mesh", "x.stl"],
            1,
            "no defect found",
        ),
        (&["implant", "--out", "x.nii.gz"], 2, "--ct CT [--model M]"),
        (&["implant", "--skull", "defect.nii.gz", "--out", "x.nii.gz", "--point", "1,2"], 2, "three numbers"),
        (
            &["implant", "--skull", "defect.nii.gz", "--out", "x.nii.gz", "--point", "0,0,-400"],
            1,
            "not near any opening",
        ),
    ];
    for (args, code, message) in cases {
        let o = msd_in(dir.path(), args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {err}");
        assert!(err.contains(message), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(!dir.path().join("x.nii.gz").exists() && !dir.path().join("x.stl").exists());
    }
}

/// Number of non-zero voxels of a label file.
fn labelled(path: &Path) -> usize {
    msd::io::read_labels(path).unwrap().data().iter().filter(|&&v| v != 0).count()
}

#[test]
#[cfg_attr(not(msd_shared_data), ignore = "needs ../shared/data")]
fn segment_needs_nothing_but_the_scan_in_any_format() {
    // A real scanner's CT series (a head phantom, 5 mm slices): DICOM, then NIfTI and NRRD of it.
    let f = Fixture::new();
    let series = shared("dicom-conformance/dcm_qa_ct/In/Philips/S21570/S2010");
    let series = series.to_str().unwrap();
    let out = ok(&f.msd(&["segment", series, "--out", "dicom.nii.gz", "--mesh", "dicom.stl"]));
    assert!(out.is_empty(), "results go to stderr unless asked: {out}");
    let n = labelled(&f.path("dicom.nii.gz"));
    assert!(n > 1000, "{n} skull voxels");
    let mesh = msd::geom::read_mesh(f.path("dicom.stl")).unwrap();
    assert!(mesh.check().is_watertight());
    assert_eq!(mesh.check().components, 1, "the clean-up keeps one piece of bone");
    ok(&f.msd(&["convert", series, "ct.nii.gz"]));
    ok(&f.msd(&["convert", series, "ct.nrrd"]));
    for input in ["ct.nii.gz", "ct.nrrd"] {
        ok(&f.msd(&["segment", input, "--out", "again.nii.gz"]));
        let a = msd::io::read_labels(f.path("again.nii.gz")).unwrap();
        let b = msd::io::read_labels(f.path("dicom.nii.gz")).unwrap();
        assert_eq!(a.data(), b.data(), "{input} segments like the DICOM series");
    }
    // The clean-up leaves one 26-connected piece of bone; without it the network's output stays.
    ok(&f.msd(&["segment", series, "--out", "raw.nii.gz", "--no-cleanup"]));
    let pieces = |name: &str| {
        let l = msd::io::read_labels(f.path(name)).unwrap();
        msd::geom::label_components(&l, msd::geom::Connectivity::TwentySix).count()
    };
    assert_eq!(pieces("dicom.nii.gz"), 1);
    assert!(pieces("raw.nii.gz") >= 1);
    fails(
        &f.msd(&["segment", series, "--out", "x.nii.gz", "--no-cleanup", "--keep-above", "10"]),
        2,
        "--keep-above",
    );
    fails(&f.msd(&["segment", series, "--out", "x.nii.gz", "--fill-cavities", "-1"]), 2, "--fill-cavities");
    fails(&f.msd(&["segment", "--out", "x.nii.gz"]), 2, "SCAN");
}

#[test]
#[cfg_attr(not(msd_shared_data), ignore = "needs ../shared/data")]
fn a_tilted_series_is_refused_until_resample_is_given() {
    let f = Fixture::new();
    let tilted = shared("dicom-conformance/dcm_qa_ct/In/Philips/S21610/S2010");
    let tilted = tilted.to_str().unwrap();
    fails(&f.msd(&["convert", tilted, "x.nii.gz"]), 1, "--resample");
    assert!(!f.path("x.nii.gz").exists());
    let text = ok(&f.msd(&["info", tilted]));
    assert!(text.contains("--resample"), "{text}");
    let info = json(&ok(&f.msd(&["info", tilted, "--json", "--resample"])));
    assert_eq!(info["resampled"], true);
    ok(&f.msd(&["convert", tilted, "tilt.nii.gz", "--resample"]));
    let v = json(&ok(&f.msd(&["info", "tilt.nii.gz", "--json"])));
    assert_eq!(v["shape_zyx"], info["volume"]["shape_zyx"]);
    fails(&f.msd(&["segment", tilted, "--out", "seg.nii.gz"]), 1, "--resample");
    assert!(!f.path("seg.nii.gz").exists());
}

/// Hand-computed implant scores. Grid 8 × 4 × 6 voxels (x, y, z), spacing 1 × 1 × 2 mm. The
/// defective skull is the slab z = 2, x < 3; the true implant continues it (z = 2, 3 ≤ x < 8: 20
/// voxels); the prediction adds the layer above (z = 3, 3 ≤ x < 8: 40 voxels).
/// - Dice = 2·20 / (20 + 40) = 2/3.
/// - The rim is the true implant's column x = 3 at z = 2; a 2.5 mm band holds x = 1..5 at z = 2
///   and x = 2..4 at z = 3 (2 mm up, √(4 + 1) ≤ 2.5). In it: 12 true voxels (x = 3, 4, 5), 20
///   predicted (those and x = 3, 4 at z = 3), 12 shared: boundary Dice = 24 / 32 = 0.75.
/// - HD95: the 20 upper-layer voxels lie 2 mm from the truth, the other 40 boundary voxels at 0:
///   a third of the distances are 2 mm, so HD95 = 2 mm.
fn implant_eval_fixture() -> tempfile::TempDir {
    use ndarray::Array3;
    let dir = tempfile::tempdir().unwrap();
    let g = msd::io::Geometry::new([1.0, 1.0, 2.0], [0.0; 3], msd::io::Geometry::IDENTITY).unwrap();
    let volume = |f: &dyn Fn(usize, usize) -> bool| {
        msd::io::LabelVolume::new(Array3::from_shape_fn((6, 4, 8), |(z, _, x)| u8::from(f(z, x))), g).unwrap()
    };
    let write = |name: &str, v: &msd::io::LabelVolume| write_volume(dir.path().join(name), v).unwrap();
    write("skull.nii.gz", &volume(&|z, x| z == 2 && x < 3));
    write("truth.nii.gz", &volume(&|z, x| z == 2 && x >= 3));
    write("pred.nii.gz", &volume(&|z, x| (z == 2 || z == 3) && x >= 3));
    // The same 2.5 mm band, given as a mask.
    write(
        "band.nii.gz",
        &volume(&|z, x| (z == 2 && (1..=5).contains(&x)) || (z == 3 && (2..=4).contains(&x))),
    );
    let shifted =
        msd::io::Geometry::new([1.0, 1.0, 2.0], [5.0, 0.0, 0.0], msd::io::Geometry::IDENTITY).unwrap();
    let skull = volume(&|z, x| z == 2 && x < 3);
    write("shifted_skull.nii.gz", &msd::io::LabelVolume::new(skull.data().clone(), shifted).unwrap());
    dir
}

#[test]
fn eval_implant_gives_the_autoimplant_scores() {
    let dir = implant_eval_fixture();
    let close = |v: &serde_json::Value, want: f64| {
        let got = v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"));
        assert!((got - want).abs() < 1e-9, "{got} != {want}");
    };
    // Two cases: the prediction above, and the truth against itself (1, 1, 0 mm).
    let o = msd_in(
        dir.path(),
        &[
            "eval",
            "--implant",
            "--pred",
            "pred.nii.gz",
            "--ref",
            "truth.nii.gz",
            "--pred",
            "truth.nii.gz",
            "--ref",
            "truth.nii.gz",
            "--skull",
            "skull.nii.gz",
            "--band-mm",
            "2.5",
            "--json",
            "-",
        ],
    );
    let r = json(&ok(&o));
    let case = &r["cases"][0];
    assert_eq!(case["case"], "pred");
    close(&case["dice"], 2.0 / 3.0);
    close(&case["boundary_dice"], 0.75);
    close(&case["hd95_mm"], 2.0);
    let same = &r["cases"][1];
    close(&same["dice"], 1.0);
    close(&same["boundary_dice"], 1.0);
    close(&same["hd95_mm"], 0.0);
    // Means at the top level and in the summary, as the rest of `msd eval`.
    close(&r["dice"], (2.0 / 3.0 + 1.0) / 2.0);
    close(&r["boundary_dice"], 0.875);
    close(&r["hd95_mm"], 1.0);
    assert_eq!(r["summary"]["dice"]["n"], 2);
    // The band given as a mask scores the same; the table names the measures.
    let o = msd_in(
        dir.path(),
        &["eval", "--implant", "--pred", "pred.nii.gz", "--ref", "truth.nii.gz", "--region", "band.nii.gz"],
    );
    let table = ok(&o);
    assert!(table.contains("| case | Dice | boundary Dice | HD95 (mm) |"), "{table}");
    assert!(table.contains("| pred | 0.667 | 0.750 | 2.00 |"), "{table}");
    // The default band (10 mm) holds the whole implant here: boundary Dice = Dice.
    let r = json(&ok(&msd_in(
        dir.path(),
        &[
            "eval",
            "--implant",
            "--pred",
            "pred.nii.gz",
            "--ref",
            "truth.nii.gz",
            "--skull",
            "skull.nii.gz",
            "--json",
            "-",
        ],
    )));
    close(&r["boundary_dice"], 2.0 / 3.0);
}

#[test]
fn eval_implant_bad_input_fails_in_one_line() {
    let dir = implant_eval_fixture();
    let cases: [(&[&str], i32, &str); 5] = [
        (
            &["eval", "--implant", "--pred", "pred.nii.gz", "--ref", "truth.nii.gz"],
            2,
            "--implant needs the boundary band",
        ),
        (
            &["eval", "--pred", "pred.nii.gz", "--ref", "truth.nii.gz", "--skull", "skull.nii.gz"],
            2,
            "add --implant",
        ),
        (
            &[
                "eval",
                "--implant",
                "--pred",
                "pred.nii.gz",
                "--ref",
                "truth.nii.gz",
                "--skull",
                "skull.nii.gz",
                "--band-mm",
                "-1",
            ],
            2,
            "--band-mm -1",
        ),
        (
            &[
                "eval",
                "--implant",
                "--pred",
                "pred.nii.gz",
                "--ref",
                "truth.nii.gz",
                "--skull",
                "skull.nii.gz",
                "--region",
                "band.nii.gz",
            ],
            2,
            "give one of them",
        ),
        (
            &[
                "eval",
                "--implant",
                "--pred",
                "pred.nii.gz",
                "--ref",
                "truth.nii.gz",
                "--skull",
                "shifted_skull.nii.gz",
            ],
            1,
            "grid",
        ),
    ];
    for (args, code, message) in cases {
        let o = msd_in(dir.path(), args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(err.contains(message), "{args:?}: {err}");
    }
}

#[test]
fn implant_from_a_ct_without_model_uses_the_shipped_model() {
    use msd_implant::synthetic::{ShellSpec, cut_sphere, grid_for, skull_shell};
    let dir = tempfile::tempdir().unwrap();
    let spec = ShellSpec::default();
    let (g, shape) = grid_for(&spec, [1.5; 3], msd::io::Geometry::IDENTITY).unwrap();
    let skull = skull_shell(&spec, g, shape).unwrap();
    let centre = spec.outer_point([-0.7, 0.2, 0.7]);
    let (defect, removed) = cut_sphere(&skull, centre, 25.0).unwrap();
    // A CT of the defective skull: bone 1200 HU, brain 35 HU inside the vault, a 5 mm scalp of
    // 40 HU outside it, air around.
    let ct = ndarray::Array3::from_shape_fn(defect.data().dim(), |(z, y, x)| {
        let p = g.index_to_world([x as f64, y as f64, z as f64]);
        let e = |grow: f64| {
            (0..3).map(|k| ((p[k] - spec.centre_mm[k]) / (spec.semi_axes_mm[k] + grow)).powi(2)).sum::<f64>()
        };
        if defect.data()[[z, y, x]] != 0 {
            1200.0f32
        } else if e(-spec.thickness_mm) < 1.0 {
            35.0
        } else if e(5.0) < 1.0 {
            40.0
        } else {
            -1000.0
        }
    });
    write_volume(dir.path().join("ct.nii.gz"), &msd::io::Volume::new(ct, g).unwrap()).unwrap();
    // The shipped (pilot) model's skull shows a second opening low at the front: point at the defect.
    let point = format!("{},{},{}", centre[0], centre[1], centre[2]);
    let o =
        msd_in(dir.path(), &["implant", "--ct", "ct.nii.gz", "--out", "implant.nii.gz", "--point", &point]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("with the shipped skull model"), "{}", stderr(&o));
    let implant = msd::io::read_labels(dir.path().join("implant.nii.gz")).unwrap();
    let dice = msd_implant::overlap_dice(&implant, &removed).unwrap();
    assert!(dice > 0.7, "Dice {dice}");
}

/// The one `msd: ` line of a failed command's stderr (progress lines aside, there is exactly one).
#[track_caller]
fn one_error_line(o: &Output) -> String {
    let err = stderr(o);
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("msd: ")).collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(!err.contains("panicked"), "{err}");
    errors[0].to_owned()
}

#[test]
fn segment_and_train_on_a_cuda_device_that_cannot_run_fail_cleanly_and_write_nothing() {
    let f = Fixture::new();
    if msd::net::Device::Cuda(0).resolve().is_ok() {
        return; // This machine can run CUDA: the refusal is not what happens here.
    }
    for device in ["cuda", "cuda:0", "cuda:3"] {
        let o = f.msd(&["segment", "ct.nii.gz", "--out", "s.nii.gz", "--mesh", "s.stl", "--device", device]);
        let line = fails(&o, 1, "CUDA");
        assert_eq!(line.lines().count(), 1, "{line}");
        let msg = one_error_line(&o);
        if !cfg!(feature = "cuda") {
            assert!(msg.contains("built without CUDA support"), "{msg}");
        }
        assert!(!f.path("s.nii.gz").exists() && !f.path("s.stl").exists());
    }
    let o = f.msd(&["segment", "ct.nii.gz", "--out-dir", "batch", "--device", "cuda"]);
    fails(&o, 1, "CUDA");
    assert!(!f.path("batch").exists(), "nothing is written before the device is checked");
    let o = f.msd(&[
        "train",
        "--ct",
        "ct.nii.gz",
        "--labels",
        "skull.nii.gz",
        "--out",
        "m.safetensors",
        "--device",
        "cuda",
    ]);
    fails(&o, 1, "CUDA");
    assert!(!f.path("m.safetensors").exists());
}

#[test]
fn segment_on_auto_runs_on_the_cpu_and_says_why() {
    let f = Fixture::new();
    let auto = msd::net::Device::Auto.resolve().unwrap();
    let o = f.msd(&["segment", "ct.nii.gz", "--out", "s.nii.gz"]);
    ok(&o);
    let err = stderr(&o);
    let line = err.lines().find(|l| l.starts_with("device: ")).unwrap_or_else(|| panic!("{err}"));
    assert_eq!(line, format!("device: {auto}"));
    if !cfg!(feature = "cuda") {
        assert_eq!(line, "device: CPU (auto: built without CUDA support)");
    }
    let o = f.msd(&["segment", "ct.nii.gz", "--out", "cpu.nii.gz", "--device", "cpu"]);
    ok(&o);
    assert!(stderr(&o).contains("device: CPU (asked for)"), "{}", stderr(&o));
    if auto.device() == msd::net::Device::Cpu {
        assert_eq!(std::fs::read(f.path("s.nii.gz")).unwrap(), std::fs::read(f.path("cpu.nii.gz")).unwrap());
    }
}

#[test]
fn bad_device_strings_are_usage_errors() {
    let f = Fixture::new();
    for bad in ["gpu", "cuda:", "cuda:-1", "cuda:x", ""] {
        let o = f.msd(&["segment", "ct.nii.gz", "--out", "s.nii.gz", "--device", bad]);
        fails(&o, 2, "expected cpu, cuda, cuda:N or auto");
    }
    fails(
        &f.msd(&[
            "train",
            "--ct",
            "ct.nii.gz",
            "--labels",
            "skull.nii.gz",
            "--out",
            "m.safetensors",
            "--device",
            "tpu",
        ]),
        2,
        "invalid device",
    );
    assert!(!f.path("s.nii.gz").exists());
}

/// Writes `n` small phantom CTs, `case0.nii.gz` ..., into `dir`.
fn phantom_cases(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..n {
        let head = generate(&PhantomConfig::quick(), 100 + i as u64).unwrap();
        write_volume(dir.join(format!("case{i}.nii.gz")), &head.ct).unwrap();
    }
}

fn read_manifest(path: &Path) -> serde_json::Value {
    json(&std::fs::read_to_string(path).unwrap())
}

/// Every file under `dir` (relative path → bytes), the manifest left out.
fn tree(dir: &Path) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    let mut files = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().unwrap() != "manifest.json" {
                files.insert(p.strip_prefix(dir).unwrap().to_path_buf(), std::fs::read(&p).unwrap());
            }
        }
    }
    files
}

fn statuses(manifest: &serde_json::Value) -> Vec<(String, String)> {
    manifest["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["case"].as_str().unwrap().to_owned(), c["status"].as_str().unwrap().to_owned()))
        .collect()
}

#[test]
fn batch_segments_each_case_records_a_corrupt_one_and_skips_finished_cases_on_a_rerun() {
    // Issue #15: good cases written, the corrupt one recorded with its error, exit 1; a rerun skips.
    let f = Fixture::new();
    let study = f.path("study");
    phantom_cases(&study, 2);
    std::fs::write(study.join("broken.nii.gz"), b"not a NIfTI file at all").unwrap();
    std::fs::write(study.join("notes.txt"), b"not a case").unwrap();
    let o = f.msd(&["segment", "study", "--out-dir", "out"]);
    let line = fails(&o, 1, "1 of 3 case(s) failed");
    assert!(line.contains("out/manifest.json"), "{line}");
    let m = read_manifest(&f.path("out/manifest.json"));
    assert_eq!(
        statuses(&m),
        [
            ("broken".into(), "failed".into()),
            ("case0".into(), "done".into()),
            ("case1".into(), "done".into())
        ]
    );
    let broken = &m["cases"][0];
    assert!(broken["error"].as_str().unwrap().contains("cannot read the CT"), "{broken}");
    assert!(broken["input"].as_str().unwrap().ends_with("broken.nii.gz"));
    assert!(!f.path("out/broken").exists(), "a failed case leaves no outputs");
    for c in &m["cases"].as_array().unwrap()[1..] {
        let name = c["case"].as_str().unwrap();
        assert_eq!(c["outputs"]["labels"], format!("{name}/skull.nii.gz"));
        assert_eq!(c["outputs"]["mesh"], format!("{name}/skull.stl"));
        let volume = c["skull_volume_mm3"].as_f64().unwrap();
        let labels = msd::io::read_labels(f.path("out").join(name).join("skull.nii.gz")).unwrap();
        let expect = labelled(&f.path("out").join(name).join("skull.nii.gz")) as f64
            * labels.geometry().voxel_volume_mm3();
        assert!((volume - expect).abs() < 1e-6 * expect && volume > 0.0, "{volume} vs {expect}");
        assert!(c["seconds"]["total"].as_f64().unwrap() > 0.0);
        let mesh = msd::geom::read_mesh(f.path("out").join(name).join("skull.stl")).unwrap();
        assert!(mesh.check().is_watertight());
    }
    assert_eq!(m["summary"]["done"], 2);
    assert_eq!(m["summary"]["failed"], 1);
    let before = tree(&f.path("out"));

    // The rerun skips the finished cases, tries the broken one again and changes no output.
    let o = f.msd(&["segment", "study", "--out-dir", "out"]);
    fails(&o, 1, "1 of 3 case(s) failed");
    let m = read_manifest(&f.path("out/manifest.json"));
    assert_eq!(
        statuses(&m),
        [
            ("broken".into(), "failed".into()),
            ("case0".into(), "skipped".into()),
            ("case1".into(), "skipped".into())
        ]
    );
    assert_eq!(tree(&f.path("out")), before);

    // Once the bad file is gone the batch succeeds; --force segments everything again, identically.
    std::fs::remove_file(study.join("broken.nii.gz")).unwrap();
    ok(&f.msd(&["segment", "study", "--out-dir", "out"]));
    let o = f.msd(&["segment", "study", "--out-dir", "out", "--force"]);
    ok(&o);
    let m = read_manifest(&f.path("out/manifest.json"));
    assert_eq!(m["summary"]["done"], 2, "{m}");
    assert_eq!(tree(&f.path("out")), before);
}

#[test]
fn batch_takes_repeated_inputs_and_a_list_and_single_scan_use_is_unchanged() {
    let f = Fixture::new();
    phantom_cases(&f.path("scans"), 2);
    std::fs::write(f.path("cases.txt"), "# two scans\nscans/case1.nii.gz\n\nct.nii.gz\n").unwrap();
    let o = f.msd(&[
        "segment",
        "--input",
        "scans/case0.nii.gz",
        "--list",
        "cases.txt",
        "--out-dir",
        "out",
        "--save-probabilities",
    ]);
    ok(&o);
    let m = read_manifest(&f.path("out/manifest.json"));
    assert_eq!(
        statuses(&m),
        [("case0".into(), "done".into()), ("case1".into(), "done".into()), ("ct".into(), "done".into())]
    );
    assert!(f.path("out/ct/skull_probability.nii.gz").is_file());
    // The batch's labels are what the single-scan command writes.
    ok(&f.msd(&["segment", "ct.nii.gz", "--out", "single.nii.gz", "--mesh", "single.stl"]));
    assert_eq!(
        std::fs::read(f.path("single.nii.gz")).unwrap(),
        std::fs::read(f.path("out/ct/skull.nii.gz")).unwrap()
    );
    assert_eq!(
        std::fs::read(f.path("single.stl")).unwrap(),
        std::fs::read(f.path("out/ct/skull.stl")).unwrap()
    );
    // Several scans need --out-dir; batch-only flags need it too.
    fails(&f.msd(&["segment", "ct.nii.gz", "scans/case0.nii.gz", "--out", "x.nii.gz"]), 2, "--out-dir");
    fails(&f.msd(&["segment", "ct.nii.gz", "--out", "x.nii.gz", "--force"]), 2, "--out-dir");
    fails(&f.msd(&["segment", "ct.nii.gz", "--out-dir", "o", "--out", "x.nii.gz"]), 2, "--out");
    fails(&f.msd(&["segment", "--list", "none.txt", "--out-dir", "o"]), 1, "none.txt");
}

#[test]
#[cfg(unix)]
fn batch_killed_with_sigkill_resumes_to_the_outputs_of_an_uninterrupted_run() {
    let f = Fixture::new();
    phantom_cases(&f.path("study"), 6);
    ok(&f.msd(&["segment", "study", "--out-dir", "whole"]));
    let whole = tree(&f.path("whole"));
    assert_eq!(whole.len(), 12, "{:?}", whole.keys());

    let manifest = f.path("killed/manifest.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_msd"))
        .args(["segment", "study", "--out-dir", "killed"])
        .current_dir(f.path(""))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    loop {
        let done = std::fs::read_to_string(&manifest)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .map(|m| statuses(&m).iter().filter(|(_, s)| s == "done").count())
            .unwrap_or(0);
        if done >= 1 {
            break;
        }
        assert!(start.elapsed().as_secs() < 60, "no case finished in 60 s");
        assert!(child.try_wait().unwrap().is_none(), "the run ended before it could be killed");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let m = read_manifest(&manifest);
    let unfinished = statuses(&m).iter().filter(|(_, s)| s != "done").count();
    assert!(unfinished >= 1, "the kill came after the last case: {m}");

    let o = f.msd(&["segment", "study", "--out-dir", "killed"]);
    ok(&o);
    let m = read_manifest(&manifest);
    assert!(statuses(&m).iter().all(|(_, s)| s == "done" || s == "skipped"), "{m}");
    assert!(statuses(&m).iter().any(|(_, s)| s == "skipped"), "{m}");
    let resumed = tree(&f.path("killed"));
    assert!(resumed.keys().all(|p| !p.to_string_lossy().contains(".part")), "{:?}", resumed.keys());
    assert_eq!(resumed.keys().collect::<Vec<_>>(), whole.keys().collect::<Vec<_>>());
    assert!(resumed == whole, "the resumed run's files differ from the uninterrupted run's");
}

#[test]
#[cfg_attr(not(msd_shared_data), ignore = "needs ../shared/data")]
fn batch_over_a_mixed_folder_of_a_dicom_series_nifti_files_and_a_corrupt_file() {
    // Issue #15's acceptance folder: a real CT series (a head phantom, 28 slices of 5 mm), NIfTI
    // cases and one corrupt file.
    let f = Fixture::new();
    let study = f.path("study");
    phantom_cases(&study, 2);
    let series = shared("dicom-conformance/dcm_qa_ct/In/Philips/S21570/S2010");
    std::fs::create_dir_all(study.join("philips")).unwrap();
    for e in std::fs::read_dir(&series).unwrap() {
        let p = e.unwrap().path();
        std::fs::write(study.join("philips").join(p.file_name().unwrap()), std::fs::read(&p).unwrap())
            .unwrap();
    }
    std::fs::write(study.join("corrupt.nii"), vec![0u8; 1000]).unwrap();
    let o = f.msd(&["segment", "study", "--out-dir", "out"]);
    fails(&o, 1, "1 of 4 case(s) failed");
    let m = read_manifest(&f.path("out/manifest.json"));
    assert_eq!(
        statuses(&m),
        [
            ("case0".into(), "done".into()),
            ("case1".into(), "done".into()),
            ("corrupt".into(), "failed".into()),
            ("philips".into(), "done".into()),
        ]
    );
    assert!(m["cases"][2]["error"].as_str().unwrap().contains("corrupt.nii"), "{m}");
    // The series segments as the single-scan command segments it.
    ok(&f.msd(&["segment", series.to_str().unwrap(), "--out", "single.nii.gz"]));
    assert_eq!(
        std::fs::read(f.path("single.nii.gz")).unwrap(),
        std::fs::read(f.path("out/philips/skull.nii.gz")).unwrap()
    );
    let o = f.msd(&["segment", "study", "--out-dir", "out"]);
    fails(&o, 1, "1 of 4 case(s) failed");
    let m = read_manifest(&f.path("out/manifest.json"));
    assert_eq!(m["summary"]["skipped"], 3, "{m}");
}

#[test]
fn eval_takes_a_whole_study_from_a_batch_output_folder() {
    // Issue #15: `msd eval` over the folder layout of `msd segment --out-dir`.
    let f = Fixture::new();
    std::fs::create_dir_all(f.path("study")).unwrap();
    std::fs::create_dir_all(f.path("refs")).unwrap();
    for i in 0..2u64 {
        let head = generate(&PhantomConfig::quick(), 200 + i).unwrap();
        write_volume(f.path(&format!("study/case{i}.nii.gz")), &head.ct).unwrap();
        write_volume(f.path(&format!("refs/case{i}.nii.gz")), &head.skull).unwrap();
    }
    ok(&f.msd(&["segment", "study", "--out-dir", "out"]));
    let r =
        json(&ok(&f.msd(&["eval", "--pred-dir", "out", "--ref-dir", "refs", "--no-surface", "--json", "-"])));
    let cases = r["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 2, "{r}");
    assert_eq!(cases[0]["case"], "case0");
    assert_eq!(cases[1]["case"], "case1");
    // The same numbers as the pair given by hand.
    let one = json(&ok(&f.msd(&[
        "eval",
        "--pred",
        "out/case1/skull.nii.gz",
        "--ref",
        "refs/case1.nii.gz",
        "--no-surface",
        "--json",
        "-",
    ])));
    assert_eq!(one["dice"], cases[1]["dice"]);
    assert!(one["dice"].as_f64().unwrap() > 0.5, "{one}");
    fails(
        &f.msd(&["eval", "--pred-dir", "out", "--ref-dir", "study/none"]),
        1,
        "no reference for case case0",
    );
    fails(&f.msd(&["eval", "--pred-dir", "refs", "--ref-dir", "refs"]), 1, "manifest.json");
    fails(&f.msd(&["eval", "--pred-dir", "out"]), 2, "--ref-dir");
    fails(&f.msd(&["eval", "--pred-dir", "out", "--ref-dir", "refs", "--pred", "x.nii.gz"]), 2, "--pred");
    // The study's HTML report: slices over each case's input CT (from the manifest), and the
    // implant designed for case1 (CASE/implant.stl; the skull mesh stands in for one).
    std::fs::copy(f.path("out/case1/skull.stl"), f.path("out/case1/implant.stl")).unwrap();
    ok(&f.msd(&["eval", "--pred-dir", "out", "--ref-dir", "refs", "--no-surface", "--html", "study.html"]));
    let html = std::fs::read_to_string(f.path("study.html")).unwrap();
    assert_eq!(
        html.matches("data:image/png;base64,").count(),
        2 * 5,
        "render, histogram, three slices per case"
    );
    assert_eq!(html.matches("\"role\":\"implant\"").count(), 1);
    fails(
        &f.msd(&["eval", "--pred-dir", "out", "--ref-dir", "refs", "--html", "x.html", "--ct", "ct.nii.gz"]),
        2,
        "--ct goes with --pred",
    );
}

#[test]
fn segment_places_the_boundary_on_the_iso_surface_unless_told_not_to() {
    let f = Fixture::new();
    let o = f.msd(&["segment", "ct.nii.gz", "--out", "snapped.nii.gz"]);
    ok(&o);
    let err = stderr(&o);
    assert!(err.contains("boundary: the scan's 300 HU iso-surface"), "{err}");
    assert!(err.contains("measured noise ("), "{err}");
    let o = f.msd(&["segment", "ct.nii.gz", "--out", "network.nii.gz", "--network-boundary"]);
    ok(&o);
    assert!(stderr(&o).contains("boundary: the network's own (--network-boundary)"), "{}", stderr(&o));
    // The snap moves the boundary somewhere (how far it moves it toward the definition is measured
    // by the shipped-model tests on cthead).
    let snapped = msd::io::read_labels(f.path("snapped.nii.gz")).unwrap();
    let network = msd::io::read_labels(f.path("network.nii.gz")).unwrap();
    assert_ne!(snapped.data(), network.data());
}

#[test]
fn pixels_outside_the_trained_range_are_resampled_unless_told_not_to() {
    // The fixture's 1.25 mm pixels are coarser than the shipped model's 0.3–1.0 mm.
    let f = Fixture::new();
    let o = f.msd(&["segment", "ct.nii.gz", "--out", "fitted.nii.gz"]);
    ok(&o);
    assert!(
        stderr(&o).contains("resampled to 1.00 × 1.00 mm pixels (outside the 0.30–1.00 mm"),
        "{}",
        stderr(&o)
    );
    let o = f.msd(&["segment", "ct.nii.gz", "--out", "native.nii.gz", "--native-pixels"]);
    ok(&o);
    assert!(stderr(&o).contains("on the scan's own grid"), "{}", stderr(&o));
    let fitted = msd::io::read_labels(f.path("fitted.nii.gz")).unwrap();
    let native = msd::io::read_labels(f.path("native.nii.gz")).unwrap();
    assert_eq!(fitted.geometry(), native.geometry(), "both on the scan's grid");
}

#[test]
fn segment_names_its_kernels_and_f32_is_one_flag_away() {
    let f = Fixture::new();
    let auto = f.msd(&["segment", "ct.nii.gz", "--out", "auto.nii.gz"]);
    ok(&auto);
    let kernels = msd::net::kernels::InferenceKernels::select(msd::net::kernels::Precision::Auto);
    assert!(stderr(&auto).contains(&format!("backend cpu-{kernels}")), "{}", stderr(&auto));
    let f32 = f.msd(&["segment", "ct.nii.gz", "--out", "f32.nii.gz", "--precision", "f32"]);
    ok(&f32);
    let isa = msd::net::kernels::Isa::detect().name();
    assert!(stderr(&f32).contains(&format!("backend cpu-{isa})")), "{}", stderr(&f32));
    // bf16 feature maps move a few boundary voxels at most.
    let a = msd::io::read_labels(f.path("auto.nii.gz")).unwrap();
    let b = msd::io::read_labels(f.path("f32.nii.gz")).unwrap();
    let dice = msd::metrics::overlap(&a, &b).unwrap().dice();
    assert!(dice >= 0.999, "Dice between the precisions {dice}");
    let bad = f.msd(&["segment", "ct.nii.gz", "--out", "x.nii.gz", "--precision", "fp8"]);
    assert_eq!(bad.status.code(), Some(2), "a usage error");
    assert!(stderr(&bad).contains("auto, f32 or bf16"), "{}", stderr(&bad));
}

#[test]
fn the_html_report_shows_slices_over_the_ct_and_the_implant() {
    let f = Fixture::new();
    ok(&f.msd(&["segment", "ct.nii.gz", "--out", "s.nii.gz", "--mesh", "s.stl"]));
    // Any closed mesh stands in for a designed implant here.
    let o = f.msd(&[
        "eval",
        "--pred",
        "s.nii.gz",
        "--ref",
        "skull.nii.gz",
        "--html",
        "r.html",
        "--ct",
        "ct.nii.gz",
        "--implant-mesh",
        "s.stl",
        "--no-surface",
    ]);
    ok(&o);
    let html = std::fs::read_to_string(f.path("r.html")).unwrap();
    // The deviation render, its histogram and three slices (axial, coronal, sagittal), each with
    // its caption.
    assert_eq!(html.matches("data:image/png;base64,").count(), 5);
    for plane in ["axial", "coronal", "sagittal"] {
        assert!(html.contains(&format!("{plane} slice: prediction (red) and reference (green)")), "{plane}");
    }
    assert!(html.contains("\"role\":\"implant\""), "the implant is in the 3D view");
    // One CT for two cases is refused, before anything is read.
    let o = f.msd(&[
        "eval",
        "--pred",
        "s.nii.gz",
        "--ref",
        "skull.nii.gz",
        "--pred",
        "s.nii.gz",
        "--ref",
        "skull.nii.gz",
        "--html",
        "r2.html",
        "--ct",
        "ct.nii.gz",
    ]);
    fails(&o, 2, "1 --ct for 2 cases");
    assert!(!f.path("r2.html").exists());
}
