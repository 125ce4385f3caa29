//! Host unit and property tests, one file per module, plus shared builders for E820 maps and
//! ACPI tables made byte by byte.

mod acpi;
mod cmdline;
mod e820;
mod iomem;
mod madt;
mod nfit;
mod numa;
mod pmem;
mod props;
mod setup;

use alloc::vec::Vec;

use crate::e820::{E820Entry, E820Table, E820Type};

/// The memory map SeaBIOS gives a QEMU guest with `-m 512M` and the default AMD-vendor CPU
/// (REFERENCE.md §2), as Linux prints it.
pub const QEMU_SEABIOS_512M: &str = "\
[    0.000000] BIOS-provided physical RAM map:
[    0.000000] BIOS-e820: [mem 0x0000000000000000-0x000000000009fbff] usable
[    0.000000] BIOS-e820: [mem 0x000000000009fc00-0x000000000009ffff] reserved
[    0.000000] BIOS-e820: [mem 0x00000000000f0000-0x00000000000fffff] reserved
[    0.000000] BIOS-e820: [mem 0x0000000000100000-0x000000001ffdffff] usable
[    0.000000] BIOS-e820: [mem 0x000000001ffe0000-0x000000001fffffff] reserved
[    0.000000] BIOS-e820: [mem 0x00000000feffc000-0x00000000feffffff] reserved
[    0.000000] BIOS-e820: [mem 0x00000000fffc0000-0x00000000ffffffff] reserved
[    0.000000] BIOS-e820: [mem 0x000000fd00000000-0x000000ffffffffff] reserved
[    0.000000] NX (Execute Disable) protection: active
";

/// A typical laptop's map (AMD platform, 16 GiB), as found in its dmesg.
pub const LAPTOP_DMESG: &str = "\
[    0.000000] Linux version 6.8.0-45-generic (buildd@lcy02-amd64-115) #45-Ubuntu SMP
[    0.000000] Command line: BOOT_IMAGE=/boot/vmlinuz-6.8.0-45-generic root=UUID=1234 ro quiet splash
[    0.000000] BIOS-provided physical RAM map:
[    0.000000] BIOS-e820: [mem 0x0000000000000000-0x000000000009efff] usable
[    0.000000] BIOS-e820: [mem 0x000000000009f000-0x00000000000fffff] reserved
[    0.000000] BIOS-e820: [mem 0x0000000000100000-0x0000000009afffff] usable
[    0.000000] BIOS-e820: [mem 0x0000000009b00000-0x0000000009dfffff] reserved
[    0.000000] BIOS-e820: [mem 0x0000000009e00000-0x0000000009efffff] usable
[    0.000000] BIOS-e820: [mem 0x0000000009f00000-0x0000000009f3cfff] ACPI NVS
[    0.000000] BIOS-e820: [mem 0x0000000009f3d000-0x00000000c9ccffff] usable
[    0.000000] BIOS-e820: [mem 0x00000000c9cd0000-0x00000000cbe2ffff] reserved
[    0.000000] BIOS-e820: [mem 0x00000000cbe30000-0x00000000cbe9cfff] ACPI data
[    0.000000] BIOS-e820: [mem 0x00000000cbe9d000-0x00000000cbf9cfff] ACPI NVS
[    0.000000] BIOS-e820: [mem 0x00000000cbf9d000-0x00000000ccffefff] reserved
[    0.000000] BIOS-e820: [mem 0x00000000ccfff000-0x00000000cdffffff] usable
[    0.000000] BIOS-e820: [mem 0x00000000ce000000-0x00000000cfffffff] reserved
[    0.000000] BIOS-e820: [mem 0x00000000f0000000-0x00000000f7ffffff] reserved
[    0.000000] BIOS-e820: [mem 0x00000000fd000000-0x00000000ffffffff] reserved
[    0.000000] BIOS-e820: [mem 0x0000000100000000-0x000000042f33ffff] usable
[    0.000000] BIOS-e820: [mem 0x000000042f340000-0x00000004701fffff] reserved
[    0.000000] NX (Execute Disable) protection: active
[    0.000000] efi: EFI v2.7 by American Megatrends
";

/// Shorthand for a table from `(start, end_exclusive, raw type)` triples.
pub fn table(entries: &[(u64, u64, u32)]) -> E820Table {
    E820Table::from_entries(
        entries
            .iter()
            .map(|&(s, e, t)| E820Entry::new(s, e - s, E820Type::from_raw(t)))
            .collect(),
    )
}

/// The table's entries as `(start, end_exclusive, raw type)` triples.
pub fn triples(t: &E820Table) -> Vec<(u64, u64, u32)> {
    t.entries()
        .iter()
        .map(|e| (e.addr, e.end(), e.typ.raw()))
        .collect()
}

/// Sets the checksum byte (offset 9) of an ACPI table so that its bytes sum to 0.
pub fn fix_checksum(table: &mut [u8]) {
    table[9] = 0;
    let sum = crate::acpi::checksum(table);
    table[9] = 0u8.wrapping_sub(sum);
}

/// A table with signature `sig` and `body` after the 36-byte header, with a valid checksum.
pub fn sdt(sig: &[u8; 4], revision: u8, body: &[u8]) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(sig);
    t.extend_from_slice(&((36 + body.len()) as u32).to_le_bytes());
    t.push(revision);
    t.push(0);
    t.extend_from_slice(b"BOCHS ");
    t.extend_from_slice(b"BXPC    ");
    t.extend_from_slice(&1u32.to_le_bytes());
    t.extend_from_slice(b"BXPC");
    t.extend_from_slice(&1u32.to_le_bytes());
    t.extend_from_slice(body);
    fix_checksum(&mut t);
    t
}
