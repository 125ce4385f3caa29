//! Zones: DMA (below 16 MiB), DMA32 (below 4 GiB), Normal (up to max_pfn), Movable and Device.
//!
//! A RAM page's zone is a function of its address ([`ZoneId::for_pfn`]) unless it lies at or
//! above its node's Movable zone start (`kernelcore=` / `movablecore=` / `movable_node`, see
//! [`crate::movable`]) or was onlined into ZONE_MOVABLE by hotplug; the struct page records
//! it. ZONE_DEVICE pages are whatever a device pagemap covers, wherever it lies. Every node has the whole zone array
//! (empty where it has no such memory). Each [`Zone`] owns its buddy free lists behind its lock,
//! a page list per CPU, its watermarks and `lowmem_reserve`, its NUMA event counters, and the Linux
//! counters: spanned = end − start; present = spanned − holes; managed = present − reserved.
//! ZONE_DEVICE only ever grows its span: its pages are present in no zone's count (Linux).

use alloc::vec::Vec;
use core::sync::atomic::AtomicU64;
use core::sync::atomic::Ordering::Relaxed;

use crate::buddy::{FreeAreas, ZoneSpan};
use crate::pageblock::MigrateType;
use crate::pcp::PerCpuPageset;
use crate::sparse::Sparse;
use crate::sync::Mutex;
use crate::watermark::Watermarks;

/// First pfn above ZONE_DMA (16 MiB).
pub const MAX_DMA_PFN: u64 = (16 << 20) >> crate::PAGE_SHIFT;
/// First pfn above ZONE_DMA32 (4 GiB).
pub const MAX_DMA32_PFN: u64 = (4 << 30) >> crate::PAGE_SHIFT;
/// Number of zones (x86_64 Linux with ZONE_DEVICE: `MAX_NR_ZONES` = 5).
pub const MAX_NR_ZONES: usize = 5;

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
    /// Memory only movable allocations may use (ZONE_MOVABLE), so that it can be offlined:
    /// carved out of the top of each node's highest zone at boot, or hot-added memory
    /// onlined as movable.
    Movable = 3,
    /// Device memory (ZONE_DEVICE): never in the buddy allocator.
    Device = 4,
}

impl ZoneId {
    /// All zones in index order.
    pub const ALL: [ZoneId; MAX_NR_ZONES] = [
        Self::Dma,
        Self::Dma32,
        Self::Normal,
        Self::Movable,
        Self::Device,
    ];
    /// The zones that hold RAM managed by the buddy allocator.
    pub const RAM: [ZoneId; 4] = [Self::Dma, Self::Dma32, Self::Normal, Self::Movable];
    /// The zones an address alone decides (every RAM zone but Movable).
    pub const BY_ADDRESS: [ZoneId; 3] = [Self::Dma, Self::Dma32, Self::Normal];

    /// Zone of a stored index (values above 4 cannot be stored by this crate; they read as
    /// Device so that a corrupted page is never treated as RAM).
    #[inline]
    pub const fn from_index(i: u8) -> Self {
        match i {
            0 => Self::Dma,
            1 => Self::Dma32,
            2 => Self::Normal,
            3 => Self::Movable,
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
            Self::Movable => "Movable",
            Self::Device => "Device",
        }
    }

    /// The RAM zone a pfn falls into by address alone (never Movable).
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

    /// The address window `[lo, hi)` (pfns) of a zone an address decides; Movable and Device
    /// have none (they can be anywhere).
    pub const fn window(self) -> Option<(u64, u64)> {
        match self {
            Self::Dma => Some((0, MAX_DMA_PFN)),
            Self::Dma32 => Some((MAX_DMA_PFN, MAX_DMA32_PFN)),
            Self::Normal => Some((MAX_DMA32_PFN, crate::MAX_PFN_LIMIT)),
            Self::Movable | Self::Device => None,
        }
    }

    /// First pfn after `pfn` where the RAM zone changes (a zone boundary), capped at `end`.
    #[inline]
    pub const fn next_boundary(pfn: u64, end: u64) -> u64 {
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

/// Per-zone NUMA allocation events (Linux's `numa_stat_item`), shown per node as
/// `/sys/devices/system/node/nodeN/numastat` and per zone in `/proc/zoneinfo`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NumaStat {
    /// Allocations from this zone's node that wanted this node (`numa_hit`).
    pub hit: u64,
    /// Allocations from this node that wanted another one (`numa_miss`).
    pub miss: u64,
    /// Allocations that wanted this node and were served by another (`numa_foreign`).
    pub foreign: u64,
    /// Interleaved allocations that got the node the interleave chose (`interleave_hit`).
    pub interleave_hit: u64,
    /// Allocations made by a CPU of this node (`local_node`).
    pub local: u64,
    /// Allocations made by a CPU of another node (`other_node`).
    pub other: u64,
}

impl NumaStat {
    /// The counters under their sysfs / numastat names, in numastat's order.
    pub fn named(&self) -> [(&'static str, u64); 6] {
        [
            ("numa_hit", self.hit),
            ("numa_miss", self.miss),
            ("numa_foreign", self.foreign),
            ("interleave_hit", self.interleave_hit),
            ("local_node", self.local),
            ("other_node", self.other),
        ]
    }

    /// Field-wise sum.
    pub fn add(&mut self, o: &NumaStat) {
        self.hit += o.hit;
        self.miss += o.miss;
        self.foreign += o.foreign;
        self.interleave_hit += o.interleave_hit;
        self.local += o.local;
        self.other += o.other;
    }
}

/// One memory zone (`struct zone`) of one node.
///
/// The span, present and managed counts, watermarks and `lowmem_reserve` change only while
/// the memory manager is held exclusively (boot, hotplug, memremap). The free lists are behind
/// the zone's lock; `NR_FREE_PAGES` is written under that lock and read without it by the
/// watermark check. Each possible CPU has its own [`PerCpuPageset`] (page list and NUMA
/// counters).
#[derive(Debug)]
pub struct Zone {
    pub(crate) id: ZoneId,
    /// The node (`zone_to_nid`).
    pub(crate) node: u8,
    pub(crate) start_pfn: u64,
    pub(crate) spanned: u64,
    pub(crate) present: u64,
    pub(crate) managed: u64,
    /// `NR_FREE_PAGES`: pages in the buddy free lists (not those on per-CPU lists).
    pub(crate) free: AtomicU64,
    pub(crate) wmark: Watermarks,
    /// Pages kept free for allocations that could have used a higher zone
    /// (`lowmem_reserve[highest allowed zone]`).
    pub(crate) lowmem_reserve: [u64; MAX_NR_ZONES],
    /// The zone lock (`zone->lock`) and the free lists it protects.
    pub(crate) areas: Mutex<FreeAreas>,
    /// One per possible CPU (`zone->per_cpu_pageset`, `zone->per_cpu_zonestats`).
    pub(crate) pagesets: Vec<PerCpuPageset>,
    /// `pageset_high` / `pageset_batch`: what every CPU's list uses.
    pub(crate) pcp_high: u32,
    pub(crate) pcp_batch: u32,
    /// `vm stats threshold` (Linux's `calculate_normal_threshold`).
    pub(crate) stat_threshold: u32,
    /// `nr_isolate_pageblock`: Isolate pageblocks (changed under the zone lock; the free
    /// path reads it to know whether a per-CPU page's list type may be stale).
    pub(crate) nr_isolate_pageblock: AtomicU64,
    /// `nr_reserved_highatomic`: pages in HighAtomic pageblocks (zone lock).
    pub(crate) nr_reserved_highatomic: AtomicU64,
    /// `page_group_by_mobility_disabled`: too little memory to group by mobility (every
    /// fallback may steal its pageblock).
    pub(crate) mobility_disabled: bool,
}

impl Zone {
    pub(crate) fn new(id: ZoneId, node: u8) -> Self {
        Self {
            id,
            node,
            start_pfn: 0,
            spanned: 0,
            present: 0,
            managed: 0,
            free: AtomicU64::new(0),
            wmark: Watermarks::default(),
            lowmem_reserve: [0; MAX_NR_ZONES],
            areas: Mutex::new(FreeAreas::new()),
            pagesets: Vec::new(),
            pcp_high: 0,
            pcp_batch: 1,
            stat_threshold: 0,
            nr_isolate_pageblock: AtomicU64::new(0),
            nr_reserved_highatomic: AtomicU64::new(0),
            mobility_disabled: false,
        }
    }

    /// The zone's span, index and node, as the free lists' pageblock moves need them.
    #[inline]
    pub(crate) fn buddy_span(&self) -> ZoneSpan {
        ZoneSpan {
            start: self.start_pfn,
            end: self.end_pfn(),
            zone: self.id as u8,
            node: self.node,
        }
    }

    /// `has_isolate_pageblock`.
    #[inline]
    pub(crate) fn has_isolate_pageblock(&self) -> bool {
        self.nr_isolate_pageblock.load(Relaxed) != 0
    }

    /// `__rmqueue` (with `rmqueue_buddy`'s HighAtomic first for `harder` high-order
    /// requests): a block of `order` for migratetype `mt` from the free lists, under the zone
    /// lock held as `areas`; `NR_FREE_PAGES` drops by its size.
    #[inline]
    pub(crate) fn rmqueue_locked(
        &self,
        areas: &mut FreeAreas,
        sparse: &Sparse,
        order: u32,
        mt: MigrateType,
        harder: bool,
    ) -> Option<u64> {
        let mut pfn = None;
        if order > 0 && harder {
            pfn = areas.rmqueue_smallest(sparse, order, MigrateType::HighAtomic);
        }
        while pfn.is_none() {
            pfn = areas.rmqueue_smallest(sparse, order, mt);
            if pfn.is_none()
                && !areas.rmqueue_fallback(
                    sparse,
                    order,
                    mt,
                    self.buddy_span(),
                    self.mobility_disabled,
                )
            {
                return None;
            }
        }
        self.sub_free(1 << order);
        pfn
    }

    /// `__free_one_page` onto this zone's lists of `mt`, under the zone lock held as
    /// `areas`. Isolated pages are not free pages (`__mod_zone_freepage_state` skips them).
    #[inline]
    pub(crate) fn free_one_locked(
        &self,
        areas: &mut FreeAreas,
        sparse: &Sparse,
        pfn: u64,
        order: u32,
        mt: MigrateType,
    ) {
        areas.free_one(sparse, pfn, order, self.id as u8, self.node, mt);
        if mt != MigrateType::Isolate {
            self.add_free(1 << order);
        }
    }

    /// `NR_FREE_PAGES` += `n` (zone lock held: a load and a store).
    #[inline]
    pub(crate) fn add_free(&self, n: u64) {
        self.free
            .store(self.free.load(Relaxed).wrapping_add(n), Relaxed);
    }

    /// `NR_FREE_PAGES` -= `n` (zone lock held).
    #[inline]
    pub(crate) fn sub_free(&self, n: u64) {
        self.free
            .store(self.free.load(Relaxed).wrapping_sub(n), Relaxed);
    }

    /// `NR_FREE_PAGES`, read without the lock (`zone_page_state`).
    #[inline]
    pub(crate) fn nr_free_buddy(&self) -> u64 {
        self.free.load(Relaxed)
    }

    /// Give every possible CPU its pageset, `nr_cpus` of them (`setup_zone_pageset`).
    pub(crate) fn setup_pagesets(&mut self, nr_cpus: usize) {
        let (high, batch) = (self.pcp_high, self.pcp_batch);
        self.pagesets = (0..nr_cpus.max(1))
            .map(|_| PerCpuPageset::new(high, batch))
            .collect();
    }

    /// `zone_set_high_and_batch` for `node_cpus` CPUs on the zone's node and `online` CPUs.
    /// The memory manager is held exclusively, so every list can be updated in place.
    pub(crate) fn set_high_and_batch(&mut self, node_cpus: usize, online: usize) {
        let batch = crate::pcp::zone_batchsize(self.managed);
        let high = crate::pcp::zone_highsize(self.wmark.low, batch, node_cpus, online);
        self.pcp_high = high;
        self.pcp_batch = batch;
        self.stat_threshold = crate::pcp::stat_threshold(self.managed, online);
        for ps in &mut self.pagesets {
            let pcp = ps.pcp.get_mut();
            pcp.high = high;
            pcp.batch = batch;
        }
    }

    /// The pageset of `cpu` (CPU 0's for a number beyond the possible CPUs).
    #[inline]
    pub(crate) fn pageset(&self, cpu: usize) -> Option<&PerCpuPageset> {
        self.pagesets.get(cpu).or_else(|| self.pagesets.first())
    }

    /// Which zone this is.
    pub fn id(&self) -> ZoneId {
        self.id
    }
    /// The node this zone belongs to (`zone_to_nid`).
    pub fn nid(&self) -> usize {
        usize::from(self.node)
    }
    /// `lowmem_reserve`: per highest allowed zone of an allocation, the pages this zone keeps
    /// back from it (the `protection:` line of /proc/zoneinfo).
    pub fn lowmem_reserve(&self) -> [u64; MAX_NR_ZONES] {
        self.lowmem_reserve
    }
    /// The zone's NUMA allocation events, its CPUs' counters summed.
    pub fn numa_stat(&self) -> NumaStat {
        let mut s = NumaStat::default();
        for ps in &self.pagesets {
            s.add(&ps.numa.read());
        }
        s
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
    /// Free pages, including those on the per-CPU lists.
    pub fn free_pages(&self) -> u64 {
        self.nr_free_buddy() + self.pcp_count()
    }
    /// `NR_FREE_PAGES` as Linux counts it: free pages in the buddy free lists only.
    pub fn nr_free_pages(&self) -> u64 {
        self.nr_free_buddy()
    }
    /// Free pages held on the per-CPU lists of all CPUs.
    pub fn pcp_count(&self) -> u64 {
        self.pagesets
            .iter()
            .map(|ps| u64::from(ps.pcp.lock().count))
            .sum()
    }
    /// One CPU's list: `(count, high, batch)`; None for a CPU beyond the possible ones.
    pub fn pageset_info(&self, cpu: usize) -> Option<(u32, u32, u32)> {
        let p = self.pagesets.get(cpu)?.pcp.lock();
        Some((p.count, p.high, p.batch))
    }
    /// `vm stats threshold` of /proc/zoneinfo (Linux's `calculate_normal_threshold`).
    pub fn stat_threshold(&self) -> u32 {
        self.stat_threshold
    }
    /// Number of free blocks of `order` in the buddy free lists (`free_area[order].nr_free`).
    pub fn nr_free(&self, order: u32) -> u64 {
        self.areas.lock().area[order as usize].nr_free
    }
    /// The min / low / high watermarks (pages).
    pub fn watermarks(&self) -> Watermarks {
        self.wmark
    }
    /// `populated_zone`: the zone has present pages (never ZONE_DEVICE).
    pub fn is_populated(&self) -> bool {
        self.present != 0
    }
    /// `managed_zone`: the buddy allocator manages pages of this zone (zonelists hold these).
    pub fn is_managed(&self) -> bool {
        self.managed != 0
    }
    /// Whether `pfn` lies in the zone's span.
    pub fn spans(&self, pfn: u64) -> bool {
        pfn >= self.start_pfn && pfn < self.end_pfn()
    }

    /// Set the span to `[start, end)` (`(0, 0)`: empty), for `shrink_zone_span`.
    pub(crate) fn set_span(&mut self, start: u64, end: u64) {
        self.start_pfn = start;
        self.spanned = end.saturating_sub(start);
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
    fn span_grows_both_ways() {
        let mut z = Zone::new(ZoneId::Normal, 0);
        z.extend_span(100, 200);
        z.extend_span(300, 400);
        assert_eq!((z.start_pfn(), z.spanned()), (100, 300));
        z.extend_span(50, 60);
        assert_eq!((z.start_pfn(), z.end_pfn()), (50, 400));
        z.extend_span(10, 10);
        assert_eq!(z.start_pfn(), 50);
    }
}
