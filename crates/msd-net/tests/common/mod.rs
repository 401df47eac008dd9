//! Synthetic data shared by the integration tests.
use msd_io::{Geometry, LabelVolume, Volume};
use msd_net::{Augmentation, LossConfig, MsdConfig, TrainConfig};
use ndarray::Array3;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};

/// `n` slices of `size²` pixels: air, a soft-tissue disc, a bone ring around it (label 1), noise.
pub fn disc_and_ring(n: usize, size: usize, seed: u64, spacing: f64) -> (Volume<f32>, LabelVolume) {
    let mut rng = StdRng::seed_from_u64(seed);
    let noise = Normal::new(0.0f32, 60.0).unwrap();
    let mut ct = Array3::<f32>::zeros((n, size, size));
    let mut lb = Array3::<u8>::zeros((n, size, size));
    for z in 0..n {
        let s = size as f64;
        let (cx, cy) = (rng.random_range(0.4..0.6) * s, rng.random_range(0.4..0.6) * s);
        let r_in = rng.random_range(0.18..0.25) * s;
        let thick = rng.random_range(0.05..0.09) * s;
        for y in 0..size {
            for x in 0..size {
                // Positions in mm so that the anatomy has the same size at any spacing.
                let r = ((x as f64 - cx).powi(2) + (y as f64 - cy).powi(2)).sqrt();
                let (hu, label) = if r < r_in {
                    (40.0, 0)
                } else if r < r_in + thick {
                    (900.0, 1)
                } else {
                    (-1000.0, 0)
                };
                ct[[z, y, x]] = hu + noise.sample(&mut rng);
                lb[[z, y, x]] = label;
            }
        }
    }
    let g = Geometry::new([spacing, spacing, 2.0], [0.0; 3], Geometry::IDENTITY).unwrap();
    (Volume::new(ct, g).unwrap(), Volume::new(lb, g).unwrap())
}

/// A depth-10 network and settings that learn the disc-and-ring images in about a second.
pub fn small_config() -> TrainConfig {
    TrainConfig {
        network: MsdConfig::new(10, 1, 1, 2),
        epochs: 120,
        batch_size: 4,
        patch_size: Some(40),
        validation_fraction: 0.2,
        early_stopping_patience: None,
        augmentation: Augmentation::default(),
        loss: LossConfig { class_weights: Some(vec![1.0, 2.0]), dice_weight: 0.5 },
        seed: 7,
        ..TrainConfig::default()
    }
}
