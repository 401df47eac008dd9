//! The shared CThead case: Dice and MAD between the skull with and without a craniectomy, against
//! figures from an independent, sampling-based implementation (see the crate README).
use msd_metrics::{
    CaseReport, Region, SurfaceDistanceOptions, label_surface_distances, overlap, overlap_in_region,
};

use crate::fixtures::cthead;

#[test]
#[cfg_attr(not(msd_shared_data), ignore = "needs ../shared/data")]
fn dice_of_skull_with_and_without_defect() {
    let skull = msd_io::read_labels(cthead("skull_ref.nii.gz")).unwrap();
    let defect = msd_io::read_labels(cthead("skull_defect_ref.nii.gz")).unwrap();
    let region = Region::Mask(msd_io::read_labels(cthead("defect_region.nii.gz")).unwrap());
    let whole = overlap(&defect, &skull).unwrap();
    assert_eq!(whole.reference_voxels(), 409_305);
    assert_eq!(whole.predicted_voxels(), 393_450);
    assert!((whole.dice() - 0.980).abs() < 0.001, "{}", whole.dice());
    let near = overlap_in_region(&defect, &skull, &region).unwrap();
    assert!((near.dice() - 0.77).abs() < 0.005, "{}", near.dice());
    // The label-volume route agrees on where the difference is: far larger near the defect.
    let whole_d = label_surface_distances(&defect, &skull, None, 1.0, None).unwrap();
    let near_d = label_surface_distances(&defect, &skull, None, 1.0, Some(&region)).unwrap();
    eprintln!(
        "cthead dice {} near {}; voxel MAD whole {} near {}",
        whole.dice(),
        near.dice(),
        whole_d.mad_mm(),
        near_d.mad_mm()
    );
    assert!(near_d.mad_mm() > 5.0 * whole_d.mad_mm(), "{} vs {}", near_d.mad_mm(), whole_d.mad_mm());
}

#[test]
#[cfg_attr(not(msd_shared_data), ignore = "needs ../shared/data")]
fn mad_near_the_defect_between_reference_meshes() {
    let skull = msd_geom::read_stl(cthead("skull_ref.stl")).unwrap();
    let defect = msd_geom::read_stl(cthead("skull_defect_ref.stl")).unwrap();
    let region = Region::Mask(msd_io::read_labels(cthead("defect_region.nii.gz")).unwrap());
    let opts = SurfaceDistanceOptions::new();
    let whole = opts.compute(&defect, &skull).unwrap();
    let near = opts.clone().region(region).compute(&defect, &skull).unwrap();
    assert!((near.mad_mm() - 1.25).abs() < 0.05 * 1.25, "near the defect: {:?}", near.symmetric);
    assert!(whole.mad_mm() < near.mad_mm() / 5.0, "whole {} vs near {}", whole.mad_mm(), near.mad_mm());
    eprintln!("cthead MAD whole {:?}\nnear {:?}", whole, near);
    let case = CaseReport::new("cthead").with_surface(&whole).with_region_surface(&near);
    let json: serde_json::Value = serde_json::from_str(&case.to_json().unwrap()).unwrap();
    assert!(json["mad_mm"].as_f64().is_some() && json["region"]["mad_mm"].as_f64().is_some());
}
