//! Views of the memory manager in Linux's formats, written to any `core::fmt::Write`:
//! `/proc/buddyinfo`, `/proc/zoneinfo`, `/proc/meminfo`, the boot lines `Zone ranges:` /
//! `Early memory node ranges` and `Memory: …K/…K available (…)`, and a per-page description.
//! [`ZoneRanges`] and [`write_boot_ranges`] work from plain inputs (a [`Memblock`]) so a host
//! tool can print the same lines without building a memmap.

use core::fmt::{self, Write};

use crate::machine::Machine;
use crate::memblock::Memblock;
use crate::movable::ZoneMovable;
use crate::platform::Platform;
use crate::zone::{MAX_DMA_PFN, MAX_DMA32_PFN, MAX_NR_ZONES, ZoneId};
use crate::{NR_ORDERS, PAGE_SHIFT, pfn_phys};

/// Sizes of the kernel image, in bytes, for the boot summary line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelSizes {
    /// `.text`.
    pub code: u64,
    /// `.data`.
    pub rwdata: u64,
    /// `.rodata`.
    pub rodata: u64,
    /// init sections.
    pub init: u64,
    /// `.bss`.
    pub bss: u64,
}

/// Zone pfn ranges `[start, end)` as Linux prints them at boot (`arch_zone_lowest_possible_pfn`
/// / `arch_zone_highest_possible_pfn`); `start == end` is an empty zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZoneRanges {
    /// Per zone, in [`ZoneId`] index order.
    pub ranges: [(u64, u64); MAX_NR_ZONES],
}

impl ZoneRanges {
    /// The ranges for RAM from `min_pfn` to `max_pfn`, with the Device zone spanning
    /// `device` (pfns) if given.
    pub fn compute(min_pfn: u64, max_pfn: u64, device: Option<(u64, u64)>) -> Self {
        let limits = [
            MAX_DMA_PFN.min(max_pfn),
            MAX_DMA32_PFN.min(max_pfn),
            max_pfn,
        ];
        let mut ranges = [(0, 0); MAX_NR_ZONES];
        let mut start = min_pfn;
        for (i, lim) in limits.into_iter().enumerate() {
            let end = lim.max(start);
            ranges[i] = (start, end);
            start = end;
        }
        ranges[ZoneId::Device.index()] = device.unwrap_or((start, start));
        Self { ranges }
    }

    /// The ranges for the RAM in `memblock` (no device memory).
    pub fn from_memblock(memblock: &Memblock) -> Self {
        Self::compute(memblock.start_pfn(), memblock.end_pfn(), None)
    }

    /// `Zone ranges:` and one `  %-8s [mem …]` / `empty` line per zone but Movable (Linux
    /// prints the Movable zone's starts apart, [`ZoneMovable::write`]).
    pub fn write(&self, w: &mut impl Write) -> fmt::Result {
        writeln!(w, "Zone ranges:")?;
        for z in ZoneId::ALL.into_iter().filter(|&z| z != ZoneId::Movable) {
            let (s, e) = self.ranges[z.index()];
            write!(w, "  {:<8} ", z.name())?;
            if s >= e {
                writeln!(w, "empty")?;
            } else {
                writeln!(w, "[mem {:#018x}-{:#018x}]", pfn_phys(s), pfn_phys(e) - 1)?;
            }
        }
        Ok(())
    }
}

/// Linux's boot lines for the zone and node ranges of `memblock` with nodes `0..nr_nodes`:
/// `Zone ranges:`, `Movable zone start for each node` (with `  Node N: 0x…` per node that has
/// one), `Early memory node ranges`,
/// `  node   N: [mem …]` per RAM region, then per node `Initmem setup node N [mem …]` or, for a
/// node without memory, `Initializing node N as memoryless` and `Initmem setup node N as
/// memoryless`.
pub fn write_boot_ranges(
    w: &mut impl Write,
    ranges: &ZoneRanges,
    movable: &ZoneMovable,
    memblock: &Memblock,
    nr_nodes: usize,
) -> fmt::Result {
    ranges.write(w)?;
    movable.write(w)?;
    writeln!(w, "Early memory node ranges")?;
    let pieces = || {
        memblock.memory().regions().iter().filter_map(|r| {
            let (s, e) = (crate::pfn_up(r.base), crate::pfn_down(r.end()));
            (s < e).then_some((usize::from(r.nid), s, e))
        })
    };
    for (nid, s, e) in pieces() {
        writeln!(
            w,
            "  node {:>3}: [mem {:#018x}-{:#018x}]",
            nid,
            pfn_phys(s),
            pfn_phys(e) - 1
        )?;
    }
    for nid in 0..nr_nodes {
        let own = pieces().filter(|p| p.0 == nid);
        let span = own.fold(None, |acc: Option<(u64, u64)>, (_, s, e)| {
            Some(acc.map_or((s, e), |(a, b)| (a.min(s), b.max(e))))
        });
        match span {
            Some((s, e)) => writeln!(
                w,
                "Initmem setup node {nid} [mem {:#018x}-{:#018x}]",
                pfn_phys(s),
                pfn_phys(e) - 1
            )?,
            None => {
                writeln!(w, "Initializing node {nid} as memoryless")?;
                writeln!(w, "Initmem setup node {nid} as memoryless")?;
            }
        }
    }
    Ok(())
}

/// `0-1,3`-style list of ascending ids (Linux's `%*pbl`).
fn write_ranges(w: &mut impl Write, ids: &[usize]) -> fmt::Result {
    let mut i = 0;
    let mut first = true;
    while i < ids.len() {
        let mut j = i;
        while j + 1 < ids.len() && ids[j + 1] == ids[j] + 1 {
            j += 1;
        }
        if !first {
            write!(w, ",")?;
        }
        first = false;
        if j > i {
            write!(w, "{}-{}", ids[i], ids[j])?;
        } else {
            write!(w, "{}", ids[i])?;
        }
        i = j + 1;
    }
    Ok(())
}

fn kb(pages: u64) -> u64 {
    pages << (PAGE_SHIFT - 10)
}

impl<P: Platform> Machine<P> {
    /// The zone ranges of the machine (Device: the span of every node's Device zone).
    pub fn zone_ranges(&self) -> ZoneRanges {
        let device = self
            .nodes
            .iter()
            .map(|n| n.zone(ZoneId::Device))
            .filter(|z| z.spanned() > 0)
            .fold(None, |acc: Option<(u64, u64)>, z| {
                let (s, e) = (z.start_pfn(), z.end_pfn());
                Some(acc.map_or((s, e), |(a, b)| (a.min(s), b.max(e))))
            });
        ZoneRanges::compute(self.memblock.start_pfn(), self.max_pfn, device)
    }

    /// Linux's `alloc_node_data` lines for every node with memory: `NODE_DATA(N) allocated
    /// [mem 0x…-0x…]`, and `    NODE_DATA(N) on node M` when it had to go elsewhere.
    pub fn write_node_data(&self, w: &mut impl Write) -> fmt::Result {
        for (nid, &(pa, size)) in self.node_data.iter().enumerate() {
            if !self.nodes[nid].has_memory() {
                continue;
            }
            writeln!(
                w,
                "NODE_DATA({nid}) allocated [mem {pa:#010x}-{:#010x}]",
                pa + size - 1
            )?;
            let on = self.memblock.memory().nid_of(pa).map(usize::from);
            if let Some(t) = on.filter(|&t| t != nid) {
                writeln!(w, "    NODE_DATA({nid}) on node {t}")?;
            }
        }
        Ok(())
    }

    /// The boot lines `Zone ranges:` … `Initmem setup node N …` (see [`write_boot_ranges`]).
    pub fn write_zone_ranges(&self, w: &mut impl Write) -> fmt::Result {
        // find_zone_movable_pfns_for_nodes runs (and warns) before the zones are printed.
        for warning in &self.zone_movable.warnings {
            writeln!(w, "{warning}")?;
        }
        write_boot_ranges(
            w,
            &self.zone_ranges(),
            &self.zone_movable,
            &self.memblock,
            self.nodes.len(),
        )?;
        self.write_unavailable_ranges(w)
    }

    /// Linux's `memmap_init` report of the pages without memory inside each populated zone
    /// (`On node N, zone Z: K pages in unavailable ranges`): for every memblock range, the
    /// gap before it in each populated zone of its node, and after the last range up to the
    /// end of its section, counted as `init_unavailable_range` counts them (pageblocks
    /// without a memmap are skipped).
    pub fn write_unavailable_ranges(&self, w: &mut impl Write) -> fmt::Result {
        const PAGEBLOCK: u64 = 1 << crate::PAGEBLOCK_ORDER;
        // Pages of [spfn, epfn) in pageblocks that have a memmap, a pageblock at a time.
        let count = |spfn: u64, epfn: u64| {
            let mut n = 0;
            let mut pfn = spfn;
            while pfn < epfn {
                let next = ((pfn & !(PAGEBLOCK - 1)) + PAGEBLOCK).min(epfn);
                if self.sparse.pfn_valid(pfn) {
                    n += next - pfn;
                }
                pfn = next;
            }
            n
        };
        let report = |w: &mut dyn Write, nid: u16, zid: ZoneId, s: u64, e: u64| {
            let n = count(s, e);
            if n > 0 {
                writeln!(
                    w,
                    "On node {nid}, zone {}: {n} pages in unavailable ranges",
                    zid.name()
                )?;
            }
            Ok(())
        };
        let (mut hole, mut last_zone, mut last_nid, mut last_end) = (0u64, ZoneId::Dma, 0u16, 0);
        for r in self.memblock.memory().regions() {
            let (start, end) = (crate::pfn_up(r.base), crate::pfn_down(r.end()));
            if start >= end {
                continue;
            }
            let Some(node) = self.nodes.get(usize::from(r.nid)) else {
                continue;
            };
            for z in node.zones().iter().filter(|z| z.is_populated()) {
                last_zone = z.id();
                let (zs, ze) = (z.start_pfn(), z.end_pfn());
                let (s, e) = (start.clamp(zs, ze), end.clamp(zs, ze));
                if s >= e {
                    continue;
                }
                if hole < s {
                    report(w, r.nid, z.id(), hole, s)?;
                }
                hole = e;
            }
            (last_nid, last_end) = (r.nid, end);
        }
        let end = last_end.next_multiple_of(crate::sparse::PAGES_PER_SECTION);
        if hole < end {
            report(w, last_nid, last_zone, hole, end)?;
        }
        Ok(())
    }

    /// `Memory: 489244K/523768K available (…K kernel code, …K rwdata, …K rodata, …K init,
    /// …K bss, …K reserved, 0K cma-reserved)`.
    pub fn write_boot_summary(&self, w: &mut impl Write, k: &KernelSizes) -> fmt::Result {
        let phys = self.physpages();
        writeln!(
            w,
            "Memory: {}K/{}K available ({}K kernel code, {}K rwdata, {}K rodata, {}K init, \
             {}K bss, {}K reserved, 0K cma-reserved)",
            kb(self.nr_free_pages()),
            kb(phys),
            k.code >> 10,
            k.rwdata >> 10,
            k.rodata >> 10,
            k.init >> 10,
            k.bss >> 10,
            kb(phys - self.totalram_pages()),
        )
    }

    /// `/proc/buddyinfo`: `Node N, zone %8s` then `%6lu ` free blocks per order, for every
    /// populated zone of every node (never Device: it has no present pages).
    pub fn write_buddyinfo(&self, w: &mut impl Write) -> fmt::Result {
        for z in self.zones().filter(|z| z.is_populated()) {
            write!(w, "Node {}, zone {:>8} ", z.nid(), z.name())?;
            for o in 0..NR_ORDERS {
                write!(w, "{:>6} ", z.nr_free(o as u32))?;
            }
            writeln!(w)?;
        }
        Ok(())
    }

    /// `/proc/pagetypeinfo` as Linux 6.1 prints it (`pagetypeinfo_show`), for every node with
    /// memory: the pageblock size, then per populated zone the free blocks of each order on
    /// each migratetype's list (counted up to 100000, `>100000` beyond, as Linux caps the walk)
    /// and the number of pageblocks of each type (by the type of the pageblock holding each
    /// `pageblock_nr_pages`-th pfn from the zone's start, skipping pfns without struct pages,
    /// offline or of another zone). Linux without `CONFIG_CMA`/`CONFIG_PAGE_OWNER`: no CMA
    /// column, no mixed-blocks table (as Debian's 6.1 kernel shows it).
    pub fn write_pagetypeinfo(&self, w: &mut impl Write) -> fmt::Result {
        use crate::pageblock::{MigrateType, PAGEBLOCK_NR_PAGES};
        const CAP: u64 = 100_000;
        for node in self.nodes.iter().filter(|n| n.has_memory()) {
            writeln!(w, "Page block order: {}", crate::PAGEBLOCK_ORDER)?;
            writeln!(w, "Pages per block:  {PAGEBLOCK_NR_PAGES}")?;
            writeln!(w)?;
            write!(w, "{:<43} ", "Free pages count per migrate type at order")?;
            for o in 0..NR_ORDERS {
                write!(w, "{o:>6} ")?;
            }
            writeln!(w)?;
            let zones = || node.zones.iter().filter(|z| z.is_populated());
            for z in zones() {
                let areas = z.areas.lock();
                for mt in MigrateType::ALL {
                    write!(
                        w,
                        "Node {:>4}, zone {:>8}, type {:>12} ",
                        node.id,
                        z.name(),
                        mt.name()
                    )?;
                    for o in 0..NR_ORDERS as u32 {
                        let n = areas.walk(&self.sparse, o, mt).take(CAP as usize).count() as u64;
                        let over = if n >= CAP { ">" } else { "" };
                        write!(w, "{over}{n:>6} ")?;
                    }
                    writeln!(w)?;
                }
            }
            write!(w, "\n{:<23}", "Number of blocks type ")?;
            for mt in MigrateType::ALL {
                write!(w, "{:>12} ", mt.name())?;
            }
            writeln!(w)?;
            for z in zones() {
                let mut count = [0u64; crate::pageblock::MIGRATE_TYPES];
                let mut pfn = z.start_pfn();
                while pfn < z.end_pfn() {
                    if let Some(p) = self.sparse.page(pfn)
                        && !p.is_device()
                        && !p.has(crate::page::PageFlags::OFFLINE)
                        && p.zone() == z.id()
                        && p.nid() == z.nid()
                        && let Some(mt) = self.sparse.pageblock_migratetype(pfn)
                    {
                        count[mt.index()] += 1;
                    }
                    pfn += PAGEBLOCK_NR_PAGES;
                }
                write!(w, "Node {}, zone {:>8} ", node.id, z.name())?;
                for c in count {
                    write!(w, "{c:>12} ")?;
                }
                writeln!(w)?;
            }
        }
        Ok(())
    }

    /// `/proc/zoneinfo` as Linux 6.1 prints it (`zoneinfo_show_print`), every zone of every
    /// node, Device included: the watermarks, counters and `protection:` line for every zone;
    /// for populated zones also `nr_free_pages`, the NUMA event counters, every CPU's page list
    /// (`pagesets`: count, high, batch, and Linux's `vm stats threshold` for the zone) and
    /// `start_pfn`. Free pages are `NR_FREE_PAGES` as Linux's: the buddy free lists, without
    /// the per-CPU lists. Linux's per-node reclaim and LRU counters are
    /// left out: this kernel has no such state (boost, cma and node_unreclaimable are 0
    /// because it has no boosting, CMA or reclaim).
    pub fn write_zoneinfo(&self, w: &mut impl Write) -> fmt::Result {
        for z in self.zones() {
            let wm = z.watermarks();
            write!(w, "Node {}, zone {:>8}", z.nid(), z.name())?;
            write!(
                w,
                "\n  pages free     {}\n        boost    0\n        min      {}\
                 \n        low      {}\n        high     {}\n        spanned  {}\
                 \n        present  {}\n        managed  {}\n        cma      0",
                z.nr_free_pages(),
                wm.min,
                wm.low,
                wm.high,
                z.spanned(),
                z.present(),
                z.managed()
            )?;
            let lr = z.lowmem_reserve();
            write!(w, "\n        protection: ({}", lr[0])?;
            for r in &lr[1..] {
                write!(w, ", {r}")?;
            }
            write!(w, ")")?;
            if !z.is_populated() {
                writeln!(w)?;
                continue;
            }
            let n = z.numa_stat();
            for (name, v) in [
                ("nr_free_pages", z.nr_free_pages()),
                ("numa_hit", n.hit),
                ("numa_miss", n.miss),
                ("numa_foreign", n.foreign),
                ("numa_interleave", n.interleave_hit),
                ("numa_local", n.local),
                ("numa_other", n.other),
            ] {
                write!(w, "\n      {name:<12} {v}")?;
            }
            write!(w, "\n  pagesets")?;
            for cpu in (0..self.nr_cpus()).filter(|&c| self.cpu_online(c)) {
                let Some((count, high, batch)) = z.pageset_info(cpu) else {
                    break;
                };
                write!(
                    w,
                    "\n    cpu: {cpu}\n              count: {count}\n              high:  {high}\
                     \n              batch: {batch}\n  vm stats threshold: {}",
                    z.stat_threshold()
                )?;
            }
            write!(w, "\n  node_unreclaimable:  0")?;
            writeln!(w, "\n  start_pfn:           {}", z.start_pfn())?;
        }
        Ok(())
    }

    /// `/sys/devices/system/node/nodeN/numastat` of node `nid` (nothing for an unknown node).
    pub fn write_numastat(&self, w: &mut impl Write, nid: usize) -> fmt::Result {
        let Some(node) = self.node(nid) else {
            return Ok(());
        };
        for (name, v) in node.numa_stat().named() {
            writeln!(w, "{name} {v}")?;
        }
        Ok(())
    }

    /// `/sys/devices/system/node/nodeN/meminfo` of node `nid`, the lines this kernel has
    /// (`Node N MemTotal:`, `MemFree:`, `MemUsed:`); nothing for an unknown node.
    pub fn write_node_meminfo(&self, w: &mut impl Write, nid: usize) -> fmt::Result {
        let Some(node) = self.node(nid) else {
            return Ok(());
        };
        let (total, free) = (kb(node.managed()), kb(node.nr_free_pages()));
        writeln!(w, "Node {nid} MemTotal:       {total:>8} kB")?;
        writeln!(w, "Node {nid} MemFree:        {free:>8} kB")?;
        writeln!(w, "Node {nid} MemUsed:        {:>8} kB", total - free)
    }

    /// `numastat`'s default table: a column per online node, a row per counter.
    pub fn write_numastat_table(&self, w: &mut impl Write) -> fmt::Result {
        let online = self.online_nodes();
        write!(w, "{:16}", "")?;
        for &n in &online {
            write!(w, "{:>16}", alloc::format!("node{n}"))?;
        }
        writeln!(w)?;
        let stats: alloc::vec::Vec<[(&str, u64); 6]> = online
            .iter()
            .map(|&n| self.nodes[n].numa_stat().named())
            .collect();
        for row in 0..6 {
            write!(w, "{:<16}", crate::NumaStat::default().named()[row].0)?;
            for s in &stats {
                write!(w, "{:>16}", s[row].1)?;
            }
            writeln!(w)?;
        }
        Ok(())
    }

    /// `numa_map_to_online_node`: `nid` itself if it is online, else the online node nearest
    /// to it (the lowest id among equals); 0 if no node is online.
    pub fn nearest_online_node(&self, nid: usize) -> usize {
        if self.node_online(nid) {
            return nid;
        }
        self.online_nodes()
            .into_iter()
            .min_by_key(|&n| (self.topology.distance(nid, n), n))
            .unwrap_or(0)
    }

    /// The online nodes, ascending (`for_each_online_node`).
    pub fn online_nodes(&self) -> alloc::vec::Vec<usize> {
        (0..self.nodes.len())
            .filter(|&n| self.node_online(n))
            .collect()
    }

    /// Whether node `nid` is online (`N_ONLINE`): it has memory or CPUs.
    pub fn node_online(&self, nid: usize) -> bool {
        self.node(nid)
            .is_some_and(|n| n.has_memory() || !self.topology.cpus(nid).is_empty())
    }

    /// `numactl --hardware`: the online nodes with their CPUs, size and free memory in MiB,
    /// and the distance table.
    pub fn write_numa_hardware(&self, w: &mut impl Write) -> fmt::Result {
        let online = self.online_nodes();
        write!(w, "available: {} nodes (", online.len())?;
        write_ranges(w, &online)?;
        writeln!(w, ")")?;
        for &nid in &online {
            let node = &self.nodes[nid];
            write!(w, "node {nid} cpus:")?;
            for c in self.topology.cpus(nid) {
                if self.cpu_online(*c as usize) {
                    write!(w, " {c}")?;
                }
            }
            writeln!(w)?;
            writeln!(
                w,
                "node {nid} size: {} MB",
                node.managed() >> (20 - PAGE_SHIFT)
            )?;
            writeln!(
                w,
                "node {nid} free: {} MB",
                node.nr_free_pages() >> (20 - PAGE_SHIFT)
            )?;
        }
        writeln!(w, "node distances:")?;
        write!(w, "node ")?;
        for &b in &online {
            write!(w, "{b:>3} ")?;
        }
        writeln!(w)?;
        for &a in &online {
            write!(w, "{a:>3}: ")?;
            for &b in &online {
                write!(w, "{:>3} ", self.topology.distance(a, b))?;
            }
            writeln!(w)?;
        }
        Ok(())
    }

    /// Linux's `build_all_zonelists` lines: `Fallback order for Node N: …` per online node,
    /// `Built N zonelists, mobility grouping on.  Total pages: N` (off on a machine too small to
    /// group pages by mobility; Total pages is `vm_total_pages` as the last zonelist build
    /// computed it: at boot Linux's estimate [`Machine::boot_total_pages`], after memory
    /// comes online `nr_free_zone_pages`, managed minus the high watermark over the local
    /// node's zonelist, Movable included as `GFP_HIGHUSER_MOVABLE` may use it) and `Policy zone: …` (the highest managed zone but Movable, `check_highest_zone`).
    pub fn write_zonelist_summary(&self, w: &mut impl Write) -> fmt::Result {
        let online = self.online_nodes();
        for &nid in &online {
            write!(w, "Fallback order for Node {nid}: ")?;
            for n in self.nodes[nid].node_order() {
                write!(w, "{n} ")?;
            }
            writeln!(w)?;
        }
        let total = self.vm_total_pages;
        writeln!(
            w,
            "Built {} zonelists, mobility grouping {}.  Total pages: {total}",
            online.len(),
            if self.mobility_grouping() {
                "on"
            } else {
                "off"
            }
        )?;
        let policy = self
            .zones()
            .filter(|z| z.is_managed() && z.id() != ZoneId::Movable)
            .map(|z| z.id())
            .max()
            .unwrap_or(ZoneId::Dma);
        writeln!(w, "Policy zone: {}", policy.name())
    }

    /// `/proc/meminfo` lines (`%-16s%8lu kB`): MemTotal, MemFree, and this kernel's memmap
    /// figures: memmap in RAM, memmap on devices, device memory, bytes per struct page.
    pub fn write_meminfo(&self, w: &mut impl Write) -> fmt::Result {
        let line = |w: &mut dyn Write, label: &str, kbytes: u64| {
            writeln!(w, "{:<16}{:>8} kB", label, kbytes)
        };
        line(w, "MemTotal:", kb(self.totalram_pages()))?;
        line(w, "MemFree:", kb(self.nr_free_buddy_pages()))?;
        line(w, "Memmap:", self.memmap_ram_bytes >> 10)?;
        line(w, "MemmapOnDevice:", self.memmap_device_bytes >> 10)?;
        line(w, "DeviceTotal:", kb(self.device_pages()))?;
        writeln!(
            w,
            "{:<16}{:>8} B",
            "StructPage:",
            core::mem::size_of::<crate::Page>()
        )
    }

    /// One page for the shell's `page PFN`, in the spirit of Linux's `dump_page`.
    pub fn write_page(&self, w: &mut impl Write, pfn: u64) -> fmt::Result {
        let Some(p) = self.page(pfn) else {
            return writeln!(
                w,
                "page: pfn:{pfn:#x} has no struct page (no present section)"
            );
        };
        write!(
            w,
            "page: pfn:{pfn:#x} phys:{:#x} node:{} zone:{} refcount:{} order:{}",
            pfn_phys(pfn),
            p.nid(),
            p.zone().name(),
            p.refcount(),
            p.order()
        )?;
        match p.pagemap() {
            Some(m) => writeln!(w, " pgmap:{m}")?,
            None => writeln!(w)?,
        }
        writeln!(w, "flags: {}", p.flags())
    }
}
