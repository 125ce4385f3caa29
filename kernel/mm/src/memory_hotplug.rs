//! Memory hotplug: `add_memory`, `online_pages` and the online-page callback.
//!
//! [`Machine::add_memory`] registers hot-added RAM: it refuses a range that overlaps RAM or a
//! device pagemap, maps it ([`Platform::map_ram`]), gives its absent sections struct pages, and
//! raises `max_pfn` when the range ends higher. The memmap is placed **at the start of the
//! hot-added range itself** (Linux's `memmap_on_memory`), so hot-adding needs no free RAM; a
//! range too small to hold its own memmap takes it from the buddy allocator instead. Those
//! memmap pages are present but reserved, never managed. The pages stay offline (reserved)
//! until [`Machine::online_pages`], which grows the zone span and present count and hands the
//! rest of the range in max-order chunks to the current online-page callback. The default
//! ([`Machine::generic_online_page`]) frees each chunk into the buddy allocator of its zone; a
//! driver may install its own to keep hot-added pages reserved (Linux semantics: installing
//! only replaces the generic callback, restoring only succeeds with the callback currently set,
//! named by the token its installation returned).
//! Hot-added RAM belongs to the node the caller names (Linux's `add_memory(nid, ...)`: the
//! DIMM's proximity domain). Its zone is chosen when it is onlined ([`OnlineType`], Linux's
//! `zone_for_pfn_range`): a kernel zone follows the address, like boot RAM; ZONE_MOVABLE takes
//! the whole range. While offline its struct pages carry the zone of their address.

use alloc::vec::Vec;
use core::fmt;

use crate::buddy::max_block_order;
use crate::machine::Machine;
use crate::memblock::MemblockError;
use crate::memory_block::BlockState;
use crate::memory_hotremove::OfflineFailure;
use crate::memremap::{
    MemmapSource, MemremapError, add_sections, check_new_range, fill_range, only_holes,
};
use crate::page::{Page, PageFlags};
use crate::platform::{MapError, Platform};
use crate::section_remove::{HoleRuns, RemoveError};
use crate::sparse::SparseError;
use crate::zone::ZoneId;
use crate::{MAX_ORDER, MAX_PFN_LIMIT, PAGE_SIZE, pfn_down};

/// An online-page callback (`online_page_callback_t`): receives each max-order chunk of a
/// range being onlined.
pub type OnlinePageCallback<P> = fn(&mut Machine<P>, u64, u32);

/// Errors of hotplug operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HotplugError {
    /// Zero-sized range.
    Empty,
    /// Start or size not page-aligned.
    Misaligned,
    /// The range goes beyond the 52-bit physical address space.
    OutOfRange,
    /// The range overlaps RAM `[start, end)`.
    OverlapsRam {
        /// RAM region start.
        start: u64,
        /// RAM region end.
        end: u64,
    },
    /// The range overlaps a device pagemap.
    OverlapsPagemap {
        /// Its index.
        index: usize,
    },
    /// The platform could not map the range or its memmap.
    Map(MapError),
    /// No memory for the memmap.
    NoMemmap,
    /// The section table refused.
    Sparse(SparseError),
    /// memblock's region array is full.
    Memblock(MemblockError),
    /// No hot-added, offline range matches.
    NotAdded,
    /// A custom online-page callback is already installed.
    CallbackBusy,
    /// The callback to restore is not the one installed.
    CallbackMismatch,
    /// generic_online_page on pages that are not being onlined.
    NotOnlining,
    /// The node does not exist.
    BadNode {
        /// The node id given.
        nid: usize,
    },
    /// A pfn range that wraps around or ends beyond the 52-bit physical address space.
    InvalidPfn {
        /// The first pfn given.
        pfn: u64,
        /// The number of pages given.
        nr_pages: u64,
    },
    /// No memory block `nr` (no RAM in that section).
    NoBlock {
        /// The block number given.
        nr: u64,
    },
    /// The memory block is online already (online), or still online (remove).
    BlockOnline {
        /// The block.
        nr: u64,
    },
    /// The memory block is offline already.
    BlockOffline {
        /// The block.
        nr: u64,
    },
    /// The block must join another zone than the one asked for (its DIMM's other blocks
    /// are online there, or it is boot RAM of that zone).
    ZoneConflict {
        /// The block.
        nr: u64,
        /// The zone it must join.
        zone: ZoneId,
    },
    /// offline_pages failed; nothing changed.
    Offline(OfflineFailure),
    /// remove_memory could not take the sections out or unmap the range; nothing changed.
    Remove(RemoveError),
}

impl fmt::Display for HotplugError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("empty range"),
            Self::Misaligned => f.write_str("range not page-aligned"),
            Self::OutOfRange => f.write_str("range beyond the 52-bit physical address space"),
            Self::OverlapsRam { start, end } => write!(
                f,
                "range overlaps System RAM [mem {:#018x}-{:#018x}]",
                start,
                end - 1
            ),
            Self::OverlapsPagemap { index } => {
                write!(f, "range overlaps device pagemap {index}")
            }
            Self::Map(e) => write!(f, "mapping failed: {e}"),
            Self::NoMemmap => f.write_str("no memory for the memmap"),
            Self::Sparse(e) => write!(f, "{e}"),
            Self::Memblock(e) => write!(f, "{e}"),
            Self::NotAdded => f.write_str("no offline hot-added range there"),
            Self::CallbackBusy => f.write_str("an online page callback is already set"),
            Self::CallbackMismatch => f.write_str("not the online page callback currently set"),
            Self::NotOnlining => f.write_str("pages are not part of an onlined hot-added range"),
            Self::BadNode { nid } => write!(f, "node {nid} does not exist"),
            Self::InvalidPfn { pfn, nr_pages } => write!(
                f,
                "pfn range {pfn:#x} + {nr_pages:#x} pages is beyond the physical address space"
            ),
            Self::NoBlock { nr } => write!(f, "memory block {nr} is not present"),
            Self::BlockOnline { nr } => write!(f, "memory{nr} is online"),
            Self::BlockOffline { nr } => write!(f, "memory{nr} is offline already"),
            Self::ZoneConflict { nr, zone } => write!(
                f,
                "memory{nr} can only be onlined to zone {} (valid_zones)",
                zone.name()
            ),
            Self::Offline(o) => write!(f, "{o}"),
            Self::Remove(e) => write!(f, "{e}"),
        }
    }
}

impl From<MemremapError> for HotplugError {
    fn from(e: MemremapError) -> Self {
        match e {
            MemremapError::Empty => Self::Empty,
            MemremapError::Misaligned => Self::Misaligned,
            MemremapError::OutOfRange => Self::OutOfRange,
            MemremapError::IntersectsRam { start, end } => Self::OverlapsRam { start, end },
            MemremapError::IntersectsPagemap { index } => Self::OverlapsPagemap { index },
            MemremapError::Map(m) => Self::Map(m),
            MemremapError::NoMemmap => Self::NoMemmap,
            MemremapError::Sparse(s) => Self::Sparse(s),
            MemremapError::BadNode { nid } => Self::BadNode { nid },
            MemremapError::TooManyPagemaps => Self::Sparse(SparseError::TooManyChunks),
        }
    }
}

/// One hot-added RAM range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HotRange {
    /// First pfn.
    pub start_pfn: u64,
    /// One past the last pfn.
    pub end_pfn: u64,
    /// Pages at the start holding the range's own memmap.
    pub memmap_pages: u64,
    /// Whether online_pages ran.
    pub online: bool,
    /// Onlined into ZONE_MOVABLE (otherwise, and while offline, each page is in the zone of
    /// its address).
    pub movable: bool,
    /// The node the range belongs to.
    pub nid: usize,
}

impl HotRange {
    /// The zone of `pfn` (inside the range).
    pub fn zone_of(&self, pfn: u64) -> ZoneId {
        if self.online && self.movable {
            ZoneId::Movable
        } else {
            ZoneId::for_pfn(pfn)
        }
    }

    /// The first pfn after `pfn` where [`zone_of`](Self::zone_of) may change (at most the end).
    pub fn next_zone_boundary(&self, pfn: u64) -> u64 {
        if self.online && self.movable {
            self.end_pfn
        } else {
            ZoneId::next_boundary(pfn, self.end_pfn)
        }
    }
}

/// How to online memory (Linux's `MMOP_ONLINE`, `MMOP_ONLINE_KERNEL`, `MMOP_ONLINE_MOVABLE`:
/// what `echo online|online_kernel|online_movable > /sys/devices/system/memory/memoryN/state`
/// asks for).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnlineType {
    /// The default policy (`default_zone_for_pfn`): the zone that already spans the range, if
    /// exactly one of the kernel zone and ZONE_MOVABLE does; otherwise ZONE_MOVABLE with
    /// `movable_node`, a kernel zone without.
    #[default]
    Online,
    /// A kernel zone: the one of the address (`default_kernel_zone_for_pfn`).
    Kernel,
    /// ZONE_MOVABLE.
    Movable,
}

/// Names the online-page callback installed by [`Machine::set_online_page_callback`]; restoring
/// needs the token of the callback currently set. (Function pointers themselves cannot be
/// compared reliably in Rust: the same `fn` may have several addresses.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OnlineCallbackToken(u64);

/// Hotplug bookkeeping of a node.
pub(crate) struct HotplugState<P: Platform> {
    /// None: the generic callback.
    callback: Option<(OnlinePageCallback<P>, OnlineCallbackToken)>,
    next_token: u64,
    pub(crate) ranges: Vec<HotRange>,
    /// The struct pages each range had in sections present before it (holes), by range
    /// start pfn, to put back when remove_memory takes the range away.
    pub(crate) holes: Vec<(u64, HoleRuns)>,
    /// The pfn range online_pages is handing to the callback right now.
    onlining: Option<(u64, u64)>,
}

impl<P: Platform> HotplugState<P> {
    pub(crate) const fn new() -> Self {
        Self {
            callback: None,
            next_token: 1,
            ranges: Vec::new(),
            holes: Vec::new(),
            onlining: None,
        }
    }
}

impl<P: Platform> Machine<P> {
    /// `add_memory`: register hot-added RAM `[start, start + size)` on node `nid`, offline.
    /// See the module documentation for where its memmap goes.
    pub fn add_memory(&mut self, nid: usize, start: u64, size: u64) -> Result<(), HotplugError> {
        // Sections of deferred struct pages are not in the section table yet.
        self.finish_deferred_init();
        let end = check_new_range(self, start, size, nid)?;
        let (spfn, epfn) = (pfn_down(start), pfn_down(end));
        if !only_holes(self, spfn, epfn) {
            return Err(HotplugError::OverlapsRam { start, end });
        }
        // System RAM from now on (memblock is the RAM list memremap_pages checks).
        self.memblock
            .add_node(start, size, nid as u16)
            .map_err(HotplugError::Memblock)?;
        if let Err(e) = self.platform.map_ram(start, size) {
            let _ = self.memblock.remove(start, size);
            return Err(HotplugError::Map(e));
        }
        let holes = self.save_holes(spfn, epfn);
        let added = match add_sections(self, spfn, epfn, MemmapSource::InRange, nid) {
            Ok(a) => a,
            Err(e) => {
                if let Err(u) = self.platform.unmap_range(start, size) {
                    log::error!(
                        "add_memory: [mem {start:#018x}-{:#018x}] left mapped: {u}",
                        end - 1
                    );
                }
                let _ = self.memblock.remove(start, size);
                return Err(e.into());
            }
        };
        let mut pfn = spfn;
        while pfn < epfn {
            let next = ZoneId::next_boundary(pfn, epfn);
            let t = Page::new(
                PageFlags::RESERVED.union(PageFlags::OFFLINE),
                ZoneId::for_pfn(pfn),
                nid as u8,
                0,
            );
            fill_range(self, pfn, next, t);
            pfn = next;
        }
        let memmap_end = spfn + added.in_range_pages;
        self.mark_memmap(spfn, added.in_range_pages);
        self.memmap_ram_bytes += added.in_range_pages * PAGE_SIZE;
        self.max_pfn = self.max_pfn.max(epfn);
        self.min_pfn = self.min_pfn.min(spfn);
        self.hotplug.ranges.push(HotRange {
            start_pfn: spfn,
            end_pfn: epfn,
            memmap_pages: memmap_end - spfn,
            online: false,
            movable: false,
            nid,
        });
        self.hotplug.holes.push((spfn, holes));
        self.debug_check();
        Ok(())
    }

    /// `online_pages` with the default policy ([`OnlineType::Online`]).
    pub fn online_pages(&mut self, start_pfn: u64, nr_pages: u64) -> Result<u64, HotplugError> {
        self.online_pages_type(start_pfn, nr_pages, OnlineType::Online)
    }

    /// `zone_for_pfn_range`: whether onlining `[start_pfn, end_pfn)` of node `nid` as
    /// `online_type` puts it in ZONE_MOVABLE (otherwise in the kernel zones of its address).
    pub fn online_to_movable(
        &self,
        online_type: OnlineType,
        nid: usize,
        start_pfn: u64,
        end_pfn: u64,
    ) -> bool {
        match online_type {
            OnlineType::Kernel => false,
            OnlineType::Movable => true,
            OnlineType::Online => {
                let Some(node) = self.node(nid) else {
                    return false;
                };
                let meets = |z: ZoneId| {
                    let zone = node.zone(z);
                    zone.spanned() != 0 && start_pfn < zone.end_pfn() && zone.start_pfn() < end_pfn
                };
                let in_kernel = meets(ZoneId::for_pfn(start_pfn));
                let in_movable = meets(ZoneId::Movable);
                if in_kernel != in_movable {
                    in_movable
                } else {
                    self.movable_node
                }
            }
        }
    }

    /// `online_pages`: online the hot-added range starting at `start_pfn` with `nr_pages`
    /// pages (as added) into the zone `online_type` chooses
    /// ([`online_to_movable`](Self::online_to_movable); `move_pfn_range_to_zone` sets every
    /// struct page's zone): zone span and present pages grow, every page but the range's own
    /// memmap goes in max-order chunks to the online-page callback, zonelists and watermarks
    /// are recomputed. Returns the number of pages handed to the callback.
    pub fn online_pages_type(
        &mut self,
        start_pfn: u64,
        nr_pages: u64,
        online_type: OnlineType,
    ) -> Result<u64, HotplugError> {
        let end_pfn = start_pfn
            .checked_add(nr_pages)
            .filter(|&e| e <= MAX_PFN_LIMIT)
            .ok_or(HotplugError::InvalidPfn {
                pfn: start_pfn,
                nr_pages,
            })?;
        let r = *self
            .hotplug
            .ranges
            .iter()
            .find(|r| r.start_pfn == start_pfn && r.end_pfn == end_pfn && !r.online)
            .ok_or(HotplugError::NotAdded)?;
        Ok(self.online_pfn_range(r.start_pfn, r.end_pfn, online_type))
    }

    /// `memory_block_online` with the default policy ([`OnlineType::Online`]).
    pub fn online_memory_block(&mut self, nr: u64) -> Result<u64, HotplugError> {
        self.online_memory_block_type(nr, OnlineType::Online)
    }

    /// `memory_block_online`: online every offline page of memory block `nr` (hot-added
    /// RAM not onlined yet, or RAM offline_pages took out). The zone: a DIMM whose other
    /// blocks are online keeps their zone, boot RAM its boot zone; otherwise `online_type`
    /// chooses ([`online_to_movable`](Self::online_to_movable)). Asking for another zone
    /// than the one the block must join is refused. Returns the pages handed to the
    /// online-page callback.
    pub fn online_memory_block_type(
        &mut self,
        nr: u64,
        online_type: OnlineType,
    ) -> Result<u64, HotplugError> {
        self.finish_deferred_init();
        let b = self.memory_block(nr).ok_or(HotplugError::NoBlock { nr })?;
        if b.state == BlockState::Online {
            return Err(HotplugError::BlockOnline { nr });
        }
        let (spfn, epfn) = (b.start_pfn(), b.end_pfn());
        let fixed = self
            .hotplug
            .ranges
            .iter()
            .find(|r| r.online && r.start_pfn < epfn && spfn < r.end_pfn)
            .map(|r| r.zone_of(r.start_pfn.max(spfn)))
            .or_else(|| (!b.hot_added).then_some(b.zone).flatten());
        if let Some(zone) = fixed {
            let wants_movable = match online_type {
                OnlineType::Online => None,
                OnlineType::Kernel => Some(false),
                OnlineType::Movable => Some(true),
            };
            if wants_movable.is_some_and(|m| m != (zone == ZoneId::Movable)) {
                return Err(HotplugError::ZoneConflict { nr, zone });
            }
        }
        Ok(self.online_pfn_range(spfn, epfn, online_type))
    }

    /// Online the offline pages of `[spfn, epfn)`: a hot-added range coming online gets its
    /// zone (`move_pfn_range_to_zone` sets every struct page's zone), each page becomes
    /// present in its zone (whose span grows to cover it), memmap storage stays reserved,
    /// the rest goes in max-order chunks to the online-page callback; zonelists and
    /// watermarks are rebuilt.
    fn online_pfn_range(&mut self, spfn: u64, epfn: u64, online_type: OnlineType) -> u64 {
        for i in 0..self.hotplug.ranges.len() {
            let r = self.hotplug.ranges[i];
            if r.online || r.end_pfn <= spfn || epfn <= r.start_pfn {
                continue;
            }
            let movable = self.online_to_movable(
                online_type,
                r.nid,
                r.start_pfn.max(spfn),
                r.end_pfn.min(epfn),
            );
            let range = &mut self.hotplug.ranges[i];
            range.online = true;
            range.movable = movable;
            let r = *range;
            for pfn in r.start_pfn..r.end_pfn {
                if let Some(p) = self.sparse.page(pfn) {
                    p.set_zone(r.zone_of(pfn) as u8);
                }
            }
        }
        // Runs of pages for the callback: offline, not memmap storage, one zone each.
        let mut runs: Vec<(u64, u64, ZoneId)> = Vec::new();
        for pfn in spfn..epfn {
            let Some(p) = self.sparse.page(pfn) else {
                continue;
            };
            if !p.has(PageFlags::OFFLINE) {
                continue;
            }
            p.clear(PageFlags::OFFLINE);
            let zid = p.zone();
            let zone = &mut self.nodes[p.nid()].zones[zid.index()];
            zone.extend_span(pfn, pfn + 1);
            zone.present += 1;
            if p.has(PageFlags::MEMMAP) {
                continue;
            }
            match runs.last_mut() {
                Some(r) if r.1 == pfn && r.2 == zid => r.1 = pfn + 1,
                _ => runs.push((pfn, pfn + 1, zid)),
            }
        }
        self.refresh_hot_ranges(spfn, epfn);
        let cb = self.hotplug.callback.map_or(
            generic_online_page_cb::<P> as OnlinePageCallback<P>,
            |(f, _)| f,
        );
        self.hotplug.onlining = Some((spfn, epfn));
        let mut handed = 0;
        for (mut pfn, end, _) in runs {
            while pfn < end {
                let order = max_block_order(pfn, end).min(MAX_ORDER);
                cb(self, pfn, order);
                handed += 1 << order;
                pfn += 1 << order;
            }
        }
        self.hotplug.onlining = None;
        self.build_all_zonelists();
        self.setup_per_zone_wmarks();
        self.debug_check();
        handed
    }

    /// Each hot-added range meeting `[spfn, epfn)` (the pages just onlined or offlined) is
    /// online while any of its RAM pages is.
    pub(crate) fn refresh_hot_ranges(&mut self, spfn: u64, epfn: u64) {
        for i in 0..self.hotplug.ranges.len() {
            let r = self.hotplug.ranges[i];
            if r.end_pfn <= spfn || epfn <= r.start_pfn {
                continue;
            }
            let online = (r.start_pfn..r.end_pfn).any(|pfn| {
                self.sparse.page(pfn).is_some_and(|p| {
                    !p.flags()
                        .intersects(PageFlags::OFFLINE.union(PageFlags::HOLE))
                })
            });
            if r.online && !online {
                // The whole range is offline: it leaves its zone; its struct pages carry
                // the zone of their address again until it is onlined.
                self.hotplug.ranges[i].movable = false;
                for pfn in r.start_pfn..r.end_pfn {
                    if let Some(p) = self.sparse.page(pfn) {
                        p.set_zone(ZoneId::for_pfn(pfn) as u8);
                    }
                }
            }
            self.hotplug.ranges[i].online = online;
        }
    }

    /// `add_memory` then `online_pages` for the whole range.
    pub fn add_and_online_memory(
        &mut self,
        nid: usize,
        start: u64,
        size: u64,
    ) -> Result<u64, HotplugError> {
        self.add_memory(nid, start, size)?;
        self.online_pages(pfn_down(start), size / PAGE_SIZE)
    }

    /// The hot-added RAM ranges.
    pub fn hotplug_ranges(&self) -> &[HotRange] {
        &self.hotplug.ranges
    }

    /// `generic_online_page`: free a chunk of an onlined hot-added range into the buddy
    /// allocator of its zone (clearing `PG_reserved`, counting the pages as managed). Drivers
    /// that kept pages reserved call it to release them later.
    pub fn generic_online_page(&mut self, pfn: u64, order: u32) -> Result<(), HotplugError> {
        if order > MAX_ORDER {
            return Err(HotplugError::NotOnlining);
        }
        let n = 1u64 << order;
        let end = pfn
            .checked_add(n)
            .ok_or(HotplugError::InvalidPfn { pfn, nr_pages: n })?;
        let range = self
            .hotplug
            .ranges
            .iter()
            .find(|r| r.online && pfn >= r.start_pfn + r.memmap_pages && end <= r.end_pfn);
        let onlining = self
            .hotplug
            .onlining
            .is_some_and(|(s, e)| pfn >= s && end <= e);
        let zone_of = |pfn: u64| match range {
            Some(r) => r.zone_of(pfn),
            None => self.sparse.page(pfn).map_or(ZoneId::Device, |p| p.zone()),
        };
        let (nid, zid) = match (range, onlining) {
            (Some(r), _) => (r.nid, zone_of(pfn)),
            (None, true) => (
                self.sparse.page(pfn).map_or(usize::MAX, |p| p.nid()),
                zone_of(pfn),
            ),
            (None, false) => return Err(HotplugError::NotOnlining),
        };
        if nid >= self.nodes.len() || zid >= ZoneId::Device {
            return Err(HotplugError::NotOnlining);
        }
        if !pfn.is_multiple_of(n) || zone_of(end - 1) != zid {
            return Err(HotplugError::NotOnlining);
        }
        let Some(pages) = self.sparse.pages_mut(pfn, n) else {
            return Err(HotplugError::NotOnlining);
        };
        let ok = pages.iter().all(|p| {
            p.flag_bits() & !PageFlags::RESERVED.bits() == 0
                && p.has(PageFlags::RESERVED)
                && p.zone_index() == zid as u8
                && p.nid() == nid
        });
        if !ok {
            return Err(HotplugError::NotOnlining);
        }
        for p in pages.iter_mut() {
            p.clear(PageFlags::RESERVED);
        }
        let zone = &mut self.nodes[nid].zones[zid.index()];
        zone.managed += n;
        let zone = &self.nodes[nid].zones[zid.index()];
        let mt = self
            .sparse
            .pageblock_migratetype(pfn)
            .unwrap_or(crate::pageblock::MigrateType::Movable);
        zone.free_one_locked(&mut zone.areas.lock(), &self.sparse, pfn, order, mt);
        Ok(())
    }

    /// `set_online_page_callback`: install a driver's callback. Succeeds only while the generic
    /// callback is in place; returns the token that restores it.
    pub fn set_online_page_callback(
        &mut self,
        cb: OnlinePageCallback<P>,
    ) -> Result<OnlineCallbackToken, HotplugError> {
        if self.hotplug.callback.is_some() {
            return Err(HotplugError::CallbackBusy);
        }
        let token = OnlineCallbackToken(self.hotplug.next_token);
        self.hotplug.next_token += 1;
        self.hotplug.callback = Some((cb, token));
        Ok(token)
    }

    /// `restore_online_page_callback`: put the generic callback back. Succeeds only with the
    /// token of the callback currently set.
    pub fn restore_online_page_callback(
        &mut self,
        token: OnlineCallbackToken,
    ) -> Result<(), HotplugError> {
        match self.hotplug.callback {
            Some((_, cur)) if cur == token => {
                self.hotplug.callback = None;
                Ok(())
            }
            _ => Err(HotplugError::CallbackMismatch),
        }
    }

    /// Whether the generic online-page callback is in place.
    pub fn online_page_callback_is_generic(&self) -> bool {
        self.hotplug.callback.is_none()
    }
}

fn generic_online_page_cb<P: Platform>(node: &mut Machine<P>, pfn: u64, order: u32) {
    if let Err(e) = node.generic_online_page(pfn, order) {
        log::error!("online_pages: pfn {pfn:#x} order {order}: {e}");
    }
}
