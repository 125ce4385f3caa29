//! memunmap_pages of 1 GiB of device memory (262,144 struct pages), with the memmap on the
//! device (altmap) and in RAM (8 MiB of buddy blocks freed), each on a fresh memremap_pages
//! that is not timed. The fake platform takes the storage back and hands it out again, so the
//! cycles do not leak.

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use mm::testing::pc_node;
use mm::{MemremapOptions, Memunmap};

const GIB: u64 = 1 << 30;

fn memunmap(c: &mut Criterion) {
    let mut g = c.benchmark_group("memunmap_1GiB");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    for (name, altmap) in [("altmap", true), ("memmap_in_ram", false)] {
        let mut m = pc_node(256);
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut t = Duration::ZERO;
                for _ in 0..iters {
                    let idx = m
                        .memremap_pages(8 * GIB, GIB, MemremapOptions::new(GIB).altmap(altmap))
                        .unwrap();
                    let start = Instant::now();
                    let done = m.memunmap_pages(idx).unwrap();
                    t += start.elapsed();
                    assert_eq!(done, Memunmap::Done);
                }
                t
            })
        });
        m.check().unwrap();
    }
    g.finish();
}

criterion_group!(benches, memunmap);
criterion_main!(benches);
