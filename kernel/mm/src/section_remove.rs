//! Taking sections out of a machine (Linux's `sparse_remove_section` / `section_deactivate`):
//! which sections of a range may go, taking them out of the table, and giving their memmap
//! storage back. Shared by `memunmap_pages`, `remove_memory` and the rollback of a failed
//! `memremap_pages` / `add_memory`.
//!
//! Removal is two steps so that a platform call between them (unmapping the range) can still
//! fail without changing anything: [`Machine::detach_sections`] takes the sections out of the
//! table and holds their struct pages ([`Detached`]); then either
//! [`Machine::release_sections`] gives the storage back (buddy blocks freed, storage inside the
//! range simply dropped, both handed back to the platform) or [`Machine::reattach_sections`]
//! puts the sections back as they were.
//!
//! [`Machine::arch_remove_memory`] is the whole of it for a range (Linux's
//! `arch_remove_memory`: `__remove_pages`, then the kernel mapping removed).
//!
//! A section touched by the range stays when a page outside the range still needs it (boot
//! RAM, another pagemap, ...); the range's pages in it go back to the holes they were before
//! the range was added ([`HoleRuns`], saved then). Boot memmap (memblock storage) is never
//! removed here: it is refused with a clear error.

use alloc::vec::Vec;
use core::fmt;

use crate::machine::Machine;
use crate::memremap::SECTION_MEMMAP_ORDER;
use crate::page::{Page, PageFlags};
use crate::pfn_down;
use crate::platform::{MapError, Platform};
use crate::sparse::{
    MEMMAP_BYTES_PER_SECTION, MemmapOrigin, RemovedMemmap, SparseError, pfn_to_section_nr,
    section_nr_to_pfn,
};

/// Why a range's sections could not be removed (nothing changed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemoveError {
    /// The section table refused.
    Sparse(SparseError),
    /// The platform could not unmap the range.
    Map(MapError),
}

impl fmt::Display for RemoveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sparse(e) => write!(f, "{e}"),
            Self::Map(e) => write!(f, "unmapping failed: {e}"),
        }
    }
}

/// The struct pages a range had in sections that were present before it was added (holes),
/// as runs `(first pfn, end pfn, page)`, to put back when the range goes.
#[derive(Clone, Debug, Default)]
pub struct HoleRuns(Vec<(u64, u64, Page)>);

/// Whether two struct pages hold the same state (the list links and section aside).
fn same_state(a: &Page, b: &Page) -> bool {
    a.flag_bits() == b.flag_bits()
        && a.zone_and_node() == b.zone_and_node()
        && a.refcount() == b.refcount()
        && a.order() == b.order()
        && a.pgmap_raw() == b.pgmap_raw()
}

/// Sections taken out of the table, their struct pages still held.
#[derive(Debug)]
#[must_use = "release or reattach detached sections"]
pub(crate) struct Detached {
    removed: Vec<RemovedMemmap>,
}

/// What [`Machine::release_sections`] gave back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Released {
    /// Bytes of memmap in buddy blocks, freed to the buddy allocator.
    pub(crate) buddy_bytes: u64,
    /// Bytes of memmap that were stored in the removed range itself.
    pub(crate) in_range_bytes: u64,
}

impl<P: Platform> Machine<P> {
    /// Save the struct pages `[spfn, epfn)` has in present sections (before the range gets
    /// its own state).
    pub(crate) fn save_holes(&self, spfn: u64, epfn: u64) -> HoleRuns {
        let mut runs: Vec<(u64, u64, Page)> = Vec::new();
        let mut pfn = spfn;
        while pfn < epfn {
            let next = epfn.min(section_nr_to_pfn(pfn_to_section_nr(pfn) + 1));
            if let Some(pages) = self.sparse.pages(pfn, next - pfn) {
                for (i, p) in pages.iter().enumerate() {
                    match runs.last_mut() {
                        Some(r) if r.1 == pfn + i as u64 && same_state(&r.2, p) => r.1 += 1,
                        _ => runs.push((pfn + i as u64, pfn + i as u64 + 1, p.clone())),
                    }
                }
            }
            pfn = next;
        }
        HoleRuns(runs)
    }

    /// Make the struct pages of `[spfn, epfn)` that are still present holes again: the ones
    /// saved before the range was added as they were, the others as the holes of node `nid`
    /// that adding the range's own sections wrote.
    pub(crate) fn restore_holes(&mut self, holes: &HoleRuns, spfn: u64, epfn: u64, nid: usize) {
        let mut pfn = spfn;
        while pfn < epfn {
            let zmp = &self.zone_movable.zone_movable_pfn;
            let next = crate::movable::next_boot_zone_boundary(zmp, nid, pfn, epfn);
            let t = Page::new(
                PageFlags::RESERVED.union(PageFlags::HOLE),
                crate::movable::boot_zone(zmp, nid, pfn),
                nid as u8,
                0,
            );
            crate::memremap::fill_range(self, pfn, next, t);
            pfn = next;
        }
        for (s, e, t) in &holes.0 {
            crate::memremap::fill_range(self, *s, *e, t.clone());
        }
    }

    /// `arch_remove_memory` for `[start, start + size)` (page-aligned, mapped with
    /// `map_device` / `map_ram`): the sections only the range used are taken out of the table,
    /// the range is unmapped (every CPU's TLB flushed by the platform), then the sections'
    /// memmap storage is given back. Pages of the range in sections that stay are the
    /// caller's. On an error nothing changed.
    pub(crate) fn arch_remove_memory(
        &mut self,
        start: u64,
        size: u64,
    ) -> Result<Released, RemoveError> {
        let (spfn, epfn) = (pfn_down(start), pfn_down(start + size));
        let runs = self
            .removable_sections(spfn, epfn)
            .map_err(RemoveError::Sparse)?;
        let d = self.detach_sections(&runs).map_err(RemoveError::Sparse)?;
        if let Err(e) = self.platform.unmap_range(start, size) {
            self.reattach_sections(d);
            return Err(RemoveError::Map(e));
        }
        Ok(self.release_sections(d))
    }

    /// Section runs `[first, end)` touched by `[spfn, epfn)` that may go: every page of the
    /// section outside the range is a hole. Refused when a section that stays has its memmap
    /// stored inside the range (it would go with the range), or a section that would go has
    /// boot memmap.
    pub(crate) fn removable_sections(
        &self,
        spfn: u64,
        epfn: u64,
    ) -> Result<Vec<(u64, u64)>, SparseError> {
        let mut runs: Vec<(u64, u64)> = Vec::new();
        if spfn >= epfn {
            return Ok(runs);
        }
        let (start, end) = (crate::pfn_phys(spfn), crate::pfn_phys(epfn));
        for nr in pfn_to_section_nr(spfn)..=pfn_to_section_nr(epfn - 1) {
            let Some(origin) = self.sparse.memmap_origin(nr) else {
                continue;
            };
            let (s, e) = (section_nr_to_pfn(nr), section_nr_to_pfn(nr + 1));
            let outside_holes = |a: u64, b: u64| {
                a >= b
                    || self
                        .sparse
                        .pages(a, b - a)
                        .is_some_and(|p| p.iter().all(|p| p.has(PageFlags::HOLE)))
            };
            let goes = outside_holes(s, spfn.max(s)) && outside_holes(epfn.min(e), e);
            if !goes {
                if let MemmapOrigin::InRange { pa } = origin
                    && pa < end
                    && start <= pa
                {
                    return Err(SparseError::SharedMemmap(nr));
                }
                continue;
            }
            if let MemmapOrigin::Memblock { .. } = origin {
                return Err(SparseError::BootMemmap(nr));
            }
            match runs.last_mut() {
                Some(r) if r.1 == nr => r.1 = nr + 1,
                _ => runs.push((nr, nr + 1)),
            }
        }
        Ok(runs)
    }

    /// Take the section runs out of the table (all or, on an error, none).
    pub(crate) fn detach_sections(&mut self, runs: &[(u64, u64)]) -> Result<Detached, SparseError> {
        let mut d = Detached {
            removed: Vec::new(),
        };
        for &(first, end) in runs {
            match self
                .sparse
                .remove_sections(section_nr_to_pfn(first), section_nr_to_pfn(end))
            {
                Ok(mut r) => d.removed.append(&mut r),
                Err(e) => {
                    self.reattach_sections(d);
                    return Err(e);
                }
            }
        }
        Ok(d)
    }

    /// Undo [`detach_sections`](Self::detach_sections): the same struct pages back in the
    /// table (as one chunk per removed piece).
    pub(crate) fn reattach_sections(&mut self, d: Detached) {
        for r in d.removed {
            if let Err((e, _)) = self.sparse.add_chunk(r.start_pfn, r.pages, r.origin) {
                // The sections were just vacated and their chunk ids freed: cannot happen.
                log::error!(
                    "sparse: sections at pfn {:#x} not put back: {e}",
                    r.start_pfn
                );
            }
        }
    }

    /// Give the memmap storage of detached sections back: the platform takes the struct
    /// pages back, buddy blocks are freed into the buddy allocator (and no longer counted as
    /// memmap in RAM); storage inside the removed range needs nothing more.
    pub(crate) fn release_sections(&mut self, d: Detached) -> Released {
        let mut out = Released::default();
        let mut blocks = Vec::new();
        for r in d.removed {
            let bytes = r.pages.len() as u64 * core::mem::size_of::<crate::Page>() as u64;
            let origin = r.origin;
            self.platform.release_memmap_storage(origin.pa(), r.pages);
            match origin {
                MemmapOrigin::Buddy { pa } => {
                    out.buddy_bytes += bytes;
                    // One block per section (add_sections).
                    let mut b = pa;
                    while b < pa + bytes {
                        blocks.push(pfn_down(b));
                        b += MEMMAP_BYTES_PER_SECTION;
                    }
                }
                MemmapOrigin::InRange { .. } => out.in_range_bytes += bytes,
                MemmapOrigin::Memblock { .. } => {
                    // removable_sections refuses these; keep the storage reserved.
                    log::error!("sparse: boot memmap at {:#x} released", origin.pa());
                }
            }
        }
        self.free_memmap_blocks(&blocks);
        self.memmap_ram_bytes -= out.buddy_bytes;
        out
    }

    /// Free buddy blocks that held one section's memmap each.
    pub(crate) fn free_memmap_blocks(&mut self, blocks: &[u64]) {
        let n = 1u64 << SECTION_MEMMAP_ORDER;
        for &pfn in blocks {
            for p in pfn..pfn + n {
                if let Some(page) = self.sparse.page(p) {
                    page.clear(PageFlags::MEMMAP);
                }
            }
            if let Err(e) = self.free_pages(pfn, SECTION_MEMMAP_ORDER) {
                log::error!("memmap block at pfn {pfn:#x} not freed: {e}");
            }
        }
    }
}
