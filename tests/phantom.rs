//! Invariants of the synthetic head phantoms, over random seeds and settings.
use msd::phantom::{PhantomConfig, SKULL_LABEL, generate};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    #[test]
    fn phantoms_are_valid_and_deterministic(seed in any::<u64>(), noise in 0.0f64..150.0, metal in any::<bool>()) {
        let config = PhantomConfig::quick().with_noise(noise).with_metal(metal);
        let a = generate(&config, seed).unwrap();
        let b = generate(&config, seed).unwrap();
        prop_assert_eq!(&a.ct, &b.ct);
        prop_assert_eq!(a.ct.shape(), a.skull.shape());
        prop_assert!(a.ct.data().iter().all(|v| v.is_finite() && (-1024.0..=3071.0).contains(v)));
        prop_assert!(a.skull.data().iter().all(|&l| l == 0 || l == SKULL_LABEL));
        let bone = a.skull.data().iter().filter(|&&l| l == SKULL_LABEL).count();
        prop_assert!(bone > 1000);
        // The skull never touches the border of the field of view.
        let [nz, ny, nx] = a.skull.shape();
        for ((z, y, x), &l) in a.skull.data().indexed_iter() {
            if l != 0 {
                prop_assert!(z > 0 && y > 0 && x > 0 && z + 1 < nz && y + 1 < ny && x + 1 < nx);
            }
        }
        // Craniectomy and region come together, and the region lies on the grid.
        prop_assert_eq!(a.craniectomy.is_some(), a.defect_region.is_some());
        if let Some(r) = &a.defect_region {
            prop_assert!(r.check_same_grid(&a.ct, 1e-9).is_ok());
        }
    }

    #[test]
    fn anisotropic_spacing_keeps_the_head_in_millimetres(sz in 1.5f64..3.0) {
        let mut config = PhantomConfig::quick().with_noise(0.0).with_craniectomy_probability(0.0);
        config.spacing[2] = sz;
        config.shape[0] = (100.0 / sz).ceil() as usize;
        let p = generate(&config, 3).unwrap();
        let ml = p.skull.data().iter().filter(|&&l| l != 0).count() as f64 * p.skull.geometry().voxel_volume_mm3() / 1000.0;
        // The same head (same seed) has the same bone volume whatever the slice thickness, to within
        // the sampling error of thick slices.
        let reference = {
            let mut c = config.clone();
            c.spacing[2] = 2.0;
            c.shape[0] = 50;
            let q = generate(&c, 3).unwrap();
            q.skull.data().iter().filter(|&&l| l != 0).count() as f64 * q.skull.geometry().voxel_volume_mm3() / 1000.0
        };
        prop_assert!((ml - reference).abs() < 0.08 * reference, "{} ml vs {} ml", ml, reference);
    }
}
