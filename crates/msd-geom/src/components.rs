//! Connected components of a label volume and the clean-up medical engineers do after a bone
//! threshold: keep the skull (the largest connected piece of bone, or every piece above a volume),
//! drop the table, the head holder and noise specks, and fill the small enclosed pockets.
//!
//! How components are found, and an example, are documented on [`Cleanup`].
use msd_io::LabelVolume;
use ndarray::Array3;

use crate::{Error, Result, fill_cavities};

/// Which voxels count as neighbours when joining labelled voxels into components.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Connectivity {
    /// Face neighbours only (6 per voxel).
    Six,
    /// Face, edge and corner neighbours (26 per voxel): the engineers' recipe.
    #[default]
    TwentySix,
}

impl Connectivity {
    /// The neighbour offsets `(dz, dy, dx)`.
    fn offsets(self) -> Vec<[isize; 3]> {
        let mut v = Vec::with_capacity(26);
        for dz in -1isize..=1 {
            for dy in -1isize..=1 {
                for dx in -1isize..=1 {
                    let manhattan = dz.abs() + dy.abs() + dx.abs();
                    let keep = match self {
                        Connectivity::Six => manhattan == 1,
                        Connectivity::TwentySix => manhattan >= 1,
                    };
                    if keep {
                        v.push([dz, dy, dx]);
                    }
                }
            }
        }
        v
    }
}

/// The connected components of the non-zero voxels of a label volume.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelComponents {
    /// Component of every voxel `[z, y, x]`: 0 for background, components numbered from 1.
    pub ids: Array3<u32>,
    /// Voxel count of each component; index 0 (the background) is 0.
    pub sizes: Vec<usize>,
}

impl LabelComponents {
    /// The id of the largest component (`None` when there is no labelled voxel).
    pub fn largest(&self) -> Option<u32> {
        self.sizes
            .iter()
            .enumerate()
            .skip(1)
            .max_by_key(|(i, s)| (**s, std::cmp::Reverse(*i)))
            .map(|(i, _)| i as u32)
    }

    /// Number of components (the background not counted).
    pub fn count(&self) -> usize {
        self.sizes.len() - 1
    }
}

/// Finds the connected components of the non-zero voxels of `labels`.
pub fn label_components(labels: &LabelVolume, connectivity: Connectivity) -> LabelComponents {
    let data = labels.data();
    let (nz, ny, nx) = data.dim();
    let offsets = connectivity.offsets();
    let mut ids = Array3::<u32>::zeros((nz, ny, nx));
    let mut sizes = vec![0usize];
    let mut stack: Vec<[usize; 3]> = Vec::new();
    for ((z, y, x), &v) in data.indexed_iter() {
        if v == 0 || ids[[z, y, x]] != 0 {
            continue;
        }
        let id = sizes.len() as u32;
        ids[[z, y, x]] = id;
        stack.push([z, y, x]);
        let mut size = 0usize;
        while let Some([pz, py, px]) = stack.pop() {
            size += 1;
            for [dz, dy, dx] in &offsets {
                let (qz, qy, qx) =
                    (pz.wrapping_add_signed(*dz), py.wrapping_add_signed(*dy), px.wrapping_add_signed(*dx));
                // Wrapped-around negatives are huge, so one comparison per axis checks both ends.
                if qz < nz && qy < ny && qx < nx && data[[qz, qy, qx]] != 0 && ids[[qz, qy, qx]] == 0 {
                    ids[[qz, qy, qx]] = id;
                    stack.push([qz, qy, qx]);
                }
            }
        }
        sizes.push(size);
    }
    LabelComponents { ids, sizes }
}

/// Which connected pieces of bone a [`Cleanup`] keeps.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum KeepComponents {
    /// Only the largest component: the skull (with mandible and spine where they touch it).
    #[default]
    Largest,
    /// Every component of at least this volume in mm³ (bone fragments, a separate mandible).
    AtLeastMm3(f64),
    /// Every component.
    All,
}

/// The engineers' clean-up of a bone label: keep the skull's component(s), then fill enclosed
/// pockets up to a volume. The default keeps the largest 26-connected component and fills
/// pockets up to 100 mm³, the recipe the reference labels in `../shared/data` were made with.
///
/// Components are found by a flood fill over the labelled voxels only, so the cost grows with the
/// bone, not with the volume. [`Connectivity::TwentySix`] is what the engineers' recipe uses (two
/// voxels touching at a corner are one piece); [`Connectivity::Six`] joins only face neighbours.
///
/// ```
/// use msd_geom::{Cleanup, Connectivity, KeepComponents};
/// use msd_io::{Geometry, LabelVolume};
/// use ndarray::Array3;
///
/// // A hollow cube of "bone" with a one-voxel pocket, plus a speck far away.
/// let mut a = Array3::<u8>::zeros((9, 9, 9));
/// a.slice_mut(ndarray::s![1..6, 1..6, 1..6]).fill(1);
/// a[[3, 3, 3]] = 0;
/// a[[8, 8, 8]] = 1;
/// let labels = LabelVolume::new(a, Geometry::default())?;
/// let cleanup = Cleanup::default();
/// assert_eq!(cleanup.keep, KeepComponents::Largest);
/// assert_eq!(cleanup.connectivity, Connectivity::TwentySix);
/// let (clean, report) = cleanup.apply(&labels)?;
/// assert_eq!(report.components_removed, 1);
/// assert_eq!(report.voxels_filled, 1);
/// assert_eq!(clean.data().iter().filter(|&&v| v == 1).count(), 125);
/// Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cleanup {
    /// Which components stay.
    pub keep: KeepComponents,
    /// How voxels join into components.
    pub connectivity: Connectivity,
    /// Enclosed background pockets up to this volume (mm³) are filled (0: none).
    pub fill_cavities_mm3: f64,
}

impl Default for Cleanup {
    fn default() -> Self {
        Cleanup {
            keep: KeepComponents::Largest,
            connectivity: Connectivity::TwentySix,
            fill_cavities_mm3: 100.0,
        }
    }
}

/// What a [`Cleanup`] changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CleanupReport {
    /// Components found in the input.
    pub components: usize,
    /// Components removed.
    pub components_removed: usize,
    /// Voxels removed with them.
    pub voxels_removed: usize,
    /// Pocket voxels filled.
    pub voxels_filled: usize,
}

impl Cleanup {
    /// A clean-up that changes nothing.
    pub fn none() -> Self {
        Cleanup { keep: KeepComponents::All, connectivity: Connectivity::TwentySix, fill_cavities_mm3: 0.0 }
    }

    /// Checks that the volumes are finite and non-negative.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: String| Err(Error::InvalidArgument { what });
        if !(self.fill_cavities_mm3.is_finite() && self.fill_cavities_mm3 >= 0.0) {
            return bad(format!(
                "cavity volume {} mm³ must be finite and non-negative",
                self.fill_cavities_mm3
            ));
        }
        if let KeepComponents::AtLeastMm3(v) = self.keep
            && !(v.is_finite() && v >= 0.0)
        {
            return bad(format!("component volume {v} mm³ must be finite and non-negative"));
        }
        Ok(())
    }

    /// Applies the clean-up to the non-zero voxels of `labels`; the result holds 0 and 1.
    pub fn apply(&self, labels: &LabelVolume) -> Result<(LabelVolume, CleanupReport)> {
        self.validate()?;
        let comps = label_components(labels, self.connectivity);
        let voxel_mm3 = labels.geometry().voxel_volume_mm3();
        let keep: Vec<bool> = match self.keep {
            KeepComponents::All => (0..comps.sizes.len()).map(|i| i > 0).collect(),
            KeepComponents::Largest => {
                let l = comps.largest();
                (0..comps.sizes.len()).map(|i| Some(i as u32) == l).collect()
            }
            KeepComponents::AtLeastMm3(v) => {
                comps.sizes.iter().enumerate().map(|(i, &s)| i > 0 && s as f64 * voxel_mm3 >= v).collect()
            }
        };
        let mut report = CleanupReport { components: comps.count(), ..CleanupReport::default() };
        for (i, &s) in comps.sizes.iter().enumerate().skip(1) {
            if !keep[i] {
                report.components_removed += 1;
                report.voxels_removed += s;
            }
        }
        let kept = labels.with_data(comps.ids.mapv(|id| u8::from(keep[id as usize])))?;
        if self.fill_cavities_mm3 > 0.0 {
            let (filled, n) = fill_cavities(&kept, 1, self.fill_cavities_mm3)?;
            report.voxels_filled = n;
            Ok((filled, report))
        } else {
            Ok((kept, report))
        }
    }
}

#[cfg(test)]
mod tests {
    use msd_io::Geometry;
    use proptest::prelude::*;

    use super::*;

    fn vol(a: Array3<u8>) -> LabelVolume {
        LabelVolume::new(a, Geometry::default()).unwrap()
    }

    #[test]
    fn corner_neighbours_join_only_with_26_connectivity() {
        let mut a = Array3::<u8>::zeros((3, 3, 3));
        a[[0, 0, 0]] = 1;
        a[[1, 1, 1]] = 1;
        a[[2, 1, 1]] = 1;
        let six = label_components(&vol(a.clone()), Connectivity::Six);
        assert_eq!(six.sizes, vec![0, 1, 2]);
        let all = label_components(&vol(a), Connectivity::TwentySix);
        assert_eq!(all.sizes, vec![0, 3]);
        assert_eq!(all.largest(), Some(1));
    }

    #[test]
    fn keeps_pieces_above_a_volume() {
        let mut a = Array3::<u8>::zeros((10, 10, 10));
        a.slice_mut(ndarray::s![0..3, 0..3, 0..3]).fill(1); // 27 voxels
        a.slice_mut(ndarray::s![6..8, 6..8, 6..8]).fill(1); // 8 voxels
        a[[9, 0, 9]] = 1; // 1 voxel
        let g = Geometry::new([0.5, 0.5, 2.0], [0.0; 3], Geometry::IDENTITY).unwrap(); // 0.5 mm³
        let labels = LabelVolume::new(a, g).unwrap();
        let c = Cleanup { keep: KeepComponents::AtLeastMm3(3.0), ..Cleanup::default() };
        let (out, report) = c.apply(&labels).unwrap();
        assert_eq!(out.data().iter().filter(|&&v| v == 1).count(), 35);
        assert_eq!((report.components, report.components_removed, report.voxels_removed), (3, 1, 1));
        let (largest, _) = Cleanup::default().apply(&labels).unwrap();
        assert_eq!(largest.data().iter().filter(|&&v| v == 1).count(), 27);
        let (same, r) = Cleanup::none().apply(&labels).unwrap();
        assert_eq!(same.data(), labels.data());
        assert_eq!(r.components_removed + r.voxels_filled, 0);
    }

    #[test]
    fn pockets_above_the_volume_stay_open() {
        // A 7³ cube with a 3³ pocket (27 mm³ at 1 mm voxels).
        let mut a = Array3::<u8>::zeros((9, 9, 9));
        a.slice_mut(ndarray::s![1..8, 1..8, 1..8]).fill(1);
        a.slice_mut(ndarray::s![3..6, 3..6, 3..6]).fill(0);
        let labels = vol(a);
        let small = Cleanup { fill_cavities_mm3: 20.0, ..Cleanup::default() };
        assert_eq!(small.apply(&labels).unwrap().1.voxels_filled, 0);
        let big = Cleanup { fill_cavities_mm3: 27.0, ..Cleanup::default() };
        assert_eq!(big.apply(&labels).unwrap().1.voxels_filled, 27);
    }

    #[test]
    fn bad_volumes_are_refused() {
        for c in [
            Cleanup { fill_cavities_mm3: f64::NAN, ..Cleanup::default() },
            Cleanup { fill_cavities_mm3: -1.0, ..Cleanup::default() },
            Cleanup { keep: KeepComponents::AtLeastMm3(f64::INFINITY), ..Cleanup::default() },
        ] {
            assert!(matches!(c.apply(&vol(Array3::zeros((2, 2, 2)))), Err(Error::InvalidArgument { .. })));
        }
    }

    proptest! {
        /// Component sizes add up to the labelled voxels; every voxel of a component is labelled;
        /// the clean-up's result is a subset of the input plus filled pockets, and idempotent.
        #[test]
        fn components_partition_the_labelled_voxels(bits in proptest::collection::vec(0u8..3, 5 * 6 * 7)) {
            let a = Array3::from_shape_vec((5, 6, 7), bits.iter().map(|&b| u8::from(b == 0)).collect()).unwrap();
            let labels = vol(a.clone());
            for conn in [Connectivity::Six, Connectivity::TwentySix] {
                let c = label_components(&labels, conn);
                prop_assert_eq!(c.sizes.iter().sum::<usize>(), a.iter().filter(|&&v| v != 0).count());
                prop_assert!(c.ids.iter().zip(a.iter()).all(|(&id, &v)| (id == 0) == (v == 0)));
            }
            let (once, _) = Cleanup::default().apply(&labels).unwrap();
            let (twice, r) = Cleanup::default().apply(&once).unwrap();
            prop_assert_eq!(once.data(), twice.data());
            prop_assert_eq!(r.components_removed, 0);
        }
    }
}
