//! The node (`pg_data_t` of node 0): boot initialisation and the page allocator entry points.
//!
//! [`Node::init`] does what Linux's `sparse_init`, `free_area_init` and `memblock_free_all` do:
//! it gives every section that holds RAM a memmap allocated from memblock, initialises every
//! struct page in one pass (zone, reserved/hole state), sizes the zones, frees all free RAM into
//! the buddy allocator per max-order block, and computes the watermarks.

use alloc::vec::Vec;
use core::fmt;

use crate::gfp::Gfp;
use crate::hotplug::HotplugState;
use crate::memblock::{Memblock, Region};
use crate::memremap::Pagemap;
use crate::page::{Page, PageFlags};
use crate::platform::{MapError, Platform};
use crate::sparse::{
    MEMMAP_BYTES_PER_SECTION, PAGES_PER_SECTION, Sparse, SparseError, pfn_to_section_nr,
    section_nr_to_pfn,
};
use crate::zone::{MAX_NR_ZONES, Zone, ZoneId, zonelist};
use crate::{MAX_ORDER, MAX_PFN_LIMIT, PAGE_SIZE, buddy, pfn_down, pfn_up, watermark};

/// Why [`Node::init`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitError {
    /// memblock has no RAM.
    NoMemory,
    /// RAM beyond the 52-bit physical address space.
    OutOfRange,
    /// memblock could not provide memmap storage for a section.
    MemmapAlloc {
        /// The section that got no memmap.
        section: u64,
    },
    /// The platform refused the memmap storage.
    Map(MapError),
    /// The section table refused a chunk.
    Sparse(SparseError),
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoMemory => f.write_str("mm: no RAM registered in memblock"),
            Self::OutOfRange => f.write_str("mm: RAM beyond the 52-bit physical address space"),
            Self::MemmapAlloc { section } => {
                write!(f, "mm: no memory for the memmap of section {section}")
            }
            Self::Map(e) => write!(f, "mm: memmap storage: {e}"),
            Self::Sparse(e) => write!(f, "mm: {e}"),
        }
    }
}

/// What was wrong with a freed page (`bad_page` reasons).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadPageReason {
    /// No struct page for this pfn (hole, absent section, beyond 2^52).
    InvalidPfn,
    /// Order above [`MAX_ORDER`].
    OrderTooLarge,
    /// The page belongs to a device pagemap (ZONE_DEVICE).
    DevicePage,
    /// The page is reserved (firmware, kernel, memmap, hole, offline).
    Reserved,
    /// The page is already free (buddy list or page cache).
    AlreadyFree,
    /// The page heads an allocation of another order.
    WrongOrder {
        /// The order it was allocated with.
        allocated: u32,
    },
    /// The page is not the head of an allocated block.
    NotAllocated,
}

impl fmt::Display for BadPageReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidPfn => f.write_str("invalid pfn"),
            Self::OrderTooLarge => f.write_str("order too large"),
            Self::DevicePage => f.write_str("ZONE_DEVICE page freed to the buddy allocator"),
            Self::Reserved => f.write_str("reserved page"),
            Self::AlreadyFree => f.write_str("already free"),
            Self::WrongOrder { allocated } => write!(f, "wrong order (allocated as {allocated})"),
            Self::NotAllocated => f.write_str("not allocated"),
        }
    }
}

/// A refused free: the error value of [`Node::free_pages`]. Its `Display` is the log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadPage {
    /// The pfn passed in.
    pub pfn: u64,
    /// The order passed in.
    pub order: u32,
    /// What was wrong.
    pub reason: BadPageReason,
    /// The page's flags when it was refused (0 for an invalid pfn).
    pub flags: PageFlags,
}

impl fmt::Display for BadPage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bad page: pfn {:#x} order {}: {} (flags {})",
            self.pfn, self.order, self.reason, self.flags
        )
    }
}

/// Errors of [`Node::get_page`] / [`Node::put_page`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageRefError {
    /// No struct page for this pfn.
    InvalidPfn,
    /// The page is neither an allocated block head nor a device page.
    NotInUse,
    /// put_page on a device page whose count is already 1 (idle).
    IdleDevicePage,
    /// The reference count would overflow.
    Overflow,
}

impl fmt::Display for PageRefError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::InvalidPfn => "invalid pfn",
            Self::NotInUse => "page is not in use",
            Self::IdleDevicePage => "put_page on an idle device page",
            Self::Overflow => "reference count overflow",
        })
    }
}

/// Node 0: the whole memory manager. Generic over the [`Platform`].
pub struct Node<P: Platform> {
    pub(crate) platform: P,
    pub(crate) memblock: Memblock,
    pub(crate) sparse: Sparse,
    pub(crate) zones: [Zone; MAX_NR_ZONES],
    pub(crate) min_pfn: u64,
    pub(crate) max_pfn: u64,
    /// Bytes of memmap stored in RAM.
    pub(crate) memmap_ram_bytes: u64,
    /// Bytes of memmap stored on devices (altmap).
    pub(crate) memmap_device_bytes: u64,
    pub(crate) pagemaps: Vec<Pagemap>,
    pub(crate) hotplug: HotplugState<P>,
}

impl<P: Platform> fmt::Debug for Node<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("min_pfn", &self.min_pfn)
            .field("max_pfn", &self.max_pfn)
            .field("sparse", &self.sparse)
            .field("pagemaps", &self.pagemaps.len())
            .finish()
    }
}

/// Whether `pfn` is inside one of `regions` (with `round_in`: only pages entirely inside count,
/// as for RAM; otherwise any overlap counts, as for reservations) and the next pfn where that
/// answer may change.
fn classify(regions: &[Region], pfn: u64, round_in: bool) -> (bool, u64) {
    for r in regions {
        let (s, e) = if round_in {
            (pfn_up(r.base), pfn_down(r.end()))
        } else {
            (pfn_down(r.base), pfn_up(r.end()))
        };
        if s >= e {
            continue;
        }
        if pfn < s {
            return (false, s);
        }
        if pfn < e {
            return (true, e);
        }
    }
    (false, u64::MAX)
}

/// `memmap_init_range`: initialise the struct pages of `[start, end)` (inside one memmap
/// chunk) from memblock.
pub(crate) fn memmap_init_range(memblock: &Memblock, sparse: &mut Sparse, start: u64, end: u64) {
    if let Some(pages) = sparse.pages_mut(start, end - start) {
        memmap_init_pages(memblock, start, pages);
    }
}

/// Initialise `pages`, the struct pages of the pfns from `start_pfn` on, from memblock: zone by
/// address, holes `RESERVED|HOLE`, memblock reservations `RESERVED`, free RAM without state
/// flags. One `fill` per run of identical pages; this is the whole per-page cost of boot.
pub fn memmap_init_pages(memblock: &Memblock, start_pfn: u64, pages: &mut [Page]) {
    let (mem, res) = (memblock.memory().regions(), memblock.reserved().regions());
    let end = start_pfn + pages.len() as u64;
    let mut pfn = start_pfn;
    while pfn < end {
        let (in_mem, mem_next) = classify(mem, pfn, true);
        let (in_res, res_next) = classify(res, pfn, false);
        let sec_end = section_nr_to_pfn(pfn_to_section_nr(pfn) + 1);
        let next = ZoneId::next_boundary(pfn, end)
            .min(mem_next)
            .min(res_next)
            .min(sec_end);
        let flags = if !in_mem {
            PageFlags::RESERVED.union(PageFlags::HOLE)
        } else if in_res {
            PageFlags::RESERVED
        } else {
            PageFlags(0)
        };
        let template = Page::new(flags, ZoneId::for_pfn(pfn), pfn_to_section_nr(pfn) as u32);
        let (a, b) = ((pfn - start_pfn) as usize, (next - start_pfn) as usize);
        pages[a..b].fill(template);
        pfn = next;
    }
}

impl<P: Platform> Node<P> {
    /// Build the memmap, the zones and the buddy allocator from memblock, and free every free
    /// RAM page into the buddy allocator. The memmap is allocated from `memblock`, so it ends up
    /// reserved. Allocates a few KiB of heap (section tables).
    pub fn init(platform: P, memblock: Memblock) -> Result<Self, InitError> {
        let min_pfn = memblock.start_pfn();
        let max_pfn = memblock.end_pfn();
        if memblock.memory().regions().is_empty() || max_pfn <= min_pfn {
            return Err(InitError::NoMemory);
        }
        if max_pfn > MAX_PFN_LIMIT {
            return Err(InitError::OutOfRange);
        }
        let mut node = Self {
            platform,
            memblock,
            sparse: Sparse::new(),
            zones: ZoneId::ALL.map(Zone::new),
            min_pfn,
            max_pfn,
            memmap_ram_bytes: 0,
            memmap_device_bytes: 0,
            pagemaps: Vec::new(),
            hotplug: HotplugState::new(),
        };
        let memmap = node.sparse_init()?;
        node.free_area_init();
        for (pa, size) in memmap {
            node.mark_memmap(pfn_down(pa), size / PAGE_SIZE);
        }
        node.memblock_free_all();
        watermark::setup_per_zone_wmarks(&mut node.zones);
        Ok(node)
    }

    /// `sparse_init`: a memmap for every section that holds RAM, one memblock allocation per
    /// run of consecutive sections (per section if that fails). Returns the allocations.
    fn sparse_init(&mut self) -> Result<Vec<(u64, u64)>, InitError> {
        let mut runs: Vec<(u64, u64)> = Vec::new();
        for r in self.memblock.memory().regions() {
            let (s, e) = (pfn_up(r.base), pfn_down(r.end()));
            if s >= e {
                continue;
            }
            let (fs, ls) = (pfn_to_section_nr(s), pfn_to_section_nr(e - 1) + 1);
            match runs.last_mut() {
                Some(last) if last.1 >= fs => last.1 = last.1.max(ls),
                _ => runs.push((fs, ls)),
            }
        }
        let mut allocs = Vec::new();
        for (first, end) in runs {
            let nsec = end - first;
            if let Some(pa) = self
                .memblock
                .alloc(nsec * MEMMAP_BYTES_PER_SECTION, PAGE_SIZE)
            {
                self.add_memmap(first, nsec, pa)?;
                allocs.push((pa, nsec * MEMMAP_BYTES_PER_SECTION));
                continue;
            }
            for nr in first..end {
                let pa = self
                    .memblock
                    .alloc(MEMMAP_BYTES_PER_SECTION, PAGE_SIZE)
                    .ok_or(InitError::MemmapAlloc { section: nr })?;
                self.add_memmap(nr, 1, pa)?;
                allocs.push((pa, MEMMAP_BYTES_PER_SECTION));
            }
        }
        Ok(allocs)
    }

    fn add_memmap(&mut self, first: u64, nsec: u64, pa: u64) -> Result<(), InitError> {
        let count = (nsec * PAGES_PER_SECTION) as usize;
        let pages = self
            .platform
            .memmap_storage(pa, count)
            .map_err(InitError::Map)?;
        self.sparse
            .add_chunk(section_nr_to_pfn(first), pages)
            .map_err(InitError::Sparse)?;
        self.memmap_ram_bytes += nsec * MEMMAP_BYTES_PER_SECTION;
        Ok(())
    }

    /// `free_area_init` + `memmap_init`: zone spans and counters, and every struct page of
    /// every present section written once: holes reserved, memblock reservations reserved, free
    /// RAM left without state flags (it is freed by [`memblock_free_all`](Self::memblock_free_all)).
    fn free_area_init(&mut self) {
        for zid in ZoneId::RAM {
            let Some((lo, hi)) = zid.window() else {
                continue;
            };
            let zone = &mut self.zones[zid.index()];
            let (s, e) = (lo.max(self.min_pfn), hi.min(self.max_pfn));
            if s < e {
                zone.start_pfn = s;
                zone.spanned = e - s;
            }
            zone.present = self
                .memblock
                .memory()
                .regions()
                .iter()
                .map(|r| {
                    let (a, b) = (pfn_up(r.base).max(lo), pfn_down(r.end()).min(hi));
                    b.saturating_sub(a)
                })
                .sum();
        }
        let spans: Vec<(u64, u64)> = self.sparse.chunk_spans().collect();
        for (start, n) in spans {
            memmap_init_range(&self.memblock, &mut self.sparse, start, start + n);
        }
    }

    /// Flag the frames holding memmap storage.
    pub(crate) fn mark_memmap(&mut self, pfn: u64, n: u64) {
        for p in pfn..pfn + n {
            if let Some(page) = self.sparse.page_mut(p) {
                page.set(PageFlags::MEMMAP);
            }
        }
    }

    /// `memblock_free_all`: free every free memblock range into the buddy allocator, one
    /// naturally aligned block of up to 1024 pages at a time, never across a zone boundary.
    fn memblock_free_all(&mut self) {
        let ranges: Vec<(u64, u64)> = self.memblock.free_ranges().collect();
        for (s, e) in ranges {
            let (mut pfn, end) = (pfn_up(s), pfn_down(e));
            while pfn < end {
                let zend = ZoneId::next_boundary(pfn, end);
                let zid = ZoneId::for_pfn(pfn);
                let zone = &mut self.zones[zid.index()];
                while pfn < zend {
                    let order = buddy::max_block_order(pfn, zend);
                    zone.areas.free_one(&mut self.sparse, pfn, order, zid as u8);
                    zone.managed += 1 << order;
                    zone.free += 1 << order;
                    pfn += 1 << order;
                }
            }
        }
    }

    /// `__alloc_pages`: a block of `2^order` pages from the first zone of the zonelist that
    /// stays at or above its watermark floor. Returns the head pfn, or None (never panics).
    #[inline]
    pub fn alloc_pages(&mut self, gfp: Gfp, order: u32) -> Option<u64> {
        if order > MAX_ORDER {
            return None;
        }
        let need = 1u64 << order;
        for &zid in zonelist(gfp.high_zone()) {
            let zone = &mut self.zones[zid.index()];
            if zone.free < need + gfp.watermark_floor(zone.wmark.min) {
                continue;
            }
            let got = if order == 0 {
                rmqueue_pcplist(&mut self.sparse, zone)
            } else {
                zone.areas.rmqueue_smallest(&mut self.sparse, order)
            };
            let Some(pfn) = got else { continue };
            zone.free -= need;
            if let Some(page) = self.sparse.page_mut(pfn) {
                // prep_new_page
                page.flags = (page.flags & !PageFlags::PCP.0) | PageFlags::HEAD.0;
                page.order = order as u8;
                page.refcount = 1;
            }
            if gfp.contains(Gfp::ZERO) {
                self.platform.zero_pages(pfn, need);
            }
            self.debug_check();
            return Some(pfn);
        }
        if !gfp.contains(Gfp::NOWARN) {
            log::warn!("page allocation failure: order:{order}, mode:{:#x}", gfp.0);
        }
        None
    }

    /// `alloc_page`: one page.
    #[inline]
    pub fn alloc_page(&mut self, gfp: Gfp) -> Option<u64> {
        self.alloc_pages(gfp, 0)
    }

    /// `__free_pages`: give back a block allocated with `order`. Refuses (error value and a
    /// `bad page` log line, free lists untouched) a pfn without a struct page, a device page, a
    /// reserved page, a free page, a wrong order, or anything that is not an allocated head.
    #[inline]
    pub fn free_pages(&mut self, pfn: u64, order: u32) -> Result<(), BadPage> {
        let r = self.free_pages_inner(pfn, order);
        if let Err(bad) = &r {
            log::error!("{bad}");
        }
        self.debug_check();
        r
    }

    #[inline]
    fn free_pages_inner(&mut self, pfn: u64, order: u32) -> Result<(), BadPage> {
        let bad = |reason, flags| BadPage {
            pfn,
            order,
            reason,
            flags,
        };
        if order > MAX_ORDER {
            return Err(bad(BadPageReason::OrderTooLarge, PageFlags(0)));
        }
        let Some(page) = self.sparse.page_mut(pfn) else {
            return Err(bad(BadPageReason::InvalidPfn, PageFlags(0)));
        };
        let flags = page.flags();
        if page.flags & (PageFlags::HEAD.0 | PageFlags::DEVICE.0) != PageFlags::HEAD.0
            || u32::from(page.order) != order
            || page.zone >= ZoneId::Device as u8
        {
            let reason = if flags.contains(PageFlags::DEVICE) || page.zone >= ZoneId::Device as u8 {
                BadPageReason::DevicePage
            } else if flags.intersects(PageFlags::BUDDY.union(PageFlags::PCP)) {
                BadPageReason::AlreadyFree
            } else if flags.contains(PageFlags::RESERVED) {
                BadPageReason::Reserved
            } else if flags.contains(PageFlags::HEAD) {
                BadPageReason::WrongOrder {
                    allocated: page.order(),
                }
            } else {
                BadPageReason::NotAllocated
            };
            return Err(bad(reason, flags));
        }
        let zid = page.zone;
        page.refcount = 0;
        page.order = 0;
        let zone = &mut self.zones[zid as usize];
        if order == 0 {
            page.flags = (page.flags & !PageFlags::HEAD.0) | PageFlags::PCP.0;
            if zone.pcp.is_full() {
                drain_batch(&mut self.sparse, zone, crate::pcp::PCP_BATCH);
            }
            zone.pcp.push(pfn);
        } else {
            page.clear(PageFlags::HEAD);
            zone.areas.free_one(&mut self.sparse, pfn, order, zid);
        }
        zone.free += 1 << order;
        Ok(())
    }

    /// `free_page`: one page.
    #[inline]
    pub fn free_page(&mut self, pfn: u64) -> Result<(), BadPage> {
        self.free_pages(pfn, 0)
    }

    /// `drain_all_pages`: move every cached order-0 page back to the buddy free lists, so the
    /// free lists (and buddyinfo) show all free memory merged.
    pub fn drain_pages(&mut self) {
        for zone in self.zones.iter_mut() {
            drain_batch(&mut self.sparse, zone, crate::pcp::PCP_HIGH);
        }
    }

    /// Run the invariant checker after an operation (feature `debug-check`); panics with the
    /// inconsistency, as Linux's `VM_BUG_ON` would.
    #[inline]
    pub(crate) fn debug_check(&self) {
        #[cfg(feature = "debug-check")]
        if let Err(e) = self.check() {
            panic!("mm: {e}");
        }
    }

    /// The zones, in index order (DMA, DMA32, Normal, Device).
    pub fn zones(&self) -> &[Zone] {
        &self.zones
    }

    /// One zone.
    pub fn zone(&self, id: ZoneId) -> &Zone {
        &self.zones[id.index()]
    }

    /// One past the highest RAM pfn (`max_pfn`); device memory never moves it.
    pub fn max_pfn(&self) -> u64 {
        self.max_pfn
    }

    /// Lowest RAM pfn.
    pub fn min_pfn(&self) -> u64 {
        self.min_pfn
    }

    /// `pfn_valid`.
    #[inline]
    pub fn pfn_valid(&self, pfn: u64) -> bool {
        self.sparse.pfn_valid(pfn)
    }

    /// `pfn_to_page`.
    #[inline]
    pub fn page(&self, pfn: u64) -> Option<&Page> {
        self.sparse.page(pfn)
    }

    /// `page_to_pfn` for a struct page of this memmap.
    pub fn page_to_pfn(&self, page: &Page) -> Option<u64> {
        self.sparse.page_to_pfn(page)
    }

    /// The section table.
    pub fn sparse(&self) -> &Sparse {
        &self.sparse
    }

    /// memblock as left after boot (RAM regions, hot-added RAM included; reservations).
    pub fn memblock(&self) -> &Memblock {
        &self.memblock
    }

    /// The platform.
    pub fn platform(&self) -> &P {
        &self.platform
    }

    /// The platform, mutable.
    pub fn platform_mut(&mut self) -> &mut P {
        &mut self.platform
    }

    /// Free pages of all zones (`nr_free_pages`), page caches included.
    pub fn nr_free_pages(&self) -> u64 {
        self.zones.iter().map(|z| z.free).sum()
    }

    /// Managed pages of all zones (`totalram_pages`).
    pub fn totalram_pages(&self) -> u64 {
        self.zones.iter().map(|z| z.managed).sum()
    }

    /// Present RAM pages (`get_num_physpages`), Device excluded.
    pub fn physpages(&self) -> u64 {
        ZoneId::RAM
            .iter()
            .map(|z| self.zones[z.index()].present)
            .sum()
    }

    /// Bytes of memmap stored in RAM.
    pub fn memmap_ram_bytes(&self) -> u64 {
        self.memmap_ram_bytes
    }

    /// Bytes of memmap stored on device memory (altmap).
    pub fn memmap_device_bytes(&self) -> u64 {
        self.memmap_device_bytes
    }
}

/// `rmqueue_pcplist`: an order-0 page from the zone's cache, refilled from the free lists
/// when empty.
#[inline]
fn rmqueue_pcplist(sparse: &mut Sparse, zone: &mut Zone) -> Option<u64> {
    if zone.pcp.count == 0 {
        for _ in 0..crate::pcp::PCP_BATCH {
            let Some(pfn) = zone.areas.rmqueue_smallest(sparse, 0) else {
                break;
            };
            if let Some(p) = sparse.page_mut(pfn) {
                p.set(PageFlags::PCP);
            }
            zone.pcp.push(pfn);
        }
    }
    zone.pcp.pop()
}

/// `free_pcppages_bulk`: move up to `n` of the oldest cached pages to the free lists.
fn drain_batch(sparse: &mut Sparse, zone: &mut Zone, n: usize) {
    let Zone { pcp, areas, id, .. } = zone;
    let zid = *id as u8;
    pcp.take_oldest(n, |pfn| {
        if let Some(p) = sparse.page_mut(pfn) {
            p.clear(PageFlags::PCP);
        }
        areas.free_one(sparse, pfn, 0, zid);
    });
}
