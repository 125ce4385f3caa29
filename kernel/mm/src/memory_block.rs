//! Memory blocks (Linux's `drivers/base/memory.c`): the unit in which RAM goes online and
//! offline, 128 MiB on x86_64 (`memory_block_size_bytes`), one section here.
//!
//! A block exists for every section that holds System RAM (memblock's memory regions: boot
//! RAM and hot-added RAM). Its state is not stored beside the memmap but read from it: a
//! block is **offline** when every RAM page it holds carries [`PageFlags::OFFLINE`] (hot-added
//! and not onlined yet, or taken out by `offline_pages`), **online** otherwise, so the state
//! can never disagree with the pages. A section whose struct pages still wait for the
//! deferred init is boot RAM and online. Block `N` covers pfns
//! `[N * PAGES_PER_SECTION, (N + 1) * PAGES_PER_SECTION)`; its `phys_index` is `N`.
//!
//! [`Machine::write_memory_blocks`] prints them as `/sys/devices/system/memory/memoryN/`
//! shows them: `state` (`online`/`offline`), `phys_index` (`%08lx`), `valid_zones` (the zone
//! of an online block, `none` for one spanning two zones; for an offline one the zones it may
//! be onlined to, the default first, as `zone_for_pfn_range` picks it) and `removable`
//! (always 1 with memory hot-remove, as Linux 6.1 prints it).

use alloc::vec::Vec;
use core::fmt;

use crate::machine::Machine;
use crate::page::PageFlags;
use crate::platform::Platform;
use crate::sparse::{PAGES_PER_SECTION, pfn_to_section_nr, section_nr_to_pfn};
use crate::zone::ZoneId;
use crate::{PAGE_SHIFT, pfn_down, pfn_up};

/// Bytes per memory block (`memory_block_size_bytes()`, 128 MiB).
pub const MEMORY_BLOCK_SIZE: u64 = PAGES_PER_SECTION << PAGE_SHIFT;

/// `memory_block->state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockState {
    /// `MEM_ONLINE`.
    Online,
    /// `MEM_OFFLINE`.
    Offline,
}

impl BlockState {
    /// The word sysfs' `state` file shows.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Online => "online",
            Self::Offline => "offline",
        }
    }
}

/// One memory block, as read from the memmap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryBlock {
    /// Block number (`memoryN`, `phys_index`): the section number.
    pub nr: u64,
    /// Online or offline.
    pub state: BlockState,
    /// The node of its RAM (`memory_block->nid`).
    pub nid: usize,
    /// The single zone its RAM is in; None when it spans two zones (block 0: DMA and
    /// DMA32) or two nodes.
    pub zone: Option<ZoneId>,
    /// RAM pages in the block (holes not counted).
    pub ram_pages: u64,
    /// Whether some of its RAM was hot-added.
    pub hot_added: bool,
    /// `valid_zones`: the zone of an online block; for an offline one the zones it may be
    /// onlined to, the default first (none: it spans two zones).
    pub valid: [Option<ZoneId>; 2],
}

impl MemoryBlock {
    /// First pfn of the block.
    pub const fn start_pfn(&self) -> u64 {
        section_nr_to_pfn(self.nr)
    }

    /// One past the last pfn of the block.
    pub const fn end_pfn(&self) -> u64 {
        section_nr_to_pfn(self.nr + 1)
    }

    /// `valid_zones` as sysfs prints it: zone names separated by spaces, `none` if none.
    pub fn valid_zones(&self) -> ValidZones {
        ValidZones(self.valid)
    }
}

/// The `valid_zones` line of a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ValidZones(pub [Option<ZoneId>; 2]);

impl fmt::Display for ValidZones {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            [None, _] => f.write_str("none"),
            [Some(a), None] => f.write_str(a.name()),
            [Some(a), Some(b)] => write!(f, "{} {}", a.name(), b.name()),
        }
    }
}

impl fmt::Display for MemoryBlock {
    /// `memory33 online Normal node 0 [mem 0x...-0x...] phys_index 00000021 removable 1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "memory{:<5} {:<7} {:<6} node {} [mem {:#018x}-{:#018x}] phys_index {:08x} removable 1 valid_zones {}",
            self.nr,
            self.state.name(),
            match (self.state, self.zone) {
                (BlockState::Online, Some(z)) => z.name(),
                (BlockState::Online, None) => "none",
                (BlockState::Offline, _) => "-",
            },
            self.nid,
            crate::pfn_phys(self.start_pfn()),
            crate::pfn_phys(self.end_pfn()) - 1,
            self.nr,
            self.valid_zones()
        )
    }
}

impl<P: Platform> Machine<P> {
    /// Every memory block, by number (`/sys/devices/system/memory/memory*`).
    pub fn memory_blocks(&self) -> Vec<MemoryBlock> {
        let mut nrs: Vec<u64> = Vec::new();
        for r in self.memblock.memory().regions() {
            let (s, e) = (pfn_up(r.base), pfn_down(r.end()));
            if s >= e {
                continue;
            }
            for nr in pfn_to_section_nr(s)..=pfn_to_section_nr(e - 1) {
                if nrs.last() != Some(&nr) {
                    nrs.push(nr);
                }
            }
        }
        nrs.sort_unstable();
        nrs.dedup();
        nrs.into_iter()
            .filter_map(|nr| self.memory_block(nr))
            .collect()
    }

    /// Memory block `nr`, if it holds RAM (`find_memory_block`).
    pub fn memory_block(&self, nr: u64) -> Option<MemoryBlock> {
        let (spfn, epfn) = (section_nr_to_pfn(nr), section_nr_to_pfn(nr.checked_add(1)?));
        let Some(pages) = self.sparse.pages(spfn, epfn - spfn) else {
            // Deferred struct pages: boot RAM, online.
            let r = self.memblock.memory().regions().iter().find(|r| {
                pfn_up(r.base) < epfn
                    && spfn < pfn_down(r.end())
                    && pfn_up(r.base) < pfn_down(r.end())
            })?;
            let (s, e) = (spfn.max(pfn_up(r.base)), epfn.min(pfn_down(r.end())));
            let zone = (ZoneId::for_pfn(s) == ZoneId::for_pfn(e - 1)).then(|| ZoneId::for_pfn(s));
            return Some(MemoryBlock {
                nr,
                state: BlockState::Online,
                nid: usize::from(r.nid),
                zone,
                ram_pages: e - s,
                hot_added: false,
                valid: [zone, None],
            });
        };
        let mut ram = 0u64;
        let mut online = false;
        let mut first: Option<(usize, ZoneId)> = None;
        let mut mixed = false;
        for p in pages {
            if p.has(PageFlags::HOLE) || p.is_device() {
                continue;
            }
            ram += 1;
            online |= !p.has(PageFlags::OFFLINE);
            match first {
                None => first = Some((p.nid(), p.zone())),
                Some((n, z)) => mixed |= z != p.zone() || n != p.nid(),
            }
        }
        let (nid, zone) = first?;
        let hot_added = self
            .hotplug
            .ranges
            .iter()
            .any(|h| h.start_pfn < epfn && spfn < h.end_pfn);
        let zone = (!mixed).then_some(zone);
        let fixed = self
            .hotplug
            .ranges
            .iter()
            .find(|h| h.online && h.start_pfn < epfn && spfn < h.end_pfn)
            .map(|h| h.zone_of(h.start_pfn.max(spfn)));
        let valid = match (online, fixed, zone) {
            (_, _, None) => [None, None],
            (true, _, z) => [z, None],
            (false, Some(f), _) => [Some(f), None],
            (false, None, z) if !hot_added => [z, None],
            (false, None, Some(z)) => {
                let movable = self.online_to_movable(
                    crate::memory_hotplug::OnlineType::Online,
                    nid,
                    spfn,
                    epfn,
                );
                if movable {
                    [Some(ZoneId::Movable), Some(z)]
                } else {
                    [Some(z), Some(ZoneId::Movable)]
                }
            }
        };
        Some(MemoryBlock {
            nr,
            state: if online {
                BlockState::Online
            } else {
                BlockState::Offline
            },
            nid,
            zone,
            ram_pages: ram,
            hot_added,
            valid,
        })
    }

    /// `hotplug list`'s block lines: one per memory block, in the words of sysfs.
    pub fn write_memory_blocks(&self, out: &mut impl fmt::Write) -> fmt::Result {
        for b in self.memory_blocks() {
            writeln!(out, "{b}")?;
        }
        Ok(())
    }
}
