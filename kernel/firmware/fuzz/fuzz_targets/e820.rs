//! The E820 path of the boot: arbitrary bootloader regions `(start, end, kind)` →
//! `e820_from_regions` (sanitized), sanitized again, `memmap=`/`mem=` from the command line
//! part of the input, the zone-setup trim, `usable_pages`, `end_of_ram_pfn`, and the whole
//! `setup::memory_setup` on the same map.
//!
//! Input: `u16` length `L` (little-endian), `L` bytes of command line (lossy UTF-8), then
//! regions of 21 bytes each: start `u64`, end `u64` (exclusive), kind tag `u8` (`% 4`: usable,
//! bootloader, BIOS type, UEFI type) and the BIOS/UEFI type `u32`.
//!
//! Checked: every table that comes out of the sanitizer is sorted, non-overlapping and
//! well-formed; sanitizing is idempotent; at each region's edges the sanitized type is the
//! largest type of the regions covering that address (Linux's rule); the bootloader list is
//! sorted and merged; after the trim, page 0 and the BIOS area hold no usable RAM and the
//! usable pages are page-aligned, sorted and inside usable entries.
#![no_main]

use firmware::e820::{
    BIOS_BEGIN, BIOS_END, E820Table, E820Type, MAX_ARCH_PFN, RegionKind, e820_from_regions,
};
use firmware::range::{PAGE_SIZE, PhysRange};
use firmware::{cmdline, setup};
use libfuzzer_sys::fuzz_target;

fn u64_at(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(a)
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[off..off + 4]);
    u32::from_le_bytes(a)
}

/// Sorted, non-overlapping, no empty entry, no type 0, no end past `u64::MAX`.
fn assert_sane(t: &E820Table, what: &str) {
    assert!(t.is_sanitized(), "{what}: not sanitized: {t:?}");
    for e in t.entries() {
        assert!(e.size != 0 && e.typ.raw() != 0, "{what}: {e:?}");
        assert!(e.addr.checked_add(e.size).is_some(), "{what}: {e:?}");
    }
    for w in t.entries().windows(2) {
        assert!(
            w[0].end() <= w[1].addr,
            "{what}: overlap {:?} {:?}",
            w[0],
            w[1]
        );
    }
    let mut again = t.clone();
    again.sanitize();
    assert_eq!(&again, t, "{what}: sanitize is not idempotent");
}

fn parse_regions(b: &[u8]) -> Vec<(u64, u64, RegionKind)> {
    b.chunks_exact(21)
        .map(|r| {
            let n = u32_at(r, 17);
            let kind = match r[16] % 4 {
                0 => RegionKind::Usable,
                1 => RegionKind::Bootloader,
                2 => RegionKind::UnknownBios(n),
                _ => RegionKind::UnknownUefi(n),
            };
            (u64_at(r, 0), u64_at(r, 8), kind)
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let cmd_len = usize::from(u16::from_le_bytes([data[0], data[1]])).min(data.len() - 2);
    let cmd = String::from_utf8_lossy(&data[2..2 + cmd_len]);
    let regions = parse_regions(&data[2 + cmd_len..]);

    let boot = e820_from_regions(regions.iter().copied());
    let map = boot.e820;
    assert_sane(&map, "e820_from_regions");

    // Linux's rule, at every region edge: the largest covering type wins (type 0 = nothing).
    for &(s, e, _) in &regions {
        if e <= s {
            continue;
        }
        for addr in [s, e - 1] {
            let want = regions
                .iter()
                .filter(|&&(rs, re, _)| rs <= addr && addr < re)
                .map(|&(_, _, k)| k.e820_type().raw())
                .max()
                .unwrap_or(0);
            let got = map.type_at(addr).map_or(0, E820Type::raw);
            assert_eq!(got, want, "type at {addr:#x}: {map:?}");
        }
    }

    for w in boot.bootloader.windows(2) {
        assert!(w[0].end < w[1].start, "bootloader ranges not merged: {w:?}");
    }
    assert!(boot.bootloader.iter().all(|r| !r.is_empty()));
    let _ = map.lines("BIOS-e820").to_string();

    // memmap= / mem= from the command line.
    let mut user = map.clone();
    let report = cmdline::apply_memmap(&cmd, &mut user);
    if report.user_defined() {
        assert_sane(&user, "apply_memmap");
    } else {
        assert_eq!(
            user, map,
            "apply_memmap changed the map without applying anything"
        );
    }
    for e in &report.errors {
        let _ = e.to_string();
    }

    // Zone-setup trim and the page ranges the zones are built from.
    let mut zones = user.clone();
    zones.trim_for_zones();
    assert_sane(&zones, "trim_for_zones");
    assert!(!zones.mapped_any(0, PAGE_SIZE, Some(E820Type::Usable)));
    assert!(!zones.mapped_any(BIOS_BEGIN, BIOS_END, Some(E820Type::Usable)));
    let pages: Vec<PhysRange> = zones.usable_pages().collect();
    for r in &pages {
        assert!(
            r.start < r.end && r.start % PAGE_SIZE == 0 && r.end % PAGE_SIZE == 0,
            "{r:?}"
        );
        assert!(zones.mapped_all(r.start, r.end, E820Type::Usable), "{r:?}");
    }
    for w in pages.windows(2) {
        assert!(w[0].end <= w[1].start, "usable pages overlap: {w:?}");
    }
    assert!(zones.end_of_ram_pfn() <= MAX_ARCH_PFN);

    // The whole set-up as the kernel runs it.
    let s = setup::memory_setup(map, &cmd, &[]);
    assert_eq!(s.e820, user);
    assert_eq!(s.zone_map, zones);
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
