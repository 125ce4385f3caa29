//! The ACPI NVDIMM Firmware Interface Table (Linux's `drivers/acpi/nfit/core.c`): a 36-byte
//! table header, 4 reserved bytes, then subtables `{u16 type, u16 length, ...}`. Only System
//! Physical Address (SPA) range structures (type 0, 56 bytes, or 64 with the ACPI 6.4 location
//! cookie) are decoded; other types are counted and skipped.
//!
//! Errors come at three levels, so the kernel can log one line each and boot on:
//! - the whole table is rejected ([`parse_nfit`] returns `Err`): not an NFIT, shorter than its
//!   header, truncated, bad checksum;
//! - the rest of the table is rejected (kept in [`Nfit::problems`], SPA ranges before it are
//!   kept): a subtable of length zero or shorter than its 4-byte header, one running past the
//!   end, stray trailing bytes;
//! - one SPA range is rejected (in [`Nfit::problems`], the walk goes on): a structure shorter
//!   than 56 bytes, length zero, `base + length` overflowing, or ending above 2^52 (MAXPHYADDR).

use alloc::vec::Vec;
use core::fmt;

use crate::acpi::{SDT_HEADER_LEN, SdtHeader, Signature, checksum};
use crate::range::PhysRange;

/// Offset of the first subtable (header plus 4 reserved bytes).
pub const NFIT_HEADER_LEN: usize = SDT_HEADER_LEN + 4;
/// Subtable type of a System Physical Address range structure.
pub const NFIT_TYPE_SPA: u16 = 0;
/// Length of an SPA range structure before ACPI 6.4.
pub const SPA_LEN: usize = 56;
/// Length of an SPA range structure with the location cookie (ACPI 6.4).
pub const SPA_LEN_WITH_COOKIE: usize = 64;
/// Highest physical address bit x86_64 can have: SPA ranges must end at or below 2^52.
pub const MAX_PHYS_ADDR: u64 = 1 << 52;

/// A GUID as stored in ACPI tables (first three fields little-endian).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    /// Persistent memory region, 66F0D379-B4F3-4074-AC43-0D3318B78CDB.
    pub const PERSISTENT_MEMORY: Guid = Guid([
        0x79, 0xd3, 0xf0, 0x66, 0xf3, 0xb4, 0x74, 0x40, 0xac, 0x43, 0x0d, 0x33, 0x18, 0xb7, 0x8c,
        0xdb,
    ]);
    /// Volatile memory region, 7305944F-FDDA-44E3-B16C-3F22D252E5D0.
    pub const VOLATILE_MEMORY: Guid = Guid([
        0x4f, 0x94, 0x05, 0x73, 0xda, 0xfd, 0xe3, 0x44, 0xb1, 0x6c, 0x3f, 0x22, 0xd2, 0x52, 0xe5,
        0xd0,
    ]);
    /// NVDIMM control region, 92F701F6-13B4-405D-910B-299367E8234C.
    pub const CONTROL_REGION: Guid = Guid([
        0xf6, 0x01, 0xf7, 0x92, 0xb4, 0x13, 0x5d, 0x40, 0x91, 0x0b, 0x29, 0x93, 0x67, 0xe8, 0x23,
        0x4c,
    ]);
    /// NVDIMM block data window region, 91AF0530-5D86-470E-A6B0-0A2DB9408249.
    pub const BLOCK_DATA_WINDOW: Guid = Guid([
        0x30, 0x05, 0xaf, 0x91, 0x86, 0x5d, 0x0e, 0x47, 0xa6, 0xb0, 0x0a, 0x2d, 0xb9, 0x40, 0x82,
        0x49,
    ]);

    /// A short name for the well-known SPA range GUIDs.
    pub fn name(&self) -> Option<&'static str> {
        match *self {
            Self::PERSISTENT_MEMORY => Some("persistent memory"),
            Self::VOLATILE_MEMORY => Some("volatile memory"),
            Self::CONTROL_REGION => Some("control region"),
            Self::BLOCK_DATA_WINDOW => Some("block data window"),
            _ => None,
        }
    }
}

impl fmt::Display for Guid {
    /// The canonical `XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX` form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:02X}{:02X}{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}-",
            b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9]
        )?;
        for x in &b[10..] {
            write!(f, "{x:02X}")?;
        }
        Ok(())
    }
}

/// A System Physical Address range structure (NFIT subtable type 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpaRange {
    /// SPA range structure index (referenced by region mappings).
    pub range_index: u16,
    /// Flags (bit 0: control region for hot add only, bit 1: proximity domain valid, bit 2:
    /// location cookie valid).
    pub flags: u16,
    /// Proximity domain (NUMA node in SRAT terms).
    pub proximity_domain: u32,
    /// Address range type GUID.
    pub guid: Guid,
    /// First physical address.
    pub base: u64,
    /// Length in bytes.
    pub length: u64,
    /// EFI memory attributes (`EFI_MEMORY_*`).
    pub attributes: u64,
    /// SPA location cookie, present in the 64-byte form only.
    pub location_cookie: Option<u64>,
}

impl SpaRange {
    /// True when the range type GUID is the persistent-memory GUID.
    pub fn is_persistent(&self) -> bool {
        self.guid == Guid::PERSISTENT_MEMORY
    }

    /// The physical range `[base, base + length)` (clipped at `u64::MAX`; parsed ranges never
    /// need clipping).
    pub fn range(&self) -> PhysRange {
        PhysRange::from_size(self.base, self.length)
    }
}

impl fmt::Display for SpaRange {
    /// `NFIT: SPA range 1 [mem 0x…-0x…] persistent memory, proximity domain 0, flags 0x3,
    /// attributes 0x8008`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NFIT: SPA range {} {} ", self.range_index, self.range())?;
        match self.guid.name() {
            Some(name) => f.write_str(name)?,
            None => write!(f, "type {}", self.guid)?,
        }
        write!(
            f,
            ", proximity domain {}, flags {:#x}, attributes {:#x}",
            self.proximity_domain, self.flags, self.attributes
        )?;
        if let Some(cookie) = self.location_cookie {
            write!(f, ", location cookie {cookie:#x}")?;
        }
        Ok(())
    }
}

/// A reason to reject the NFIT, the rest of it, or one SPA range (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NfitError {
    /// Whole table: the signature is not `NFIT`.
    NotNfit {
        /// Signature found.
        found: Signature,
    },
    /// Whole table: fewer than the 40 bytes of header and reserved field.
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
    /// Rest of the table: 1 to 3 bytes left, too few for a subtable header.
    TrailingBytes {
        /// Offset in the table.
        offset: usize,
        /// Bytes left.
        remaining: usize,
    },
    /// Rest of the table: a subtable with length 0 (or below its 4-byte header).
    BadSubtableLength {
        /// Offset in the table.
        offset: usize,
        /// Subtable type.
        typ: u16,
        /// Its length field.
        length: u16,
    },
    /// Rest of the table: a subtable running past the end of the table.
    PastEnd {
        /// Offset in the table.
        offset: usize,
        /// Subtable type.
        typ: u16,
        /// Its length field.
        length: u16,
        /// Bytes left in the table.
        remaining: usize,
    },
    /// One SPA range: the structure is shorter than 56 bytes.
    SpaTooShort {
        /// Offset in the table.
        offset: usize,
        /// Its length field.
        length: u16,
    },
    /// One SPA range: its length is 0.
    SpaEmpty {
        /// The range.
        spa: SpaRange,
    },
    /// One SPA range: `base + length` overflows 64 bits.
    SpaOverflow {
        /// The range.
        spa: SpaRange,
    },
    /// One SPA range: it ends above 2^52 (MAXPHYADDR).
    SpaAboveMaxPhys {
        /// The range.
        spa: SpaRange,
    },
}

impl NfitError {
    /// True when the error rejected the whole table (as opposed to its rest or one range).
    pub fn rejects_table(&self) -> bool {
        matches!(
            self,
            Self::NotNfit { .. }
                | Self::TooShort { .. }
                | Self::Truncated { .. }
                | Self::BadChecksum { .. }
        )
    }
}

impl fmt::Display for NfitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::NotNfit { found } => {
                write!(
                    f,
                    "NFIT: signature is \"{found}\", not \"NFIT\"; table rejected"
                )
            }
            Self::TooShort { length } => write!(
                f,
                "NFIT: table is {length} bytes, shorter than its 40-byte header; table rejected"
            ),
            Self::Truncated {
                header_length,
                available,
            } => write!(
                f,
                "NFIT: truncated: header length is {header_length} bytes but only {available} \
                 are present; table rejected"
            ),
            Self::BadChecksum { sum } => write!(
                f,
                "NFIT: bad checksum (bytes sum to {sum:#04x}, expected 0); table rejected"
            ),
            Self::TrailingBytes { offset, remaining } => write!(
                f,
                "NFIT: {remaining} stray bytes at offset {offset}, too few for a subtable \
                 header; rest of table ignored"
            ),
            Self::BadSubtableLength {
                offset,
                typ,
                length,
            } => write!(
                f,
                "NFIT: subtable type {typ} at offset {offset} has length {length} (below its \
                 4-byte header); rest of table ignored"
            ),
            Self::PastEnd {
                offset,
                typ,
                length,
                remaining,
            } => write!(
                f,
                "NFIT: subtable type {typ} at offset {offset} has length {length} but only \
                 {remaining} bytes remain (runs past the end); rest of table ignored"
            ),
            Self::SpaTooShort { offset, length } => write!(
                f,
                "NFIT: SPA range structure at offset {offset} is {length} bytes, shorter than \
                 {SPA_LEN}; range ignored"
            ),
            Self::SpaEmpty { spa } => write!(
                f,
                "NFIT: SPA range {} at {:#x} has length 0; range ignored",
                spa.range_index, spa.base
            ),
            Self::SpaOverflow { spa } => write!(
                f,
                "NFIT: SPA range {}: base {:#x} + length {:#x} overflows 64 bits; range ignored",
                spa.range_index, spa.base, spa.length
            ),
            Self::SpaAboveMaxPhys { spa } => write!(
                f,
                "NFIT: SPA range {}: base {:#x} + length {:#x} ends above 2^52 (MAXPHYADDR); \
                 range ignored",
                spa.range_index, spa.base, spa.length
            ),
        }
    }
}

/// A parsed NFIT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nfit {
    /// The table header.
    pub header: SdtHeader,
    /// Every valid SPA range structure (any GUID), in table order.
    pub spa_ranges: Vec<SpaRange>,
    /// Number of subtables of other types that were skipped.
    pub skipped: usize,
    /// Problems that rejected single ranges or the rest of the table, one log line each.
    pub problems: Vec<NfitError>,
}

impl Nfit {
    /// The persistent-memory SPA ranges.
    pub fn persistent(&self) -> impl Iterator<Item = &SpaRange> + '_ {
        self.spa_ranges.iter().filter(|s| s.is_persistent())
    }
}

fn le16(b: &[u8], off: usize) -> u16 {
    let mut a = [0u8; 2];
    if let Some(s) = b.get(off..off.saturating_add(2)) {
        a.copy_from_slice(s);
    }
    u16::from_le_bytes(a)
}

fn le32(b: &[u8], off: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(off..off.saturating_add(4)) {
        a.copy_from_slice(s);
    }
    u32::from_le_bytes(a)
}

fn le64(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(off..off.saturating_add(8)) {
        a.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}

/// Parses an NFIT (the whole table, header included). Bytes past the header's length are
/// ignored. See the module doc for what rejects the table, its rest, or one range.
pub fn parse_nfit(bytes: &[u8]) -> Result<Nfit, NfitError> {
    let header = SdtHeader::parse(bytes).ok_or(NfitError::TooShort {
        length: bytes.len(),
    })?;
    if header.signature != Signature::NFIT {
        return Err(NfitError::NotNfit {
            found: header.signature,
        });
    }
    let length = header.length as usize;
    if length < NFIT_HEADER_LEN {
        return Err(NfitError::TooShort { length });
    }
    let table = bytes.get(..length).ok_or(NfitError::Truncated {
        header_length: header.length,
        available: bytes.len(),
    })?;
    let sum = checksum(table);
    if sum != 0 {
        return Err(NfitError::BadChecksum { sum });
    }

    let mut nfit = Nfit {
        header,
        spa_ranges: Vec::new(),
        skipped: 0,
        problems: Vec::new(),
    };
    let mut offset = NFIT_HEADER_LEN;
    while let Some(rest) = table.get(offset..).filter(|r| !r.is_empty()) {
        if rest.len() < 4 {
            nfit.problems.push(NfitError::TrailingBytes {
                offset,
                remaining: rest.len(),
            });
            break;
        }
        let typ = le16(rest, 0);
        let sub_len = le16(rest, 2);
        if sub_len < 4 {
            nfit.problems.push(NfitError::BadSubtableLength {
                offset,
                typ,
                length: sub_len,
            });
            break;
        }
        let Some(sub) = rest.get(..usize::from(sub_len)) else {
            nfit.problems.push(NfitError::PastEnd {
                offset,
                typ,
                length: sub_len,
                remaining: rest.len(),
            });
            break;
        };
        if typ == NFIT_TYPE_SPA {
            match parse_spa(sub, offset) {
                Ok(spa) => nfit.spa_ranges.push(spa),
                Err(e) => nfit.problems.push(e),
            }
        } else {
            nfit.skipped += 1;
        }
        offset += usize::from(sub_len);
    }
    Ok(nfit)
}

/// Decodes and checks one SPA range structure (`sub` is exactly its `length` bytes).
fn parse_spa(sub: &[u8], offset: usize) -> Result<SpaRange, NfitError> {
    if sub.len() < SPA_LEN {
        return Err(NfitError::SpaTooShort {
            offset,
            length: u16::try_from(sub.len()).unwrap_or(u16::MAX),
        });
    }
    let mut guid = [0u8; 16];
    if let Some(g) = sub.get(16..32) {
        guid.copy_from_slice(g);
    }
    let spa = SpaRange {
        range_index: le16(sub, 4),
        flags: le16(sub, 6),
        proximity_domain: le32(sub, 12),
        guid: Guid(guid),
        base: le64(sub, 32),
        length: le64(sub, 40),
        attributes: le64(sub, 48),
        // Linux's sizeof_spa: the cookie exists only in the exact 64-byte form.
        location_cookie: (sub.len() == SPA_LEN_WITH_COOKIE).then(|| le64(sub, 56)),
    };
    if spa.length == 0 {
        return Err(NfitError::SpaEmpty { spa });
    }
    match spa.base.checked_add(spa.length) {
        None => Err(NfitError::SpaOverflow { spa }),
        Some(end) if end > MAX_PHYS_ADDR => Err(NfitError::SpaAboveMaxPhys { spa }),
        Some(_) => Ok(spa),
    }
}
