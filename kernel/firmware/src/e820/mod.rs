//! The E820 memory map (Linux's `arch/x86/kernel/e820.c`): memory types, the table of
//! `(addr, size, type)` entries, Linux's range add/update/remove operations and the zone-setup
//! trimming. Sanitizing, printing, the conversion from bootloader regions and the dmesg reader
//! live in the submodules.

use alloc::vec::Vec;
use core::hash::{Hash, Hasher};

use crate::range::{PAGE_SIZE, PhysRange};

mod dmesg;
mod print;
mod regions;
mod sanitize;

pub use dmesg::{DmesgError, parse_dmesg};
pub use print::{EntryLine, TableLines};
pub use regions::{BootMemoryMap, RegionKind, e820_from_regions, uefi_to_e820};

/// Start of the legacy PC BIOS area (VGA memory, option ROMs, BIOS), which Linux removes from
/// usable RAM even when firmware reports it as RAM.
pub const BIOS_BEGIN: u64 = 0xa0000;
/// End (exclusive) of the legacy PC BIOS area.
pub const BIOS_END: u64 = 0x100000;
/// Highest page frame number x86_64 Linux accepts with 4-level paging (`MAX_ARCH_PFN`,
/// 2^46 bytes of physical address space).
pub const MAX_ARCH_PFN: u64 = 1 << (46 - 12);

/// An E820 memory type (the BIOS `INT 15h, AX=E820h` type field, as Linux names them).
///
/// Equality, hashing and the "larger type wins" ordering of [`E820Table::sanitize`] all use the
/// raw value, so `Other(1)` and `Usable` are the same type.
#[derive(Clone, Copy, Debug)]
pub enum E820Type {
    /// 1: RAM the kernel may use.
    Usable,
    /// 2: reserved by firmware.
    Reserved,
    /// 3: ACPI tables (reclaimable after they are read).
    Acpi,
    /// 4: ACPI non-volatile storage (must be preserved across sleep).
    Nvs,
    /// 5: memory with detected errors.
    Unusable,
    /// 7: persistent memory (ACPI 6 `AddressRangePersistentMemory`).
    Pmem,
    /// 12: persistent memory, legacy non-standard type (also what `memmap=SIZE!START` makes).
    Pram,
    /// 0xefffffff: "soft reserved" specific-purpose memory (EFI_MEMORY_SP).
    SoftReserved,
    /// Any other value, printed as `type N`.
    Other(u32),
}

impl E820Type {
    /// The type for a raw E820 value.
    pub const fn from_raw(raw: u32) -> Self {
        match raw {
            1 => Self::Usable,
            2 => Self::Reserved,
            3 => Self::Acpi,
            4 => Self::Nvs,
            5 => Self::Unusable,
            7 => Self::Pmem,
            12 => Self::Pram,
            0xefff_ffff => Self::SoftReserved,
            n => Self::Other(n),
        }
    }

    /// The raw E820 value.
    pub const fn raw(self) -> u32 {
        match self {
            Self::Usable => 1,
            Self::Reserved => 2,
            Self::Acpi => 3,
            Self::Nvs => 4,
            Self::Unusable => 5,
            Self::Pmem => 7,
            Self::Pram => 12,
            Self::SoftReserved => 0xefff_ffff,
            Self::Other(n) => n,
        }
    }

    /// True for usable RAM.
    pub const fn is_ram(self) -> bool {
        self.raw() == 1
    }

    /// True for persistent memory (type 7 or 12).
    pub const fn is_persistent(self) -> bool {
        matches!(self.raw(), 7 | 12)
    }

    /// True for the types [`E820Table::sanitize`] never merges with a neighbour (Linux's
    /// `e820_nomerge`): persistent legacy and soft reserved ranges may be distinct devices.
    pub const fn is_nomerge(self) -> bool {
        matches!(self.raw(), 12 | 0xefff_ffff)
    }

    /// Linux's boot-log label (`e820_print_type`): `usable`, `reserved`, `soft reserved`,
    /// `ACPI data`, `ACPI NVS`, `unusable`, `persistent (type N)` or `type N`.
    pub fn label(self) -> Label {
        Label(self)
    }

    /// The `/proc/iomem` name Linux gives a range of this type (`e820_type_to_string`).
    pub const fn iomem_name(self) -> &'static str {
        match self.raw() {
            1 => "System RAM",
            2 => "Reserved",
            3 => "ACPI Tables",
            4 => "ACPI Non-volatile Storage",
            5 => "Unusable memory",
            7 => "Persistent Memory",
            12 => "Persistent Memory (legacy)",
            0xefff_ffff => "Soft Reserved",
            _ => "Unknown E820 type",
        }
    }
}

impl PartialEq for E820Type {
    fn eq(&self, other: &Self) -> bool {
        self.raw() == other.raw()
    }
}

impl Eq for E820Type {}

impl Hash for E820Type {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.raw().hash(state);
    }
}

/// Display adapter for [`E820Type::label`].
#[derive(Clone, Copy, Debug)]
pub struct Label(E820Type);

impl core::fmt::Display for Label {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0.raw() {
            1 => f.write_str("usable"),
            2 => f.write_str("reserved"),
            0xefff_ffff => f.write_str("soft reserved"),
            3 => f.write_str("ACPI data"),
            4 => f.write_str("ACPI NVS"),
            5 => f.write_str("unusable"),
            n @ (7 | 12) => write!(f, "persistent (type {n})"),
            n => write!(f, "type {n}"),
        }
    }
}

/// One E820 entry: `size` bytes from `addr`, of type `typ`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct E820Entry {
    /// First physical address.
    pub addr: u64,
    /// Length in bytes.
    pub size: u64,
    /// Memory type.
    pub typ: E820Type,
}

impl E820Entry {
    /// The entry `[addr, addr + size)`.
    pub const fn new(addr: u64, size: u64, typ: E820Type) -> Self {
        Self { addr, size, typ }
    }

    /// The entry's address range, clipped at `u64::MAX`.
    pub const fn range(&self) -> PhysRange {
        PhysRange::from_size(self.addr, self.size)
    }

    /// The entry's end (exclusive), clipped at `u64::MAX`.
    pub const fn end(&self) -> u64 {
        self.addr.saturating_add(self.size)
    }
}

/// An E820 memory map: a list of entries, in firmware order until [`E820Table::sanitize`] sorts
/// it and resolves overlaps.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct E820Table {
    entries: Vec<E820Entry>,
}

impl E820Table {
    /// An empty table.
    pub const fn new() -> Self {
        Self {
            entries: Vec::new(),
        }
    }

    /// A table holding `entries` as given (not sanitized).
    pub fn from_entries(entries: Vec<E820Entry>) -> Self {
        Self { entries }
    }

    /// The entries, in table order.
    pub fn entries(&self) -> &[E820Entry] {
        &self.entries
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the table has no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Removes every entry (`memmap=exactmap`).
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Appends an entry, as Linux's `e820__range_add` does; overlaps are resolved later by
    /// [`E820Table::sanitize`]. A size running past `u64::MAX` is clipped there.
    pub fn add_range(&mut self, start: u64, size: u64, typ: E820Type) {
        self.entries.push(E820Entry::new(start, size, typ));
    }

    /// Retypes the parts of entries of type `old` inside `[start, start + size)` as `new`
    /// (Linux's `e820__range_update`), splitting entries that straddle the range. Returns the
    /// number of bytes retyped. Does nothing when `old == new`.
    pub fn update_range(&mut self, start: u64, size: u64, old: E820Type, new: E820Type) -> u64 {
        if old == new {
            return 0;
        }
        let end = start.saturating_add(size);
        log::debug!(
            "e820: update {} {} ==> {}",
            PhysRange::new(start, end),
            old.label(),
            new.label()
        );
        let mut updated: u64 = 0;
        let original = self.entries.len();
        for i in 0..original {
            let Some(entry) = self.entries.get(i).copied() else {
                break;
            };
            if entry.typ != old {
                continue;
            }
            let entry_end = entry.end();
            if entry.addr >= start && entry_end <= end {
                if let Some(e) = self.entries.get_mut(i) {
                    e.typ = new;
                }
                updated = updated.saturating_add(entry.size);
                continue;
            }
            if entry.addr < start && entry_end > end {
                self.entries.push(E820Entry::new(start, end - start, new));
                self.entries
                    .push(E820Entry::new(end, entry_end - end, entry.typ));
                if let Some(e) = self.entries.get_mut(i) {
                    e.size = start - entry.addr;
                }
                updated = updated.saturating_add(end - start);
                continue;
            }
            let final_start = start.max(entry.addr);
            let final_end = end.min(entry_end);
            if final_start >= final_end {
                continue;
            }
            self.entries
                .push(E820Entry::new(final_start, final_end - final_start, new));
            updated = updated.saturating_add(final_end - final_start);
            if let Some(e) = self.entries.get_mut(i) {
                e.size = entry_end.saturating_sub(e.addr) - (final_end - final_start);
                if e.addr >= final_start {
                    e.addr = final_end;
                }
            }
        }
        updated
    }

    /// Removes `[start, start + size)` from entries of type `old` (any type when `old` is
    /// `None`), as Linux's `e820__range_remove`, splitting entries that straddle the range.
    /// Returns the number of bytes removed.
    pub fn remove_range(&mut self, start: u64, size: u64, old: Option<E820Type>) -> u64 {
        let end = start.saturating_add(size);
        match old {
            Some(t) => log::debug!("e820: remove {} {}", PhysRange::new(start, end), t.label()),
            None => log::debug!("e820: remove {}", PhysRange::new(start, end)),
        }
        let mut removed: u64 = 0;
        let original = self.entries.len();
        for i in 0..original {
            let Some(entry) = self.entries.get(i).copied() else {
                break;
            };
            if old.is_some_and(|t| t != entry.typ) {
                continue;
            }
            let entry_end = entry.end();
            if entry.addr >= start && entry_end <= end {
                removed = removed.saturating_add(entry.size);
                if let Some(e) = self.entries.get_mut(i) {
                    e.size = 0;
                }
                continue;
            }
            if entry.addr < start && entry_end > end {
                self.entries
                    .push(E820Entry::new(end, entry_end - end, entry.typ));
                if let Some(e) = self.entries.get_mut(i) {
                    e.size = start - entry.addr;
                }
                removed = removed.saturating_add(end - start);
                continue;
            }
            let final_start = start.max(entry.addr);
            let final_end = end.min(entry_end);
            if final_start >= final_end {
                continue;
            }
            removed = removed.saturating_add(final_end - final_start);
            if let Some(e) = self.entries.get_mut(i) {
                e.size = entry_end.saturating_sub(e.addr) - (final_end - final_start);
                if e.addr >= final_start {
                    e.addr = final_end;
                }
            }
        }
        self.entries.retain(|e| e.size != 0);
        removed
    }

    /// True when some byte of `[start, end)` is covered by an entry of type `typ` (any type
    /// when `None`): Linux's `e820__mapped_any`.
    pub fn mapped_any(&self, start: u64, end: u64, typ: Option<E820Type>) -> bool {
        let r = PhysRange::new(start, end);
        self.entries
            .iter()
            .filter(|e| typ.is_none_or(|t| t == e.typ))
            .any(|e| e.range().overlaps(&r))
    }

    /// True when every byte of `[start, end)` is covered by entries of type `typ`: Linux's
    /// `__e820__mapped_all`. The table must be sanitized (sorted).
    pub fn mapped_all(&self, start: u64, end: u64, typ: E820Type) -> bool {
        let mut start = start;
        for e in self.entries.iter().filter(|e| e.typ == typ) {
            if start >= end {
                return true;
            }
            let r = e.range();
            if r.start <= start && start < r.end {
                start = r.end;
            }
        }
        start >= end
    }

    /// The type of the entry holding `addr`, if any (the table must be sanitized).
    pub fn type_at(&self, addr: u64) -> Option<E820Type> {
        self.entries
            .iter()
            .find(|e| e.range().contains(addr))
            .map(|e| e.typ)
    }

    /// The zone-setup step of Linux's `setup_arch`: `trim_bios_range` reserves page 0
    /// (`e820__range_update(0, PAGE_SIZE, RAM, RESERVED)`), removes the PC BIOS area
    /// `0xa0000-0xfffff` from usable RAM, and sanitizes the table again.
    ///
    /// The table keeps sub-page RAM edges, as Linux's does (it is what `/proc/iomem` shows);
    /// [`E820Table::usable_pages`] gives the page-trimmed ranges the zones are built from.
    pub fn trim_for_zones(&mut self) {
        self.update_range(0, PAGE_SIZE, E820Type::Usable, E820Type::Reserved);
        self.remove_range(BIOS_BEGIN, BIOS_END - BIOS_BEGIN, Some(E820Type::Usable));
        self.sanitize();
    }

    /// Usable RAM trimmed inward to whole pages (what Linux's memblock keeps after
    /// `memblock_trim_memory(PAGE_SIZE)`), in table order, as `[start, end)` ranges. These are
    /// the `Early memory node ranges`.
    pub fn usable_pages(&self) -> impl Iterator<Item = PhysRange> + '_ {
        self.entries
            .iter()
            .filter(|e| e.typ.is_ram())
            .filter_map(|e| e.range().page_trimmed())
    }

    /// One past the highest usable page frame number below `MAX_ARCH_PFN` (Linux's
    /// `e820__end_of_ram_pfn`, which becomes `max_pfn`).
    pub fn end_of_ram_pfn(&self) -> u64 {
        let mut last_pfn = 0;
        for e in self.entries.iter().filter(|e| e.typ.is_ram()) {
            let start_pfn = e.addr >> 12;
            let end_pfn = e.end() >> 12;
            if start_pfn >= MAX_ARCH_PFN {
                continue;
            }
            if end_pfn > MAX_ARCH_PFN {
                return MAX_ARCH_PFN;
            }
            last_pfn = last_pfn.max(end_pfn);
        }
        last_pfn
    }
}
