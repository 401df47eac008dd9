//! Marching cubes against analytic shapes, and invariants over random blobs and grids.
#![allow(clippy::needless_range_loop)]
use msd_geom::{label_surface, marching_cubes, voxelize};
use msd_io::{Geometry, LabelVolume, Volume};
use ndarray::Array3;
use proptest::prelude::*;

/// A scalar volume sampling `f(world point)` on the grid.
fn sample(shape: [usize; 3], g: &Geometry, f: impl Fn([f64; 3]) -> f64) -> Volume<f32> {
    let a = Array3::from_shape_fn((shape[0], shape[1], shape[2]), |(z, y, x)| {
        f(g.index_to_world([x as f64, y as f64, z as f64])) as f32
    });
    Volume::new(a, *g).unwrap()
}

/// Surface area of the ellipsoid with semi-axes a, b, c by midpoint quadrature over (θ, φ).
fn ellipsoid_area(a: f64, b: f64, c: f64) -> f64 {
    let (nt, np) = (800, 1600);
    let (dt, dp) = (std::f64::consts::PI / nt as f64, 2.0 * std::f64::consts::PI / np as f64);
    let mut sum = 0.0;
    for i in 0..nt {
        let t = (i as f64 + 0.5) * dt;
        for j in 0..np {
            let p = (j as f64 + 0.5) * dp;
            // |∂r/∂θ × ∂r/∂φ| for r = (a sinθ cosφ, b sinθ sinφ, c cosθ).
            let (st, ct, sp, cp) = (t.sin(), t.cos(), p.sin(), p.cos());
            let n = [b * c * st * st * cp, a * c * st * st * sp, a * b * st * ct];
            sum += (n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt();
        }
    }
    sum * dt * dp
}

#[test]
fn spheres_and_ellipsoids_match_analytic_area_and_volume() {
    let cases: [([f64; 3], [f64; 3]); 4] = [
        ([20.0, 20.0, 20.0], [1.0, 1.0, 1.0]),
        ([12.0, 12.0, 12.0], [0.6, 0.8, 1.5]),
        ([25.0, 15.0, 10.0], [1.0, 0.7, 2.0]),
        ([18.0, 30.0, 14.0], [0.9, 1.2, 0.5]),
    ];
    let (s, c) = (0.4f64.sin(), 0.4f64.cos());
    let directions = [Geometry::IDENTITY, [[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]];
    for (r, spacing) in cases {
        for dir in directions {
            let centre = [3.0, -7.0, 11.0];
            let shape =
                [0, 1, 2].map(|k| (2.0 * r.iter().cloned().fold(0.0, f64::max) / spacing[k]) as usize + 6);
            let extent = [0, 1, 2].map(|k| (shape[k] - 1) as f64 * spacing[k] / 2.0);
            // Place the grid so its centre is near the ellipsoid's centre (direction-aware).
            let mut origin = centre;
            for row in 0..3 {
                for col in 0..3 {
                    origin[row] -= dir[row][col] * extent[col] + 0.13 * dir[row][col];
                }
            }
            let g = Geometry::new(spacing, origin, dir).unwrap();
            // Inside when ≥ 0; a distance-like field (scaled radius) keeps interpolation accurate.
            let v = sample([shape[2], shape[1], shape[0]], &g, |p| {
                let q = [(p[0] - centre[0]) / r[0], (p[1] - centre[1]) / r[1], (p[2] - centre[2]) / r[2]];
                1.0 - (q[0] * q[0] + q[1] * q[1] + q[2] * q[2]).sqrt()
            });
            let m = marching_cubes(&v, 0.0).unwrap();
            let check = m.check();
            assert!(check.is_watertight() && check.is_edge_manifold(), "{check:?}");
            assert_eq!(check.euler_characteristic, 2, "{check:?}");
            let volume = 4.0 / 3.0 * std::f64::consts::PI * r[0] * r[1] * r[2];
            let area = ellipsoid_area(r[0], r[1], r[2]);
            let (ev, ea) = (m.enclosed_volume() / volume - 1.0, m.area() / area - 1.0);
            assert!(ev.abs() < 0.01, "radii {r:?} spacing {spacing:?}: volume error {ev}");
            assert!(ea.abs() < 0.01, "radii {r:?} spacing {spacing:?}: area error {ea}");
            let b = m.bounds().unwrap();
            for k in 0..3 {
                let mid = 0.5 * (b.min[k] + b.max[k]) as f64;
                assert!((mid - centre[k]).abs() < 0.5, "centre {mid} vs {}", centre[k]);
            }
        }
    }
}

#[test]
fn many_slabs_give_one_surface_without_duplicate_vertices() {
    let g = Geometry::new([1.0, 1.0, 0.5], [0.0; 3], Geometry::IDENTITY).unwrap();
    // A tall cylinder crossing every slab boundary.
    let a = Array3::from_shape_fn((300, 12, 12), |(_, y, x)| {
        let (dx, dy) = (x as f64 - 5.5, y as f64 - 5.5);
        (dx * dx + dy * dy < 16.0) as u8
    });
    let m = label_surface(&LabelVolume::new(a, g).unwrap(), 1).unwrap();
    let c = m.check();
    assert!(c.is_watertight() && c.components == 1 && c.euler_characteristic == 2, "{c:?}");
    let mut keys: Vec<[u32; 3]> = m.vertices().iter().map(|p| p.map(f32::to_bits)).collect();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), m.vertices().len());
}

fn blob_strategy() -> impl Strategy<Value = (Array3<u8>, [f64; 3])> {
    (2usize..9, 2usize..9, 2usize..9, any::<u64>(), 0.3f64..3.0, 0.3f64..3.0, 0.3f64..3.0).prop_map(
        |(nz, ny, nx, seed, sx, sy, sz)| {
            let mut state = seed | 1;
            let a = Array3::from_shape_fn((nz, ny, nx), |_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state % 5 < 2) as u8
            });
            (a, [sx, sy, sz])
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any label pattern on any grid gives a watertight, edge-manifold, outward surface whose voxel
    /// centres come back exactly.
    #[test]
    fn random_blobs_are_watertight_oriented_and_round_trip((a, spacing) in blob_strategy()) {
        let g = Geometry::new(spacing, [1.0, -2.0, 3.0], Geometry::IDENTITY).unwrap();
        let vol = LabelVolume::new(a.clone(), g).unwrap();
        let m = label_surface(&vol, 1).unwrap();
        let c = m.check();
        prop_assert!(c.is_watertight() && c.is_edge_manifold(), "{:?}", c);
        prop_assert_eq!(c.degenerate_triangles, 0);
        let n = a.iter().filter(|&&v| v == 1).count();
        prop_assert!(n == 0 || m.enclosed_volume() > 0.0);
        let back = voxelize(&m, &g, vol.shape()).unwrap();
        prop_assert_eq!(back.data(), &a);
    }

    /// Smooth random fields at random levels: watertight and edge-manifold whatever the ambiguities.
    #[test]
    fn random_scalar_fields_are_watertight(seed in any::<u64>(), level in -0.5f32..0.5, s in 0.3f64..2.0) {
        let mut state = seed | 1;
        let a = Array3::from_shape_fn((7, 8, 9), |_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % 1000) as f32 / 1000.0 - 0.5
        });
        let g = Geometry::new([s, 1.0, 0.7], [0.0; 3], Geometry::IDENTITY).unwrap();
        let m = marching_cubes(&Volume::new(a, g).unwrap(), level).unwrap();
        let c = m.check();
        prop_assert!(c.is_watertight() && c.is_edge_manifold(), "{:?}", c);
        prop_assert!(m.is_empty() || m.enclosed_volume() > 0.0);
    }
}
