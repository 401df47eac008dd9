//! Padded scratch copies of a band of rows, and the per-thread buffers that hold them.
//!
//! Before a band of output rows is computed, each input plane's rows for that band — plus a halo
//! as wide as the largest dilation — are copied into a scratch plane with its borders already
//! filled in: mirrored (numpy `symmetric`) for features, zero for gradients. The inner loops then
//! never test a border, the scratch of a few channels stays in L2 while every layer of a group
//! reads it, and the centre column of every output vector lands on a 64-byte boundary.
use std::cell::RefCell;

use super::border::reflect;

/// Copies rows `first_row .. first_row + rows` and columns `first_col .. first_col + cols` of the
/// `h × w` plane `src` into `dst` (`rows × cols`), mirroring indices outside the image with
/// [`reflect`] (numpy `symmetric`, periodic beyond one reflection).
#[inline(always)]
pub(crate) fn fill_reflected(
    src: &[f32],
    h: usize,
    w: usize,
    first_row: isize,
    first_col: isize,
    cols: usize,
    dst: &mut [f32],
) {
    let (inner_from, inner_to) = inner_columns(w, first_col, cols);
    for (r, out) in dst.chunks_exact_mut(cols).enumerate() {
        let y = reflect(first_row + r as isize, h);
        let row = &src[y * w..(y + 1) * w];
        if inner_to > inner_from {
            let x0 = (first_col + inner_from as isize) as usize;
            out[inner_from..inner_to].copy_from_slice(&row[x0..x0 + inner_to - inner_from]);
        }
        for s in (0..inner_from).chain(inner_to..cols) {
            out[s] = row[reflect(first_col + s as isize, w)];
        }
    }
}

/// As [`fill_reflected`], but every index outside the image reads zero.
#[inline(always)]
pub(crate) fn fill_zero_padded(
    src: &[f32],
    h: usize,
    w: usize,
    first_row: isize,
    first_col: isize,
    cols: usize,
    dst: &mut [f32],
) {
    let (inner_from, inner_to) = inner_columns(w, first_col, cols);
    for (r, out) in dst.chunks_exact_mut(cols).enumerate() {
        let y = first_row + r as isize;
        if y < 0 || y >= h as isize || inner_to <= inner_from {
            out.fill(0.0);
            continue;
        }
        let y = y as usize;
        let x0 = (first_col + inner_from as isize) as usize;
        out[..inner_from].fill(0.0);
        out[inner_from..inner_to].copy_from_slice(&src[y * w + x0..y * w + x0 + inner_to - inner_from]);
        out[inner_to..].fill(0.0);
    }
}

/// The scratch columns `from..to` whose image column `first_col + s` lies inside `0..w`.
fn inner_columns(w: usize, first_col: isize, cols: usize) -> (usize, usize) {
    let from = (-first_col).clamp(0, cols as isize) as usize;
    let to = (w as isize - first_col).clamp(from as isize, cols as isize) as usize;
    (from, to)
}

/// Buffers reused by the band tasks of one worker thread, so that the hundreds of passes of a
/// network allocate (and page-fault) once per thread instead of once per band.
#[derive(Default)]
pub(crate) struct Scratch {
    bufs: [Vec<f32>; 3],
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// One 64-byte aligned region of `len` floats inside `buf` (contents unspecified).
fn aligned(buf: &mut Vec<f32>, len: usize) -> &mut [f32] {
    const ALIGN_FLOATS: usize = 16;
    if buf.len() < len + ALIGN_FLOATS {
        buf.resize(len + ALIGN_FLOATS, 0.0);
    }
    let off = buf.as_ptr().align_offset(64).min(ALIGN_FLOATS);
    &mut buf[off..off + len]
}

impl Scratch {
    /// Runs `f` with this thread's scratch buffers.
    ///
    /// The kernels take the buffers as an argument rather than borrowing them inside: a closure
    /// handed to the thread-local would be compiled without the caller's `#[target_feature]`s.
    pub(crate) fn with_thread_local<T>(f: impl FnOnce(&mut Scratch) -> T) -> T {
        SCRATCH.with_borrow_mut(f)
    }

    /// Three aligned regions of the given lengths (contents unspecified).
    pub(crate) fn regions(&mut self, lens: [usize; 3]) -> [&mut [f32]; 3] {
        let [a, b, c] = &mut self.bufs;
        [aligned(a, lens[0]), aligned(b, lens[1]), aligned(c, lens[2])]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflected_fill_matches_reflect_everywhere() {
        let (h, w) = (3, 5);
        let src: Vec<f32> = (0..h * w).map(|v| v as f32).collect();
        let (rows, cols) = (9, 17);
        let mut dst = vec![f32::NAN; rows * cols];
        fill_reflected(&src, h, w, -3, -6, cols, &mut dst);
        for r in 0..rows {
            for s in 0..cols {
                let y = reflect(r as isize - 3, h);
                let x = reflect(s as isize - 6, w);
                assert_eq!(dst[r * cols + s], src[y * w + x], "({r}, {s})");
            }
        }
    }

    #[test]
    fn zero_padded_fill_is_zero_outside() {
        let (h, w) = (4, 6);
        let src: Vec<f32> = (1..=h * w).map(|v| v as f32).collect();
        let (rows, cols) = (8, 11);
        let mut dst = vec![f32::NAN; rows * cols];
        fill_zero_padded(&src, h, w, -2, -3, cols, &mut dst);
        for r in 0..rows {
            for s in 0..cols {
                let (y, x) = (r as isize - 2, s as isize - 3);
                let inside = (0..h as isize).contains(&y) && (0..w as isize).contains(&x);
                let want = if inside { src[y as usize * w + x as usize] } else { 0.0 };
                assert_eq!(dst[r * cols + s], want, "({r}, {s})");
            }
        }
    }

    #[test]
    fn aligned_regions_are_64_byte_aligned() {
        let mut v = Vec::new();
        for len in [1, 17, 1000] {
            let a = aligned(&mut v, len);
            assert_eq!(a.len(), len);
            assert_eq!(a.as_ptr() as usize % 64, 0);
        }
    }
}
