//! The NFIT parser on raw table bytes, as `--acpitable` or a firmware could hand them over.
//!
//! Input: one mode byte, then the table. Mode bit 0 sets the header's length field to the
//! table's size, bit 1 fixes the checksum byte, so that the fuzzer also gets past the
//! whole-table checks and into the subtables; mode 0 parses the bytes as they are.
//!
//! Checked: every SPA range returned is non-empty, does not overflow and ends at or below
//! 2^52; the persistent ones carry the persistent-memory GUID; an `Err` rejects the whole
//! table; every message (problems, and fwts warnings with their `NFIT: ` prefix) is one line;
//! the persistent ranges merged with a fixed E820 map by `pmem::collect_persistent` are
//! sorted, disjoint and never overlap usable RAM.
#![no_main]

mod table_mode;

use firmware::e820::{E820Table, E820Type, RegionKind, e820_from_regions};
use firmware::nfit::{Guid, MAX_PHYS_ADDR, parse_nfit};
use firmware::pmem::collect_persistent;
use libfuzzer_sys::fuzz_target;

/// QEMU's SeaBIOS map for `-m 512M`.
fn qemu_map() -> E820Table {
    e820_from_regions([
        (0x0, 0x9fc00, RegionKind::Usable),
        (0x9fc00, 0xa0000, RegionKind::UnknownBios(2)),
        (0xf0000, 0x100000, RegionKind::UnknownBios(2)),
        (0x100000, 0x1ffe0000, RegionKind::Usable),
        (0x1ffe0000, 0x20000000, RegionKind::UnknownBios(2)),
        (0xfeffc000, 0xff000000, RegionKind::UnknownBios(2)),
        (0xfffc0000, 0x1_0000_0000, RegionKind::UnknownBios(2)),
        (0xfd_0000_0000, 0x100_0000_0000, RegionKind::UnknownBios(2)),
    ])
    .e820
}

fn one_line(s: &str) {
    assert!(!s.is_empty() && !s.contains('\n'), "{s:?}");
}

fuzz_target!(|data: &[u8]| {
    let Some((_, table)) = table_mode::table(data) else {
        return;
    };
    match parse_nfit(&table) {
        Err(e) => {
            assert!(e.rejects_table(), "{e:?}");
            one_line(&e.to_string());
        }
        Ok(nfit) => {
            let _ = nfit.header.line(0).to_string();
            for p in &nfit.problems {
                assert!(!p.rejects_table(), "{p:?}");
                one_line(&p.to_string());
            }
            for w in &nfit.warnings {
                let line = w.to_string();
                one_line(&line);
                assert!(line.starts_with("NFIT: "), "{line:?}");
            }
            for s in &nfit.spa_ranges {
                assert!(s.length != 0, "{s:?}");
                let end = s.base.checked_add(s.length).expect("SPA range overflows");
                assert!(end <= MAX_PHYS_ADDR, "{s:?}");
                assert!(!s.range().is_empty() && s.range().end == end);
                one_line(&s.to_string());
            }
            for s in nfit.persistent() {
                assert_eq!(s.guid, Guid::PERSISTENT_MEMORY);
                assert!(s.is_persistent());
            }
            let persistent = nfit.persistent().count();
            assert_eq!(
                persistent,
                nfit.spa_ranges
                    .iter()
                    .filter(|s| s.guid == Guid::PERSISTENT_MEMORY)
                    .count()
            );

            let map = qemu_map();
            let (pmem, rejected) = collect_persistent(&map, &nfit.spa_ranges);
            for w in pmem.windows(2) {
                assert!(w[0].range.end <= w[1].range.start, "pmem overlaps: {w:?}");
            }
            for p in &pmem {
                assert!(!p.range.is_empty());
                assert!(
                    !map.mapped_any(p.range.start, p.range.end, Some(E820Type::Usable)),
                    "{p:?}"
                );
                one_line(&p.to_string());
            }
            for r in &rejected {
                one_line(&r.to_string());
            }
            assert!(pmem.len() + rejected.len() <= persistent);
        }
    }
});
