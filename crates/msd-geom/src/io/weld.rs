//! Welding triangle corners into shared vertices: positions that are bit-for-bit equal (with −0
//! equal to +0) become one vertex, numbered in the order of their first appearance.
//!
//! The corners are split into shards by a hash of their position; each shard is welded by its own
//! hash map on its own thread, and one ordered pass then numbers the vertices. The result is the
//! same as one hash map filled corner by corner, whatever the number of threads.
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU32, Ordering};

use rayon::prelude::*;

use crate::Mesh;

/// Corners below which welding runs on one thread (sharding would cost more than it saves).
const SERIAL_CORNERS: usize = 1 << 16;

/// A position as a hashable key: the bits of x, y and z, with −0 taken as +0.
fn key(p: [f32; 3]) -> u128 {
    let b = p.map(|c| if c == 0.0 { 0u32 } else { c.to_bits() });
    u128::from(b[0]) | u128::from(b[1]) << 32 | u128::from(b[2]) << 64
}

/// A fast, well-mixed hash of a key (positions are not attacker-controlled in a way that matters:
/// a file can at worst make its own reading slower).
fn mix(k: u128) -> u64 {
    let (lo, hi) = (k as u64, (k >> 64) as u64);
    let mut h = lo.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ hi.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    h ^= h >> 32;
    h = h.wrapping_mul(0x1656_67B1_9E37_79F9);
    h ^ (h >> 29)
}

/// The hasher of the weld maps: [`mix`] of the one `u128` key.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u128(&mut self, k: u128) {
        self.0 = mix(k);
    }
}

type KeyMap = HashMap<u128, u32, BuildHasherDefault<KeyHasher>>;

/// Welds `corners` positions (`corner(j)` for `j` in `0..corners`, three per triangle) into a mesh.
/// The caller guarantees `corners` is a multiple of 3, fits in `u32` and every position is finite.
pub(crate) fn weld_corners(corners: usize, corner: impl Fn(usize) -> [f32; 3] + Sync) -> Mesh {
    debug_assert!(corners.is_multiple_of(3) && u32::try_from(corners).is_ok());
    // first[j]: the first corner with corner j's position.
    let first: Vec<u32> = if corners < SERIAL_CORNERS || rayon::current_num_threads() == 1 {
        let mut map = KeyMap::with_capacity_and_hasher(corners / 5 + 3, Default::default());
        (0..corners).map(|j| *map.entry(key(corner(j))).or_insert(j as u32)).collect()
    } else {
        let shards = (rayon::current_num_threads() * 2).min(64);
        let shard_of = |k: u128| ((mix(k) >> 24) % shards as u64) as u8;
        let shard: Vec<u8> =
            (0..corners).into_par_iter().with_min_len(1 << 14).map(|j| shard_of(key(corner(j)))).collect();
        let first: Vec<AtomicU32> = (0..corners).into_par_iter().map(|_| AtomicU32::new(0)).collect();
        (0..shards).into_par_iter().for_each(|s| {
            let mut map = KeyMap::with_capacity_and_hasher(corners / (5 * shards) + 3, Default::default());
            for (j, _) in shard.iter().enumerate().filter(|&(_, &x)| x as usize == s) {
                let f = *map.entry(key(corner(j))).or_insert(j as u32);
                first[j].store(f, Ordering::Relaxed);
            }
        });
        first.into_iter().map(AtomicU32::into_inner).collect()
    };
    // One ordered pass: a corner that is its own first occurrence is a new vertex; every other
    // corner takes the vertex of its (earlier) first occurrence.
    let mut index = first;
    let mut vertices = Vec::with_capacity(corners / 5 + 3);
    for j in 0..index.len() {
        let f = index[j] as usize;
        index[j] = if f == j {
            vertices.push(corner(j));
            (vertices.len() - 1) as u32
        } else {
            index[f]
        };
    }
    let triangles = index.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect();
    Mesh::from_parts_unchecked(vertices, triangles)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The reference: one map filled corner by corner, as the readers always did.
    fn weld_reference(soup: &[[[f32; 3]; 3]]) -> Mesh {
        let key = |p: &[f32; 3]| p.map(|c| if c == 0.0 { 0u32 } else { c.to_bits() });
        let mut index: std::collections::HashMap<[u32; 3], u32> = Default::default();
        let mut vertices = Vec::new();
        let mut triangles = Vec::new();
        for tri in soup {
            triangles.push(tri.map(|p| {
                *index.entry(key(&p)).or_insert_with(|| {
                    vertices.push(p);
                    (vertices.len() - 1) as u32
                })
            }));
        }
        Mesh::from_parts_unchecked(vertices, triangles)
    }

    fn weld(soup: &[[[f32; 3]; 3]]) -> Mesh {
        weld_corners(soup.len() * 3, |j| soup[j / 3][j % 3])
    }

    /// Random soup with many repeated positions (a small lattice), including −0.
    fn soup(seed: u64, triangles: usize) -> Vec<[[f32; 3]; 3]> {
        let mut s = seed | 1;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        (0..triangles)
            .map(|_| {
                std::array::from_fn(|_| {
                    std::array::from_fn(|_| match next() % 9 {
                        0 => -0.0,
                        r => (r as f32 - 4.0) * 0.25,
                    })
                })
            })
            .collect()
    }

    #[test]
    fn sharded_weld_matches_the_serial_reference() {
        // Above the serial threshold, so the sharded path runs.
        let s = soup(7, SERIAL_CORNERS);
        assert_eq!(weld(&s), weld_reference(&s));
        let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
        assert_eq!(pool.install(|| weld(&s)), weld_reference(&s));
    }

    proptest! {
        #[test]
        fn weld_matches_the_reference(seed in any::<u64>(), n in 0usize..400) {
            let s = soup(seed, n);
            prop_assert_eq!(weld(&s), weld_reference(&s));
        }
    }
}
