//! A group's triangle two layers at a time, on bf16 dot products.
//!
//! Inside a group, each layer feeds the group's later layers (the *triangle*). One channel at a
//! time that is a 3×3 convolution per later layer in `f32`: nine loads and nine FMAs per vector of
//! pixels, and one pass over every later plane per layer. Taken two layers `s`, `s + 1` at a time,
//! the pair of channels at each pixel is one bf16 pair, and each tap of a later layer is one
//! `vdpbf16ps` over both (the pair layout of the feature buffer): half the instructions and half
//! the passes over the later planes. Only the link inside the pair, `s` to `s + 1`, stays a single
//! channel and runs in `f32` before the pair is formed (`super::Run::triangle`).
//!
//! The pair's channels are rounded to bf16 here exactly as they are when stored for later groups
//! ([`super::convert::stored_feature`]), so a triangle term carries the same rounding as a bulk
//! term; the sums stay `f32`.
//!
//! A *pair row* is one image row of the two channels: `halo` mirrored columns, the `w` pixels,
//! `halo` mirrored columns, then zeros to [`pair_row_len`] (numpy's `symmetric` mirror, so that a
//! tap at column `x + (kx − 1)·d` is a plain offset for every `d ≤ halo`). Rows are mirrored by
//! choosing which pair row a tap reads.
use super::convert::bf16_value;
use super::shift::{mirror_columns, store_pairs};

/// `u32`s per pair row of an image `w` pixels wide with `halo` mirrored columns each side: room
/// for whole 16-pixel vectors at every tap offset.
pub(crate) fn pair_row_len(w: usize, halo: usize) -> usize {
    halo + w.next_multiple_of(16) + halo
}

/// Writes one pair row from rows `a` and `b` (`w` pixels each) of two activated planes, rounded
/// as the stored features are ([`store_pairs`]), its column halos mirrored ([`mirror_columns`]).
pub(crate) fn store_pair_row(row: &mut [u32], a: &[f32], b: &[f32], halo: usize, simd: bool) {
    let w = a.len();
    let len = pair_row_len(w, halo);
    debug_assert!(b.len() == w && halo <= w && row.len() >= len);
    store_pairs(&mut row[halo..], w, &[a, b], simd);
    mirror_columns(row, 1, len, halo, w, halo);
    row[2 * halo + w..].fill(0);
}

/// `out[x] += Σ_{ky, kx} taps[3·ky + kx] · rows[ky][x + (kx − 1)·d]` over bf16 pairs, summed in
/// `f32`, for the `out.len()` pixels of one output row; `rows[ky]` are the pair rows its taps
/// read (already mirrored in `y`), `halo` their mirrored columns.
///
/// # Panics
/// When `d > halo` or a pair row is shorter than [`pair_row_len`].
pub(crate) fn add_pair_taps(
    out: &mut [f32],
    rows: [&[u32]; 3],
    halo: usize,
    d: usize,
    taps: &[u32; 9],
    dot: bool,
) {
    let w = out.len();
    assert!(d <= halo && rows.iter().all(|r| r.len() >= pair_row_len(w, halo)), "pair rows too short");
    #[cfg(target_arch = "x86_64")]
    if dot {
        // SAFETY: `dot` is set only where the CPU has AVX-512F and AVX512-BF16; lengths checked.
        return unsafe { x86::add_pair_taps(out, rows, halo, d, taps) };
    }
    let _ = dot;
    let lo = |v: u32| bf16_value(v as u16);
    let hi = |v: u32| bf16_value((v >> 16) as u16);
    for (x, o) in out.iter_mut().enumerate() {
        let mut acc = *o;
        for (ky, row) in rows.iter().enumerate() {
            for kx in 0..3 {
                let (t, v) = (taps[3 * ky + kx], row[halo + x + kx * d - d]);
                acc += lo(t) * lo(v) + hi(t) * hi(v);
            }
        }
        *o = acc;
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::{
        __m512, __m512bh, __m512i, _mm512_dpbf16_ps, _mm512_loadu_ps, _mm512_loadu_si512,
        _mm512_mask_storeu_ps, _mm512_maskz_loadu_ps, _mm512_set1_epi32, _mm512_storeu_ps,
    };

    /// Vectors of 16 pixels per step: eight independent sums cover the dot product's latency.
    const UNROLL: usize = 8;

    /// # Safety
    /// AVX-512F and AVX512-BF16; `d ≤ halo` and every row at least `pair_row_len(out.len(), halo)`.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) unsafe fn add_pair_taps(
        out: &mut [f32],
        rows: [&[u32]; 3],
        halo: usize,
        d: usize,
        taps: &[u32; 9],
    ) {
        let w = out.len();
        // SAFETY: a vector of 16 equal pairs, reinterpreted as 32 bf16.
        let taps: [__m512bh; 9] =
            taps.map(|t| unsafe { std::mem::transmute::<__m512i, __m512bh>(_mm512_set1_epi32(t as i32)) });
        let load = |ky: usize, x: usize, kx: usize| -> __m512bh {
            // SAFETY: halo + x − d ≥ 0 (d ≤ halo) and halo + x + d + 16 ≤ pair_row_len(w, halo)
            // for every vector start x < w.next_multiple_of(16) (the caller's lengths).
            unsafe {
                let at = rows[ky].as_ptr().add(halo + x + kx * d - d);
                std::mem::transmute::<__m512i, __m512bh>(_mm512_loadu_si512(at.cast()))
            }
        };
        let o = out.as_mut_ptr();
        let mut x0 = 0;
        while x0 + 16 * UNROLL <= w {
            // SAFETY: x0 + 16·UNROLL ≤ w: inside `out`.
            let mut acc: [__m512; UNROLL] =
                std::array::from_fn(|u| unsafe { _mm512_loadu_ps(o.add(x0 + 16 * u)) });
            for ky in 0..3 {
                for kx in 0..3 {
                    for (u, acc) in acc.iter_mut().enumerate() {
                        *acc = _mm512_dpbf16_ps(*acc, taps[3 * ky + kx], load(ky, x0 + 16 * u, kx));
                    }
                }
            }
            for (u, acc) in acc.iter().enumerate() {
                // SAFETY: as for the loads.
                unsafe { _mm512_storeu_ps(o.add(x0 + 16 * u), *acc) };
            }
            x0 += 16 * UNROLL;
        }
        while x0 < w {
            let mask = (u32::MAX >> (32 - (w - x0).min(16))) as u16;
            // SAFETY: the mask keeps the loads and stores to pixels x0.. < w.
            let mut acc = unsafe { _mm512_maskz_loadu_ps(mask, o.add(x0)) };
            for ky in 0..3 {
                for kx in 0..3 {
                    acc = _mm512_dpbf16_ps(acc, taps[3 * ky + kx], load(ky, x0, kx));
                }
            }
            // SAFETY: as above.
            unsafe { _mm512_mask_storeu_ps(o.add(x0), mask, acc) };
            x0 += 16;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::bf16::convert::{bf16_bits, pair, stored_feature};
    use crate::kernels::reflect;

    #[test]
    fn pair_taps_are_the_mirrored_convolution_of_both_channels() {
        // Values exact in bf16 (small integers and halves), so every path must agree exactly with
        // the 3×3 convolution of the two channels at dilation d with numpy's symmetric mirror.
        let dot = crate::kernels::Bf16Isa::Avx512Bf16.is_supported();
        for (w, h, d) in [(37usize, 9usize, 3usize), (16, 5, 1), (200, 12, 10), (5, 7, 2)] {
            let halo = d.max(2).min(w);
            let a: Vec<f32> = (0..h * w).map(|i| ((i * 7) % 11) as f32 * 0.5).collect();
            let b: Vec<f32> = (0..h * w).map(|i| ((i * 5) % 13) as f32).collect();
            let wa: Vec<f32> = (0..9).map(|t| t as f32 - 4.0).collect();
            let wb: Vec<f32> = (0..9).map(|t| 0.5 * (t % 3) as f32 - 1.0).collect();
            let taps: [u32; 9] = std::array::from_fn(|t| pair(bf16_bits(wa[t]), bf16_bits(wb[t])));
            let len = pair_row_len(w, halo);
            let mut q = vec![0u32; h * len];
            for y in 0..h {
                store_pair_row(
                    &mut q[y * len..(y + 1) * len],
                    &a[y * w..(y + 1) * w],
                    &b[y * w..(y + 1) * w],
                    halo,
                    dot,
                );
            }
            for use_dot in [false, dot] {
                for y in 0..h {
                    let rows = [0, 1, 2].map(|ky| {
                        let r = reflect(y as isize + (ky as isize - 1) * d as isize, h);
                        &q[r * len..(r + 1) * len]
                    });
                    let mut out = vec![1.0f32; w];
                    add_pair_taps(&mut out, rows, halo, d, &taps, use_dot);
                    for (x, &got) in out.iter().enumerate() {
                        let mut want = 1.0f32;
                        for ky in 0..3 {
                            for kx in 0..3 {
                                let yy = reflect(y as isize + (ky as isize - 1) * d as isize, h);
                                let xx = reflect(x as isize + (kx as isize - 1) * d as isize, w);
                                want += wa[3 * ky + kx] * a[yy * w + xx] + wb[3 * ky + kx] * b[yy * w + xx];
                            }
                        }
                        assert_eq!(got, want, "w {w} h {h} d {d} dot {use_dot} at ({y}, {x})");
                    }
                }
            }
        }
    }

    #[test]
    fn pair_rows_round_like_stored_features_and_end_in_zeros() {
        let a = [1.0f32 + 1.0 / 512.0, -2.0, 3.0];
        let b = [f32::NAN, 0.25, 8.0];
        let mut row = vec![7u32; pair_row_len(3, 2)];
        store_pair_row(&mut row, &a, &b, 2, false);
        assert_eq!(row[2], pair(stored_feature(a[0]), 0), "rounded; NaN stored as 0");
        assert_eq!(row[3], pair(0, bf16_bits(0.25)), "negative stored as 0");
        assert_eq!(row[1], row[2], "column −1 mirrors column 0");
        assert_eq!(row[0], row[3], "column −2 mirrors column 1");
        assert_eq!(row[5], row[4], "column w mirrors column w − 1");
        assert_eq!(row[6], row[3], "column w + 1 mirrors column w − 2");
        assert!(row[7..].iter().all(|&v| v == 0));
    }
}
