//! Exact Euclidean distance transform on an anisotropic grid (Felzenszwalb & Huttenlocher 2012).
//!
//! The squared distance to the nearest site is separable: one 1D lower-envelope-of-parabolas pass
//! per axis, each O(n), with the axis's spacing in millimetres, so the result is exact in mm for
//! any spacing. Reference: P. F. Felzenszwalb and D. P. Huttenlocher, "Distance Transforms of
//! Sampled Functions", Theory of Computing 8 (2012).
use rayon::prelude::*;

/// Squared distance (mm²) from every voxel of a `[z, y, x]` grid of `shape` to the nearest site
/// (`sites[i] == true`), with `spacing` (x, y, z) in mm; `f64::INFINITY` everywhere if there is no
/// site.
pub(crate) fn squared_edt(sites: &[bool], shape: [usize; 3], spacing: [f64; 3]) -> Vec<f64> {
    let [nz, ny, nx] = shape;
    debug_assert_eq!(sites.len(), nz * ny * nx);
    let init = |s: bool| if s { 0.0 } else { f64::INFINITY };
    // z first, one y at a time: the [z][x] tile of that y is gathered from contiguous rows, so no
    // pass walks memory with a whole-slice stride. Tiles are stored [y][z][x].
    let mut tiles = vec![0.0f64; sites.len()];
    tiles.par_chunks_mut(nz * nx).enumerate().for_each_init(
        || (Envelope::new(nz), vec![0.0; nz]),
        |(env, line), (y, tile)| {
            for z in 0..nz {
                let src = &sites[(z * ny + y) * nx..][..nx];
                for (t, &s) in tile[z * nx..(z + 1) * nx].iter_mut().zip(src) {
                    *t = init(s);
                }
            }
            for x in 0..nx {
                for (z, l) in line.iter_mut().enumerate() {
                    *l = tile[z * nx + x];
                }
                env.transform(line, spacing[2]);
                for (z, l) in line.iter().enumerate() {
                    tile[z * nx + x] = *l;
                }
            }
        },
    );
    let mut out = vec![0.0f64; sites.len()];
    // Back to [z][y][x] (row copies), then y within each z slab.
    out.par_chunks_mut(ny * nx).enumerate().for_each_init(
        || (Envelope::new(ny), vec![0.0; ny]),
        |(env, line), (z, slab)| {
            for y in 0..ny {
                slab[y * nx..(y + 1) * nx].copy_from_slice(&tiles[(y * nz + z) * nx..][..nx]);
            }
            for x in 0..nx {
                for (y, l) in line.iter_mut().enumerate() {
                    *l = slab[y * nx + x];
                }
                env.transform(line, spacing[1]);
                for (y, l) in line.iter().enumerate() {
                    slab[y * nx + x] = *l;
                }
            }
        },
    );
    out.par_chunks_mut(nx).for_each_init(|| Envelope::new(nx), |env, row| env.transform(row, spacing[0]));
    out
}

/// Work space of the 1D transform: parabola vertices and the boundaries between them.
struct Envelope {
    v: Vec<usize>,
    z: Vec<f64>,
    out: Vec<f64>,
}

impl Envelope {
    fn new(n: usize) -> Self {
        Envelope { v: vec![0; n], z: vec![0.0; n + 1], out: vec![0.0; n] }
    }

    /// In place: f[q] ← min_p f[p] + ((q − p)·h)², skipping sites at infinity.
    fn transform(&mut self, f: &mut [f64], h: f64) {
        let n = f.len();
        let pos = |q: usize| q as f64 * h;
        let mut k: isize = -1;
        for q in 0..n {
            if !f[q].is_finite() {
                continue;
            }
            let fq = f[q] + pos(q) * pos(q);
            loop {
                if k < 0 {
                    k = 0;
                    self.v[0] = q;
                    self.z[0] = f64::NEG_INFINITY;
                    self.z[1] = f64::INFINITY;
                    break;
                }
                let p = self.v[k as usize];
                let s = (fq - (f[p] + pos(p) * pos(p))) / (2.0 * (pos(q) - pos(p)));
                if s <= self.z[k as usize] {
                    k -= 1;
                } else {
                    k += 1;
                    self.v[k as usize] = q;
                    self.z[k as usize] = s;
                    self.z[k as usize + 1] = f64::INFINITY;
                    break;
                }
            }
        }
        if k < 0 {
            return; // no site on this line: all stay infinite
        }
        let mut j = 0usize;
        for q in 0..n {
            while self.z[j + 1] < pos(q) {
                j += 1;
            }
            let p = self.v[j];
            let d = pos(q) - pos(p);
            self.out[q] = d * d + f[p];
        }
        f.copy_from_slice(&self.out[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn brute(sites: &[bool], shape: [usize; 3], spacing: [f64; 3]) -> Vec<f64> {
        let [nz, ny, nx] = shape;
        let site_pos: Vec<[f64; 3]> = (0..sites.len())
            .filter(|&i| sites[i])
            .map(|i| {
                [
                    (i % nx) as f64 * spacing[0],
                    (i / nx % ny) as f64 * spacing[1],
                    (i / (nx * ny)) as f64 * spacing[2],
                ]
            })
            .collect();
        (0..nz * ny * nx)
            .map(|i| {
                let p = [
                    (i % nx) as f64 * spacing[0],
                    (i / nx % ny) as f64 * spacing[1],
                    (i / (nx * ny)) as f64 * spacing[2],
                ];
                site_pos
                    .iter()
                    .map(|s| (0..3).map(|k| (p[k] - s[k]).powi(2)).sum::<f64>())
                    .fold(f64::INFINITY, f64::min)
            })
            .collect()
    }

    proptest! {
        #[test]
        fn matches_brute_force(
            nz in 1usize..6, ny in 1usize..7, nx in 1usize..8,
            sx in 0.3f64..3.0, sy in 0.3f64..3.0, sz in 0.3f64..3.0,
            seed in any::<u64>(), density in 0.0f64..0.4,
        ) {
            let mut rng = crate::sampling::SplitMix64::new(seed);
            let sites: Vec<bool> = (0..nz * ny * nx).map(|_| rng.next_f64() < density).collect();
            let got = squared_edt(&sites, [nz, ny, nx], [sx, sy, sz]);
            let want = brute(&sites, [nz, ny, nx], [sx, sy, sz]);
            for (g, w) in got.iter().zip(&want) {
                prop_assert!((g == w) || (g - w).abs() <= 1e-9 * w.max(1.0), "{g} vs {w}");
            }
        }
    }
}
