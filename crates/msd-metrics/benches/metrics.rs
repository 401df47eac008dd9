//! Benchmarks of msd-metrics: symmetric MAD between two ~1 M-triangle surfaces (points/s), raw
//! closest-point queries against a 1 M-triangle surface (points/s, the figure to compare with
//! trimesh's `closest_point`, see `trimesh_closest_point.py`), Dice and label-volume surface
//! distances on 512 × 512 × 300 label volumes (voxels/s).
use std::f32::consts::PI;
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use msd_geom::Mesh;
use msd_io::{Geometry, LabelVolume};
use msd_metrics::{SurfaceDistanceOptions, SurfaceIndex, label_surface_distances, overlap};
use ndarray::Array3;

/// A latitude-longitude sphere around the origin with `rings × segments × 2` triangles (minus the
/// pole fans' halves) and radius `radius(θ, φ)`; the same construction as the Python script.
pub fn uv_sphere(rings: usize, segments: usize, radius: impl Fn(f32, f32) -> f32) -> Mesh {
    let mut v = vec![[0.0, 0.0, radius(0.0, 0.0)]];
    for i in 1..rings {
        let theta = PI * i as f32 / rings as f32;
        for j in 0..segments {
            let phi = 2.0 * PI * j as f32 / segments as f32;
            let r = radius(theta, phi);
            v.push([r * theta.sin() * phi.cos(), r * theta.sin() * phi.sin(), r * theta.cos()]);
        }
    }
    v.push([0.0, 0.0, -radius(PI, 0.0)]);
    let south = (v.len() - 1) as u32;
    let at = |i: usize, j: usize| (1 + (i - 1) * segments + j % segments) as u32;
    let mut t = Vec::new();
    for j in 0..segments {
        t.push([0, at(1, j), at(1, j + 1)]);
        t.push([south, at(rings - 1, j + 1), at(rings - 1, j)]);
    }
    for i in 1..rings - 1 {
        for j in 0..segments {
            t.push([at(i, j), at(i + 1, j), at(i + 1, j + 1)]);
            t.push([at(i, j), at(i + 1, j + 1), at(i, j + 1)]);
        }
    }
    Mesh::new(v, t).expect("valid sphere")
}

fn surfaces() -> (Mesh, Mesh) {
    // 500 rings × 1000 segments: 998 000 triangles each.
    let a = uv_sphere(500, 1000, |_, _| 50.0);
    let b = uv_sphere(500, 1000, |t, p| 50.5 + 0.3 * (5.0 * t).sin() * (3.0 * p).cos());
    (a, b)
}

fn mad(c: &mut Criterion) {
    let (a, b) = surfaces();
    let mut group = c.benchmark_group("surface_distances");
    group.sample_size(10);
    // 8 samples per mm² on ~31 400 mm² each: about 250 000 points per surface, 507 000 queries.
    let opts = SurfaceDistanceOptions::new().samples_per_mm2(8.0);
    let probe = opts.compute(&a, &b).expect("distances");
    let points = (probe.pred_to_ref.points + probe.ref_to_pred.points) as u64;
    group.throughput(Throughput::Elements(points));
    group.bench_function("symmetric_mad_1M_triangles_each_incl_bvh_build", |bench| {
        bench.iter(|| black_box(opts.compute(&a, &b).expect("distances")))
    });
    let index = SurfaceIndex::new(&b).expect("index");
    let queries: Vec<[f32; 3]> = a.vertices().iter().step_by(2).copied().collect();
    group.throughput(Throughput::Elements(queries.len() as u64));
    group.bench_function("closest_point_queries_vs_1M_triangles", |bench| {
        bench.iter(|| black_box(index.distances(&queries)))
    });
    group.sample_size(10);
    group.throughput(Throughput::Elements(b.triangles().len() as u64));
    group.bench_function("bvh_build_1M_triangles", |bench| {
        bench.iter(|| black_box(SurfaceIndex::new(&b).expect("index")))
    });
    group.finish();
}

fn dice(c: &mut Criterion) {
    let g = Geometry::new([0.5, 0.5, 1.0], [0.0; 3], Geometry::IDENTITY).expect("geometry");
    let ball = |cx: f64, r: f64| {
        Array3::from_shape_fn((300, 512, 512), |(z, y, x)| {
            let d2 =
                (x as f64 - cx).powi(2) + (y as f64 - 256.0).powi(2) + ((z as f64 - 150.0) * 2.0).powi(2);
            u8::from(d2 < r * r)
        })
    };
    let a = LabelVolume::new(ball(256.0, 200.0), g).expect("volume");
    let b = LabelVolume::new(ball(262.0, 195.0), g).expect("volume");
    let mut group = c.benchmark_group("overlap");
    group.throughput(Throughput::Elements(a.len() as u64));
    group.bench_function("dice_512x512x300", |bench| {
        bench.iter(|| black_box(overlap(&a, &b).expect("overlap")))
    });
    group.finish();
    // Boundary extraction plus two exact distance transforms over the boundaries' bounding box.
    let mut group = c.benchmark_group("label_surface_distances");
    group.sample_size(10);
    group.throughput(Throughput::Elements(a.len() as u64));
    group.bench_function("balls_512x512x300", |bench| {
        bench.iter(|| black_box(label_surface_distances(&a, &b, None, 1.0, None).expect("distances")))
    });
    group.finish();
}

criterion_group!(benches, mad, dice);
criterion_main!(benches);
