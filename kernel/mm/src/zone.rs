//! Zones: DMA (below 16 MiB), DMA32 (below 4 GiB), Normal (up to max_pfn) and Device.
//!
//! A RAM page's zone is a function of its address ([`ZoneId::for_pfn`]); ZONE_DEVICE pages are
//! whatever a device pagemap covers, wherever it lies. Each [`Zone`] owns its buddy free lists
//! and its order-0 page cache, and the Linux counters:
//! spanned = end − start; present = spanned − holes; managed = present − reserved.

use crate::buddy::FreeAreas;
use crate::pcp::Pcp;
use crate::watermark::Watermarks;

/// First pfn above ZONE_DMA (16 MiB).
pub const MAX_DMA_PFN: u64 = (16 << 20) >> crate::PAGE_SHIFT;
/// First pfn above ZONE_DMA32 (4 GiB).
pub const MAX_DMA32_PFN: u64 = (4 << 30) >> crate::PAGE_SHIFT;
/// Number of zones.
pub const MAX_NR_ZONES: usize = 4;

/// Zone index (`enum zone_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum ZoneId {
    /// Below 16 MiB.
    Dma = 0,
    /// Below 4 GiB.
    Dma32 = 1,
    /// Everything above, up to max_pfn.
    Normal = 2,
    /// Device memory (ZONE_DEVICE): never in the buddy allocator.
    Device = 3,
}

impl ZoneId {
    /// All zones in index order.
    pub const ALL: [ZoneId; MAX_NR_ZONES] = [Self::Dma, Self::Dma32, Self::Normal, Self::Device];
    /// The zones that hold RAM managed by the buddy allocator.
    pub const RAM: [ZoneId; 3] = [Self::Dma, Self::Dma32, Self::Normal];

    /// Zone of a stored index (values above 3 cannot be stored by this crate; they read as
    /// Device so that a corrupted page is never treated as RAM).
    #[inline]
    pub const fn from_index(i: u8) -> Self {
        match i {
            0 => Self::Dma,
            1 => Self::Dma32,
            2 => Self::Normal,
            _ => Self::Device,
        }
    }

    /// Index for arrays.
    #[inline]
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Linux's zone name (`zone->name`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Dma => "DMA",
            Self::Dma32 => "DMA32",
            Self::Normal => "Normal",
            Self::Device => "Device",
        }
    }

    /// The RAM zone a pfn falls into by address.
    #[inline]
    pub const fn for_pfn(pfn: u64) -> Self {
        if pfn < MAX_DMA_PFN {
            Self::Dma
        } else if pfn < MAX_DMA32_PFN {
            Self::Dma32
        } else {
            Self::Normal
        }
    }

    /// The address window `[lo, hi)` (pfns) of a RAM zone; Device has none.
    pub const fn window(self) -> Option<(u64, u64)> {
        match self {
            Self::Dma => Some((0, MAX_DMA_PFN)),
            Self::Dma32 => Some((MAX_DMA_PFN, MAX_DMA32_PFN)),
            Self::Normal => Some((MAX_DMA32_PFN, crate::MAX_PFN_LIMIT)),
            Self::Device => None,
        }
    }

    /// First pfn after `pfn` where the RAM zone changes (a zone boundary), capped at `end`.
    #[inline]
    pub(crate) const fn next_boundary(pfn: u64, end: u64) -> u64 {
        let b = if pfn < MAX_DMA_PFN {
            MAX_DMA_PFN
        } else if pfn < MAX_DMA32_PFN {
            MAX_DMA32_PFN
        } else {
            u64::MAX
        };
        if b < end { b } else { end }
    }
}

/// One memory zone (`struct zone`).
#[derive(Debug)]
pub struct Zone {
    pub(crate) id: ZoneId,
    pub(crate) start_pfn: u64,
    pub(crate) spanned: u64,
    pub(crate) present: u64,
    pub(crate) managed: u64,
    /// Free pages: in the buddy free lists plus in the page cache (`NR_FREE_PAGES` + pcp).
    pub(crate) free: u64,
    pub(crate) wmark: Watermarks,
    pub(crate) areas: FreeAreas,
    pub(crate) pcp: Pcp,
}

impl Zone {
    pub(crate) fn new(id: ZoneId) -> Self {
        Self {
            id,
            start_pfn: 0,
            spanned: 0,
            present: 0,
            managed: 0,
            free: 0,
            wmark: Watermarks::default(),
            areas: FreeAreas::new(),
            pcp: Pcp::new(),
        }
    }

    /// Which zone this is.
    pub fn id(&self) -> ZoneId {
        self.id
    }
    /// Linux's zone name.
    pub fn name(&self) -> &'static str {
        self.id.name()
    }
    /// `zone_start_pfn`.
    pub fn start_pfn(&self) -> u64 {
        self.start_pfn
    }
    /// First pfn past the zone's span.
    pub fn end_pfn(&self) -> u64 {
        self.start_pfn + self.spanned
    }
    /// `spanned_pages`: end − start, holes included.
    pub fn spanned(&self) -> u64 {
        self.spanned
    }
    /// `present_pages`: pages that exist in the span.
    pub fn present(&self) -> u64 {
        self.present
    }
    /// `managed_pages`: pages handed to the buddy allocator (present − reserved).
    pub fn managed(&self) -> u64 {
        self.managed
    }
    /// Free pages, including those in the order-0 page cache.
    pub fn free_pages(&self) -> u64 {
        self.free
    }
    /// Free pages held in the order-0 page cache.
    pub fn pcp_count(&self) -> u64 {
        self.pcp.count as u64
    }
    /// Number of free blocks of `order` in the buddy free lists (`free_area[order].nr_free`).
    pub fn nr_free(&self, order: u32) -> u64 {
        self.areas.area[order as usize].nr_free
    }
    /// The min / low / high watermarks (pages).
    pub fn watermarks(&self) -> Watermarks {
        self.wmark
    }
    /// `populated_zone`: the zone has present pages.
    pub fn is_populated(&self) -> bool {
        self.present != 0
    }
    /// Whether `pfn` lies in the zone's span.
    pub fn spans(&self, pfn: u64) -> bool {
        pfn >= self.start_pfn && pfn < self.end_pfn()
    }

    /// Grow the span to include `[start, end)`.
    pub(crate) fn extend_span(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        if self.spanned == 0 {
            self.start_pfn = start;
            self.spanned = end - start;
        } else {
            let s = self.start_pfn.min(start);
            let e = self.end_pfn().max(end);
            self.start_pfn = s;
            self.spanned = e - s;
        }
    }
}

/// The zonelist walked for an allocation whose highest allowed zone is `high`
/// (Normal → DMA32 → DMA). Device is never part of a zonelist.
#[inline]
pub(crate) const fn zonelist(high: ZoneId) -> &'static [ZoneId] {
    match high {
        ZoneId::Dma => &[ZoneId::Dma],
        ZoneId::Dma32 => &[ZoneId::Dma32, ZoneId::Dma],
        _ => &[ZoneId::Normal, ZoneId::Dma32, ZoneId::Dma],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_by_address() {
        assert_eq!(ZoneId::for_pfn(0), ZoneId::Dma);
        assert_eq!(ZoneId::for_pfn(MAX_DMA_PFN - 1), ZoneId::Dma);
        assert_eq!(ZoneId::for_pfn(MAX_DMA_PFN), ZoneId::Dma32);
        assert_eq!(ZoneId::for_pfn(MAX_DMA32_PFN - 1), ZoneId::Dma32);
        assert_eq!(ZoneId::for_pfn(MAX_DMA32_PFN), ZoneId::Normal);
        assert_eq!(ZoneId::next_boundary(5, 100_000), MAX_DMA_PFN);
        assert_eq!(ZoneId::next_boundary(MAX_DMA32_PFN, 7 << 20), 7 << 20);
    }

    #[test]
    fn zonelists_never_reach_device() {
        for z in ZoneId::ALL {
            assert!(!zonelist(z).contains(&ZoneId::Device));
        }
        assert_eq!(
            zonelist(ZoneId::Normal),
            &[ZoneId::Normal, ZoneId::Dma32, ZoneId::Dma]
        );
        assert_eq!(zonelist(ZoneId::Dma), &[ZoneId::Dma]);
    }

    #[test]
    fn span_grows_both_ways() {
        let mut z = Zone::new(ZoneId::Normal);
        z.extend_span(100, 200);
        z.extend_span(300, 400);
        assert_eq!((z.start_pfn(), z.spanned()), (100, 300));
        z.extend_span(50, 60);
        assert_eq!((z.start_pfn(), z.end_pfn()), (50, 400));
        z.extend_span(10, 10);
        assert_eq!(z.start_pfn(), 50);
    }
}
