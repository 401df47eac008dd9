//! The workflow API end to end on phantoms: train → segment → surface → evaluate.
use msd_metrics::Region;
use msd_net::{MsdConfig, TrainConfig};
use msd_phantom::{PhantomConfig, generate};
use msd_pipeline::evaluation::{EvaluationOptions, Shape};
use msd_pipeline::training::{TrainingSet, mesh_to_labels};
use msd_pipeline::{evaluate, segment, surface, train};

#[test]
fn train_segment_mesh_evaluate_on_phantoms() {
    let config = PhantomConfig::quick();
    let mut set = TrainingSet::new();
    for seed in 0..3 {
        let head = generate(&config, seed).unwrap();
        set.push_labels(format!("p{seed}"), head.ct, head.skull).unwrap();
    }
    let mut train_config = msd_pipeline::training::skull_train_config(MsdConfig::new(8, 1, 1, 2));
    train_config.epochs = 10;
    train_config.patch_size = Some(48);
    let model = train(&set, &train_config).unwrap();

    let test = generate(&config.clone().with_craniectomy_probability(1.0), 100).unwrap();
    let seg = segment(&model, &test.ct).unwrap();
    assert_eq!(seg.labels.shape(), test.ct.shape());
    // Probability volumes are kept only when asked for.
    assert!(seg.probabilities.is_empty());
    let with_probs = model
        .segment_with(&test.ct, &msd_net::SegmentOptions::default().with_probabilities(true), |_, _| {})
        .unwrap();
    assert_eq!(with_probs.probabilities.len(), 2);
    let mesh = surface(&seg.labels).unwrap();
    assert!(!mesh.is_empty());
    assert!(mesh.check().is_watertight());

    // The default clean-up keeps one 26-connected piece of bone.
    let pieces = msd_geom::label_components(&seg.labels, msd_geom::Connectivity::TwentySix).count();
    assert_eq!(pieces, 1);

    // The network's own output (a tiny network's skull is in pieces, which the clean-up would drop).
    let (raw, _) = msd_pipeline::training::segment_with(
        &model,
        &test.ct,
        &msd_net::SegmentOptions::default(),
        &msd_geom::Cleanup::none(),
        |_, _| {},
    )
    .unwrap();
    let report = EvaluationOptions::default()
        .region(Region::Mask(test.defect_region.clone().unwrap()))
        .evaluate("t", &Shape::Labels(raw.labels.clone()), &Shape::Labels(test.skull.clone()))
        .unwrap();
    let dice = report.metrics.dice.unwrap();
    // Even a tiny network trained for ten epochs finds most of the skull (plain cross-entropy, the
    // unbiased skull loss, learns the thin shell more slowly than the earlier weighted loss).
    assert!(dice > 0.6, "Dice {dice}");
    assert!(report.region.as_ref().unwrap().mad_mm.is_some());
    let mesh_report = evaluate(&Shape::Mesh(mesh), &Shape::Labels(test.skull)).unwrap();
    assert!(mesh_report.metrics.mad_mm.unwrap() < 3.0);
}

#[test]
fn a_training_set_from_meshes_matches_the_labels() {
    let head = generate(&PhantomConfig::quick(), 8).unwrap();
    let mesh = surface(&head.skull).unwrap();
    let back = mesh_to_labels(&mesh, &head.ct).unwrap();
    let o = msd_metrics::overlap(&back, &head.skull).unwrap();
    assert!(o.dice() > 0.999, "{}", o.dice());
    let mut set = TrainingSet::new();
    set.push_mesh("m", head.ct.clone(), &mesh).unwrap();
    assert_eq!(set.len(), 1);
    // A mesh moved far away from the CT is refused, naming the case.
    let far = mesh.transformed(&[
        [1.0, 0.0, 0.0, 1000.0],
        [0.0, 1.0, 0.0, 0.0],
        [0.0, 0.0, 1.0, 0.0],
        [0.0, 0.0, 0.0, 1.0],
    ]);
    let err = set.push_mesh("far away", head.ct.clone(), &far).unwrap_err();
    let chain =
        format!("{err}: {}", std::error::Error::source(&err).map(|s| s.to_string()).unwrap_or_default());
    assert!(chain.contains("far away") && chain.contains("frame"), "{chain}");
    // Labels on another grid are refused.
    let other = generate(&PhantomConfig::quick(), 9).unwrap();
    let moved = msd_io::Volume::new(
        other.skull.data().clone(),
        other.skull.geometry().with_origin([1.0, 2.0, 3.0]).unwrap(),
    )
    .unwrap();
    assert!(set.push_labels("moved", head.ct, moved).is_err());
    assert!(msd_pipeline::training::train(&TrainingSet::new(), &TrainConfig::default()).is_err());
}

#[test]
fn a_mesh_in_another_frame_is_aligned_before_voxelising() {
    let head = generate(&PhantomConfig::quick().with_noise(10.0), 12).unwrap();
    let mesh = surface(&head.skull).unwrap();
    // 5° about z and 8 mm along x: an export from design software in its own frame.
    let (s, c) = (5f64.to_radians().sin(), 5f64.to_radians().cos());
    let moved =
        mesh.transformed(&[[c, -s, 0.0, 8.0], [s, c, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]]);
    let mut set = TrainingSet::new();
    let alignment = set.push_mesh_aligned("moved", head.ct.clone(), &moved, 300.0).unwrap();
    assert!(alignment.rms_mm < 1.0, "residual {} mm", alignment.rms_mm);
    let dice = msd_metrics::overlap(&set.cases()[0].labels, &head.skull).unwrap().dice();
    assert!(dice > 0.9, "Dice after alignment {dice}");
}
