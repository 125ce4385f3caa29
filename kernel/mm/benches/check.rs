//! Invariant checker benchmarks on a PC-like node with 1 GiB of RAM: the full `check()` (a walk
//! of all 262,144 struct pages plus the free lists) against `check_free_areas()` (the free
//! lists, page caches and counters only), once on a fresh node (few large free blocks) and
//! once fragmented (every other order-0 page allocated: 100,000+ free blocks). The figures say
//! what checking after every operation costs: the stress test and the fuzz target choose their
//! check frequency from them.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use mm::Gfp;
use mm::testing::pc_node;

fn check(c: &mut Criterion) {
    let mut g = c.benchmark_group("check_1GiB");
    let fresh = pc_node(1024);
    g.bench_function("full/fresh", |b| {
        b.iter(|| black_box(&fresh).check().unwrap())
    });
    g.bench_function("free_areas/fresh", |b| {
        b.iter(|| black_box(&fresh).check_free_areas().unwrap())
    });
    // Fragment: allocate every DMA32 and Normal page one by one, free every other one.
    let frag = pc_node(1024);
    let mut got = Vec::new();
    while let Some(p) = frag.alloc_pages(Gfp::KERNEL, 0) {
        got.push(p);
    }
    got.sort_unstable();
    for p in got.iter().step_by(2) {
        frag.free_pages(*p, 0).unwrap();
    }
    frag.drain_pages();
    frag.check().unwrap();
    g.bench_function("full/fragmented", |b| {
        b.iter(|| black_box(&frag).check().unwrap())
    });
    g.bench_function("free_areas/fragmented", |b| {
        b.iter(|| black_box(&frag).check_free_areas().unwrap())
    });
    g.finish();
}

criterion_group!(benches, check);
criterion_main!(benches);
