//! bfloat16 numbers as raw bits: rounding from `f32` and widening back.
//!
//! The crate has no bf16 type of its own: the feature buffer holds bit patterns (`u16`, two to a
//! `u32` pair, as the dot-product instructions read them), and these two functions are the only
//! places a value changes precision.

/// The largest finite bf16 value. Stored features are clamped to it so that a stored channel is
/// never infinite (a zero weight times an infinity would be NaN, see `layout.rs`).
pub(crate) const BF16_MAX: f32 = f32::from_bits(0x7f7f_0000);

/// The bf16 nearest to `v` (round to nearest, ties to even); NaN stays a (quiet) NaN.
#[inline(always)]
pub(crate) fn bf16_bits(v: f32) -> u16 {
    let b = v.to_bits();
    if v.is_nan() {
        return ((b >> 16) | 0x40) as u16;
    }
    // Adding 0x7fff plus the lowest kept bit rounds half-way cases to the even neighbour; a carry
    // into the exponent is the correct rounding up to the next binade (or to infinity).
    ((b + 0x7fff + ((b >> 16) & 1)) >> 16) as u16
}

/// The `f32` value of bf16 bits (exact: bf16 is the upper half of an `f32`).
#[inline(always)]
pub(crate) fn bf16_value(bits: u16) -> f32 {
    f32::from_bits((bits as u32) << 16)
}

/// A stored feature: the activation (already ≥ 0 after ReLU, NaN taken as 0) clamped to the finite
/// bf16 range and rounded.
#[inline(always)]
// Not `clamp`: that keeps a NaN, and a stored feature must be finite.
#[allow(clippy::manual_clamp)]
pub(crate) fn stored_feature(v: f32) -> u16 {
    bf16_bits(v.max(0.0).min(BF16_MAX))
}

/// Two bf16 values as one pair, `lo` in the low half: the order in which `vdpbf16ps` and AMX's
/// `tdpbf16ps` read the two elements of a pair.
#[inline(always)]
pub(crate) fn pair(lo: u16, hi: u16) -> u32 {
    lo as u32 | (hi as u32) << 16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_is_to_nearest_even() {
        // 1 + 2^-8 is half-way between 1 and 1 + 2^-7: ties go to the even mantissa (1).
        assert_eq!(bf16_bits(1.0 + 1.0 / 256.0), bf16_bits(1.0));
        // 1 + 3·2^-8 is half-way between 1 + 2^-7 and 1 + 2^-6: even is 1 + 2^-6.
        assert_eq!(bf16_value(bf16_bits(1.0 + 3.0 / 256.0)), 1.0 + 4.0 / 256.0);
        assert_eq!(bf16_value(bf16_bits(-2.5)), -2.5);
        assert!(bf16_value(bf16_bits(f32::NAN)).is_nan());
        assert_eq!(bf16_value(bf16_bits(f32::INFINITY)), f32::INFINITY);
        // Past the largest finite bf16, rounding gives infinity; a stored feature saturates.
        assert_eq!(bf16_value(bf16_bits(f32::MAX)), f32::INFINITY);
        assert_eq!(bf16_value(stored_feature(f32::MAX)), BF16_MAX);
        assert_eq!(bf16_value(stored_feature(f32::NAN)), 0.0);
        assert_eq!(bf16_value(stored_feature(-3.0)), 0.0);
    }

    #[test]
    fn rounding_error_is_at_most_half_a_unit() {
        for i in 0..10_000u32 {
            let v = (i as f32 * 0.7318).sin() * 10f32.powi((i % 13) as i32 - 6);
            let r = bf16_value(bf16_bits(v));
            assert!((r - v).abs() <= v.abs() * (1.0 / 256.0), "{v} -> {r}");
        }
    }

    #[test]
    fn pairs_put_the_first_element_low() {
        assert_eq!(pair(0x3f80, 0x4000), 0x4000_3f80);
    }
}
