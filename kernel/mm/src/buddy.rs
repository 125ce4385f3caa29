//! The buddy allocator of one zone: free lists per order and migratetype, intrusive in the
//! struct pages.
//!
//! `buddy_pfn = pfn ^ (1 << order)`. A block merges with its buddy only if the buddy has a
//! struct page, is the head of a free block ([`PageFlags::BUDDY`]) of the same order, and is in
//! the same zone of the same node (Linux's `page_is_buddy`: the same `struct zone`). Device
//! pages, holes and reserved pages never carry `BUDDY`, so merging never crosses into them;
//! blocks are naturally aligned and at most 1024 pages, so they never cross a 128 MiB section
//! either. From the pageblock order up, blocks of HighAtomic or Isolate pageblocks merge only
//! with their own type (`migratetype_is_mergeable`).
//!
//! Each order has one list per [`MigrateType`] and one `nr_free` over all of them, as Linux's
//! `struct free_area`. An allocation takes the smallest block of its own type
//! ([`FreeAreas::rmqueue_smallest`]); when there is none, [`FreeAreas::rmqueue_fallback`]
//! steals the largest block of a fallback type (Linux's `__rmqueue_fallback` and
//! `steal_suitable_fallback`: a whole pageblock changes type when the block is at least a
//! pageblock, or when half of the pageblock is free or compatible). Linux's
//! `ALLOC_NOFRAGMENT` first pass and watermark boosting are not done: there is no kswapd or
//! compaction to act on them.

use crate::page::{NIL, PageFlags};
use crate::pageblock::{MIGRATE_TYPES, MigrateType, PAGEBLOCK_NR_PAGES, pageblock_start_pfn};
use crate::sparse::Sparse;
use crate::{MAX_ORDER, NR_ORDERS, PAGEBLOCK_ORDER};

/// One order's free lists (`struct free_area`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct FreeArea {
    /// The head of each migratetype's list (`free_list[MIGRATE_TYPES]`), NIL when empty.
    pub(crate) head: [u64; MIGRATE_TYPES],
    /// Blocks on all of this order's lists.
    pub(crate) nr_free: u64,
}

/// All free lists of a zone.
#[derive(Clone, Debug)]
pub(crate) struct FreeAreas {
    pub(crate) area: [FreeArea; NR_ORDERS],
}

/// The pfn range `[start, end)` of the zone that owns the lists (`zone_spans_pfn`), and its
/// zone index and node, which `move_freepages_block` needs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ZoneSpan {
    pub(crate) start: u64,
    pub(crate) end: u64,
    pub(crate) zone: u8,
    pub(crate) node: u8,
}

impl FreeAreas {
    pub(crate) const fn new() -> Self {
        Self {
            area: [FreeArea {
                head: [NIL; MIGRATE_TYPES],
                nr_free: 0,
            }; NR_ORDERS],
        }
    }

    /// Push a free block head onto the list of `mt` (`add_to_free_list`).
    #[inline]
    pub(crate) fn add(&mut self, sparse: &Sparse, pfn: u64, order: u32, mt: MigrateType) {
        let a = &mut self.area[order as usize];
        let old = a.head[mt.index()];
        if let Some(p) = sparse.page(pfn) {
            p.set(PageFlags::BUDDY);
            p.set_order(order);
            p.set_next(old);
            p.set_prev(NIL);
        } else {
            return;
        }
        if old != NIL
            && let Some(o) = sparse.page(old)
        {
            o.set_prev(pfn);
        }
        a.head[mt.index()] = pfn;
        a.nr_free += 1;
    }

    /// Unlink a free block head from whichever list of `order` holds it
    /// (`del_page_from_free_list`).
    #[inline]
    pub(crate) fn del(&mut self, sparse: &Sparse, pfn: u64, order: u32) {
        let (next, prev) = match sparse.page(pfn) {
            Some(p) => {
                p.clear(PageFlags::BUDDY);
                p.set_order(0);
                (p.next(), p.prev())
            }
            None => return,
        };
        self.unlink(sparse, pfn, order, next, prev);
    }

    /// Join the neighbours `prev` and `next` of `pfn`, leaving a list of `order`. A head (no
    /// `prev`) is found among the order's list heads.
    #[inline]
    fn unlink(&mut self, sparse: &Sparse, pfn: u64, order: u32, next: u64, prev: u64) {
        let a = &mut self.area[order as usize];
        if prev == NIL {
            if let Some(h) = a.head.iter_mut().find(|h| **h == pfn) {
                *h = next;
            }
        } else if let Some(p) = sparse.page(prev) {
            p.set_next(next);
        }
        if next != NIL
            && let Some(n) = sparse.page(next)
        {
            n.set_prev(prev);
        }
        a.nr_free -= 1;
    }

    /// `move_to_free_list`: a free block head onto the list of `mt`.
    #[inline]
    pub(crate) fn move_to(&mut self, sparse: &Sparse, pfn: u64, order: u32, mt: MigrateType) {
        self.del(sparse, pfn, order);
        self.add(sparse, pfn, order, mt);
    }

    /// `__free_one_page`: insert a free block on the list of `mt`, merging with free buddies
    /// of the same zone (`zone` index on node `node`).
    pub(crate) fn free_one(
        &mut self,
        sparse: &Sparse,
        mut pfn: u64,
        mut order: u32,
        zone: u8,
        node: u8,
        mt: MigrateType,
    ) {
        while order < MAX_ORDER {
            let buddy = pfn ^ (1 << order);
            if order >= PAGEBLOCK_ORDER {
                // Keep HighAtomic and Isolate pageblocks apart from the others.
                let bmt = sparse.pageblock_migratetype(buddy);
                if bmt.is_some_and(|b| b != mt && (!b.is_mergeable() || !mt.is_mergeable())) {
                    break;
                }
            }
            // page_is_buddy, and the buddy taken off its list with one struct page lookup.
            let (next, prev) = match sparse.page(buddy) {
                Some(b)
                    if b.has(PageFlags::BUDDY)
                        && b.order() == order
                        && b.zone_and_node() == (zone, node) =>
                {
                    b.clear(PageFlags::BUDDY);
                    b.set_order(0);
                    (b.next(), b.prev())
                }
                _ => break,
            };
            self.unlink(sparse, buddy, order, next, prev);
            pfn &= buddy;
            order += 1;
        }
        self.add(sparse, pfn, order, mt);
    }

    /// `__rmqueue_smallest`: take a block of `order` from the lists of `mt`, splitting the
    /// smallest larger one (`expand`: the halves stay on `mt`'s lists). Returns the head pfn.
    #[inline]
    pub(crate) fn rmqueue_smallest(
        &mut self,
        sparse: &Sparse,
        order: u32,
        mt: MigrateType,
    ) -> Option<u64> {
        for cur in order..=MAX_ORDER {
            let pfn = self.area[cur as usize].head[mt.index()];
            if pfn == NIL {
                continue;
            }
            self.del(sparse, pfn, cur);
            let mut high = cur;
            while high > order {
                high -= 1;
                self.add(sparse, pfn + (1 << high), high, mt);
            }
            return Some(pfn);
        }
        None
    }

    /// `find_suitable_fallback`: the first fallback type of `mt` with a block of `order`, and
    /// whether the allocation may steal its pageblock (`can_steal_fallback`).
    fn find_suitable_fallback(
        &self,
        order: u32,
        mt: MigrateType,
        mobility_disabled: bool,
    ) -> Option<(MigrateType, bool)> {
        let area = &self.area[order as usize];
        if area.nr_free == 0 {
            return None;
        }
        let f = *mt
            .fallbacks()
            .iter()
            .find(|f| area.head[f.index()] != NIL)?;
        let can_steal = order >= PAGEBLOCK_ORDER / 2
            || mt == MigrateType::Reclaimable
            || mt == MigrateType::Unmovable
            || mobility_disabled;
        Some((f, can_steal))
    }

    /// `__rmqueue_fallback`: move a block of a fallback type onto the lists of `start` (and
    /// maybe its whole pageblock, see the module documentation), so that
    /// [`rmqueue_smallest`](Self::rmqueue_smallest) for `start` finds it. The largest block
    /// is taken, except that a movable allocation that may not steal the pageblock splits the
    /// smallest one. False when no fallback list has a block of `order` or larger.
    pub(crate) fn rmqueue_fallback(
        &mut self,
        sparse: &Sparse,
        order: u32,
        start: MigrateType,
        span: ZoneSpan,
        mobility_disabled: bool,
    ) -> bool {
        let mut pick = None;
        for cur in (order..=MAX_ORDER).rev() {
            if let Some((f, can_steal)) = self.find_suitable_fallback(cur, start, mobility_disabled)
            {
                pick = Some((cur, f, can_steal));
                if !can_steal && start == MigrateType::Movable && cur > order {
                    // find_smallest
                    pick = (order..=MAX_ORDER).find_map(|o| {
                        self.find_suitable_fallback(o, start, mobility_disabled)
                            .map(|(f, c)| (o, f, c))
                    });
                }
                break;
            }
        }
        let Some((cur, f, can_steal)) = pick else {
            return false;
        };
        let pfn = self.area[cur as usize].head[f.index()];
        self.steal_suitable_fallback(sparse, pfn, cur, start, can_steal, span, mobility_disabled);
        true
    }

    /// `steal_suitable_fallback`: take the free block `pfn` of `order` for `start`; a block
    /// of a pageblock or more takes its pageblocks along, and with `whole_block` the other
    /// free pages of its pageblock move too, the pageblock changing type when at least half of
    /// it is free or compatible. HighAtomic pageblocks are never taken over.
    #[allow(clippy::too_many_arguments)]
    fn steal_suitable_fallback(
        &mut self,
        sparse: &Sparse,
        pfn: u64,
        order: u32,
        start: MigrateType,
        whole_block: bool,
        span: ZoneSpan,
        mobility_disabled: bool,
    ) {
        let old = sparse.pageblock_migratetype(pfn);
        if old != Some(MigrateType::HighAtomic) {
            if order >= PAGEBLOCK_ORDER {
                set_pageblock_range(sparse, pfn, order, start);
            } else if whole_block {
                let (free, movable) = self.move_freepages_block(sparse, pfn, start, span);
                if free > 0 {
                    let alike = if start == MigrateType::Movable {
                        movable
                    } else if old == Some(MigrateType::Movable) {
                        PAGEBLOCK_NR_PAGES.saturating_sub(free + movable)
                    } else {
                        0
                    };
                    if (free + alike >= PAGEBLOCK_NR_PAGES / 2 || mobility_disabled)
                        && let Some(b) = sparse.pageblock(pfn)
                    {
                        b.set(start);
                    }
                    return;
                }
            }
        }
        self.move_to(sparse, pfn, order, start);
    }

    /// `move_freepages_block`: every free block that starts in the pageblock of `pfn` (from
    /// `pfn` on when the pageblock starts before the zone) onto the lists of `mt`; nothing when
    /// the pageblock ends beyond the zone. Returns the pages moved and the movable pages seen
    /// (allocations do not record their mobility here, so always 0).
    pub(crate) fn move_freepages_block(
        &mut self,
        sparse: &Sparse,
        pfn: u64,
        mt: MigrateType,
        span: ZoneSpan,
    ) -> (u64, u64) {
        let mut start = pageblock_start_pfn(pfn);
        let end = start + PAGEBLOCK_NR_PAGES;
        if start < span.start {
            start = pfn;
        }
        if end > span.end {
            return (0, 0);
        }
        let mut moved = 0;
        let mut cur = start;
        while cur < end {
            match sparse.page(cur) {
                Some(p) if p.is_buddy() && p.zone_and_node() == (span.zone, span.node) => {
                    let order = p.order();
                    self.move_to(sparse, cur, order, mt);
                    moved += 1 << order;
                    cur += 1 << order;
                }
                _ => cur += 1,
            }
        }
        (moved, 0)
    }

    /// The free blocks on the list of `order` and `mt`, head first (stops after `nr_free`
    /// entries or at a broken link).
    pub(crate) fn walk<'a>(
        &self,
        sparse: &'a Sparse,
        order: u32,
        mt: MigrateType,
    ) -> impl Iterator<Item = u64> + 'a {
        let area = &self.area[order as usize];
        sparse.walk_list(area.head[mt.index()], area.nr_free + 1)
    }
}

/// `change_pageblock_range`: every pageblock of the block `[pfn, pfn + 2^order)` becomes `mt`.
pub(crate) fn set_pageblock_range(sparse: &Sparse, pfn: u64, order: u32, mt: MigrateType) {
    let end = pfn + (1u64 << order);
    let mut cur = pageblock_start_pfn(pfn);
    while cur < end {
        if let Some(b) = sparse.pageblock(cur) {
            b.set(mt);
        }
        cur += PAGEBLOCK_NR_PAGES;
    }
}

/// The largest order of a naturally aligned block starting at `pfn` that fits in `[pfn, end)`.
#[inline]
pub(crate) fn max_block_order(pfn: u64, end: u64) -> u32 {
    let align = if pfn == 0 {
        MAX_ORDER
    } else {
        pfn.trailing_zeros().min(MAX_ORDER)
    };
    let fit = 63 - (end - pfn).leading_zeros();
    align.min(fit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::page::Page;
    use crate::sparse::PAGES_PER_SECTION;
    use alloc::boxed::Box;
    use alloc::vec;

    const M: MigrateType = MigrateType::Movable;

    fn sparse() -> Sparse {
        let mut s = Sparse::new();
        let pages = Box::leak(vec![Page::default(); PAGES_PER_SECTION as usize].into_boxed_slice());
        s.add_chunk(0, pages, crate::sparse::MemmapOrigin::Memblock { pa: 0 })
            .unwrap();
        s
    }

    #[test]
    fn split_then_merge_back() {
        let s = sparse();
        let mut fa = FreeAreas::new();
        fa.free_one(&s, 1024, 10, 0, 0, M);
        assert_eq!(fa.area[10].nr_free, 1);
        let p = fa.rmqueue_smallest(&s, 0, M).unwrap();
        assert_eq!(p, 1024);
        for (o, a) in fa.area[..10].iter().enumerate() {
            assert_eq!(a.nr_free, 1, "order {o}");
        }
        assert_eq!(fa.area[10].nr_free, 0);
        fa.free_one(&s, p, 0, 0, 0, M);
        assert_eq!(fa.area[10].nr_free, 1);
        for a in &fa.area[..10] {
            assert_eq!(a.nr_free, 0);
            assert_eq!(a.head, [NIL; MIGRATE_TYPES]);
        }
    }

    #[test]
    fn no_merge_across_zones_or_with_reserved() {
        let s = sparse();
        let mut fa = FreeAreas::new();
        fa.free_one(&s, 0, 0, 0, 0, M);
        fa.free_one(&s, 1, 0, 1, 0, M); // other zone: no merge
        assert_eq!(fa.area[0].nr_free, 2);
        s.page(3).unwrap().set(PageFlags::RESERVED);
        fa.free_one(&s, 2, 0, 0, 0, M); // buddy 3 reserved: no merge
        assert_eq!(fa.area[0].nr_free, 3);
        assert_eq!(fa.area[1].nr_free, 0);
        s.page(5).unwrap().set_node(1);
        fa.free_one(&s, 5, 0, 0, 1, M);
        fa.free_one(&s, 4, 0, 0, 0, M); // buddy 5 on another node: no merge
        assert_eq!(fa.area[0].nr_free, 5);
        assert_eq!(fa.area[1].nr_free, 0);
    }

    #[test]
    fn del_from_middle_keeps_list_linked() {
        let s = sparse();
        let mut fa = FreeAreas::new();
        for pfn in [10, 20, 30] {
            fa.add(&s, pfn, 0, M);
        }
        fa.del(&s, 20, 0);
        assert_eq!(fa.area[0].head[M.index()], 30);
        assert_eq!(s.page(30).unwrap().next(), 10);
        assert_eq!(s.page(10).unwrap().prev(), 30);
        assert!(!s.page(20).unwrap().is_buddy());
    }

    #[test]
    fn max_block_order_respects_alignment_and_end() {
        assert_eq!(max_block_order(0, 1 << 20), MAX_ORDER);
        assert_eq!(max_block_order(1, 100), 0);
        assert_eq!(max_block_order(4, 100), 2);
        assert_eq!(max_block_order(1024, 1024 + 700), 9);
        assert_eq!(max_block_order(2048, 2049), 0);
    }
}
