//! The ACPI NVDIMM Firmware Interface Table (Linux's `drivers/acpi/nfit/core.c`): a 36-byte
//! table header, 4 reserved bytes, then subtables `{u16 type, u16 length, ...}`. Only System
//! Physical Address (SPA) range structures (type 0, 56 bytes, or 64 with the ACPI 6.4 location
//! cookie) are decoded; other types are counted and skipped (after the checks below).
//!
//! Errors come at three levels, so the kernel can log one line each and boot on:
//! - the whole table is rejected ([`parse_nfit`] returns `Err`): not an NFIT, shorter than its
//!   header, truncated, bad checksum;
//! - the rest of the table is rejected (kept in [`Nfit::problems`], SPA ranges before it are
//!   kept): a subtable of length zero or shorter than its 4-byte header, one running past the
//!   end, stray trailing bytes;
//! - one SPA range is rejected (in [`Nfit::problems`], the walk goes on): a structure shorter
//!   than 56 bytes, length zero, `base + length` overflowing, or ending above 2^52 (MAXPHYADDR).
//!
//! Below those, [`Nfit::warnings`] lists what the Firmware Test Suite's `nfit` test (fwts
//! `src/acpi/nfit/nfit.c`) would flag but a kernel can live with; nothing is rejected for a
//! warning and every range stays as parsed. See [`NfitWarning`] for the checks.

use alloc::vec::Vec;
use core::fmt;

use crate::acpi::{SDT_HEADER_LEN, SdtHeader, Signature, TableCheck, checked_table};
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
/// The NFIT revision ACPI 6.0 to 6.5 define.
pub const NFIT_REVISION: u8 = 1;
/// Subtable type of a region mapping (memory device) structure.
pub const NFIT_TYPE_MEMDEV: u16 = 1;
/// Subtable type of an interleave structure.
pub const NFIT_TYPE_INTERLEAVE: u16 = 2;
/// Subtable type of an SMBIOS management information structure.
pub const NFIT_TYPE_SMBIOS: u16 = 3;
/// Subtable type of an NVDIMM control region structure.
pub const NFIT_TYPE_CONTROL_REGION: u16 = 4;
/// Subtable type of an NVDIMM block data window region structure.
pub const NFIT_TYPE_BLOCK_DATA_WINDOW: u16 = 5;
/// Subtable type of a flush hint address structure.
pub const NFIT_TYPE_FLUSH_HINT: u16 = 6;
/// Subtable type of a platform capabilities structure.
pub const NFIT_TYPE_CAPABILITIES: u16 = 7;

/// SPA range flag bits ACPI defines: control region for hot add only (bit 0), proximity
/// domain valid (bit 1), location cookie valid (bit 2, ACPI 6.4); the others are reserved.
pub const SPA_FLAGS_DEFINED: u16 = 0x7;
/// Region mapping (memory device) state flag bits ACPI defines (bits 0 to 6).
pub const MEMDEV_FLAGS_DEFINED: u16 = 0x7f;
/// Control region "valid fields" bits ACPI defines (bit 0: manufacturing location and date).
pub const DCR_VALID_FIELDS_DEFINED: u8 = 0x1;
/// Control region flag bits ACPI defines (bit 0: block data windows buffered).
pub const DCR_FLAGS_DEFINED: u16 = 0x1;
/// Platform capability bits ACPI defines (bits 0 to 2).
pub const CAPABILITIES_DEFINED: u32 = 0x7;

/// `EFI_MEMORY_UC`.
pub const EFI_MEMORY_UC: u64 = 0x1;
/// `EFI_MEMORY_WC`.
pub const EFI_MEMORY_WC: u64 = 0x2;
/// `EFI_MEMORY_WT`.
pub const EFI_MEMORY_WT: u64 = 0x4;
/// `EFI_MEMORY_WB`.
pub const EFI_MEMORY_WB: u64 = 0x8;
/// `EFI_MEMORY_UCE`.
pub const EFI_MEMORY_UCE: u64 = 0x10;
/// `EFI_MEMORY_WP`.
pub const EFI_MEMORY_WP: u64 = 0x1000;
/// `EFI_MEMORY_RP`.
pub const EFI_MEMORY_RP: u64 = 0x2000;
/// `EFI_MEMORY_XP`.
pub const EFI_MEMORY_XP: u64 = 0x4000;
/// `EFI_MEMORY_NV`.
pub const EFI_MEMORY_NV: u64 = 0x8000;
/// `EFI_MEMORY_MORE_RELIABLE`.
pub const EFI_MEMORY_MORE_RELIABLE: u64 = 0x1_0000;
/// `EFI_MEMORY_RO`.
pub const EFI_MEMORY_RO: u64 = 0x2_0000;
/// `EFI_MEMORY_SP`.
pub const EFI_MEMORY_SP: u64 = 0x4_0000;
/// Every memory mapping attribute bit an SPA range may carry (fwts's `EFI_MEMORY_ALL`).
pub const EFI_MEMORY_ALL: u64 = EFI_MEMORY_UC
    | EFI_MEMORY_WC
    | EFI_MEMORY_WT
    | EFI_MEMORY_WB
    | EFI_MEMORY_UCE
    | EFI_MEMORY_WP
    | EFI_MEMORY_RP
    | EFI_MEMORY_XP
    | EFI_MEMORY_NV
    | EFI_MEMORY_MORE_RELIABLE
    | EFI_MEMORY_RO
    | EFI_MEMORY_SP;

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

    /// Volatile virtual disk region, 77AB535A-45FC-624B-5560-F7B281D1F96E.
    pub const VOLATILE_VIRTUAL_DISK: Guid = Guid([
        0x5a, 0x53, 0xab, 0x77, 0xfc, 0x45, 0x4b, 0x62, 0x55, 0x60, 0xf7, 0xb2, 0x81, 0xd1, 0xf9,
        0x6e,
    ]);
    /// Volatile virtual CD region, 3D5ABD30-4175-87CE-6D64-D2ADE523C4BB.
    pub const VOLATILE_VIRTUAL_CD: Guid = Guid([
        0x30, 0xbd, 0x5a, 0x3d, 0x75, 0x41, 0xce, 0x87, 0x6d, 0x64, 0xd2, 0xad, 0xe5, 0x23, 0xc4,
        0xbb,
    ]);
    /// Persistent virtual disk region, 5CEA02C9-4D07-69D3-269F-4496FBE096F9.
    pub const PERSISTENT_VIRTUAL_DISK: Guid = Guid([
        0xc9, 0x02, 0xea, 0x5c, 0x07, 0x4d, 0xd3, 0x69, 0x26, 0x9f, 0x44, 0x96, 0xfb, 0xe0, 0x96,
        0xf9,
    ]);
    /// Persistent virtual CD region, 08018188-42CD-BB48-100F-5387D53DED3D.
    pub const PERSISTENT_VIRTUAL_CD: Guid = Guid([
        0x88, 0x81, 0x01, 0x08, 0xcd, 0x42, 0x48, 0xbb, 0x10, 0x0f, 0x53, 0x87, 0xd5, 0x3d, 0xed,
        0x3d,
    ]);

    /// A short name for the well-known SPA range GUIDs.
    pub fn name(&self) -> Option<&'static str> {
        match *self {
            Self::PERSISTENT_MEMORY => Some("persistent memory"),
            Self::VOLATILE_MEMORY => Some("volatile memory"),
            Self::CONTROL_REGION => Some("control region"),
            Self::BLOCK_DATA_WINDOW => Some("block data window"),
            Self::VOLATILE_VIRTUAL_DISK => Some("volatile virtual disk"),
            Self::VOLATILE_VIRTUAL_CD => Some("volatile virtual CD"),
            Self::PERSISTENT_VIRTUAL_DISK => Some("persistent virtual disk"),
            Self::PERSISTENT_VIRTUAL_CD => Some("persistent virtual CD"),
            _ => None,
        }
    }

    /// True for the four virtual disk and virtual CD region GUIDs (ACPI 6.2), the only SPA
    /// ranges whose range index, flags, proximity domain and attributes must all be 0.
    pub fn is_virtual(&self) -> bool {
        matches!(
            *self,
            Self::VOLATILE_VIRTUAL_DISK
                | Self::VOLATILE_VIRTUAL_CD
                | Self::PERSISTENT_VIRTUAL_DISK
                | Self::PERSISTENT_VIRTUAL_CD
        )
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

/// The length a subtable type must have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LengthRule {
    /// One of these lengths (fixed-size structures, some with an older shorter form).
    OneOf(&'static [u16]),
    /// At least this many bytes (interleave and flush hint structures, whose arrays follow
    /// the fixed part; the minimum includes the array the structure's count announces).
    AtLeast(u64),
}

impl LengthRule {
    /// True when `length` satisfies the rule.
    pub fn allows(&self, length: u16) -> bool {
        match *self {
            Self::OneOf(lengths) => lengths.contains(&length),
            Self::AtLeast(min) => u64::from(length) >= min,
        }
    }
}

impl fmt::Display for LengthRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::OneOf(lengths) => {
                for (i, l) in lengths.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" or ")?;
                    }
                    write!(f, "{l}")?;
                }
                Ok(())
            }
            Self::AtLeast(min) => write!(f, "at least {min}"),
        }
    }
}

/// The name of a subtable type, as the messages use it.
pub fn subtable_name(typ: u16) -> &'static str {
    match typ {
        NFIT_TYPE_SPA => "SPA range",
        NFIT_TYPE_MEMDEV => "region mapping",
        NFIT_TYPE_INTERLEAVE => "interleave",
        NFIT_TYPE_SMBIOS => "SMBIOS management information",
        NFIT_TYPE_CONTROL_REGION => "control region",
        NFIT_TYPE_BLOCK_DATA_WINDOW => "block data window",
        NFIT_TYPE_FLUSH_HINT => "flush hint address",
        NFIT_TYPE_CAPABILITIES => "platform capabilities",
        _ => "unknown",
    }
}

/// Something fwts's `nfit` test flags that rejects nothing: one log line each, the parse and
/// every range stay as they are. Offsets are from the start of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NfitWarning {
    /// The table header's revision is not 1.
    TableRevision {
        /// Revision found.
        revision: u8,
    },
    /// A reserved field is not zero (the table's 4 bytes after the header, or one in a
    /// subtable).
    Reserved {
        /// Offset of the structure (36 for the table's own field).
        offset: usize,
        /// Which field, e.g. `"SPA range reserved field"`.
        field: &'static str,
        /// Its value.
        value: u64,
    },
    /// A flags field has reserved bits set.
    ReservedBits {
        /// Offset of the structure.
        offset: usize,
        /// Which field, e.g. `"SPA range flags"`.
        field: &'static str,
        /// The whole field.
        value: u64,
        /// The reserved bits that are set.
        reserved: u64,
    },
    /// A known subtable type with a length wrong for its type (an SPA range shorter than 56
    /// bytes is an [`NfitError::SpaTooShort`] instead). A structure too short for its fixed
    /// part is not looked at further.
    BadLength {
        /// Offset of the structure.
        offset: usize,
        /// Subtable type.
        typ: u16,
        /// Its length field.
        length: u16,
        /// What the length should be.
        expected: LengthRule,
    },
    /// A subtable type ACPI does not define (8 and above); it is skipped.
    UnknownType {
        /// Offset of the structure.
        offset: usize,
        /// Subtable type.
        typ: u16,
        /// Its length field.
        length: u16,
    },
    /// An SPA range with range index 0, which only virtual disk and CD regions may have (the
    /// index is what region mappings refer to; 0 means "no SPA range" there).
    SpaRangeIndexZero {
        /// Offset of the structure.
        offset: usize,
    },
    /// A virtual disk or CD SPA range with a field that must be 0 (range index, flags,
    /// proximity domain, memory mapping attributes) set.
    VirtualRegionNonZero {
        /// Offset of the structure.
        offset: usize,
        /// The region's GUID.
        guid: Guid,
        /// Which field.
        field: &'static str,
        /// Its value.
        value: u64,
    },
    /// An SPA range whose memory mapping attributes have bits outside the `EFI_MEMORY_*` set
    /// ([`EFI_MEMORY_ALL`]).
    SpaAttributes {
        /// Offset of the structure.
        offset: usize,
        /// SPA range structure index.
        range_index: u16,
        /// The attributes.
        attributes: u64,
        /// The bits outside [`EFI_MEMORY_ALL`].
        unknown: u64,
    },
    /// An interleave structure describing no lines.
    InterleaveNoLines {
        /// Offset of the structure.
        offset: usize,
        /// Interleave structure index.
        interleave_index: u16,
    },
    /// An interleave structure with line size 0.
    InterleaveLineSizeZero {
        /// Offset of the structure.
        offset: usize,
        /// Interleave structure index.
        interleave_index: u16,
        /// Number of lines it describes.
        line_count: u32,
    },
    /// A block data window structure referring to control region index 0.
    BlockDataWindowRegionZero {
        /// Offset of the structure.
        offset: usize,
    },
    /// Platform capabilities claiming CPU cache flush on power loss (bit 0) without memory
    /// controller flush (bit 1), which the first implies.
    CapabilitiesCacheFlushWithoutMemoryFlush {
        /// Offset of the structure.
        offset: usize,
        /// The capabilities field.
        capabilities: u32,
    },
}

impl fmt::Display for NfitWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::TableRevision { revision } => write!(
                f,
                "NFIT: table revision is {revision}, expected {NFIT_REVISION}"
            ),
            Self::Reserved {
                offset,
                field,
                value,
            } => write!(
                f,
                "NFIT: {field} at offset {offset} is {value:#x}, expected 0"
            ),
            Self::ReservedBits {
                offset,
                field,
                value,
                reserved,
            } => write!(
                f,
                "NFIT: {field} at offset {offset} are {value:#x}: reserved bits {reserved:#x} \
                 set"
            ),
            Self::BadLength {
                offset,
                typ,
                length,
                expected,
            } => write!(
                f,
                "NFIT: {} structure (type {typ}) at offset {offset} has length {length}, \
                 expected {expected}",
                subtable_name(typ)
            ),
            Self::UnknownType {
                offset,
                typ,
                length,
            } => write!(
                f,
                "NFIT: unknown subtable type {typ} at offset {offset} (length {length}); skipped"
            ),
            Self::SpaRangeIndexZero { offset } => write!(
                f,
                "NFIT: SPA range structure at offset {offset} has range index 0 (only virtual \
                 disk and CD regions may)"
            ),
            Self::VirtualRegionNonZero {
                offset,
                guid,
                field,
                value,
            } => write!(
                f,
                "NFIT: SPA range structure at offset {offset} is a {} region but its {field} \
                 is {value:#x}, expected 0",
                guid.name().unwrap_or("virtual")
            ),
            Self::SpaAttributes {
                offset,
                range_index,
                attributes,
                unknown,
            } => write!(
                f,
                "NFIT: SPA range {range_index} at offset {offset} has memory mapping attributes \
                 {attributes:#x} with bits {unknown:#x} outside the EFI_MEMORY_* set"
            ),
            Self::InterleaveNoLines {
                offset,
                interleave_index,
            } => write!(
                f,
                "NFIT: interleave structure {interleave_index} at offset {offset} describes 0 \
                 lines"
            ),
            Self::InterleaveLineSizeZero {
                offset,
                interleave_index,
                line_count,
            } => write!(
                f,
                "NFIT: interleave structure {interleave_index} at offset {offset} has line size \
                 0 ({line_count} lines)"
            ),
            Self::BlockDataWindowRegionZero { offset } => write!(
                f,
                "NFIT: block data window structure at offset {offset} has control region index \
                 0"
            ),
            Self::CapabilitiesCacheFlushWithoutMemoryFlush {
                offset,
                capabilities,
            } => write!(
                f,
                "NFIT: platform capabilities at offset {offset} are {capabilities:#x}: CPU cache \
                 flush (bit 0) without memory controller flush (bit 1)"
            ),
        }
    }
}

impl From<TableCheck> for NfitError {
    fn from(c: TableCheck) -> Self {
        match c {
            TableCheck::WrongSignature { found } => Self::NotNfit { found },
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
    /// Checks fwts would fail that reject nothing, one log line each, in table order.
    pub warnings: Vec<NfitWarning>,
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
    let (header, table) = checked_table(bytes, Signature::NFIT, NFIT_HEADER_LEN)?;

    let mut nfit = Nfit {
        header,
        spa_ranges: Vec::new(),
        skipped: 0,
        problems: Vec::new(),
        warnings: Vec::new(),
    };
    if header.revision != NFIT_REVISION {
        nfit.warnings.push(NfitWarning::TableRevision {
            revision: header.revision,
        });
    }
    let reserved = le32(table, SDT_HEADER_LEN);
    if reserved != 0 {
        nfit.warnings.push(NfitWarning::Reserved {
            offset: SDT_HEADER_LEN,
            field: "table reserved field",
            value: u64::from(reserved),
        });
    }
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
        check_subtable(sub, offset, typ, &mut nfit.warnings);
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

/// Reads `len` (at most 8) little-endian bytes at `off`; 0 past the end.
fn le_n(b: &[u8], off: usize, len: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(off..off.saturating_add(len))
        && let Some(d) = a.get_mut(..s.len())
    {
        d.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}

/// The length rule of a known subtable type (`sub` is the whole structure, for the counts of
/// the variable ones); `None` for unknown types.
fn length_rule(typ: u16, sub: &[u8]) -> Option<LengthRule> {
    Some(match typ {
        // Linux's sizeof_spa: 56 bytes, or 64 with the ACPI 6.4 location cookie.
        NFIT_TYPE_SPA => LengthRule::OneOf(&[SPA_LEN as u16, SPA_LEN_WITH_COOKIE as u16]),
        NFIT_TYPE_MEMDEV => LengthRule::OneOf(&[48]),
        NFIT_TYPE_INTERLEAVE if sub.len() < 16 => LengthRule::AtLeast(16),
        // 16 bytes, then one u32 line offset per line.
        NFIT_TYPE_INTERLEAVE => LengthRule::AtLeast(16 + 4 * u64::from(le32(sub, 8))),
        NFIT_TYPE_SMBIOS => LengthRule::AtLeast(8),
        // Linux's sizeof_dcr: 32 bytes, or 80 with the block control window fields.
        NFIT_TYPE_CONTROL_REGION => LengthRule::OneOf(&[32, 80]),
        NFIT_TYPE_BLOCK_DATA_WINDOW => LengthRule::OneOf(&[40]),
        NFIT_TYPE_FLUSH_HINT if sub.len() < 16 => LengthRule::AtLeast(16),
        // 16 bytes, then one u64 hint address per hint.
        NFIT_TYPE_FLUSH_HINT => LengthRule::AtLeast(16 + 8 * u64::from(le16(sub, 8))),
        NFIT_TYPE_CAPABILITIES => LengthRule::OneOf(&[16]),
        _ => return None,
    })
}

/// The smallest length at which a known type's fields can be checked.
fn fixed_part(typ: u16) -> usize {
    match typ {
        NFIT_TYPE_SPA => SPA_LEN,
        NFIT_TYPE_MEMDEV => 48,
        NFIT_TYPE_SMBIOS => 8,
        NFIT_TYPE_CONTROL_REGION => 32,
        NFIT_TYPE_BLOCK_DATA_WINDOW => 40,
        _ => 16,
    }
}

/// fwts's checks of one subtable (`sub` is exactly its `length` bytes, at least 4).
fn check_subtable(sub: &[u8], offset: usize, typ: u16, warnings: &mut Vec<NfitWarning>) {
    let length = u16::try_from(sub.len()).unwrap_or(u16::MAX);
    let Some(rule) = length_rule(typ, sub) else {
        warnings.push(NfitWarning::UnknownType {
            offset,
            typ,
            length,
        });
        return;
    };
    // An SPA range below 56 bytes is already an NfitError::SpaTooShort.
    if !rule.allows(length) && !(typ == NFIT_TYPE_SPA && sub.len() < SPA_LEN) {
        warnings.push(NfitWarning::BadLength {
            offset,
            typ,
            length,
            expected: rule,
        });
    }
    if sub.len() < fixed_part(typ) {
        return;
    }
    let mut reserved = |field: &'static str, value: u64| {
        if value != 0 {
            warnings.push(NfitWarning::Reserved {
                offset,
                field,
                value,
            });
        }
    };
    match typ {
        NFIT_TYPE_SPA => reserved("SPA range reserved field", le_n(sub, 8, 4)),
        NFIT_TYPE_MEMDEV => reserved("region mapping reserved field", le_n(sub, 46, 2)),
        NFIT_TYPE_INTERLEAVE => reserved("interleave reserved field", le_n(sub, 6, 2)),
        NFIT_TYPE_SMBIOS => reserved(
            "SMBIOS management information reserved field",
            le_n(sub, 4, 4),
        ),
        NFIT_TYPE_CONTROL_REGION => {
            reserved("control region reserved field", le_n(sub, 22, 2));
            if sub.len() >= 80 {
                reserved(
                    "control region reserved field (block window part)",
                    le_n(sub, 74, 6),
                );
            }
        }
        NFIT_TYPE_FLUSH_HINT => reserved("flush hint address reserved field", le_n(sub, 10, 6)),
        NFIT_TYPE_CAPABILITIES => {
            reserved("platform capabilities reserved field", le_n(sub, 5, 3));
            reserved("platform capabilities reserved field", le_n(sub, 12, 4));
        }
        _ => {}
    }
    let mut bits = |field: &'static str, value: u64, defined: u64| {
        if value & !defined != 0 {
            warnings.push(NfitWarning::ReservedBits {
                offset,
                field,
                value,
                reserved: value & !defined,
            });
        }
    };
    match typ {
        NFIT_TYPE_SPA => bits(
            "SPA range flags",
            u64::from(le16(sub, 6)),
            u64::from(SPA_FLAGS_DEFINED),
        ),
        NFIT_TYPE_MEMDEV => bits(
            "region mapping state flags",
            u64::from(le16(sub, 44)),
            u64::from(MEMDEV_FLAGS_DEFINED),
        ),
        NFIT_TYPE_CONTROL_REGION => {
            bits(
                "control region valid fields",
                le_n(sub, 18, 1),
                u64::from(DCR_VALID_FIELDS_DEFINED),
            );
            if sub.len() >= 80 {
                bits(
                    "control region flags",
                    u64::from(le16(sub, 72)),
                    u64::from(DCR_FLAGS_DEFINED),
                );
            }
        }
        NFIT_TYPE_CAPABILITIES => bits(
            "platform capabilities",
            u64::from(le32(sub, 8)),
            u64::from(CAPABILITIES_DEFINED),
        ),
        _ => {}
    }
    match typ {
        NFIT_TYPE_SPA => check_spa(sub, offset, warnings),
        NFIT_TYPE_INTERLEAVE => {
            let interleave_index = le16(sub, 4);
            let line_count = le32(sub, 8);
            if line_count == 0 {
                warnings.push(NfitWarning::InterleaveNoLines {
                    offset,
                    interleave_index,
                });
            }
            if le32(sub, 12) == 0 {
                warnings.push(NfitWarning::InterleaveLineSizeZero {
                    offset,
                    interleave_index,
                    line_count,
                });
            }
        }
        NFIT_TYPE_BLOCK_DATA_WINDOW if le16(sub, 4) == 0 => {
            warnings.push(NfitWarning::BlockDataWindowRegionZero { offset });
        }
        NFIT_TYPE_CAPABILITIES => {
            let capabilities = le32(sub, 8);
            if capabilities & 0x3 == 0x1 {
                warnings.push(NfitWarning::CapabilitiesCacheFlushWithoutMemoryFlush {
                    offset,
                    capabilities,
                });
            }
        }
        _ => {}
    }
}

/// fwts's SPA range checks beyond reserved fields and flag bits (`sub` is at least 56 bytes).
fn check_spa(sub: &[u8], offset: usize, warnings: &mut Vec<NfitWarning>) {
    let mut guid = [0u8; 16];
    if let Some(g) = sub.get(16..32) {
        guid.copy_from_slice(g);
    }
    let guid = Guid(guid);
    let range_index = le16(sub, 4);
    let attributes = le64(sub, 48);
    if guid.is_virtual() {
        for (field, value) in [
            ("range index", u64::from(range_index)),
            ("flags", u64::from(le16(sub, 6))),
            ("proximity domain", u64::from(le32(sub, 12))),
            ("memory mapping attributes", attributes),
        ] {
            if value != 0 {
                warnings.push(NfitWarning::VirtualRegionNonZero {
                    offset,
                    guid,
                    field,
                    value,
                });
            }
        }
    } else if range_index == 0 {
        warnings.push(NfitWarning::SpaRangeIndexZero { offset });
    }
    if attributes & !EFI_MEMORY_ALL != 0 {
        warnings.push(NfitWarning::SpaAttributes {
            offset,
            range_index,
            attributes,
            unknown: attributes & !EFI_MEMORY_ALL,
        });
    }
}
