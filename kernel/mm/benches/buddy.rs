//! Page allocator benchmarks, each side by side with buddy_system_allocator's FrameAllocator
//! on the same frame counts and the same seeded operation sequence:
//!
//! * `order0_pair`: one order-0 allocation and its free;
//! * `fill_1g_random_free`: allocate all 262144 frames of 1 GiB, free them in a seeded random
//!   order;
//! * `mixed_orders`: a seeded random mix of allocations of orders 0-10 and frees.
//!
//! The mm node has the RAM at 4 GiB (one zone, Normal) plus a little extra for its own memmap,
//! and allocates with `Gfp::MEMALLOC` where it must take every frame. Ratios (FrameAllocator
//! time / mm time) are printed after each group.

use std::hint::black_box;
use std::time::{Duration, Instant};

use buddy_system_allocator::FrameAllocator;
use criterion::{Criterion, criterion_group, criterion_main};
use mm::testing::{FakePlatform, node};
use mm::{Gfp, Machine};

const GIB: u64 = 1 << 30;
const FRAMES_1G: usize = 262_144;
const BASE_PFN: u64 = (4 * GIB) >> 12;

/// splitmix64: a seeded generator without dependencies.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i + 1));
        }
    }
}

/// A node with 1 GiB of usable frames at 4 GiB (and 16 MiB more for its memmap).
fn mm_node() -> Machine<FakePlatform> {
    node(&[(4 * GIB, 5 * GIB + (16 << 20))], &[])
}

fn frame_allocator() -> FrameAllocator<33> {
    let mut fa = FrameAllocator::<33>::new();
    fa.add_frame(BASE_PFN as usize, BASE_PFN as usize + FRAMES_1G);
    fa
}

fn ratio(name: &str, mm: Duration, other: Duration) {
    println!(
        "{name}: mm {:?}, buddy_system_allocator {:?}, ratio {:.2}x",
        mm,
        other,
        other.as_secs_f64() / mm.as_secs_f64()
    );
}

/// Fastest run of `f` among runs filling at least half a second: the minimum is the figure
/// least disturbed by other load on a shared machine (for the printed ratios, outside
/// criterion's own statistics).
fn time(mut f: impl FnMut()) -> Duration {
    let t = Instant::now();
    let mut best = Duration::MAX;
    while best == Duration::MAX || t.elapsed() < Duration::from_millis(500) {
        let r = Instant::now();
        f();
        best = best.min(r.elapsed());
    }
    best
}

fn order0_pair(c: &mut Criterion) {
    let mut g = c.benchmark_group("order0_pair");
    let n = mm_node();
    g.bench_function("mm", |b| {
        b.iter(|| {
            let p = n.alloc_pages(black_box(Gfp::KERNEL), 0).unwrap();
            n.free_pages(black_box(p), 0).unwrap();
        })
    });
    let mut fa = frame_allocator();
    g.bench_function("buddy_system_allocator", |b| {
        b.iter(|| {
            let p = fa.alloc(black_box(1)).unwrap();
            fa.dealloc(black_box(p), 1);
        })
    });
    g.finish();
    let a = time(|| {
        for _ in 0..1_000_000 {
            let p = n.alloc_pages(black_box(Gfp::KERNEL), 0).unwrap();
            n.free_pages(black_box(p), 0).unwrap();
        }
    }) / 1_000_000;
    let b = time(|| {
        for _ in 0..1_000_000 {
            let p = fa.alloc(black_box(1)).unwrap();
            fa.dealloc(black_box(p), 1);
        }
    }) / 1_000_000;
    ratio("order0_pair (per pair)", a, b);
}

fn fill_1g_random_free(c: &mut Criterion) {
    let mut g = c.benchmark_group("fill_1g_random_free");
    g.sample_size(10);
    let mut order: Vec<usize> = (0..FRAMES_1G).collect();
    Rng(42).shuffle(&mut order);
    let mut n = mm_node();
    let mut frames = vec![0u64; FRAMES_1G];
    let mut run_mm = |n: &mut Machine<FakePlatform>| {
        for f in frames.iter_mut() {
            *f = n.alloc_pages(Gfp::MEMALLOC, 0).unwrap();
        }
        for &i in &order {
            n.free_pages(frames[i], 0).unwrap();
        }
    };
    g.bench_function("mm", |b| b.iter(|| run_mm(&mut n)));
    let mut fa = frame_allocator();
    let mut fframes = vec![0usize; FRAMES_1G];
    let mut run_fa = |fa: &mut FrameAllocator<33>| {
        for f in fframes.iter_mut() {
            *f = fa.alloc(1).unwrap();
        }
        assert!(fa.alloc(1).is_none(), "same frame count on both sides");
        for &i in &order {
            fa.dealloc(fframes[i], 1);
        }
    };
    g.bench_function("buddy_system_allocator", |b| b.iter(|| run_fa(&mut fa)));
    g.finish();
    let a = time(|| run_mm(&mut n));
    let b = time(|| run_fa(&mut fa));
    ratio("fill_1g_random_free (per 1 GiB)", a, b);
}

/// A seeded sequence of (alloc order) / (free index) operations.
fn mixed_ops(seed: u64, len: usize) -> Vec<(bool, u32, usize)> {
    let mut r = Rng(seed);
    (0..len)
        .map(|_| {
            // Orders skewed to small ones: order k with probability ~ 2^-(k+1).
            let order = (r.next() | (1 << 10)).trailing_zeros();
            (r.below(100) < 55, order, r.next() as usize)
        })
        .collect()
}

fn mixed_orders(c: &mut Criterion) {
    let mut g = c.benchmark_group("mixed_orders");
    g.sample_size(20);
    let ops = mixed_ops(7, 20_000);
    let mut n = mm_node();
    let run_mm = |n: &mut Machine<FakePlatform>| {
        let mut live: Vec<(u64, u32)> = Vec::with_capacity(ops.len());
        for &(alloc, order, idx) in &ops {
            if alloc || live.is_empty() {
                if let Some(p) = n.alloc_pages(Gfp::KERNEL | Gfp::NOWARN, order) {
                    live.push((p, order));
                }
            } else {
                let (p, o) = live.swap_remove(idx % live.len());
                n.free_pages(p, o).unwrap();
            }
        }
        for (p, o) in live {
            n.free_pages(p, o).unwrap();
        }
    };
    g.bench_function("mm", |b| b.iter(|| run_mm(&mut n)));
    let mut fa = frame_allocator();
    let run_fa = |fa: &mut FrameAllocator<33>| {
        let mut live: Vec<(usize, usize)> = Vec::with_capacity(ops.len());
        for &(alloc, order, idx) in &ops {
            if alloc || live.is_empty() {
                if let Some(p) = fa.alloc(1 << order) {
                    live.push((p, 1 << order));
                }
            } else {
                let (p, c) = live.swap_remove(idx % live.len());
                fa.dealloc(p, c);
            }
        }
        for (p, c) in live {
            fa.dealloc(p, c);
        }
    };
    g.bench_function("buddy_system_allocator", |b| b.iter(|| run_fa(&mut fa)));
    g.finish();
    let a = time(|| run_mm(&mut n));
    let b = time(|| run_fa(&mut fa));
    ratio("mixed_orders (20000 ops)", a, b);
    n.check().unwrap();
}

criterion_group!(benches, order0_pair, fill_1g_random_free, mixed_orders);
criterion_main!(benches);
