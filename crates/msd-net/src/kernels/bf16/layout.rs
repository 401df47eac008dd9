//! Where each channel lives in the bf16 feature buffer, which layers form a group, and each
//! group's 3×3 weights packed as the matrix its bulk pass multiplies by.
//!
//! **Slots.** The feature buffer of one image is `[y][slot pair][x_pad]` `u32`: for every row,
//! every pair of *slots* is a row of `x_pad` pixels holding two bf16 values each (the pair layout
//! of `vdpbf16ps` and of AMX's `B` tiles). Slots are channels renumbered:
//!
//! - each network input channel `i` takes three slots, `3i`, `3i + 1`, `3i + 2`, holding the
//!   value's bf16 `hi`, the remainder `lo = bf16(x − hi)`, and `hi` again. Their weights are
//!   `w_hi`, `w_hi` and `w_lo = bf16(w − w_hi)`, so `hi·w_hi + lo·w_hi + hi·w_lo` carries the CT
//!   to about 16 significant bits where bf16 alone keeps 8 (the input is what the 300 HU boundary
//!   is read from; the two extra slots cost little, as the product reads whole 32-slot chunks);
//! - the input block is padded to a whole slot pair; then each group of layers gets a block of
//!   slots for its outputs, also padded to a pair.
//!
//! **Groups.** [`GROUP_OUTPUTS`]` / width` consecutive layers (one layer when the width is
//! larger): their outputs are written together after the group, as slot pairs of each pixel.
//! Larger groups read the stored features fewer times; smaller ones leave less of the network to
//! the `f32` triangle. Measured at depth 100 on 512² (AMX, 2 cores, process CPU time per forward
//! pass): 16 outputs 220 ms, 12 outputs 205 ms, 8 outputs 207 ms, 4 outputs 235 ms.
//!
//! **The bulk matrix.** A group's bulk pass reads the slots before its own block and gives, for
//! every output `o` and tap `t = 3·ky + kx`, the *partial* `P[9o + t][pixel] = Σ_s w_{o,s,t} ·
//! X_s[pixel]`: a matrix product `A · X` with `A` the `[rows][k_pairs]` pairs of bf16 weights
//! below (`rows = 9 · n_out` padded to 16, `k_pairs` the slots read, padded to 32, halved). Slots
//! that hold no channel get zero weights; the padding slots the product reads past the group's
//! own inputs belong to the group itself or to later ones and hold the previous image's
//! (finite, see `convert.rs`) values there, which a zero weight removes exactly. The group's own
//! channels reach its later layers through the triangle, so their bulk weights are zero too.
use std::ops::Range;

use super::convert::{bf16_bits, bf16_value, pair};
use crate::MsdConfig;

/// Output planes per group (fewer when the width does not divide it; one layer per group when
/// the width exceeds it).
pub(crate) const GROUP_OUTPUTS: usize = 12;
/// Slots per step of the bulk product (one AMX tile row of bf16).
pub(crate) const K_CHUNK: usize = 32;
/// Rows of a tile: the bulk matrix's rows are padded to this.
pub(crate) const TILE_ROWS: usize = 16;

/// One group of consecutive layers.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    /// Its layers.
    pub layers: Range<usize>,
    /// The feature channel of its first output (`input_channels + layers.start · width`).
    pub first_channel: usize,
    /// Its output planes: `layers.len() · width`.
    pub n_out: usize,
    /// The slot of its first output.
    pub slot_base: usize,
    /// Slot pairs its bulk pass reads (a multiple of 16).
    pub k_pairs: usize,
    /// Rows of the bulk matrix: `9 · n_out` padded to [`TILE_ROWS`].
    pub rows: usize,
    /// The bulk matrix `[rows][k_pairs]`, pairs of bf16 weights.
    pub a: Vec<u32>,
}

/// The slot layout of one network and its packed bulk matrices.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    /// Slot pairs per pixel in the feature buffer.
    pub pairs: usize,
    /// The groups, in forward order.
    pub groups: Vec<Group>,
}

impl Layout {
    /// The layout of `config` with its weights packed from `conv_weights` (flat, as [`crate::Params`]).
    pub(crate) fn new(config: &MsdConfig, conv_weights: &[f32]) -> Layout {
        let width = config.width;
        let c_in = config.input_channels;
        // Blocks start on a slot pair, so that a group's outputs are stored as whole pairs.
        let input_slots = (3 * c_in).next_multiple_of(2);
        let per_group = (GROUP_OUTPUTS / width).max(1);
        let out_block = (per_group * width).next_multiple_of(2);
        let n_groups = config.depth.div_ceil(per_group);
        let slots = (input_slots + n_groups * out_block).next_multiple_of(K_CHUNK);
        let slot_channel = |s: usize| -> Option<(usize, usize)> {
            // (channel, part): part 0 = hi with w_hi, 1 = lo with w_hi, 2 = hi with w_lo.
            if s < input_slots {
                return (s < 3 * c_in).then_some((s / 3, s % 3));
            }
            let (g, r) = ((s - input_slots) / out_block, (s - input_slots) % out_block);
            let c = c_in + g * per_group * width + r;
            (r < per_group * width && c < config.total_channels()).then_some((c, 0))
        };
        let groups = (0..n_groups)
            .map(|g| {
                let layers = g * per_group..((g + 1) * per_group).min(config.depth);
                let n_out = layers.len() * width;
                let slot_base = input_slots + g * out_block;
                let k_slots = slot_base.next_multiple_of(K_CHUNK);
                let k_pairs = k_slots / 2;
                let rows = (9 * n_out).next_multiple_of(TILE_ROWS);
                // The group's own channels reach its later layers through the triangle, never
                // through the bulk product.
                let first_channel = config.layer_inputs(layers.start);
                let mut a = vec![0u32; rows * k_pairs];
                for o in 0..n_out {
                    let j = layers.start + o / width;
                    let at = config.weight_offset(j) + (o % width) * config.layer_inputs(j) * 9;
                    for t in 0..9 {
                        let weight = |s: usize| -> u16 {
                            match slot_channel(s) {
                                Some((c, part)) if c < first_channel => {
                                    let w = conv_weights[at + c * 9 + t];
                                    let hi = bf16_bits(w);
                                    if part == 2 { bf16_bits(w - bf16_value(hi)) } else { hi }
                                }
                                _ => 0,
                            }
                        };
                        let row = &mut a[(9 * o + t) * k_pairs..(9 * o + t + 1) * k_pairs];
                        for (k2, v) in row.iter_mut().enumerate() {
                            *v = pair(weight(2 * k2), weight(2 * k2 + 1));
                        }
                    }
                }
                Group { first_channel, layers, n_out, slot_base, k_pairs, rows, a }
            })
            .collect();
        Layout { pairs: slots / 2, groups }
    }
}

/// The three slots of input value `v`: `hi`, `lo = v − hi`, `hi` (see the module docs).
#[inline(always)]
pub(crate) fn input_slots(v: f32) -> [u16; 3] {
    let hi = bf16_bits(v);
    [hi, bf16_bits(v - bf16_value(hi)), hi]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_cover_every_layer_once_in_aligned_blocks() {
        for (depth, width, c_in) in [(100, 1, 1), (7, 2, 3), (5, 3, 2), (3, 20, 1), (16, 1, 6)] {
            let config = MsdConfig::new(depth, width, c_in, 2);
            let w = vec![0.5; config.conv_weight_len()];
            let l = Layout::new(&config, &w);
            let input_slots = l.groups[0].slot_base;
            assert_eq!(input_slots % 2, 0);
            assert!(input_slots >= 3 * c_in);
            let mut next = 0;
            for g in &l.groups {
                assert_eq!(g.layers.start, next);
                next = g.layers.end;
                assert_eq!(g.n_out, g.layers.len() * width);
                assert_eq!(g.slot_base % 2, 0);
                assert_eq!(g.k_pairs % (K_CHUNK / 2), 0);
                assert!(2 * g.k_pairs >= g.slot_base && 2 * g.k_pairs <= 2 * l.pairs);
                assert!(g.slot_base + g.n_out <= 2 * l.pairs);
                assert_eq!(g.rows % TILE_ROWS, 0);
                assert!(g.rows >= 9 * g.n_out);
            }
            assert_eq!(next, depth);
        }
    }

    #[test]
    fn the_bulk_matrix_holds_each_weight_at_its_slot() {
        // Depth 40, width 1, 2 inputs: group g reads the inputs and layers 0..16g.
        let config = MsdConfig::new(40, 1, 2, 2);
        let w: Vec<f32> = (0..config.conv_weight_len()).map(|i| (i % 97) as f32 - 48.0).collect();
        let l = Layout::new(&config, &w);
        let input_slots = l.groups[0].slot_base;
        for g in &l.groups {
            let get = |row: usize, slot: usize| {
                let p = g.a[row * g.k_pairs + slot / 2];
                bf16_value(if slot.is_multiple_of(2) { p as u16 } else { (p >> 16) as u16 })
            };
            for o in 0..g.n_out {
                let j = g.layers.start + o;
                let at = config.weight_offset(j);
                for t in 0..9 {
                    let row = 9 * o + t;
                    // Input 1 sits at slots 3, 4, 5 (small integers are exact in bf16: w_lo = 0).
                    assert_eq!(get(row, 3), w[at + 9 + t]);
                    assert_eq!(get(row, 4), w[at + 9 + t]);
                    assert_eq!(get(row, 5), 0.0);
                    // Earlier layers' outputs: layer q's at slot input_slots + q.
                    for q in 0..g.layers.start {
                        assert_eq!(
                            get(row, input_slots + q),
                            w[at + (2 + q) * 9 + t],
                            "group {:?}",
                            g.layers
                        );
                    }
                    // The input block's padding, the group's own block (its channels go through
                    // the triangle) and the padding of the product read nothing.
                    for s in (6..input_slots).chain(g.slot_base..2 * g.k_pairs) {
                        assert_eq!(get(row, s), 0.0, "slot {s} of group {:?}", g.layers);
                    }
                }
            }
        }
        assert!(
            l.groups.iter().any(|g| 2 * g.k_pairs > g.slot_base),
            "a group whose product reads its own block"
        );
    }

    #[test]
    fn input_slots_carry_about_sixteen_bits() {
        for v in [0.123_456_79f32, -1.987_654_3, 3.0e-3, 1234.567] {
            let [hi, lo, hi2] = input_slots(v);
            assert_eq!(hi, hi2);
            let back = bf16_value(hi) + bf16_value(lo);
            assert!((back - v).abs() <= v.abs() * 2f32.powi(-16), "{v} -> {back}");
        }
    }
}
