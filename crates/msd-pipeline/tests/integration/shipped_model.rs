//! The skull model that ships with msd (`Model::default_skull`): it loads, segments without any
//! set-up, gives the same skull at 0.5 and 1.0 mm pixels on the scan's own grid, and reproduces the
//! engineers' 300 HU recipe on a real head, beating the recipe itself once the scan is noisy, and on a
//! head it never saw.
use std::path::PathBuf;

use msd_geom::Cleanup;
use msd_io::{LabelVolume, Volume};
use msd_metrics::overlap;
use msd_net::{Model, SegmentOptions, resample_in_plane};
use msd_phantom::{PhantomConfig, generate};
use msd_pipeline::baseline::engineers_recipe;
use msd_pipeline::evaluation::{EvaluationOptions, Shape};
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};

fn cthead(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/cthead").join(file)
}

fn dice(a: &LabelVolume, b: &LabelVolume) -> f64 {
    overlap(a, b).unwrap().dice()
}

fn with_noise(ct: &Volume<f32>, sigma: f32, seed: u64) -> Volume<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let n = Normal::new(0.0f32, sigma).unwrap();
    ct.map(|&v| v + n.sample(&mut rng))
}

#[test]
fn the_shipped_model_loads_and_segments_a_synthetic_head() {
    let model = Model::default_skull().unwrap();
    assert_eq!(model.class_names, ["background", "skull"]);
    assert!(model.provenance.contains_key("trained_by"), "{:?}", model.provenance);
    // Its labels are the 300 HU definition, so segmenting places the boundary on that iso-surface.
    assert_eq!(model.label_iso_hu, Some(300.0));
    let config = PhantomConfig::clinical(0.8, 3.0).unwrap().with_noise(0.0).with_craniectomy_probability(1.0);
    let head = generate(&config, 4242).unwrap();
    let reference = engineers_recipe(&head.ct, 300.0).unwrap();
    let seg = msd_pipeline::segment(&model, &head.ct).unwrap();
    assert_eq!(seg.labels.geometry(), head.ct.geometry());
    let d = dice(&seg.labels, &reference);
    eprintln!("unseen synthetic head at 0.8 × 0.8 × 3 mm: Dice {d:.4} against the 300 HU recipe");
    assert!(d > 0.97, "Dice {d}");
}

#[test]
#[cfg_attr(not(msd_shared_data), ignore = "needs ../shared/data")]
fn native_resolution_gives_the_same_skull_at_half_and_one_mm() {
    let model = Model::default_skull().unwrap();
    let ct = msd_io::read_volume(cthead("ct_defect.nii.gz")).unwrap();
    let fine = resample_in_plane(&ct, 0.5).unwrap();
    assert_eq!(fine.shape(), [ct.shape()[0], 2 * ct.shape()[1], 2 * ct.shape()[2]]);
    let options = SegmentOptions::default();
    let (coarse_seg, _) =
        msd_pipeline::training::segment_with(&model, &ct, &options, &Cleanup::default(), |_, _| {}).unwrap();
    let (fine_seg, _) =
        msd_pipeline::training::segment_with(&model, &fine, &options, &Cleanup::default(), |_, _| {})
            .unwrap();
    // Each 1 mm pixel is the 2 × 2 block of 0.5 mm pixels centred on it: skull where most are.
    let pooled = ct.with_data(pool_2x2(fine_seg.labels.data(), ct.shape())).unwrap();
    let d = dice(&pooled, &coarse_seg.labels);
    // The definition itself is not grid-independent: the recipe on the two grids, pooled the same way.
    let recipe_fine = msd_pipeline::baseline::engineers_recipe(&fine, 300.0).unwrap();
    let recipe_pooled = ct.with_data(pool_2x2(recipe_fine.data(), ct.shape())).unwrap();
    let recipe_d = dice(&recipe_pooled, &msd_pipeline::baseline::engineers_recipe(&ct, 300.0).unwrap());
    eprintln!(
        "cthead at 0.5 mm vs 1.0 mm pixels, both on their own grid: MSDnet Dice {d:.4}, the 300 HU recipe {recipe_d:.4}"
    );
    // The target is 0.99, but the definition itself reaches only 0.979 here: thin bone above
    // 300 HU on the fine grid partial-volumes below it on the coarse one. With its boundary on the
    // 300 HU iso-surface the shipped model measures 0.979 too (0.973 with the network's own
    // boundary); it must stay within 0.01 of the definition's own consistency.
    assert!(d >= 0.96 && d >= recipe_d - 0.01, "Dice {d}, recipe {recipe_d}");
}

/// Majority pooling of the 2 × 2 in-plane blocks of `fine` onto a grid of `shape` (ties count as
/// skull).
fn pool_2x2(fine: &ndarray::Array3<u8>, shape: [usize; 3]) -> ndarray::Array3<u8> {
    ndarray::Array3::from_shape_fn((shape[0], shape[1], shape[2]), |(z, y, x)| {
        let s: u32 = [(0, 0), (0, 1), (1, 0), (1, 1)]
            .iter()
            .map(|(dy, dx)| fine[[z, 2 * y + dy, 2 * x + dx]] as u32)
            .sum();
        u8::from(s >= 2)
    })
}

#[test]
#[cfg_attr(not(msd_shared_data), ignore = "needs ../shared/data")]
fn on_cthead_the_model_reproduces_the_recipe_and_beats_it_under_noise() {
    let model = Model::default_skull().unwrap();
    let ct = msd_io::read_volume(cthead("ct_defect.nii.gz")).unwrap();
    let reference = engineers_recipe(&ct, 300.0).unwrap();
    let seg = msd_pipeline::segment(&model, &ct).unwrap();
    let d = dice(&seg.labels, &reference);
    let snap = seg.iso_snap.expect("the shipped model snaps to its 300 HU definition");
    // The network's own boundary, for comparison: the snap is what brings it to the definition.
    let options = SegmentOptions::default().with_snap_to_iso(false);
    let (raw, _) =
        msd_pipeline::training::segment_with(&model, &ct, &options, &Cleanup::default(), |_, _| {}).unwrap();
    let raw_d = dice(&raw.labels, &reference);
    eprintln!(
        "cthead as scanned (noise {:.0} HU): Dice {d:.4} against the recipe; the network's own boundary {raw_d:.4}",
        snap.noise_hu
    );
    assert!(d >= 0.99, "as scanned: Dice {d}");
    assert!(raw_d > 0.96 && raw_d < d, "the network's own boundary: Dice {raw_d}");
    let noisy = with_noise(&ct, 100.0, 7);
    let net = msd_pipeline::segment(&model, &noisy).unwrap().labels;
    let recipe = engineers_recipe(&noisy, 300.0).unwrap();
    let options = EvaluationOptions::default();
    let r = Shape::Labels(reference);
    let net = options.evaluate("msdnet", &Shape::Labels(net), &r).unwrap().metrics;
    let thr = options.evaluate("recipe", &Shape::Labels(recipe), &r).unwrap().metrics;
    eprintln!(
        "cthead + 100 HU noise: MSDnet Dice {:.4} MAD {:.3} mm; recipe Dice {:.4} MAD {:.3} mm",
        net.dice.unwrap(),
        net.mad_mm.unwrap(),
        thr.dice.unwrap(),
        thr.mad_mm.unwrap()
    );
    assert!(net.dice.unwrap() > thr.dice.unwrap(), "Dice: network {:?}, recipe {:?}", net.dice, thr.dice);
    assert!(
        net.mad_mm.unwrap() < thr.mad_mm.unwrap(),
        "MAD: network {:?}, recipe {:?}",
        net.mad_mm,
        thr.mad_mm
    );
}

#[test]
#[cfg_attr(not(msd_shared_data), ignore = "needs ../shared/data")]
fn on_a_head_it_never_saw_it_reproduces_the_engineers_definition() {
    // headsq: another scanner, another head, 3.2 mm pixels (outside the trained 0.3–1.0 mm), metal.
    let model = Model::default_skull().unwrap();
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/headsq/ct.nii.gz");
    let ct = msd_io::read_volume(path).unwrap();
    let reference = Shape::Labels(engineers_recipe(&ct, 300.0).unwrap());
    let seg = msd_pipeline::segment(&model, &ct).unwrap();
    let m = EvaluationOptions::default()
        .evaluate("msdnet", &Shape::Labels(seg.labels), &reference)
        .unwrap()
        .metrics;
    let (d, mad) = (m.dice.unwrap(), m.mad_mm.unwrap());
    eprintln!("headsq as scanned: Dice {d:.4}, MAD {mad:.3} mm against the recipe");
    // The project's target for unseen scans as scanned.
    assert!(d >= 0.99 && mad <= 0.10, "Dice {d}, MAD {mad} mm");
}

/// Dice between the bf16 and the `f32` segmentation of `ct`, snapped and with the network's own
/// boundary (which shows the network's differences unmasked by the iso-surface).
fn bf16_against_f32(model: &Model, ct: &Volume<f32>, what: &str) {
    use msd_net::Precision;
    for snap in [true, false] {
        let run = |precision| {
            let options = SegmentOptions::default().with_snap_to_iso(snap).with_precision(precision);
            msd_pipeline::training::segment_with(model, ct, &options, &Cleanup::default(), |_, _| {})
                .unwrap()
                .0
        };
        let (bf16, f32) = (run(Precision::Bf16), run(Precision::F32));
        let d = dice(&bf16.labels, &f32.labels);
        let changed = bf16.labels.data().iter().zip(f32.labels.data()).filter(|(a, b)| a != b).count();
        eprintln!(
            "{what}, {}: bf16 ({}) vs f32 Dice {d:.5}, {changed} voxels differ",
            if snap { "snapped" } else { "network boundary" },
            msd_net::kernels::InferenceKernels::select(Precision::Bf16)
        );
        assert!(d >= 0.999, "{what}: bf16 vs f32 Dice {d}");
    }
}

#[test]
fn bf16_feature_maps_segment_a_synthetic_head_as_f32_does() {
    let model = Model::default_skull().unwrap();
    let config = PhantomConfig::clinical(0.8, 3.0).unwrap().with_noise(40.0);
    let head = generate(&config, 77).unwrap();
    bf16_against_f32(&model, &head.ct, "synthetic head, 0.8 × 0.8 × 3 mm, 40 HU noise");
}

#[test]
#[cfg_attr(not(msd_shared_data), ignore = "needs ../shared/data")]
fn bf16_feature_maps_segment_real_scans_as_f32_does() {
    if msd_net::kernels::Bf16Isa::detect().is_none() {
        // The portable bf16 loops give the same numbers, slowly: the synthetic test covers them.
        eprintln!("skipped: this CPU has neither AMX nor AVX512-BF16");
        return;
    }
    let model = Model::default_skull().unwrap();
    let ct = msd_io::read_volume(cthead("ct_defect.nii.gz")).unwrap();
    bf16_against_f32(&model, &ct, "cthead as scanned");
    bf16_against_f32(&model, &with_noise(&ct, 100.0, 11), "cthead + 100 HU noise");
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/headsq/ct.nii.gz");
    bf16_against_f32(&model, &msd_io::read_volume(path).unwrap(), "headsq as scanned");
}
