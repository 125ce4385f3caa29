//! Per-CPU page lists in front of each zone's buddy free lists (Linux's `per_cpu_pages`), and
//! the per-CPU NUMA event counters of the zone (Linux's `per_cpu_zonestat`).
//!
//! Every zone has one [`PerCpuPageset`] per possible CPU. It holds free blocks of orders 0 to
//! [`PAGE_ALLOC_COSTLY_ORDER`], one list per order and per-CPU migratetype (Unmovable,
//! Movable, Reclaimable), [`NR_PCP_LISTS`] in all, as Linux 6.1's (without its THP list),
//! linked through their struct pages (as Linux links them through `page->pcp_list`):
//! allocations pop the newest block of their list and frees push onto it, so the common pair
//! touches one struct page, no free list and no shared cache line. `count` is in pages. A CPU
//! refills an empty list under the zone lock (`rmqueue_bulk`: `batch` pages' worth, at least
//! two blocks) and, when a free brings `count` to `high`, gives back `batch` pages of its
//! oldest blocks under the zone lock (`free_pcppages_bulk`, round-robin over the lists from the
//! one just freed to).
//!
//! Each pageset has its own lock, as in Linux since 5.19: the owning CPU takes it uncontended
//! (with interrupts off in the kernel), and another CPU takes it only to drain the lists
//! remotely (`drain_all_pages`). Lock order: pageset lock, then zone lock. Cached blocks carry
//! [`PageFlags::PCP`](crate::PageFlags::PCP) and their order, count as free pages of their
//! zone in [`Zone::free_pages`](crate::Zone::free_pages), but not in the zone's
//! `NR_FREE_PAGES`, which the watermark check reads (as Linux's).
//!
//! `batch` and `high` follow Linux 6.1's `zone_batchsize` and `zone_highsize`.

use core::sync::atomic::AtomicU64;
use core::sync::atomic::Ordering::Relaxed;

use crate::page::{NIL, Page};
use crate::pageblock::{MIGRATE_PCPTYPES, MigrateType};
use crate::sparse::Sparse;
use crate::sync::Mutex;
use crate::zone::NumaStat;

/// The highest order the per-CPU lists hold (`PAGE_ALLOC_COSTLY_ORDER`).
pub const PAGE_ALLOC_COSTLY_ORDER: u32 = 3;

/// Lists per pageset: one per order up to [`PAGE_ALLOC_COSTLY_ORDER`] and per-CPU
/// migratetype (`NR_PCP_LISTS` without the THP list).
pub const NR_PCP_LISTS: usize = MIGRATE_PCPTYPES * (PAGE_ALLOC_COSTLY_ORDER as usize + 1);

/// `order_to_pindex`: the list of `order` (at most [`PAGE_ALLOC_COSTLY_ORDER`]) and `mt` (one
/// of the per-CPU types).
#[inline]
pub(crate) const fn order_to_pindex(mt: MigrateType, order: u32) -> usize {
    MIGRATE_PCPTYPES * order as usize + mt.index()
}

/// `pindex_to_order`, and the list's migratetype.
#[inline]
pub(crate) const fn pindex_to_order(pindex: usize) -> (u32, MigrateType) {
    (
        (pindex / MIGRATE_PCPTYPES) as u32,
        MigrateType::from_index((pindex % MIGRATE_PCPTYPES) as u8),
    )
}

/// One list: newest block (allocated first) and oldest (drained first), or NIL.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PcpList {
    head: u64,
    tail: u64,
}

/// One CPU's lists of free blocks of one zone (`struct per_cpu_pages`).
#[derive(Debug)]
pub(crate) struct Pcp {
    /// Pages on the lists (a block of order k counts 2^k).
    pub(crate) count: u32,
    /// When a free brings `count` to this, `batch` pages go back to the zone.
    pub(crate) high: u32,
    /// Pages moved between the lists and the zone at once.
    pub(crate) batch: u32,
    lists: [PcpList; NR_PCP_LISTS],
}

impl Pcp {
    pub(crate) const fn new(high: u32, batch: u32) -> Self {
        Self {
            count: 0,
            high,
            batch,
            lists: [PcpList {
                head: NIL,
                tail: NIL,
            }; NR_PCP_LISTS],
        }
    }

    /// Whether list `pindex` is empty.
    #[inline]
    pub(crate) fn is_empty(&self, pindex: usize) -> bool {
        self.lists[pindex].head == NIL
    }

    /// Push `pfn`, a block of the list's order, as the newest of list `pindex` (`list_add`).
    /// The caller owns the block.
    #[cfg(test)]
    pub(crate) fn push(&mut self, sparse: &Sparse, pfn: u64, pindex: usize) {
        if let Some(p) = sparse.page(pfn) {
            self.push_page(sparse, pfn, p, pindex);
        }
    }

    /// [`push`](Self::push) with `pfn`'s struct page already in hand.
    #[inline]
    pub(crate) fn push_page(&mut self, sparse: &Sparse, pfn: u64, p: &Page, pindex: usize) {
        let l = &mut self.lists[pindex];
        p.set_next(l.head);
        p.set_prev(NIL);
        if l.head == NIL {
            l.tail = pfn;
        } else if let Some(h) = sparse.page(l.head) {
            h.set_prev(pfn);
        }
        l.head = pfn;
        self.count += 1 << pindex_to_order(pindex).0;
    }

    /// Take the newest block of list `pindex`.
    #[cfg(test)]
    pub(crate) fn pop(&mut self, sparse: &Sparse, pindex: usize) -> Option<u64> {
        self.pop_page(sparse, pindex).map(|(pfn, _)| pfn)
    }

    /// Take the newest block of list `pindex`, with its struct page.
    #[inline]
    pub(crate) fn pop_page<'a>(
        &mut self,
        sparse: &'a Sparse,
        pindex: usize,
    ) -> Option<(u64, &'a Page)> {
        let l = &mut self.lists[pindex];
        let pfn = l.head;
        let page = sparse.page(pfn)?;
        let next = page.next();
        l.head = next;
        if next == NIL {
            l.tail = NIL;
        }
        // The new head's back link is left pointing at the page taken (one struct page
        // less to write on the allocation path): only the head's back link may be stale,
        // and `pop_oldest` never follows the head's.
        self.count -= 1 << pindex_to_order(pindex).0;
        Some((pfn, page))
    }

    /// Take the oldest block of list `pindex` (`list_last_entry` in `free_pcppages_bulk`).
    #[inline]
    pub(crate) fn pop_oldest(&mut self, sparse: &Sparse, pindex: usize) -> Option<u64> {
        let l = &mut self.lists[pindex];
        let pfn = l.tail;
        let tail = sparse.page(pfn)?;
        if pfn == l.head {
            // The last block (whose back link may be stale, see `pop_page`).
            l.head = NIL;
            l.tail = NIL;
        } else {
            let prev = tail.prev();
            l.tail = prev;
            if let Some(p) = sparse.page(prev) {
                p.set_next(NIL);
            }
        }
        self.count -= 1 << pindex_to_order(pindex).0;
        Some(pfn)
    }

    /// The cached blocks of list `pindex`, newest first (stops at a broken link or after
    /// `count` entries; the checker compares the walk with `count`).
    pub(crate) fn walk<'a>(
        &self,
        sparse: &'a Sparse,
        pindex: usize,
    ) -> impl Iterator<Item = u64> + 'a {
        sparse.walk_list(self.lists[pindex].head, u64::from(self.count) + 1)
    }

    /// Every cached block as `(pfn, order)`, list by list.
    pub(crate) fn walk_all<'a>(
        &'a self,
        sparse: &'a Sparse,
    ) -> impl Iterator<Item = (u64, u32)> + 'a {
        (0..NR_PCP_LISTS).flat_map(move |i| {
            let order = pindex_to_order(i).0;
            self.walk(sparse, i).map(move |pfn| (pfn, order))
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
        let l = order_to_pindex(MigrateType::Movable, 0);
        for i in 0..5 {
            p.push(&s, i, l);
        }
        assert_eq!(p.walk(&s, l).collect::<Vec<_>>(), [4, 3, 2, 1, 0]);
        assert_eq!(p.pop_oldest(&s, l), Some(0));
        assert_eq!(p.pop(&s, l), Some(4));
        assert_eq!(p.pop_oldest(&s, l), Some(1));
        assert_eq!(p.walk(&s, l).collect::<Vec<_>>(), [3, 2]);
        assert_eq!(p.pop(&s, l), Some(3));
        assert_eq!(p.pop(&s, l), Some(2));
        assert_eq!(
            (p.pop(&s, l), p.pop_oldest(&s, l), p.count),
            (None, None, 0)
        );
        p.push(&s, 7, l);
        assert_eq!(p.pop_oldest(&s, l), Some(7));
        // Lists are apart; count is in pages.
        let l3 = order_to_pindex(MigrateType::Unmovable, 3);
        p.push(&s, 64, l3);
        p.push(&s, 8, l);
        assert_eq!(p.count, 9);
        assert_eq!(p.walk_all(&s).collect::<Vec<_>>(), [(8, 0), (64, 3)]);
        assert_eq!(p.pop(&s, l3), Some(64));
        assert_eq!(p.count, 1);
        assert!(p.is_empty(l3) && !p.is_empty(l));
    }

    #[test]
    fn pindex_is_linuxs() {
        assert_eq!(NR_PCP_LISTS, 12);
        assert_eq!(order_to_pindex(MigrateType::Unmovable, 0), 0);
        assert_eq!(order_to_pindex(MigrateType::Reclaimable, 3), 11);
        for i in 0..NR_PCP_LISTS {
            let (o, mt) = pindex_to_order(i);
            assert_eq!(order_to_pindex(mt, o), i);
        }
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
