//! Area-uniform, reproducible point samples on a triangle surface.
//!
//! Samples are placed by systematic sampling along the cumulative triangle area (one random offset,
//! then a fixed step), so every triangle gets the floor or the ceiling of its expected share: far
//! less variance than independent draws, and still unbiased. Inside a triangle the position is
//! uniform. Randomness comes from a SplitMix64 stream keyed by the seed and the triangle index, so
//! the samples are the same on every run, every thread count and every platform.
use msd_geom::Mesh;
use rayon::prelude::*;

/// Points sampled uniformly by area on a surface; each stands for `weight_mm2` of surface.
#[derive(Debug, Clone)]
pub(crate) struct SurfaceSamples {
    pub(crate) points: Vec<[f32; 3]>,
    pub(crate) weight_mm2: f64,
}

/// Triangle areas in mm², computed in f64.
pub(crate) fn triangle_areas(mesh: &Mesh) -> Vec<f64> {
    let v = mesh.vertices();
    mesh.triangles()
        .par_iter()
        .map(|t| {
            let [a, b, c] = t.map(|i| v[i as usize].map(f64::from));
            let e1 = [b[0] - a[0], b[1] - a[1], b[2] - a[2]];
            let e2 = [c[0] - a[0], c[1] - a[1], c[2] - a[2]];
            let n =
                [e1[1] * e2[2] - e1[2] * e2[1], e1[2] * e2[0] - e1[0] * e2[2], e1[0] * e2[1] - e1[1] * e2[0]];
            0.5 * (n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt()
        })
        .collect()
}

/// SplitMix64: a tiny, well-mixed generator whose output is fixed by its seed forever.
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub(crate) fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// About `area · density` samples (at least one, at most `max_samples`), area-uniform.
/// Returns `None` when the surface has no area.
pub(crate) fn sample_surface(
    mesh: &Mesh,
    density: f64,
    max_samples: usize,
    seed: u64,
) -> Option<SurfaceSamples> {
    let areas = triangle_areas(mesh);
    let area_mm2: f64 = areas.iter().sum();
    if !(area_mm2 > 0.0 && area_mm2.is_finite()) {
        return None;
    }
    let n = ((area_mm2 * density).ceil() as usize).clamp(1, max_samples.max(1));
    let step = area_mm2 / n as f64;
    let offset = SplitMix64::new(seed ^ 0xA076_1D64_78BD_642F).next_f64() * step;
    // Sample k sits at cumulative area offset + k·step; triangle t covers [start_t, start_t + a_t).
    let mut starts = Vec::with_capacity(areas.len());
    let mut cum = 0.0;
    for a in &areas {
        starts.push(cum);
        cum += a;
    }
    let first_at = |s: f64| (((s - offset) / step).ceil().max(0.0) as usize).min(n);
    let v = mesh.vertices();
    let points: Vec<[f32; 3]> = mesh
        .triangles()
        .par_iter()
        .enumerate()
        .flat_map_iter(|(t, tri)| {
            let (lo, hi) = (first_at(starts[t]), first_at(starts[t] + areas[t]));
            let count = if t + 1 == areas.len() { n - lo } else { hi.saturating_sub(lo) };
            let mut rng = SplitMix64::new(
                seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ (t as u64).wrapping_mul(0x9E37_79B9),
            );
            let [a, b, c] = tri.map(|i| v[i as usize].map(f64::from));
            (0..count).map(move |_| {
                let r1 = rng.next_f64().sqrt();
                let r2 = rng.next_f64();
                let (wa, wb, wc) = (1.0 - r1, r1 * (1.0 - r2), r1 * r2);
                [0, 1, 2].map(|k| (wa * a[k] + wb * b[k] + wc * c[k]) as f32)
            })
        })
        .collect();
    Some(SurfaceSamples { weight_mm2: area_mm2 / points.len() as f64, points })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit_square_split_unevenly() -> Mesh {
        // Two triangles of areas 0.5 and 1.5 in the z = 0 plane.
        Mesh::new(
            vec![[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [4.0, 1.0, 0.0], [1.0, 1.0, 0.0]],
            vec![[0, 1, 2], [1, 3, 4]],
        )
        .unwrap()
    }

    #[test]
    fn counts_follow_area_and_are_reproducible() {
        let mesh = unit_square_split_unevenly();
        let s = sample_surface(&mesh, 1000.0, usize::MAX, 7).unwrap();
        assert_eq!(s.points.len(), 2000);
        assert!((s.weight_mm2 * s.points.len() as f64 - 2.0).abs() < 1e-12);
        let first = s.points.iter().filter(|p| p[0] + p[1] <= 1.0 + 1e-6 && p[1] <= 1.0).count();
        assert!((first as i64 - 500).abs() <= 1, "{first}");
        let again = sample_surface(&mesh, 1000.0, usize::MAX, 7).unwrap();
        assert_eq!(s.points, again.points);
        let other = sample_surface(&mesh, 1000.0, usize::MAX, 8).unwrap();
        assert_ne!(s.points, other.points);
    }

    #[test]
    fn samples_lie_on_their_triangle_uniformly() {
        let mesh =
            Mesh::new(vec![[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], vec![[0, 1, 2]]).unwrap();
        let s = sample_surface(&mesh, 20000.0, usize::MAX, 1).unwrap();
        let mean = s.points.iter().fold([0.0f64; 2], |m, p| [m[0] + p[0] as f64, m[1] + p[1] as f64]);
        let n = s.points.len() as f64;
        // The centroid of a uniform distribution on the triangle is (1/3, 1/3).
        assert!((mean[0] / n - 1.0 / 3.0).abs() < 0.01 && (mean[1] / n - 1.0 / 3.0).abs() < 0.01);
        assert!(s.points.iter().all(|p| p[0] >= 0.0 && p[1] >= 0.0 && p[0] + p[1] <= 1.0 + 1e-6));
    }

    #[test]
    fn zero_area_surface_has_no_samples() {
        let flat = Mesh::new(vec![[0.0; 3], [1.0, 0.0, 0.0], [2.0, 0.0, 0.0]], vec![[0, 1, 2]]).unwrap();
        assert!(sample_surface(&flat, 1.0, 10, 0).is_none());
    }
}
