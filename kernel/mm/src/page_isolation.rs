//! Isolation (Linux's mm/page_isolation.c): taking a pfn range away from the allocator
//! before its pages are moved out.
//!
//! **Pageblock isolation**, as Linux does it, for ranges taken while the allocator runs:
//! [`Machine::start_isolate_page_range`] makes every pageblock of the range Isolate and moves
//! its free blocks onto the Isolate free lists: they leave `NR_FREE_PAGES` and no allocation
//! can take them, and a block freed into the range later goes there too (the free path reads
//! the pageblock's type; the per-CPU drain re-reads it while a zone has isolated pageblocks).
//! [`Machine::test_pages_isolated`] says whether everything in the range is free and isolated
//! (or a hole); [`Machine::undo_isolate_page_range`] gives the pageblocks a type again and frees
//! their isolated blocks back, merging them with their buddies. Ranges are aligned to a
//! max-order block (1024 pages), so no free block straddles their ends.
//!
//! **Offline** ([`Machine::isolate_for_offline`]) first looks for an unmovable page in the
//! range (`has_unmovable_pages`): a reserved page that is not offline (firmware, kernel,
//! memmap storage of something else, pages a driver kept), a device page, or an allocated
//! block without a movable owner. If there is none, it isolates the memory block's
//! pageblocks as above; the movable blocks then migrate to memory outside (no allocation can
//! land inside), and on success the isolated free blocks leave the lists for good
//! ([`Machine::take_isolated_pages`]) and the pageblocks stop counting as isolated; on
//! failure the isolation is undone.
//! Pages the caller names as exempt (the range's own memmap, memmap on memory) are skipped.

use core::fmt;
use core::sync::atomic::Ordering::Relaxed;

use crate::machine::Machine;
use crate::page::PageFlags;
use crate::pageblock::{MigrateType, PAGEBLOCK_NR_PAGES};
use crate::platform::Platform;
use crate::zone::Zone;
use crate::{MAX_ORDER, MAX_PFN_LIMIT};

/// Why a range could not be isolated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IsolateError {
    /// The range is empty, beyond the physical address space or not aligned to 1024 pages.
    Misaligned {
        /// First pfn given.
        start_pfn: u64,
        /// End pfn given.
        end_pfn: u64,
    },
    /// A pageblock is isolated already (Linux's `-EBUSY`).
    Busy {
        /// Its first pfn.
        pfn: u64,
    },
    /// A pageblock holds device memory, which is never in the allocator.
    Device {
        /// Its first pfn.
        pfn: u64,
    },
}

impl fmt::Display for IsolateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Misaligned { start_pfn, end_pfn } => write!(
                f,
                "pfn range {start_pfn:#x}-{end_pfn:#x} is empty or not aligned to 1024 pages"
            ),
            Self::Busy { pfn } => write!(f, "pageblock at pfn {pfn:#x} is already isolated"),
            Self::Device { pfn } => write!(f, "pageblock at pfn {pfn:#x} is device memory"),
        }
    }
}

impl<P: Platform> Machine<P> {
    /// The zone of the pageblock starting at `pfn`: that of its first page that is not a hole
    /// (None: no struct page, or only holes). Device pages give `Err`.
    fn pageblock_zone(&self, pfn: u64) -> Result<Option<&Zone>, IsolateError> {
        for p in pfn..pfn + PAGEBLOCK_NR_PAGES {
            let Some(page) = self.sparse.page(p) else {
                return Ok(None);
            };
            if page.is_device() {
                return Err(IsolateError::Device { pfn });
            }
            if !page.has(PageFlags::HOLE) {
                let node = self.nodes.get(page.nid());
                return Ok(node.map(|n| &n.zones[page.zone().index()]));
            }
        }
        Ok(None)
    }

    /// `start_isolate_page_range`: isolate every pageblock of `[start_pfn, end_pfn)` (see the
    /// module documentation), then drain every CPU's lists so that their blocks of the range
    /// come back isolated. Pageblocks without struct pages or with only holes are skipped.
    /// On an error nothing is isolated.
    pub fn start_isolate_page_range(
        &self,
        start_pfn: u64,
        end_pfn: u64,
    ) -> Result<(), IsolateError> {
        const ALIGN: u64 = 1 << MAX_ORDER;
        if start_pfn >= end_pfn
            || end_pfn > MAX_PFN_LIMIT
            || !start_pfn.is_multiple_of(ALIGN)
            || !end_pfn.is_multiple_of(ALIGN)
        {
            return Err(IsolateError::Misaligned { start_pfn, end_pfn });
        }
        // Check first, so that a refusal changes nothing.
        let mut pfn = start_pfn;
        while pfn < end_pfn {
            if self.pageblock_zone(pfn)?.is_some()
                && self.sparse.pageblock_migratetype(pfn) == Some(MigrateType::Isolate)
            {
                return Err(IsolateError::Busy { pfn });
            }
            pfn += PAGEBLOCK_NR_PAGES;
        }
        let mut pfn = start_pfn;
        while pfn < end_pfn {
            if let (Ok(Some(zone)), Some(block)) =
                (self.pageblock_zone(pfn), self.sparse.pageblock(pfn))
            {
                let mut areas = zone.areas.lock();
                let old = block.get();
                if old == MigrateType::HighAtomic {
                    let r = zone.nr_reserved_highatomic.load(Relaxed);
                    zone.nr_reserved_highatomic
                        .store(r.saturating_sub(PAGEBLOCK_NR_PAGES), Relaxed);
                }
                block.set(MigrateType::Isolate);
                zone.nr_isolate_pageblock
                    .store(zone.nr_isolate_pageblock.load(Relaxed) + 1, Relaxed);
                let (moved, _) = areas.move_freepages_block(
                    &self.sparse,
                    pfn,
                    MigrateType::Isolate,
                    zone.buddy_span(),
                );
                zone.sub_free(moved);
            }
            pfn += PAGEBLOCK_NR_PAGES;
        }
        self.drain_all_pages();
        Ok(())
    }

    /// `undo_isolate_page_range`: every isolated pageblock of `[start_pfn, end_pfn)` becomes
    /// `mt` and its isolated free blocks go back to the free lists, merging with their buddies.
    /// Returns the pages given back.
    pub fn undo_isolate_page_range(&self, start_pfn: u64, end_pfn: u64, mt: MigrateType) -> u64 {
        let mt = if mt == MigrateType::Isolate {
            MigrateType::Movable
        } else {
            mt
        };
        let mut back = 0;
        let mut pfn = start_pfn - start_pfn % PAGEBLOCK_NR_PAGES;
        while pfn < end_pfn.min(MAX_PFN_LIMIT) {
            let (Ok(Some(zone)), Some(block)) =
                (self.pageblock_zone(pfn), self.sparse.pageblock(pfn))
            else {
                pfn += PAGEBLOCK_NR_PAGES;
                continue;
            };
            if block.get() != MigrateType::Isolate {
                pfn += PAGEBLOCK_NR_PAGES;
                continue;
            }
            let mut areas = zone.areas.lock();
            block.set(mt);
            if mt == MigrateType::HighAtomic {
                let r = zone.nr_reserved_highatomic.load(Relaxed);
                zone.nr_reserved_highatomic
                    .store(r + PAGEBLOCK_NR_PAGES, Relaxed);
            }
            zone.nr_isolate_pageblock
                .store(zone.nr_isolate_pageblock.load(Relaxed) - 1, Relaxed);
            let mut cur = pfn;
            while cur < pfn + PAGEBLOCK_NR_PAGES {
                match self.sparse.page(cur) {
                    Some(p) if p.is_buddy() && p.zone_and_node() == (zone.id as u8, zone.node) => {
                        let order = p.order();
                        areas.del(&self.sparse, cur, order);
                        zone.free_one_locked(&mut areas, &self.sparse, cur, order, mt);
                        back += 1 << order;
                        cur += 1 << order;
                    }
                    _ => cur += 1,
                }
            }
            pfn += PAGEBLOCK_NR_PAGES;
        }
        back
    }

    /// `test_pages_isolated`: Ok when every page of `[start_pfn, end_pfn)` is a hole or part
    /// of a free block of an isolated pageblock; otherwise the first pfn that is not.
    pub fn test_pages_isolated(&self, start_pfn: u64, end_pfn: u64) -> Result<(), u64> {
        let mut pfn = start_pfn;
        while pfn < end_pfn {
            let Some(p) = self.sparse.page(pfn) else {
                return Err(pfn);
            };
            if p.has(PageFlags::HOLE) {
                pfn += 1;
            } else if p.is_buddy()
                && self.sparse.pageblock_migratetype(pfn) == Some(MigrateType::Isolate)
            {
                pfn += 1 << p.order();
            } else {
                return Err(pfn);
            }
        }
        Ok(())
    }

    /// `__offline_isolated_pages`' first half: take every isolated free block of
    /// `[start_pfn, end_pfn)` off the free lists (they were no free pages any more); the
    /// pages are left without a state for the caller (offline_pages) to mark offline and to
    /// take out of the zone's managed and present counts. Returns the pages taken.
    pub fn take_isolated_pages(&self, start_pfn: u64, end_pfn: u64) -> u64 {
        let mut taken = 0;
        let mut pfn = start_pfn;
        while pfn < end_pfn {
            let Some(p) = self.sparse.page(pfn) else {
                pfn += 1;
                continue;
            };
            if !(p.is_buddy()
                && self.sparse.pageblock_migratetype(pfn) == Some(MigrateType::Isolate))
            {
                pfn += 1;
                continue;
            }
            let order = p.order();
            let Some(zone) = self.nodes.get(p.nid()).map(|n| &n.zones[p.zone().index()]) else {
                pfn += 1;
                continue;
            };
            zone.areas.lock().del(&self.sparse, pfn, order);
            taken += 1 << order;
            pfn += 1 << order;
        }
        taken
    }
}

/// A memory block range whose pageblocks offline_pages isolated.
#[derive(Debug)]
pub(crate) struct IsolatedRange {
    /// First pfn (memory-block aligned).
    pub(crate) start: u64,
    /// End pfn.
    pub(crate) end: u64,
}

impl<P: Platform> Machine<P> {
    /// `has_unmovable_pages` over `[spfn, epfn)`, skipping `exempt`: the first page that
    /// cannot leave the range, if any.
    pub(crate) fn has_unmovable_pages(
        &self,
        spfn: u64,
        epfn: u64,
        exempt: (u64, u64),
    ) -> Option<u64> {
        let mut pfn = spfn;
        while pfn < epfn {
            if pfn >= exempt.0 && pfn < exempt.1 {
                pfn = exempt.1;
                continue;
            }
            let Some(p) = self.sparse.page(pfn) else {
                pfn += 1;
                continue;
            };
            let flags = p.flags();
            if flags.intersects(PageFlags::HOLE.union(PageFlags::OFFLINE)) {
                pfn += 1;
            } else if p.is_device() || flags.contains(PageFlags::RESERVED) {
                return Some(pfn);
            } else if flags.contains(PageFlags::HEAD) {
                if p.movable_owner().is_none() || flags.contains(PageFlags::MEMMAP) {
                    return Some(pfn);
                }
                pfn += 1 << p.order();
            } else if flags.contains(PageFlags::BUDDY) {
                pfn += 1 << p.order();
            } else {
                // A page on a CPU's list (none after the drain) or a tail: step on.
                pfn += 1;
            }
        }
        None
    }

    /// Offline isolation: see the module documentation. Fails with the first
    /// unmovable page, changing nothing but the drained CPU lists.
    pub(crate) fn isolate_for_offline(
        &mut self,
        spfn: u64,
        epfn: u64,
        exempt: (u64, u64),
    ) -> Result<IsolatedRange, u64> {
        if let Some(pfn) = self.has_unmovable_pages(spfn, epfn, exempt) {
            return Err(pfn);
        }
        // set_migratetype_isolate on every pageblock of the memory block (its aligned start
        // and end; the exempt memmap is allocated, so isolation leaves it alone), then the
        // drain brings the CPUs' cached pages of the range back onto the Isolate lists.
        let start = spfn - spfn % (1 << MAX_ORDER);
        let end = epfn.next_multiple_of(1 << MAX_ORDER);
        self.start_isolate_page_range(start, end)
            .map_err(|e| match e {
                IsolateError::Busy { pfn } | IsolateError::Device { pfn } => pfn,
                IsolateError::Misaligned { start_pfn, .. } => start_pfn,
            })?;
        Ok(IsolatedRange { start, end })
    }

    /// Undo [`isolate_for_offline`](Self::isolate_for_offline): the pageblocks become Movable
    /// again (as Linux's `undo_isolate_page_range(..., MIGRATE_MOVABLE)`) and their free
    /// blocks go back to the free lists.
    pub(crate) fn undo_isolate_for_offline(&mut self, iso: IsolatedRange) {
        self.undo_isolate_page_range(iso.start, iso.end, MigrateType::Movable);
    }

    /// The end of a successful offline: the range's isolated free blocks leave the free lists
    /// (`__offline_isolated_pages`; the caller then marks every page offline), and its
    /// pageblocks stop counting as isolated (Linux's `nr_isolate_pageblock` fix-up; they are
    /// Movable again for the next online). Returns the pages taken off the lists.
    pub(crate) fn finish_isolation_for_offline(&mut self, iso: IsolatedRange) -> u64 {
        let taken = self.take_isolated_pages(iso.start, iso.end);
        let mut pfn = iso.start;
        while pfn < iso.end {
            if let (Ok(Some(zone)), Some(block)) =
                (self.pageblock_zone(pfn), self.sparse.pageblock(pfn))
                && block.get() == MigrateType::Isolate
            {
                let _guard = zone.areas.lock();
                block.set(MigrateType::Movable);
                zone.nr_isolate_pageblock
                    .store(zone.nr_isolate_pageblock.load(Relaxed) - 1, Relaxed);
            }
            pfn += PAGEBLOCK_NR_PAGES;
        }
        taken
    }
}
