//! Converting the bootloader's memory regions into an E820 table, the way Linux builds its
//! table from the BIOS E820 list (`e820__memory_setup_default`) or from the UEFI memory map
//! (`do_add_efi_memmap`): RAM the bootloader itself occupies is still RAM, BIOS types keep their
//! number, UEFI memory types are mapped as Linux maps them.

use alloc::vec::Vec;

use super::{E820Table, E820Type};
use crate::range::PhysRange;

/// The kind of a bootloader memory region; mirrors `bootloader_api` 0.11's `MemoryRegionKind`
/// (the kernel maps one onto the other).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RegionKind {
    /// Free RAM.
    Usable,
    /// RAM in use by the bootloader (kernel image, page tables, boot info, ...).
    Bootloader,
    /// A BIOS E820 type other than usable, by number.
    UnknownBios(u32),
    /// A UEFI memory type (`EFI_MEMORY_TYPE`) other than conventional memory, by number.
    UnknownUefi(u32),
}

/// The UEFI memory types that matter here (UEFI spec, `EFI_MEMORY_TYPE`).
mod efi {
    pub const LOADER_CODE: u32 = 1;
    pub const LOADER_DATA: u32 = 2;
    pub const BOOT_SERVICES_CODE: u32 = 3;
    pub const BOOT_SERVICES_DATA: u32 = 4;
    pub const CONVENTIONAL_MEMORY: u32 = 7;
    pub const UNUSABLE_MEMORY: u32 = 8;
    pub const ACPI_RECLAIM_MEMORY: u32 = 9;
    pub const ACPI_MEMORY_NVS: u32 = 10;
    pub const PERSISTENT_MEMORY: u32 = 14;
}

/// The E820 type Linux gives a UEFI memory type (`do_add_efi_memmap`, for write-back memory
/// without the specific-purpose attribute): loader and boot-services code/data and conventional
/// memory are usable, ACPI reclaim is ACPI data, ACPI NVS is NVS, unusable stays unusable,
/// persistent memory (14) is type 7, everything else (reserved, runtime services, MMIO, PAL
/// code, unaccepted, OEM types, ...) is reserved.
pub const fn uefi_to_e820(efi_type: u32) -> E820Type {
    match efi_type {
        efi::LOADER_CODE
        | efi::LOADER_DATA
        | efi::BOOT_SERVICES_CODE
        | efi::BOOT_SERVICES_DATA
        | efi::CONVENTIONAL_MEMORY => E820Type::Usable,
        efi::ACPI_RECLAIM_MEMORY => E820Type::Acpi,
        efi::ACPI_MEMORY_NVS => E820Type::Nvs,
        efi::UNUSABLE_MEMORY => E820Type::Unusable,
        efi::PERSISTENT_MEMORY => E820Type::Pmem,
        _ => E820Type::Reserved,
    }
}

impl RegionKind {
    /// The E820 type of a region of this kind.
    pub const fn e820_type(self) -> E820Type {
        match self {
            Self::Usable | Self::Bootloader => E820Type::Usable,
            Self::UnknownBios(n) => E820Type::from_raw(n),
            Self::UnknownUefi(n) => uefi_to_e820(n),
        }
    }
}

/// The bootloader's memory map as an E820 table plus the RAM the bootloader occupies.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BootMemoryMap {
    /// The sanitized E820 table (bootloader ranges count as usable RAM, as in the firmware's
    /// own map); print it with the `BIOS-e820` prefix.
    pub e820: E820Table,
    /// The ranges reported as [`RegionKind::Bootloader`], sorted and merged: RAM in use (kernel
    /// image, page tables, boot info), which the kernel must keep reserved, not treat as holes.
    pub bootloader: Vec<PhysRange>,
}

/// Builds the E820 table from bootloader regions `(start, end_exclusive, kind)`; empty or
/// inverted regions are skipped. The table is sanitized (as Linux does before printing the
/// `BIOS-e820` lines), which merges the bootloader's own RAM back into the usable ranges it was
/// cut from; those ranges are returned separately in [`BootMemoryMap::bootloader`].
pub fn e820_from_regions<I>(regions: I) -> BootMemoryMap
where
    I: IntoIterator<Item = (u64, u64, RegionKind)>,
{
    let mut e820 = E820Table::new();
    let mut bootloader = Vec::new();
    for (start, end, kind) in regions {
        if end <= start {
            continue;
        }
        e820.add_range(start, end - start, kind.e820_type());
        if kind == RegionKind::Bootloader {
            bootloader.push(PhysRange::new(start, end));
        }
    }
    e820.sanitize();
    BootMemoryMap {
        e820,
        bootloader: merge_ranges(bootloader),
    }
}

/// Sorts `ranges` and merges the overlapping or touching ones.
pub(crate) fn merge_ranges(mut ranges: Vec<PhysRange>) -> Vec<PhysRange> {
    ranges.sort_unstable();
    let mut out: Vec<PhysRange> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match out.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}
