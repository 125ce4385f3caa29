//! Hot-remove benchmark: `offline_and_remove_memory` of a 1 GiB DIMM (8 memory blocks) with
//! 10 % of it in movable allocations (orders 0-3), which offline_pages migrates to boot RAM.
//! Timed: the offline of every block (isolation, migration with the copies, taking the
//! pages out) and the removal (sections, memmap, unmap). Not timed: the hot-add, online and
//! allocations before, the frees after. One machine serves every iteration (each cycle
//! leaks the DIMM's 8 MiB memmap, as the fake platform's storage is `&'static`), so the
//! sample is kept small.

use std::hint::black_box;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use mm::Gfp;
use mm::migrate::MovableOps;
use mm::testing::pc_node;

const GIB: u64 = 1 << 30;

/// The owner: its blocks, followed on migration.
#[derive(Default)]
struct Owner(Mutex<Vec<(u64, u32)>>);

impl MovableOps for Owner {
    fn isolate_page(&self, _: u64, _: u32) -> bool {
        true
    }
    fn migrate_page(&self, src: u64, dst: u64, order: u32) {
        let mut v = self.0.lock().unwrap();
        if let Some(e) = v.iter_mut().find(|e| **e == (src, order)) {
            e.0 = dst;
        }
    }
}

fn offline_remove_1g(c: &mut Criterion) {
    let mut n = pc_node(512);
    let owner: &'static Owner = Box::leak(Box::default());
    let h = n.register_movable_ops(owner).unwrap();
    let mut g = c.benchmark_group("hotremove");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_secs(2));
    let mut total = Duration::ZERO;
    let mut runs = 0u32;
    g.bench_function("offline_and_remove_1GiB_10pct_movable", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                n.add_and_online_memory(0, 4 * GIB, GIB).unwrap();
                let mut pages = 0u64;
                let mut i = 0u32;
                while pages < (GIB >> 12) / 10 {
                    let order = i % 4;
                    let pfn = n.alloc_pages(Gfp::KERNEL, order).unwrap();
                    assert!(pfn >= (4 * GIB) >> 12, "inside the DIMM");
                    n.set_page_movable(pfn, h).unwrap();
                    owner.0.lock().unwrap().push((pfn, order));
                    pages += 1 << order;
                    i += 1;
                }
                let t = Instant::now();
                black_box(n.offline_and_remove_memory(4 * GIB, GIB).unwrap());
                let d = t.elapsed();
                spent += d;
                total += d;
                runs += 1;
                for (pfn, order) in owner.0.lock().unwrap().drain(..) {
                    n.free_pages(pfn, order).unwrap();
                }
            }
            spent
        })
    });
    g.finish();
    n.check().unwrap();
    eprintln!(
        "hotremove: offline + remove of 1 GiB with 10 % movable: mean {:.2} ms over {runs} runs",
        total.as_secs_f64() * 1e3 / f64::from(runs.max(1))
    );
}

criterion_group!(benches, offline_remove_1g);
criterion_main!(benches);
