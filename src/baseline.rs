//! The global-threshold baseline engineers use today, and connected-component clean-up of labels.
//!
//! Thresholding CT at a fixed Hounsfield level (300 HU is common for bone) is what a medical engineer
//! does by hand before hours of mesh clean-up. It is the yardstick MSDnet is compared against: it
//! misses thin, partial-volumed bone (the temples, the orbits), picks up noise, metal and calcified
//! structures, and knows nothing of context.
//!
//! ```
//! use msd::baseline::{keep_largest_component, threshold};
//! use msd::phantom::{PhantomConfig, generate};
//!
//! let head = generate(&PhantomConfig::quick(), 1)?;
//! let bone = threshold(&head.ct, 300.0);
//! let cleaned = keep_largest_component(&bone);
//! assert!(cleaned.data().iter().filter(|&&v| v == 1).count() <= bone.data().iter().filter(|&&v| v == 1).count());
//! Ok::<(), Box<dyn std::error::Error>>(())
//! ```
use msd_io::{LabelVolume, Volume};
use ndarray::Array3;

/// Default bone threshold in Hounsfield units.
pub const DEFAULT_BONE_HU: f32 = 300.0;

/// Labels every voxel at or above `hu` as 1, the rest as 0 (NaN voxels are 0).
pub fn threshold(ct: &Volume<f32>, hu: f32) -> LabelVolume {
    ct.map(|&v| u8::from(v >= hu))
}

/// Connected components (6-connectivity) of the non-zero voxels: a component index per voxel
/// (0 for background, components numbered from 1) and the voxel count of each component (index 0
/// of the counts is the background).
pub fn connected_components(labels: &LabelVolume) -> (Array3<u32>, Vec<usize>) {
    let data = labels.data();
    let (nz, ny, nx) = data.dim();
    let mut ids = Array3::<u32>::zeros((nz, ny, nx));
    let mut sizes = vec![0usize];
    let mut stack = Vec::new();
    for z in 0..nz {
        for y in 0..ny {
            for x in 0..nx {
                if data[[z, y, x]] == 0 || ids[[z, y, x]] != 0 {
                    continue;
                }
                let id = sizes.len() as u32;
                let mut size = 0usize;
                ids[[z, y, x]] = id;
                stack.push((z, y, x));
                while let Some((z, y, x)) = stack.pop() {
                    size += 1;
                    let mut visit = |z: usize, y: usize, x: usize| {
                        if data[[z, y, x]] != 0 && ids[[z, y, x]] == 0 {
                            ids[[z, y, x]] = id;
                            stack.push((z, y, x));
                        }
                    };
                    if z > 0 {
                        visit(z - 1, y, x);
                    }
                    if z + 1 < nz {
                        visit(z + 1, y, x);
                    }
                    if y > 0 {
                        visit(z, y - 1, x);
                    }
                    if y + 1 < ny {
                        visit(z, y + 1, x);
                    }
                    if x > 0 {
                        visit(z, y, x - 1);
                    }
                    if x + 1 < nx {
                        visit(z, y, x + 1);
                    }
                }
                sizes.push(size);
            }
        }
    }
    (ids, sizes)
}

/// Keeps only the largest 6-connected component of the non-zero voxels (as label 1); an empty
/// input stays empty. Removes the noise specks and loose fragments a threshold picks up.
pub fn keep_largest_component(labels: &LabelVolume) -> LabelVolume {
    let (ids, sizes) = connected_components(labels);
    let largest = sizes.iter().enumerate().skip(1).max_by_key(|(_, s)| **s).map(|(i, _)| i as u32);
    match largest {
        None => labels.map(|_| 0),
        Some(keep) => {
            let data = ids.mapv(|id| u8::from(id == keep));
            Volume::new(data, *labels.geometry()).expect("same non-empty shape as the input")
        }
    }
}

/// Removes 6-connected components smaller than `min_voxels` (kept ones become label 1).
pub fn drop_small_components(labels: &LabelVolume, min_voxels: usize) -> LabelVolume {
    let (ids, sizes) = connected_components(labels);
    let data = ids.mapv(|id| u8::from(id != 0 && sizes[id as usize] >= min_voxels));
    Volume::new(data, *labels.geometry()).expect("same non-empty shape as the input")
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
    fn empty_stays_empty() {
        let e = vol(Array3::zeros((2, 2, 2)));
        assert!(keep_largest_component(&e).data().iter().all(|&v| v == 0));
    }
}
