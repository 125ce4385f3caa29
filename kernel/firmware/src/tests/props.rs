//! Property tests: the sanitizer against a per-address model, and every parser against random
//! input (never a panic). Under Miri the case count is cut to keep the run short.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use proptest::prelude::*;

use super::nfit::{nfit, spa};
use super::sdt;
use crate::acpi::{self, MemImage, Signature};
use crate::cmdline::{apply_memmap, memparse, params};
use crate::e820::{E820Entry, E820Table, E820Type, RegionKind, e820_from_regions, parse_dmesg};
use crate::iomem::{IomemTree, Resource, ResourceKind, devmem_is_allowed};
use crate::nfit::{Guid, MAX_PHYS_ADDR, parse_nfit};
use crate::pmem::collect_persistent;
use crate::range::PhysRange;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: if cfg!(miri) { 4 } else { 512 },
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

const UNIT: u64 = 0x1000;
const UNITS: usize = 96;
const TYPES: [u32; 10] = [0, 1, 2, 3, 4, 5, 7, 12, 20, 0xefff_ffff];

/// Entries on a 4 KiB grid, so the model can be checked unit by unit.
fn grid_entries() -> impl Strategy<Value = Vec<(u64, u64, u32)>> {
    prop::collection::vec((0u64..64, 0u64..32, 0usize..TYPES.len()), 0..14).prop_map(|v| {
        v.into_iter()
            .map(|(s, l, t)| (s * UNIT, l * UNIT, TYPES[t]))
            .collect()
    })
}

fn grid_table(v: &[(u64, u64, u32)]) -> E820Table {
    E820Table::from_entries(
        v.iter()
            .map(|&(a, s, t)| E820Entry::new(a, s, E820Type::from_raw(t)))
            .collect(),
    )
}

/// The winning type of every unit: the largest type of the entries covering it (0 = none).
fn model(v: &[(u64, u64, u32)]) -> Vec<u32> {
    let mut m = vec![0u32; UNITS];
    for &(a, s, t) in v {
        for u in (a / UNIT)..((a + s) / UNIT) {
            m[u as usize] = m[u as usize].max(t);
        }
    }
    m
}

fn coverage(t: &E820Table) -> Vec<u32> {
    let mut m = vec![0u32; UNITS];
    for e in t.entries() {
        for u in (e.addr / UNIT)..(e.end() / UNIT) {
            assert_eq!(m[u as usize], 0, "overlap at unit {u}");
            m[u as usize] = e.typ.raw();
        }
    }
    m
}

fn tree_is_consistent(list: &[Resource], lo: u64, hi: u64) -> bool {
    list.windows(2).all(|w| w[0].end < w[1].start)
        && list.iter().all(|r| {
            r.start <= r.end
                && lo <= r.start
                && r.end <= hi
                && tree_is_consistent(&r.children, r.start, r.end)
        })
}

/// A line-by-line port of Linux's `e820__update_table` (change points sorted by cpcompare, an
/// overlap list with swap removal, the largest type wins, nomerge types cut at every change
/// point), as the reference for [`E820Table::sanitize`].
fn linux_update_table(entries: &[(u64, u64, u32)]) -> Vec<(u64, u64, u32)> {
    struct ChangeMember {
        addr: u64,
        entry: usize,
    }
    let nomerge = |t: u32| t == 12 || t == 0xefff_ffff;
    let mut change_point = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if e.1 != 0 {
            change_point.push(ChangeMember {
                addr: e.0,
                entry: i,
            });
            change_point.push(ChangeMember {
                addr: e.0 + e.1,
                entry: i,
            });
        }
    }
    // cpcompare: by address, then a start (addr == entry->addr) before an end.
    change_point.sort_by(|a, b| {
        let a_end = a.addr != entries[a.entry].0;
        let b_end = b.addr != entries[b.entry].0;
        a.addr.cmp(&b.addr).then(a_end.cmp(&b_end))
    });
    let mut overlap_list: Vec<usize> = Vec::new();
    let mut new_entries: Vec<(u64, u64, u32)> = Vec::new();
    let (mut last_type, mut last_addr) = (0u32, 0u64);
    let mut cur: Option<(u64, u32)> = None;
    for cp in &change_point {
        if cp.addr == entries[cp.entry].0 {
            overlap_list.push(cp.entry);
        } else {
            let n = overlap_list.len();
            for i in 0..n {
                if overlap_list[i] == cp.entry {
                    overlap_list[i] = overlap_list[n - 1];
                }
            }
            overlap_list.pop();
        }
        let current_type = overlap_list
            .iter()
            .map(|&i| entries[i].2)
            .max()
            .unwrap_or(0);
        if current_type != last_type || nomerge(current_type) {
            if last_type != 0
                && let Some((addr, typ)) = cur.take()
            {
                let size = cp.addr - last_addr;
                if size != 0 {
                    new_entries.push((addr, size, typ));
                }
            }
            if current_type != 0 {
                cur = Some((cp.addr, current_type));
                last_addr = cp.addr;
            }
            last_type = current_type;
        }
    }
    new_entries
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn sanitize_equals_linux_port(v in grid_entries()) {
        if v.len() < 2 {
            // Linux leaves a one-entry table alone; ours drops an empty or type-0 entry.
            return Ok(());
        }
        let mut t = grid_table(&v);
        t.sanitize();
        let got: Vec<_> = t.entries().iter().map(|e| (e.addr, e.size, e.typ.raw())).collect();
        prop_assert_eq!(got, linux_update_table(&v));
    }

    #[test]
    fn sanitize_matches_model_and_is_idempotent(v in grid_entries()) {
        let mut t = grid_table(&v);
        t.sanitize();
        prop_assert!(t.is_sanitized(), "{t:?}");
        prop_assert_eq!(coverage(&t), model(&v));
        let mut again = t.clone();
        again.sanitize();
        prop_assert_eq!(again, t);
    }

    #[test]
    fn sanitize_any_input_is_sorted_and_idempotent(
        v in prop::collection::vec((any::<u64>(), any::<u64>(), any::<u32>()), 0..12)
    ) {
        let mut t = grid_table(&v);
        t.sanitize();
        prop_assert!(t.is_sanitized());
        let mut again = t.clone();
        again.sanitize();
        prop_assert_eq!(again, t);
    }

    #[test]
    fn update_and_remove_match_model(
        v in grid_entries(),
        start in 0u64..80,
        len in 0u64..40,
        old in 1usize..TYPES.len(),
        new in 1usize..TYPES.len(),
        remove_any in any::<bool>(),
    ) {
        let mut t = grid_table(&v);
        t.sanitize();
        let base = coverage(&t);
        let (old, new) = (E820Type::from_raw(TYPES[old]), E820Type::from_raw(TYPES[new]));
        let units = (start as usize)..((start + len) as usize).min(UNITS);

        let mut u = t.clone();
        let done = u.update_range(start * UNIT, len * UNIT, old, new);
        u.sanitize();
        let mut expect = base.clone();
        let mut bytes = 0;
        if old != new {
            for i in units.clone() {
                if expect[i] == old.raw() {
                    expect[i] = new.raw();
                    bytes += UNIT;
                }
            }
        }
        prop_assert_eq!(coverage(&u), expect);
        prop_assert_eq!(done, bytes);

        let mut r = t.clone();
        let filter = (!remove_any).then_some(old);
        let removed = r.remove_range(start * UNIT, len * UNIT, filter);
        r.sanitize();
        let mut expect = base;
        let mut bytes = 0;
        for i in units {
            if expect[i] != 0 && filter.is_none_or(|t| t.raw() == expect[i]) {
                expect[i] = 0;
                bytes += UNIT;
            }
        }
        prop_assert_eq!(coverage(&r), expect);
        prop_assert_eq!(removed, bytes);
    }

    #[test]
    fn trim_and_usable_pages(
        v in prop::collection::vec((any::<u64>(), any::<u64>(), 0usize..TYPES.len()), 0..10),
        low in grid_entries(),
    ) {
        let mut all: Vec<(u64, u64, u32)> = v.into_iter().map(|(a, s, t)| (a, s, TYPES[t])).collect();
        all.extend(low.into_iter().map(|(a, s, t)| (a * 64, s * 64, t)));
        let mut t = grid_table(&all);
        t.sanitize();
        t.trim_for_zones();
        prop_assert!(t.is_sanitized());
        for r in t.usable_pages() {
            prop_assert!(r.start % 4096 == 0 && r.end % 4096 == 0 && r.start < r.end);
            prop_assert!(t.mapped_all(r.start, r.end, E820Type::Usable));
            prop_assert!(!r.overlaps(&PhysRange::new(0, 0x1000)));
            prop_assert!(!r.overlaps(&PhysRange::new(0xa0000, 0x100000)));
        }
        let _ = t.end_of_ram_pfn();
    }

    #[test]
    fn regions_never_panic(
        v in prop::collection::vec((any::<u64>(), any::<u64>(), 0u8..4, any::<u32>()), 0..12)
    ) {
        let map = e820_from_regions(v.into_iter().map(|(s, e, k, n)| {
            let kind = match k {
                0 => RegionKind::Usable,
                1 => RegionKind::Bootloader,
                2 => RegionKind::UnknownBios(n),
                _ => RegionKind::UnknownUefi(n % 20),
            };
            (s, e, kind)
        }));
        prop_assert!(map.e820.is_sanitized());
        prop_assert!(map.bootloader.windows(2).all(|w| w[0].end < w[1].start));
        let (pmem, _) = collect_persistent(&map.e820, &[]);
        let (tree, conflicts) = IomemTree::from_e820(&map.e820, &pmem);
        prop_assert!(conflicts.is_empty());
        prop_assert!(tree_is_consistent(&tree.children, 0, u64::MAX));
    }

    #[test]
    fn dmesg_never_panics(text in "\\PC{0,200}", tail in "[-0-9a-fx \\]\\[A-Za-z()]{0,60}") {
        let _ = parse_dmesg(&text);
        let line = format!("[    0.000000] BIOS-e820: [mem {tail}");
        let _ = parse_dmesg(&line);
    }

    #[test]
    fn printed_map_parses_back(v in grid_entries()) {
        let mut t = grid_table(&v);
        t.sanitize();
        if t.is_empty() {
            return Ok(());
        }
        let text = t.lines("BIOS-e820").to_string();
        prop_assert_eq!(parse_dmesg(&text).unwrap(), t);
    }

    #[test]
    fn cmdline_never_panics(
        text in "\\PC{0,80}",
        items in prop::collection::vec("(memmap|mem|mem_map)=[0-9a-fxXkKmMgGtTpPeE!@#$%,+\\- \"]{0,24}", 0..5),
        v in grid_entries(),
    ) {
        let _ = params(&text).count();
        let mut t = grid_table(&v);
        t.sanitize();
        let _ = apply_memmap(&text, &mut t);
        let line = items.join(" ");
        let report = apply_memmap(&line, &mut t);
        if report.user_defined() {
            prop_assert!(t.is_sanitized());
        }
        for e in &report.errors {
            prop_assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn memparse_round_trips(v in any::<u64>(), shift in 0usize..6) {
        let (dec, hex) = (format!("{v}"), format!("{v:#x}"));
        prop_assert_eq!(memparse(&dec), Ok((v, "")));
        prop_assert_eq!(memparse(&hex), Ok((v, "")));
        let suffix = ["K", "M", "G", "T", "P", "E"][shift];
        let bits = 10 * (shift as u32 + 1);
        let small = v >> bits;
        let text = format!("{small}{suffix}!");
        prop_assert_eq!(memparse(&text), Ok((small << bits, "!")));
    }

    #[test]
    fn nfit_random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse_nfit(&bytes);
    }

    #[test]
    fn nfit_random_body_with_valid_header(body in prop::collection::vec(any::<u8>(), 0..300)) {
        let table = sdt(b"NFIT", 1, &body);
        let n = parse_nfit(&table);
        if body.len() >= 4 {
            let n = n.unwrap();
            for s in &n.spa_ranges {
                prop_assert!(s.length > 0);
                prop_assert!(s.base.checked_add(s.length).is_some_and(|e| e <= MAX_PHYS_ADDR));
            }
            prop_assert!(n.problems.iter().all(|p| !p.rejects_table()));
        } else {
            prop_assert!(n.is_err());
        }
    }

    #[test]
    fn nfit_good_ranges_round_trip(
        v in prop::collection::vec((any::<u16>(), 0u64..(1 << 40), 1u64..(1 << 40), any::<bool>(), any::<bool>()), 0..8)
    ) {
        let subs: Vec<Vec<u8>> = v
            .iter()
            .map(|&(i, b, l, cookie, pm)| {
                let guid = if pm { Guid::PERSISTENT_MEMORY } else { Guid::VOLATILE_MEMORY };
                spa(i, guid, b, l, cookie.then_some(7))
            })
            .collect();
        let n = parse_nfit(&nfit(&subs)).unwrap();
        prop_assert!(n.problems.is_empty());
        let got: Vec<_> = n.spa_ranges.iter().map(|s| (s.range_index, s.base, s.length, s.location_cookie.is_some(), s.is_persistent())).collect();
        prop_assert_eq!(got, v);
    }

    #[test]
    fn nfit_keeps_ranges_before_garbage(
        v in prop::collection::vec((any::<u16>(), 0u64..(1 << 40), 1u64..(1 << 40)), 1..6),
        garbage in prop::collection::vec(any::<u8>(), 0..120),
    ) {
        let subs: Vec<Vec<u8>> = v
            .iter()
            .map(|&(i, b, l)| spa(i, Guid::PERSISTENT_MEMORY, b, l, None))
            .collect();
        let mut t = nfit(&subs);
        t.extend_from_slice(&garbage);
        let len = t.len() as u32;
        t[4..8].copy_from_slice(&len.to_le_bytes());
        super::fix_checksum(&mut t);
        let n = parse_nfit(&t).unwrap();
        prop_assert!(n.spa_ranges.len() >= v.len());
        for (s, &(i, b, l)) in n.spa_ranges.iter().zip(&v) {
            prop_assert_eq!((s.range_index, s.base, s.length), (i, b, l));
        }
    }

    #[test]
    fn acpi_walk_random_memory_never_panics(
        rsdp_rev in prop::sample::select(vec![0u8, 2]),
        root in prop::collection::vec(any::<u8>(), 0..200),
        entries in prop::collection::vec(0u64..0x400, 0..6),
        raw in prop::collection::vec(any::<u8>(), 0..200),
        pa in 0u64..0x300,
    ) {
        // Fully random memory.
        let mut m = MemImage::new();
        m.insert(0, raw);
        let _ = acpi::read_root(&m, pa).map(|r| (r.find(&m, Signature::NFIT), r.headers(&m)));

        // A valid RSDP pointing at random root table bytes.
        let mut m = MemImage::new();
        let mut r = Vec::from(*b"RSD PTR ");
        r.push(0);
        r.extend_from_slice(b"OEMID ");
        r.push(rsdp_rev);
        r.extend_from_slice(&0x100u32.to_le_bytes());
        r.extend_from_slice(&36u32.to_le_bytes());
        r.extend_from_slice(&0x100u64.to_le_bytes());
        r.extend_from_slice(&[0; 4]);
        r[8] = 0u8.wrapping_sub(acpi::checksum(&r[..20]));
        r[32] = 0u8.wrapping_sub(acpi::checksum(&r[..36]));
        m.insert(0, r);
        m.insert(0x100, root);
        let _ = acpi::read_root(&m, 0).map(|r| r.find(&m, Signature::NFIT));

        // A valid root table whose entries point anywhere in a random image (loops included).
        let mut m2 = MemImage::new();
        let body: Vec<u8> = entries.iter().flat_map(|e| (*e as u32).to_le_bytes()).collect();
        m2.insert(0x800, vec![0xaa; 0x400]);
        m2.insert(0x100, sdt(b"RSDT", 1, &body));
        let mut r = Vec::from(*b"RSD PTR ");
        r.push(0);
        r.extend_from_slice(b"OEMID \0");
        r.extend_from_slice(&0x100u32.to_le_bytes());
        r[8] = 0u8.wrapping_sub(acpi::checksum(&r));
        m2.insert(0, r);
        let root = acpi::read_root(&m2, 0).unwrap();
        let _ = root.find(&m2, Signature::NFIT);
        let _ = root.headers(&m2);
    }

    #[test]
    fn iomem_random_inserts_stay_consistent(
        v in prop::collection::vec((0u64..0x40, 0u64..0x20, any::<bool>()), 0..16),
        probes in prop::collection::vec((any::<u64>(), any::<u64>()), 0..8),
    ) {
        let mut tree = IomemTree::new();
        for (i, (s, l, req)) in v.into_iter().enumerate() {
            let r = Resource {
                start: s * 0x1000,
                end: (s + l) * 0x1000,
                name: String::from(["System RAM", "Reserved", "Persistent Memory"][i % 3]),
                kind: [ResourceKind::SystemRam, ResourceKind::Reserved, ResourceKind::Pmem][i % 3],
                children: Vec::new(),
            };
            let _ = if req { tree.request(r) } else { tree.insert(r) };
            prop_assert!(tree_is_consistent(&tree.children, 0, u64::MAX));
        }
        let _ = tree.to_string();
        for (a, l) in probes {
            let _ = devmem_is_allowed(&tree, a, l);
            let _ = devmem_is_allowed(&tree, a % 0x50000, l % 0x5000);
        }
    }

    #[test]
    fn persistent_ranges_never_touch_ram(
        v in grid_entries(),
        spas in prop::collection::vec((0u64..80, 0u64..20, any::<bool>()), 0..6),
    ) {
        let mut t = grid_table(&v);
        t.sanitize();
        let spas: Vec<_> = spas
            .into_iter()
            .enumerate()
            .map(|(i, (b, l, pm))| crate::nfit::SpaRange {
                range_index: i as u16,
                flags: 0,
                proximity_domain: 0,
                guid: if pm { Guid::PERSISTENT_MEMORY } else { Guid::CONTROL_REGION },
                base: b * UNIT,
                length: l * UNIT,
                attributes: 0,
                location_cookie: None,
            })
            .collect();
        let (pmem, rejected) = collect_persistent(&t, &spas);
        prop_assert!(pmem.windows(2).all(|w| w[0].range.end <= w[1].range.start));
        for p in &pmem {
            prop_assert!(!t.mapped_any(p.range.start, p.range.end, Some(E820Type::Usable)));
        }
        for r in &rejected {
            prop_assert!(r.range.overlaps(&r.ram));
        }
        let (tree, _) = IomemTree::from_e820(&t, &pmem);
        prop_assert!(tree_is_consistent(&tree.children, 0, u64::MAX));
        for p in &pmem {
            prop_assert!(devmem_is_allowed(&tree, p.range.start.max(0x100000), 1).is_err()
                || p.range.end <= 0x100000);
        }
    }
}
