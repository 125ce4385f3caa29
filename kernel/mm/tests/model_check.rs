//! Model checking of the per-CPU pageset / zone-lock protocol with shuttle (issue 13).
//!
//! Built only with `--features shuttle`: the crate's one lock type (src/sync.rs) is then
//! shuttle's mutex, so every pageset-lock and zone-lock acquisition of the real allocator code
//! (`alloc_pages`, `free_pages`, `rmqueue_pcplist`'s refill, `free_pcppages_bulk`'s drain,
//! `drain_all_pages`, `put_page`) is a point where shuttle's scheduler may switch threads.
//! Shuttle's PCT scheduler (depth 3) and its random scheduler each run every scenario for a
//! few hundred schedules, each on a freshly built machine.
//!
//! The atomics stay core's: shuttle does not switch threads at them. The protocol's shared
//! mutations are all under the locks (a page's list links, flags and order change only with
//! its owner's lock held, `NR_FREE_PAGES` only under the zone lock); what happens outside a
//! lock is a relaxed read of `NR_FREE_PAGES` for the watermark check, a CPU's own NUMA
//! counters, and the reference count's atomic read-modify-write. Those are explored only in
//! the orders the lock interleavings produce, not at instruction granularity.
//!
//! Scenarios, on a small one-node machine with two or three CPUs (1-4 MiB, DMA zone only, so
//! every list has a `batch` of one page); lists are filled before the threads start so that a
//! handful of operations reaches both ends:
//! * `pairs_and_cross_frees`: CPU 0 starts with an empty list and refills it from the zone
//!   (a pair, then two pages handed to CPU 1); CPU 1 starts one page short of `high`, so its
//!   frees (its own page, CPU 0's handed-over pages) drain its list to the zone, while it
//!   also allocates an order-1 block that CPU 0 frees: zone-lock traffic from both sides;
//! * `remote_drain_races_allocation`: CPUs 0 and 1 start with two pages each and allocate and
//!   free while CPU 2 runs `drain_all_pages` twice, so a remote drain takes a list's lock
//!   between its owner's operations and the owner refills after it;
//! * `exhaustion_drains_and_retries`: all memory allocated but three pages on CPU 0's list;
//!   CPU 1's allocation finds its list and the zone empty, drains every list and retries, and
//!   must succeed whatever CPU 0 does meanwhile (a free page on a remote list is always
//!   reachable). Seen to fail with a drain that takes pages off a list before it takes the
//!   zone lock (pages briefly neither listed nor in the zone);
//! * `exhaustion_on_two_cpus_at_once`: the same with CPUs 1 and 2 both allocating. One
//!   CPU's drain may empty CPU 0's list first and the other's then moves nothing: found a
//!   spurious failure when `alloc_pages_node` retried only after a drain that moved pages
//!   (fixed: it retries after every drain, as Linux);
//! * `last_put_frees_once`: three CPUs drop their references to one shared block (and one of
//!   them works its own list meanwhile); exactly one `put_page` returns 0 and frees it.
//!
//! Invariants asserted, in every schedule:
//! * no two live blocks overlap (a shared set of live blocks, checked at every allocation):
//!   a page is never handed out twice, by a refill, a drain or a race between them;
//! * every new block is an allocated head of its order with reference count 1;
//! * after the join: `check()` passes (every page in exactly one state, free lists and CPU
//!   lists well linked, their counts and `NR_FREE_PAGES` match the memmap), and after a final
//!   `drain_all_pages` every CPU's list is empty and the free page count is what it was
//!   before the threads started: no page lost or duplicated;
//! * the zone's NUMA counters count each successful allocation exactly once (`numa_hit`,
//!   `local_node`).

#![cfg(feature = "shuttle")]

use std::cell::Cell;
use std::collections::BTreeMap;
use std::mem::MaybeUninit;
use std::sync::Arc;

use mm::testing::{FakePlatform, memblock};
use mm::{Gfp, Machine, MapError, Page, PageFlags, PgData, Platform, Topology, ZoneId};
use shuttle::sync::Mutex;
use shuttle::thread;

const MIB: u64 = 1 << 20;
const PCT_ITERATIONS: usize = 300;
const RANDOM_ITERATIONS: usize = 300;

type M = Machine<ModelPlatform>;

shuttle::thread_local! {
    /// The CPU a shuttle thread plays. Shuttle runs all its threads on one OS thread, so the
    /// fake platform's std thread-local (`mm::testing::set_this_cpu`) would be shared by all.
    static CPU: Cell<usize> = Cell::new(0);
}

fn set_this_cpu(cpu: usize) {
    CPU.with(|c| c.set(cpu));
}

/// The host fake platform with the running CPU taken from a shuttle thread-local.
struct ModelPlatform(FakePlatform);

impl Platform for ModelPlatform {
    fn memmap_storage(&mut self, pa: u64, count: usize) -> Result<&'static mut [Page], MapError> {
        self.0.memmap_storage(pa, count)
    }
    fn node_data_storage(&mut self, pa: u64) -> Result<&'static mut MaybeUninit<PgData>, MapError> {
        self.0.node_data_storage(pa)
    }
    fn map_device(&mut self, start: u64, len: u64) -> Result<(), MapError> {
        self.0.map_device(start, len)
    }
    fn map_ram(&mut self, start: u64, len: u64) -> Result<(), MapError> {
        self.0.map_ram(start, len)
    }
    fn unmap_range(&mut self, start: u64, len: u64) -> Result<(), MapError> {
        self.0.unmap_range(start, len)
    }
    fn release_memmap_storage(&mut self, pa: u64, pages: &'static mut [Page]) {
        self.0.release_memmap_storage(pa, pages)
    }
    fn zero_pages(&self, pfn: u64, count: u64) {
        self.0.zero_pages(pfn, count)
    }
    fn copy_pages(&self, src_pfn: u64, dst_pfn: u64, count: u64) {
        self.0.copy_pages(src_pfn, dst_pfn, count)
    }
    fn this_cpu(&self) -> usize {
        CPU.with(|c| c.get())
    }
}

/// RAM 1-4 MiB (all DMA: one zone, lists of `batch` 1), `cpus` CPUs on the one node.
fn machine(cpus: u32) -> M {
    let mb = memblock(&[(MIB, 4 * MIB)], &[]);
    let topo = Topology::new(1, vec![], vec![(0..cpus).collect()]).unwrap();
    let m = Machine::init_numa(ModelPlatform(FakePlatform::new()), mb, topo).unwrap();
    let (count, high, batch) = m.nodes()[0].zone(ZoneId::Dma).pageset_info(0).unwrap();
    assert!(
        count == 0 && batch == 1 && high > 4,
        "{count} {high} {batch}"
    );
    m
}

/// `high` of the lists.
fn high(m: &M) -> u32 {
    m.nodes()[0].zone(ZoneId::Dma).pageset_info(0).unwrap().1
}

/// Before the threads start: put `k` pages on `cpu`'s list (allocated and freed there; each
/// allocation refills the empty list with one page and takes it).
fn fill_list(m: &M, cpu: usize, k: u32) {
    set_this_cpu(cpu);
    let pages: Vec<u64> = (0..k)
        .map(|_| m.alloc_pages(Gfp::KERNEL, 0).unwrap())
        .collect();
    for p in pages {
        m.free_pages(p, 0).unwrap();
    }
    let z = m.nodes()[0].zone(ZoneId::Dma);
    assert_eq!(z.pageset_info(cpu).unwrap().0, k);
    set_this_cpu(0);
}

/// Live blocks, `head -> order`, shared by the threads of one schedule.
type Live = Mutex<BTreeMap<u64, u32>>;

/// Allocate through the real code and record the block; panics if it overlaps a live one.
fn alloc(m: &M, live: &Live, gfp: Gfp, order: u32) -> Option<u64> {
    let pfn = m.alloc_pages(gfp | Gfp::NOWARN, order)?;
    let page = m.page(pfn).unwrap();
    assert!(
        page.flags().contains(PageFlags::HEAD),
        "{pfn:#x}: {}",
        page.flags()
    );
    assert_eq!((page.order(), page.refcount()), (order, 1), "{pfn:#x}");
    let mut l = live.lock().unwrap();
    let end = pfn + (1 << order);
    if let Some((&h, &o)) = l.range(..end).next_back() {
        assert!(
            h + (1 << o) <= pfn,
            "block {pfn:#x}/{order} overlaps live {h:#x}/{o}"
        );
    }
    l.insert(pfn, order);
    Some(pfn)
}

/// Forget the block, then free it through the real code.
fn free(m: &M, live: &Live, pfn: u64) {
    let order = live.lock().unwrap().remove(&pfn).expect("a live block");
    m.free_pages(pfn, order).unwrap();
}

/// What every schedule ends with: consistent, every list drained, every page back, one
/// NUMA event per allocation.
fn settle(m: &M, free0: u64, allocs: u64, cpus: usize) {
    m.check().unwrap();
    m.drain_all_pages();
    m.check().unwrap();
    let z = m.nodes()[0].zone(ZoneId::Dma);
    for cpu in 0..cpus {
        assert_eq!(
            z.pageset_info(cpu).unwrap().0,
            0,
            "cpu {cpu}'s list after the drain"
        );
    }
    assert_eq!(m.nr_free_pages(), free0, "every page came back");
    let s = z.numa_stat();
    assert_eq!((s.hit, s.miss, s.local, s.other), (allocs, 0, allocs, 0));
}

/// Run `f` on `cpus` shuttle threads playing CPUs 0.. over one machine and one live set;
/// each returns its successful allocations. Blocks still live after the join (handed over
/// and not taken) are freed by the main thread as CPU 0.
fn run(
    m: Arc<M>,
    live: Arc<Live>,
    cpus: usize,
    f: impl Fn(&M, &Live, usize) -> u64 + Send + Sync + 'static,
) {
    // The free pages once every block of the live set is back.
    let held: u64 = live.lock().unwrap().values().map(|&o| 1u64 << o).sum();
    let free0 = m.nr_free_pages() + held;
    let allocs0 = m.nodes()[0].zone(ZoneId::Dma).numa_stat().hit;
    let f = Arc::new(f);
    let hs: Vec<_> = (0..cpus)
        .map(|cpu| {
            let (m, live, f) = (m.clone(), live.clone(), f.clone());
            thread::spawn(move || {
                set_this_cpu(cpu);
                f(&m, &live, cpu)
            })
        })
        .collect();
    let allocs: u64 = hs.into_iter().map(|h| h.join().unwrap()).sum();
    set_this_cpu(0);
    let left: Vec<u64> = live.lock().unwrap().keys().copied().collect();
    for p in left {
        free(&m, &live, p);
    }
    settle(&m, free0, allocs0 + allocs, cpus);
}

/// Run a scenario under PCT (depth 3) and under the random scheduler, both seeded (a failure
/// replays the same way), with stacks big enough for building a machine in a debug build.
fn both(name: &str, f: fn()) {
    let t = std::time::Instant::now();
    let mut config = shuttle::Config::new();
    config.stack_size = 4 << 20;
    let pct = shuttle::scheduler::PctScheduler::new_from_seed(0x5eed, 3, PCT_ITERATIONS);
    shuttle::Runner::new(pct, config.clone()).run(f);
    let random = shuttle::scheduler::RandomScheduler::new_from_seed(0x5eed, RANDOM_ITERATIONS);
    shuttle::Runner::new(random, config).run(f);
    eprintln!(
        "{name}: {} schedules in {:.1} s",
        PCT_ITERATIONS + RANDOM_ITERATIONS,
        t.elapsed().as_secs_f64()
    );
}

#[test]
fn pairs_and_cross_frees() {
    both("pairs_and_cross_frees", || {
        // CPU 0's list is empty (its allocations refill it from the zone); CPU 1's is one
        // page short of high (its frees drain it to the zone), and CPU 1 has a page to free.
        let m = machine(2);
        let h = high(&m);
        set_this_cpu(1);
        let extra = m.alloc_pages(Gfp::KERNEL, 0).unwrap();
        fill_list(&m, 1, h - 1);
        let handed: Arc<Mutex<Vec<(u64, usize)>>> = Arc::new(Mutex::new(Vec::new()));
        let live: Arc<Live> = Arc::new(Mutex::new(BTreeMap::new()));
        live.lock().unwrap().insert(extra, 0);
        let take = |handed: &Mutex<Vec<(u64, usize)>>, cpu: usize| -> Vec<u64> {
            let mut h = handed.lock().unwrap();
            let (theirs, keep): (Vec<_>, Vec<_>) = h.drain(..).partition(|&(_, c)| c != cpu);
            *h = keep;
            theirs.into_iter().map(|(p, _)| p).collect()
        };
        run(Arc::new(m), live, 2, move |m, live, cpu| {
            if cpu == 0 {
                // A pair: a refill, the page back on the list. Then two pages (one from the
                // list, one refilled) handed to CPU 1.
                let a = alloc(m, live, Gfp::KERNEL, 0).unwrap();
                free(m, live, a);
                let b = alloc(m, live, Gfp::KERNEL, 0).unwrap();
                let c = alloc(m, live, Gfp::KERNEL, 0).unwrap();
                handed.lock().unwrap().extend([(b, 0), (c, 0)]);
                // CPU 1's order-1 block, if it is there yet: a free under the zone lock.
                for p in take(&handed, 0) {
                    free(m, live, p);
                }
                3
            } else {
                // The extra page brings the list to high: a bulk drain to the zone.
                free(m, live, extra);
                let q = alloc(m, live, Gfp::KERNEL, 1).unwrap();
                handed.lock().unwrap().push((q, 1));
                let d = alloc(m, live, Gfp::KERNEL, 0).unwrap();
                free(m, live, d);
                // CPU 0's pages, if there yet: frees at high, drains.
                for p in take(&handed, 1) {
                    free(m, live, p);
                }
                2
            }
        });
    });
}

#[test]
fn remote_drain_races_allocation() {
    both("remote_drain_races_allocation", || {
        // CPUs 0 and 1 start with two pages on their lists; CPU 2 drains every list twice
        // while they allocate and free: an allocation after a drain refills from the zone.
        let m = machine(3);
        fill_list(&m, 0, 2);
        fill_list(&m, 1, 2);
        let live: Arc<Live> = Arc::new(Mutex::new(BTreeMap::new()));
        run(Arc::new(m), live, 3, |m, live, cpu| {
            if cpu == 2 {
                m.drain_all_pages();
                m.drain_all_pages();
                return 0;
            }
            let a = alloc(m, live, Gfp::KERNEL, 0).unwrap();
            let b = alloc(m, live, Gfp::KERNEL, 0).unwrap();
            free(m, live, a);
            let c = alloc(m, live, Gfp::KERNEL, 0).unwrap();
            let d = alloc(m, live, Gfp::KERNEL, 0).unwrap();
            free(m, live, b);
            free(m, live, c);
            free(m, live, d);
            4
        });
    });
}

/// Take every page of `m` (MEMALLOC ignores the watermarks; big blocks first, few calls),
/// then give three back to CPU 0's list: the zone's free lists are empty, only that list
/// holds free pages. Returns the blocks taken.
fn exhaust_but_three(m: &M) -> Vec<(u64, u32)> {
    set_this_cpu(0);
    let mut all = Vec::new();
    for order in (0..=mm::MAX_ORDER).rev() {
        while let Some(p) = m.alloc_pages(Gfp::MEMALLOC | Gfp::NOWARN, order) {
            all.push((p, order));
        }
    }
    let z = m.nodes()[0].zone(ZoneId::Dma);
    assert_eq!(z.free_pages(), 0);
    let i = all
        .iter()
        .position(|&(_, o)| o == 2)
        .expect("an order-2 block");
    let (four, _) = all.swap_remove(i);
    m.free_pages(four, 2).unwrap();
    let pages: Vec<u64> = (0..4)
        .map(|_| m.alloc_pages(Gfp::MEMALLOC, 0).unwrap())
        .collect();
    all.push((pages[3], 0));
    for &p in &pages[..3] {
        m.free_pages(p, 0).unwrap();
    }
    assert_eq!((z.nr_free_pages(), z.pageset_info(0).unwrap().0), (0, 3));
    all
}

/// CPUs `cpus` each allocate one page (MEMALLOC) and free it, on a machine whose only free
/// pages are three on CPU 0's list; every allocation must succeed (there are enough free
/// pages whatever the order), then everything is given back.
fn exhausted_allocations(nr_cpus: u32, cpus: &'static [usize]) {
    let m = machine(nr_cpus);
    let all = exhaust_but_three(&m);
    let allocs0 = m.nodes()[0].zone(ZoneId::Dma).numa_stat().hit;
    let free0 = m.nr_free_pages();
    let m = Arc::new(m);
    let live: Arc<Live> = Arc::new(Mutex::new(BTreeMap::new()));
    let hs: Vec<_> = cpus
        .iter()
        .map(|&cpu| {
            let (m, live) = (m.clone(), live.clone());
            thread::spawn(move || {
                set_this_cpu(cpu);
                let p = alloc(&m, &live, Gfp::MEMALLOC, 0).unwrap_or_else(|| {
                    panic!("cpu {cpu}: no page, though free pages are on lists or in the zone")
                });
                free(&m, &live, p);
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    set_this_cpu(0);
    m.check().unwrap();
    m.drain_all_pages();
    m.check().unwrap();
    assert_eq!(m.nr_free_pages(), free0);
    let z = m.nodes()[0].zone(ZoneId::Dma);
    for cpu in 0..nr_cpus as usize {
        assert_eq!(z.pageset_info(cpu).unwrap().0, 0);
    }
    assert_eq!(z.numa_stat().hit, allocs0 + cpus.len() as u64);
    for (p, o) in all {
        m.free_pages(p, o).unwrap();
    }
    m.drain_all_pages();
    m.check().unwrap();
}

#[test]
fn exhaustion_drains_and_retries() {
    // CPU 1 finds its list and the zone empty while CPU 0 works its own list.
    both("exhaustion_drains_and_retries", || {
        exhausted_allocations(2, &[0, 1])
    });
}

#[test]
fn exhaustion_on_two_cpus_at_once() {
    // CPUs 1 and 2 both find their lists and the zone empty: one's drain may empty CPU 0's
    // list before the other's, whose drain then finds nothing.
    both("exhaustion_on_two_cpus_at_once", || {
        exhausted_allocations(3, &[1, 2])
    });
}

#[test]
fn last_put_frees_once() {
    both("last_put_frees_once", || {
        let m = machine(3);
        let free0 = m.nr_free_pages();
        set_this_cpu(0);
        let block = m.alloc_pages(Gfp::KERNEL, 0).unwrap();
        assert_eq!(m.get_page(block), Ok(2));
        assert_eq!(m.get_page(block), Ok(3));
        let m = Arc::new(m);
        let hs: Vec<_> = (0..3)
            .map(|cpu| {
                let m = m.clone();
                thread::spawn(move || {
                    set_this_cpu(cpu);
                    // CPU 2 also works its own list meanwhile.
                    if cpu == 2 {
                        let p = m.alloc_pages(Gfp::KERNEL, 0).unwrap();
                        m.free_pages(p, 0).unwrap();
                    }
                    m.put_page(block).unwrap()
                })
            })
            .collect();
        let counts: Vec<u32> = hs.into_iter().map(|h| h.join().unwrap()).collect();
        let mut sorted = counts.clone();
        sorted.sort();
        assert_eq!(sorted, [0, 1, 2], "each put saw its own count: {counts:?}");
        assert!(!m.page(block).unwrap().flags().contains(PageFlags::HEAD));
        m.check().unwrap();
        m.drain_all_pages();
        m.check().unwrap();
        assert_eq!(m.nr_free_pages(), free0);
    });
}
