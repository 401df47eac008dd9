//! The global-threshold baseline engineers use today, and the clean-up they do after it.
//!
//! Thresholding CT at a fixed Hounsfield level (300 HU is common for bone) is what a medical engineer
//! does by hand before hours of mesh clean-up. It is the yardstick MSDnet is compared against: it
//! misses thin, partial-volumed bone (the temples, the orbits), picks up noise, metal and calcified
//! structures, and knows nothing of context.
//!
//! [`engineers_recipe`] is the whole recipe the references of `../shared/data` and of the project's
//! accuracy targets were made with: `≥ 300 HU`, the largest 26-connected component (drops the table,
//! the head holder and noise specks), enclosed pockets up to 100 mm³ filled
//! ([`msd_geom::Cleanup::default`]).
//!
//! ```
//! use msd_pipeline::baseline::{engineers_recipe, keep_largest_component, threshold};
//! use msd_phantom::{PhantomConfig, generate};
//!
//! let head = generate(&PhantomConfig::quick(), 1)?;
//! let bone = threshold(&head.ct, 300.0);
//! let cleaned = keep_largest_component(&bone);
//! let count = |l: &msd_io::LabelVolume| l.data().iter().filter(|&&v| v == 1).count();
//! assert!(count(&cleaned) <= count(&bone));
//! let skull = engineers_recipe(&head.ct, 300.0)?;
//! assert!(count(&skull) > 0);
//! Ok::<(), Box<dyn std::error::Error>>(())
//! ```
use msd_geom::{Cleanup, Connectivity, KeepComponents, label_components};
use msd_io::{LabelVolume, Volume};
use ndarray::Array3;

use crate::Result;

/// Default bone threshold in Hounsfield units.
pub const DEFAULT_BONE_HU: f32 = 300.0;

/// Labels every voxel at or above `hu` as 1, the rest as 0 (NaN voxels are 0).
pub fn threshold(ct: &Volume<f32>, hu: f32) -> LabelVolume {
    ct.map(|&v| u8::from(v >= hu))
}

/// The engineers' skull: [`threshold`] at `hu`, then [`msd_geom::Cleanup::default`] (the largest
/// 26-connected component, pockets up to 100 mm³ filled).
pub fn engineers_recipe(ct: &Volume<f32>, hu: f32) -> Result<LabelVolume> {
    Ok(Cleanup::default().apply(&threshold(ct, hu))?.0)
}

/// Connected components (6-connectivity) of the non-zero voxels: a component index per voxel
/// (0 for background, components numbered from 1) and the voxel count of each component (index 0
/// of the counts is the background).
pub fn connected_components(labels: &LabelVolume) -> (Array3<u32>, Vec<usize>) {
    let c = label_components(labels, Connectivity::Six);
    (c.ids, c.sizes)
}

/// Keeps only the largest 6-connected component of the non-zero voxels (as label 1); an empty
/// input stays empty. Removes the noise specks and loose fragments a threshold picks up.
pub fn keep_largest_component(labels: &LabelVolume) -> LabelVolume {
    let cleanup =
        Cleanup { keep: KeepComponents::Largest, connectivity: Connectivity::Six, fill_cavities_mm3: 0.0 };
    cleanup.apply(labels).expect("a clean-up without volumes cannot fail").0
}

/// Removes 6-connected components smaller than `min_voxels` (kept ones become label 1).
pub fn drop_small_components(labels: &LabelVolume, min_voxels: usize) -> LabelVolume {
    let (ids, sizes) = connected_components(labels);
    let data = ids.mapv(|id| u8::from(id != 0 && sizes[id as usize] >= min_voxels));
    labels.with_data(data).expect("same shape as the input")
}

#[cfg(test)]
mod tests {
    use super::*;
    use msd_io::Geometry;

    fn vol(data: Array3<u8>) -> LabelVolume {
        Volume::new(data, Geometry::default()).unwrap()
    }

    #[test]
    fn threshold_is_inclusive_and_ignores_nan() {
        let ct = Volume::new(
            Array3::from_shape_vec((1, 1, 4), vec![299.0, 300.0, f32::NAN, 1000.0]).unwrap(),
            Geometry::default(),
        )
        .unwrap();
        let l = threshold(&ct, 300.0);
        assert_eq!(l.data().iter().copied().collect::<Vec<_>>(), vec![0, 1, 0, 1]);
    }

    #[test]
    fn components_are_six_connected() {
        let mut a = Array3::<u8>::zeros((3, 3, 3));
        a[[0, 0, 0]] = 1;
        a[[1, 1, 1]] = 1; // touches [0,0,0] only diagonally: separate
        a[[1, 1, 2]] = 1;
        a[[2, 1, 2]] = 1;
        let (ids, sizes) = connected_components(&vol(a.clone()));
        assert_eq!(sizes, vec![0, 1, 3]);
        assert_ne!(ids[[0, 0, 0]], ids[[1, 1, 1]]);
        let largest = keep_largest_component(&vol(a.clone()));
        assert_eq!(largest.data()[[0, 0, 0]], 0);
        assert_eq!(largest.data()[[2, 1, 2]], 1);
        let dropped = drop_small_components(&vol(a), 2);
        assert_eq!(dropped.data().iter().filter(|&&v| v == 1).count(), 3);
    }

    #[test]
    fn the_recipe_drops_the_table_and_fills_pockets() {
        // A bone block with a 1-voxel pocket, and a separate "table" slab below it.
        let ct = Array3::from_shape_fn((12, 12, 12), |(z, y, x)| {
            let bone =
                (2..8).contains(&z) && (2..8).contains(&y) && (2..8).contains(&x) && (z, y, x) != (4, 4, 4);
            let table = z == 10;
            if bone || table { 1000.0 } else { 0.0 }
        });
        let skull = engineers_recipe(&Volume::new(ct, Geometry::default()).unwrap(), 300.0).unwrap();
        assert_eq!(skull.data().iter().filter(|&&v| v == 1).count(), 216);
        assert_eq!(skull.data()[[4, 4, 4]], 1);
        assert_eq!(skull.data()[[10, 0, 0]], 0);
    }

    #[test]
    fn empty_stays_empty() {
        let e = vol(Array3::zeros((2, 2, 2)));
        assert!(keep_largest_component(&e).data().iter().all(|&v| v == 0));
    }
}
