//! Read throughput (MB/s of decoded int16 voxel data) for a 512×512×300 CT volume as `.nii.gz`,
//! gzip `.nrrd` and a 300-file DICOM series, all generated here, plus `.nii.gz` writing.
//!
//! `cargo bench -p msd-io --bench io -- --warm-up-time 1 --measurement-time 3`
//!
//! To compare with other readers on the same files, list them (a `.nii.gz`, a DICOM folder, ...) in
//! `MSD_IO_BENCH_FILES`, separated by `:`; each is read with [`msd_io::read_volume`] in the group
//! `read_external`, with throughput counted as 2 bytes per voxel (int16).
use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use msd_io::{Geometry, Volume};
use ndarray::Array3;

#[path = "../tests/common/synth.rs"]
mod synth;

const NX: usize = 512;
const NY: usize = 512;
const NZ: usize = 300;

/// A head-like phantom in stored units (HU + 1024): air, a soft-tissue ellipse with noise and a
/// bone shell, so compression ratios are like a real CT's.
fn phantom(z: usize, y: usize, x: usize) -> u16 {
    let (cx, cy) = (x as f64 - 256.0, y as f64 - 256.0);
    let r =
        ((cx / 200.0).powi(2) + (cy / 230.0).powi(2)).sqrt() * (1.0 + 0.2 * ((z as f64) / 300.0 - 0.5).abs());
    let mut h = (x as u32).wrapping_mul(73856093)
        ^ (y as u32).wrapping_mul(19349663)
        ^ (z as u32).wrapping_mul(83492791);
    h ^= h >> 13;
    h = h.wrapping_mul(0x5bd1e995);
    let noise = (h >> 24) as i32 % 24 - 12;
    let hu = if r > 1.0 {
        -1000 + noise / 4
    } else if r > 0.92 {
        1200 + 8 * noise
    } else {
        40 + noise
    };
    (hu + 1024).clamp(0, 4095) as u16
}

fn ct_volume() -> Volume<i16> {
    let data = Array3::from_shape_fn((NZ, NY, NX), |(z, y, x)| phantom(z, y, x) as i16 - 1024);
    Volume::new(data, Geometry::new([0.5, 0.5, 1.0], [-128.0, -128.0, -150.0], Geometry::IDENTITY).unwrap())
        .unwrap()
}

fn write_dicom_series(dir: &Path) {
    let s = synth::Series {
        pixel_spacing: [0.5, 0.5],
        ..synth::Series::axial(NY, NX, NZ, 1.0, [-128.0, -128.0, -150.0])
    };
    synth::write_slices(dir, &s, &phantom);
}

fn bench_io(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let volume = ct_volume();
    let nii = dir.path().join("ct.nii.gz");
    let nrrd = dir.path().join("ct.nrrd");
    msd_io::write_volume(&nii, &volume).unwrap();
    msd_io::write_volume(&nrrd, &volume).unwrap();
    let dcm = dir.path().join("dicom");
    write_dicom_series(&dcm);
    let bytes = (NX * NY * NZ * 2) as u64;

    let mut group = c.benchmark_group("read_512x512x300_int16");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(bytes));
    group.bench_function("nifti_gz", |b| b.iter(|| black_box(msd_io::read_volume(&nii).unwrap())));
    group.bench_function("nrrd_gzip", |b| b.iter(|| black_box(msd_io::read_volume(&nrrd).unwrap())));
    group.bench_function("dicom_300_files", |b| b.iter(|| black_box(msd_io::read_volume(&dcm).unwrap())));
    group.bench_function("nifti_gz_native_i16", |b| {
        b.iter(|| black_box(msd_io::read_volume_native(&nii).unwrap()))
    });
    group.finish();

    // A label volume of the same grid (0/1 bone mask), read straight to u8: voxels per second.
    let labels = volume.map(|&v| u8::from(v > 300));
    let lab = dir.path().join("labels.nii.gz");
    msd_io::write_volume(&lab, &labels).unwrap();
    let mut group = c.benchmark_group("read_labels_512x512x300_uint8");
    group.sample_size(10);
    group.throughput(Throughput::Elements(labels.len() as u64));
    group.bench_function("nifti_gz", |b| b.iter(|| black_box(msd_io::read_labels(&lab).unwrap())));
    group.finish();

    let mut group = c.benchmark_group("write_512x512x300_int16");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(bytes));
    let out = dir.path().join("out.nii.gz");
    group.bench_function("nifti_gz", |b| b.iter(|| msd_io::write_volume(&out, &volume).unwrap()));
    group.finish();
}

fn bench_external(c: &mut Criterion) {
    let Ok(list) = std::env::var("MSD_IO_BENCH_FILES") else { return };
    let mut group = c.benchmark_group("read_external");
    group.sample_size(10);
    for path in list.split(':').filter(|p| !p.is_empty()) {
        let voxels = msd_io::read_volume(path).unwrap().len() as u64;
        group.throughput(Throughput::Bytes(voxels * 2));
        group.bench_function(path, |b| b.iter(|| black_box(msd_io::read_volume(path).unwrap())));
    }
    group.finish();
}

criterion_group!(benches, bench_io, bench_external);
criterion_main!(benches);
