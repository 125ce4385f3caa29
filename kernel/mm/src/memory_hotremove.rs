//! Memory hot-remove (Linux's `mm/memory_hotplug.c`): `offline_pages` for one memory block
//! (`memory_block_offline`) and `remove_memory` for a hot-added range whose blocks are all
//! offline.
//!
//! Offlining block `N` ([`Machine::offline_memory_block`]):
//! 1. the block must be online and all its RAM in one zone of one node ("mixed zones");
//! 2. its range is isolated ([`page_isolation`](crate::page_isolation)): an unmovable page
//!    fails it ("failure to isolate range", the page dumped as "unmovable page"); otherwise
//!    its pageblocks become MIGRATE_ISOLATE and every CPU's page lists are drained, so its
//!    free pages sit on the Isolate lists, out of `NR_FREE_PAGES`, and nothing can allocate
//!    them;
//! 3. every movable block is migrated out ([`migrate`](crate::migrate)), to another node
//!    first as Linux's `do_migrate_range` does; a block its owner will not let go, a pinned
//!    block or no memory to move to fails it ("unmovable page", the page dumped as
//!    "isolation failed" or "migration failure");
//! 4. on success every page of the block is offline (reserved, not present): the free and
//!    migrated-from pages leave `managed` and `present`, the range's own memmap (memmap on
//!    memory) stays in place, reserved, and leaves `present` only; the zone's span shrinks
//!    when the block was at either end of it (`remove_pfn_range_from_zone`); zonelists and
//!    watermarks are rebuilt (`init_per_zone_wmark_min`).
//!
//! Any failure undoes everything: the blocks migrated so far are moved back (their owners
//! told again), the isolation is undone (the pageblocks Movable, their free blocks merged
//! back into the free lists), so counters, owners' pfns
//! and the checker's result are as before (Linux leaves migrated pages where they went; the
//! project's rule is that a failed operation changes nothing). Device pages, memmap storage
//! of anything else, reserved pages and allocations without a movable owner never move.
//!
//! The failure is reported in Linux's words: the page as `dump_page` prints it, then
//! `memory offlining [mem 0x...-0x...] failed due to REASON`.
//!
//! [`Machine::remove_memory`] (Linux's `remove_memory` / `try_remove_memory`) refuses a range
//! with a block still online ("memory block N is online" there); otherwise
//! `arch_remove_memory` ([`section_remove`](crate::section_remove)) takes out the sections
//! only the range used, unmaps the range with a TLB flush on every CPU and gives their memmap
//! back (the range's own memmap on memory with it); pages of the range in sections that stay
//! become the holes they were; the range leaves memblock (System RAM) and the hotplug list.
//! `max_pfn` stays where it is, as on x86-64 Linux, which never lowers it on hot-remove.
//! Every step that can fail comes before anything changes.

use alloc::vec::Vec;
use core::fmt;

use crate::machine::Machine;
use crate::memory_block::BlockState;
use crate::memory_hotplug::{HotplugError, OnlineType};
use crate::page::PageFlags;
use crate::pfn_phys;
use crate::platform::Platform;

/// What `dump_page` prints about a page (Linux's `__dump_page`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageDump {
    /// The page.
    pub pfn: u64,
    /// Its reference count.
    pub refcount: u32,
    /// Its flags.
    pub flags: PageFlags,
    /// Its movable owner (`mapping` of a movable page).
    pub owner: Option<usize>,
    /// `page dumped because: ...`.
    pub reason: &'static str,
}

/// Where Linux's `vmemmap` starts on x86_64 (4-level paging): `dump_page` shows a struct
/// page's address there, `pfn * sizeof(struct page)` on.
const VMEMMAP_START: u64 = 0xffff_ea00_0000_0000;

impl fmt::Display for PageDump {
    /// Linux 6.1's `__dump_page` lines (`%p` as the unhashed vmemmap address of the struct
    /// page; `mapping` of a movable page is its owner's index with `PAGE_MAPPING_MOVABLE`;
    /// the `raw:` words are left out).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let addr = VMEMMAP_START + self.pfn * core::mem::size_of::<crate::Page>() as u64;
        let mapping = self.owner.map_or(0, |o| ((o as u64 + 1) << 4) | 0x2);
        writeln!(
            f,
            "page:{addr:016x} refcount:{} mapcount:0 mapping:{mapping:016x} index:0x0 pfn:{:#x}",
            self.refcount, self.pfn
        )?;
        writeln!(f, "flags: {}", self.flags)?;
        write!(f, "page dumped because: {}", self.reason)
    }
}

/// A failed offline_pages (nothing changed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OfflineFailure {
    /// First pfn of the range offline_pages worked on (after the block's own memmap).
    pub start_pfn: u64,
    /// One past its last pfn.
    pub end_pfn: u64,
    /// Linux's reason: "mixed zones", "failure to isolate range", "unmovable page".
    pub reason: &'static str,
    /// The page that could not leave, as dump_page prints it.
    pub page: Option<PageDump>,
    /// Why the page could not move, when migration failed.
    pub migrate: Option<crate::migrate::MigrateError>,
}

impl fmt::Display for OfflineFailure {
    /// The dump_page lines of the page, then Linux's line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(m) = &self.migrate
            && let Some(p) = &self.page
        {
            writeln!(f, "migrating pfn {:#x} failed: {m}", p.pfn)?;
        }
        if let Some(p) = &self.page {
            writeln!(f, "{p}")?;
        }
        write!(
            f,
            "memory offlining [mem {:#010x}-{:#010x}] failed due to {}",
            pfn_phys(self.start_pfn),
            pfn_phys(self.end_pfn) - 1,
            self.reason
        )
    }
}

impl<P: Platform> Machine<P> {
    /// `dump_page`: what Linux would print about `pfn`, with `reason`.
    pub fn dump_page(&self, pfn: u64, reason: &'static str) -> Option<PageDump> {
        let p = self.sparse.page(pfn)?;
        Some(PageDump {
            pfn,
            refcount: p.refcount(),
            flags: p.flags(),
            owner: p.movable_owner(),
            reason,
        })
    }

    /// The memmap that hot-added ranges keep at their own start (memmap on memory) inside
    /// `[spfn, epfn)`, as a pfn range (empty if none).
    pub(crate) fn own_memmap_in(&self, spfn: u64, epfn: u64) -> (u64, u64) {
        self.hotplug
            .ranges
            .iter()
            .map(|h| {
                (
                    h.start_pfn.max(spfn),
                    (h.start_pfn + h.memmap_pages).min(epfn),
                )
            })
            .find(|&(s, e)| s < e)
            .unwrap_or((spfn, spfn))
    }

    /// `memory_block_offline` / `offline_pages` for memory block `nr`: see the module
    /// documentation. Returns the pages taken out of `managed`.
    pub fn offline_memory_block(&mut self, nr: u64) -> Result<u64, HotplugError> {
        self.finish_deferred_init();
        let b = self.memory_block(nr).ok_or(HotplugError::NoBlock { nr })?;
        if b.state == BlockState::Offline {
            return Err(HotplugError::BlockOffline { nr });
        }
        let (spfn, epfn) = (b.start_pfn(), b.end_pfn());
        let exempt = self.own_memmap_in(spfn, epfn);
        // Linux offlines the block after its vmemmap pages.
        let ostart = if exempt.0 == spfn { exempt.1 } else { spfn };
        let fail = |reason, page, migrate| {
            let f = OfflineFailure {
                start_pfn: ostart,
                end_pfn: epfn,
                reason,
                page,
                migrate,
            };
            for line in alloc::format!("{f}").lines() {
                log::warn!("{line}");
            }
            HotplugError::Offline(f)
        };
        let Some(zid) = b.zone else {
            return Err(fail("mixed zones", None, None));
        };
        let iso = match self.isolate_for_offline(ostart, epfn, exempt) {
            Ok(iso) => iso,
            Err(pfn) => {
                let page = self.dump_page(pfn, "unmovable page");
                return Err(fail("failure to isolate range", page, None));
            }
        };
        // do_migrate_range over the movable blocks of the range.
        let mut moved: Vec<(u64, u64)> = Vec::new();
        let mut failed = None;
        let mut pfn = ostart;
        while pfn < epfn {
            let Some(p) = self.sparse.page(pfn) else {
                pfn += 1;
                continue;
            };
            if !p.has(PageFlags::HEAD) {
                pfn += 1;
                continue;
            }
            let order = p.order();
            if p.movable_owner().is_some() {
                match self.move_block(pfn, true) {
                    Ok((dst, _)) => moved.push((pfn, dst)),
                    Err(e) => {
                        failed = Some((pfn, e));
                        break;
                    }
                }
            }
            pfn += 1 << order;
        }
        if let Some((pfn, e)) = failed {
            let page = self.dump_page(pfn, e.dump_reason());
            for &(src, dst) in moved.iter().rev() {
                self.move_block_back(src, dst);
            }
            self.undo_isolate_for_offline(iso);
            self.debug_check();
            return Err(fail("unmovable page", page, Some(e)));
        }
        // __offline_isolated_pages: the isolated free blocks leave the free lists; every page
        // but holes, offline ones and the own memmap is now free-and-taken or held here
        // (migrated-from blocks).
        self.finish_isolation_for_offline(iso);
        let (mut managed, mut present) = (0u64, 0u64);
        for pfn in spfn..epfn {
            let Some(p) = self.sparse.page(pfn) else {
                continue;
            };
            if p.flags()
                .intersects(PageFlags::HOLE.union(PageFlags::OFFLINE))
            {
                continue;
            }
            present += 1;
            if pfn >= exempt.0 && pfn < exempt.1 {
                p.set(PageFlags::OFFLINE);
                continue;
            }
            managed += 1;
            p.set_refcount(0);
            p.set_flags_and_order(PageFlags::RESERVED.union(PageFlags::OFFLINE).bits(), 0);
        }
        let zone = self.zone_mut(b.nid, zid);
        zone.present -= present;
        zone.managed -= managed;
        self.shrink_zone_span(b.nid, zid, spfn, epfn);
        self.refresh_hot_ranges(spfn, epfn);
        self.build_all_zonelists();
        self.setup_per_zone_wmarks();
        self.debug_check();
        Ok(managed)
    }

    /// `remove_memory`: take away the hot-added range `[start, start + size)` (exactly as
    /// added), whose blocks must all be offline. See the module documentation. Returns the
    /// bytes of memmap given back.
    pub fn remove_memory(&mut self, start: u64, size: u64) -> Result<u64, HotplugError> {
        let (spfn, epfn) = (
            start >> crate::PAGE_SHIFT,
            start.saturating_add(size) >> crate::PAGE_SHIFT,
        );
        let idx = self.hot_range_index(start, size)?;
        // check_memblock_offlined_cb
        if let Some(pfn) = (spfn..epfn).find(|&pfn| {
            self.sparse.page(pfn).is_some_and(|p| {
                !p.flags()
                    .intersects(PageFlags::OFFLINE.union(PageFlags::HOLE))
            })
        }) {
            let nr = crate::sparse::pfn_to_section_nr(pfn);
            log::warn!("memory block {nr} is online: remove_memory refused");
            return Err(HotplugError::BlockOnline { nr });
        }
        let released = self
            .arch_remove_memory(start, size)
            .map_err(HotplugError::Remove)?;
        let r = self.hotplug.ranges.remove(idx);
        let holes = self
            .hotplug
            .holes
            .iter()
            .position(|h| h.0 == r.start_pfn)
            .map(|i| self.hotplug.holes.remove(i).1)
            .unwrap_or_default();
        self.restore_holes(&holes, spfn, epfn, r.nid);
        if let Err(e) = self.memblock.remove(start, size) {
            log::error!("remove_memory: memblock: {e}");
        }
        // release_sections took the buddy blocks off the memmap count already.
        self.memmap_ram_bytes -= released.in_range_bytes;
        self.debug_check();
        Ok(released.buddy_bytes + released.in_range_bytes)
    }

    /// `offline_and_remove_memory`: offline every online block of the hot-added range
    /// `[start, start + size)`, then remove it. If a block cannot go offline (or the removal
    /// fails), the blocks offlined here are onlined again into the zone they had (Linux's
    /// rollback with the saved online types), so the range is as before; the error is the
    /// first failure. Returns the pages the blocks had managed.
    pub fn offline_and_remove_memory(
        &mut self,
        start: u64,
        size: u64,
    ) -> Result<u64, HotplugError> {
        let r = self.hotplug.ranges[self.hot_range_index(start, size)?];
        let first = crate::sparse::pfn_to_section_nr(r.start_pfn);
        let last = crate::sparse::pfn_to_section_nr(r.end_pfn - 1);
        let online_type = match (r.online, r.movable) {
            (true, true) => OnlineType::Movable,
            _ => OnlineType::Kernel,
        };
        let mut offlined = Vec::new();
        let mut pages = 0;
        let mut result = Ok(());
        for nr in first..=last {
            if self
                .memory_block(nr)
                .is_none_or(|b| b.state == BlockState::Offline)
            {
                continue;
            }
            match self.offline_memory_block(nr) {
                Ok(p) => {
                    pages += p;
                    offlined.push(nr);
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        if result.is_ok() {
            result = self.remove_memory(start, size).map(|_| ());
        }
        if let Err(e) = result {
            for &nr in offlined.iter().rev() {
                if let Err(o) = self.online_memory_block_type(nr, online_type) {
                    log::error!("offline_and_remove_memory: memory{nr} not onlined again: {o}");
                }
            }
            return Err(e);
        }
        Ok(pages)
    }

    /// The index of the hot-added range `[start, start + size)`, exactly as added.
    fn hot_range_index(&self, start: u64, size: u64) -> Result<usize, HotplugError> {
        self.hotplug
            .ranges
            .iter()
            .position(|r| {
                crate::pfn_phys(r.start_pfn) == start
                    && r.end_pfn - r.start_pfn == size >> crate::PAGE_SHIFT
            })
            .ok_or(HotplugError::NotAdded)
    }
}
