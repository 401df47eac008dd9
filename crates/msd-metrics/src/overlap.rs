//! Voxel overlap between label volumes on one grid: Dice, Jaccard, sensitivity, precision and
//! volume difference, for the foreground, per label, and inside a region.
//!
//! All measures come from three counts (true positives, false positives, false negatives), so one
//! pass over the voxels serves them all; [`Overlap`] keeps the counts and derives the ratios.
use std::borrow::Cow;
use std::collections::BTreeMap;

use msd_io::{Geometry, LabelVolume};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::region::Region;
use crate::{Error, Result};

/// How far (mm) spacings and origins of two volumes may differ for them to share a grid.
pub const GRID_TOLERANCE_MM: f64 = 1e-3;

/// Voxels per parallel work item: large enough to amortise scheduling, small enough to balance.
const CHUNK: usize = 1 << 18;

/// Voxel counts of a prediction against a reference, and the overlap measures derived from them.
///
/// Empty inputs have defined values, so a report never holds a NaN from a ratio:
///
/// | measure | definition | both empty | prediction empty | reference empty |
/// |---|---|---|---|---|
/// | [`dice`](Overlap::dice) | 2TP / (2TP + FP + FN) | 1 | 0 | 0 |
/// | [`jaccard`](Overlap::jaccard) | TP / (TP + FP + FN) | 1 | 0 | 0 |
/// | [`sensitivity`](Overlap::sensitivity) | TP / (TP + FN) | 1 | 0 | 1 (nothing to miss) |
/// | [`precision`](Overlap::precision) | TP / (TP + FP) | 1 | 1 (nothing wrong) | 0 |
/// | [`volume_difference_percent`](Overlap::volume_difference_percent) | 100 (P − R) / R | 0 | −100 | `None` |
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Overlap {
    /// Voxels in both the prediction and the reference.
    pub true_positives: u64,
    /// Voxels in the prediction only.
    pub false_positives: u64,
    /// Voxels in the reference only.
    pub false_negatives: u64,
    /// Volume of one voxel in mm³.
    pub voxel_volume_mm3: f64,
}

impl Overlap {
    /// Voxels in the prediction (TP + FP).
    pub fn predicted_voxels(&self) -> u64 {
        self.true_positives + self.false_positives
    }

    /// Voxels in the reference (TP + FN).
    pub fn reference_voxels(&self) -> u64 {
        self.true_positives + self.false_negatives
    }

    /// Dice similarity coefficient 2TP / (2TP + FP + FN), in [0, 1]; 1 when both are empty.
    pub fn dice(&self) -> f64 {
        let denom = 2 * self.true_positives + self.false_positives + self.false_negatives;
        ratio(2 * self.true_positives, denom, 1.0)
    }

    /// Jaccard index (intersection over union) TP / (TP + FP + FN); 1 when both are empty.
    pub fn jaccard(&self) -> f64 {
        let denom = self.true_positives + self.false_positives + self.false_negatives;
        ratio(self.true_positives, denom, 1.0)
    }

    /// Sensitivity (recall) TP / (TP + FN); 1 when the reference is empty.
    pub fn sensitivity(&self) -> f64 {
        ratio(self.true_positives, self.reference_voxels(), 1.0)
    }

    /// Precision (positive predictive value) TP / (TP + FP); 1 when the prediction is empty.
    pub fn precision(&self) -> f64 {
        ratio(self.true_positives, self.predicted_voxels(), 1.0)
    }

    /// Predicted volume in millilitres.
    pub fn predicted_volume_ml(&self) -> f64 {
        self.predicted_voxels() as f64 * self.voxel_volume_mm3 / 1000.0
    }

    /// Reference volume in millilitres.
    pub fn reference_volume_ml(&self) -> f64 {
        self.reference_voxels() as f64 * self.voxel_volume_mm3 / 1000.0
    }

    /// Predicted minus reference volume in millilitres (positive: the prediction is larger).
    pub fn volume_difference_ml(&self) -> f64 {
        self.predicted_volume_ml() - self.reference_volume_ml()
    }

    /// Volume difference relative to the reference, in percent; 0 when both are empty and `None`
    /// when only the reference is empty (the ratio is unbounded).
    pub fn volume_difference_percent(&self) -> Option<f64> {
        let (p, r) = (self.predicted_voxels(), self.reference_voxels());
        match (p, r) {
            (0, 0) => Some(0.0),
            (_, 0) => None,
            _ => Some(100.0 * (p as f64 - r as f64) / r as f64),
        }
    }

    fn add(self, other: Overlap) -> Overlap {
        Overlap {
            true_positives: self.true_positives + other.true_positives,
            false_positives: self.false_positives + other.false_positives,
            false_negatives: self.false_negatives + other.false_negatives,
            voxel_volume_mm3: self.voxel_volume_mm3,
        }
    }
}

fn ratio(num: u64, denom: u64, if_empty: f64) -> f64 {
    if denom == 0 { if_empty } else { num as f64 / denom as f64 }
}

/// Which voxels count as "inside" a segmentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Foreground,
    Label(u8),
}

impl Class {
    #[inline(always)]
    fn holds(self, v: u8) -> bool {
        match self {
            Class::Foreground => v != 0,
            Class::Label(l) => v == l,
        }
    }
}

/// Overlap of the foregrounds (every non-zero voxel) of a prediction and a reference on one grid.
///
/// Fails with [`Error::GridMismatch`] when the volumes differ in shape, spacing, origin or
/// direction (beyond [`GRID_TOLERANCE_MM`]).
pub fn overlap(pred: &LabelVolume, reference: &LabelVolume) -> Result<Overlap> {
    count(pred, reference, Class::Foreground, None)
}

/// Overlap of the foregrounds counted only at voxels whose centre lies in `region`.
///
/// A [`Region::Mask`] on the volumes' own grid is used voxel for voxel; a mask on another grid is
/// sampled by nearest neighbour at the voxel centres.
pub fn overlap_in_region(pred: &LabelVolume, reference: &LabelVolume, region: &Region) -> Result<Overlap> {
    count(pred, reference, Class::Foreground, Some(region))
}

/// Overlap of one label (voxels equal to `label`), optionally inside a region.
pub fn overlap_label(
    pred: &LabelVolume,
    reference: &LabelVolume,
    label: u8,
    region: Option<&Region>,
) -> Result<Overlap> {
    count(pred, reference, Class::Label(label), region)
}

/// Overlap of every non-zero label present in either volume, in one pass, optionally inside a
/// region. Labels absent from both are not listed.
pub fn overlap_per_label(
    pred: &LabelVolume,
    reference: &LabelVolume,
    region: Option<&Region>,
) -> Result<BTreeMap<u8, Overlap>> {
    check_grid(pred, reference)?;
    let voxel_volume_mm3 = reference.geometry().voxel_volume_mm3();
    let p = contiguous(pred);
    let r = contiguous(reference);
    let mask = region.map(|reg| region_on_grid(reg, reference)).transpose()?;
    // A 256 × 256 confusion matrix of (predicted, reference) label pairs, one per work item.
    let confusion = (0..p.len().div_ceil(CHUNK))
        .into_par_iter()
        .map(|c| {
            let range = c * CHUNK..((c + 1) * CHUNK).min(p.len());
            let mut m = vec![0u64; 256 * 256];
            match &mask {
                None => p[range.clone()].iter().zip(&r[range]).for_each(|(&a, &b)| {
                    m[(a as usize) << 8 | b as usize] += 1;
                }),
                Some(mask) => p[range.clone()].iter().zip(&r[range.clone()]).zip(&mask[range]).for_each(
                    |((&a, &b), &inside)| {
                        m[(a as usize) << 8 | b as usize] += u64::from(inside);
                    },
                ),
            }
            m
        })
        .reduce(
            || vec![0u64; 256 * 256],
            |mut a, b| {
                a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
                a
            },
        );
    let mut out = BTreeMap::new();
    for label in 1..=255usize {
        let tp = confusion[label << 8 | label];
        let pred_total: u64 = confusion[label << 8..(label + 1) << 8].iter().sum();
        let ref_total: u64 = (0..256).map(|a| confusion[a << 8 | label]).sum();
        if pred_total + ref_total > 0 {
            out.insert(
                label as u8,
                Overlap {
                    true_positives: tp,
                    false_positives: pred_total - tp,
                    false_negatives: ref_total - tp,
                    voxel_volume_mm3,
                },
            );
        }
    }
    Ok(out)
}

fn check_grid(pred: &LabelVolume, reference: &LabelVolume) -> Result<()> {
    pred.check_same_grid(reference, GRID_TOLERANCE_MM)
        .map_err(|source| Error::GridMismatch { what: "prediction and reference", source })
}

/// The voxels in memory order ([z, y, x] for standard-layout arrays); copies only if the array is
/// not contiguous in standard order.
fn contiguous(v: &LabelVolume) -> Cow<'_, [u8]> {
    match v.data().as_slice() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(v.data().iter().copied().collect()),
    }
}

/// Region membership (1 inside, 0 outside) of every voxel centre of `grid`, in standard order.
pub(crate) fn region_on_grid<'a>(region: &'a Region, grid: &LabelVolume) -> Result<Cow<'a, [u8]>> {
    region.validate()?;
    if let Region::Mask(mask) = region
        && mask.check_same_grid(grid, GRID_TOLERANCE_MM).is_ok()
        && let Some(s) = mask.data().as_slice()
    {
        return Ok(Cow::Borrowed(s));
    }
    let tester = region.tester();
    let g: &Geometry = grid.geometry();
    let [nz, ny, nx] = grid.shape();
    let mut out = vec![0u8; nz * ny * nx];
    out.par_chunks_mut(nx).enumerate().for_each(|(row, line)| {
        let (z, y) = (row / ny, row % ny);
        for (x, cell) in line.iter_mut().enumerate() {
            let p = g.index_to_world([x as f64, y as f64, z as f64]);
            *cell = u8::from(tester.contains(p));
        }
    });
    Ok(Cow::Owned(out))
}

fn count(
    pred: &LabelVolume,
    reference: &LabelVolume,
    class: Class,
    region: Option<&Region>,
) -> Result<Overlap> {
    check_grid(pred, reference)?;
    let voxel_volume_mm3 = reference.geometry().voxel_volume_mm3();
    let p = contiguous(pred);
    let r = contiguous(reference);
    let mask = region.map(|reg| region_on_grid(reg, reference)).transpose()?;
    let zero = Overlap { true_positives: 0, false_positives: 0, false_negatives: 0, voxel_volume_mm3 };
    let total = (0..p.len().div_ceil(CHUNK))
        .into_par_iter()
        .map(|c| {
            let range = c * CHUNK..((c + 1) * CHUNK).min(p.len());
            let (p, r) = (&p[range.clone()], &r[range.clone()]);
            let (mut np, mut nr, mut both) = (0u64, 0u64, 0u64);
            match &mask {
                // Branch-free counting so the loop vectorises.
                None => {
                    for (&a, &b) in p.iter().zip(r) {
                        let (a, b) = (class.holds(a) as u64, class.holds(b) as u64);
                        np += a;
                        nr += b;
                        both += a & b;
                    }
                }
                Some(mask) => {
                    for ((&a, &b), &m) in p.iter().zip(r).zip(&mask[range]) {
                        let m = (m != 0) as u64;
                        let (a, b) = (class.holds(a) as u64 & m, class.holds(b) as u64 & m);
                        np += a;
                        nr += b;
                        both += a & b;
                    }
                }
            }
            Overlap {
                true_positives: both,
                false_positives: np - both,
                false_negatives: nr - both,
                voxel_volume_mm3,
            }
        })
        .reduce(|| zero, Overlap::add);
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    fn vol(data: Array3<u8>) -> LabelVolume {
        LabelVolume::new(data, Geometry::new([0.5, 1.0, 2.0], [0.0; 3], Geometry::IDENTITY).unwrap()).unwrap()
    }

    /// A naive count through ndarray indexing, to check the vectorised pass against.
    fn naive(p: &LabelVolume, r: &LabelVolume, label: u8) -> (u64, u64, u64) {
        let (mut tp, mut fp, mut fn_) = (0, 0, 0);
        for (a, b) in p.data().iter().zip(r.data()) {
            match (*a == label, *b == label) {
                (true, true) => tp += 1,
                (true, false) => fp += 1,
                (false, true) => fn_ += 1,
                _ => {}
            }
        }
        (tp, fp, fn_)
    }

    #[test]
    fn counts_match_naive_and_volume_uses_spacing() {
        let p = vol(Array3::from_shape_fn((7, 9, 11), |(z, y, x)| ((x + 2 * y + 3 * z) % 4) as u8));
        let r = vol(Array3::from_shape_fn((7, 9, 11), |(z, y, x)| ((x * y + z) % 3) as u8));
        let per = overlap_per_label(&p, &r, None).unwrap();
        for label in 1..=3u8 {
            let o = overlap_label(&p, &r, label, None).unwrap();
            let (tp, fp, fn_) = naive(&p, &r, label);
            assert_eq!((o.true_positives, o.false_positives, o.false_negatives), (tp, fp, fn_));
            assert_eq!(per[&label], o);
        }
        let o = overlap_label(&p, &r, 1, None).unwrap();
        assert!((o.predicted_volume_ml() - o.predicted_voxels() as f64 * 1e-3).abs() < 1e-12);
    }

    #[test]
    fn empty_inputs_have_documented_values() {
        let empty = vol(Array3::zeros((2, 2, 2)));
        let full = vol(Array3::from_elem((2, 2, 2), 1));
        let both = overlap(&empty, &empty).unwrap();
        assert_eq!((both.dice(), both.jaccard(), both.sensitivity(), both.precision()), (1.0, 1.0, 1.0, 1.0));
        assert_eq!(both.volume_difference_percent(), Some(0.0));
        let pred_empty = overlap(&empty, &full).unwrap();
        assert_eq!((pred_empty.dice(), pred_empty.sensitivity(), pred_empty.precision()), (0.0, 0.0, 1.0));
        assert_eq!(pred_empty.volume_difference_percent(), Some(-100.0));
        let ref_empty = overlap(&full, &empty).unwrap();
        assert_eq!((ref_empty.dice(), ref_empty.sensitivity(), ref_empty.precision()), (0.0, 1.0, 0.0));
        assert_eq!(ref_empty.volume_difference_percent(), None);
    }

    #[test]
    fn grid_mismatch_is_an_error() {
        let a = vol(Array3::zeros((2, 2, 2)));
        let b = LabelVolume::new(Array3::zeros((2, 2, 2)), Geometry::default()).unwrap();
        assert!(matches!(overlap(&a, &b), Err(Error::GridMismatch { .. })));
        let c = vol(Array3::zeros((2, 2, 3)));
        assert!(matches!(overlap(&a, &c), Err(Error::GridMismatch { .. })));
    }

    #[test]
    fn region_on_another_grid_is_sampled_at_voxel_centres() {
        let p = vol(Array3::from_elem((4, 4, 4), 1));
        let r = vol(Array3::from_shape_fn((4, 4, 4), |(_, _, x)| u8::from(x < 2)));
        // The same half-space x < 1 mm as a sphere-free mask on a 1 mm grid.
        let coarse = Geometry::new([1.0; 3], [0.0; 3], Geometry::IDENTITY).unwrap();
        let mask =
            LabelVolume::new(Array3::from_shape_fn((8, 8, 2), |(_, _, x)| u8::from(x == 0)), coarse).unwrap();
        let o = overlap_in_region(&p, &r, &Region::Mask(mask)).unwrap();
        // Voxel centres x = 0 and 0.5 mm round to mask column 0 (0.5 rounds away from zero → 1).
        assert_eq!(o.true_positives, 16);
        assert_eq!(o.false_positives, 0);
    }
}
