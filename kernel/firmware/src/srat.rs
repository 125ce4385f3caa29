//! The ACPI System Resource Affinity Table (Linux's `drivers/acpi/numa/srat.c` and
//! `arch/x86/mm/srat.c`): which proximity domain each CPU and each memory range belongs to.
//!
//! Layout: the 36-byte table header, a 4-byte table revision field and 8 reserved bytes, then
//! subtables `{u8 type, u8 length, ...}`. This module only decodes; what the entries mean for
//! the node layout (PXM-to-node numbering, `bad_srat`, block merging) is [`crate::numa`]'s.
//!
//! Decoded subtables:
//! - type 0, processor local APIC affinity (16 bytes): PXM bits 0-7 at +2, APIC id at +3,
//!   flags at +4 (bit 0 enabled), PXM bits 8-31 at +9 (used from SRAT revision 2 on);
//! - type 1, memory affinity (40 bytes): PXM at +2, base at +8, length at +16, flags at +28
//!   (bit 0 enabled, bit 1 hot-pluggable, bit 2 non-volatile);
//! - type 2, processor local x2APIC affinity (24 bytes): PXM at +4, x2APIC id at +8, flags at
//!   +12.
//!
//! Other types (GICC, GIC ITS, generic initiator, generic port) are kept as
//! [`SratEntry::Other`] and ignored by the node layout.
//!
//! Errors, as in [`crate::nfit`]: the whole table is rejected (not an SRAT, shorter than its
//! header, truncated, bad checksum), or the walk stops at a subtable whose length is below 2 or
//! runs past the end (entries before it are kept). A known subtable shorter than its structure
//! is kept as [`SratEntry::Malformed`]: Linux calls `bad_srat()` for it, and [`crate::numa`]
//! does the same.

use alloc::vec::Vec;
use core::fmt;

use crate::acpi::{SDT_HEADER_LEN, SdtHeader, Signature, TableCheck, checked_table};
use crate::range::PhysRange;

/// Offset of the first subtable: header, table revision (4 bytes), 8 reserved bytes.
pub const SRAT_HEADER_LEN: usize = SDT_HEADER_LEN + 12;
/// Subtable type: processor local APIC/SAPIC affinity.
pub const SRAT_TYPE_CPU_AFFINITY: u8 = 0;
/// Subtable type: memory affinity.
pub const SRAT_TYPE_MEMORY_AFFINITY: u8 = 1;
/// Subtable type: processor local x2APIC affinity.
pub const SRAT_TYPE_X2APIC_CPU_AFFINITY: u8 = 2;
/// Length of a processor local APIC affinity structure.
pub const CPU_AFFINITY_LEN: u8 = 16;
/// Length of a memory affinity structure.
pub const MEMORY_AFFINITY_LEN: u8 = 40;
/// Length of a processor local x2APIC affinity structure.
pub const X2APIC_AFFINITY_LEN: u8 = 24;

/// Memory affinity flag: the entry is enabled.
pub const MEM_ENABLED: u32 = 1 << 0;
/// Memory affinity flag: the range is hot-pluggable.
pub const MEM_HOT_PLUGGABLE: u32 = 1 << 1;
/// Memory affinity flag: the range is non-volatile.
pub const MEM_NON_VOLATILE: u32 = 1 << 2;
/// Processor affinity flag: the entry is enabled.
pub const CPU_ENABLED: u32 = 1 << 0;

/// A memory affinity structure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryAffinity {
    /// Proximity domain (all 32 bits; [`crate::numa`] masks it to 8 bits for revision 1).
    pub pxm: u32,
    /// Base address.
    pub base: u64,
    /// Length in bytes.
    pub length: u64,
    /// Flags (`MEM_*`).
    pub flags: u32,
}

impl MemoryAffinity {
    /// `[base, base + length)`, clipped at `u64::MAX`.
    pub fn range(&self) -> PhysRange {
        PhysRange::from_size(self.base, self.length)
    }
    /// Bit 0 of the flags.
    pub fn enabled(&self) -> bool {
        self.flags & MEM_ENABLED != 0
    }
    /// Bit 1 of the flags.
    pub fn hot_pluggable(&self) -> bool {
        self.flags & MEM_HOT_PLUGGABLE != 0
    }
    /// Bit 2 of the flags.
    pub fn non_volatile(&self) -> bool {
        self.flags & MEM_NON_VOLATILE != 0
    }
}

/// A processor affinity structure (local APIC or x2APIC).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuAffinity {
    /// Proximity domain. For a local APIC entry: bits 0-7 always, bits 8-31 only meaningful
    /// from SRAT revision 2 on (see [`CpuAffinity::pxm_for_revision`]).
    pub pxm: u32,
    /// APIC id (8 bits for a local APIC entry).
    pub apic_id: u32,
    /// Flags (`CPU_ENABLED`).
    pub flags: u32,
    /// True for an x2APIC entry (type 2).
    pub x2apic: bool,
}

impl CpuAffinity {
    /// Bit 0 of the flags.
    pub fn enabled(&self) -> bool {
        self.flags & CPU_ENABLED != 0
    }
    /// The proximity domain as Linux reads it for a table of `revision`: a local APIC entry's
    /// high 24 bits count only from revision 2 on.
    pub fn pxm_for_revision(&self, revision: u8) -> u32 {
        if self.x2apic || revision >= 2 {
            self.pxm
        } else {
            self.pxm & 0xff
        }
    }
}

/// One SRAT subtable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SratEntry {
    /// Type 0 or 2.
    Cpu(CpuAffinity),
    /// Type 1.
    Memory(MemoryAffinity),
    /// A type 0, 1 or 2 structure shorter (or, for type 0, other) than its defined length.
    Malformed {
        /// Offset in the table.
        offset: usize,
        /// Subtable type.
        typ: u8,
        /// Its length field.
        length: u8,
    },
    /// Any other type, skipped.
    Other {
        /// Subtable type.
        typ: u8,
        /// Its length field.
        length: u8,
    },
}

/// A reason to reject the SRAT or the rest of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SratError {
    /// Whole table: the signature is not `SRAT`.
    NotSrat {
        /// Signature found.
        found: Signature,
    },
    /// Whole table: fewer than the 48 bytes of header, revision and reserved fields.
    TooShort {
        /// Length (of the buffer, or the header's length field if smaller).
        length: usize,
    },
    /// Whole table: the header's length exceeds the bytes available.
    Truncated {
        /// Header length field.
        header_length: u32,
        /// Bytes available.
        available: usize,
    },
    /// Whole table: the bytes do not sum to 0.
    BadChecksum {
        /// The byte sum found.
        sum: u8,
    },
    /// Rest of the table: a subtable with a length below 2, or 1 stray byte at the end.
    BadSubtableLength {
        /// Offset in the table.
        offset: usize,
        /// Subtable type.
        typ: u8,
        /// Its length field (0 for a lone trailing byte).
        length: u8,
    },
    /// Rest of the table: a subtable running past the end of the table.
    PastEnd {
        /// Offset in the table.
        offset: usize,
        /// Subtable type.
        typ: u8,
        /// Its length field.
        length: u8,
        /// Bytes left in the table.
        remaining: usize,
    },
}

impl SratError {
    /// True when the error rejected the whole table.
    pub fn rejects_table(&self) -> bool {
        matches!(
            self,
            Self::NotSrat { .. }
                | Self::TooShort { .. }
                | Self::Truncated { .. }
                | Self::BadChecksum { .. }
        )
    }
}

impl fmt::Display for SratError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::NotSrat { found } => {
                write!(
                    f,
                    "SRAT: signature is \"{found}\", not \"SRAT\"; table rejected"
                )
            }
            Self::TooShort { length } => write!(
                f,
                "SRAT: table is {length} bytes, shorter than its {SRAT_HEADER_LEN}-byte header; \
                 table rejected"
            ),
            Self::Truncated {
                header_length,
                available,
            } => write!(
                f,
                "SRAT: truncated: header length is {header_length} bytes but only {available} \
                 are present; table rejected"
            ),
            Self::BadChecksum { sum } => write!(
                f,
                "SRAT: bad checksum (bytes sum to {sum:#04x}, expected 0); table rejected"
            ),
            Self::BadSubtableLength {
                offset,
                typ,
                length,
            } => write!(
                f,
                "SRAT: subtable type {typ} at offset {offset} has length {length} (below its \
                 2-byte header); rest of table ignored"
            ),
            Self::PastEnd {
                offset,
                typ,
                length,
                remaining,
            } => write!(
                f,
                "SRAT: subtable type {typ} at offset {offset} has length {length} but only \
                 {remaining} bytes remain (runs past the end); rest of table ignored"
            ),
        }
    }
}

impl From<TableCheck> for SratError {
    fn from(c: TableCheck) -> Self {
        match c {
            TableCheck::WrongSignature { found } => Self::NotSrat { found },
            TableCheck::TooShort { length } => Self::TooShort { length },
            TableCheck::Truncated {
                header_length,
                available,
            } => Self::Truncated {
                header_length,
                available,
            },
            TableCheck::BadChecksum { sum } => Self::BadChecksum { sum },
        }
    }
}

/// A decoded SRAT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Srat {
    /// The table header; `header.revision` decides how PXMs are read (Linux's
    /// `acpi_srat_revision`).
    pub header: SdtHeader,
    /// Every subtable in table order.
    pub entries: Vec<SratEntry>,
    /// A problem that stopped the walk early, if any (entries before it are kept).
    pub problem: Option<SratError>,
}

impl Srat {
    /// The header's revision (Linux's `acpi_srat_revision`).
    pub fn revision(&self) -> u8 {
        self.header.revision
    }
}

fn le(b: &[u8], off: usize, n: usize) -> u64 {
    let mut v = 0u64;
    for i in (0..n).rev() {
        v = (v << 8) | u64::from(b.get(off + i).copied().unwrap_or(0));
    }
    v
}

/// Decodes an SRAT. `Err` only for a table that cannot be used at all.
pub fn parse_srat(bytes: &[u8]) -> Result<Srat, SratError> {
    let (header, table) = checked_table(bytes, Signature::SRAT, SRAT_HEADER_LEN)?;
    let length = table.len();
    let mut entries = Vec::new();
    let mut problem = None;
    let mut offset = SRAT_HEADER_LEN;
    while offset < length {
        let remaining = length - offset;
        let typ = table[offset];
        let len = table.get(offset + 1).copied().unwrap_or(0);
        if remaining < 2 || len < 2 {
            problem = Some(SratError::BadSubtableLength {
                offset,
                typ,
                length: len,
            });
            break;
        }
        if usize::from(len) > remaining {
            problem = Some(SratError::PastEnd {
                offset,
                typ,
                length: len,
                remaining,
            });
            break;
        }
        let s = &table[offset..offset + usize::from(len)];
        let malformed = SratEntry::Malformed {
            offset,
            typ,
            length: len,
        };
        let entry = match typ {
            // Linux requires the exact length for a local APIC entry, at least it for the others.
            SRAT_TYPE_CPU_AFFINITY if len != CPU_AFFINITY_LEN => malformed,
            SRAT_TYPE_CPU_AFFINITY => SratEntry::Cpu(CpuAffinity {
                pxm: le(s, 2, 1) as u32 | ((le(s, 9, 3) as u32) << 8),
                apic_id: le(s, 3, 1) as u32,
                flags: le(s, 4, 4) as u32,
                x2apic: false,
            }),
            SRAT_TYPE_MEMORY_AFFINITY if len < MEMORY_AFFINITY_LEN => malformed,
            SRAT_TYPE_MEMORY_AFFINITY => SratEntry::Memory(MemoryAffinity {
                pxm: le(s, 2, 4) as u32,
                base: le(s, 8, 8),
                length: le(s, 16, 8),
                flags: le(s, 28, 4) as u32,
            }),
            SRAT_TYPE_X2APIC_CPU_AFFINITY if len < X2APIC_AFFINITY_LEN => malformed,
            SRAT_TYPE_X2APIC_CPU_AFFINITY => SratEntry::Cpu(CpuAffinity {
                pxm: le(s, 4, 4) as u32,
                apic_id: le(s, 8, 4) as u32,
                flags: le(s, 12, 4) as u32,
                x2apic: true,
            }),
            _ => SratEntry::Other { typ, length: len },
        };
        entries.push(entry);
        offset += usize::from(len);
    }
    Ok(Srat {
        header,
        entries,
        problem,
    })
}

/// Rebuilds an SRAT from a Linux boot log: `SRAT: PXM P -> APIC 0xID -> Node N` lines become
/// enabled processor entries and `SRAT: Node N PXM P [mem 0xS-0xE]` lines (with or without
/// the `ACPI: ` prefix and the timestamp, with ` hotplug` / ` non-volatile`) enabled memory
/// entries, in log order, so that the planner can run [`crate::numa`] on a real machine's
/// dmesg. Linux logs only the entries it used, so disabled ones are absent here too. `None`
/// when the log has no SRAT line. The header is a made-up revision-3 one (full 32-bit PXMs).
pub fn srat_from_dmesg(text: &str) -> Option<Srat> {
    let mut entries = Vec::new();
    for line in text.lines() {
        let Some(pos) = line.find("SRAT: ") else {
            continue;
        };
        let rest = &line[pos + 6..];
        if let Some(cpu) = dmesg_cpu(rest) {
            entries.push(SratEntry::Cpu(cpu));
        } else if let Some(mem) = dmesg_memory(rest) {
            entries.push(SratEntry::Memory(mem));
        }
    }
    if entries.is_empty() {
        return None;
    }
    let header = SdtHeader {
        signature: Signature(*b"SRAT"),
        length: 0,
        revision: 3,
        checksum: 0,
        oem_id: *b"DMESG ",
        oem_table_id: *b"DMESG   ",
        oem_revision: 0,
        creator_id: *b"DMSG",
        creator_revision: 0,
    };
    Some(Srat {
        header,
        entries,
        problem: None,
    })
}

fn hex(s: &str) -> Option<u64> {
    u64::from_str_radix(s.strip_prefix("0x")?, 16).ok()
}

/// `PXM 0 -> APIC 0x00 -> Node 0`.
fn dmesg_cpu(s: &str) -> Option<CpuAffinity> {
    let mut w = s.split_whitespace();
    if w.next()? != "PXM" {
        return None;
    }
    let pxm = w.next()?.parse().ok()?;
    if (w.next()?, w.next()?) != ("->", "APIC") {
        return None;
    }
    let id = w.next()?;
    let apic_id = u32::try_from(hex(id)?).ok()?;
    Some(CpuAffinity {
        pxm,
        apic_id,
        flags: CPU_ENABLED,
        x2apic: id.len() > 4,
    })
}

/// `Node 0 PXM 0 [mem 0x00000000-0x0009ffff] hotplug non-volatile`.
fn dmesg_memory(s: &str) -> Option<MemoryAffinity> {
    let mut w = s.split_whitespace();
    if w.next()? != "Node" {
        return None;
    }
    w.next()?.parse::<u32>().ok()?;
    if w.next()? != "PXM" {
        return None;
    }
    let pxm = w.next()?.parse().ok()?;
    if w.next()? != "[mem" {
        return None;
    }
    let (a, b) = w.next()?.strip_suffix(']')?.split_once('-')?;
    let (start, last) = (hex(a)?, hex(b)?);
    let mut flags = MEM_ENABLED;
    for extra in w {
        match extra {
            "hotplug" => flags |= MEM_HOT_PLUGGABLE,
            "non-volatile" => flags |= MEM_NON_VOLATILE,
            _ => {}
        }
    }
    Some(MemoryAffinity {
        pxm,
        base: start,
        length: last.checked_sub(start)?.checked_add(1)?,
        flags,
    })
}
