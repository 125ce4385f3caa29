//! The ACPI Multiple APIC Description Table (signature `APIC`; Linux's
//! `arch/x86/kernel/acpi/boot.c` and `acpi_table_print_madt_entry` / `acpi_parse_entries_array`
//! in `drivers/acpi/tables.c`, as of Linux 6.1): the local APIC address, the processors (local
//! APIC and x2APIC entries), I/O APICs, interrupt source overrides and NMI wiring, and the CPU
//! list Linux would bring up from them.
//!
//! Layout: the 36-byte table header, the 32-bit local APIC address at +36 and the flags at +40
//! (bit 0 `PCAT_COMPAT`: dual 8259s are present), then subtables `{u8 type, u8 length, ...}`.
//!
//! Decoded subtables, each at least as long as its structure (Linux's `BAD_MADT_ENTRY`; longer
//! ones are accepted and the extra bytes ignored):
//! - type 0, processor local APIC (8 bytes): ACPI processor UID at +2, APIC id at +3, flags
//!   at +4 (bit 0 enabled, bit 1 online capable);
//! - type 1, I/O APIC (12): id at +2, address at +4, GSI base at +8;
//! - type 2, interrupt source override (10): bus at +2, source IRQ at +3, GSI at +4, MPS INTI
//!   flags at +8 (bits 0-1 polarity, bits 2-3 trigger mode);
//! - type 3, NMI source (8): flags at +2, GSI at +4;
//! - type 4, local APIC NMI (6): ACPI processor UID at +2 (0xff: all), flags at +3, LINT# at +5;
//! - type 5, local APIC address override (12): 64-bit address at +4;
//! - type 9, processor local x2APIC (16): x2APIC id at +4, flags at +8, UID at +12;
//! - type 0xa, local x2APIC NMI (12): flags at +2, UID at +4 (0xffffffff: all), LINT# at +8.
//!
//! Other types are kept as [`MadtEntry::Other`] and skipped.
//!
//! Errors, as in [`crate::srat`]: the whole table is rejected (not an MADT, shorter than its
//! 44-byte header, truncated, bad checksum, through [`checked_table`]), or the walk stops at
//! the first malformed subtable (length below 2 or below its structure, or running past the
//! end of the table), keeping the entries before it in [`Madt::problem`]. What Linux does
//! with such a table is [`smp_config`]'s: it gives up on the MADT.
//!
//! # Where [`smp_config`] differs from Linux 6.1
//!
//! - A malformed subtable makes Linux's pass over its type fail (`acpi_parse_entries_array`
//!   counts the bad entry and returns `-EINVAL`), print `Error parsing ...` and
//!   `Invalid BIOS MADT, disabling ACPI`, and run on the boot CPU only; it still counts the
//!   CPUs registered before the bad entry in `Allowing N CPUs`, this says `Allowing 1 CPUs`.
//!   A malformed subtable of a type x86 Linux does not parse (say a GICC) is ignored by Linux
//!   but ends the walk here; the MADT is still used with the entries before it.
//! - A repeated APIC id is reported and skipped (Linux 6.1 maps it to the same logical CPU but
//!   counts it twice).
//! - An enabled x2APIC entry needs the kernel in x2APIC mode for ids of 255 and above
//!   ([`CpuPolicy::x2apic_mode`]), as Linux's `apic_id_valid`.
//! - The boot CPU is always logical CPU 0 in [`SmpConfig::cpus`] and counted as present; when
//!   the MADT does not list it although it lists others (a firmware bug), Linux 6.1 leaves it
//!   out of `num_processors` (so `Allowing N CPUs` is one lower there) and prints nothing.
//! - Linux verifies no checksum at this stage (`Early table checksum verification disabled`);
//!   here a bad checksum rejects the table, as for every table of this crate.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::acpi::{SDT_HEADER_LEN, SdtHeader, Signature, TableCheck, checked_table, checksum};
use crate::numa::Level;

/// Offset of the first subtable: header, local APIC address, flags.
pub const MADT_HEADER_LEN: usize = SDT_HEADER_LEN + 8;
/// MADT flag: the system also has a PC-AT-compatible dual 8259 setup.
pub const MADT_PCAT_COMPAT: u32 = 1 << 0;
/// Local APIC / x2APIC flag: the processor is usable.
pub const LAPIC_ENABLED: u32 = 1 << 0;
/// Local APIC / x2APIC flag: the processor can be enabled at run time (ACPI 6.3, MADT rev. 5).
pub const LAPIC_ONLINE_CAPABLE: u32 = 1 << 1;
/// Linux's `MAX_LOCAL_APIC` on x86-64: APIC ids from here on are skipped.
pub const MAX_LOCAL_APIC: u32 = 32768;

/// Subtable type: processor local APIC.
pub const TYPE_LOCAL_APIC: u8 = 0;
/// Subtable type: I/O APIC.
pub const TYPE_IO_APIC: u8 = 1;
/// Subtable type: interrupt source override.
pub const TYPE_INTERRUPT_OVERRIDE: u8 = 2;
/// Subtable type: NMI source.
pub const TYPE_NMI_SOURCE: u8 = 3;
/// Subtable type: local APIC NMI.
pub const TYPE_LOCAL_APIC_NMI: u8 = 4;
/// Subtable type: local APIC address override.
pub const TYPE_LOCAL_APIC_OVERRIDE: u8 = 5;
/// Subtable type: processor local x2APIC.
pub const TYPE_LOCAL_X2APIC: u8 = 9;
/// Subtable type: local x2APIC NMI.
pub const TYPE_LOCAL_X2APIC_NMI: u8 = 0xa;

/// The structure length of a decoded subtable type (Linux's `sizeof` in `BAD_MADT_ENTRY`),
/// `None` for other types.
pub fn min_len(kind: u8) -> Option<u8> {
    Some(match kind {
        TYPE_LOCAL_APIC => 8,
        TYPE_IO_APIC => 12,
        TYPE_INTERRUPT_OVERRIDE => 10,
        TYPE_NMI_SOURCE => 8,
        TYPE_LOCAL_APIC_NMI => 6,
        TYPE_LOCAL_APIC_OVERRIDE => 12,
        TYPE_LOCAL_X2APIC => 16,
        TYPE_LOCAL_X2APIC_NMI => 12,
        _ => return None,
    })
}

/// Linux's `mps_inti_flags_polarity`.
const POLARITY: [&str; 4] = ["dfl", "high", "res", "low"];
/// Linux's `mps_inti_flags_trigger`.
const TRIGGER: [&str; 4] = ["dfl", "edge", "res", "level"];

/// MPS INTI flags (polarity bits 0-1, trigger mode bits 2-3) as Linux prints them: `dfl dfl`,
/// `high level`.
fn inti(flags: u16) -> (&'static str, &'static str) {
    (
        POLARITY[usize::from(flags & 3)],
        TRIGGER[usize::from((flags >> 2) & 3)],
    )
}

fn enabled_str(flags: u32) -> &'static str {
    if flags & LAPIC_ENABLED != 0 {
        "enabled"
    } else {
        "disabled"
    }
}

/// A processor local APIC structure (type 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalApic {
    /// ACPI processor UID.
    pub acpi_id: u8,
    /// Local APIC id (0xff: invalid, ignored by Linux).
    pub apic_id: u8,
    /// Flags (`LAPIC_*`).
    pub flags: u32,
}

/// An I/O APIC structure (type 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoApic {
    /// I/O APIC id.
    pub id: u8,
    /// Physical address of its registers.
    pub address: u32,
    /// First global system interrupt it handles.
    pub gsi_base: u32,
}

/// An interrupt source override (type 2): ISA `source_irq` is wired to `gsi`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InterruptOverride {
    /// Bus (0: ISA).
    pub bus: u8,
    /// Bus-relative IRQ.
    pub source_irq: u8,
    /// Global system interrupt.
    pub gsi: u32,
    /// MPS INTI flags.
    pub flags: u16,
}

/// A local APIC NMI structure (type 4) or a local x2APIC NMI structure (type 0xa).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalApicNmi {
    /// ACPI processor UID (0xff for type 4, 0xffffffff for type 0xa: all processors).
    pub uid: u32,
    /// MPS INTI flags.
    pub flags: u16,
    /// Local APIC LINT# input the NMI is wired to.
    pub lint: u8,
    /// True for a type 0xa entry.
    pub x2apic: bool,
}

/// A processor local x2APIC structure (type 9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalX2Apic {
    /// x2APIC id (0xffffffff: invalid, ignored by Linux).
    pub apic_id: u32,
    /// Flags (`LAPIC_*`).
    pub flags: u32,
    /// ACPI processor UID.
    pub uid: u32,
}

/// One MADT subtable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MadtEntry {
    /// Type 0.
    LocalApic(LocalApic),
    /// Type 1.
    IoApic(IoApic),
    /// Type 2.
    InterruptOverride(InterruptOverride),
    /// Type 3: an NMI wired to a GSI.
    NmiSource {
        /// MPS INTI flags.
        flags: u16,
        /// Global system interrupt.
        gsi: u32,
    },
    /// Type 4 or 0xa.
    LocalApicNmi(LocalApicNmi),
    /// Type 5: the 64-bit local APIC address, replacing the header's.
    LocalApicAddressOverride {
        /// Physical address.
        address: u64,
    },
    /// Type 9.
    LocalX2Apic(LocalX2Apic),
    /// Any other type, skipped.
    Other {
        /// Subtable type.
        kind: u8,
        /// Its length field.
        len: u8,
    },
}

impl MadtEntry {
    /// The subtable type.
    pub fn kind(&self) -> u8 {
        match self {
            Self::LocalApic(_) => TYPE_LOCAL_APIC,
            Self::IoApic(_) => TYPE_IO_APIC,
            Self::InterruptOverride(_) => TYPE_INTERRUPT_OVERRIDE,
            Self::NmiSource { .. } => TYPE_NMI_SOURCE,
            Self::LocalApicNmi(n) if n.x2apic => TYPE_LOCAL_X2APIC_NMI,
            Self::LocalApicNmi(_) => TYPE_LOCAL_APIC_NMI,
            Self::LocalApicAddressOverride { .. } => TYPE_LOCAL_APIC_OVERRIDE,
            Self::LocalX2Apic(_) => TYPE_LOCAL_X2APIC,
            Self::Other { kind, .. } => *kind,
        }
    }

    /// The subtable's bytes in its standard length (an `Other` entry: its type, its length
    /// and zeros), so that [`parse_madt`] of [`build_madt`] gives the entries back.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut s = Vec::new();
        match *self {
            Self::LocalApic(l) => {
                s.extend_from_slice(&[l.acpi_id, l.apic_id]);
                s.extend_from_slice(&l.flags.to_le_bytes());
            }
            Self::IoApic(io) => {
                s.extend_from_slice(&[io.id, 0]);
                s.extend_from_slice(&io.address.to_le_bytes());
                s.extend_from_slice(&io.gsi_base.to_le_bytes());
            }
            Self::InterruptOverride(o) => {
                s.extend_from_slice(&[o.bus, o.source_irq]);
                s.extend_from_slice(&o.gsi.to_le_bytes());
                s.extend_from_slice(&o.flags.to_le_bytes());
            }
            Self::NmiSource { flags, gsi } => {
                s.extend_from_slice(&flags.to_le_bytes());
                s.extend_from_slice(&gsi.to_le_bytes());
            }
            Self::LocalApicNmi(n) if n.x2apic => {
                s.extend_from_slice(&n.flags.to_le_bytes());
                s.extend_from_slice(&n.uid.to_le_bytes());
                s.extend_from_slice(&[n.lint, 0, 0, 0]);
            }
            Self::LocalApicNmi(n) => {
                s.push(n.uid as u8);
                s.extend_from_slice(&n.flags.to_le_bytes());
                s.push(n.lint);
            }
            Self::LocalApicAddressOverride { address } => {
                s.extend_from_slice(&[0, 0]);
                s.extend_from_slice(&address.to_le_bytes());
            }
            Self::LocalX2Apic(x) => {
                s.extend_from_slice(&[0, 0]);
                s.extend_from_slice(&x.apic_id.to_le_bytes());
                s.extend_from_slice(&x.flags.to_le_bytes());
                s.extend_from_slice(&x.uid.to_le_bytes());
            }
            Self::Other { len, .. } => s.resize(usize::from(len.max(2)) - 2, 0),
        }
        let kind = self.kind();
        let len = (s.len() + 2) as u8;
        let mut out = Vec::with_capacity(s.len() + 2);
        out.extend_from_slice(&[kind, len]);
        out.extend_from_slice(&s);
        out
    }

    /// The line Linux's `acpi_table_print_madt_entry` prints for the entry (with its level),
    /// or `None` for types x86 Linux does not parse. An interrupt source override with
    /// reserved flag bits set gets Linux's second line as well.
    pub fn linux_lines(&self) -> Vec<(Level, String)> {
        let mut v = Vec::new();
        match *self {
            Self::LocalApic(l) => v.push((
                Level::Debug,
                format!(
                    "ACPI: LAPIC (acpi_id[0x{:02x}] lapic_id[0x{:02x}] {})",
                    l.acpi_id,
                    l.apic_id,
                    enabled_str(l.flags)
                ),
            )),
            Self::LocalX2Apic(x) => v.push((
                Level::Debug,
                format!(
                    "ACPI: X2APIC (apic_id[0x{:02x}] uid[0x{:02x}] {})",
                    x.apic_id,
                    x.uid,
                    enabled_str(x.flags)
                ),
            )),
            Self::IoApic(io) => v.push((
                Level::Debug,
                format!(
                    "ACPI: IOAPIC (id[0x{:02x}] address[0x{:08x}] gsi_base[{}])",
                    io.id, io.address, io.gsi_base as i32
                ),
            )),
            Self::InterruptOverride(o) => {
                let (p, t) = inti(o.flags);
                v.push((
                    Level::Info,
                    format!(
                        "ACPI: INT_SRC_OVR (bus {} bus_irq {} global_irq {} {p} {t})",
                        o.bus, o.source_irq, o.gsi as i32
                    ),
                ));
                if o.flags & !0xf != 0 {
                    v.push((
                        Level::Info,
                        format!(
                            "ACPI: INT_SRC_OVR unexpected reserved flags: 0x{:x}",
                            o.flags & !0xf
                        ),
                    ));
                }
            }
            Self::NmiSource { flags, gsi } => {
                let (p, t) = inti(flags);
                v.push((
                    Level::Info,
                    format!("ACPI: NMI_SRC ({p} {t} global_irq {})", gsi as i32),
                ));
            }
            Self::LocalApicNmi(n) => {
                let (p, t) = inti(n.flags);
                let line = if n.x2apic {
                    format!(
                        "ACPI: X2APIC_NMI (uid[0x{:02x}] {p} {t} lint[0x{:x}])",
                        n.uid, n.lint
                    )
                } else {
                    format!(
                        "ACPI: LAPIC_NMI (acpi_id[0x{:02x}] {p} {t} lint[0x{:x}])",
                        n.uid, n.lint
                    )
                };
                v.push((Level::Info, line));
            }
            Self::LocalApicAddressOverride { address } => v.push((
                Level::Info,
                format!("ACPI: LAPIC_ADDR_OVR (address[0x{address:x}])"),
            )),
            Self::Other { .. } => {}
        }
        v
    }
}

/// A reason to reject the MADT or the rest of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MadtError {
    /// Whole table: the signature is not `APIC`.
    NotMadt {
        /// Signature found.
        found: Signature,
    },
    /// Whole table: fewer than the 44 bytes of header, local APIC address and flags.
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
    /// Rest of the table: one stray byte after the last subtable.
    TrailingByte {
        /// Offset in the table.
        offset: usize,
    },
    /// Rest of the table: a subtable whose length is below 2, or below its structure's.
    BadLength {
        /// Offset in the table.
        offset: usize,
        /// Subtable type.
        kind: u8,
        /// Its length field.
        len: u8,
        /// The least length accepted (2, or the structure's).
        min: u8,
    },
    /// Rest of the table: a subtable running past the end of the table.
    PastEnd {
        /// Offset in the table.
        offset: usize,
        /// Subtable type.
        kind: u8,
        /// Its length field.
        len: u8,
        /// Bytes left in the table.
        remaining: usize,
    },
}

impl MadtError {
    /// True when the error rejected the whole table.
    pub fn rejects_table(&self) -> bool {
        !matches!(
            self,
            Self::TrailingByte { .. } | Self::BadLength { .. } | Self::PastEnd { .. }
        )
    }

    /// The subtable type of a malformed entry.
    pub fn kind(&self) -> Option<u8> {
        match *self {
            Self::BadLength { kind, .. } | Self::PastEnd { kind, .. } => Some(kind),
            _ => None,
        }
    }
}

impl fmt::Display for MadtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::NotMadt { found } => write!(
                f,
                "MADT: signature is \"{found}\", not \"APIC\"; table rejected"
            ),
            Self::TooShort { length } => write!(
                f,
                "MADT: table is {length} bytes, shorter than its {MADT_HEADER_LEN}-byte header; \
                 table rejected"
            ),
            Self::Truncated {
                header_length,
                available,
            } => write!(
                f,
                "MADT: truncated: header length is {header_length} bytes but only {available} \
                 are present; table rejected"
            ),
            Self::BadChecksum { sum } => write!(
                f,
                "MADT: bad checksum (bytes sum to {sum:#04x}, expected 0); table rejected"
            ),
            Self::TrailingByte { offset } => write!(
                f,
                "MADT: one stray byte at offset {offset} after the last subtable; ignored"
            ),
            Self::BadLength {
                offset,
                kind,
                len,
                min,
            } => write!(
                f,
                "MADT: subtable type {kind} at offset {offset} has length {len}, below its \
                 {min} bytes (malformed entry); rest of table ignored"
            ),
            Self::PastEnd {
                offset,
                kind,
                len,
                remaining,
            } => write!(
                f,
                "MADT: subtable type {kind} at offset {offset} has length {len} but only \
                 {remaining} bytes remain (runs past the end); rest of table ignored"
            ),
        }
    }
}

impl From<TableCheck> for MadtError {
    fn from(c: TableCheck) -> Self {
        match c {
            TableCheck::WrongSignature { found } => Self::NotMadt { found },
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

/// A decoded MADT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Madt {
    /// The table header (`header.revision` 5 and later have the online-capable bit).
    pub header: SdtHeader,
    /// The 32-bit local APIC address of the header.
    pub local_apic_address: u32,
    /// The flags (`MADT_PCAT_COMPAT`).
    pub flags: u32,
    /// Every subtable in table order, up to the first malformed one.
    pub entries: Vec<MadtEntry>,
    /// The malformed subtable that stopped the walk, if any.
    pub problem: Option<MadtError>,
}

impl Madt {
    /// Bit 0 of the flags: dual 8259s are present (Linux: `legacy_pic_pcat_compat`).
    pub fn pcat_compat(&self) -> bool {
        self.flags & MADT_PCAT_COMPAT != 0
    }

    /// The local APIC address: the last address override's if any, else the header's
    /// (Linux's `acpi_parse_lapic_addr_ovr`).
    pub fn lapic_address(&self) -> u64 {
        self.entries
            .iter()
            .filter_map(|e| match e {
                MadtEntry::LocalApicAddressOverride { address } => Some(*address),
                _ => None,
            })
            .next_back()
            .unwrap_or(u64::from(self.local_apic_address))
    }
}

fn le(b: &[u8], off: usize, n: usize) -> u64 {
    let mut v = 0u64;
    for i in (0..n).rev() {
        v = (v << 8) | u64::from(b.get(off + i).copied().unwrap_or(0));
    }
    v
}

/// Decodes an MADT. `Err` only for a table that cannot be used at all.
pub fn parse_madt(bytes: &[u8]) -> Result<Madt, MadtError> {
    let (header, table) = checked_table(bytes, Signature::APIC, MADT_HEADER_LEN)?;
    let length = table.len();
    let mut entries = Vec::new();
    let mut problem = None;
    let mut offset = MADT_HEADER_LEN;
    while offset < length {
        let remaining = length - offset;
        let kind = table[offset];
        let Some(&len) = table.get(offset + 1) else {
            problem = Some(MadtError::TrailingByte { offset });
            break;
        };
        let min = min_len(kind).unwrap_or(2);
        if len < min {
            problem = Some(MadtError::BadLength {
                offset,
                kind,
                len,
                min,
            });
            break;
        }
        if usize::from(len) > remaining {
            problem = Some(MadtError::PastEnd {
                offset,
                kind,
                len,
                remaining,
            });
            break;
        }
        let s = &table[offset..offset + usize::from(len)];
        let u8_at = |o| le(s, o, 1) as u8;
        let u16_at = |o| le(s, o, 2) as u16;
        let u32_at = |o| le(s, o, 4) as u32;
        entries.push(match kind {
            TYPE_LOCAL_APIC => MadtEntry::LocalApic(LocalApic {
                acpi_id: u8_at(2),
                apic_id: u8_at(3),
                flags: u32_at(4),
            }),
            TYPE_IO_APIC => MadtEntry::IoApic(IoApic {
                id: u8_at(2),
                address: u32_at(4),
                gsi_base: u32_at(8),
            }),
            TYPE_INTERRUPT_OVERRIDE => MadtEntry::InterruptOverride(InterruptOverride {
                bus: u8_at(2),
                source_irq: u8_at(3),
                gsi: u32_at(4),
                flags: u16_at(8),
            }),
            TYPE_NMI_SOURCE => MadtEntry::NmiSource {
                flags: u16_at(2),
                gsi: u32_at(4),
            },
            TYPE_LOCAL_APIC_NMI => MadtEntry::LocalApicNmi(LocalApicNmi {
                uid: u32::from(u8_at(2)),
                flags: u16_at(3),
                lint: u8_at(5),
                x2apic: false,
            }),
            TYPE_LOCAL_APIC_OVERRIDE => MadtEntry::LocalApicAddressOverride {
                address: le(s, 4, 8),
            },
            TYPE_LOCAL_X2APIC => MadtEntry::LocalX2Apic(LocalX2Apic {
                apic_id: u32_at(4),
                flags: u32_at(8),
                uid: u32_at(12),
            }),
            TYPE_LOCAL_X2APIC_NMI => MadtEntry::LocalApicNmi(LocalApicNmi {
                uid: u32_at(4),
                flags: u16_at(2),
                lint: u8_at(8),
                x2apic: true,
            }),
            _ => MadtEntry::Other { kind, len },
        });
        offset += usize::from(len);
    }
    Ok(Madt {
        header,
        local_apic_address: le(table, SDT_HEADER_LEN, 4) as u32,
        flags: le(table, SDT_HEADER_LEN + 4, 4) as u32,
        entries,
        problem,
    })
}

/// Builds an MADT (QEMU's OEM fields, valid checksum) from entries in their standard lengths.
pub fn build_madt(revision: u8, lapic_address: u32, flags: u32, entries: &[MadtEntry]) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(b"APIC");
    t.extend_from_slice(&[0; 4]);
    t.extend_from_slice(&[revision, 0]);
    t.extend_from_slice(b"BOCHS BXPC    ");
    t.extend_from_slice(&1u32.to_le_bytes());
    t.extend_from_slice(b"BXPC");
    t.extend_from_slice(&1u32.to_le_bytes());
    t.extend_from_slice(&lapic_address.to_le_bytes());
    t.extend_from_slice(&flags.to_le_bytes());
    for e in entries {
        t.extend_from_slice(&e.to_bytes());
    }
    let len = u32::try_from(t.len()).unwrap_or(u32::MAX);
    t[4..8].copy_from_slice(&len.to_le_bytes());
    t[9] = 0u8.wrapping_sub(checksum(&t));
    t
}

/// What the kernel brings to Linux's CPU enumeration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuPolicy {
    /// `nr_cpu_ids` (NR_CPUS, or `possible_cpus=` / `nr_cpus=`).
    pub nr_cpu_ids: u32,
    /// The APIC id of the CPU running this (Linux's `boot_cpu_physical_apicid`).
    pub boot_apic_id: u32,
    /// True when the local APIC runs in x2APIC mode, so that ids of 255 and up are usable.
    pub x2apic_mode: bool,
    /// Whether the firmware supports the online-capable bit, so that a disabled local APIC
    /// entry without it is not even a hotplug CPU. `None`: Linux 6.1's rule, MADT revision 5
    /// or later; later 6.1.y kernels decide by FADT revision 6.3 or later instead
    /// ([`online_capable_by_fadt`]).
    pub online_capable: Option<bool>,
}

impl Default for CpuPolicy {
    /// 256 CPUs, boot CPU APIC id 0, xAPIC mode, Linux 6.1's online-capable rule.
    fn default() -> Self {
        Self {
            nr_cpu_ids: 256,
            boot_apic_id: 0,
            x2apic_mode: false,
            online_capable: None,
        }
    }
}

/// Linux's later rule (stable 6.1.y and 6.4+ `acpi_parse_madt`): the online-capable bit counts
/// from FADT revision 6.3 on.
pub fn online_capable_by_fadt(major: u8, minor: u8) -> bool {
    major > 6 || (major == 6 && minor >= 3)
}

/// How a CPU of [`SmpConfig::cpus`] can be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuState {
    /// Enabled: Linux's present CPU with this logical number (0 is the boot CPU).
    Present {
        /// Logical CPU number.
        cpu: u32,
    },
    /// Disabled but may be hot-added: one of Linux's "hotplug CPUs".
    Hotplug,
}

/// A processor from the MADT that Linux would count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MadtCpu {
    /// APIC id (x2APIC id for a type 9 entry).
    pub apic_id: u32,
    /// ACPI processor UID.
    pub acpi_id: u32,
    /// True for a type 9 entry.
    pub x2apic: bool,
    /// Present or hotplug.
    pub state: CpuState,
}

/// The SMP configuration Linux would take from an MADT (`acpi_process_madt` and
/// `prefill_possible_map`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmpConfig {
    /// True when the MADT was used (Linux's `acpi_lapic`); false: only the boot CPU runs.
    pub acpi_lapic: bool,
    /// The local APIC address (0xfee00000 when no MADT is used).
    pub lapic_address: u64,
    /// Processors in MADT order: present ones (the boot CPU first), then hotplug ones, at
    /// most `possible` in all.
    pub cpus: Vec<MadtCpu>,
    /// Linux's `num_processors` after the prefill: the present CPUs.
    pub present: u32,
    /// Possible CPUs (present and hotplug), as in `Allowing N CPUs`.
    pub possible: u32,
    /// I/O APICs (empty when the MADT is not used).
    pub io_apics: Vec<IoApic>,
    /// Interrupt source overrides.
    pub overrides: Vec<InterruptOverride>,
    /// Local APIC and x2APIC NMI entries.
    pub lapic_nmis: Vec<LocalApicNmi>,
    /// Linux's lines in its order, then any line of ours (the problem that stopped the walk).
    pub messages: Vec<(Level, String)>,
}

impl SmpConfig {
    /// Hotplug CPUs, as in `Allowing N CPUs, M hotplug CPUs`.
    pub fn hotplug(&self) -> u32 {
        self.possible.saturating_sub(self.present)
    }

    /// The present CPUs' APIC ids by logical CPU number.
    pub fn present_apic_ids(&self) -> Vec<u32> {
        let mut v: Vec<(u32, u32)> = self
            .cpus
            .iter()
            .filter_map(|c| match c.state {
                CpuState::Present { cpu } => Some((cpu, c.apic_id)),
                CpuState::Hotplug => None,
            })
            .collect();
        v.sort_unstable();
        v.into_iter().map(|(_, a)| a).collect()
    }

    /// Writes the messages through the `log` facade.
    pub fn log(&self) {
        for (level, line) in &self.messages {
            match level {
                Level::Debug => log::debug!("{line}"),
                Level::Info => log::info!("{line}"),
                Level::Warn => log::warn!("{line}"),
                Level::Error => log::error!("{line}"),
            }
        }
    }
}

/// Linux's `num_processors` / `disabled_cpus` bookkeeping.
struct Enum<'a> {
    policy: &'a CpuPolicy,
    num_processors: u32,
    disabled_cpus: u32,
    next_cpu: u32,
    boot_seen: bool,
    cpus: Vec<MadtCpu>,
    messages: Vec<(Level, String)>,
}

impl Enum<'_> {
    fn say(&mut self, level: Level, line: String) {
        self.messages.push((level, line));
    }

    /// `acpi_register_lapic` and `generic_processor_info`.
    fn register(&mut self, apic_id: u32, acpi_id: u32, enabled: bool, x2apic: bool) {
        if apic_id >= MAX_LOCAL_APIC {
            self.say(Level::Info, "skipped apicid that is too big".into());
            return;
        }
        if !enabled {
            self.disabled_cpus += 1;
            self.cpus.push(MadtCpu {
                apic_id,
                acpi_id,
                x2apic,
                state: CpuState::Hotplug,
            });
            return;
        }
        let max = self.policy.nr_cpu_ids;
        let boot = self.policy.boot_apic_id;
        if !self.boot_seen && self.num_processors + 1 >= max && apic_id != boot {
            let thiscpu = (max + self.disabled_cpus).saturating_sub(1);
            self.say(
                Level::Warn,
                format!(
                    "APIC: NR_CPUS/possible_cpus limit of {max} almost reached. Keeping one slot \
                     for boot cpu.  Processor {thiscpu}/0x{apic_id:x} ignored."
                ),
            );
            self.disabled_cpus += 1;
            return;
        }
        if self.num_processors >= max {
            let thiscpu = max + self.disabled_cpus;
            self.say(
                Level::Warn,
                format!(
                    "APIC: NR_CPUS/possible_cpus limit of {max} reached. Processor \
                     {thiscpu}/0x{apic_id:x} ignored."
                ),
            );
            self.disabled_cpus += 1;
            return;
        }
        let dup = self
            .cpus
            .iter()
            .any(|c| c.apic_id == apic_id && matches!(c.state, CpuState::Present { .. }));
        if dup {
            self.say(
                Level::Warn,
                format!(
                    "APIC: APIC id 0x{apic_id:x} (ACPI id 0x{acpi_id:02x}) listed twice in the \
                     MADT; entry ignored"
                ),
            );
            return;
        }
        let cpu = if apic_id == boot {
            self.boot_seen = true;
            0
        } else {
            self.next_cpu += 1;
            self.next_cpu
        };
        self.num_processors += 1;
        self.cpus.push(MadtCpu {
            apic_id,
            acpi_id,
            x2apic,
            state: CpuState::Present { cpu },
        });
    }
}

/// Linux's error line for a pass over entries of `kind` that met a malformed entry.
fn pass_error(kind: u8) -> &'static str {
    match kind {
        TYPE_LOCAL_APIC | TYPE_LOCAL_X2APIC => "ACPI: Error parsing LAPIC/X2APIC entries",
        TYPE_LOCAL_APIC_NMI | TYPE_LOCAL_X2APIC_NMI => "ACPI: Error parsing LAPIC NMI entry",
        TYPE_LOCAL_APIC_OVERRIDE => "ACPI: Error parsing LAPIC address override entry",
        TYPE_IO_APIC => "ACPI: Error parsing IOAPIC entry",
        TYPE_INTERRUPT_OVERRIDE => "ACPI: Error parsing interrupt source overrides entry",
        _ => "ACPI: Error parsing NMI SRC entry",
    }
}

/// The default local APIC address (`APIC_DEFAULT_PHYS_BASE`).
pub const APIC_DEFAULT_PHYS_BASE: u64 = 0xfee0_0000;

/// The SMP configuration Linux 6.1 takes from `madt` (`acpi_process_madt`, then
/// `prefill_possible_map`): its passes in Linux's order (address override; local APIC and
/// x2APIC entries; x2APIC NMI, then local APIC NMI; I/O APICs; interrupt source overrides;
/// NMI sources) with Linux's lines, and the CPU list. No usable MADT (`None`, a rejected table,
/// a malformed entry of a type Linux parses, no processor entry) leaves the boot CPU alone.
pub fn smp_config(madt: Option<&Result<Madt, MadtError>>, policy: &CpuPolicy) -> SmpConfig {
    let mut e = Enum {
        policy,
        num_processors: 0,
        disabled_cpus: 0,
        next_cpu: 0,
        boot_seen: false,
        cpus: Vec::new(),
        messages: Vec::new(),
    };
    let mut io_apics = Vec::new();
    let mut overrides = Vec::new();
    let mut lapic_nmis = Vec::new();
    let mut lapic_address = APIC_DEFAULT_PHYS_BASE;
    let mut acpi_lapic = false;
    let mut acpi_ioapic = false;
    match madt {
        None => {}
        Some(Err(err)) => e.say(Level::Error, format!("{err}")),
        Some(Ok(m)) => {
            if let Some(p) = &m.problem {
                e.say(Level::Error, format!("{p}"));
            }
            if m.local_apic_address != 0 {
                e.say(
                    Level::Debug,
                    format!("ACPI: Local APIC address 0x{:08x}", m.local_apic_address),
                );
            }
            if let Some(lines) = m.problem.as_ref().and_then(linux_failure) {
                for l in lines.into_iter().flatten() {
                    e.say(Level::Error, l.into());
                }
            } else {
                let (ok, addr) =
                    madt_passes(m, &mut e, &mut io_apics, &mut overrides, &mut lapic_nmis);
                acpi_lapic = ok;
                acpi_ioapic = ok && !io_apics.is_empty();
                lapic_address = addr;
                if !ok {
                    e.cpus.clear();
                    e.num_processors = 0;
                    e.disabled_cpus = 0;
                    io_apics.clear();
                    overrides.clear();
                    lapic_nmis.clear();
                }
            }
        }
    }
    if acpi_lapic && acpi_ioapic {
        e.say(
            Level::Info,
            "ACPI: Using ACPI (MADT) for SMP configuration information".into(),
        );
    } else if acpi_lapic {
        e.say(
            Level::Info,
            "ACPI: Using ACPI for processor (LAPIC) configuration information".into(),
        );
    }
    prefill_possible_map(&mut e);
    let possible = (e.num_processors + e.disabled_cpus).min(policy.nr_cpu_ids.max(1));
    // Hotplug entries beyond the possible count have no CPU number to take.
    let mut room = possible.saturating_sub(e.num_processors);
    let mut cpus: Vec<MadtCpu> = e
        .cpus
        .iter()
        .copied()
        .filter(|c| matches!(c.state, CpuState::Present { .. }))
        .collect();
    cpus.sort_by_key(|c| match c.state {
        CpuState::Present { cpu } => cpu,
        CpuState::Hotplug => u32::MAX,
    });
    for c in e.cpus.iter().filter(|c| c.state == CpuState::Hotplug) {
        if room == 0 {
            break;
        }
        room -= 1;
        cpus.push(*c);
    }
    SmpConfig {
        acpi_lapic,
        lapic_address,
        cpus,
        present: e.num_processors,
        possible,
        io_apics,
        overrides,
        lapic_nmis,
        messages: e.messages,
    }
}

/// Linux's error lines when a pass meets the malformed entry `p` (`BAD_MADT_ENTRY`: shorter
/// than its structure, or the structure past the end; or a zero length, which fails the first
/// pass, the early one over address overrides), or `None` when Linux would not notice it.
fn linux_failure(p: &MadtError) -> Option<[Option<&'static str>; 3]> {
    let kind = match *p {
        MadtError::BadLength { len: 0, .. } => {
            return Some([
                Some("ACPI: [APIC:0x05] Invalid zero length"),
                Some(pass_error(TYPE_LOCAL_APIC_OVERRIDE)),
                Some("ACPI: Invalid BIOS MADT, disabling ACPI"),
            ]);
        }
        MadtError::BadLength { kind, .. } => kind,
        MadtError::PastEnd {
            kind, remaining, ..
        } if min_len(kind).is_some_and(|m| remaining < usize::from(m)) => kind,
        _ => return None,
    };
    min_len(kind)?;
    Some([
        None,
        Some(pass_error(kind)),
        Some("ACPI: Invalid BIOS MADT, disabling ACPI"),
    ])
}

/// The passes of `early_acpi_process_madt` and `acpi_process_madt` over a table without a
/// fatal problem. Returns whether the local APIC entries were used and the APIC address.
fn madt_passes(
    m: &Madt,
    e: &mut Enum<'_>,
    io_apics: &mut Vec<IoApic>,
    overrides: &mut Vec<InterruptOverride>,
    lapic_nmis: &mut Vec<LocalApicNmi>,
) -> (bool, u64) {
    let lines = |e: &mut Enum<'_>, entry: &MadtEntry| {
        for (l, s) in entry.linux_lines() {
            e.say(l, s);
        }
    };
    for entry in &m.entries {
        if let MadtEntry::LocalApicAddressOverride { .. } = entry {
            lines(e, entry);
        }
    }
    let address = m.lapic_address();
    let online_capable = e.policy.online_capable.unwrap_or(m.header.revision >= 5);
    let mut count = 0u32;
    for entry in &m.entries {
        if count >= MAX_LOCAL_APIC {
            break;
        }
        match *entry {
            MadtEntry::LocalApic(l) => {
                count += 1;
                lines(e, entry);
                if l.apic_id == 0xff {
                    continue;
                }
                if online_capable
                    && l.flags & LAPIC_ENABLED == 0
                    && l.flags & LAPIC_ONLINE_CAPABLE == 0
                {
                    continue;
                }
                e.register(
                    u32::from(l.apic_id),
                    u32::from(l.acpi_id),
                    l.flags & LAPIC_ENABLED != 0,
                    false,
                );
            }
            MadtEntry::LocalX2Apic(x) => {
                count += 1;
                lines(e, entry);
                if x.apic_id == u32::MAX {
                    continue;
                }
                let enabled = x.flags & LAPIC_ENABLED != 0;
                if !e.policy.x2apic_mode && x.apic_id >= 0xff {
                    if enabled {
                        e.say(Level::Warn, "ACPI: x2apic entry ignored".into());
                    }
                    continue;
                }
                e.register(x.apic_id, x.uid, enabled, true);
            }
            _ => {}
        }
    }
    if count == 0 {
        e.say(Level::Error, "ACPI: No LAPIC entries present".into());
        return (false, APIC_DEFAULT_PHYS_BASE);
    }
    for x2 in [true, false] {
        for entry in &m.entries {
            if let MadtEntry::LocalApicNmi(n) = entry
                && n.x2apic == x2
            {
                lines(e, entry);
                lapic_nmis.push(*n);
            }
        }
    }
    for entry in &m.entries {
        if let MadtEntry::IoApic(io) = entry {
            lines(e, entry);
            io_apics.push(*io);
        }
    }
    if io_apics.is_empty() {
        e.say(Level::Error, "ACPI: No IOAPIC entries present".into());
        return (true, address);
    }
    for entry in &m.entries {
        if let MadtEntry::InterruptOverride(o) = entry {
            lines(e, entry);
            overrides.push(*o);
        }
    }
    for entry in &m.entries {
        if let MadtEntry::NmiSource { .. } = entry {
            lines(e, entry);
        }
    }
    (true, address)
}

/// `prefill_possible_map` (CONFIG_HOTPLUG_CPU, no `possible_cpus=`/`maxcpus=`): the boot CPU
/// when no processor was found, the NR_CPUS cap, `Allowing N CPUs, M hotplug CPUs`.
fn prefill_possible_map(e: &mut Enum<'_>) {
    let boot = e.policy.boot_apic_id;
    if e.num_processors == 0 {
        e.say(
            Level::Warn,
            format!("smpboot: Boot CPU (id {boot}) not listed by BIOS"),
        );
        e.cpus.retain(|c| c.state == CpuState::Hotplug);
    }
    if !e.boot_seen {
        e.cpus.insert(
            0,
            MadtCpu {
                apic_id: boot,
                acpi_id: 0,
                x2apic: boot >= 0xff,
                state: CpuState::Present { cpu: 0 },
            },
        );
        e.boot_seen = true;
        e.num_processors += 1;
    }
    let mut possible = e.num_processors + e.disabled_cpus;
    let nr = e.policy.nr_cpu_ids.max(1);
    if possible > nr {
        e.say(
            Level::Warn,
            format!("smpboot: {possible} Processors exceeds NR_CPUS limit of {nr}"),
        );
        possible = nr;
    }
    e.say(
        Level::Info,
        format!(
            "smpboot: Allowing {possible} CPUs, {} hotplug CPUs",
            possible.saturating_sub(e.num_processors)
        ),
    );
}
