//! Summaries of a set of point-to-surface distances: mean (MAD), RMS, median, HD95, maximum.
use serde::{Deserialize, Serialize};

/// Statistics of distances (mm) from points on one surface to another surface, each point standing
/// for an equal share of its surface (area-uniform samples or surface voxels).
///
/// All values are NaN (written as `null` in JSON) when there are no points, e.g. when a region
/// holds no part of the surface.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DistanceSummary {
    /// Number of points (samples or surface voxels) the statistics are over.
    pub points: usize,
    /// Surface area the points stand for, in mm² (NaN for surface voxels, which carry no area).
    pub area_mm2: f64,
    /// Mean absolute distance (MAD, also "average surface distance"), mm.
    pub mean_mm: f64,
    /// Root mean square distance, mm.
    pub rms_mm: f64,
    /// Median distance, mm.
    pub median_mm: f64,
    /// 95th percentile of the distances (the directed HD95), mm.
    pub hd95_mm: f64,
    /// Largest distance (the directed Hausdorff distance), mm.
    pub max_mm: f64,
}

impl DistanceSummary {
    /// The summary of no points: every statistic NaN.
    pub fn empty() -> Self {
        DistanceSummary {
            points: 0,
            area_mm2: f64::NAN,
            mean_mm: f64::NAN,
            rms_mm: f64::NAN,
            median_mm: f64::NAN,
            hd95_mm: f64::NAN,
            max_mm: f64::NAN,
        }
    }
}

/// Distances of one point set, each point with the same weight (mm² of surface, or 1).
pub(crate) struct WeightedDistances<'a> {
    pub(crate) distances: &'a [f32],
    pub(crate) weight: f64,
}

/// Weighted summary over one or two point sets (the symmetric summary pools both directions,
/// weighting each point by the area it stands for). HD95 is the larger of the sets' own 95th
/// percentiles, as DeepMind's `compute_robust_hausdorff` and MONAI's `compute_hausdorff_distance`
/// define the symmetric value.
pub(crate) fn summarise(sets: &[WeightedDistances<'_>], area_mm2: f64) -> DistanceSummary {
    let points: usize = sets.iter().map(|s| s.distances.len()).sum();
    if points == 0 {
        return DistanceSummary::empty();
    }
    let mut total_w = 0.0;
    let (mut sum, mut sum2, mut max) = (0.0f64, 0.0f64, 0.0f64);
    for s in sets {
        let (mut a, mut b) = (0.0f64, 0.0f64);
        for &d in s.distances {
            let d = f64::from(d);
            a += d;
            b += d * d;
            max = max.max(d);
        }
        sum += a * s.weight;
        sum2 += b * s.weight;
        total_w += s.weight * s.distances.len() as f64;
    }
    let mut pooled: Vec<(f32, f64)> =
        sets.iter().flat_map(|s| s.distances.iter().map(move |&d| (d, s.weight))).collect();
    pooled.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    let hd95 = sets
        .iter()
        .filter(|s| !s.distances.is_empty())
        .map(|s| {
            let mut d = s.distances.to_vec();
            d.sort_unstable_by(f32::total_cmp);
            f64::from(percentile_sorted(&d, 95.0))
        })
        .fold(f64::NAN, f64::max);
    DistanceSummary {
        points,
        area_mm2,
        mean_mm: sum / total_w,
        rms_mm: (sum2 / total_w).sqrt(),
        median_mm: weighted_percentile(&pooled, 50.0, total_w),
        hd95_mm: hd95,
        max_mm: max,
    }
}

/// The smallest distance at which the cumulative share reaches `percent` (as DeepMind's
/// `compute_robust_hausdorff`: `searchsorted` on the cumulative weights).
fn weighted_percentile(sorted: &[(f32, f64)], percent: f64, total_w: f64) -> f64 {
    let target = percent / 100.0 * total_w;
    let mut cum = 0.0;
    for &(d, w) in sorted {
        cum += w;
        if cum >= target * (1.0 - 1e-12) {
            return f64::from(d);
        }
    }
    sorted.last().map_or(f64::NAN, |p| f64::from(p.0))
}

/// Percentile of equally weighted sorted values, by the same rule as [`weighted_percentile`].
pub(crate) fn percentile_sorted(sorted: &[f32], percent: f64) -> f32 {
    if sorted.is_empty() {
        return f32::NAN;
    }
    let k = ((percent / 100.0 * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[k - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_of_known_values() {
        let d: Vec<f32> = (1..=100).map(|i| i as f32).collect();
        let s = summarise(&[WeightedDistances { distances: &d, weight: 2.0 }], 200.0);
        assert_eq!(s.points, 100);
        assert!((s.mean_mm - 50.5).abs() < 1e-9);
        assert_eq!(s.median_mm, 50.0);
        assert_eq!(s.hd95_mm, 95.0);
        assert_eq!(s.max_mm, 100.0);
        let rms = ((1..=100).map(|i| (i * i) as f64).sum::<f64>() / 100.0).sqrt();
        assert!((s.rms_mm - rms).abs() < 1e-9);
    }

    #[test]
    fn pooled_summary_weights_by_area_and_takes_larger_hd95() {
        let a = [1.0f32; 10];
        let b = [3.0f32; 10];
        // b's points stand for three times the area of a's: mean = (1·1 + 3·3) / 4 = 2.5.
        let s = summarise(
            &[
                WeightedDistances { distances: &a, weight: 1.0 },
                WeightedDistances { distances: &b, weight: 3.0 },
            ],
            40.0,
        );
        assert!((s.mean_mm - 2.5).abs() < 1e-12);
        assert_eq!(s.hd95_mm, 3.0);
        assert_eq!(s.median_mm, 3.0);
        assert!(summarise(&[], 0.0).mean_mm.is_nan());
    }
}
