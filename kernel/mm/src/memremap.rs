//! ZONE_DEVICE: device pagemaps (`memremap_pages`), with the memmap optionally stored on the
//! device itself (`vmem_altmap`).
//!
//! A device range gets struct pages but is never onlined: every page is put in the Device zone
//! of the range's node (Linux's `target_node`), reserved, with refcount 1 and its pagemap
//! index, and never enters a free list. As in Linux, only the Device zone's span grows: its
//! present and managed counts stay 0, so the zone is never "populated" (no buddyinfo row).
//! Registering device memory moves neither `max_pfn` nor any RAM zone's span. Device page lifetime
//! (`get_page` / `put_page`, the `page_free` callback) is in [`page_ref`](crate::page_ref).

use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::AtomicU64;

use crate::gfp::Gfp;
use crate::machine::Machine;
use crate::memunmap::PagemapRef;
use crate::page::{Page, PageFlags};
use crate::platform::{MapError, Platform};
use crate::section_remove::HoleRuns;
use crate::sparse::{
    MEMMAP_BYTES_PER_SECTION, MemmapOrigin, PAGES_PER_SECTION, SparseError, pfn_to_section_nr,
    section_nr_to_pfn,
};
use crate::zone::ZoneId;
use crate::{MAX_PHYSMEM_BITS, PAGE_SIZE, pfn_down, pfn_phys};

/// Called when a device page's reference count falls back to 1 (`dev_pagemap_ops.page_free`):
/// `(pagemap index, pfn)`.
pub type PageFreeFn = fn(usize, u64);

/// Device ranges larger than this get their memmap on the device by default (1 GiB).
pub const ALTMAP_DEFAULT_THRESHOLD: u64 = 1 << 30;

/// Buddy order of one section's memmap when it is allocated from RAM (1 MiB).
pub(crate) const SECTION_MEMMAP_ORDER: u32 =
    (MEMMAP_BYTES_PER_SECTION / PAGE_SIZE).trailing_zeros();

/// Options of [`Machine::memremap_pages`].
#[derive(Clone, Copy, Debug)]
pub struct MemremapOptions {
    /// Store the struct pages at the start of the range itself (`vmem_altmap`).
    pub altmap: bool,
    /// Callback run when a device page becomes idle again.
    pub page_free: Option<PageFreeFn>,
    /// The node whose ZONE_DEVICE gets the pages (Linux's `pgmap` nid / `target_node`); the
    /// memmap, when it is not on the device, is allocated near it.
    pub nid: usize,
}

impl MemremapOptions {
    /// Defaults for a range of `size` bytes: altmap on for ranges over 1 GiB, no callback,
    /// node 0.
    pub fn new(size: u64) -> Self {
        Self {
            altmap: size > ALTMAP_DEFAULT_THRESHOLD,
            page_free: None,
            nid: 0,
        }
    }

    /// The node of the range.
    pub fn node(mut self, nid: usize) -> Self {
        self.nid = nid;
        self
    }

    /// Force altmap on or off.
    pub fn altmap(mut self, on: bool) -> Self {
        self.altmap = on;
        self
    }

    /// Set the `page_free` callback.
    pub fn page_free(mut self, f: PageFreeFn) -> Self {
        self.page_free = Some(f);
        self
    }
}

/// A registered device range (`struct dev_pagemap`).
#[derive(Debug)]
pub struct Pagemap {
    pub(crate) start: u64,
    pub(crate) end: u64,
    pub(crate) altmap_pages: u64,
    pub(crate) memmap_ram_bytes: u64,
    pub(crate) page_free: Option<PageFreeFn>,
    pub(crate) page_free_calls: AtomicU64,
    pub(crate) nid: usize,
    /// The struct pages the range had in sections present before it (put back by
    /// memunmap_pages).
    pub(crate) holes: HoleRuns,
    /// The reference count ([`PagemapRef`]): one per pinned page.
    pub(crate) refs: PagemapRef,
}

impl Pagemap {
    /// The node whose ZONE_DEVICE holds the range.
    pub fn nid(&self) -> usize {
        self.nid
    }
    /// Physical range `[start, end)`.
    pub fn range(&self) -> (u64, u64) {
        (self.start, self.end)
    }
    /// First pfn.
    pub fn start_pfn(&self) -> u64 {
        pfn_down(self.start)
    }
    /// One past the last pfn.
    pub fn end_pfn(&self) -> u64 {
        pfn_down(self.end)
    }
    /// Pages at the start of the range that hold struct pages (altmap), 0 without altmap.
    pub fn altmap_pages(&self) -> u64 {
        self.altmap_pages
    }
    /// Bytes of this range's memmap that live in RAM (without altmap).
    pub fn memmap_ram_bytes(&self) -> u64 {
        self.memmap_ram_bytes
    }
    /// How many times `page_free` ran (or would have run, without a callback).
    pub fn page_free_calls(&self) -> u64 {
        self.page_free_calls
            .load(core::sync::atomic::Ordering::Relaxed)
    }
    /// The pagemap's reference count (pinned pages, teardown started).
    pub fn refs(&self) -> &PagemapRef {
        &self.refs
    }
    pub(crate) fn intersects(&self, start: u64, end: u64) -> bool {
        self.start < end && start < self.end
    }
}

/// Why a device range or a hot-added range was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemremapError {
    /// Zero-sized range.
    Empty,
    /// Start or size not page-aligned.
    Misaligned,
    /// The range goes beyond the 52-bit physical address space.
    OutOfRange,
    /// The range intersects System RAM `[start, end)`.
    IntersectsRam {
        /// RAM region start.
        start: u64,
        /// RAM region end.
        end: u64,
    },
    /// The range intersects an existing pagemap.
    IntersectsPagemap {
        /// Index of that pagemap.
        index: usize,
    },
    /// The platform could not map the range or its memmap.
    Map(MapError),
    /// No memory for the memmap.
    NoMemmap,
    /// The section table refused.
    Sparse(SparseError),
    /// The node does not exist.
    BadNode {
        /// The node id given.
        nid: usize,
    },
    /// Every pagemap index is in use.
    TooManyPagemaps,
}

impl fmt::Display for MemremapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("empty range"),
            Self::Misaligned => f.write_str("range not page-aligned"),
            Self::OutOfRange => f.write_str("range beyond the 52-bit physical address space"),
            Self::IntersectsRam { start, end } => write!(
                f,
                "range intersects System RAM [mem {:#018x}-{:#018x}]",
                start,
                end - 1
            ),
            Self::IntersectsPagemap { index } => {
                write!(f, "range intersects device pagemap {index}")
            }
            Self::Map(e) => write!(f, "mapping failed: {e}"),
            Self::NoMemmap => f.write_str("no memory for the memmap"),
            Self::Sparse(e) => write!(f, "{e}"),
            Self::BadNode { nid } => write!(f, "node {nid} does not exist"),
            Self::TooManyPagemaps => f.write_str("too many device pagemaps"),
        }
    }
}

/// Validate `[start, start + size)`: page-aligned, non-empty, below 2^52, not RAM, not another
/// pagemap. Returns the end.
pub(crate) fn check_new_range<P: Platform>(
    node: &Machine<P>,
    start: u64,
    size: u64,
    nid: usize,
) -> Result<u64, MemremapError> {
    if nid >= node.nodes.len() {
        return Err(MemremapError::BadNode { nid });
    }
    if size == 0 {
        return Err(MemremapError::Empty);
    }
    if !start.is_multiple_of(PAGE_SIZE) || !size.is_multiple_of(PAGE_SIZE) {
        return Err(MemremapError::Misaligned);
    }
    let end = start
        .checked_add(size)
        .filter(|&e| e <= 1 << MAX_PHYSMEM_BITS)
        .ok_or(MemremapError::OutOfRange)?;
    if let Some(r) = node
        .memblock
        .memory()
        .regions()
        .iter()
        .find(|r| r.base < end && start < r.end())
    {
        return Err(MemremapError::IntersectsRam {
            start: r.base,
            end: r.end(),
        });
    }
    if let Some(index) = node.pagemaps.iter().position(|p| p.intersects(start, end)) {
        return Err(MemremapError::IntersectsPagemap { index });
    }
    Ok(end)
}

/// Where the memmap of new sections comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MemmapSource {
    /// From the start of the range being added (altmap / memmap on memory).
    InRange,
    /// One 1 MiB block per section from the buddy allocator.
    Buddy,
}

/// Result of [`add_sections`].
pub(crate) struct AddedSections {
    /// Pages at the start of the range used for memmap storage.
    pub(crate) in_range_pages: u64,
    /// Bytes of memmap allocated from the buddy allocator.
    pub(crate) buddy_bytes: u64,
}

/// `sparse_add_section` for every absent section touched by `[spfn, epfn)`: memmap storage
/// from `source` (falling back to the buddy allocator, near node `nid`, when the range is too
/// small), the new sections' pages initialised as holes of node `nid`. The range itself is
/// initialised by the caller. A failure (no memory, the platform refusing storage) removes
/// the sections added so far and gives their storage back: nothing changed.
pub(crate) fn add_sections<P: Platform>(
    node: &mut Machine<P>,
    spfn: u64,
    epfn: u64,
    source: MemmapSource,
    nid: usize,
) -> Result<AddedSections, MemremapError> {
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for nr in pfn_to_section_nr(spfn)..=pfn_to_section_nr(epfn - 1) {
        if node.sparse.section_present(nr) {
            continue;
        }
        match runs.last_mut() {
            Some(r) if r.1 == nr => r.1 = nr + 1,
            _ => runs.push((nr, nr + 1)),
        }
    }
    let missing: u64 = runs.iter().map(|r| r.1 - r.0).sum();
    let need_pages = missing * MEMMAP_BYTES_PER_SECTION / PAGE_SIZE;
    let mut out = AddedSections {
        in_range_pages: 0,
        buddy_bytes: 0,
    };
    if missing == 0 {
        return Ok(out);
    }
    // Runs made present so far, for the rollback.
    let mut done: Vec<(u64, u64)> = Vec::new();
    if source == MemmapSource::InRange && need_pages < epfn - spfn {
        let mut pa = pfn_phys(spfn);
        for &(first, end) in &runs {
            let count = ((end - first) * PAGES_PER_SECTION) as usize;
            let added = node
                .platform
                .memmap_storage(pa, count)
                .map_err(MemremapError::Map)
                .and_then(|pages| add_chunk(node, first, pages, MemmapOrigin::InRange { pa }, nid));
            if let Err(e) = added {
                undo_sections(node, &done);
                return Err(e);
            }
            done.push((first, end));
            pa += (end - first) * MEMMAP_BYTES_PER_SECTION;
        }
        out.in_range_pages = need_pages;
        return Ok(out);
    }
    if source == MemmapSource::InRange {
        log::warn!(
            "memmap does not fit in [mem {:#x}-{:#x}]: using RAM",
            pfn_phys(spfn),
            pfn_phys(epfn) - 1
        );
    }
    // Every block is allocated before any becomes storage, so running out of memory changes
    // nothing.
    let mut blocks: Vec<(u64, u64)> = Vec::with_capacity(missing as usize);
    for &(first, end) in &runs {
        for nr in first..end {
            match node.alloc_pages_node(nid, Gfp::KERNEL | Gfp::NOWARN, SECTION_MEMMAP_ORDER) {
                Some(pfn) => blocks.push((nr, pfn)),
                None => {
                    for (_, pfn) in blocks {
                        let _ = node.free_pages(pfn, SECTION_MEMMAP_ORDER);
                    }
                    return Err(MemremapError::NoMemmap);
                }
            }
        }
    }
    // If the platform then refuses a block's storage, the sections added so far are removed
    // again (their blocks freed) and the blocks not used yet are freed.
    let mut blocks = blocks.into_iter();
    let mut result = Ok(());
    for (nr, pfn) in blocks.by_ref() {
        let pa = pfn_phys(pfn);
        let added = node
            .platform
            .memmap_storage(pa, PAGES_PER_SECTION as usize)
            .map_err(MemremapError::Map)
            .and_then(|pages| add_chunk(node, nr, pages, MemmapOrigin::Buddy { pa }, nid));
        if let Err(e) = added {
            let _ = node.free_pages(pfn, SECTION_MEMMAP_ORDER);
            result = Err(e);
            break;
        }
        done.push((nr, nr + 1));
        node.mark_memmap(pfn, 1 << SECTION_MEMMAP_ORDER);
        node.memmap_ram_bytes += MEMMAP_BYTES_PER_SECTION;
        out.buddy_bytes += MEMMAP_BYTES_PER_SECTION;
    }
    for (_, pfn) in blocks {
        let _ = node.free_pages(pfn, SECTION_MEMMAP_ORDER);
    }
    if result.is_err() {
        undo_sections(node, &done);
    }
    result.map(|()| out)
}

/// Remove the section runs a failed [`add_sections`] made present, giving their storage back.
fn undo_sections<P: Platform>(node: &mut Machine<P>, runs: &[(u64, u64)]) {
    match node.detach_sections(runs) {
        Ok(d) => {
            node.release_sections(d);
        }
        Err(e) => log::error!("memmap: sections added before a failure not removed: {e}"),
    }
}

/// Add one chunk of sections and initialise its pages as holes of node `nid`. A refused
/// chunk's storage goes back to the platform.
fn add_chunk<P: Platform>(
    node: &mut Machine<P>,
    first: u64,
    pages: &'static mut [Page],
    origin: MemmapOrigin,
    nid: usize,
) -> Result<(), MemremapError> {
    let n = pages.len() as u64;
    let start = section_nr_to_pfn(first);
    if let Err((e, pages)) = node.sparse.add_chunk(start, pages, origin) {
        node.platform.release_memmap_storage(origin.pa(), pages);
        return Err(MemremapError::Sparse(e));
    }
    let zmp = &node.zone_movable.zone_movable_pfn;
    let mut pfn = start;
    while pfn < start + n {
        let next = crate::movable::next_boot_zone_boundary(zmp, nid, pfn, start + n)
            .min(section_nr_to_pfn(pfn_to_section_nr(pfn) + 1));
        let t = Page::new(
            PageFlags::RESERVED.union(PageFlags::HOLE),
            crate::movable::boot_zone(zmp, nid, pfn),
            nid as u8,
            pfn_to_section_nr(pfn) as u32,
        );
        if let Some(p) = node.sparse.pages_mut(pfn, next - pfn) {
            Page::fill(p, &t);
        }
        pfn = next;
    }
    Ok(())
}

/// Whether every page of `[spfn, epfn)` that already has a struct page is a hole
/// (absent sections are skipped whole).
pub(crate) fn only_holes<P: Platform>(node: &Machine<P>, spfn: u64, epfn: u64) -> bool {
    let mut pfn = spfn;
    while pfn < epfn {
        let next = epfn.min(section_nr_to_pfn(pfn_to_section_nr(pfn) + 1));
        if let Some(pages) = node.sparse.pages(pfn, next - pfn)
            && !pages.iter().all(|p| p.has(PageFlags::HOLE))
        {
            return false;
        }
        pfn = next;
    }
    true
}

/// Write `template` (with the right section number) to every struct page of `[spfn, epfn)`.
pub(crate) fn fill_range<P: Platform>(node: &mut Machine<P>, spfn: u64, epfn: u64, template: Page) {
    let mut pfn = spfn;
    while pfn < epfn {
        let next = epfn.min(section_nr_to_pfn(pfn_to_section_nr(pfn) + 1));
        if let Some(p) = node.sparse.pages_mut(pfn, next - pfn) {
            fill_pages(pfn, p, &template);
        }
        pfn = next;
    }
}

/// Write `template` to `pages` (the struct pages from `start_pfn` on), with each page's
/// section number. Pages for pfns at or past [`MAX_PFN_LIMIT`](crate::MAX_PFN_LIMIT) (which
/// cannot exist) are left as they are.
fn fill_pages(start_pfn: u64, pages: &mut [Page], template: &Page) {
    let mut pfn = start_pfn;
    let end = start_pfn
        .saturating_add(pages.len() as u64)
        .min(crate::MAX_PFN_LIMIT);
    while pfn < end {
        let next = end.min(section_nr_to_pfn(pfn_to_section_nr(pfn) + 1));
        let t = template.clone();
        t.set_section(pfn_to_section_nr(pfn) as u32);
        Page::fill(
            &mut pages[(pfn - start_pfn) as usize..(next - start_pfn) as usize],
            &t,
        );
        pfn = next;
    }
}

/// The struct page of an idle ZONE_DEVICE page of pagemap `index` on node `nid`: reserved,
/// Device zone, refcount 1 (`MEMMAP` too for the pages holding the altmap).
pub(crate) fn device_page(index: usize, memmap: bool, nid: usize) -> Page {
    let mut flags = PageFlags::RESERVED.union(PageFlags::DEVICE);
    if memmap {
        flags = flags.union(PageFlags::MEMMAP);
    }
    let t = Page::new(flags, ZoneId::Device, nid as u8, 0);
    t.set_refcount(1);
    t.set_pgmap_raw(u16::try_from(index + 1).unwrap_or(u16::MAX));
    t
}

/// Initialise `pages`, the struct pages of device pfns from `start_pfn` on, as idle device pages
/// of pagemap `index` on node `nid`, the first `altmap_pages` of them holding memmap. This is
/// the whole per-page cost of `memremap_pages`. Pfns at or past `MAX_PFN_LIMIT` are skipped.
pub fn memmap_init_device_pages(
    start_pfn: u64,
    pages: &mut [Page],
    index: usize,
    altmap_pages: u64,
    nid: usize,
) {
    let split = (altmap_pages as usize).min(pages.len());
    let (alt, rest) = pages.split_at_mut(split);
    fill_pages(start_pfn, alt, &device_page(index, true, nid));
    fill_pages(
        start_pfn.saturating_add(split as u64),
        rest,
        &device_page(index, false, nid),
    );
}

impl<P: Platform> Machine<P> {
    /// `memremap_pages`: register the device range `[start, start + size)` and give it struct
    /// pages in the ZONE_DEVICE of node `opts.nid`. Refused if it intersects System RAM or
    /// another pagemap, or names no node. The range is mapped with [`Platform::map_device`];
    /// with `opts.altmap` its memmap is stored in its first pages (accounted as memmap, still
    /// device pages), otherwise 1 MiB per section is taken from the buddy allocator, near the
    /// node. Returns the pagemap index.
    pub fn memremap_pages(
        &mut self,
        start: u64,
        size: u64,
        opts: MemremapOptions,
    ) -> Result<usize, MemremapError> {
        // Sections of deferred struct pages are not in the section table yet.
        self.finish_deferred_init();
        let nid = opts.nid;
        let end = check_new_range(self, start, size, nid)?;
        let (spfn, epfn) = (pfn_down(start), pfn_down(end));
        if !only_holes(self, spfn, epfn) {
            return Err(MemremapError::IntersectsRam { start, end });
        }
        let index = self.pagemaps.len();
        if u16::try_from(index + 1).is_err() {
            return Err(MemremapError::TooManyPagemaps);
        }
        self.platform
            .map_device(start, size)
            .map_err(MemremapError::Map)?;
        let source = if opts.altmap {
            MemmapSource::InRange
        } else {
            MemmapSource::Buddy
        };
        let holes = self.save_holes(spfn, epfn);
        let added = match add_sections(self, spfn, epfn, source, nid) {
            Ok(a) => a,
            Err(e) => {
                if let Err(u) = self.platform.unmap_range(start, size) {
                    log::error!(
                        "memremap: [mem {start:#018x}-{:#018x}] left mapped: {u}",
                        end - 1
                    );
                }
                return Err(e);
            }
        };
        let alt_end = spfn + added.in_range_pages;
        fill_range(self, spfn, alt_end, device_page(index, true, nid));
        fill_range(self, alt_end, epfn, device_page(index, false, nid));
        // memmap_init_zone_device: only the span grows (present and managed stay 0).
        self.zone_mut(nid, ZoneId::Device).extend_span(spfn, epfn);
        self.memmap_device_bytes += added.in_range_pages * PAGE_SIZE;
        self.pagemaps.push(Pagemap {
            start,
            end,
            altmap_pages: added.in_range_pages,
            memmap_ram_bytes: added.buddy_bytes,
            page_free: opts.page_free,
            page_free_calls: AtomicU64::new(0),
            nid,
            holes,
            refs: PagemapRef::new(),
        });
        self.debug_check();
        Ok(index)
    }

    /// The registered device pagemaps, by index.
    pub fn pagemaps(&self) -> &[Pagemap] {
        &self.pagemaps
    }

    /// The pagemap owning `pfn`, if it is a device page.
    pub fn pagemap_of(&self, pfn: u64) -> Option<&Pagemap> {
        self.pagemaps.get(self.page(pfn)?.pagemap()?)
    }
}
