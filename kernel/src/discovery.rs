//! Physical memory discovery at boot: the bootloader's memory regions, the
//! command line's `memmap=`, and the ACPI NFIT, SRAT, SLIT and MADT go through the hardware-free
//! `firmware` crate, which turns them into the sanitized E820 map, the persistent
//! ranges and the /proc/iomem tree. This file only supplies the hardware side:
//! region kinds from bootloader_api and physical reads for the ACPI walk.
use alloc::vec::Vec;
use bootloader_api::info::{MemoryRegionKind, MemoryRegions};
use firmware::acpi::{self, PhysRead, Signature};
use firmware::e820::{self, E820Table, RegionKind};
use firmware::iomem::IomemTree;
use firmware::madt::{self, CpuPolicy, SmpConfig};
use firmware::nfit::{self, SpaRange};
use firmware::numa::{NumaInput, NumaLayout, numa_init};
use firmware::pmem::PmemRange;
use firmware::range::PhysRange;
use firmware::{slit, srat};

use crate::paging;

/// Everything the memory manager is built from.
pub struct Discovery {
    /// The sanitized map after `memmap=` (what `e820` prints).
    pub e820: E820Table,
    /// The same map trimmed for the zone set-up (page 0 reserved, BIOS hole removed).
    pub zone_map: E820Table,
    /// RAM the bootloader occupies (kernel image, page tables, boot info).
    pub bootloader: Vec<PhysRange>,
    /// NFIT SPA ranges (all GUIDs).
    pub spa: Vec<SpaRange>,
    /// Persistent memory ranges, future ZONE_DEVICE.
    pub pmem: Vec<PmemRange>,
    /// The /proc/iomem tree.
    pub iomem: IomemTree,
    /// NUMA nodes from the SRAT and SLIT (or one faked node), as Linux's x86_numa_init.
    pub numa: NumaLayout,
    /// The CPUs and interrupt controllers from the MADT, as Linux's acpi_process_madt
    /// (logged with the zones, where Linux's boot log has it).
    pub smp: SmpConfig,
    /// The boot CPU's initial APIC id (CPUID leaf 1).
    pub boot_apic_id: u32,
    /// `kernelcore=`, `movablecore=` and `movable_node` (Linux's early parameters).
    pub movable: firmware::movable::MovableParams,
}

/// The ACPI tables discovery reads.
struct AcpiTables {
    spa: Vec<SpaRange>,
    srat: Option<Result<srat::Srat, srat::SratError>>,
    slit: Option<Result<slit::Slit, slit::SlitError>>,
    madt: Option<Result<madt::Madt, madt::MadtError>>,
}

/// Physical reads through the bootloader's mapping of all physical memory.
struct KernelPhys;

impl PhysRead for KernelPhys {
    fn read(&self, pa: u64, buf: &mut [u8]) -> bool {
        let Some(virt) = paging::phys_to_virt(pa, buf.len() as u64) else {
            return false;
        };
        // SAFETY: phys_to_virt only answers for ranges inside the bootloader's
        // mapping of physical memory (or a device mapping of ours), which stays
        // mapped for ever; firmware tables are only read, never written.
        let src = unsafe { core::slice::from_raw_parts(virt as *const u8, buf.len()) };
        buf.copy_from_slice(src);
        true
    }
}

fn region_kind(kind: MemoryRegionKind) -> RegionKind {
    match kind {
        MemoryRegionKind::Usable => RegionKind::Usable,
        MemoryRegionKind::Bootloader => RegionKind::Bootloader,
        MemoryRegionKind::UnknownBios(n) => RegionKind::UnknownBios(n),
        MemoryRegionKind::UnknownUefi(n) => RegionKind::UnknownUefi(n),
        // bootloader_api may grow kinds; an unknown one is not RAM.
        _ => RegionKind::UnknownBios(2),
    }
}

/// Find the NFIT, SRAT and SLIT: the NFIT's SPA ranges and the other two as parsed;
/// every problem is one log line and the kernel boots on.
fn read_acpi(rsdp: Option<u64>) -> AcpiTables {
    let mem = KernelPhys;
    let none = || AcpiTables {
        spa: Vec::new(),
        srat: None,
        slit: None,
        madt: None,
    };
    let root = match rsdp {
        Some(pa) => acpi::read_root(&mem, pa),
        None => acpi::find_rsdp(&mem).and_then(|r| acpi::root_from_rsdp(&mem, r)),
    };
    let root = match root {
        Ok(r) => r,
        Err(e) => {
            log::warn!("{e}");
            return none();
        }
    };
    for p in &root.problems {
        log::warn!("{p}");
    }
    for (pa, header) in root.headers(&mem) {
        match header {
            Ok(h) => log::info!("{}", h.line(pa)),
            Err(e) => log::warn!("{e}"),
        }
    }
    let find = |sig: [u8; 4]| match root.find(&mem, Signature(sig)) {
        Ok(found) => found.map(|(_, bytes)| bytes),
        Err(e) => {
            log::warn!("{e}");
            None
        }
    };
    let nfit = find(*b"NFIT");
    let srat = find(*b"SRAT").map(|b| srat::parse_srat(&b));
    let slit = find(*b"SLIT").map(|b| slit::parse_slit(&b));
    let madt = find(*b"APIC").map(|b| madt::parse_madt(&b));
    AcpiTables {
        spa: nfit.map_or_else(Vec::new, |b| spa_ranges(&b)),
        srat,
        slit,
        madt,
    }
}

/// The NFIT's SPA ranges, each logged.
fn spa_ranges(bytes: &[u8]) -> Vec<SpaRange> {
    match nfit::parse_nfit(bytes) {
        Ok(table) => {
            for p in &table.problems {
                log::warn!("{p}");
            }
            for w in &table.warnings {
                log::warn!("{w}");
            }
            for spa in &table.spa_ranges {
                log::info!("{spa}");
            }
            table.spa_ranges
        }
        Err(e) => {
            log::warn!("{e}");
            Vec::new()
        }
    }
}

/// Run discovery and log it the way Linux's early boot does: the firmware map, the
/// user map after `memmap=`, the ACPI tables and NFIT ranges, then the persistent
/// ranges. The decisions are the firmware crate's `memory_setup`, the same code the
/// host planner runs.
pub fn discover(regions: &MemoryRegions, rsdp: Option<u64>, cmdline: &str) -> Discovery {
    let boot = e820::e820_from_regions(
        regions
            .iter()
            .map(|r| (r.start, r.end, region_kind(r.kind))),
    );
    // Early parameters first, as Linux's parse_early_param: a bad value is reported and
    // ignored.
    let movable = firmware::movable::parse_movable_params(cmdline);
    movable.log();
    log::info!("BIOS-provided physical RAM map:");
    boot.e820.log("BIOS-e820");
    // The user map is logged here, before the ACPI lines, as Linux orders its boot
    // log; memory_setup below applies the same memmap= again (a few dozen entries)
    // because it needs the NFIT ranges, which are read after.
    let mut user = boot.e820.clone();
    firmware::cmdline::apply_memmap(cmdline, &mut user).log(&user);

    let tables = read_acpi(rsdp);
    let spa = tables.spa;
    let setup = firmware::setup::memory_setup(boot.e820, cmdline, &spa);
    for r in &setup.rejected {
        log::warn!("{r}");
    }
    for p in &setup.pmem {
        log::info!("{p} {}", p.iomem_name());
    }
    for c in &setup.conflicts {
        log::warn!("{c}");
    }
    // NUMA after the persistent ranges, before the zones, as in Linux's boot log.
    let memory: Vec<PhysRange> = setup.zone_map.usable_pages().collect();
    let numa = numa_init(NumaInput::new(
        tables.srat.as_ref(),
        tables.slit.as_ref(),
        &memory,
        cmdline,
    ));
    numa.log();
    let boot_apic_id = core::arch::x86_64::__cpuid(1).ebx >> 24;
    let policy = CpuPolicy {
        boot_apic_id,
        ..CpuPolicy::default()
    };
    let smp = madt::smp_config(tables.madt.as_ref(), &policy);
    Discovery {
        numa,
        smp,
        boot_apic_id,
        movable: movable.params,
        e820: setup.e820,
        zone_map: setup.zone_map,
        bootloader: boot.bootloader,
        spa,
        pmem: setup.pmem,
        iomem: setup.iomem,
    }
}
