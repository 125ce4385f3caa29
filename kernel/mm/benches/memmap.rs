//! Memmap initialisation benchmarks: the struct pages of 1 GiB of RAM (as at boot) and of
//! 1 GiB of device memory (as memremap_pages does them), plus whole `Machine::init` and
//! `memremap_pages` calls timed a few times (their host allocations included). buddy_system_allocator
//! has no struct pages; its closest equivalent, `add_frame` of the same 1 GiB, is shown beside.

use std::hint::black_box;
use std::time::Instant;

use buddy_system_allocator::FrameAllocator;
use criterion::{Criterion, criterion_group, criterion_main};
use mm::memremap::memmap_init_device_pages;
use mm::mm_init::memmap_init_pages;
use mm::testing::{memblock, pc_node};
use mm::{MemremapOptions, Page};

const GIB: u64 = 1 << 30;
const PAGES_1G: usize = 262_144;

fn memmap_init(c: &mut Criterion) {
    let mut g = c.benchmark_group("memmap_init_1GiB");
    // 1 GiB of RAM at 4 GiB with a reservation, as Machine::init sees it.
    let mb = memblock(&[(4 * GIB, 5 * GIB)], &[(4 * GIB, 4 * GIB + (2 << 20))]);
    let mut pages = vec![Page::default(); PAGES_1G];
    g.bench_function("ram", |b| {
        b.iter(|| memmap_init_pages(black_box(&mb), &[], (4 * GIB) >> 12, &mut pages))
    });
    g.bench_function("device", |b| {
        b.iter(|| memmap_init_device_pages((8 * GIB) >> 12, &mut pages, 0, black_box(2048), 0))
    });
    g.bench_function("buddy_system_allocator_add_frame", |b| {
        b.iter(|| {
            let mut fa = FrameAllocator::<33>::new();
            fa.add_frame(black_box(1 << 20), (1 << 20) + PAGES_1G);
            fa
        })
    });
    g.finish();

    // Whole calls, a few times each (each leaks its 8 MiB memmap: the trait hands out
    // &'static mut storage).
    let runs = 5;
    let mut init = std::time::Duration::ZERO;
    for _ in 0..runs {
        let t = Instant::now();
        black_box(pc_node(1024));
        init += t.elapsed();
    }
    let mut remap = std::time::Duration::ZERO;
    for _ in 0..runs {
        let mut n = pc_node(64);
        let t = Instant::now();
        n.memremap_pages(8 * GIB, GIB, MemremapOptions::new(GIB).altmap(true))
            .unwrap();
        remap += t.elapsed();
    }
    println!(
        "Machine::init with 1 GiB RAM: {:?}; memremap_pages of 1 GiB (altmap): {:?} \
         (host allocation of the memmap included)",
        init / runs,
        remap / runs
    );
}

criterion_group!(benches, memmap_init);
criterion_main!(benches);
