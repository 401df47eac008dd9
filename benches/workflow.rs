//! Benchmarks of the whole workflow.
use criterion::{Criterion, criterion_group, criterion_main};

fn geometry(c: &mut Criterion) {
    let g = msd::io::Geometry::default();
    c.bench_function("index_to_world", |b| {
        b.iter(|| g.index_to_world(std::hint::black_box([1.0, 2.0, 3.0])))
    });
}

criterion_group!(benches, geometry);
criterion_main!(benches);
