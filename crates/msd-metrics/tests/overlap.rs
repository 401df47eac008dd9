//! Overlap of label volumes: identical, disjoint, known partial overlap, regions, grids.
use msd_io::{Geometry, LabelVolume};
use msd_metrics::{Error, Region, overlap, overlap_in_region, overlap_label, overlap_per_label};
use ndarray::Array3;

use crate::fixtures::{ball, labels};

#[test]
fn identical_volumes_have_dice_one() {
    let a = ball([20, 24, 28], [0.8, 0.9, 2.0], [14.0, 12.0, 10.0], 7.0);
    let o = overlap(&a, &a).unwrap();
    assert!(o.true_positives > 100);
    assert_eq!((o.dice(), o.jaccard(), o.sensitivity(), o.precision()), (1.0, 1.0, 1.0, 1.0));
    assert_eq!(o.volume_difference_ml(), 0.0);
}

#[test]
fn disjoint_volumes_have_dice_zero() {
    let a = labels([8, 8, 8], [1.0; 3], |x, _, _| u8::from(x < 3));
    let b = labels([8, 8, 8], [1.0; 3], |x, _, _| u8::from(x > 4));
    let o = overlap(&a, &b).unwrap();
    assert_eq!((o.dice(), o.jaccard(), o.sensitivity(), o.precision()), (0.0, 0.0, 0.0, 0.0));
}

#[test]
fn half_overlapping_slabs_have_known_measures() {
    // Prediction x in 0..4, reference x in 2..8: TP 2, FP 2, FN 4 columns of 6 × 5 voxels.
    let p = labels([5, 6, 10], [0.5, 0.5, 2.0], |x, _, _| u8::from(x < 4));
    let r = labels([5, 6, 10], [0.5, 0.5, 2.0], |x, _, _| u8::from((2..8).contains(&x)));
    let o = overlap(&p, &r).unwrap();
    assert_eq!((o.true_positives, o.false_positives, o.false_negatives), (60, 60, 120));
    assert!((o.dice() - 2.0 * 2.0 / (4.0 + 6.0)).abs() < 1e-12);
    assert!((o.jaccard() - 2.0 / 8.0).abs() < 1e-12);
    assert!((o.sensitivity() - 2.0 / 6.0).abs() < 1e-12 && (o.precision() - 0.5).abs() < 1e-12);
    // Voxels are 0.5 mm³: 120 vs 180 voxels.
    assert!((o.volume_difference_ml() - (-60.0 * 0.5 / 1000.0)).abs() < 1e-12);
    assert!((o.volume_difference_percent().unwrap() + 100.0 / 3.0).abs() < 1e-9);
}

#[test]
fn region_restricts_the_count() {
    let p = labels([5, 6, 10], [1.0; 3], |x, _, _| u8::from(x < 4));
    let r = labels([5, 6, 10], [1.0; 3], |x, _, _| u8::from((2..8).contains(&x)));
    // A mask on the same grid holding x in 2..4: inside it both agree.
    let mask = labels([5, 6, 10], [1.0; 3], |x, _, _| u8::from((2..4).contains(&x)));
    let o = overlap_in_region(&p, &r, &Region::Mask(mask)).unwrap();
    assert_eq!((o.true_positives, o.false_positives, o.false_negatives), (60, 0, 0));
    // A sphere region of radius 0 around voxel (0, 0, 0) holds just that voxel centre.
    let g = p.geometry().index_to_world([0.0; 3]);
    let o = overlap_in_region(&p, &r, &Region::sphere(g, 0.0).unwrap()).unwrap();
    assert_eq!((o.true_positives, o.false_positives, o.false_negatives), (0, 1, 0));
}

#[test]
fn labels_are_scored_separately() {
    let p = labels([4, 4, 4], [1.0; 3], |x, _, _| x as u8);
    let r = labels([4, 4, 4], [1.0; 3], |x, y, _| if y == 0 { 0 } else { x as u8 });
    let per = overlap_per_label(&p, &r, None).unwrap();
    assert_eq!(per.keys().copied().collect::<Vec<_>>(), vec![1, 2, 3]);
    for l in 1..=3 {
        assert_eq!(per[&l].true_positives, 12);
        assert_eq!(per[&l].false_positives, 4);
        assert_eq!(per[&l], overlap_label(&p, &r, l, None).unwrap());
    }
}

#[test]
fn mismatched_grids_are_an_error() {
    let a = labels([4, 4, 4], [1.0; 3], |_, _, _| 1);
    let moved = LabelVolume::new(
        Array3::from_elem((4, 4, 4), 1u8),
        Geometry::new([1.0; 3], [-10.0, 5.0, 20.5], Geometry::IDENTITY).unwrap(),
    )
    .unwrap();
    let err = overlap(&a, &moved).unwrap_err();
    assert!(matches!(err, Error::GridMismatch { .. }));
    let chain = format!("{err}: {}", std::error::Error::source(&err).unwrap());
    assert!(chain.contains("origin"), "{chain}");
    let finer = labels([4, 4, 4], [0.5, 1.0, 1.0], |_, _, _| 1);
    assert!(matches!(overlap(&a, &finer), Err(Error::GridMismatch { .. })));
}
