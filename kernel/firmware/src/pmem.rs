//! The persistent memory ranges the kernel hands to ZONE_DEVICE: the union of E820 type 7
//! (which is also where UEFI type 14 lands) and type 12 entries with the NFIT's
//! persistent-memory SPA ranges. Ranges that describe the same memory (overlapping) are merged
//! into one, keeping the NFIT metadata; a source range that overlaps usable RAM is refused
//! before merging, with a [`Rejection`] naming both ranges.

use alloc::vec::Vec;
use core::fmt;

use crate::e820::{E820Table, E820Type};
use crate::nfit::SpaRange;
use crate::range::PhysRange;

/// NFIT metadata of a persistent range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NfitInfo {
    /// SPA range structure index.
    pub range_index: u16,
    /// Proximity domain.
    pub proximity_domain: u32,
    /// SPA range flags.
    pub flags: u16,
}

/// Where a persistent range was described.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PmemSource {
    /// An E820 entry of type 7 or 12 only.
    E820(E820Type),
    /// An NFIT SPA range only.
    Nfit,
    /// Both an NFIT SPA range and an E820 entry of this type.
    NfitAndE820(E820Type),
}

impl fmt::Display for PmemSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::E820(t) => write!(f, "e820 type {}", t.raw()),
            Self::Nfit => f.write_str("NFIT"),
            Self::NfitAndE820(t) => write!(f, "NFIT + e820 type {}", t.raw()),
        }
    }
}

/// One persistent memory range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PmemRange {
    /// The physical range.
    pub range: PhysRange,
    /// Where it was described.
    pub source: PmemSource,
    /// The NFIT metadata, when an NFIT SPA range describes it (the first one if several).
    pub nfit: Option<NfitInfo>,
}

impl PmemRange {
    /// True for legacy persistent memory (only E820 type 12 describes it): `/proc/iomem` names
    /// it `Persistent Memory (legacy)`.
    pub fn is_legacy(&self) -> bool {
        self.source == PmemSource::E820(E820Type::Pram)
    }

    /// The `/proc/iomem` name of the range.
    pub fn iomem_name(&self) -> &'static str {
        if self.is_legacy() {
            E820Type::Pram.iomem_name()
        } else {
            E820Type::Pmem.iomem_name()
        }
    }
}

impl fmt::Display for PmemRange {
    /// `pmem: [mem 0x…-0x…] (NFIT), range index 1, proximity domain 0, flags 0x3`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pmem: {} ({})", self.range, self.source)?;
        if let Some(n) = self.nfit {
            write!(
                f,
                ", range index {}, proximity domain {}, flags {:#x}",
                n.range_index, n.proximity_domain, n.flags
            )?;
        }
        Ok(())
    }
}

/// A persistent range refused because it overlaps usable RAM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// The refused range as its source described it.
    pub range: PhysRange,
    /// Its source.
    pub source: PmemSource,
    /// The first usable RAM entry it overlaps.
    pub ram: PhysRange,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pmem: refusing persistent range {} ({}): it overlaps System RAM {}",
            self.range, self.source, self.ram
        )
    }
}

/// The persistent ranges of the machine: E820 type 7/12 entries of `e820` and the persistent
/// SPA ranges among `nfit` (other GUIDs are ignored). Each source range overlapping a usable
/// E820 entry is refused; the rest are merged where they overlap (touching ranges stay separate
/// devices) and returned sorted by address.
pub fn collect_persistent(e820: &E820Table, nfit: &[SpaRange]) -> (Vec<PmemRange>, Vec<Rejection>) {
    let mut pieces: Vec<PmemRange> = Vec::new();
    for e in e820.entries().iter().filter(|e| e.typ.is_persistent()) {
        let range = e.range();
        if !range.is_empty() {
            pieces.push(PmemRange {
                range,
                source: PmemSource::E820(e.typ),
                nfit: None,
            });
        }
    }
    for s in nfit.iter().filter(|s| s.is_persistent()) {
        let range = s.range();
        if !range.is_empty() {
            pieces.push(PmemRange {
                range,
                source: PmemSource::Nfit,
                nfit: Some(NfitInfo {
                    range_index: s.range_index,
                    proximity_domain: s.proximity_domain,
                    flags: s.flags,
                }),
            });
        }
    }

    let mut rejected = Vec::new();
    pieces.retain(|p| {
        let ram = e820
            .entries()
            .iter()
            .filter(|e| e.typ.is_ram())
            .map(|e| e.range())
            .find(|r| r.overlaps(&p.range));
        if let Some(ram) = ram {
            rejected.push(Rejection {
                range: p.range,
                source: p.source,
                ram,
            });
        }
        ram.is_none()
    });

    pieces.sort_by_key(|p| (p.range.start, p.range.end));
    let mut out: Vec<PmemRange> = Vec::with_capacity(pieces.len());
    for p in pieces {
        match out.last_mut() {
            Some(last) if last.range.overlaps(&p.range) => merge_into(last, &p),
            _ => out.push(p),
        }
    }
    (out, rejected)
}

/// Merges `p` into `acc`: the union of the ranges, NFIT metadata from the first NFIT piece,
/// E820 type 7 over 12.
fn merge_into(acc: &mut PmemRange, p: &PmemRange) {
    acc.range.end = acc.range.end.max(p.range.end);
    acc.nfit = acc.nfit.or(p.nfit);
    let e820_type = |s: PmemSource| match s {
        PmemSource::E820(t) | PmemSource::NfitAndE820(t) => Some(t),
        PmemSource::Nfit => None,
    };
    let typ = match (e820_type(acc.source), e820_type(p.source)) {
        (Some(a), Some(b)) => Some(if a == E820Type::Pmem || b == E820Type::Pmem {
            E820Type::Pmem
        } else {
            a
        }),
        (a, b) => a.or(b),
    };
    acc.source = match (acc.nfit.is_some(), typ) {
        (true, Some(t)) => PmemSource::NfitAndE820(t),
        (true, None) => PmemSource::Nfit,
        (false, Some(t)) => PmemSource::E820(t),
        (false, None) => PmemSource::Nfit,
    };
}
