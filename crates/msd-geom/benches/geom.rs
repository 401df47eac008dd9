//! Throughput of the geometry kernels on skull-sized data.
//!
//! * `marching_cubes/label_512x512x250`: [`label_surface`] of a synthetic skull-like shell on a
//!   512 × 512 × 250 grid (voxels/s), and `scalar_512x512x250`: [`marching_cubes`] of the same
//!   volume as `f32` at 0.5 (the same input scikit-image gets).
//! * `mesh_files/*`: writing the big surface as binary STL, reading it back (welded), reading it as
//!   binary PLY, dropping its small components, dropping them and keeping the largest in one
//!   pass, and the topology check (triangles/s).
//! * `voxelize/1M_triangles`: [`voxelize`] of a 1 M-triangle mesh onto the 512 × 512 × 250 grid
//!   (triangles/s).
//! * `cleanup/smooth_taubin_10_iterations` and `cleanup/decimate_to_20_percent_*` (with a 0.1 mm
//!   measured deviation bound, and without) (triangles/s) on the 656 k-triangle surface of a
//!   256 × 256 × 125 shell.
//!
//! Set `MSD_GEOM_BENCH_DUMP=/path/shell.raw` to also write the 512 × 512 × 250 label (u8, z-y-x
//! order) for `benches/skimage_marching_cubes.py`, which times scikit-image on the same volume.
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use msd_geom::{
    DecimateOptions, SmoothOptions, decimate, label_surface, marching_cubes, smooth_taubin, voxelize,
};
use msd_io::{Geometry, LabelVolume};
use ndarray::Array3;

/// A closed, bumpy ellipsoidal shell about 3 % of the radius thick, like a skull vault.
fn shell(shape: [usize; 3]) -> LabelVolume {
    let [nz, ny, nx] = shape;
    let (cx, cy, cz) = ((nx as f64 - 1.0) / 2.0, (ny as f64 - 1.0) / 2.0, (nz as f64 - 1.0) / 2.0);
    let (rx, ry, rz) = (0.43 * nx as f64, 0.47 * ny as f64, 0.46 * nz as f64);
    let a = Array3::from_shape_fn(shape, |(z, y, x)| {
        let q = [(x as f64 - cx) / rx, (y as f64 - cy) / ry, (z as f64 - cz) / rz];
        let s = 512.0 / nx as f64;
        let bump =
            0.02 * (x as f64 * s / 9.0).sin() * (y as f64 * s / 11.0).sin() * (z as f64 * s / 7.0).sin();
        let r = (q[0] * q[0] + q[1] * q[1] + q[2] * q[2]).sqrt() + bump;
        (r > 0.965 && r <= 1.0) as u8
    });
    let g = Geometry::new([0.45, 0.45, 0.9], [-115.0, -115.0, -110.0], Geometry::IDENTITY).unwrap();
    LabelVolume::new(a, g).unwrap()
}

fn benches(c: &mut Criterion) {
    let big = shell([250, 512, 512]);
    if let Ok(path) = std::env::var("MSD_GEOM_BENCH_DUMP") {
        std::fs::write(path, big.data().as_slice().unwrap()).unwrap();
    }
    let voxels = big.len() as u64;
    let surface = label_surface(&big, 1).unwrap();
    eprintln!(
        "512x512x250 shell: {} label voxels, surface {} triangles, {} vertices",
        big.data().iter().filter(|&&v| v == 1).count(),
        surface.triangles().len(),
        surface.vertices().len()
    );
    let mut g = c.benchmark_group("marching_cubes");
    g.sample_size(10);
    g.throughput(Throughput::Elements(voxels));
    g.bench_function("label_512x512x250", |b| b.iter(|| label_surface(&big, 1).unwrap()));
    let scalar = big.map(|&v| v as f32);
    g.bench_function("scalar_512x512x250", |b| b.iter(|| marching_cubes(&scalar, 0.5).unwrap()));
    g.finish();
    drop(scalar);

    // Mesh files and component clean-up of the big surface: triangles per second.
    let dir = tempfile::tempdir().unwrap();
    let stl = dir.path().join("shell.stl");
    let mut g = c.benchmark_group("mesh_files");
    g.sample_size(10);
    g.throughput(Throughput::Elements(surface.triangles().len() as u64));
    g.bench_function("write_stl", |b| b.iter(|| msd_geom::write_stl(&stl, &surface).unwrap()));
    g.bench_function("read_stl_welded", |b| b.iter(|| msd_geom::read_stl(&stl).unwrap()));
    let ply = dir.path().join("shell.ply");
    msd_geom::write_mesh(&ply, &surface).unwrap();
    g.bench_function("read_ply_binary", |b| b.iter(|| msd_geom::read_mesh(&ply).unwrap()));
    g.bench_function("drop_small_components", |b| b.iter(|| surface.drop_small_components(50)));
    g.bench_function("select_components_50_keep_1", |b| b.iter(|| surface.select_components(50, 1)));
    g.bench_function("check", |b| b.iter(|| surface.check()));
    g.finish();

    // A 1 M-triangle mesh: the big shell's surface decimated (no bound) to 1 M triangles.
    let million =
        decimate(&surface, &DecimateOptions { target_triangles: 1_000_000, max_deviation_mm: f64::INFINITY })
            .unwrap()
            .mesh;
    drop(surface);
    eprintln!("voxelize input: {} triangles", million.triangles().len());
    let mut g = c.benchmark_group("voxelize");
    g.sample_size(10);
    g.throughput(Throughput::Elements(million.triangles().len() as u64));
    g.bench_function("1M_triangles_onto_512x512x250", |b| {
        b.iter(|| voxelize(&million, big.geometry(), big.shape()).unwrap())
    });
    g.finish();
    drop(million);

    let small = label_surface(&shell([125, 256, 256]), 1).unwrap();
    eprintln!("256x256x125 shell surface: {} triangles", small.triangles().len());
    let mut g = c.benchmark_group("cleanup");
    g.sample_size(10);
    g.throughput(Throughput::Elements(small.triangles().len() as u64));
    g.bench_function("smooth_taubin_10_iterations", |b| {
        b.iter(|| smooth_taubin(&small, &SmoothOptions::default()).unwrap())
    });
    let target = small.triangles().len() / 5;
    g.bench_function("decimate_to_20_percent_bounded_0.1mm", |b| {
        b.iter(|| {
            decimate(&small, &DecimateOptions { target_triangles: target, max_deviation_mm: 0.1 }).unwrap()
        })
    });
    g.bench_function("decimate_to_20_percent_unbounded", |b| {
        b.iter(|| {
            decimate(&small, &DecimateOptions { target_triangles: target, max_deviation_mm: f64::INFINITY })
                .unwrap()
        })
    });
    g.finish();
}

criterion_group!(geom, benches);
criterion_main!(geom);
