//! The workflow on the real head CT in `../shared/data/cthead` (ignored when it is absent): train from
//! the CT and its gold-standard mesh, segment the craniectomy scan, mesh, evaluate near the defect.
use std::path::PathBuf;

use msd_metrics::Region;
use msd_net::{MsdConfig, TrainConfig};
use msd_pipeline::evaluation::{EvaluationOptions, Shape};
use msd_pipeline::training::TrainingSet;

fn cthead(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/cthead").join(file)
}

#[test]
#[cfg_attr(not(msd_shared_data), ignore = "needs ../shared/data")]
fn cthead_from_mesh_to_evaluated_defect_segmentation() {
    let ct = msd_io::read_volume(cthead("ct.nii.gz")).unwrap();
    let mesh = msd_geom::read_mesh(cthead("skull_ref.stl")).unwrap();
    let reference = msd_io::read_labels(cthead("skull_ref.nii.gz")).unwrap();

    // Mesh → label on the CT grid reproduces the reference label.
    let labels = msd_pipeline::training::mesh_to_labels(&mesh, &ct).unwrap();
    let dice = msd_metrics::overlap(&labels, &reference).unwrap().dice();
    assert!(dice > 0.99, "mesh → label Dice {dice}");

    let mut set = TrainingSet::new();
    set.push_mesh("cthead", ct, &mesh).unwrap();
    let config = TrainConfig {
        epochs: 20,
        patch_size: Some(64),
        ..msd_pipeline::training::skull_train_config(MsdConfig::new(12, 1, 1, 2))
    };
    let model = msd_pipeline::train(&set, &config).unwrap();

    // The craniectomy scan was not trained on.
    let ct_defect = msd_io::read_volume(cthead("ct_defect.nii.gz")).unwrap();
    let truth = msd_io::read_labels(cthead("skull_defect_ref.nii.gz")).unwrap();
    let region = Region::Mask(msd_io::read_labels(cthead("defect_region.nii.gz")).unwrap());
    let seg = msd_pipeline::segment(&model, &ct_defect).unwrap();
    let mesh = msd_pipeline::surface(&seg.labels).unwrap();
    assert!(mesh.check().is_watertight());
    let report = EvaluationOptions::default()
        .region(region)
        .evaluate("cthead defect", &Shape::Labels(seg.labels), &Shape::Labels(truth))
        .unwrap();
    let dice = report.metrics.dice.unwrap();
    let near = report.region.unwrap();
    eprintln!(
        "cthead defect scan: Dice {dice:.4}, near the defect {:?} / MAD {:?} mm",
        near.dice, near.mad_mm
    );
    // A 20-epoch, depth-12 model. With the plain cross-entropy of `skull_loss` (unbiased, where the
    // earlier class weights and Dice term pushed the boundary outwards) it learns the thin bone more
    // slowly: 0.859 measured, 0.88 before. The shipped model's accuracy is tested in shipped_model.rs.
    assert!(dice > 0.84, "Dice {dice}");
    assert!(near.dice.unwrap() > 0.85, "Dice near the defect {:?}", near.dice);
    assert!(near.mad_mm.unwrap() < 1.0, "MAD near the defect {:?}", near.mad_mm);
}
