//! The CT's imperfections: point-spread blur, metal streaks and noise.
use ndarray::{Array3, Axis};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Normal};
use rayon::prelude::*;

/// Separable Gaussian blur with standard deviation `sigma_mm`, mirrored at the borders.
pub(crate) fn blur(ct: &mut Array3<f32>, spacing: [f64; 3], sigma_mm: f64) {
    for (axis, s) in [(2usize, spacing[0]), (1, spacing[1]), (0, spacing[2])] {
        let sigma = sigma_mm / s;
        if sigma < 0.2 {
            continue;
        }
        let radius = (3.0 * sigma).ceil() as isize;
        let mut kernel: Vec<f32> =
            (-radius..=radius).map(|i| (-(i as f64).powi(2) / (2.0 * sigma * sigma)).exp() as f32).collect();
        let sum: f32 = kernel.iter().sum();
        kernel.iter_mut().for_each(|k| *k /= sum);
        let n = ct.len_of(Axis(axis));
        let mut lanes: Vec<_> = ct.lanes_mut(Axis(axis)).into_iter().collect();
        lanes.par_iter_mut().for_each_init(
            || vec![0.0f32; n],
            |line, lane| {
                for (i, v) in lane.iter().enumerate() {
                    line[i] = *v;
                }
                for i in 0..n {
                    let mut acc = 0.0;
                    for (k, w) in kernel.iter().enumerate() {
                        let j = mirror(i as isize + k as isize - radius, n);
                        acc += w * line[j];
                    }
                    lane[i] = acc;
                }
            },
        );
    }
}

/// Index reflected into `0..n` with the edge sample repeated (numpy `symmetric`).
pub(crate) fn mirror(i: isize, n: usize) -> usize {
    let n = n as isize;
    let period = 2 * n;
    let m = i.rem_euclid(period);
    (if m < n { m } else { period - 1 - m }) as usize
}

/// Adds Gaussian noise, one random stream per slice so the result does not depend on threads.
pub(crate) fn add_noise(ct: &mut Array3<f32>, sigma: f64, seed: u64) {
    if sigma <= 0.0 {
        // Noise-free: only the scanner's range, so labels can be defined on the clean image.
        ct.par_iter_mut().for_each(|v| *v = v.clamp(-1024.0, 3071.0));
        return;
    }
    let normal = Normal::new(0.0, sigma).expect("sigma was validated finite and non-negative");
    ct.axis_iter_mut(Axis(0)).into_par_iter().enumerate().for_each(|(z, mut slice)| {
        let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (z as u64 + 1));
        slice.iter_mut().for_each(|v| *v = (*v + normal.sample(&mut rng) as f32).clamp(-1024.0, 3071.0));
    });
}

/// Metal streaks: bright and dark bands through each piece of metal in the axial slices it
/// crosses, fading with distance, and a dark band between every two pieces in the same slice (the
/// photon starvation along the line joining them). `origin` and `spacing` place the grid (identity
/// direction), `head` is `(centre, semi-axes)` of the ellipse in which streaks are drawn.
pub(crate) fn add_streaks(
    ct: &mut Array3<f32>,
    origin: [f64; 3],
    spacing: [f64; 3],
    sources: &[([f64; 3], f64, Vec<f64>)],
    head: ([f64; 2], [f64; 2]),
) {
    if sources.is_empty() {
        return;
    }
    ct.axis_iter_mut(Axis(0)).into_par_iter().enumerate().for_each(|(z, mut slice)| {
        let wz = origin[2] + z as f64 * spacing[2];
        let live: Vec<(usize, f64)> = sources
            .iter()
            .enumerate()
            .filter_map(|(i, (c, r, _))| {
                let reach = 4.0 * r;
                let dz = (wz - c[2]).abs();
                (dz < reach).then(|| (i, 1.0 - dz / reach))
            })
            .collect();
        if live.is_empty() {
            return;
        }
        let (ny, nx) = slice.dim();
        for y in 0..ny {
            let wy = origin[1] + y as f64 * spacing[1];
            for x in 0..nx {
                let wx = origin[0] + x as f64 * spacing[0];
                let e = ((wx - head.0[0]) / head.1[0]).powi(2) + ((wy - head.0[1]) / head.1[1]).powi(2);
                if e > 1.0 {
                    continue;
                }
                let mut add = 0.0;
                for &(i, strength) in &live {
                    let (c, r, angles) = &sources[i];
                    let (dx, dy) = (wx - c[0], wy - c[1]);
                    let rp = dx.hypot(dy);
                    if rp <= *r {
                        continue;
                    }
                    let gain = 250.0 * (r / 1.5).min(2.0) * strength * (-rp / 60.0).exp();
                    for (k, theta) in angles.iter().enumerate() {
                        let dist = (dx * theta.sin() - dy * theta.cos()).abs();
                        let sign = if k % 2 == 0 { 1.0 } else { -1.0 };
                        add += sign * gain * (-dist * dist / 2.0).exp();
                    }
                    for &(j, other) in &live {
                        if j <= i {
                            continue;
                        }
                        let (d, _, _) = &sources[j];
                        let (lx, ly) = (d[0] - c[0], d[1] - c[1]);
                        let len = lx.hypot(ly).max(1e-6);
                        let t = ((dx * lx + dy * ly) / (len * len)).clamp(0.0, 1.0);
                        let dist = (dx - t * lx).hypot(dy - t * ly);
                        add -= 400.0 * strength.min(other) * (-dist * dist / 4.0).exp();
                    }
                }
                slice[[y, x]] += add as f32;
            }
        }
    });
}
