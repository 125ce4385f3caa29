//! Per-zone order-0 page cache in front of the buddy free lists (Linux's `per_cpu_pages`; this
//! kernel has one CPU allocating, so one cache per zone).
//!
//! A small stack of pfns: order-0 allocations pop from it and order-0 frees push onto it, so
//! the common pair touches one struct page and no free list. It is refilled from the buddy
//! allocator [`PCP_BATCH`] pages at a time (`rmqueue_bulk`) and drained [`PCP_BATCH`] pages at a
//! time when it reaches [`PCP_HIGH`] (`free_pcppages_bulk`). Cached pages carry
//! [`PageFlags::PCP`](crate::PageFlags::PCP) and count as free pages of their zone.

/// Pages the cache holds at most (`pcp->high`).
pub const PCP_HIGH: usize = 128;
/// Pages moved between the cache and the free lists at once (`pcp->batch`).
pub const PCP_BATCH: usize = 32;

/// The cache of one zone.
#[derive(Clone, Debug)]
pub(crate) struct Pcp {
    pub(crate) count: usize,
    pub(crate) pfns: [u64; PCP_HIGH],
}

impl Pcp {
    pub(crate) const fn new() -> Self {
        Self {
            count: 0,
            pfns: [0; PCP_HIGH],
        }
    }

    /// The cached pfns.
    pub(crate) fn pfns(&self) -> &[u64] {
        &self.pfns[..self.count]
    }

    #[inline]
    pub(crate) fn pop(&mut self) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        self.count -= 1;
        Some(self.pfns[self.count])
    }

    /// Push; the caller drains first when the cache is full.
    #[inline]
    pub(crate) fn push(&mut self, pfn: u64) {
        self.pfns[self.count] = pfn;
        self.count += 1;
    }

    #[inline]
    pub(crate) fn is_full(&self) -> bool {
        self.count == PCP_HIGH
    }

    /// Remove the `n` oldest entries, handing each to `f`.
    pub(crate) fn take_oldest(&mut self, n: usize, mut f: impl FnMut(u64)) {
        let n = n.min(self.count);
        for &pfn in &self.pfns[..n] {
            f(pfn);
        }
        self.pfns.copy_within(n..self.count, 0);
        self.count -= n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifo_and_drain_oldest() {
        let mut p = Pcp::new();
        for i in 0..PCP_HIGH as u64 {
            p.push(i);
        }
        assert!(p.is_full());
        let mut seen = alloc::vec::Vec::new();
        p.take_oldest(PCP_BATCH, |x| seen.push(x));
        assert_eq!(seen, (0..PCP_BATCH as u64).collect::<alloc::vec::Vec<_>>());
        assert_eq!(p.pop(), Some(PCP_HIGH as u64 - 1));
        assert_eq!(p.pfns()[0], PCP_BATCH as u64);
        p.take_oldest(1000, |_| {});
        assert_eq!(p.pop(), None);
    }
}
