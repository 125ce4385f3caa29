//! The memory part of Linux's `setup_arch`, in one call shared by the kernel and the host
//! planner so both run the same steps in the same order: the firmware map (already sanitized,
//! printed as `BIOS-e820`), the command line's `memmap=`/`mem=` (the `user` map), the
//! persistent ranges from E820 and the NFIT, the zone-setup trim, and the `/proc/iomem` tree
//! built from the trimmed map (as `e820__reserve_resources` runs after `trim_bios_range`).

use alloc::vec::Vec;

use crate::cmdline::{MemmapReport, apply_memmap};
use crate::e820::E820Table;
use crate::iomem::{Conflict, IomemTree};
use crate::nfit::SpaRange;
use crate::pmem::{PmemRange, Rejection, collect_persistent};

/// Everything the memory manager is built from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemorySetup {
    /// The firmware's map as given (sanitized), printed with the `BIOS-e820` prefix.
    pub firmware: E820Table,
    /// The map after `memmap=`/`mem=` (equal to `firmware` when the command line has none).
    pub e820: E820Table,
    /// What the command line did (applied edits, refused items).
    pub memmap: MemmapReport,
    /// Persistent memory ranges (future ZONE_DEVICE), sorted.
    pub pmem: Vec<PmemRange>,
    /// Persistent ranges refused because they overlap usable RAM.
    pub rejected: Vec<Rejection>,
    /// `e820` after the zone-setup trim (page 0 reserved, BIOS area removed); its
    /// `usable_pages()` are the early memory node ranges and its `end_of_ram_pfn()` is max_pfn.
    pub zone_map: E820Table,
    /// The `/proc/iomem` tree (add the kernel image to it).
    pub iomem: IomemTree,
    /// Resources that could not be inserted into the tree.
    pub conflicts: Vec<Conflict>,
}

/// Runs the memory set-up on a sanitized firmware map (e.g. [`crate::e820::BootMemoryMap`]'s
/// `e820` or a map read by [`crate::e820::parse_dmesg`] and sanitized), the kernel command line
/// and the NFIT's SPA ranges (any GUID; pass `&[]` without an NFIT).
pub fn memory_setup(firmware: E820Table, cmdline: &str, spa: &[SpaRange]) -> MemorySetup {
    let mut e820 = firmware.clone();
    let memmap = apply_memmap(cmdline, &mut e820);
    let (pmem, rejected) = collect_persistent(&e820, spa);
    let mut zone_map = e820.clone();
    zone_map.trim_for_zones();
    let (iomem, conflicts) = IomemTree::from_e820(&zone_map, &pmem);
    MemorySetup {
        firmware,
        e820,
        memmap,
        pmem,
        rejected,
        zone_map,
        iomem,
        conflicts,
    }
}

impl MemorySetup {
    /// Logs the set-up as the kernel's boot log shows it: `BIOS-provided physical RAM map:` and
    /// the `BIOS-e820` lines, refused `memmap=` items and the `user` map, each refused
    /// persistent range (warn), each persistent range, and tree conflicts (warn).
    pub fn log(&self) {
        log::info!("BIOS-provided physical RAM map:");
        self.firmware.log("BIOS-e820");
        self.memmap.log(&self.e820);
        for r in &self.rejected {
            log::warn!("{r}");
        }
        for p in &self.pmem {
            log::info!("{p} {}", p.iomem_name());
        }
        for c in &self.conflicts {
            log::warn!("{c}");
        }
    }
}
