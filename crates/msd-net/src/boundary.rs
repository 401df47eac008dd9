//! Placing the skull boundary where the label definition puts it: the network decides *which*
//! voxels are skull, the scan's own iso-surface decides *where* the boundary runs.
//!
//! A model trained on threshold-defined labels (the engineers' `≥ 300 HU`,
//! [`crate::Augmentation::threshold_labels_hu`]) learns a smooth, slightly shifted version of that
//! threshold: a depth-100 MSDnet cannot reproduce a step at exactly 300 HU, so on a clean scan its
//! boundary wanders within a voxel of the definition's, which costs Dice 0.01–0.03 and 0.1–0.2 mm of
//! surface deviation. On a noisy scan the threshold is the weaker judge: noise flips the voxels near
//! 300 HU, and the network, which sees each voxel's neighbourhood, is better.
//!
//! [`snap_to_iso`] combines the two as independent evidence, in a band a few voxels wide around the
//! network's boundary (outside it the network's label stands, so the topology it chose — table,
//! metal streaks, noise specks removed — is kept):
//!
//! ```text
//! logit(skull) = ln(p / (1 − p)) + 1.702 · (HU − iso) / σ
//! ```
//!
//! where `p` is the network's skull probability and `σ` the scan's noise, measured by
//! [`estimate_noise_hu`]. `1.702 · z` is the logistic approximation of the Gaussian CDF: the
//! second term is the log-odds that the noise-free value lies above the iso-value. On a clean scan
//! (σ ≈ 5–20 HU) it dominates wherever the CT is more than a few HU from the iso-value, and the
//! boundary is the definition's own; with 100 HU of noise it is a weak vote and the network decides.
use ndarray::{Array3, Zip};
use rayon::prelude::*;

use crate::{Error, Result};

/// The smallest noise level [`snap_to_iso`] assumes (HU): quantised or denoised scans report
/// almost no noise, and an iso-value vote of infinite weight would let one HU decide.
pub const MIN_NOISE_HU: f32 = 2.0;

/// Half-width (voxels, chessboard distance) of the band around the network's boundary where
/// [`snap_to_iso`] revisits the label. The network's boundary on a clean scan lies within about a
/// voxel of the definition's; two voxels leave room without reaching across thin bone.
pub const DEFAULT_BAND_VOXELS: usize = 2;

/// The HU window of "soft tissue" voxels whose residuals measure the noise: brain, muscle, fat's
/// upper end and fluid, where the anatomy varies slowly.
const SOFT_TISSUE_HU: (f32, f32) = (-100.0, 150.0);

/// Estimates the scan's pixel noise σ (HU) from soft tissue: at voxels whose 3×3 in-plane mean lies
/// in −100…150 HU, as does that of the four neighbours two pixels away, the residual against the mean of the four in-plane neighbours two pixels away
/// (`x − (x₋₂ + x₊₂ + y₋₂ + y₊₂)/4`, variance `1.25 σ²` for white noise); σ is the median absolute
/// deviation of the residuals scaled to a standard deviation (over every other row and column). Neighbours two pixels away rather
/// than one make the estimate less blind to noise that is correlated over a pixel or so.
///
/// Returns `None` when fewer than 1000 voxels qualify (a phantom, a crop without soft tissue).
///
/// ```
/// use ndarray::Array3;
/// // A flat 40 HU volume has no noise at all.
/// let ct = Array3::<f32>::from_elem((2, 64, 64), 40.0);
/// assert_eq!(msd_net::estimate_noise_hu(&ct), Some(0.0));
/// ```
pub fn estimate_noise_hu(ct: &Array3<f32>) -> Option<f32> {
    let (nz, ny, nx) = ct.dim();
    if ny < 5 || nx < 5 {
        return None;
    }
    let mut residuals: Vec<f32> = (0..nz)
        .into_par_iter()
        .flat_map_iter(|z| {
            let plane = ct.index_axis(ndarray::Axis(0), z);
            // The 3 × 3 mean around a pixel (edges: NaN), a third as noisy as the pixels: it
            // says whether a pixel lies in soft tissue without the noise deciding.
            // The stencils below sit on even rows and columns only, so only there is it needed.
            let mut mean = vec![f32::NAN; ny * nx];
            for y in (2..ny - 1).step_by(2) {
                for x in (2..nx - 1).step_by(2) {
                    let mut m = 0.0f32;
                    for dy in 0..3 {
                        for dx in 0..3 {
                            m += plane[[y + dy - 1, x + dx - 1]];
                        }
                    }
                    mean[y * nx + x] = m / 9.0;
                }
            }
            let soft = |y: usize, x: usize| (SOFT_TISSUE_HU.0..=SOFT_TISSUE_HU.1).contains(&mean[y * nx + x]);
            let mut out = Vec::new();
            // Every other row and column: a quarter of the voxels is plenty for a median.
            for y in (2..ny - 2).step_by(2) {
                for x in (2..nx - 2).step_by(2) {
                    // The whole stencil in soft tissue: a residual across an edge (skin, bone,
                    // ventricles) measures anatomy, not noise, and at coarse pixels there are many.
                    if !(soft(y, x) && soft(y - 2, x) && soft(y + 2, x) && soft(y, x - 2) && soft(y, x + 2)) {
                        continue;
                    }
                    let around =
                        (plane[[y - 2, x]] + plane[[y + 2, x]] + plane[[y, x - 2]] + plane[[y, x + 2]]) / 4.0;
                    let r = plane[[y, x]] - around;
                    if r.is_finite() {
                        out.push(r);
                    }
                }
            }
            out
        })
        .collect();
    if residuals.len() < 1000 {
        return None;
    }
    let median = median_in_place(&mut residuals);
    let mut deviations: Vec<f32> = residuals.iter().map(|r| (r - median).abs()).collect();
    let mad = median_in_place(&mut deviations);
    Some(1.4826 * mad / 1.25f32.sqrt())
}

/// The median of finite values (reorders them).
fn median_in_place(v: &mut [f32]) -> f32 {
    let mid = v.len() / 2;
    let (_, m, _) = v.select_nth_unstable_by(mid, |a, b| a.total_cmp(b));
    *m
}

/// Labels (0 background, 1 skull) from the network's skull probability and the CT, the boundary
/// placed by the iso-value `iso_hu` inside a band of `band_voxels` around the network's boundary
/// (`logit = ln(p / (1 − p)) + 1.702 · (HU − iso) / σ` there, the network's label elsewhere);
/// `noise_hu` is the scan's noise σ (floored at [`MIN_NOISE_HU`]).
///
/// # Errors
/// [`Error::ShapeMismatch`] when the two volumes differ in shape, [`Error::InvalidValue`] when
/// `iso_hu` / `noise_hu` is not
/// finite.
///
/// ```
/// use ndarray::Array3;
/// // A network that puts the boundary one voxel too far out: the CT's 300 HU surface wins.
/// let ct = Array3::from_shape_fn((1, 1, 8), |(_, _, x)| if x < 4 { 1000.0f32 } else { 0.0 });
/// let p = Array3::from_shape_fn((1, 1, 8), |(_, _, x)| if x < 5 { 0.8f32 } else { 0.1 });
/// let labels = msd_net::snap_to_iso(&ct, &p, 300.0, 10.0, 2)?;
/// assert_eq!(labels.as_slice().unwrap(), &[1, 1, 1, 1, 0, 0, 0, 0]);
/// # Ok::<(), msd_net::Error>(())
/// ```
pub fn snap_to_iso(
    ct: &Array3<f32>,
    p_skull: &Array3<f32>,
    iso_hu: f32,
    noise_hu: f32,
    band_voxels: usize,
) -> Result<Array3<u8>> {
    if ct.dim() != p_skull.dim() {
        return Err(Error::ShapeMismatch {
            op: "snap_to_iso (CT and skull probabilities)",
            lhs: ct.shape().to_vec(),
            rhs: p_skull.shape().to_vec(),
        });
    }
    for (name, value) in [("iso-value (HU)", iso_hu), ("noise (HU)", noise_hu)] {
        if !value.is_finite() {
            return Err(Error::InvalidValue { name, value: value.into(), expected: "finite" });
        }
    }
    let network = p_skull.mapv(|p| u8::from(p >= 0.5));
    let band = dilate(&boundary(&network), band_voxels);
    // 1.702 · z: the logistic approximation of the Gaussian CDF.
    let gain = 1.702 / noise_hu.max(MIN_NOISE_HU);
    let mut labels = network;
    Zip::from(&mut labels).and(&band).and(ct).and(p_skull).par_for_each(|l, &b, &hu, &p| {
        if b {
            let p = p.clamp(1e-4, 1.0 - 1e-4);
            let logit = (p / (1.0 - p)).ln() + gain * (hu - iso_hu);
            // A NaN CT voxel leaves the network's label.
            if logit.is_finite() {
                *l = u8::from(logit >= 0.0);
            }
        }
    });
    Ok(labels)
}

/// Voxels whose label differs from one of their 6 neighbours, compared plane by plane and row by
/// row as slices.
fn boundary(labels: &Array3<u8>) -> Array3<bool> {
    let (nz, ny, nx) = labels.dim();
    let plane = ny * nx;
    let mut out = vec![false; nz * plane];
    if plane > 0 {
        let l = labels.as_standard_layout();
        let l = l.as_slice().expect("a standard-layout array is one slice");
        let differs = |o: &mut [bool], a: &[u8], b: &[u8]| {
            o.iter_mut().zip(a.iter().zip(b)).for_each(|(o, (a, b))| *o |= a != b)
        };
        out.par_chunks_mut(plane).enumerate().for_each(|(z, o)| {
            let cur = &l[z * plane..(z + 1) * plane];
            if z > 0 {
                differs(o, cur, &l[(z - 1) * plane..z * plane]);
            }
            if z + 1 < nz {
                differs(o, cur, &l[(z + 1) * plane..(z + 2) * plane]);
            }
            for y in 0..ny {
                let (row, orow) = (&cur[y * nx..(y + 1) * nx], &mut o[y * nx..(y + 1) * nx]);
                if y > 0 {
                    differs(orow, row, &cur[(y - 1) * nx..y * nx]);
                }
                if y + 1 < ny {
                    differs(orow, row, &cur[(y + 1) * nx..(y + 2) * nx]);
                }
                if nx > 1 {
                    differs(&mut orow[1..], &row[1..], &row[..nx - 1]);
                    differs(&mut orow[..nx - 1], &row[..nx - 1], &row[1..]);
                }
            }
        });
    }
    Array3::from_shape_vec((nz, ny, nx), out).expect("the labels' own shape")
}

/// Dilation by a cube of half-width `r` (chessboard distance ≤ r), one axis at a time, as ORs of
/// whole shifted planes, rows and row segments (contiguous bytes, which vectorise); indexing
/// voxel by voxel cost seconds on a 512 × 512 × 250 scan.
fn dilate(mask: &Array3<bool>, r: usize) -> Array3<bool> {
    let (nz, ny, nx) = mask.dim();
    if nz * ny * nx == 0 || r == 0 {
        return mask.clone();
    }
    let src = mask.as_standard_layout();
    let src = src.as_slice().expect("a standard-layout array is one slice");
    let plane = ny * nx;
    let or_into = |out: &mut [bool], other: &[bool]| out.iter_mut().zip(other).for_each(|(o, &v)| *o |= v);
    let mut along_z = vec![false; src.len()];
    along_z.par_chunks_mut(plane).enumerate().for_each(|(z, out)| {
        for j in z.saturating_sub(r)..=(z + r).min(nz - 1) {
            or_into(out, &src[j * plane..(j + 1) * plane]);
        }
    });
    let mut out = vec![false; src.len()];
    out.par_chunks_mut(plane).zip(along_z.par_chunks(plane)).for_each(|(out, src)| {
        for (y, row) in out.chunks_exact_mut(nx).enumerate() {
            for j in y.saturating_sub(r)..=(y + r).min(ny - 1) {
                or_into(row, &src[j * nx..(j + 1) * nx]);
            }
        }
        let mut before = vec![false; nx];
        for row in out.chunks_exact_mut(nx) {
            before.copy_from_slice(row);
            for s in 1..=r.min(nx - 1) {
                or_into(&mut row[..nx - s], &before[s..]);
                or_into(&mut row[s..], &before[..nx - s]);
            }
        }
    });
    Array3::from_shape_vec((nz, ny, nx), out).expect("the mask's own shape")
}

#[cfg(test)]
mod tests {
    use ndarray::Array3;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use rand_distr::{Distribution, Normal};

    use super::*;

    /// A ball of bone (1000 HU) in water, with a linear partial-volume ramp at its surface.
    fn ball(n: usize, radius: f32) -> Array3<f32> {
        let c = (n as f32 - 1.0) / 2.0;
        Array3::from_shape_fn((n, n, n), |(z, y, x)| {
            let d = ((z as f32 - c).powi(2) + (y as f32 - c).powi(2) + (x as f32 - c).powi(2)).sqrt();
            let inside = (radius - d + 0.5).clamp(0.0, 1.0);
            1000.0 * inside
        })
    }

    /// A network's probability: a logistic ramp around a sphere of radius `radius`.
    fn network(n: usize, radius: f32) -> Array3<f32> {
        let c = (n as f32 - 1.0) / 2.0;
        Array3::from_shape_fn((n, n, n), |(z, y, x)| {
            let d = ((z as f32 - c).powi(2) + (y as f32 - c).powi(2) + (x as f32 - c).powi(2)).sqrt();
            1.0 / (1.0 + (2.0 * (d - radius)).exp())
        })
    }

    #[test]
    fn on_a_clean_scan_the_boundary_is_the_iso_surface() {
        let ct = ball(24, 7.0);
        let threshold = ct.mapv(|v| u8::from(v >= 300.0));
        // The network's sphere is a voxel too large, then a voxel too small.
        for r in [8.0, 6.0] {
            let p = network(24, r);
            let net = p.mapv(|v| u8::from(v >= 0.5));
            assert_ne!(net, threshold, "the network is off");
            assert_eq!(snap_to_iso(&ct, &p, 300.0, 8.0, 2).unwrap(), threshold);
        }
    }

    #[test]
    fn boundary_voxels_differ_from_a_face_neighbour() {
        use rand::Rng;
        let mut rng = StdRng::seed_from_u64(6);
        for shape in [(6, 7, 9), (1, 5, 1), (3, 1, 8), (1, 1, 1)] {
            let labels = Array3::from_shape_fn(shape, |_| u8::from(rng.random_bool(0.3)));
            let got = boundary(&labels);
            for ((z, y, x), &g) in got.indexed_iter() {
                let v = labels[[z, y, x]];
                let at = |dz: isize, dy: isize, dx: isize| {
                    let (zz, yy, xx) = (z as isize + dz, y as isize + dy, x as isize + dx);
                    labels
                        .get([zz as usize, yy as usize, xx as usize])
                        .filter(|_| zz >= 0 && yy >= 0 && xx >= 0)
                };
                let faces = [(-1, 0, 0), (1, 0, 0), (0, -1, 0), (0, 1, 0), (0, 0, -1), (0, 0, 1)];
                let want = faces.iter().any(|&(a, b, c)| at(a, b, c).is_some_and(|&n| n != v));
                assert_eq!(g, want, "shape {shape:?} at ({z}, {y}, {x})");
            }
        }
    }

    #[test]
    fn dilation_is_the_cube_of_half_width_r() {
        use rand::Rng;
        let mut rng = StdRng::seed_from_u64(5);
        for (shape, r) in [((7, 9, 11), 2), ((3, 1, 20), 1), ((12, 5, 4), 3), ((2, 3, 3), 5), ((4, 4, 4), 0)]
        {
            let mask = Array3::from_shape_fn(shape, |_| rng.random_bool(0.04));
            let got = dilate(&mask, r);
            let (nz, ny, nx) = shape;
            for ((z, y, x), &g) in got.indexed_iter() {
                let near = |i: usize, j: usize| i.abs_diff(j) <= r;
                let want = (0..nz).any(|zz| {
                    near(z, zz)
                        && (0..ny)
                            .any(|yy| near(y, yy) && (0..nx).any(|xx| near(x, xx) && mask[[zz, yy, xx]]))
                });
                assert_eq!(g, want, "shape {shape:?} r {r} at ({z}, {y}, {x})");
            }
        }
    }

    #[test]
    fn outside_the_band_the_network_label_stands() {
        let mut ct = ball(24, 7.0);
        // A bright speck far from the skull (a table edge, a noise spike) the network rejected.
        ct[[2, 2, 2]] = 900.0;
        let p = network(24, 7.0);
        let labels = snap_to_iso(&ct, &p, 300.0, 8.0, 2).unwrap();
        assert_eq!(labels[[2, 2, 2]], 0);
    }

    #[test]
    fn under_heavy_noise_the_network_keeps_the_say() {
        let ct = ball(24, 7.0);
        let mut rng = StdRng::seed_from_u64(3);
        let n = Normal::new(0.0f32, 150.0).unwrap();
        let noisy = ct.mapv(|v| v + n.sample(&mut rng));
        let p = network(24, 7.0).mapv(|v| v.clamp(0.02, 0.98));
        let truth = ct.mapv(|v| u8::from(v >= 300.0));
        let errors = |l: &Array3<u8>| l.iter().zip(&truth).filter(|(a, b)| a != b).count();
        let fused = snap_to_iso(&noisy, &p, 300.0, 150.0, 2).unwrap();
        let thresholded = noisy.mapv(|v| u8::from(v >= 300.0));
        assert!(errors(&fused) * 3 < errors(&thresholded), "{} vs {}", errors(&fused), errors(&thresholded));
    }

    #[test]
    fn the_noise_estimate_follows_added_white_noise() {
        let ct = Array3::from_shape_fn((4, 80, 80), |(_, y, x)| 30.0 + 0.2 * (y + x) as f32);
        for sigma in [10.0f32, 50.0, 120.0] {
            let mut rng = StdRng::seed_from_u64(sigma as u64);
            let n = Normal::new(0.0f32, sigma).unwrap();
            let noisy = ct.mapv(|v| v + n.sample(&mut rng));
            let est = estimate_noise_hu(&noisy).unwrap();
            assert!((est / sigma - 1.0).abs() < 0.1, "σ {sigma}: estimated {est}");
        }
        // Edges measure anatomy, not noise: soft tissue striped with bone every 6 pixels, 10 HU of
        // noise, is still measured at about 10 HU.
        let striped =
            Array3::from_shape_fn(
                (4, 90, 90),
                |(_, y, x)| if (y / 3 + x / 3) % 4 == 0 { 900.0f32 } else { 40.0 },
            );
        let mut rng = StdRng::seed_from_u64(9);
        let n = Normal::new(0.0f32, 10.0).unwrap();
        let est = estimate_noise_hu(&striped.mapv(|v| v + n.sample(&mut rng))).unwrap();
        assert!((est / 10.0 - 1.0).abs() < 0.15, "striped: estimated {est}");
        // No soft tissue: no estimate.
        assert_eq!(estimate_noise_hu(&Array3::from_elem((2, 40, 40), -1000.0)), None);
    }

    #[test]
    fn mismatched_or_non_finite_inputs_are_typed_errors() {
        let ct = Array3::<f32>::zeros((2, 3, 4));
        assert!(matches!(
            snap_to_iso(&ct, &Array3::zeros((2, 4, 3)), 300.0, 10.0, 2),
            Err(Error::ShapeMismatch { .. })
        ));
        assert!(matches!(
            snap_to_iso(&ct, &Array3::zeros((2, 3, 4)), f32::NAN, 10.0, 2),
            Err(Error::InvalidValue { name: "iso-value (HU)", .. })
        ));
    }
}
