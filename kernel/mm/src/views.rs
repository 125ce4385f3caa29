//! Views of the memory manager in Linux's formats, written to any `core::fmt::Write`:
//! `/proc/buddyinfo`, `/proc/zoneinfo`, `/proc/meminfo`, the boot lines `Zone ranges:` /
//! `Early memory node ranges` and `Memory: …K/…K available (…)`, and a per-page description.
//! [`ZoneRanges`] and [`write_boot_ranges`] work from plain inputs (a [`Memblock`]) so a host
//! tool can print the same lines without building a memmap.

use core::fmt::{self, Write};

use crate::memblock::Memblock;
use crate::node::Node;
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

    /// `Zone ranges:` and one `  %-8s [mem …]` / `empty` line per zone.
    pub fn write(&self, w: &mut impl Write) -> fmt::Result {
        writeln!(w, "Zone ranges:")?;
        for z in ZoneId::ALL {
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

/// Linux's boot lines for the zone and node ranges of `memblock`:
/// `Zone ranges:`, `Movable zone start for each node`, `Early memory node ranges`,
/// `  node   0: [mem …]` per RAM range and `Initmem setup node 0 [mem …]`.
pub fn write_boot_ranges(
    w: &mut impl Write,
    ranges: &ZoneRanges,
    memblock: &Memblock,
) -> fmt::Result {
    ranges.write(w)?;
    writeln!(w, "Movable zone start for each node")?;
    writeln!(w, "Early memory node ranges")?;
    for r in memblock.memory().regions() {
        let (s, e) = (crate::pfn_up(r.base), crate::pfn_down(r.end()));
        if s < e {
            writeln!(
                w,
                "  node {:>3}: [mem {:#018x}-{:#018x}]",
                0,
                pfn_phys(s),
                pfn_phys(e) - 1
            )?;
        }
    }
    let (s, e) = (memblock.start_pfn(), memblock.end_pfn());
    if s < e {
        writeln!(
            w,
            "Initmem setup node 0 [mem {:#018x}-{:#018x}]",
            pfn_phys(s),
            pfn_phys(e) - 1
        )?;
    }
    Ok(())
}

fn kb(pages: u64) -> u64 {
    pages << (PAGE_SHIFT - 10)
}

impl<P: Platform> Node<P> {
    /// The zone ranges of this node (Device from the registered pagemaps).
    pub fn zone_ranges(&self) -> ZoneRanges {
        let dev = self.zone(ZoneId::Device);
        let device = dev.is_populated().then(|| (dev.start_pfn(), dev.end_pfn()));
        ZoneRanges::compute(self.memblock.start_pfn(), self.max_pfn, device)
    }

    /// The boot lines `Zone ranges:` … `Initmem setup node 0 …` (see [`write_boot_ranges`]).
    pub fn write_zone_ranges(&self, w: &mut impl Write) -> fmt::Result {
        write_boot_ranges(w, &self.zone_ranges(), &self.memblock)
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

    /// `/proc/buddyinfo`: `Node 0, zone %8s` then `%6lu ` free blocks per order, for every
    /// populated zone (Device included: it always shows zeros).
    pub fn write_buddyinfo(&self, w: &mut impl Write) -> fmt::Result {
        for z in self.zones().iter().filter(|z| z.is_populated()) {
            write!(w, "Node 0, zone {:>8} ", z.name())?;
            for o in 0..NR_ORDERS {
                write!(w, "{:>6} ", z.nr_free(o as u32))?;
            }
            writeln!(w)?;
        }
        Ok(())
    }

    /// `/proc/zoneinfo` (the fields this kernel has), every zone, Device included.
    pub fn write_zoneinfo(&self, w: &mut impl Write) -> fmt::Result {
        for z in self.zones() {
            let wm = z.watermarks();
            write!(w, "Node 0, zone {:>8}", z.name())?;
            write!(
                w,
                "\n  pages free     {}\n        min      {}\n        low      {}\
                 \n        high     {}\n        spanned  {}\n        present  {}\
                 \n        managed  {}",
                z.free_pages(),
                wm.min,
                wm.low,
                wm.high,
                z.spanned(),
                z.present(),
                z.managed()
            )?;
            if !z.is_populated() {
                writeln!(w)?;
                continue;
            }
            write!(
                w,
                "\n  pagesets\n    cpu: 0\n              count: {}\n              high:  {}\
                 \n              batch: {}",
                z.pcp_count(),
                crate::pcp::PCP_HIGH,
                crate::pcp::PCP_BATCH
            )?;
            writeln!(w, "\n  start_pfn:           {}", z.start_pfn())?;
        }
        Ok(())
    }

    /// `/proc/meminfo` lines (`%-16s%8lu kB`): MemTotal, MemFree, and this kernel's memmap
    /// figures: memmap in RAM, memmap on devices, device memory, bytes per struct page.
    pub fn write_meminfo(&self, w: &mut impl Write) -> fmt::Result {
        let line = |w: &mut dyn Write, label: &str, kbytes: u64| {
            writeln!(w, "{:<16}{:>8} kB", label, kbytes)
        };
        line(w, "MemTotal:", kb(self.totalram_pages()))?;
        line(w, "MemFree:", kb(self.nr_free_pages()))?;
        line(w, "Memmap:", self.memmap_ram_bytes >> 10)?;
        line(w, "MemmapOnDevice:", self.memmap_device_bytes >> 10)?;
        line(w, "DeviceTotal:", kb(self.zone(ZoneId::Device).present()))?;
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
            "page: pfn:{pfn:#x} phys:{:#x} zone:{} refcount:{} order:{}",
            pfn_phys(pfn),
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
