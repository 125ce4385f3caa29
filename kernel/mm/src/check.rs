//! Invariant checker: walks the whole memmap, every zone's free lists and page cache, and the
//! counters, and reports the first inconsistency.
//!
//! What must hold:
//! * every struct page is in exactly one state: reserved (hole, firmware, memmap, offline,
//!   device), the head or a tail of one free block, the head or a tail of one allocated block,
//!   or a cached order-0 free page; a tail carries no state flag (so free blocks never overlap);
//!   only an allocated head may be movable, and only with a registered owner;
//! * a RAM page's zone is the zone of its address, its node one the machine has, and its
//!   node's zone spans it; a device page is reserved, in ZONE_DEVICE of its pagemap's node,
//!   with a pagemap and a count ≥ 1, and never free; a pagemap's reference count is the
//!   number of its pages in use (count above 1);
//! * the pages of a block share its head's zone and node;
//! * free blocks are naturally aligned, of order ≤ 10, in their zone's span;
//! * every free-list entry is a valid free head of that list's order, zone and node (never a
//!   device page, never memmap storage), the lists are well linked and their lengths match
//!   `nr_free`;
//! * every entry of every CPU's page list is a cached page of that zone, and each list is as
//!   long as its count;
//! * per zone of every node: present, managed (= present − reserved), free (`NR_FREE_PAGES`,
//!   the free lists) and the per-CPU counts agree with the memmap; ZONE_DEVICE is never
//!   present.
//!
//! The checker needs a quiescent memory manager: no CPU allocating or freeing while it runs
//! (the kernel holds the memory manager exclusively, Linux's `mem_hotplug_lock`, with the
//! other CPUs stopped). It takes the locks it reads under, so a concurrent caller cannot make
//! it unsound, only wrong.
//!
//! [`Machine::check`] checks all of it in one pass over the memmap; [`Machine::check_free_areas`]
//! checks what the free lists and page caches alone can show, at a cost in free blocks rather
//! than in memory size, for callers that check after every operation.

use alloc::vec::Vec;
use core::fmt;

use crate::machine::Machine;
use crate::page::{NIL, PageFlags};
use crate::pageblock::{MIGRATE_TYPES, MigrateType, PAGEBLOCK_NR_PAGES};
use crate::platform::Platform;
use crate::zone::{MAX_NR_ZONES, ZoneId};
use crate::{MAX_ORDER, NR_ORDERS};

/// The first inconsistency found by [`Machine::check`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckError {
    /// A page whose state contradicts the rules (`what` says which).
    BadPageState {
        /// The page.
        pfn: u64,
        /// Its flags.
        flags: PageFlags,
        /// The rule broken.
        what: &'static str,
    },
    /// A page inside a block starting at `head` carries a state of its own: blocks overlap.
    Overlap {
        /// Head of the enclosing block.
        head: u64,
        /// The offending tail.
        pfn: u64,
        /// Its flags.
        flags: PageFlags,
    },
    /// A RAM page whose zone is not the zone of its address.
    WrongZone {
        /// The page.
        pfn: u64,
        /// Zone in the page.
        page_zone: ZoneId,
        /// Zone of its address.
        expected: ZoneId,
    },
    /// A device page in a free list or page cache.
    DeviceInFreeList {
        /// The zone whose list holds it.
        zone: ZoneId,
        /// The page.
        pfn: u64,
    },
    /// A free-list entry that is not a free head of that list's order and zone.
    BadFreeListEntry {
        /// Zone of the list.
        zone: ZoneId,
        /// Order of the list.
        order: u32,
        /// The entry.
        pfn: u64,
        /// The rule broken.
        what: &'static str,
    },
    /// A page-cache entry that is not a cached free page of that zone.
    BadPcpEntry {
        /// Zone of the cache.
        zone: ZoneId,
        /// The entry.
        pfn: u64,
        /// The rule broken.
        what: &'static str,
    },
    /// A counter disagrees with what the walk (of the memmap or the free lists) found.
    Counter {
        /// The node.
        nid: usize,
        /// The zone.
        zone: ZoneId,
        /// Which counter.
        counter: &'static str,
        /// Its value.
        recorded: u64,
        /// What the walk counted.
        counted: u64,
    },
    /// The deferred struct page init has not run yet: pages without struct pages that the
    /// zones count as present.
    DeferredInit {
        /// Pages still deferred.
        pages: u64,
    },
    /// A pagemap's reference count is not the number of its pages in use (refcount above
    /// the idle 1).
    PagemapRefs {
        /// The pagemap.
        index: usize,
        /// Its reference count.
        recorded: u64,
        /// Its pages in use.
        counted: u64,
    },
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadPageState { pfn, flags, what } => {
                write!(f, "pfn {pfn:#x} flags {flags}: {what}")
            }
            Self::Overlap { head, pfn, flags } => write!(
                f,
                "overlapping blocks: pfn {pfn:#x} (flags {flags}) inside the block at {head:#x}"
            ),
            Self::WrongZone {
                pfn,
                page_zone,
                expected,
            } => write!(
                f,
                "pfn {pfn:#x} is in zone {} but its address is in zone {}",
                page_zone.name(),
                expected.name()
            ),
            Self::DeviceInFreeList { zone, pfn } => write!(
                f,
                "device pfn {pfn:#x} in a free list of zone {}",
                zone.name()
            ),
            Self::BadFreeListEntry {
                zone,
                order,
                pfn,
                what,
            } => write!(
                f,
                "zone {} free list order {order}: pfn {pfn:#x}: {what}",
                zone.name()
            ),
            Self::BadPcpEntry { zone, pfn, what } => {
                write!(f, "zone {} page cache: pfn {pfn:#x}: {what}", zone.name())
            }
            Self::DeferredInit { pages } => write!(
                f,
                "{pages} pages still wait for the deferred struct page init"
            ),
            Self::PagemapRefs {
                index,
                recorded,
                counted,
            } => write!(
                f,
                "device pagemap {index}: reference count {recorded}, {counted} pages in use"
            ),
            Self::Counter {
                nid,
                zone,
                counter,
                recorded,
                counted,
            } => write!(
                f,
                "node {nid} zone {}: {counter} is {recorded} but the walk counted {counted}",
                zone.name()
            ),
        }
    }
}

#[derive(Default, Clone, Copy)]
struct Tally {
    present: u64,
    reserved: u64,
    free: u64,
    pcp: u64,
    /// Free pages in Isolate pageblocks (not in `NR_FREE_PAGES`).
    isolated: u64,
    /// Pageblocks of each migratetype (by their first page's zone).
    pageblocks: [u64; MIGRATE_TYPES],
    blocks: [u64; NR_ORDERS],
}

impl<P: Platform> Machine<P> {
    /// Check every invariant (see the module documentation); the first inconsistency is
    /// returned. Cost: one pass over the memmap, plus [`Machine::check_free_areas`].
    pub fn check(&self) -> Result<(), CheckError> {
        if self.background.is_some() {
            return Err(CheckError::DeferredInit {
                pages: self.deferred_pages(),
            });
        }
        let mut tally = alloc::vec![[Tally::default(); MAX_NR_ZONES]; self.nodes.len()];
        for chunk in &self.sparse.chunks {
            self.check_chunk(chunk.start_pfn, chunk.pages, &mut tally)?;
            for (k, b) in chunk.usemap.iter().enumerate() {
                let p = &chunk.pages[k << crate::PAGEBLOCK_ORDER];
                if !p.is_device() && p.nid() < tally.len() {
                    tally[p.nid()][p.zone().index()].pageblocks[b.get().index()] += 1;
                }
            }
        }
        self.check_free_areas()?;
        self.check_pagemap_refs()?;
        for zone in self.zones() {
            let (zid, nid) = (zone.id, zone.nid());
            let t = &tally[nid][zid.index()];
            let counter = |counter, recorded, counted| {
                if recorded == counted {
                    Ok(())
                } else {
                    Err(CheckError::Counter {
                        nid,
                        zone: zid,
                        counter,
                        recorded,
                        counted,
                    })
                }
            };
            counter("present", zone.present, t.present)?;
            counter("managed", zone.managed, t.present - t.reserved)?;
            counter("free", zone.nr_free_buddy(), t.free - t.pcp - t.isolated)?;
            counter("pcp count", zone.pcp_count(), t.pcp)?;
            counter(
                "nr_isolate_pageblock",
                zone.nr_isolate_pageblock
                    .load(core::sync::atomic::Ordering::Relaxed),
                t.pageblocks[MigrateType::Isolate.index()],
            )?;
            counter(
                "nr_reserved_highatomic",
                zone.nr_reserved_highatomic
                    .load(core::sync::atomic::Ordering::Relaxed),
                t.pageblocks[MigrateType::HighAtomic.index()] * PAGEBLOCK_NR_PAGES,
            )?;
            let areas = zone.areas.lock();
            for (o, &n) in t.blocks.iter().enumerate() {
                counter("nr_free", areas.area[o].nr_free, n)?;
            }
        }
        Ok(())
    }

    /// Every pagemap's reference count is the number of its pages in use (memunmap.rs).
    fn check_pagemap_refs(&self) -> Result<(), CheckError> {
        for (index, pm) in self.pagemaps.iter().enumerate() {
            let mut counted = 0;
            let mut pfn = pm.start_pfn();
            while pfn < pm.end_pfn() {
                let next = pm.end_pfn().min(crate::sparse::section_nr_to_pfn(
                    crate::sparse::pfn_to_section_nr(pfn) + 1,
                ));
                if let Some(pages) = self.sparse.pages(pfn, next - pfn) {
                    counted += pages.iter().filter(|p| p.refcount() > 1).count() as u64;
                }
                pfn = next;
            }
            let recorded = pm.refs.count();
            if recorded != counted {
                return Err(CheckError::PagemapRefs {
                    index,
                    recorded,
                    counted,
                });
            }
        }
        Ok(())
    }

    /// The part of [`Machine::check`] that does not walk the memmap: every free-list entry is a
    /// free head of that list's order and zone, naturally aligned, inside its zone's span and
    /// outside every device pagemap; the lists are well linked and as long as `nr_free`; every
    /// page-cache entry is a cached page of its zone; no two free blocks overlap; and each
    /// zone's free count is what its lists and cache hold. Cost: O(B log B) for B free blocks,
    /// independent of memory size, so it can run after every operation where the full walk
    /// cannot (the buddy fuzz target does). What it cannot see, [`Machine::check`] adds: pages
    /// flagged free that no list holds, tails with a state, and the present/managed counts.
    pub fn check_free_areas(&self) -> Result<(), CheckError> {
        // Every free block and cached page as (start, end), to find overlaps.
        let mut blocks: Vec<(u64, u64)> = Vec::new();
        for zone in self.zones() {
            let (zid, nid) = (zone.id, zone.nid());
            let listed = self.check_free_lists(nid, zid, &mut blocks)?;
            for (cpu, ps) in zone.pagesets.iter().enumerate() {
                let pcp = ps.pcp.lock();
                let mut walked = 0u64;
                for (pfn, order) in pcp.walk_all(&self.sparse) {
                    let end = pfn.saturating_add(1 << order);
                    walked += 1 << order;
                    let what = match self.page(pfn) {
                        None => "no struct page",
                        Some(p) if p.is_device() || self.in_pagemap(pfn, end) => {
                            return Err(CheckError::DeviceInFreeList { zone: zid, pfn });
                        }
                        Some(p) if !p.has(PageFlags::PCP) => "not flagged as cached",
                        Some(p) if p.has(PageFlags::MEMMAP) => "memmap storage in the page cache",
                        Some(p) if p.order() != order => "block of another order than its list",
                        Some(p) if p.zone() != zid => "page of another zone",
                        Some(p) if p.nid() != nid => "page of another node",
                        Some(_) if !pfn.is_multiple_of(1 << order) => "block not naturally aligned",
                        Some(_) if !zone.spans(pfn) || !zone.spans(end - 1) => {
                            "outside its zone's span"
                        }
                        Some(_) => {
                            blocks.push((pfn, end));
                            continue;
                        }
                    };
                    return Err(CheckError::BadPcpEntry {
                        zone: zid,
                        pfn,
                        what,
                    });
                }
                if walked != u64::from(pcp.count) {
                    return Err(CheckError::Counter {
                        nid,
                        zone: zid,
                        counter: if cpu == 0 {
                            "pcp list of cpu 0"
                        } else {
                            "pcp list of a cpu"
                        },
                        recorded: u64::from(pcp.count),
                        counted: walked,
                    });
                }
            }
            if zone.nr_free_buddy() != listed {
                return Err(CheckError::Counter {
                    nid,
                    zone: zid,
                    counter: "free (lists)",
                    recorded: zone.nr_free_buddy(),
                    counted: listed,
                });
            }
        }
        blocks.sort_unstable_by_key(|b| b.0);
        for w in blocks.windows(2) {
            let ((head, end), (pfn, _)) = (w[0], w[1]);
            if pfn < end {
                // A block listed twice, listed and cached, or starting inside another.
                let flags = self.page(pfn).map_or(PageFlags::empty(), |p| p.flags());
                return Err(CheckError::Overlap { head, pfn, flags });
            }
        }
        Ok(())
    }

    /// The zone a RAM (or hole) page of node `nid` must carry: its hot-added range's
    /// ([`HotRange::zone_of`](crate::hotplug::HotRange::zone_of)), otherwise the boot placement
    /// (Movable from the node's Movable start on, else by address).
    fn expected_zone(&self, nid: usize, pfn: u64) -> ZoneId {
        match self
            .hotplug
            .ranges
            .iter()
            .find(|r| r.start_pfn <= pfn && pfn < r.end_pfn)
        {
            Some(r) => r.zone_of(pfn),
            None => self.zone_movable.zone_of(nid, pfn),
        }
    }

    /// Whether `[start, end)` meets a device pagemap.
    fn in_pagemap(&self, start: u64, end: u64) -> bool {
        self.pagemaps
            .iter()
            .any(|m| start < m.end_pfn() && m.start_pfn() < end)
    }

    fn check_chunk(
        &self,
        start: u64,
        pages: &[crate::Page],
        tally: &mut [[Tally; MAX_NR_ZONES]],
    ) -> Result<(), CheckError> {
        let mut i = 0usize;
        while i < pages.len() {
            let p = &pages[i];
            let pfn = start + i as u64;
            let flags = p.flags();
            let bad = |what| Err(CheckError::BadPageState { pfn, flags, what });
            if p.is_device() {
                if !flags.contains(PageFlags::RESERVED)
                    || flags.intersects(
                        PageFlags::BUDDY
                            .union(PageFlags::PCP)
                            .union(PageFlags::HEAD),
                    )
                {
                    return bad("device page not reserved, or free, or allocated");
                }
                if p.zone() != ZoneId::Device || p.pagemap().is_none() || p.refcount() == 0 {
                    return bad("device page without Device zone, pagemap or reference");
                }
                let Some(map) = p.pagemap().and_then(|m| self.pagemaps.get(m)) else {
                    return bad("device page with an unknown pagemap");
                };
                if map.nid != p.nid() {
                    return bad("device page on another node than its pagemap");
                }
                if !self.nodes[map.nid].zone(ZoneId::Device).spans(pfn) {
                    return bad("device page outside its node's Device zone span");
                }
                i += 1;
                continue;
            }
            if p.nid() >= self.nodes.len() {
                return bad("page of a node the machine does not have");
            }
            let expected = self.expected_zone(p.nid(), pfn);
            if p.zone() != expected {
                return Err(CheckError::WrongZone {
                    pfn,
                    page_zone: p.zone(),
                    expected,
                });
            }
            let t = &mut tally[p.nid()][expected.index()];
            let zone = self.nodes[p.nid()].zone(expected);
            let state = flags.intersection(PageFlags::STATE);
            if flags.contains(PageFlags::MOVABLE)
                && (state != PageFlags::HEAD
                    || p.movable_owner()
                        .is_none_or(|o| o >= self.movable_ops.len()))
            {
                return bad("movable flag on a page that is not an allocated head with an owner");
            }
            if state == PageFlags::RESERVED {
                if !flags.intersects(PageFlags::HOLE.union(PageFlags::OFFLINE)) {
                    t.present += 1;
                    t.reserved += 1;
                    if !zone.spans(pfn) {
                        return bad("present page outside its zone's span");
                    }
                }
                i += 1;
                continue;
            }
            if flags.intersects(PageFlags::HOLE.union(PageFlags::OFFLINE)) {
                return bad("hole or offline page that is not reserved");
            }
            if !zone.spans(pfn) {
                return bad("page outside its zone's span");
            }
            if flags.contains(PageFlags::MEMMAP) && state != PageFlags::HEAD {
                return bad("memmap storage that is free");
            }
            if state != PageFlags::BUDDY && state != PageFlags::HEAD && state != PageFlags::PCP {
                return bad(if state.is_empty() {
                    "page in no block: neither reserved, free nor allocated"
                } else {
                    "page in more than one state"
                });
            }
            let order = p.order();
            if order > MAX_ORDER {
                return bad("block order above MAX_ORDER");
            }
            let n = 1usize << order;
            if !pfn.is_multiple_of(n as u64) {
                return bad("block not naturally aligned");
            }
            if i + n > pages.len() {
                return bad("block runs past its memmap chunk");
            }
            if state == PageFlags::HEAD && p.refcount() == 0 {
                return bad("allocated block with refcount 0");
            }
            // Tails carry no flag, except MEMMAP inside an allocated block (memmap storage
            // taken from the buddy allocator).
            let allowed = if state == PageFlags::HEAD {
                PageFlags::MEMMAP.bits()
            } else {
                0
            };
            let tails = &pages[i + 1..i + n];
            let head_zn = p.zone_and_node();
            let stray =
                |t: &crate::Page| (t.flag_bits() & !allowed != 0) | (t.zone_and_node() != head_zn);
            // Tails are most of the memmap: OR them without a branch per page (the loop
            // unrolls and vectorises), and look for the culprit only when there is one.
            if tails.iter().fold(false, |any, t| any | stray(t))
                && let Some(k) = tails.iter().position(stray)
            {
                return Err(CheckError::Overlap {
                    head: pfn,
                    pfn: pfn + 1 + k as u64,
                    flags: tails[k].flags(),
                });
            }
            t.present += n as u64;
            if state == PageFlags::BUDDY {
                t.free += n as u64;
                t.blocks[order as usize] += 1;
                if self.sparse.pageblock_migratetype(pfn) == Some(MigrateType::Isolate) {
                    t.isolated += n as u64;
                }
            } else if state == PageFlags::PCP {
                t.free += n as u64;
                t.pcp += n as u64;
            }
            i += n;
        }
        Ok(())
    }

    /// Walk the free lists of one zone, pushing every block onto `blocks`; returns the pages
    /// they hold.
    fn check_free_lists(
        &self,
        nid: usize,
        zid: ZoneId,
        blocks: &mut Vec<(u64, u64)>,
    ) -> Result<u64, CheckError> {
        let zone = self.nodes[nid].zone(zid);
        let mut pages = 0u64;
        let areas = zone.areas.lock();
        for (o, area) in areas.area.iter().enumerate() {
            let order = o as u32;
            let err = |pfn, what| {
                Err(CheckError::BadFreeListEntry {
                    zone: zid,
                    order,
                    pfn,
                    what,
                })
            };
            let mut n = 0u64;
            for mt in MigrateType::ALL {
                let (mut pfn, mut prev) = (area.head[mt.index()], NIL);
                while pfn != NIL {
                    if n == area.nr_free {
                        return err(pfn, "list longer than nr_free (or a cycle)");
                    }
                    let Some(p) = self.page(pfn) else {
                        return err(pfn, "no struct page");
                    };
                    let end = pfn.saturating_add(1 << order);
                    if p.is_device() || self.in_pagemap(pfn, end) {
                        return Err(CheckError::DeviceInFreeList { zone: zid, pfn });
                    }
                    if !p.is_buddy() {
                        return err(pfn, "not a free block head");
                    }
                    if p.order() != order {
                        return err(pfn, "free head of another order");
                    }
                    if p.zone() != zid {
                        return err(pfn, "free head of another zone");
                    }
                    if p.nid() != nid {
                        return err(pfn, "free head of another node");
                    }
                    if p.has(PageFlags::MEMMAP) {
                        return err(pfn, "memmap storage in a free list");
                    }
                    if !pfn.is_multiple_of(1 << order) {
                        return err(pfn, "block not naturally aligned");
                    }
                    if !zone.spans(pfn) || !zone.spans(end - 1) {
                        return err(pfn, "block outside its zone's span");
                    }
                    if p.prev() != prev {
                        return err(pfn, "broken back link");
                    }
                    // Isolated free pages are exactly those on the Isolate lists.
                    let isolated =
                        self.sparse.pageblock_migratetype(pfn) == Some(MigrateType::Isolate);
                    if isolated != (mt == MigrateType::Isolate) {
                        return err(
                            pfn,
                            if isolated {
                                "free block of an isolated pageblock on another list"
                            } else {
                                "free block on the Isolate list outside an isolated pageblock"
                            },
                        );
                    }
                    blocks.push((pfn, end));
                    if !isolated {
                        pages += 1 << order;
                    }
                    prev = pfn;
                    pfn = p.next();
                    n += 1;
                }
            }
            if n != area.nr_free {
                return Err(CheckError::Counter {
                    nid,
                    zone: zid,
                    counter: "free list length",
                    recorded: area.nr_free,
                    counted: n,
                });
            }
        }
        Ok(pages)
    }

    /// Scan every free list and page cache of every zone for blocks that meet a device
    /// pagemap or start on a device page; returns how many were found (must be 0). An audit
    /// independent of the checker's rules; cost O(free blocks × pagemaps).
    pub fn device_pfns_in_free_lists(&self) -> u64 {
        let is_dev = |pfn: u64, end: u64| {
            self.in_pagemap(pfn, end) || self.page(pfn).is_some_and(|p| p.is_device())
        };
        let mut found = 0;
        for zone in self.zones() {
            let areas = zone.areas.lock();
            for order in 0..=crate::MAX_ORDER {
                for mt in MigrateType::ALL {
                    found += areas
                        .walk(&self.sparse, order, mt)
                        .filter(|&pfn| is_dev(pfn, pfn.saturating_add(1 << order)))
                        .count() as u64;
                }
            }
            drop(areas);
            for ps in &zone.pagesets {
                found += ps
                    .pcp
                    .lock()
                    .walk_all(&self.sparse)
                    .filter(|&(pfn, order)| is_dev(pfn, pfn + (1 << order)))
                    .count() as u64;
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gfp::Gfp;
    use crate::memremap::MemremapOptions;
    use crate::testing::{FakePlatform, pc_node};
    use crate::zone::Zone;
    use alloc::string::ToString;

    fn node() -> Machine<FakePlatform> {
        let n = pc_node(64);
        n.check().unwrap();
        n
    }

    fn dma32(n: &mut Machine<FakePlatform>) -> &mut Zone {
        n.zone_mut(0, ZoneId::Dma32)
    }

    /// A free buddy head of order ≥ 1 in DMA32.
    fn free_head(n: &Machine<FakePlatform>) -> (u64, u32) {
        let z = n.nodes[0].zone(ZoneId::Dma32);
        let a = z.areas.lock();
        let o = (1..=MAX_ORDER)
            .find(|&o| a.area[o as usize].head[MigrateType::Movable.index()] != NIL)
            .unwrap();
        (a.area[o as usize].head[MigrateType::Movable.index()], o)
    }

    #[test]
    fn detects_overlapping_free_blocks() {
        let mut n = node();
        let (head, _) = free_head(&n);
        n.sparse.page_mut(head + 1).unwrap().set(PageFlags::BUDDY);
        assert!(matches!(n.check(), Err(CheckError::Overlap { head: h, .. }) if h == head));
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "three 64 MiB machines (32768 struct pages each): about 3 minutes under Miri"
    )]
    fn free_area_check_sees_list_damage_without_the_memmap_walk() {
        let n = node();
        n.check_free_areas().unwrap();
        // The second half of a free block also listed one order down: blocks overlap.
        let (head, o) = free_head(&n);
        let half = head + (1 << (o - 1));
        let z = &n.nodes[0].zones[ZoneId::Dma32.index()];
        z.areas
            .lock()
            .add(&n.sparse, half, o - 1, MigrateType::Movable);
        z.add_free(1 << (o - 1));
        assert!(matches!(
            n.check_free_areas(),
            Err(CheckError::Overlap { head: a, pfn: b, .. }) if a == head && b == half
        ));
        // The free count drifting from the lists.
        let mut n = node();
        dma32(&mut n).sub_free(1);
        assert!(matches!(
            n.check_free_areas(),
            Err(CheckError::Counter {
                counter: "free (lists)",
                ..
            })
        ));
        // A misaligned head.
        let n = node();
        let (head, o) = free_head(&n);
        let z = &n.nodes[0].zones[ZoneId::Dma32.index()];
        z.areas.lock().del(&n.sparse, head, o);
        z.areas
            .lock()
            .add(&n.sparse, head + 1, o, MigrateType::Movable);
        let e = n.check_free_areas().unwrap_err();
        assert!(e.to_string().contains("not naturally aligned"), "{e}");
    }

    #[test]
    #[cfg_attr(miri, ignore = "slow under Miri: see README")]
    fn detects_free_head_of_wrong_order() {
        let n = node();
        let (head, o) = free_head(&n);
        n.sparse.page(head).unwrap().set_order(o - 1);
        // The memmap walk sees the block's second half as a page in no block ...
        assert!(matches!(n.check(), Err(CheckError::BadPageState { .. })));
        // ... and the free-list walk sees a head of the wrong order.
        assert!(matches!(
            n.check_free_lists(0, ZoneId::Dma32, &mut Vec::new()),
            Err(CheckError::BadFreeListEntry {
                what: "free head of another order",
                ..
            })
        ));
    }

    #[test]
    #[cfg_attr(miri, ignore = "slow under Miri: see README")]
    fn detects_wrong_zone() {
        let n = node();
        let (head, _) = free_head(&n);
        n.sparse.page(head).unwrap().set_zone(ZoneId::Dma as u8);
        assert!(matches!(n.check(), Err(CheckError::WrongZone { pfn, .. }) if pfn == head));
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "a machine and a 128 MiB memremap, two full checks: about 2 minutes under Miri"
    )]
    fn detects_device_pfn_in_a_free_list() {
        let mut n = node();
        n.memremap_pages(4 << 30, 128 << 20, MemremapOptions::new(0))
            .unwrap();
        let dev = (4u64 << 30) >> 12;
        let z = &n.nodes[0].zones[ZoneId::Dma32.index()];
        z.areas.lock().add(&n.sparse, dev, 0, MigrateType::Movable);
        assert_eq!(n.device_pfns_in_free_lists(), 1);
        let e = n.check().unwrap_err();
        assert!(
            matches!(
                e,
                CheckError::BadPageState { .. } | CheckError::DeviceInFreeList { .. }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("0x100000"), "{e}");
    }

    #[test]
    #[cfg_attr(miri, ignore = "slow under Miri: see README")]
    fn detects_counter_drift_and_pcp_damage() {
        let mut n = node();
        dma32(&mut n).add_free(1);
        let e = n.check().unwrap_err();
        let free = dma32(&mut n).nr_free_buddy();
        assert_eq!(
            e.to_string(),
            alloc::format!(
                "node 0 zone DMA32: free (lists) is {} but the walk counted {}",
                free,
                free - 1
            )
        );
        dma32(&mut n).sub_free(1);
        let p = n.alloc_page(Gfp::KERNEL).unwrap();
        n.free_page(p).unwrap();
        n.check().unwrap();
        n.sparse.page_mut(p).unwrap().clear(PageFlags::PCP);
        assert!(n.check().is_err());
    }

    #[test]
    #[cfg_attr(miri, ignore = "slow under Miri: see README")]
    fn detects_orphan_and_broken_links() {
        let mut n = node();
        let p = n.alloc_pages(Gfp::KERNEL, 0).unwrap();
        n.sparse.page(p).unwrap().set_flag_bits(0); // allocated page lost its head flag
        assert!(matches!(n.check(), Err(CheckError::BadPageState { pfn, .. }) if pfn == p));
        n.sparse.page_mut(p).unwrap().set(PageFlags::HEAD);
        n.check().unwrap();
        let (head, _) = free_head(&n);
        n.sparse.page(head).unwrap().set_prev(12345);
        assert!(matches!(
            n.check(),
            Err(CheckError::BadFreeListEntry {
                what: "broken back link",
                ..
            })
        ));
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "a machine and a 128 MiB memremap, several full checks: about 3 minutes under Miri"
    )]
    fn free_area_check_catches_a_freed_device_memmap_block() {
        let mut n = node();
        n.memremap_pages(4 << 30, 128 << 20, MemremapOptions::new(0).altmap(false))
            .unwrap();
        let head = crate::testing::memmap_block_head(&n).expect("a memmap block from the buddy");
        let order = n.page(head).unwrap().order();
        // The public free path refuses it and changes nothing ...
        let e = n.free_pages(head, order).unwrap_err();
        assert_eq!(e.reason, crate::BadPageReason::Memmap);
        n.check().unwrap();
        // ... and a block that got into a free list anyway (the old bug, done by hand) is
        // caught by the free-area check alone.
        let zid = n.page(head).unwrap().zone();
        n.sparse.page_mut(head).unwrap().clear(PageFlags::HEAD);
        let z = &n.nodes[0].zones[zid.index()];
        z.free_one_locked(
            &mut z.areas.lock(),
            &n.sparse,
            head,
            order,
            MigrateType::Movable,
        );
        let e = n.check_free_areas().unwrap_err();
        assert!(
            e.to_string().contains("memmap storage in a free list"),
            "{e}"
        );
        assert!(n.check().is_err());
    }
}
