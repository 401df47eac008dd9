//! Invariants on random inputs: Dice in [0, 1], symmetric metrics symmetric, regions only remove.
use msd_metrics::{Region, SurfaceDistanceOptions, label_surface_distances, overlap};
use proptest::prelude::*;

use crate::fixtures::{icosphere, labels};

fn random_labels(seed: u64, density: f64) -> msd_io::LabelVolume {
    labels([6, 7, 8], [0.8, 1.1, 2.0], move |x, y, z| {
        let h = (seed ^ ((x * 73 + y * 151 + z * 313) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .wrapping_mul(0xBF58_476D_1CE4_E5B9);
        u8::from(((h >> 40) as f64 / (1u64 << 24) as f64) < density)
    })
}

/// Equal statistics, NaN equal to NaN (voxel summaries carry a NaN area).
fn same(a: &msd_metrics::DistanceSummary, b: &msd_metrics::DistanceSummary) -> bool {
    let eq = |x: f64, y: f64| x == y || (x.is_nan() && y.is_nan());
    a.points == b.points
        && eq(a.area_mm2, b.area_mm2)
        && eq(a.mean_mm, b.mean_mm)
        && eq(a.rms_mm, b.rms_mm)
        && eq(a.median_mm, b.median_mm)
        && eq(a.hd95_mm, b.hd95_mm)
        && eq(a.max_mm, b.max_mm)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn dice_is_bounded_symmetric_and_tied_to_jaccard(sa in any::<u64>(), sb in any::<u64>(), da in 0.0f64..1.0, db in 0.0f64..1.0) {
        let (a, b) = (random_labels(sa, da), random_labels(sb, db));
        let ab = overlap(&a, &b).unwrap();
        let ba = overlap(&b, &a).unwrap();
        prop_assert!((0.0..=1.0).contains(&ab.dice()));
        prop_assert_eq!(ab.dice(), ba.dice());
        prop_assert_eq!(ab.sensitivity(), ba.precision());
        prop_assert!((ab.jaccard() - ab.dice() / (2.0 - ab.dice())).abs() < 1e-12);
    }

    #[test]
    fn label_distances_are_symmetric(sa in any::<u64>(), sb in any::<u64>()) {
        let (a, b) = (random_labels(sa, 0.4), random_labels(sb, 0.4));
        let (Ok(ab), Ok(ba)) = (label_surface_distances(&a, &b, None, 1.0, None), label_surface_distances(&b, &a, None, 1.0, None)) else {
            return Ok(()); // an empty draw has no surface
        };
        prop_assert_eq!(ab.symmetric.mean_mm, ba.symmetric.mean_mm);
        prop_assert_eq!(ab.hd95_mm(), ba.hd95_mm());
        prop_assert_eq!(ab.surface_dice, ba.surface_dice);
        prop_assert!(same(&ab.pred_to_ref, &ba.ref_to_pred));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn surface_metrics_are_symmetric_and_regions_only_remove(
        dx in -3.0f32..3.0, dy in -3.0f32..3.0, r in 5.0f32..9.0, seed in any::<u64>(),
        cx in -8.0f64..8.0, cr in 0.0f64..12.0,
    ) {
        let a = icosphere([0.0; 3], 7.0, 3);
        let b = icosphere([dx, dy, 0.5], r, 3);
        let opts = SurfaceDistanceOptions::new().samples_per_mm2(0.5).seed(seed);
        let ab = opts.compute(&a, &b).unwrap();
        let ba = opts.compute(&b, &a).unwrap();
        prop_assert!(same(&ab.pred_to_ref, &ba.ref_to_pred));
        prop_assert_eq!(ab.symmetric.mean_mm, ba.symmetric.mean_mm);
        prop_assert_eq!(ab.hd95_mm(), ba.hd95_mm());
        prop_assert_eq!(ab.surface_dice, ba.surface_dice);
        prop_assert!((0.0..=1.0).contains(&ab.surface_dice));
        prop_assert!(ab.symmetric.median_mm <= ab.symmetric.max_mm && ab.hd95_mm() <= ab.hausdorff_mm());
        prop_assert!(ab.symmetric.mean_mm <= ab.symmetric.rms_mm + 1e-9);
        let local = opts.clone().region(Region::sphere([cx, 0.0, 0.0], cr).unwrap()).compute(&a, &b).unwrap();
        prop_assert!(local.pred_to_ref.points <= ab.pred_to_ref.points);
        prop_assert!(local.ref_to_pred.points <= ab.ref_to_pred.points);
        if local.symmetric.points > 0 {
            prop_assert!(local.symmetric.max_mm <= ab.symmetric.max_mm);
        }
    }
}
