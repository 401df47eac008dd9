//! Resampling of planes and volumes between pixel spacings: bilinear planes aligned at the first
//! pixel's centre (inference with `resample_to_model`), and Keys cubic sampling with mirrored borders
//! (training samples, [`resample_in_plane`]).
use msd_io::{Geometry, Volume};
use ndarray::Array3;
use rayon::prelude::*;

use crate::{Error, Result};

/// The size of a plane of `n` pixels at spacing `from` when resampled to spacing `to` (mm):
/// the pixels `j · to` that stay within the original extent `(n − 1) · from`.
pub(crate) fn resampled_len(n: usize, from: f64, to: f64) -> usize {
    if n <= 1 {
        return n;
    }
    (((n - 1) as f64 * from / to) + 1e-6).floor() as usize + 1
}

/// Bilinear sampling of `src` (`[rows][cols]`) at continuous position `(r, c)`, clamped to the plane.
#[inline]
fn bilinear(src: &[f32], rows: usize, cols: usize, r: f64, c: f64) -> f32 {
    let r = r.clamp(0.0, (rows - 1) as f64);
    let c = c.clamp(0.0, (cols - 1) as f64);
    let (r0, c0) = (r.floor() as usize, c.floor() as usize);
    let (r1, c1) = ((r0 + 1).min(rows - 1), (c0 + 1).min(cols - 1));
    let (fr, fc) = ((r - r0 as f64) as f32, (c - c0 as f64) as f32);
    let top = src[r0 * cols + c0] * (1.0 - fc) + src[r0 * cols + c1] * fc;
    let bottom = src[r1 * cols + c0] * (1.0 - fc) + src[r1 * cols + c1] * fc;
    top * (1.0 - fr) + bottom * fr
}

/// Resamples a plane `[rows][cols]` by the scale factors `(row_scale, col_scale)`: output pixel
/// `(i, j)` samples the input at `(i · row_scale, j · col_scale)`.
pub(crate) fn resample_plane(
    src: &[f32],
    rows: usize,
    cols: usize,
    out_rows: usize,
    out_cols: usize,
    row_scale: f64,
    col_scale: f64,
) -> Vec<f32> {
    let mut out = vec![0.0f32; out_rows * out_cols];
    for (i, row) in out.chunks_exact_mut(out_cols.max(1)).enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = bilinear(src, rows, cols, i as f64 * row_scale, j as f64 * col_scale);
        }
    }
    out
}

/// Resampling of a label plane (same mapping as [`resample_plane`]): each class's indicator is
/// interpolated bilinearly and every output pixel takes the class with the largest share (the
/// background's share being what the others leave), so boundaries move smoothly instead of in
/// whole source pixels.
#[allow(clippy::too_many_arguments)]
pub(crate) fn resample_labels(
    src: &[u8],
    max_label: u8,
    rows: usize,
    cols: usize,
    out_rows: usize,
    out_cols: usize,
    row_scale: f64,
    col_scale: f64,
) -> Vec<u8> {
    let mut best = vec![(0u8, 0.0f32); out_rows * out_cols];
    let mut total = vec![0.0f32; out_rows * out_cols];
    for class in 1..=max_label {
        let ind: Vec<f32> = src.iter().map(|&l| f32::from(l == class)).collect();
        if !ind.iter().any(|&v| v > 0.0) {
            continue;
        }
        let r = resample_plane(&ind, rows, cols, out_rows, out_cols, row_scale, col_scale);
        for ((b, t), v) in best.iter_mut().zip(total.iter_mut()).zip(r) {
            *t += v;
            if v > b.1 {
                *b = (class, v);
            }
        }
    }
    best.iter().zip(&total).map(|(&(c, v), &t)| if v > 1.0 - t { c } else { 0 }).collect()
}

/// `i` mirrored into `0..n` the way numpy's `symmetric` padding does (the edge pixel repeated,
/// period `2n`).
pub(crate) fn mirror(i: i64, n: usize) -> usize {
    let n = n as i64;
    let m = i.rem_euclid(2 * n);
    (if m < n { m } else { 2 * n - 1 - m }) as usize
}

/// The source coordinate (in pixel-index units) of output pixel `o` of an `out_len`-pixel axis
/// zoomed by `zoom` about `centre` (continuous coordinates: pixel `i` covers `[i, i + 1)`).
pub(crate) fn zoom_source(o: usize, out_len: usize, centre: f64, zoom: f64) -> f64 {
    centre + (o as f64 + 0.5 - out_len as f64 / 2.0) / zoom - 0.5
}

/// Keys' cubic convolution kernel (a = −0.5, Catmull-Rom): interpolating, exact for quadratics.
fn keys(t: f64) -> f64 {
    let t = t.abs();
    if t < 1.0 {
        (1.5 * t - 2.5) * t * t + 1.0
    } else if t < 2.0 {
        ((-0.5 * t + 2.5) * t - 4.0) * t + 2.0
    } else {
        0.0
    }
}

/// The sampling of one output axis: for each output pixel, source indices (mirrored into the
/// source) and weights.
#[derive(Debug, Clone)]
pub(crate) struct AxisTaps {
    taps: usize,
    index: Vec<usize>,
    weight: Vec<f32>,
}

impl AxisTaps {
    /// Cubic (4 taps) or linear (2 taps) sampling of `n_out` pixels about `centre` with `zoom`,
    /// from an axis of `n_in` pixels.
    pub(crate) fn new(n_out: usize, n_in: usize, centre: f64, zoom: f64, cubic: bool) -> Self {
        let taps = if cubic { 4 } else { 2 };
        let mut index = Vec::with_capacity(n_out * taps);
        let mut weight = Vec::with_capacity(n_out * taps);
        for o in 0..n_out {
            let p = zoom_source(o, n_out, centre, zoom);
            let i = p.floor();
            let f = p - i;
            if cubic {
                for k in -1i64..=2 {
                    index.push(mirror(i as i64 + k, n_in));
                    weight.push(keys(f - k as f64) as f32);
                }
            } else {
                index.push(mirror(i as i64, n_in));
                index.push(mirror(i as i64 + 1, n_in));
                weight.push((1.0 - f) as f32);
                weight.push(f as f32);
            }
        }
        AxisTaps { taps, index, weight }
    }
}

/// Separable resampling of a plane `[h][w]` onto `rows × cols` taps.
pub(crate) fn resample_taps(plane: &[f32], w: usize, rows: &AxisTaps, cols: &AxisTaps) -> Vec<f32> {
    let (oh, ow) = (rows.index.len() / rows.taps, cols.index.len() / cols.taps);
    // Rows first: only the source columns some output column reads would be needed, but whole rows
    // keep the loop simple and the crops are small.
    let mut tmp = vec![0.0f32; oh * w];
    for (o, out) in tmp.chunks_exact_mut(w).enumerate() {
        for t in 0..rows.taps {
            let (src, wt) = (rows.index[o * rows.taps + t], rows.weight[o * rows.taps + t]);
            for (d, s) in out.iter_mut().zip(&plane[src * w..(src + 1) * w]) {
                *d += wt * s;
            }
        }
    }
    let mut out = vec![0.0f32; oh * ow];
    for (row_out, row_tmp) in out.chunks_exact_mut(ow).zip(tmp.chunks_exact(w)) {
        for (o, d) in row_out.iter_mut().enumerate() {
            let mut acc = 0.0;
            for t in 0..cols.taps {
                acc += cols.weight[o * cols.taps + t] * row_tmp[cols.index[o * cols.taps + t]];
            }
            *d = acc;
        }
    }
    out
}

/// Separable Gaussian blur of a plane `[h][w]` in place, σ in pixels per axis (rows, columns),
/// mirrored borders (the edge pixel repeated, as the network's convolutions do).
///
/// ```
/// let mut plane = vec![0.0f32; 9 * 9];
/// plane[4 * 9 + 4] = 1.0;
/// msd_net::gaussian_blur(&mut plane, 9, 9, [1.0, 1.0]);
/// assert!((plane.iter().sum::<f32>() - 1.0).abs() < 1e-5, "a blur keeps the sum");
/// assert!(plane[4 * 9 + 4] < 0.2 && plane[4 * 9 + 5] > 0.05);
/// ```
pub fn gaussian_blur(plane: &mut [f32], h: usize, w: usize, sigma: [f64; 2]) {
    let kernel = |s: f64| -> Vec<f32> {
        let r = (3.0 * s).ceil().max(1.0) as i64;
        let k: Vec<f64> = (-r..=r).map(|i| (-(i * i) as f64 / (2.0 * s * s)).exp()).collect();
        let sum: f64 = k.iter().sum();
        k.into_iter().map(|v| (v / sum) as f32).collect()
    };
    if sigma[1] > 0.0 {
        let k = kernel(sigma[1]);
        let r = (k.len() / 2) as i64;
        let mut row = vec![0.0f32; w];
        for y in 0..h {
            let src = &plane[y * w..(y + 1) * w];
            for (x, d) in row.iter_mut().enumerate() {
                *d = k.iter().enumerate().map(|(j, kv)| kv * src[mirror(x as i64 + j as i64 - r, w)]).sum();
            }
            plane[y * w..(y + 1) * w].copy_from_slice(&row);
        }
    }
    if sigma[0] > 0.0 {
        let k = kernel(sigma[0]);
        let r = (k.len() / 2) as i64;
        let src = plane.to_vec();
        for y in 0..h {
            let out = &mut plane[y * w..(y + 1) * w];
            out.fill(0.0);
            for (j, kv) in k.iter().enumerate() {
                let sy = mirror(y as i64 + j as i64 - r, h);
                for (d, s) in out.iter_mut().zip(&src[sy * w..(sy + 1) * w]) {
                    *d += kv * s;
                }
            }
        }
    }
}

/// Resamples a CT volume in-plane to square pixels of `pixel_mm`, keeping its field of view and
/// slices: Keys cubic interpolation, with a Gaussian pre-filter when the pixels grow (as a coarser
/// detector integrates over more of the object). Voxel `j` of the result is centred where the
/// source's continuous coordinate `(j + 0.5) · pixel_mm / spacing − 0.5` lies, so both grids cover
/// the same extent; the origin moves accordingly (direction kept).
pub fn resample_in_plane(ct: &Volume<f32>, pixel_mm: f64) -> Result<Volume<f32>> {
    if !(pixel_mm.is_finite() && pixel_mm > 0.0) {
        return Err(Error::InvalidValue {
            name: "pixel size (mm)",
            value: pixel_mm,
            expected: "finite and > 0",
        });
    }
    let [nz, ny, nx] = ct.shape();
    let g = ct.geometry();
    let [sx, sy, sz] = g.spacing();
    let (zx, zy) = (sx / pixel_mm, sy / pixel_mm);
    let (ox, oy) = (((nx as f64 * zx).round() as usize).max(1), ((ny as f64 * zy).round() as usize).max(1));
    if ox.checked_mul(oy).and_then(|v| v.checked_mul(nz)).is_none_or(|v| v > 1 << 31) {
        // 2³¹ voxels: the most a resampled scan may hold (8 GiB of f32).
        return Err(Error::TooLarge { what: "resampled volume (x, y, z)", dims: vec![ox, oy, nz] });
    }
    let cols = AxisTaps::new(ox, nx, nx as f64 / 2.0, ox as f64 / nx as f64, true);
    let rows = AxisTaps::new(oy, ny, ny as f64 / 2.0, oy as f64 / ny as f64, true);
    let prefilter = [zy, zx].map(|z| if z < 1.0 { 0.5 * (1.0 / (z * z) - 1.0).sqrt() } else { 0.0 });
    let planes: Vec<Vec<f32>> = (0..nz)
        .into_par_iter()
        .map(|z| {
            let mut plane: Vec<f32> = ct.data().index_axis(ndarray::Axis(0), z).iter().copied().collect();
            if prefilter.iter().any(|&p| p > 0.0) {
                gaussian_blur(&mut plane, ny, nx, prefilter);
            }
            resample_taps(&plane, nx, &rows, &cols)
        })
        .collect();
    let values = planes.concat();
    let found = values.len();
    let data = Array3::from_shape_vec((nz, oy, ox), values).map_err(|_| Error::ShapeMismatch {
        op: "resample_in_plane (planes and volume)",
        lhs: vec![nz, oy, ox],
        rhs: vec![found],
    })?;
    let (x0, y0) = (
        zoom_source(0, ox, nx as f64 / 2.0, ox as f64 / nx as f64),
        zoom_source(0, oy, ny as f64 / 2.0, oy as f64 / ny as f64),
    );
    let origin = g.index_to_world([x0, y0, 0.0]);
    let spacing = [sx * nx as f64 / ox as f64, sy * ny as f64 / oy as f64, sz];
    let geometry = Geometry::new(spacing, origin, g.direction())?;
    Ok(Volume::new(data, geometry)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_of_a_linear_ramp_is_exact() {
        let (rows, cols) = (9, 13);
        let src: Vec<f32> = (0..rows * cols).map(|i| ((i / cols) * 2 + (i % cols) * 3) as f32).collect();
        let (r2, c2) = (resampled_len(rows, 1.0, 0.5), resampled_len(cols, 1.0, 0.5));
        assert_eq!((r2, c2), (17, 25));
        let up = resample_plane(&src, rows, cols, r2, c2, 0.5, 0.5);
        let back = resample_plane(&up, r2, c2, rows, cols, 2.0, 2.0);
        for (a, b) in src.iter().zip(&back) {
            assert!((a - b).abs() < 1e-4);
        }
    }
}
