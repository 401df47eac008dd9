//! A smooth global shape of the vault: one quadric surface per table (outer, inner), fitted to
//! every healthy direction of the skull, that the patch's thin-plate splines then only correct.
//!
//! A thin-plate spline of raw table radii over a chart spans a large opening as flatly as its
//! bending energy allows: it keeps the rim's slope but not the vault's curvature, and over a 60–90
//! mm hole the patch sinks below (or bulges above) the true tables. A quadric x'Ax + b'x = 1
//! (relative to the skull's centre, nine coefficients: ellipsoids in any pose, and the paraboloids
//! and hyperboloids near them) follows the whole vault's curvature; the spline then models only the
//! rim's departure from it, which is small and smooth. The fit is robust: iteratively reweighted
//! least squares with Tukey's biweight on the radial residual (scale from the median absolute
//! residual), so the face, the skull base and stray bone that rays from the centre also meet are
//! voted out. Rays that graze a table (the floors of the cranial fossae, an orbit's roof) are left
//! out beforehand.
use crate::rays::{Crossing, V3, dot, scale};
use crate::skull::GlobalMap;
use crate::tps::solve_dense;

/// Rays further than this from superior (degrees) do not take part: below it lie the skull base
/// and the face, which are no part of the vault's shell.
const MAX_POLAR_DEG: f64 = 110.0;
/// Half the baseline (cells of the 1° map) over which a table's tilt is measured.
const TILT_BASELINE: usize = 2;
/// Rays meeting a table whose normal is tilted more than this from the ray are left out.
const MAX_TILT_DEG: f64 = 50.0;
/// Reweighting rounds of the robust fit.
const ROUNDS: usize = 10;
/// Tukey's biweight tuning constant, in robust standard deviations.
const TUKEY_C: f64 = 4.685;
/// Smallest robust scale of the residuals (mm): the voxel staircase makes smaller ones meaningless.
const MIN_SCALE_MM: f64 = 0.5;

/// A quadric surface x'Ax + b'x = 1 around a centre, x = p − centre (mm); the coefficients are
/// (A₀₀, A₁₁, A₂₂, A₀₁, A₀₂, A₁₂, b₀, b₁, b₂), the off-diagonal terms counted twice.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Quadric {
    coef: [f64; 9],
    /// Robust RMS of the radial residuals of the points kept (mm).
    pub(crate) rms_mm: f64,
}

fn row(x: V3) -> [f64; 9] {
    [
        x[0] * x[0],
        x[1] * x[1],
        x[2] * x[2],
        2.0 * x[0] * x[1],
        2.0 * x[0] * x[2],
        2.0 * x[1] * x[2],
        x[0],
        x[1],
        x[2],
    ]
}

impl Quadric {
    /// The coefficients of the terms quadratic (q) and linear (l) in r along a unit direction d:
    /// the surface is met where q r² + l r = 1.
    fn along(&self, d: V3) -> (f64, f64) {
        let c = &self.coef;
        let q = c[0] * d[0] * d[0]
            + c[1] * d[1] * d[1]
            + c[2] * d[2] * d[2]
            + 2.0 * (c[3] * d[0] * d[1] + c[4] * d[0] * d[2] + c[5] * d[1] * d[2]);
        let l = c[6] * d[0] + c[7] * d[1] + c[8] * d[2];
        (q, l)
    }

    /// Distance from the centre along the unit direction `d` to the surface (the smallest positive
    /// root); `None` when the ray does not meet it.
    pub(crate) fn radius(&self, d: V3) -> Option<f64> {
        let (q, l) = self.along(d);
        let r = if q.abs() < 1e-14 {
            (l > 0.0).then(|| 1.0 / l)?
        } else {
            let disc = l * l + 4.0 * q;
            if disc < 0.0 {
                return None;
            }
            let s = disc.sqrt();
            // Roots (−l ± s) / 2q, in the cancellation-free form 2 / (l ± s).
            [2.0 / (l + s), 2.0 / (l - s)]
                .into_iter()
                .filter(|r| r.is_finite() && *r > 0.0)
                .reduce(f64::min)?
        };
        r.is_finite().then_some(r)
    }

    /// Robust fit to points given as (unit direction, radius) from the centre, with prior weights
    /// (e.g. solid angles). `None` when too few points are left or the system is degenerate.
    pub(crate) fn fit(points: &[(V3, f64)], weights: &[f64]) -> Option<Quadric> {
        if points.len() < 30 {
            return None;
        }
        // Start from the sphere through the points' weighted mean radius.
        let wsum: f64 = weights.iter().sum();
        let mean_r = points.iter().zip(weights).map(|(p, w)| p.1 * w).sum::<f64>() / wsum;
        let inv = 1.0 / (mean_r * mean_r);
        let mut quadric = Quadric { coef: [inv, inv, inv, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], rms_mm: 0.0 };
        let mut robust = vec![1.0; points.len()];
        for _ in 0..ROUNDS {
            let mut a = vec![vec![0.0; 9]; 9];
            let mut b = vec![0.0; 9];
            for (((d, r), w0), wr) in points.iter().zip(weights).zip(&robust) {
                if *wr <= 0.0 {
                    continue;
                }
                // Algebraic residual / its derivative along the ray ≈ radial residual (Sampson):
                // weight by 1 / f'(r)² of the current surface so the fit minimises radial distance.
                let (q, l) = quadric.along(*d);
                let slope = (2.0 * q * r + l).abs().max(1e-6);
                let w = w0 * wr / (slope * slope);
                let x = row(scale(*d, *r));
                for i in 0..9 {
                    for j in 0..9 {
                        a[i][j] += w * x[i] * x[j];
                    }
                    b[i] += w * x[i];
                }
            }
            let coef = solve_dense(a, vec![b])?.pop()?;
            quadric.coef = coef.try_into().ok()?;
            // Radial residuals and the robust scale.
            let residual: Vec<f64> =
                points.iter().map(|(d, r)| quadric.radius(*d).map_or(f64::INFINITY, |m| r - m)).collect();
            let mut abs: Vec<f64> = residual.iter().map(|e| e.abs()).filter(|e| e.is_finite()).collect();
            if abs.len() < 30 {
                return None;
            }
            let mid = abs.len() / 2;
            let mad = *abs.select_nth_unstable_by(mid, f64::total_cmp).1;
            let sigma = (1.4826 * mad).max(MIN_SCALE_MM);
            let limit = TUKEY_C * sigma;
            for (w, e) in robust.iter_mut().zip(&residual) {
                let u = e / limit;
                *w = if u.abs() < 1.0 { (1.0 - u * u).powi(2) } else { 0.0 };
            }
        }
        let (mut ss, mut n) = (0.0, 0.0);
        for ((d, r), w) in points.iter().zip(&robust) {
            if *w > 0.0
                && let Some(m) = quadric.radius(*d)
            {
                ss += (r - m) * (r - m);
                n += 1.0;
            }
        }
        quadric.rms_mm = if n > 0.0 { (ss / n).sqrt() } else { f64::INFINITY };
        Some(quadric)
    }
}

/// The outer and inner table of the vault as quadrics around the frame's centre.
pub(crate) struct VaultShape {
    pub(crate) outer: Quadric,
    pub(crate) inner: Quadric,
}

impl VaultShape {
    /// Fits both tables to the healthy directions of the global map: rays that meet bone, no
    /// further than [`MAX_POLAR_DEG`] from superior and not grazing a table.
    pub(crate) fn fit(map: &GlobalMap) -> Option<VaultShape> {
        let max_row = ((MAX_POLAR_DEG / 180.0) * map.nt as f64) as usize;
        let max_slope = MAX_TILT_DEG.to_radians().tan();
        let (mut outer, mut inner, mut weights) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..max_row.min(map.nt) {
            for j in 0..map.np {
                let c = i * map.np + j;
                let Some(x) = map.crossings[c] else { continue };
                if grazing(map, i, j, x, max_slope) {
                    continue;
                }
                let d = map.dir(c);
                outer.push((d, x.r_out));
                inner.push((d, x.r_in));
                weights.push(map.solid_angle(c));
            }
        }
        Some(VaultShape { outer: Quadric::fit(&outer, &weights)?, inner: Quadric::fit(&inner, &weights)? })
    }
}

/// Whether the ray of map cell (i, j) meets a table at a slope steeper than `max_slope` (radius
/// change per mm across), along θ or φ, over ±[`TILT_BASELINE`] cells; rays next to an opening
/// count as grazing (their tables may be the rim's bevel).
fn grazing(map: &GlobalMap, i: usize, j: usize, here: Crossing, max_slope: f64) -> bool {
    let k = TILT_BASELINE;
    if i < k || i + k >= map.nt {
        return true;
    }
    let np = map.np;
    let pairs = [((i - k) * np + j, (i + k) * np + j), (i * np + (j + np - k) % np, i * np + (j + k) % np)];
    for (a, b) in pairs {
        let (Some(xa), Some(xb)) = (map.crossings[a], map.crossings[b]) else { return true };
        let angle = dot(map.dir(a), map.dir(b)).clamp(-1.0, 1.0).acos();
        if angle <= 0.0 {
            continue;
        }
        if (xb.r_in - xa.r_in).abs() > max_slope * angle * here.r_in
            || (xb.r_out - xa.r_out).abs() > max_slope * angle * here.r_out
        {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rays::normalize;

    /// Distance from the origin to the ellipsoid with semi-axes `s` centred at `c` along `d`.
    fn ellipsoid_radius(s: V3, c: V3, d: V3) -> f64 {
        // |(r d − c) / s|² = 1: a r² − 2 b r + e = 0.
        let a: f64 = (0..3).map(|k| (d[k] / s[k]).powi(2)).sum();
        let b: f64 = (0..3).map(|k| d[k] * c[k] / (s[k] * s[k])).sum();
        let e: f64 = (0..3).map(|k| (c[k] / s[k]).powi(2)).sum::<f64>() - 1.0;
        (b + (b * b - a * e).sqrt()) / a
    }

    #[test]
    fn the_robust_fit_recovers_a_shifted_ellipsoid_from_its_upper_part_with_outliers() {
        let (s, c) = ([70.0, 88.0, 66.0], [3.0, -5.0, 8.0]);
        let mut points = Vec::new();
        let mut state = 12345u64;
        let mut next = || {
            // xorshift: a deterministic pseudo-random stream in [0, 1).
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        for _ in 0..4000 {
            // Directions over the upper 100° from superior, as the vault is seen.
            let z = (100f64.to_radians()).cos() + (1.0 - 100f64.to_radians().cos()) * next();
            let phi = 2.0 * std::f64::consts::PI * next();
            let rho = (1.0 - z * z).sqrt();
            let d = normalize([rho * phi.cos(), rho * phi.sin(), z]);
            let mut r = ellipsoid_radius(s, c, d) + (next() - 0.5); // ±0.5 mm staircase
            if next() < 0.15 {
                r -= 10.0 + 30.0 * next(); // a fossa floor or the face, far inside
            }
            points.push((d, r));
        }
        let weights = vec![1.0; points.len()];
        let q = Quadric::fit(&points, &weights).unwrap();
        let mut worst: f64 = 0.0;
        for k in 0..200 {
            let t = 80f64.to_radians() * (k as f64 / 200.0);
            let phi = 0.7 * k as f64;
            let d = [t.sin() * phi.cos(), t.sin() * phi.sin(), t.cos()];
            worst = worst.max((q.radius(d).unwrap() - ellipsoid_radius(s, c, d)).abs());
        }
        assert!(worst < 0.3, "largest radial error {worst} mm");
        assert!(q.rms_mm < 0.5, "{}", q.rms_mm);
    }

    #[test]
    fn a_sphere_is_met_at_its_radius_and_a_ray_missing_a_hyperboloid_gives_none() {
        let inv = 1.0 / (80.0 * 80.0);
        let sphere = Quadric { coef: [inv, inv, inv, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], rms_mm: 0.0 };
        assert!((sphere.radius([0.0, 0.6, 0.8]).unwrap() - 80.0).abs() < 1e-9);
        // x² − z² = 1/inv: the z axis never meets it.
        let hyperboloid = Quadric { coef: [inv, 0.0, -inv, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], rms_mm: 0.0 };
        assert!(hyperboloid.radius([0.0, 0.0, 1.0]).is_none());
    }
}
