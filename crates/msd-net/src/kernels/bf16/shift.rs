//! From partial rows to a group's planes, and the group's outputs back into the feature buffer.
//!
//! The bulk product (`product.rs`) gives, for image row `r`, every output's nine tap partials
//! `P[9o + t][x]` at the *unshifted* pixels. Output `o` (dilation `d`) at pixel `(y, x)` is the sum
//! over the taps `(ky, kx)` of `P[9o + 3ky + kx]` at row `mirror(y + (ky − 1)d)` and column
//! `mirror(x + (kx − 1)d)`, with numpy's `symmetric` mirror. A partial is a per-pixel product, so
//! mirroring the partials equals mirroring the input, which is what the exact forward pass does.
//! Columns are mirrored by filling a halo beside each partial row ([`mirror_columns`]); rows by
//! sending row `r` to every output row whose tap reads it ([`add_partial_row`]), which for a
//! dilation smaller than the image is `y = r − dy`, `−1 − r − dy` or `2h − 1 − r − dy`.
//!
//! Each output row receives its contributions in the order of `r`, whichever task owns it, so the
//! result does not depend on how rows are split between threads.

/// Fills the `halo` columns on each side of the first `rows` partial rows (row `m` at
/// `p[m·p_stride + col0 ..][..w]`) with their mirror images: column `−k` is column `k − 1`,
/// column `w − 1 + k` is column `w − k`.
pub(crate) fn mirror_columns<T: Copy>(
    p: &mut [T],
    rows: usize,
    p_stride: usize,
    col0: usize,
    w: usize,
    halo: usize,
) {
    debug_assert!(halo <= col0 && halo <= w && col0 + w + halo <= p_stride);
    for row in p.chunks_exact_mut(p_stride).take(rows) {
        for k in 1..=halo {
            row[col0 - k] = row[col0 + k - 1];
            row[col0 + w - 1 + k] = row[col0 + w - k];
        }
    }
}

/// Where partial row `r` goes: the layout of the partial rows and of the planes they add into.
pub(crate) struct PartialRow<'a> {
    /// The partial rows `[9 · n_out (padded)][p_stride]`, column halos filled.
    pub p: &'a [f32],
    pub p_stride: usize,
    /// The column of pixel 0 in a partial row.
    pub col0: usize,
    /// The image row the partials are of.
    pub r: usize,
    pub h: usize,
    pub w: usize,
    /// The dilation of each output plane's layer.
    pub dilations: &'a [usize],
}

impl PartialRow<'_> {
    /// Adds the partials of row `r` to rows `ya..yb` of every output plane; `planes[o]` holds
    /// those rows of plane `o` (`(yb − ya) · w` floats).
    pub(crate) fn add_to(&self, planes: &mut [&mut [f32]], ya: usize, yb: usize, simd: bool) {
        let (r, h, w) = (self.r as isize, self.h as isize, self.w);
        for (o, (plane, &d)) in planes.iter_mut().zip(self.dilations).enumerate() {
            debug_assert!(d <= self.col0 && d < self.h);
            for ky in 0..3 {
                let dy = (ky as isize - 1) * d as isize;
                let m = 9 * o + 3 * ky;
                let at = |m: usize, shift: isize| {
                    let start = (m * self.p_stride + self.col0) as isize + shift;
                    &self.p[start as usize..start as usize + w]
                };
                let (left, centre, right) = (at(m, -(d as isize)), at(m + 1, 0), at(m + 2, d as isize));
                for y in [r - dy, -1 - r - dy, 2 * h - 1 - r - dy] {
                    if y < ya as isize || y >= yb as isize {
                        continue;
                    }
                    let y = y as usize - ya;
                    add3(&mut plane[y * w..(y + 1) * w], left, centre, right, simd);
                }
            }
        }
    }
}

/// `z += a + b + c`, element by element.
#[inline(always)]
fn add3_body(z: &mut [f32], a: &[f32], b: &[f32], c: &[f32]) {
    for (((z, a), b), c) in z.iter_mut().zip(a).zip(b).zip(c) {
        *z += *a + *b + *c;
    }
}

fn add3(z: &mut [f32], a: &[f32], b: &[f32], c: &[f32], simd: bool) {
    #[cfg(target_arch = "x86_64")]
    if simd {
        #[target_feature(enable = "avx512f")]
        fn avx512(z: &mut [f32], a: &[f32], b: &[f32], c: &[f32]) {
            add3_body(z, a, b, c)
        }
        // SAFETY: `simd` is set only where the CPU has AVX-512F (every bf16 instruction set).
        return unsafe { avx512(z, a, b, c) };
    }
    let _ = simd;
    add3_body(z, a, b, c)
}

/// One image row of a group's outputs stored as bf16 slot pairs: `dst[q][x]` is the pair of
/// outputs `2q` and `2q + 1` (zero past the last) at pixel `x`, each clamped and rounded by
/// [`super::convert::stored_feature`].
pub(crate) fn store_pairs(dst: &mut [u32], x_pad: usize, outputs: &[&[f32]], simd: bool) {
    #[inline(always)]
    fn body(dst: &mut [u32], x_pad: usize, outputs: &[&[f32]]) {
        use super::convert::{pair, stored_feature};
        for (q, two) in outputs.chunks(2).enumerate() {
            let row = &mut dst[q * x_pad..q * x_pad + two[0].len()];
            match two {
                [a, b] => {
                    for ((d, &a), &b) in row.iter_mut().zip(*a).zip(*b) {
                        *d = pair(stored_feature(a), stored_feature(b));
                    }
                }
                [a] => {
                    for (d, &a) in row.iter_mut().zip(*a) {
                        *d = pair(stored_feature(a), 0);
                    }
                }
                _ => unreachable!("chunks of at most two"),
            }
        }
    }
    #[cfg(target_arch = "x86_64")]
    if simd {
        #[target_feature(enable = "avx512f")]
        fn avx512(dst: &mut [u32], x_pad: usize, outputs: &[&[f32]]) {
            body(dst, x_pad, outputs)
        }
        // SAFETY: `simd` is set only where the CPU has AVX-512F.
        return unsafe { avx512(dst, x_pad, outputs) };
    }
    let _ = simd;
    body(dst, x_pad, outputs)
}

/// `acc += weight · v`, element by element (the final 1×1 layer, one channel at a time).
pub(crate) fn add_scaled(acc: &mut [f32], weight: f32, v: &[f32], simd: bool) {
    #[inline(always)]
    fn body(acc: &mut [f32], weight: f32, v: &[f32]) {
        for (a, &v) in acc.iter_mut().zip(v) {
            *a += weight * v;
        }
    }
    #[cfg(target_arch = "x86_64")]
    if simd {
        #[target_feature(enable = "avx512f")]
        fn avx512(acc: &mut [f32], weight: f32, v: &[f32]) {
            body(acc, weight, v)
        }
        // SAFETY: `simd` is set only where the CPU has AVX-512F.
        return unsafe { avx512(acc, weight, v) };
    }
    let _ = simd;
    body(acc, weight, v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::reflect;

    #[test]
    fn a_partial_row_reaches_every_output_row_that_reads_it() {
        // One output plane, dilation d, an image of h rows: row r's centre-column partial (tap
        // (ky, 1)) must be added to exactly the rows y with mirror(y + (ky − 1)d) = r.
        for (h, d) in [(7usize, 1usize), (7, 3), (5, 4), (12, 10)] {
            let w = 3;
            let (col0, p_stride) = (d, d + w + d);
            for r in 0..h {
                for ky in 0..3 {
                    let mut p = vec![0.0f32; 9 * p_stride];
                    p[(3 * ky + 1) * p_stride + col0] = 1.0; // pixel 0 of tap (ky, 1)
                    let mut plane = vec![0.0f32; h * w];
                    let row = PartialRow { p: &p, p_stride, col0, r, h, w, dilations: &[d] };
                    // Split the rows between two owners: the sum must not depend on it.
                    let (top, bottom) = plane.split_at_mut(h / 2 * w);
                    row.add_to(&mut [top], 0, h / 2, false);
                    row.add_to(&mut [bottom], h / 2, h, false);
                    for y in 0..h {
                        let want =
                            (reflect(y as isize + (ky as isize - 1) * d as isize, h) == r) as u8 as f32;
                        assert_eq!(plane[y * w], want, "h {h} d {d} r {r} ky {ky} y {y}");
                    }
                }
            }
        }
    }

    #[test]
    fn mirrored_columns_match_reflect() {
        let (w, halo, col0) = (6usize, 4usize, 5usize);
        let p_stride = col0 + w + halo + 3;
        let mut p: Vec<f32> = (0..2 * p_stride).map(|v| v as f32).collect();
        mirror_columns(&mut p, 2, p_stride, col0, w, halo);
        for m in 0..2 {
            for x in -(halo as isize)..(w + halo) as isize {
                let got = p[m * p_stride + (col0 as isize + x) as usize];
                let want = p[m * p_stride + col0 + reflect(x, w)];
                assert_eq!(got, want, "row {m} column {x}");
            }
        }
    }

    #[test]
    fn stored_pairs_interleave_two_outputs() {
        let a = [1.0f32, 2.0, -1.0];
        let b = [0.5f32, 4.0, 8.0];
        let c = [3.0f32, 3.0, 3.0];
        let mut dst = vec![0u32; 2 * 4];
        store_pairs(&mut dst, 4, &[&a, &b, &c], false);
        assert_eq!(dst[0], 0x3f00_3f80);
        assert_eq!(dst[2], 0x4100_0000, "negative activations are stored as 0 (after ReLU)");
        assert_eq!(dst[4], 0x0000_4040);
        assert_eq!(dst[3], 0, "padding columns untouched");
    }
}
