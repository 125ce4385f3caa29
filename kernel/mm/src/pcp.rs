//! Per-CPU page lists in front of each zone's buddy free lists (Linux's `per_cpu_pages`), and
//! the per-CPU NUMA event counters of the zone (Linux's `per_cpu_zonestat`).
//!
//! Every zone has one [`PerCpuPageset`] per possible CPU. Its list holds free order-0 pages,
//! linked through their struct pages (as Linux links them through `page->lru`): order-0
//! allocations pop the newest page and order-0 frees push onto it, so the common pair touches
//! one struct page, no free list and no shared cache line. A CPU refills its empty list with
//! `batch` pages taken under the zone lock (`rmqueue_bulk`) and, when a free brings the list to
//! `high`, gives back its `batch` oldest pages under the zone lock (`free_pcppages_bulk`).
//!
//! Each list has its own lock, as in Linux since 5.19: the owning CPU takes it uncontended
//! (with interrupts off in the kernel), and another CPU takes it only to drain the list
//! remotely (`drain_all_pages`). Lock order: pageset lock, then zone lock. Cached pages carry
//! [`PageFlags::PCP`](crate::PageFlags::PCP) and count as free pages of their zone in
//! [`Zone::free_pages`](crate::Zone::free_pages), but not in the zone's `NR_FREE_PAGES`, which
//! the watermark check reads (as Linux's).
//!
//! `batch` and `high` follow Linux 6.1's `zone_batchsize` and `zone_highsize`.

use core::sync::atomic::AtomicU64;
use core::sync::atomic::Ordering::Relaxed;

use crate::page::{NIL, Page};
use crate::sparse::Sparse;
use crate::sync::Mutex;
use crate::zone::NumaStat;

/// One CPU's list of free order-0 pages of one zone (`struct per_cpu_pages`).
#[derive(Debug)]
pub(crate) struct Pcp {
    /// Pages on the list.
    pub(crate) count: u32,
    /// When a free brings `count` to this, `batch` pages go back to the zone.
    pub(crate) high: u32,
    /// Pages moved between the list and the zone at once.
    pub(crate) batch: u32,
    /// Newest page (allocated first), or NIL.
    head: u64,
    /// Oldest page (drained first), or NIL.
    tail: u64,
}

impl Pcp {
    pub(crate) const fn new(high: u32, batch: u32) -> Self {
        Self {
            count: 0,
            high,
            batch,
            head: NIL,
            tail: NIL,
        }
    }

    /// Push `pfn` as the newest page (`list_add`). The caller owns the page.
    #[inline]
    pub(crate) fn push(&mut self, sparse: &Sparse, pfn: u64) {
        if let Some(p) = sparse.page(pfn) {
            self.push_page(sparse, pfn, p);
        }
    }

    /// [`push`](Self::push) with `pfn`'s struct page already in hand.
    #[inline]
    pub(crate) fn push_page(&mut self, sparse: &Sparse, pfn: u64, p: &Page) {
        p.set_next(self.head);
        p.set_prev(NIL);
        if self.head == NIL {
            self.tail = pfn;
        } else if let Some(h) = sparse.page(self.head) {
            h.set_prev(pfn);
        }
        self.head = pfn;
        self.count += 1;
    }

    /// Take the newest page.
    #[cfg(test)]
    pub(crate) fn pop(&mut self, sparse: &Sparse) -> Option<u64> {
        self.pop_page(sparse).map(|(pfn, _)| pfn)
    }

    /// [`pop`](Self::pop), with the page's struct page.
    #[inline]
    pub(crate) fn pop_page<'a>(&mut self, sparse: &'a Sparse) -> Option<(u64, &'a Page)> {
        let pfn = self.head;
        let page = sparse.page(pfn)?;
        let next = page.next();
        self.head = next;
        if next == NIL {
            self.tail = NIL;
        } else if let Some(n) = sparse.page(next) {
            n.set_prev(NIL);
        }
        self.count -= 1;
        Some((pfn, page))
    }

    /// Take the oldest page (`list_last_entry` in `free_pcppages_bulk`).
    #[inline]
    pub(crate) fn pop_oldest(&mut self, sparse: &Sparse) -> Option<u64> {
        let pfn = self.tail;
        let prev = sparse.page(pfn)?.prev();
        self.tail = prev;
        if prev == NIL {
            self.head = NIL;
        } else if let Some(p) = sparse.page(prev) {
            p.set_next(NIL);
        }
        self.count -= 1;
        Some(pfn)
    }

    /// The cached pfns, newest first (stops at a broken link; the checker compares the walk
    /// with `count`).
    pub(crate) fn walk<'a>(&self, sparse: &'a Sparse) -> impl Iterator<Item = u64> + 'a {
        let mut cur = self.head;
        let mut left = self.count as u64 + 1;
        core::iter::from_fn(move || {
            if cur == NIL || left == 0 {
                return None;
            }
            left -= 1;
            let pfn = cur;
            cur = sparse.page(pfn).map_or(NIL, |p| p.next());
            Some(pfn)
        })
    }
}

/// One CPU's part of a zone (`per_cpu_pages` and `per_cpu_zonestat`), on its own cache line so
/// CPUs never share one on the fast path.
#[derive(Debug)]
#[repr(align(64))]
pub(crate) struct PerCpuPageset {
    pub(crate) pcp: Mutex<Pcp>,
    /// NUMA events counted by this CPU for this zone; written only by this CPU (a relaxed load
    /// and store), summed by readers.
    pub(crate) numa: NumaCounters,
}

impl PerCpuPageset {
    pub(crate) fn new(high: u32, batch: u32) -> Self {
        Self {
            pcp: Mutex::new(Pcp::new(high, batch)),
            numa: NumaCounters::default(),
        }
    }
}

/// The six NUMA event counters of [`NumaStat`], as per-CPU atomics.
#[derive(Debug, Default)]
pub(crate) struct NumaCounters {
    pub(crate) hit: AtomicU64,
    pub(crate) miss: AtomicU64,
    pub(crate) foreign: AtomicU64,
    pub(crate) interleave_hit: AtomicU64,
    pub(crate) local: AtomicU64,
    pub(crate) other: AtomicU64,
}

/// `__count_numa_event` on a counter only its CPU writes: no locked instruction.
#[inline]
pub(crate) fn bump(c: &AtomicU64) {
    c.store(c.load(Relaxed).wrapping_add(1), Relaxed);
}

impl NumaCounters {
    pub(crate) fn read(&self) -> NumaStat {
        NumaStat {
            hit: self.hit.load(Relaxed),
            miss: self.miss.load(Relaxed),
            foreign: self.foreign.load(Relaxed),
            interleave_hit: self.interleave_hit.load(Relaxed),
            local: self.local.load(Relaxed),
            other: self.other.load(Relaxed),
        }
    }
}

/// Linux 6.1's `zone_batchsize`, clamped to at least 1 as `zone_set_high_and_batch` does:
/// a quarter of the zone's managed pages per 1024 (at most 1 MiB worth), rounded to 2^n - 1.
pub fn zone_batchsize(managed: u64) -> u32 {
    let mut batch = (managed >> 10).min((1 << 20) / crate::PAGE_SIZE) / 4;
    if batch < 1 {
        batch = 1;
    }
    let x = batch + batch / 2;
    let pow = 1u64 << (63 - x.leading_zeros());
    (pow - 1).max(1) as u32
}

/// Linux 6.1's `zone_highsize`: the zone's low watermark split over the CPUs of its node (all
/// online CPUs for a node without CPUs), at least four batches.
pub fn zone_highsize(low_wmark: u64, batch: u32, node_cpus: usize, online_cpus: usize) -> u32 {
    let split = if node_cpus == 0 {
        online_cpus.max(1)
    } else {
        node_cpus
    };
    let high = low_wmark / split as u64;
    high.max(u64::from(batch) << 2).min(u64::from(u32::MAX)) as u32
}

/// Linux's `calculate_normal_threshold` (the `vm stats threshold:` of /proc/zoneinfo).
pub fn stat_threshold(managed: u64, online_cpus: usize) -> u32 {
    let fls = |x: u64| 64 - x.leading_zeros();
    let mem = managed >> (27 - crate::PAGE_SHIFT);
    (2 * fls(online_cpus as u64) * (1 + fls(mem))).min(125)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::page::Page;
    use crate::sparse::PAGES_PER_SECTION;
    use alloc::boxed::Box;
    use alloc::vec;
    use alloc::vec::Vec;

    #[test]
    fn lifo_alloc_and_drain_oldest() {
        let mut s = Sparse::new();
        let pages = Box::leak(vec![Page::default(); PAGES_PER_SECTION as usize].into_boxed_slice());
        s.add_chunk(0, pages, crate::sparse::MemmapOrigin::Memblock { pa: 0 })
            .unwrap();
        let mut p = Pcp::new(8, 2);
        for i in 0..5 {
            p.push(&s, i);
        }
        assert_eq!(p.walk(&s).collect::<Vec<_>>(), [4, 3, 2, 1, 0]);
        assert_eq!(p.pop_oldest(&s), Some(0));
        assert_eq!(p.pop(&s), Some(4));
        assert_eq!(p.pop_oldest(&s), Some(1));
        assert_eq!(p.walk(&s).collect::<Vec<_>>(), [3, 2]);
        assert_eq!(p.pop(&s), Some(3));
        assert_eq!(p.pop(&s), Some(2));
        assert_eq!((p.pop(&s), p.pop_oldest(&s), p.count), (None, None, 0));
        p.push(&s, 7);
        assert_eq!(p.pop_oldest(&s), Some(7));
    }

    #[test]
    fn batch_high_and_threshold_like_linux() {
        // Values read from Linux 6.1's /proc/zoneinfo on QEMU (four CPUs, one per node): a
        // DMA zone of 3977 pages, a 512 MiB zone, a 1 GiB zone.
        assert_eq!(zone_batchsize(3977), 1);
        assert_eq!(zone_batchsize(126_000), 31);
        assert_eq!(zone_batchsize(258_000), 63);
        assert_eq!(
            zone_batchsize(1 << 30),
            63,
            "at most 1 MiB worth, rounded to 2^n - 1"
        );
        assert_eq!(stat_threshold(3977, 4), 6);
        assert_eq!(stat_threshold(126_000, 4), 18);
        assert_eq!(stat_threshold(258_000, 4), 24);
        assert_eq!(zone_highsize(222, 1, 1, 4), 222);
        assert_eq!(zone_highsize(10, 31, 1, 4), 124, "at least four batches");
        assert_eq!(
            zone_highsize(1000, 1, 0, 4),
            250,
            "a node without CPUs splits over all"
        );
    }
}
