//! Benchmarks of the workflow's own steps: phantom generation, the threshold baseline, component
//! clean-up, surface extraction, evaluation and preview rendering, in voxels per second.
//!
//! `cargo bench -p msd --bench workflow -- --warm-up-time 1 --measurement-time 3`
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use msd::baseline::{keep_largest_component, threshold};
use msd::evaluation::{EvaluationOptions, Shape};
use msd::phantom::{PhantomConfig, generate};
use msd::preview::{Overlay, Plane, PreviewOptions, render_slice};

fn voxels(c: &PhantomConfig) -> u64 {
    c.shape.iter().product::<usize>() as u64
}

fn phantoms(c: &mut Criterion) {
    let mut group = c.benchmark_group("phantom");
    for (name, config) in [("quick", PhantomConfig::quick()), ("standard", PhantomConfig::standard())] {
        group.throughput(Throughput::Elements(voxels(&config)));
        group.sample_size(10);
        group.bench_function(name, |b| b.iter(|| generate(black_box(&config), 7).unwrap()));
    }
    group.finish();
}

fn baseline_and_surface(c: &mut Criterion) {
    let config = PhantomConfig::standard().with_craniectomy_probability(1.0);
    let head = generate(&config, 3).unwrap();
    let n = voxels(&config);
    let mut group = c.benchmark_group("standard_phantom");
    group.throughput(Throughput::Elements(n));
    group.sample_size(10);
    group.bench_function("threshold", |b| b.iter(|| threshold(black_box(&head.ct), 300.0)));
    let bone = threshold(&head.ct, 300.0);
    group.bench_function("keep_largest_component", |b| b.iter(|| keep_largest_component(black_box(&bone))));
    group.bench_function("surface", |b| b.iter(|| msd::surface(black_box(&head.skull)).unwrap()));
    group.bench_function("evaluate_dice_only", |b| {
        let options = EvaluationOptions::default().surface_metrics(false);
        let (p, r) = (Shape::Labels(bone.clone()), Shape::Labels(head.skull.clone()));
        b.iter(|| options.evaluate("b", black_box(&p), black_box(&r)).unwrap())
    });
    let [_, ny, nx] = head.ct.shape();
    group.throughput(Throughput::Elements((ny * nx) as u64));
    group.bench_function("render_axial_preview", |b| {
        let overlays = [Overlay::new(&head.skull, [0, 255, 0])];
        b.iter(|| {
            render_slice(&head.ct, Plane::Axial, None, black_box(&overlays), &PreviewOptions::default())
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, phantoms, baseline_and_surface);
criterion_main!(benches);
