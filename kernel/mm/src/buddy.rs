//! The buddy allocator of one zone: free lists per order, intrusive in the struct pages.
//!
//! `buddy_pfn = pfn ^ (1 << order)`. A block merges with its buddy only if the buddy has a
//! struct page, is the head of a free block ([`PageFlags::BUDDY`]) of the same order, and is in
//! the same zone of the same node (Linux's `page_is_buddy`: the same `struct zone`). Device pages, holes and reserved pages never carry
//! `BUDDY`, so merging never crosses into them; blocks are naturally aligned and at most
//! 1024 pages, so they never cross a 128 MiB section either.

use crate::page::{NIL, PageFlags};
use crate::sparse::Sparse;
use crate::{MAX_ORDER, NR_ORDERS};

/// One order's free list (`struct free_area`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct FreeArea {
    pub(crate) head: u64,
    pub(crate) nr_free: u64,
}

/// All free lists of a zone.
#[derive(Clone, Debug)]
pub(crate) struct FreeAreas {
    pub(crate) area: [FreeArea; NR_ORDERS],
}

impl FreeAreas {
    pub(crate) const fn new() -> Self {
        Self {
            area: [FreeArea {
                head: NIL,
                nr_free: 0,
            }; NR_ORDERS],
        }
    }

    /// Push a free block head onto its list (`add_to_free_list`).
    #[inline]
    pub(crate) fn add(&mut self, sparse: &Sparse, pfn: u64, order: u32) {
        let a = &mut self.area[order as usize];
        let old = a.head;
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
        a.head = pfn;
        a.nr_free += 1;
    }

    /// Unlink a free block head (`del_page_from_free_list`).
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
        self.unlink(sparse, order, next, prev);
    }

    /// Join the neighbours `prev` and `next` of an entry leaving the list of `order`.
    #[inline]
    fn unlink(&mut self, sparse: &Sparse, order: u32, next: u64, prev: u64) {
        let a = &mut self.area[order as usize];
        if prev == NIL {
            a.head = next;
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

    /// `__free_one_page`: insert a free block, merging with free buddies of the same zone
    /// (`zone` index on node `node`).
    pub(crate) fn free_one(
        &mut self,
        sparse: &Sparse,
        mut pfn: u64,
        mut order: u32,
        zone: u8,
        node: u8,
    ) {
        while order < MAX_ORDER {
            let buddy = pfn ^ (1 << order);
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
            self.unlink(sparse, order, next, prev);
            pfn &= buddy;
            order += 1;
        }
        self.add(sparse, pfn, order);
    }

    /// `__rmqueue_smallest`: take a block of `order`, splitting the smallest larger one
    /// (`expand`). Returns the head pfn.
    #[inline]
    pub(crate) fn rmqueue_smallest(&mut self, sparse: &Sparse, order: u32) -> Option<u64> {
        for cur in order..=MAX_ORDER {
            let pfn = self.area[cur as usize].head;
            if pfn == NIL {
                continue;
            }
            self.del(sparse, pfn, cur);
            let mut high = cur;
            while high > order {
                high -= 1;
                self.add(sparse, pfn + (1 << high), high);
            }
            return Some(pfn);
        }
        None
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
        fa.free_one(&s, 1024, 10, 0, 0);
        assert_eq!(fa.area[10].nr_free, 1);
        let p = fa.rmqueue_smallest(&s, 0).unwrap();
        assert_eq!(p, 1024);
        for (o, a) in fa.area[..10].iter().enumerate() {
            assert_eq!(a.nr_free, 1, "order {o}");
        }
        assert_eq!(fa.area[10].nr_free, 0);
        fa.free_one(&s, p, 0, 0, 0);
        assert_eq!(fa.area[10].nr_free, 1);
        for a in &fa.area[..10] {
            assert_eq!(a.nr_free, 0);
            assert_eq!(a.head, NIL);
        }
    }

    #[test]
    fn no_merge_across_zones_or_with_reserved() {
        let s = sparse();
        let mut fa = FreeAreas::new();
        fa.free_one(&s, 0, 0, 0, 0);
        fa.free_one(&s, 1, 0, 1, 0); // other zone: no merge
        assert_eq!(fa.area[0].nr_free, 2);
        s.page(3).unwrap().set(PageFlags::RESERVED);
        fa.free_one(&s, 2, 0, 0, 0); // buddy 3 reserved: no merge
        assert_eq!(fa.area[0].nr_free, 3);
        assert_eq!(fa.area[1].nr_free, 0);
        s.page(5).unwrap().set_node(1);
        fa.free_one(&s, 5, 0, 0, 1);
        fa.free_one(&s, 4, 0, 0, 0); // buddy 5 on another node: no merge
        assert_eq!(fa.area[0].nr_free, 5);
        assert_eq!(fa.area[1].nr_free, 0);
    }

    #[test]
    fn del_from_middle_keeps_list_linked() {
        let s = sparse();
        let mut fa = FreeAreas::new();
        for pfn in [10, 20, 30] {
            fa.add(&s, pfn, 0);
        }
        fa.del(&s, 20, 0);
        assert_eq!(fa.area[0].head, 30);
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
