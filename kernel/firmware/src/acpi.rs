//! ACPI table discovery (ACPICA's `tbxfroot.c`/`tbutils.c`): the RSDP (revision 0 points to
//! the RSDT with 32-bit entries, revision 2 and later to the XSDT with 64-bit entries), system
//! description table headers and checksums, and finding a table by signature.
//!
//! Physical memory is reached only through [`PhysRead`]; every table is copied out into a
//! `Vec<u8>`, so the walk is plain safe code that can be fuzzed. Every malformed case (bad
//! signature or checksum, length below the 36-byte header or above [`MAX_TABLE_LEN`],
//! unreadable memory, an entry pointing back at the root table, a repeated entry) is an
//! [`AcpiError`] whose `Display` is one log line.

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

/// Read access to physical memory.
pub trait PhysRead {
    /// Copies `buf.len()` bytes at physical address `pa` into `buf`; returns false (leaving
    /// `buf` unspecified) if any of them cannot be read.
    fn read(&self, pa: u64, buf: &mut [u8]) -> bool;
}

/// A sparse image of physical memory made of byte chunks: a [`PhysRead`] for tests, fuzzing
/// and host tools. Reads may span adjacent chunks; any byte outside every chunk fails the read.
#[derive(Clone, Debug, Default)]
pub struct MemImage {
    chunks: Vec<(u64, Vec<u8>)>,
}

impl MemImage {
    /// An image with no readable byte.
    pub const fn new() -> Self {
        Self { chunks: Vec::new() }
    }

    /// Makes `bytes` readable at `pa` (a later chunk shadows an earlier one where they overlap).
    pub fn insert(&mut self, pa: u64, bytes: Vec<u8>) {
        self.chunks.push((pa, bytes));
    }

    /// The readable bytes from `pa` on in the newest chunk holding `pa`, cut where a newer
    /// chunk starts.
    fn chunk_at(&self, pa: u64) -> Option<&[u8]> {
        let (idx, bytes) =
            self.chunks
                .iter()
                .enumerate()
                .rev()
                .find_map(|(i, (base, bytes))| {
                    let off = usize::try_from(pa.checked_sub(*base)?).ok()?;
                    bytes
                        .get(off..)
                        .filter(|rest| !rest.is_empty())
                        .map(|rest| (i, rest))
                })?;
        let cap = self
            .chunks
            .iter()
            .skip(idx + 1)
            .filter_map(|(base, _)| base.checked_sub(pa).filter(|&d| d > 0))
            .filter_map(|d| usize::try_from(d).ok())
            .min()
            .unwrap_or(usize::MAX);
        bytes.get(..cap.min(bytes.len()))
    }
}

impl PhysRead for MemImage {
    fn read(&self, pa: u64, buf: &mut [u8]) -> bool {
        let mut done = 0usize;
        while done < buf.len() {
            let Some(addr) = u64::try_from(done).ok().and_then(|d| pa.checked_add(d)) else {
                return false;
            };
            let Some(src) = self.chunk_at(addr) else {
                return false;
            };
            let Some(dst) = buf.get_mut(done..) else {
                return false;
            };
            let n = dst.len().min(src.len());
            match (dst.get_mut(..n), src.get(..n)) {
                (Some(d), Some(s)) => d.copy_from_slice(s),
                _ => return false,
            }
            done += n;
        }
        true
    }
}

/// Length of a system description table header.
pub const SDT_HEADER_LEN: usize = 36;
/// Largest table this crate will copy (1 MiB); a larger header length is treated as corrupt.
pub const MAX_TABLE_LEN: u32 = 1 << 20;
/// Length of the ACPI 1.0 RSDP, covered by its checksum.
pub const RSDP_V1_LEN: usize = 20;
/// Length of the ACPI 2.0+ RSDP, covered by its extended checksum.
pub const RSDP_V2_LEN: usize = 36;

/// A 4-byte table signature such as `NFIT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Signature(pub [u8; 4]);

impl Signature {
    /// `RSDT`.
    pub const RSDT: Signature = Signature(*b"RSDT");
    /// `XSDT`.
    pub const XSDT: Signature = Signature(*b"XSDT");
    /// `NFIT`.
    pub const NFIT: Signature = Signature(*b"NFIT");
    /// `SRAT`.
    pub const SRAT: Signature = Signature(*b"SRAT");
    /// `SLIT`.
    pub const SLIT: Signature = Signature(*b"SLIT");
    /// `APIC`: the MADT.
    pub const APIC: Signature = Signature(*b"APIC");
}

impl fmt::Display for Signature {
    /// The signature as text, each non-printable byte as `?`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_printable(f, &self.0, 4)
    }
}

/// Writes `bytes` as ASCII, non-printable bytes as `?`, left-aligned and padded to `width`
/// (ACPICA pads OEM fields this way; NUL padding counts as the end of the text).
fn write_printable(f: &mut fmt::Formatter<'_>, bytes: &[u8], width: usize) -> fmt::Result {
    let text = bytes.split(|&b| b == 0).next().unwrap_or(&[]);
    for &b in text {
        let c = if (0x20..0x7f).contains(&b) {
            b as char
        } else {
            '?'
        };
        write!(f, "{c}")?;
    }
    for _ in text.len()..width {
        f.write_str(" ")?;
    }
    Ok(())
}

/// Sum of all bytes modulo 256; an ACPI structure is valid when this is 0.
pub fn checksum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |acc, &b| acc.wrapping_add(b))
}

fn le_u32(b: &[u8], off: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(off..off.saturating_add(4)) {
        a.copy_from_slice(s);
    }
    u32::from_le_bytes(a)
}

fn le_u64(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(off..off.saturating_add(8)) {
        a.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}

fn array<const N: usize>(b: &[u8], off: usize) -> [u8; N] {
    let mut a = [0u8; N];
    if let Some(s) = b.get(off..off.saturating_add(N)) {
        a.copy_from_slice(s);
    }
    a
}

/// Everything that can go wrong while finding and copying ACPI tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcpiError {
    /// No RSDP signature in the BIOS areas that are searched.
    RsdpNotFound,
    /// `len` bytes at `addr` could not be read.
    Unreadable {
        /// What was being read.
        what: &'static str,
        /// Physical address.
        addr: u64,
        /// Number of bytes.
        len: u64,
    },
    /// The RSDP at `addr` does not start with `RSD PTR `.
    BadRsdpSignature {
        /// Physical address.
        addr: u64,
    },
    /// An RSDP checksum does not sum to 0.
    BadRsdpChecksum {
        /// Physical address.
        addr: u64,
        /// True for the extended (36-byte) checksum of revision 2 and later.
        extended: bool,
        /// The byte sum found.
        sum: u8,
    },
    /// The RSDP holds a null RSDT (and no usable XSDT) pointer.
    NoRootTable {
        /// Physical address of the RSDP.
        addr: u64,
    },
    /// The table at `addr` does not have the expected signature.
    BadSignature {
        /// Physical address.
        addr: u64,
        /// Signature looked for.
        expected: Signature,
        /// Signature found.
        found: Signature,
    },
    /// A table's header length is below the 36-byte header.
    TooShort {
        /// Table signature.
        sig: Signature,
        /// Physical address.
        addr: u64,
        /// Header length field.
        length: u32,
    },
    /// A table's header length is above [`MAX_TABLE_LEN`].
    TooLong {
        /// Table signature.
        sig: Signature,
        /// Physical address.
        addr: u64,
        /// Header length field.
        length: u32,
    },
    /// A table's bytes do not sum to 0.
    BadChecksum {
        /// Table signature.
        sig: Signature,
        /// Physical address.
        addr: u64,
        /// The byte sum found.
        sum: u8,
    },
    /// A root table entry points at the root table itself or repeats an earlier entry.
    PointerLoop {
        /// The root table (`RSDT` or `XSDT`).
        root: Signature,
        /// Index of the entry.
        index: usize,
        /// Its target.
        target: u64,
    },
}

impl fmt::Display for AcpiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::RsdpNotFound => {
                f.write_str("ACPI: no RSDP found (searched the EBDA and 0xe0000-0xfffff)")
            }
            Self::Unreadable { what, addr, len } => write!(
                f,
                "ACPI: cannot read {what} at {addr:#x} ({len} bytes): not in readable physical memory"
            ),
            Self::BadRsdpSignature { addr } => {
                write!(f, "ACPI: no `RSD PTR ` signature at RSDP address {addr:#x}")
            }
            Self::BadRsdpChecksum {
                addr,
                extended,
                sum,
            } => write!(
                f,
                "ACPI: RSDP at {addr:#x}: {} checksum is wrong (bytes sum to {sum:#04x}, expected 0)",
                if extended {
                    "extended (36-byte)"
                } else {
                    "20-byte"
                }
            ),
            Self::NoRootTable { addr } => {
                write!(f, "ACPI: RSDP at {addr:#x} has no RSDT or XSDT address")
            }
            Self::BadSignature {
                addr,
                expected,
                found,
            } => write!(
                f,
                "ACPI: table at {addr:#x} has signature {found:?}, expected {expected}",
                found = TrimSig(found)
            ),
            Self::TooShort { sig, addr, length } => write!(
                f,
                "ACPI: {sig} at {addr:#x}: length {length} is shorter than the 36-byte header; table ignored"
            ),
            Self::TooLong { sig, addr, length } => write!(
                f,
                "ACPI: {sig} at {addr:#x}: length {length} exceeds the {MAX_TABLE_LEN}-byte limit; table ignored"
            ),
            Self::BadChecksum { sig, addr, sum } => write!(
                f,
                "ACPI: {sig} at {addr:#x}: bad checksum (bytes sum to {sum:#04x}, expected 0); table ignored"
            ),
            Self::PointerLoop {
                root,
                index,
                target,
            } => write!(
                f,
                "ACPI: {root} entry {index} points to {target:#x}, the root table itself or an \
                 earlier entry (pointer loop); entry ignored"
            ),
        }
    }
}

/// Debug-quoted signature text for messages.
struct TrimSig(Signature);

impl fmt::Debug for TrimSig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.0)
    }
}

/// The Root System Description Pointer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rsdp {
    /// Physical address it was read from.
    pub address: u64,
    /// 0 for ACPI 1.0, 2 for ACPI 2.0 and later.
    pub revision: u8,
    /// OEM identifier.
    pub oem_id: [u8; 6],
    /// Physical address of the RSDT (0 if none).
    pub rsdt_address: u32,
    /// Physical address of the XSDT (0 before revision 2 or if none).
    pub xsdt_address: u64,
}

impl fmt::Display for Rsdp {
    /// `ACPI: RSDP 0x00000000000F5A40 000014 (v00 BOCHS )`, as Linux logs it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let len = if self.revision >= 2 {
            RSDP_V2_LEN
        } else {
            RSDP_V1_LEN
        };
        write!(
            f,
            "ACPI: RSDP {:#018X} {:06X} (v{:02} ",
            self.address, len, self.revision
        )?;
        write_printable(f, &self.oem_id, 6)?;
        f.write_str(")")
    }
}

/// Reads and verifies the RSDP at `pa`: the signature, the 20-byte checksum, and for revision 2
/// and later the 36-byte extended checksum.
pub fn read_rsdp(mem: &impl PhysRead, pa: u64) -> Result<Rsdp, AcpiError> {
    let mut b = [0u8; RSDP_V2_LEN];
    let v1 = b.get_mut(..RSDP_V1_LEN).unwrap_or(&mut []);
    if !mem.read(pa, v1) {
        return Err(AcpiError::Unreadable {
            what: "RSDP",
            addr: pa,
            len: RSDP_V1_LEN as u64,
        });
    }
    if b.get(..8) != Some(b"RSD PTR ".as_slice()) {
        return Err(AcpiError::BadRsdpSignature { addr: pa });
    }
    let sum = checksum(b.get(..RSDP_V1_LEN).unwrap_or(&[]));
    if sum != 0 {
        return Err(AcpiError::BadRsdpChecksum {
            addr: pa,
            extended: false,
            sum,
        });
    }
    let revision = b.get(15).copied().unwrap_or(0);
    let mut xsdt_address = 0;
    if revision >= 2 {
        if !mem.read(pa, &mut b) {
            return Err(AcpiError::Unreadable {
                what: "RSDP (ACPI 2.0)",
                addr: pa,
                len: RSDP_V2_LEN as u64,
            });
        }
        let sum = checksum(&b);
        if sum != 0 {
            return Err(AcpiError::BadRsdpChecksum {
                addr: pa,
                extended: true,
                sum,
            });
        }
        xsdt_address = le_u64(&b, 24);
    }
    Ok(Rsdp {
        address: pa,
        revision,
        oem_id: array(&b, 9),
        rsdt_address: le_u32(&b, 16),
        xsdt_address,
    })
}

/// Searches for the RSDP where BIOS firmware puts it (ACPICA's `acpi_find_root_pointer`): the
/// first KiB of the EBDA (segment at 0x40e; like ACPICA, only an EBDA between 0x400 and
/// 0xa0000, and never scanned past 0xa0000), then 0xe0000-0xfffff, on 16-byte boundaries.
/// Candidates with a bad checksum are skipped. UEFI systems pass the address instead.
pub fn find_rsdp(mem: &impl PhysRead) -> Result<Rsdp, AcpiError> {
    let mut seg = [0u8; 2];
    let mut areas: [(u64, u64); 2] = [(0, 0), (0xe0000, 0x20000)];
    if mem.read(0x40e, &mut seg) {
        let ebda = u64::from(u16::from_le_bytes(seg)) << 4;
        if ebda > 0x400 && ebda < 0xa0000 {
            areas[0] = (ebda, 1024.min(0xa0000 - ebda));
        }
    }
    for (base, len) in areas {
        let mut area = vec![0u8; usize::try_from(len).unwrap_or(0)];
        if len == 0 || !mem.read(base, &mut area) {
            continue;
        }
        for (i, chunk) in area.chunks(16).enumerate() {
            if chunk.get(..8) == Some(b"RSD PTR ".as_slice()) {
                let pa = base + (i as u64) * 16;
                if let Ok(rsdp) = read_rsdp(mem, pa) {
                    return Ok(rsdp);
                }
            }
        }
    }
    Err(AcpiError::RsdpNotFound)
}

/// A system description table header (the first 36 bytes of every table but the FACS).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SdtHeader {
    /// Table signature.
    pub signature: Signature,
    /// Length of the whole table, header included.
    pub length: u32,
    /// Table revision.
    pub revision: u8,
    /// Checksum byte.
    pub checksum: u8,
    /// OEM identifier.
    pub oem_id: [u8; 6],
    /// OEM table identifier.
    pub oem_table_id: [u8; 8],
    /// OEM revision.
    pub oem_revision: u32,
    /// Creator (ASL compiler) identifier.
    pub creator_id: [u8; 4],
    /// Creator revision.
    pub creator_revision: u32,
}

impl SdtHeader {
    /// Decodes the header at the start of `bytes`, or `None` if fewer than 36 bytes are given.
    /// Nothing is validated.
    pub fn parse(bytes: &[u8]) -> Option<SdtHeader> {
        let b = bytes.get(..SDT_HEADER_LEN)?;
        Some(SdtHeader {
            signature: Signature(array(b, 0)),
            length: le_u32(b, 4),
            revision: b.get(8).copied().unwrap_or(0),
            checksum: b.get(9).copied().unwrap_or(0),
            oem_id: array(b, 10),
            oem_table_id: array(b, 16),
            oem_revision: le_u32(b, 24),
            creator_id: array(b, 28),
            creator_revision: le_u32(b, 32),
        })
    }

    /// Checks the length field against [`SDT_HEADER_LEN`] and [`MAX_TABLE_LEN`].
    pub fn check_length(&self, addr: u64) -> Result<(), AcpiError> {
        let (sig, length) = (self.signature, self.length);
        if (length as usize) < SDT_HEADER_LEN {
            Err(AcpiError::TooShort { sig, addr, length })
        } else if length > MAX_TABLE_LEN {
            Err(AcpiError::TooLong { sig, addr, length })
        } else {
            Ok(())
        }
    }

    /// The table's boot-log line as ACPICA prints it, e.g.
    /// `ACPI: NFIT 0x000000001FFE2A3F 0000E0 (v01 BOCHS  BXPC     00000001 BXPC 00000001)`.
    pub fn line(&self, addr: u64) -> TableLine {
        TableLine {
            addr,
            header: *self,
        }
    }
}

/// Why a table's header rejects the whole table (see [`checked_table`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableCheck {
    /// The signature is another table's.
    WrongSignature {
        /// Signature found.
        found: Signature,
    },
    /// Shorter than the table's fixed header (the buffer, or the header's length field).
    TooShort {
        /// The length.
        length: usize,
    },
    /// The header's length exceeds the bytes available.
    Truncated {
        /// Header length field.
        header_length: u32,
        /// Bytes available.
        available: usize,
    },
    /// The bytes do not sum to 0.
    BadChecksum {
        /// The byte sum found.
        sum: u8,
    },
}

/// The checks every table parser starts with: a 36-byte header with signature `sig`, a
/// length of at least `min_len` that the buffer holds, and a zero byte sum. Returns the
/// header and the table's bytes (the buffer cut to the header's length).
pub fn checked_table(
    bytes: &[u8],
    sig: Signature,
    min_len: usize,
) -> Result<(SdtHeader, &[u8]), TableCheck> {
    let header = SdtHeader::parse(bytes).ok_or(TableCheck::TooShort {
        length: bytes.len(),
    })?;
    if header.signature != sig {
        return Err(TableCheck::WrongSignature {
            found: header.signature,
        });
    }
    let length = header.length as usize;
    if length < min_len {
        return Err(TableCheck::TooShort { length });
    }
    let table = bytes.get(..length).ok_or(TableCheck::Truncated {
        header_length: header.length,
        available: bytes.len(),
    })?;
    match checksum(table) {
        0 => Ok((header, table)),
        sum => Err(TableCheck::BadChecksum { sum }),
    }
}

/// Display adapter for [`SdtHeader::line`].
#[derive(Clone, Copy, Debug)]
pub struct TableLine {
    addr: u64,
    header: SdtHeader,
}

impl fmt::Display for TableLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = &self.header;
        write!(
            f,
            "ACPI: {} {:#018X} {:06X} (v{:02} ",
            h.signature, self.addr, h.length, h.revision
        )?;
        write_printable(f, &h.oem_id, 6)?;
        f.write_str(" ")?;
        write_printable(f, &h.oem_table_id, 8)?;
        write!(f, " {:08X} ", h.oem_revision)?;
        write_printable(f, &h.creator_id, 4)?;
        write!(f, " {:08X})", h.creator_revision)
    }
}

/// Reads the header of the table at `pa` (without checking it).
pub fn read_header(mem: &impl PhysRead, pa: u64) -> Result<SdtHeader, AcpiError> {
    let mut b = [0u8; SDT_HEADER_LEN];
    if !mem.read(pa, &mut b) {
        return Err(AcpiError::Unreadable {
            what: "ACPI table header",
            addr: pa,
            len: SDT_HEADER_LEN as u64,
        });
    }
    SdtHeader::parse(&b).ok_or(AcpiError::Unreadable {
        what: "ACPI table header",
        addr: pa,
        len: SDT_HEADER_LEN as u64,
    })
}

/// Copies the whole table at `pa` out of memory after checking its signature (when `expected`
/// is given), its length and its checksum.
pub fn read_table(
    mem: &impl PhysRead,
    pa: u64,
    expected: Option<Signature>,
) -> Result<Vec<u8>, AcpiError> {
    let h = read_header(mem, pa)?;
    if let Some(expected) = expected
        && h.signature != expected
    {
        return Err(AcpiError::BadSignature {
            addr: pa,
            expected,
            found: h.signature,
        });
    }
    h.check_length(pa)?;
    let mut table = vec![0u8; h.length as usize];
    if !mem.read(pa, &mut table) {
        return Err(AcpiError::Unreadable {
            what: "ACPI table",
            addr: pa,
            len: u64::from(h.length),
        });
    }
    let sum = checksum(&table);
    if sum != 0 {
        return Err(AcpiError::BadChecksum {
            sig: h.signature,
            addr: pa,
            sum,
        });
    }
    Ok(table)
}

/// The root table (RSDT or XSDT) and the table addresses it lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RootTable {
    /// The RSDP that led here.
    pub rsdp: Rsdp,
    /// `RSDT` or `XSDT`.
    pub signature: Signature,
    /// Physical address of the root table.
    pub address: u64,
    /// Its header.
    pub header: SdtHeader,
    /// Addresses of the tables it lists, in order, without null, repeated or self-referencing
    /// entries.
    pub entries: Vec<u64>,
    /// What was skipped or fallen back from on the way (one log line each): a broken XSDT the
    /// RSDT replaced, pointer loops.
    pub problems: Vec<AcpiError>,
}

/// Reads the RSDP at `rsdp_pa` and its root table: the XSDT when the revision is 2 or later
/// and the XSDT address is not null (falling back to the RSDT, with a problem noted, if the
/// XSDT is broken), else the RSDT. Both checksums of the RSDP and the root table's are verified.
pub fn read_root(mem: &impl PhysRead, rsdp_pa: u64) -> Result<RootTable, AcpiError> {
    let rsdp = read_rsdp(mem, rsdp_pa)?;
    root_from_rsdp(mem, rsdp)
}

/// [`read_root`] for an RSDP already read (e.g. by [`find_rsdp`]).
pub fn root_from_rsdp(mem: &impl PhysRead, rsdp: Rsdp) -> Result<RootTable, AcpiError> {
    let mut problems = Vec::new();
    if rsdp.revision >= 2 && rsdp.xsdt_address != 0 {
        match read_root_table(mem, rsdp, rsdp.xsdt_address, Signature::XSDT, 8) {
            Ok(mut root) => {
                problems.append(&mut root.problems);
                root.problems = problems;
                return Ok(root);
            }
            Err(e) if rsdp.rsdt_address != 0 => problems.push(e),
            Err(e) => return Err(e),
        }
    }
    if rsdp.rsdt_address == 0 {
        return Err(AcpiError::NoRootTable { addr: rsdp.address });
    }
    let mut root = read_root_table(mem, rsdp, u64::from(rsdp.rsdt_address), Signature::RSDT, 4)?;
    problems.append(&mut root.problems);
    root.problems = problems;
    Ok(root)
}

fn read_root_table(
    mem: &impl PhysRead,
    rsdp: Rsdp,
    pa: u64,
    sig: Signature,
    entry_size: usize,
) -> Result<RootTable, AcpiError> {
    let table = read_table(mem, pa, Some(sig))?;
    let header = SdtHeader::parse(&table).ok_or(AcpiError::TooShort {
        sig,
        addr: pa,
        length: 0,
    })?;
    let body = table.get(SDT_HEADER_LEN..).unwrap_or(&[]);
    let mut entries: Vec<u64> = Vec::new();
    let mut problems = Vec::new();
    for (index, e) in body.chunks_exact(entry_size).enumerate() {
        let target = if entry_size == 8 {
            le_u64(e, 0)
        } else {
            u64::from(le_u32(e, 0))
        };
        if target == 0 {
            continue;
        }
        if target == pa || entries.contains(&target) {
            problems.push(AcpiError::PointerLoop {
                root: sig,
                index,
                target,
            });
            continue;
        }
        entries.push(target);
    }
    Ok(RootTable {
        rsdp,
        signature: sig,
        address: pa,
        header,
        entries,
        problems,
    })
}

impl RootTable {
    /// The header of every listed table, in order (for the boot log); unreadable ones are
    /// errors.
    pub fn headers(&self, mem: &impl PhysRead) -> Vec<(u64, Result<SdtHeader, AcpiError>)> {
        self.entries
            .iter()
            .map(|&pa| (pa, read_header(mem, pa)))
            .collect()
    }

    /// Copies out the first listed table with signature `sig`, verified (length and checksum).
    /// `Ok(None)` when no readable entry has that signature; entries whose header cannot be read
    /// are skipped.
    pub fn find(
        &self,
        mem: &impl PhysRead,
        sig: Signature,
    ) -> Result<Option<(u64, Vec<u8>)>, AcpiError> {
        for &pa in &self.entries {
            let Ok(h) = read_header(mem, pa) else {
                continue;
            };
            if h.signature == sig {
                return read_table(mem, pa, Some(sig)).map(|t| Some((pa, t)));
            }
        }
        Ok(None)
    }
}
