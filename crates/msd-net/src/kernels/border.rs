//! Mirrored borders: numpy's `symmetric` mode (the edge pixel repeated), periodic beyond the image.

/// Maps a possibly out-of-range index to `0..n` by symmetric reflection (numpy `symmetric`):
/// `-1 → 0`, `-2 → 1`, `n → n-1`, `n+1 → n-2`. Beyond one reflection it keeps reflecting
/// (period `2n`), so any dilation works on any image size.
///
/// ```
/// use msd_net::kernels::reflect;
/// assert_eq!([reflect(-1, 5), reflect(-2, 5), reflect(5, 5), reflect(6, 5)], [0, 1, 4, 3]);
/// assert_eq!(reflect(-7, 3), 0); // keeps reflecting with period 2n = 6
/// ```
#[inline]
pub fn reflect(i: isize, n: usize) -> usize {
    debug_assert!(n > 0);
    let period = 2 * n as isize;
    let m = i.rem_euclid(period) as usize;
    if m < n { m } else { 2 * n - 1 - m }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflect_matches_numpy_symmetric() {
        // np.pad(np.arange(3), 7, mode="symmetric")
        let expect = [0, 0, 1, 2, 2, 1, 0, 0, 1, 2, 2, 1, 0, 0, 1, 2, 2];
        let got: Vec<usize> = (-7..10).map(|i| reflect(i, 3)).collect();
        assert_eq!(got, expect);
        assert_eq!(reflect(-3, 1), 0);
        assert_eq!(reflect(4, 1), 0);
    }
}
