//! ZONE_MOVABLE placement as Linux 6.1 computes it at boot, hardware-free and pure: from the
//! RAM ranges per node (memblock's regions as pfn ranges), the SRAT's hot-pluggable ranges and
//! the `kernelcore=` / `movablecore=` / `movable_node` parameters, the pfn each node's Movable
//! zone starts at (`zone_movable_pfn[nid]`, 0 for none), and each zone's start, span and present
//! pages per node once Movable is carved out of the highest populated zone.
//!
//! This module owns that arithmetic and its boot lines, nothing else: it builds no zone
//! (mm_init.rs sizes the zones from [`calculate_node_totalpages`] and places each pfn by
//! [`ZoneMovable::pfn`]). It
//! mirrors, from Linux 6.1's mm/page_alloc.c (mm/mm_init.c in later kernels):
//! - [`find_usable_zone_for_movable`], [`find_zone_movable_pfns_for_nodes`] (with
//!   `early_calculate_totalpages` and the `out2` rounding to [`MAX_ORDER_NR_PAGES`]);
//! - [`adjust_zone_range_for_zone_movable`], [`zone_spanned_pages_in_node`],
//!   [`zone_absent_pages_in_node`], [`absent_pages_in_range`], [`get_pfn_range_for_nid`] and
//!   the per-zone part of [`calculate_node_totalpages`];
//! - the lines `free_area_init` prints: [`ArchZoneRanges::write`] (`Zone ranges:`) followed by
//!   [`ZoneMovable::write`] (`Movable zone start for each node`, then `  Node N: 0x%016llx`
//!   for each node with a Movable zone), before `Early memory node ranges`.
//!
//! Zones are Linux's `enum zone_type` for x86_64 ([`ZoneId`]: DMA, DMA32, Normal, Movable,
//! Device). The parameters come in as [`CoreParams`], the six variables Linux keeps, as the
//! firmware crate parses them from the command line.
//!
//! Linux's quirks are kept: both `kernelcore=` and `movablecore=` may be given and the larger
//! kernel part wins; a percentage of 100 or more, or a size at least the total, leaves no
//! Movable zone; `movable_node` ignores both sizes; a node too small for its even share of
//! kernelcore makes the next pass give the rest to the other nodes. No memory is ever mirrored
//! here (the bootloader passes no EFI attributes), so `kernelcore=mirror` behaves as 6.1 on a
//! machine without mirrored memory: all memory from 4 GiB up becomes Movable, and memory below
//! 4 GiB draws the warning `This configuration results in unmirrored kernel memory.`.
//!
//! Differences: every sum saturates and percentages are computed in 128 bits, so no input can
//! overflow or panic (Linux wraps); ranges are sorted by start pfn first, empty ones dropped.

use alloc::vec::Vec;
use core::fmt::{self, Write};

use crate::zone::{MAX_DMA_PFN, MAX_DMA32_PFN, MAX_NR_ZONES, ZoneId};
use crate::{MAX_ORDER, pfn_phys};

/// A NUMA node id, as memblock stores it.
pub type Nid = u16;

/// Pages in a block of the highest buddy order (Linux 6.1's `MAX_ORDER_NR_PAGES`, 4 MiB): the
/// Movable zone starts on such a boundary.
pub const MAX_ORDER_NR_PAGES: u64 = 1 << MAX_ORDER;

/// The first pfn at 4 GiB (`PHYS_PFN(SZ_4G)`), where `kernelcore=mirror` may start Movable.
pub const PFN_4G: u64 = MAX_DMA32_PFN;

/// The ZONE_MOVABLE parameters, as Linux keeps them (sizes in pages; all zero / false: no
/// Movable zone): the firmware crate's command-line parse result, used as it is.
pub type CoreParams = firmware::movable::MovableParams;

/// `arch_zone_lowest_possible_pfn[]` / `arch_zone_highest_possible_pfn[]`: each zone's
/// possible pfn range `[lowest, highest)` over the whole machine (Movable's is empty, 0..0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArchZoneRanges {
    /// Lowest pfn per zone, in [`ZoneId`] index order.
    pub lowest: [u64; MAX_NR_ZONES],
    /// Highest pfn (exclusive) per zone.
    pub highest: [u64; MAX_NR_ZONES],
}

impl ArchZoneRanges {
    /// `free_area_init`'s loop: zones in ascending order from `start_pfn` (the first pfn of
    /// memblock memory), each ending at `max(max_zone_pfn[zone], start)`; Movable skipped.
    pub fn new(start_pfn: u64, max_zone_pfn: [u64; MAX_NR_ZONES]) -> Self {
        let mut lowest = [0; MAX_NR_ZONES];
        let mut highest = [0; MAX_NR_ZONES];
        let mut start = start_pfn;
        for z in ZoneId::ALL {
            if z == ZoneId::Movable {
                continue;
            }
            let end = max_zone_pfn[z.index()].max(start);
            lowest[z.index()] = start;
            highest[z.index()] = end;
            start = end;
        }
        Self { lowest, highest }
    }

    /// x86_64's `zone_sizes_init` for RAM from `start_pfn` to `max_pfn`: DMA up to 16 MiB,
    /// DMA32 up to 4 GiB, Normal up to max_pfn (x86_64 makes `max_low_pfn` equal `max_pfn`),
    /// Device empty.
    pub fn x86_64(start_pfn: u64, max_pfn: u64) -> Self {
        let mut max_zone_pfn = [0; MAX_NR_ZONES];
        max_zone_pfn[ZoneId::Dma.index()] = MAX_DMA_PFN.min(max_pfn);
        max_zone_pfn[ZoneId::Dma32.index()] = MAX_DMA32_PFN.min(max_pfn);
        max_zone_pfn[ZoneId::Normal.index()] = max_pfn;
        Self::new(start_pfn, max_zone_pfn)
    }

    /// [`Self::x86_64`] for the RAM in `mem` (its lowest start and highest end).
    pub fn for_memory(mem: &[(u64, u64, Nid)]) -> Self {
        let ranges = mem_pfn_ranges(mem);
        let start = ranges.first().map_or(0, |r| r.0);
        let end = ranges.iter().map(|r| r.1).max().unwrap_or(0);
        Self::x86_64(start, end)
    }

    /// `[lowest, highest)` of one zone.
    pub fn range(&self, zone: ZoneId) -> (u64, u64) {
        (self.lowest[zone.index()], self.highest[zone.index()])
    }

    /// `Zone ranges:` and `  %-8s [mem %#018Lx-%#018Lx]` / `empty` per zone except Movable.
    pub fn write(&self, w: &mut impl Write) -> fmt::Result {
        writeln!(w, "Zone ranges:")?;
        for z in ZoneId::ALL {
            if z == ZoneId::Movable {
                continue;
            }
            let (lo, hi) = self.range(z);
            write!(w, "  {:<8} ", z.name())?;
            if lo == hi {
                writeln!(w, "empty")?;
            } else {
                writeln!(
                    w,
                    "[mem {:#018x}-{:#018x}]",
                    pfn_phys(lo),
                    pfn_phys(hi).wrapping_sub(1)
                )?;
            }
        }
        Ok(())
    }
}

/// A warning [`find_zone_movable_pfns_for_nodes`] prints (Linux's `pr_warn`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MovableWarning {
    /// `kernelcore=mirror` with memory below 4 GiB that is not mirrored.
    UnmirroredKernelMemory,
}

impl fmt::Display for MovableWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnmirroredKernelMemory => {
                f.write_str("This configuration results in unmirrored kernel memory.")
            }
        }
    }
}

/// The result of [`find_zone_movable_pfns_for_nodes`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneMovable {
    /// `zone_movable_pfn[nid]`: the first pfn of the node's Movable zone, 0 for none; one
    /// entry per node id up to the highest one with memory.
    pub zone_movable_pfn: Vec<u64>,
    /// `movable_zone`: the zone Movable is taken from (the highest populated one).
    pub movable_zone: ZoneId,
    /// `mirrored_kernelcore` (changes how the other zones are cut, see
    /// [`adjust_zone_range_for_zone_movable`]).
    pub mirrored_kernelcore: bool,
    /// Warnings to print, in order.
    pub warnings: Vec<MovableWarning>,
}

impl ZoneMovable {
    /// No Movable zone anywhere (what boot without the parameters gives).
    pub fn none(arch: &ArchZoneRanges) -> Self {
        Self {
            zone_movable_pfn: Vec::new(),
            movable_zone: find_usable_zone_for_movable(arch),
            mirrored_kernelcore: false,
            warnings: Vec::new(),
        }
    }

    /// `zone_movable_pfn[nid]` (0 for a node without a Movable zone or an unknown node).
    pub fn pfn(&self, nid: Nid) -> u64 {
        self.zone_movable_pfn
            .get(usize::from(nid))
            .copied()
            .unwrap_or(0)
    }

    /// True when some node has a Movable zone.
    pub fn any(&self) -> bool {
        self.zone_movable_pfn.iter().any(|&p| p != 0)
    }

    /// [`boot_zone`] on these Movable starts.
    #[inline]
    pub fn zone_of(&self, nid: usize, pfn: u64) -> ZoneId {
        boot_zone(&self.zone_movable_pfn, nid, pfn)
    }

    /// `Movable zone start for each node` and `  Node %d: %#018Lx` per node with a Movable
    /// zone (its start address), as `free_area_init` prints them after `Zone ranges:`.
    pub fn write(&self, w: &mut impl Write) -> fmt::Result {
        writeln!(w, "Movable zone start for each node")?;
        for (nid, &pfn) in self.zone_movable_pfn.iter().enumerate() {
            if pfn != 0 {
                writeln!(w, "  Node {nid}: {:#018x}", pfn_phys(pfn))?;
            }
        }
        Ok(())
    }
}

/// The zones' possible ranges and the Movable placement for memblock's RAM, as
/// [`Machine::init_with`](crate::Machine::init_with) computes them: `hotpluggable` are the
/// SRAT's hot-pluggable byte ranges `[start, end)` (read only with `movable_node`).
pub fn zone_movable_for(
    memblock: &crate::Memblock,
    hotpluggable: &[(u64, u64)],
    core: &CoreParams,
) -> (ArchZoneRanges, ZoneMovable) {
    let mem = crate::mm_init::memory_pfn_ranges(memblock);
    let arch = ArchZoneRanges::for_memory(&mem);
    let hot: Vec<(u64, u64)> = hotpluggable
        .iter()
        .map(|&(s, e)| (crate::pfn_up(s), crate::pfn_down(e)))
        .collect();
    let zm = find_zone_movable_pfns_for_nodes(&mem, &hot, core, &arch);
    (arch, zm)
}

/// The RAM zone boot puts `pfn` of node `nid` in, given each node's Movable start
/// (`zone_movable_pfn`, 0 or missing for none): Movable from that start on, otherwise the zone
/// its address decides. (With `kernelcore=mirror` every pfn from the start on is Movable, as
/// nothing is mirrored.)
#[inline]
pub fn boot_zone(zone_movable_pfn: &[u64], nid: usize, pfn: u64) -> ZoneId {
    match zone_movable_pfn.get(nid) {
        Some(&m) if m != 0 && pfn >= m => ZoneId::Movable,
        _ => ZoneId::for_pfn(pfn),
    }
}

/// The first pfn after `pfn`, at most `end`, where [`boot_zone`] may change on node `nid`.
#[inline]
pub fn next_boot_zone_boundary(zone_movable_pfn: &[u64], nid: usize, pfn: u64, end: u64) -> u64 {
    let b = ZoneId::next_boundary(pfn, end);
    match zone_movable_pfn.get(nid) {
        Some(&m) if m > pfn && m < b => m,
        _ => b,
    }
}

/// The RAM ranges in walking order (sorted by start, empty ones dropped), as
/// `for_each_mem_pfn_range` yields them.
fn mem_pfn_ranges(mem: &[(u64, u64, Nid)]) -> Vec<(u64, u64, Nid)> {
    let mut v: Vec<_> = mem.iter().copied().filter(|r| r.0 < r.1).collect();
    v.sort_unstable();
    v
}

/// Node ids with memory, ascending (`for_each_node_state(nid, N_MEMORY)`).
fn memory_nodes(ranges: &[(u64, u64, Nid)]) -> Vec<Nid> {
    let mut v: Vec<Nid> = ranges.iter().map(|r| r.2).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// `find_usable_zone_for_movable`: the highest zone (Movable skipped) whose possible range is
/// not empty; DMA when none is.
pub fn find_usable_zone_for_movable(arch: &ArchZoneRanges) -> ZoneId {
    ZoneId::ALL
        .into_iter()
        .rev()
        .filter(|&z| z != ZoneId::Movable)
        .find(|&z| arch.highest[z.index()] > arch.lowest[z.index()])
        .unwrap_or(ZoneId::Dma)
}

/// `get_pfn_range_for_nid`: the lowest start and highest end of the node's RAM, `(0, 0)` for a
/// node without any.
pub fn get_pfn_range_for_nid(mem: &[(u64, u64, Nid)], nid: Nid) -> (u64, u64) {
    let mut span: Option<(u64, u64)> = None;
    for &(s, e, n) in mem {
        if n == nid && s < e {
            span = Some(span.map_or((s, e), |(a, b)| (a.min(s), b.max(e))));
        }
    }
    span.unwrap_or((0, 0))
}

/// `round_up(x, MAX_ORDER_NR_PAGES)`, saturating.
fn round_up_max_order(x: u64) -> u64 {
    x.checked_next_multiple_of(MAX_ORDER_NR_PAGES)
        .unwrap_or(u64::MAX)
}

/// `totalpages * 100 * percent / 10000` without overflow.
fn percent_of(totalpages: u64, percent: u64) -> u64 {
    let v = u128::from(totalpages) * 100 * u128::from(percent) / 10000;
    u64::try_from(v).unwrap_or(u64::MAX)
}

/// Keeps the lowest non-zero candidate, as Linux's `zone_movable_pfn[nid] ? min(...) : start`.
fn lower_movable_start(slot: &mut u64, start: u64) {
    *slot = if *slot != 0 {
        (*slot).min(start)
    } else {
        start
    };
}

/// Linux 6.1's `find_zone_movable_pfns_for_nodes`.
///
/// - `mem`: the RAM as memblock's memory regions, `(start_pfn, end_pfn, nid)` (the kernel's
///   memblock after page 0 and the BIOS hole are removed);
/// - `hotpluggable`: pfn ranges the SRAT marks hot-pluggable (memblock's `MEMBLOCK_HOTPLUG`
///   regions are their intersections with `mem`); read only with `movable_node`;
/// - `arch`: the zones' possible ranges ([`ArchZoneRanges::for_memory`] on x86_64).
///
/// Kernel memory (`required_kernelcore`, or all but `required_movablecore` rounded up to
/// [`MAX_ORDER_NR_PAGES`], the larger of the two when both are given; percentages of the total
/// pages) is spread evenly across the nodes with memory from the lowest pfns up, counting what
/// lies below the Movable-capable zone as kernel memory; each node's Movable zone then starts
/// where its share ends, rounded up to [`MAX_ORDER_NR_PAGES`] (none when that reaches the node's
/// end).
pub fn find_zone_movable_pfns_for_nodes(
    mem: &[(u64, u64, Nid)],
    hotpluggable: &[(u64, u64)],
    params: &CoreParams,
    arch: &ArchZoneRanges,
) -> ZoneMovable {
    let ranges = mem_pfn_ranges(mem);
    let nodes = memory_nodes(&ranges);
    let nr_node_ids = nodes.last().map_or(0, |&n| usize::from(n) + 1);
    let mut zone_movable_pfn = alloc::vec![0u64; nr_node_ids];
    let mut warnings = Vec::new();
    // early_calculate_totalpages
    let totalpages = ranges.iter().fold(0u64, |t, r| t.saturating_add(r.1 - r.0));
    let mut usable_nodes = nodes.len() as u64;
    let movable_zone = find_usable_zone_for_movable(arch);
    let result = |zone_movable_pfn, warnings| ZoneMovable {
        zone_movable_pfn,
        movable_zone,
        mirrored_kernelcore: params.mirrored_kernelcore,
        warnings,
    };

    'out2: {
        if params.movable_node {
            for &(s, e, nid) in &ranges {
                for &(hs, he) in hotpluggable {
                    let (base, end) = (s.max(hs), e.min(he));
                    if base < end {
                        lower_movable_start(&mut zone_movable_pfn[usize::from(nid)], base);
                    }
                }
            }
            break 'out2;
        }

        if params.mirrored_kernelcore {
            // No region is mirrored: all of them are candidates.
            let mut mem_below_4gb_not_mirrored = false;
            for &(s, _, nid) in &ranges {
                if s < PFN_4G {
                    mem_below_4gb_not_mirrored = true;
                    continue;
                }
                lower_movable_start(&mut zone_movable_pfn[usize::from(nid)], s);
            }
            if mem_below_4gb_not_mirrored {
                warnings.push(MovableWarning::UnmirroredKernelMemory);
            }
            break 'out2;
        }

        let mut required_kernelcore = params.required_kernelcore;
        let mut required_movablecore = params.required_movablecore;
        if params.required_kernelcore_percent != 0 {
            required_kernelcore = percent_of(totalpages, params.required_kernelcore_percent);
        }
        if params.required_movablecore_percent != 0 {
            required_movablecore = percent_of(totalpages, params.required_movablecore_percent);
        }

        // movablecore= becomes the kernelcore that leaves that much; the larger kernelcore
        // wins when both are given.
        if required_movablecore != 0 {
            required_movablecore = round_up_max_order(required_movablecore).min(totalpages);
            let corepages = totalpages - required_movablecore;
            required_kernelcore = required_kernelcore.max(corepages);
        }

        // No kernelcore, or at least all memory: no ZONE_MOVABLE (Linux's `goto out`).
        if required_kernelcore == 0 || required_kernelcore >= totalpages {
            return result(alloc::vec![0; nr_node_ids], warnings);
        }

        // The lowest pfn ZONE_MOVABLE can be at.
        let usable_startpfn = arch.lowest[movable_zone.index()];

        loop {
            // restart: spread kernelcore as evenly as possible over the nodes.
            let mut kernelcore_node = required_kernelcore / usable_nodes.max(1);
            for &nid in &nodes {
                let slot = usize::from(nid);
                if required_kernelcore < kernelcore_node {
                    kernelcore_node = required_kernelcore / usable_nodes.max(1);
                }
                let mut kernelcore_remaining = kernelcore_node;
                for &(s, end_pfn, _) in ranges.iter().filter(|r| r.2 == nid) {
                    let mut start_pfn = s.max(zone_movable_pfn[slot]);
                    if start_pfn >= end_pfn {
                        continue;
                    }
                    // What lies below the Movable-capable zone is kernel memory anyway.
                    if start_pfn < usable_startpfn {
                        let kernel_pages = end_pfn.min(usable_startpfn) - start_pfn;
                        kernelcore_remaining -= kernel_pages.min(kernelcore_remaining);
                        required_kernelcore -= kernel_pages.min(required_kernelcore);
                        if end_pfn <= usable_startpfn {
                            // Fully accounted: push the start past it so that a later pass
                            // does not count it again.
                            zone_movable_pfn[slot] = end_pfn;
                            continue;
                        }
                        start_pfn = usable_startpfn;
                    }
                    let size_pages = (end_pfn - start_pfn).min(kernelcore_remaining);
                    zone_movable_pfn[slot] = start_pfn + size_pages;
                    required_kernelcore -= required_kernelcore.min(size_pages);
                    kernelcore_remaining -= size_pages;
                    if kernelcore_remaining == 0 {
                        break;
                    }
                }
            }
            // Still kernelcore to place: another pass with one node less, pushing the
            // starts further along on the nodes that still have memory.
            usable_nodes = usable_nodes.saturating_sub(1);
            if !(usable_nodes != 0 && required_kernelcore > usable_nodes) {
                break;
            }
        }
    }

    // out2: align every start to MAX_ORDER_NR_PAGES; none when that reaches the node's end.
    for (nid, slot) in zone_movable_pfn.iter_mut().enumerate() {
        *slot = round_up_max_order(*slot);
        let (_, end_pfn) = get_pfn_range_for_nid(&ranges, nid as Nid);
        if *slot >= end_pfn {
            *slot = 0;
        }
    }
    result(zone_movable_pfn, warnings)
}

/// `adjust_zone_range_for_zone_movable`: with a Movable zone on `nid`, Movable spans from its
/// start to the node's end (at most the end of the zone it is taken from); a zone it starts
/// inside ends there (unless `kernelcore=mirror`, where the zones overlap and the absent pages
/// tell them apart); a zone wholly above its start becomes empty.
pub fn adjust_zone_range_for_zone_movable(
    zm: &ZoneMovable,
    arch: &ArchZoneRanges,
    nid: Nid,
    zone_type: ZoneId,
    node_end_pfn: u64,
    zone_start_pfn: &mut u64,
    zone_end_pfn: &mut u64,
) {
    let movable = zm.pfn(nid);
    if movable == 0 {
        return;
    }
    if zone_type == ZoneId::Movable {
        *zone_start_pfn = movable;
        *zone_end_pfn = node_end_pfn.min(arch.highest[zm.movable_zone.index()]);
    } else if !zm.mirrored_kernelcore && *zone_start_pfn < movable && *zone_end_pfn > movable {
        *zone_end_pfn = movable;
    } else if *zone_start_pfn >= movable {
        *zone_start_pfn = *zone_end_pfn;
    }
}

/// The node's range clamped to the zone's possible range, then
/// [`adjust_zone_range_for_zone_movable`]: the first steps of both
/// [`zone_spanned_pages_in_node`] and [`zone_absent_pages_in_node`].
fn zone_range_in_node(
    zm: &ZoneMovable,
    arch: &ArchZoneRanges,
    nid: Nid,
    zone_type: ZoneId,
    node_start_pfn: u64,
    node_end_pfn: u64,
) -> (u64, u64) {
    let (zone_low, zone_high) = arch.range(zone_type);
    let zone_high = zone_high.max(zone_low);
    let mut zone_start_pfn = node_start_pfn.clamp(zone_low, zone_high);
    let mut zone_end_pfn = node_end_pfn.clamp(zone_low, zone_high);
    adjust_zone_range_for_zone_movable(
        zm,
        arch,
        nid,
        zone_type,
        node_end_pfn,
        &mut zone_start_pfn,
        &mut zone_end_pfn,
    );
    (zone_start_pfn, zone_end_pfn)
}

/// `zone_spanned_pages_in_node`: the zone's `[start, end)` inside the node with Movable taken
/// into account, and its length; `(0, 0, 0)`-like empty results for a zone outside the node.
pub fn zone_spanned_pages_in_node(
    zm: &ZoneMovable,
    arch: &ArchZoneRanges,
    nid: Nid,
    zone_type: ZoneId,
    node_start_pfn: u64,
    node_end_pfn: u64,
) -> (u64, u64, u64) {
    if node_start_pfn == 0 && node_end_pfn == 0 {
        return (0, 0, 0);
    }
    let (zone_start_pfn, zone_end_pfn) =
        zone_range_in_node(zm, arch, nid, zone_type, node_start_pfn, node_end_pfn);
    if zone_end_pfn < node_start_pfn || zone_start_pfn > node_end_pfn {
        return (zone_start_pfn, zone_end_pfn, 0);
    }
    let zone_end_pfn = zone_end_pfn.min(node_end_pfn);
    let zone_start_pfn = zone_start_pfn.max(node_start_pfn);
    (
        zone_start_pfn,
        zone_end_pfn,
        zone_end_pfn.saturating_sub(zone_start_pfn),
    )
}

/// `__absent_pages_in_range`: the pages of `[start_pfn, end_pfn)` not in `nid`'s RAM.
pub fn absent_pages_in_range(
    mem: &[(u64, u64, Nid)],
    nid: Nid,
    start_pfn: u64,
    end_pfn: u64,
) -> u64 {
    let mut nr_absent = end_pfn.saturating_sub(start_pfn);
    for &(s, e, n) in mem {
        if n != nid || start_pfn >= end_pfn {
            continue;
        }
        let (s, e) = (s.clamp(start_pfn, end_pfn), e.clamp(start_pfn, end_pfn));
        nr_absent = nr_absent.saturating_sub(e.saturating_sub(s));
    }
    nr_absent
}

/// `zone_absent_pages_in_node`: the holes in the zone's range on `nid` (Movable taken into
/// account). With `kernelcore=mirror` and a Movable zone on the node, Linux also counts the
/// non-mirrored memory of Normal as absent (here: all of it, nothing being mirrored), since
/// Normal and Movable then overlap.
pub fn zone_absent_pages_in_node(
    mem: &[(u64, u64, Nid)],
    zm: &ZoneMovable,
    arch: &ArchZoneRanges,
    nid: Nid,
    zone_type: ZoneId,
    node_start_pfn: u64,
    node_end_pfn: u64,
) -> u64 {
    if node_start_pfn == 0 && node_end_pfn == 0 {
        return 0;
    }
    let (zone_start_pfn, zone_end_pfn) =
        zone_range_in_node(zm, arch, nid, zone_type, node_start_pfn, node_end_pfn);
    let mut nr_absent = absent_pages_in_range(mem, nid, zone_start_pfn, zone_end_pfn);
    if zm.mirrored_kernelcore && zm.pfn(nid) != 0 && zone_type == ZoneId::Normal {
        // for_each_mem_region over every node, as Linux does.
        for &(s, e, _) in mem {
            let hi = zone_end_pfn.max(zone_start_pfn);
            let (s, e) = (s.clamp(zone_start_pfn, hi), e.clamp(zone_start_pfn, hi));
            nr_absent = nr_absent.saturating_add(e.saturating_sub(s));
        }
    }
    nr_absent
}

/// One zone of one node as `calculate_node_totalpages` sets it up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ZoneSpan {
    /// `zone_start_pfn` (0 for an empty zone).
    pub zone_start_pfn: u64,
    /// `spanned_pages`.
    pub spanned_pages: u64,
    /// `present_pages`: spanned minus the holes.
    pub present_pages: u64,
}

/// `calculate_node_totalpages`' per-zone part: start, spanned and present pages of every zone
/// of `nid`, Movable included, for the RAM `mem` and the Movable starts `zm`. (Device stays
/// empty here: device memory is added to it later, by memremap.)
pub fn calculate_node_totalpages(
    mem: &[(u64, u64, Nid)],
    zm: &ZoneMovable,
    arch: &ArchZoneRanges,
    nid: Nid,
) -> [ZoneSpan; MAX_NR_ZONES] {
    let ranges = mem_pfn_ranges(mem);
    let (node_start_pfn, node_end_pfn) = get_pfn_range_for_nid(&ranges, nid);
    let mut out = [ZoneSpan::default(); MAX_NR_ZONES];
    for z in ZoneId::ALL {
        let (start, _, spanned) =
            zone_spanned_pages_in_node(zm, arch, nid, z, node_start_pfn, node_end_pfn);
        let absent =
            zone_absent_pages_in_node(&ranges, zm, arch, nid, z, node_start_pfn, node_end_pfn);
        out[z.index()] = ZoneSpan {
            zone_start_pfn: if spanned != 0 { start } else { 0 },
            spanned_pages: spanned,
            present_pages: spanned.saturating_sub(absent),
        };
    }
    out
}
