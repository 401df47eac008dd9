//! Bilinear resampling of 2D planes between pixel spacings, aligned at the first pixel's centre.

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
