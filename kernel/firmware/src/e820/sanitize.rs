//! Sanitizing the E820 table the way Linux's `e820__update_table` does: every entry's start
//! and end become change points, sorted by address (a start before an end at the same address);
//! between change points the covering entry with the largest type value wins; neighbours of the
//! same type merge, except the "nomerge" types (persistent legacy, soft reserved), which are cut
//! at every change point; empty entries and type 0 disappear.
//!
//! Two deliberate differences from Linux, both so that the result is always sorted and
//! non-overlapping: an entry whose end would pass `u64::MAX` is clipped there (Linux leaves the
//! whole table unsanitized), and a one-entry table is sanitized too (Linux skips it, which only
//! matters for an empty or type-0 entry).

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use super::{E820Entry, E820Table, E820Type};

impl E820Table {
    /// Sorts the table, resolves overlaps (the larger type value wins), merges adjacent entries
    /// of the same type (except persistent legacy and soft reserved ones) and drops empty ones,
    /// like Linux's `e820__update_table`.
    pub fn sanitize(&mut self) {
        // (address, is_end, raw type); is_end sorts `false` (a start) first at equal addresses,
        // like Linux's cpcompare.
        let mut points: Vec<(u64, bool, u32)> = Vec::with_capacity(self.entries.len() * 2);
        for e in &self.entries {
            let end = e.end();
            if end > e.addr {
                points.push((e.addr, false, e.typ.raw()));
                points.push((end, true, e.typ.raw()));
            }
        }
        points.sort_unstable_by_key(|&(addr, is_end, _)| (addr, is_end));

        // Count of covering entries per type: the largest key is the winning type.
        let mut active: BTreeMap<u32, usize> = BTreeMap::new();
        let mut out = Vec::with_capacity(self.entries.len());
        let mut last_type = 0u32;
        let mut last_addr = 0u64;
        for (addr, is_end, typ) in points {
            if is_end {
                if let Some(count) = active.get_mut(&typ) {
                    *count = count.saturating_sub(1);
                    if *count == 0 {
                        active.remove(&typ);
                    }
                }
            } else {
                *active.entry(typ).or_insert(0) += 1;
            }
            let current = active.last_key_value().map_or(0, |(&t, _)| t);
            if current != last_type || E820Type::from_raw(current).is_nomerge() {
                if last_type != 0 {
                    let size = addr.saturating_sub(last_addr);
                    if size != 0 {
                        out.push(E820Entry::new(
                            last_addr,
                            size,
                            E820Type::from_raw(last_type),
                        ));
                    }
                }
                if current != 0 {
                    last_addr = addr;
                }
                last_type = current;
            }
        }
        self.entries = out;
    }

    /// True when the table is in sanitized form: sorted, non-overlapping, no empty entry, no
    /// type 0, and no two touching entries of the same mergeable type.
    pub fn is_sanitized(&self) -> bool {
        let well_formed = self
            .entries
            .iter()
            .all(|e| e.size != 0 && e.typ.raw() != 0 && e.addr.checked_add(e.size).is_some());
        well_formed
            && self.entries.windows(2).all(|w| match w {
                [a, b] => {
                    a.end() <= b.addr
                        && !(a.end() == b.addr && a.typ == b.typ && !a.typ.is_nomerge())
                }
                _ => true,
            })
    }
}
