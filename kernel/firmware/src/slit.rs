//! The ACPI System Locality Information Table (Linux's `acpi_parse_slit` and `slit_valid` in
//! `drivers/acpi/numa/srat.c`): the relative distance between every pair of proximity domains.
//!
//! Layout: the 36-byte table header, a u64 locality count N at offset 36, then N×N one-byte
//! distances, row `i` holding the distances from locality `i`. Linux accepts the table only
//! when every diagonal entry is 10 (`LOCAL_DISTANCE`) and every other entry is above 10;
//! otherwise it prints `ACPI: SLIT table looks invalid. Not used.` and every distance stays the
//! default (10 local, 20 remote). Linux 6.1 does not check the table's size against N; this
//! parser does, and treats a mismatch the same way (a table too short for its count would
//! make Linux read past it).

use alloc::vec::Vec;
use core::fmt;

use crate::acpi::{SDT_HEADER_LEN, Signature, TableCheck, checked_table};

/// Distance of a node to itself (Linux's `LOCAL_DISTANCE`).
pub const LOCAL_DISTANCE: u8 = 10;
/// Distance between two nodes when no valid SLIT says otherwise (`REMOTE_DISTANCE`).
pub const REMOTE_DISTANCE: u8 = 20;
/// Offset of the first distance byte.
pub const SLIT_HEADER_LEN: usize = SDT_HEADER_LEN + 8;

/// Why a SLIT is not used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlitError {
    /// The signature is not `SLIT`.
    NotSlit {
        /// Signature found.
        found: Signature,
    },
    /// Fewer than the 44 bytes of header and locality count.
    TooShort {
        /// Length of the table.
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
    /// The table's length is not 44 + N×N.
    WrongSize {
        /// Locality count N.
        count: u64,
        /// Table length.
        length: usize,
    },
    /// A diagonal entry is not 10.
    BadLocal {
        /// Locality.
        locality: usize,
        /// Its distance to itself.
        distance: u8,
    },
    /// An off-diagonal entry is 10 or less.
    BadRemote {
        /// From locality.
        from: usize,
        /// To locality.
        to: usize,
        /// The distance.
        distance: u8,
    },
}

impl fmt::Display for SlitError {
    /// Linux's line, then why.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ACPI: SLIT table looks invalid. Not used. (")?;
        match *self {
            Self::NotSlit { found } => write!(f, "signature is \"{found}\"")?,
            Self::TooShort { length } => write!(
                f,
                "{length} bytes, shorter than its {SLIT_HEADER_LEN}-byte header"
            )?,
            Self::Truncated {
                header_length,
                available,
            } => write!(
                f,
                "header length {header_length} but only {available} bytes present"
            )?,
            Self::BadChecksum { sum } => write!(f, "bad checksum, bytes sum to {sum:#04x}")?,
            Self::WrongSize { count, length } => write!(
                f,
                "{count} localities need {} bytes, the table has {length}",
                (count as u128) * (count as u128) + SLIT_HEADER_LEN as u128
            )?,
            Self::BadLocal { locality, distance } => write!(
                f,
                "distance of locality {locality} to itself is {distance}, not {LOCAL_DISTANCE}"
            )?,
            Self::BadRemote { from, to, distance } => write!(
                f,
                "distance {from} -> {to} is {distance}, not above {LOCAL_DISTANCE}"
            )?,
        }
        f.write_str(")")
    }
}

impl From<TableCheck> for SlitError {
    fn from(c: TableCheck) -> Self {
        match c {
            TableCheck::WrongSignature { found } => Self::NotSlit { found },
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

/// A valid SLIT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slit {
    /// Number of localities N.
    pub count: usize,
    /// N×N distances, row-major.
    pub entries: Vec<u8>,
}

impl Slit {
    /// Distance from locality `from` to `to`, or `None` outside the table.
    pub fn distance(&self, from: usize, to: usize) -> Option<u8> {
        if from >= self.count || to >= self.count {
            return None;
        }
        self.entries.get(from * self.count + to).copied()
    }
}

/// Decodes and validates a SLIT as Linux's `slit_valid`, plus the checks above.
pub fn parse_slit(bytes: &[u8]) -> Result<Slit, SlitError> {
    let (_, table) = checked_table(bytes, Signature::SLIT, SLIT_HEADER_LEN)?;
    let length = table.len();
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&table[SDT_HEADER_LEN..SLIT_HEADER_LEN]);
    let count = u64::from_le_bytes(raw);
    let cells = count.checked_mul(count);
    if cells != Some((length - SLIT_HEADER_LEN) as u64) {
        return Err(SlitError::WrongSize { count, length });
    }
    let n = count as usize;
    let entries = table[SLIT_HEADER_LEN..].to_vec();
    for i in 0..n {
        for j in 0..n {
            let d = entries[i * n + j];
            if i == j && d != LOCAL_DISTANCE {
                return Err(SlitError::BadLocal {
                    locality: i,
                    distance: d,
                });
            }
            if i != j && d <= LOCAL_DISTANCE {
                return Err(SlitError::BadRemote {
                    from: i,
                    to: j,
                    distance: d,
                });
            }
        }
    }
    Ok(Slit { count: n, entries })
}
