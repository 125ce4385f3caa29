//! The kernel command line: an arbitrary string through Linux's tokenizer (`params`),
//! `memparse`/`strtoull` on every value, and `memmap=`/`mem=` applied onto a fixed, realistic
//! map (QEMU's SeaBIOS map with 6 GiB, i.e. RAM above 4 GiB), followed by the rest of the
//! memory set-up with a persistent NFIT range.
//!
//! Checked: the tokenizer ends and yields at most one word per input byte; a parsed number's
//! rest is a suffix of its text; a map `apply_memmap` changed is sanitized, an unchanged one is
//! equal to the original; every refusal is one line; the set-up's persistent ranges are sorted,
//! disjoint and never overlap usable RAM.
#![no_main]

use firmware::cmdline::{apply_memmap, memparse, params, parse_memmap_item, strtoull};
use firmware::e820::{E820Table, E820Type, RegionKind, e820_from_regions};
use firmware::nfit::{Guid, SpaRange};
use firmware::setup::memory_setup;
use libfuzzer_sys::fuzz_target;

/// SeaBIOS map for `-m 6G` (3 GiB below the PCI hole, 3 GiB from 4 GiB).
fn qemu_map() -> E820Table {
    e820_from_regions([
        (0x0, 0x9fc00, RegionKind::Usable),
        (0x9fc00, 0xa0000, RegionKind::UnknownBios(2)),
        (0xf0000, 0x100000, RegionKind::UnknownBios(2)),
        (0x100000, 0xbffe0000, RegionKind::Usable),
        (0xbffe0000, 0xc0000000, RegionKind::UnknownBios(2)),
        (0xfeffc000, 0xff000000, RegionKind::UnknownBios(2)),
        (0xfffc0000, 0x1_0000_0000, RegionKind::UnknownBios(2)),
        (0x1_0000_0000, 0x1_c000_0000, RegionKind::Usable),
        (0xfd_0000_0000, 0x100_0000_0000, RegionKind::UnknownBios(2)),
    ])
    .e820
}

/// The SPA range QEMU's NFIT gives a 128 MiB NVDIMM above that RAM.
fn spa() -> SpaRange {
    SpaRange {
        range_index: 2,
        flags: 3,
        proximity_domain: 0,
        guid: Guid::PERSISTENT_MEMORY,
        base: 0x2_0000_0000,
        length: 128 << 20,
        attributes: 0x8008,
        location_cookie: None,
    }
}

fn suffix_of(rest: &str, text: &str) {
    assert!(
        text.ends_with(rest) && rest.len() <= text.len(),
        "{rest:?} of {text:?}"
    );
}

fn numbers(text: &str) {
    if let Ok((_, rest)) = memparse(text) {
        suffix_of(rest, text);
    }
    if let Ok((_, rest)) = strtoull(text) {
        suffix_of(rest, text);
    }
}

fuzz_target!(|data: &[u8]| {
    let cmd = String::from_utf8_lossy(data);
    let mut words = 0usize;
    for p in params(&cmd) {
        words += 1;
        assert!(words <= cmd.len(), "tokenizer does not end");
        numbers(p.name);
        if let Some(v) = p.value {
            numbers(v);
            for item in v.split(',') {
                let _ = parse_memmap_item(item);
            }
        }
    }
    numbers(&cmd);

    let original = qemu_map();
    let mut map = original.clone();
    let report = apply_memmap(&cmd, &mut map);
    if report.user_defined() {
        assert!(map.is_sanitized(), "{map:?}");
    } else {
        assert_eq!(map, original);
    }
    for e in &report.errors {
        let line = e.to_string();
        assert!(!line.is_empty());
    }
    let _ = map.lines("user").to_string();

    let s = memory_setup(original, &cmd, &[spa()]);
    assert_eq!(s.e820, map);
    assert!(s.zone_map.is_sanitized());
    for w in s.pmem.windows(2) {
        assert!(w[0].range.end <= w[1].range.start, "pmem overlaps: {w:?}");
    }
    for p in &s.pmem {
        assert!(
            !s.e820
                .mapped_any(p.range.start, p.range.end, Some(E820Type::Usable)),
            "{p:?}"
        );
    }
    let _ = s.iomem.to_string();
});
