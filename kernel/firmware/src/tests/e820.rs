use alloc::format;
use alloc::string::ToString;
use alloc::vec;
use alloc::vec::Vec;

use super::{LAPTOP_DMESG, QEMU_SEABIOS_512M, table, triples};
use crate::e820::*;
use crate::range::PhysRange;

const G: u64 = 1 << 30;
const M: u64 = 1 << 20;
const SR: u32 = 0xefff_ffff;

#[test]
fn types_round_trip_and_labels() {
    for raw in [0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 13, 20, 128, SR, u32::MAX] {
        assert_eq!(E820Type::from_raw(raw).raw(), raw);
    }
    assert_eq!(E820Type::Other(1), E820Type::Usable);
    let labels: Vec<_> = [1, 2, SR, 3, 4, 5, 7, 12, 6, 20]
        .iter()
        .map(|&t| E820Type::from_raw(t).label().to_string())
        .collect();
    assert_eq!(
        labels,
        [
            "usable",
            "reserved",
            "soft reserved",
            "ACPI data",
            "ACPI NVS",
            "unusable",
            "persistent (type 7)",
            "persistent (type 12)",
            "type 6",
            "type 20"
        ]
    );
    assert_eq!(E820Type::Pram.iomem_name(), "Persistent Memory (legacy)");
    assert_eq!(E820Type::Other(20).iomem_name(), "Unknown E820 type");
    assert!(E820Type::Pram.is_nomerge() && E820Type::SoftReserved.is_nomerge());
    assert!(!E820Type::Pmem.is_nomerge());
}

#[test]
fn sanitize_resolves_overlap_larger_type_wins() {
    let mut t = table(&[
        (0, 0x20000, 1),
        (0x8000, 0x30000, 2),
        (0x28000, 0x40000, 3),
        (0x10000, 0x18000, 4),
    ]);
    t.sanitize();
    assert_eq!(
        triples(&t),
        vec![
            (0, 0x8000, 1),
            (0x8000, 0x10000, 2),
            (0x10000, 0x18000, 4),
            (0x18000, 0x28000, 2),
            (0x28000, 0x40000, 3),
        ]
    );
    assert!(t.is_sanitized());
}

#[test]
fn sanitize_sorts_merges_and_drops_empty_and_type_zero() {
    let mut t = table(&[
        (0x300000, 0x400000, 1),
        (0x100000, 0x200000, 1),
        (0x200000, 0x300000, 1),
        (0x500000, 0x500000, 2),
        (0x600000, 0x700000, 0),
        (0, 0x1000, 1),
    ]);
    t.sanitize();
    assert_eq!(triples(&t), vec![(0, 0x1000, 1), (0x100000, 0x400000, 1)]);
}

#[test]
fn sanitize_keeps_unknown_types_and_ranges_above_1tib() {
    let mut t = table(&[
        (0, G, 1),
        (G / 2, G, 20),
        (1 << 40, (1 << 40) + 4 * G, 1),
        ((1 << 40) + G, (1 << 40) + 2 * G, 13),
        (0xfd_0000_0000, 0x100_0000_0000, 2),
    ]);
    t.sanitize();
    assert_eq!(
        triples(&t),
        vec![
            (0, G / 2, 1),
            (G / 2, G, 20),
            (0xfd_0000_0000, 0x100_0000_0000, 2),
            (1 << 40, (1 << 40) + G, 1),
            ((1 << 40) + G, (1 << 40) + 2 * G, 13),
            ((1 << 40) + 2 * G, (1 << 40) + 4 * G, 1),
        ]
    );
    assert_eq!(
        t.entries()[1].line("BIOS-e820").to_string(),
        "BIOS-e820: [mem 0x0000000020000000-0x000000003fffffff] type 20"
    );
}

#[test]
fn type_12_between_ram_ranges_stays_separate() {
    let mut t = table(&[(0, G, 1), (G, 2 * G, 12), (2 * G, 3 * G, 1)]);
    t.sanitize();
    assert_eq!(
        triples(&t),
        vec![(0, G, 1), (G, 2 * G, 12), (2 * G, 3 * G, 1)]
    );
    // Adjacent type 12 entries are distinct devices: never merged.
    let mut t = table(&[(G, 2 * G, 12), (2 * G, 3 * G, 12), (0, G, 1)]);
    t.sanitize();
    assert_eq!(
        triples(&t),
        vec![(0, G, 1), (G, 2 * G, 12), (2 * G, 3 * G, 12)]
    );
    // But adjacent type 7 entries merge like RAM.
    let mut t = table(&[(G, 2 * G, 7), (2 * G, 3 * G, 7)]);
    t.sanitize();
    assert_eq!(triples(&t), vec![(G, 3 * G, 7)]);
}

#[test]
fn soft_reserved_beside_pmem() {
    let mut t = table(&[
        (4 * G, 8 * G, 7),
        (8 * G, 12 * G, SR),
        (12 * G, 16 * G, SR),
        (0, 2 * G, 1),
    ]);
    t.sanitize();
    assert_eq!(
        triples(&t),
        vec![
            (0, 2 * G, 1),
            (4 * G, 8 * G, 7),
            (8 * G, 12 * G, SR),
            (12 * G, 16 * G, SR)
        ]
    );
    assert_eq!(
        t.entries()[2].line("BIOS-e820").to_string(),
        "BIOS-e820: [mem 0x0000000200000000-0x00000002ffffffff] soft reserved"
    );
    // Soft reserved (0xefffffff) outranks every other type where they overlap, and being a
    // nomerge type it is cut where the hidden type 7 entry ends (Linux does the same).
    let mut t = table(&[(4 * G, 8 * G, 7), (6 * G, 10 * G, SR)]);
    t.sanitize();
    assert_eq!(
        triples(&t),
        vec![(4 * G, 6 * G, 7), (6 * G, 8 * G, SR), (8 * G, 10 * G, SR)]
    );
}

#[test]
fn nomerge_type_is_cut_at_every_change_point_like_linux() {
    // Linux's e820__update_table closes a nomerge entry at every change point, even one that
    // belongs to a lower-typed entry hidden underneath.
    let mut t = table(&[(0, 100 * M, 12), (50 * M, 60 * M, 1)]);
    t.sanitize();
    assert_eq!(
        triples(&t),
        vec![(0, 50 * M, 12), (50 * M, 60 * M, 12), (60 * M, 100 * M, 12)]
    );
}

#[test]
fn sanitize_clips_overflowing_entry() {
    let mut t = E820Table::from_entries(vec![
        E820Entry::new(u64::MAX - 0xfff, 0x10000, E820Type::Reserved),
        E820Entry::new(0, 0x1000, E820Type::Usable),
    ]);
    t.sanitize();
    assert_eq!(
        triples(&t),
        vec![(0, 0x1000, 1), (u64::MAX - 0xfff, u64::MAX, 2)]
    );
    assert!(t.is_sanitized());
}

#[test]
fn update_range_splits_like_linux() {
    let mut t = table(&[(0, 0x100000, 1), (0x100000, 0x200000, 2)]);
    // Middle of an entry: three pieces.
    assert_eq!(
        t.update_range(0x10000, 0x10000, E820Type::Usable, E820Type::Pram),
        0x10000
    );
    // Partial overlap of the head of an entry, and a type that does not match.
    assert_eq!(
        t.update_range(0xf8000, 0x10000, E820Type::Usable, E820Type::Acpi),
        0x8000
    );
    assert_eq!(t.update_range(0, 0x1000, E820Type::Nvs, E820Type::Acpi), 0);
    assert_eq!(
        t.update_range(0, 0x1000, E820Type::Usable, E820Type::Usable),
        0
    );
    t.sanitize();
    assert_eq!(
        triples(&t),
        vec![
            (0, 0x10000, 1),
            (0x10000, 0x20000, 12),
            (0x20000, 0xf8000, 1),
            (0xf8000, 0x100000, 3),
            (0x100000, 0x200000, 2)
        ]
    );
    // Whole entries covered.
    let mut t = table(&[(0x1000, 0x2000, 1), (0x3000, 0x4000, 1)]);
    assert_eq!(
        t.update_range(0, 0x10000, E820Type::Usable, E820Type::Reserved),
        0x2000
    );
    assert_eq!(triples(&t), vec![(0x1000, 0x2000, 2), (0x3000, 0x4000, 2)]);
    // Size running past the end of the address space is clipped.
    let mut t = table(&[(0x1000, 0x2000, 1)]);
    assert_eq!(
        t.update_range(0x1800, u64::MAX, E820Type::Usable, E820Type::Reserved),
        0x800
    );
}

#[test]
fn remove_range_splits_and_filters_by_type() {
    let mut t = table(&[(0, 0x100000, 1), (0x100000, 0x200000, 2)]);
    assert_eq!(
        t.remove_range(0x10000, 0x10000, Some(E820Type::Usable)),
        0x10000
    );
    assert_eq!(t.remove_range(0x100000, 0x1000, Some(E820Type::Usable)), 0);
    assert_eq!(t.remove_range(0x1f0000, 0x20000, None), 0x10000);
    assert_eq!(t.remove_range(0xf0000, 0x100000, None), 0x10000 + 0xf0000);
    t.sanitize();
    assert_eq!(triples(&t), vec![(0, 0x10000, 1), (0x20000, 0xf0000, 1)]);
    // Everything covered.
    let mut t = table(&[(0x1000, 0x2000, 1)]);
    assert_eq!(t.remove_range(0, u64::MAX, None), 0x1000);
    assert!(t.is_empty());
}

#[test]
fn qemu_map_prints_like_linux_and_trims_for_zones() {
    let mut t = parse_dmesg(QEMU_SEABIOS_512M).unwrap();
    t.sanitize();
    let expected: Vec<&str> = QEMU_SEABIOS_512M
        .lines()
        .filter_map(|l| l.find("BIOS-e820").map(|i| &l[i..]))
        .collect();
    assert_eq!(t.lines("BIOS-e820").to_string(), expected.join("\n") + "\n");
    assert_eq!(t.end_of_ram_pfn(), 0x1ffe0);

    t.trim_for_zones();
    assert_eq!(
        t.lines("e820").to_string(),
        "\
e820: [mem 0x0000000000000000-0x0000000000000fff] reserved
e820: [mem 0x0000000000001000-0x000000000009fbff] usable
e820: [mem 0x000000000009fc00-0x000000000009ffff] reserved
e820: [mem 0x00000000000f0000-0x00000000000fffff] reserved
e820: [mem 0x0000000000100000-0x000000001ffdffff] usable
e820: [mem 0x000000001ffe0000-0x000000001fffffff] reserved
e820: [mem 0x00000000feffc000-0x00000000feffffff] reserved
e820: [mem 0x00000000fffc0000-0x00000000ffffffff] reserved
e820: [mem 0x000000fd00000000-0x000000ffffffffff] reserved
"
    );
    // Linux on this VM: "node 0: [mem 0x0000000000001000-0x000000000009efff]" and
    // "node 0: [mem 0x0000000000100000-0x000000001ffdffff]".
    let pages: Vec<_> = t.usable_pages().collect();
    assert_eq!(
        pages,
        vec![
            PhysRange::new(0x1000, 0x9f000),
            PhysRange::new(0x100000, 0x1ffe0000)
        ]
    );
}

#[test]
fn trim_removes_bios_area_reported_as_ram() {
    let mut t = table(&[(0, 0x20000000, 1)]);
    t.trim_for_zones();
    assert_eq!(
        triples(&t),
        vec![
            (0, 0x1000, 2),
            (0x1000, 0xa0000, 1),
            (0x100000, 0x20000000, 1)
        ]
    );
}

#[test]
fn laptop_dmesg_node_ranges() {
    let mut t = parse_dmesg(LAPTOP_DMESG).unwrap();
    assert_eq!(t.len(), 17);
    t.sanitize();
    assert_eq!(t.len(), 17);
    t.trim_for_zones();
    let pages: Vec<_> = t.usable_pages().map(|r| (r.start, r.last())).collect();
    assert_eq!(
        pages,
        vec![
            (0x1000, 0x9efff),
            (0x100000, 0x9afffff),
            (0x9e00000, 0x9efffff),
            (0x9f3d000, 0xc9ccffff),
            (0xccfff000, 0xcdffffff),
            (0x100000000, 0x42f33ffff),
        ]
    );
    assert_eq!(t.end_of_ram_pfn(), 0x42f340);
}

#[test]
fn usable_pages_trims_inward_and_skips_subpage_ranges() {
    let t = table(&[(0x100, 0x800, 1), (0x1800, 0x5800, 1), (0x6000, 0x7000, 2)]);
    let pages: Vec<_> = t.usable_pages().collect();
    assert_eq!(pages, vec![PhysRange::new(0x2000, 0x5000)]);
}

#[test]
fn mapped_any_all_and_type_at() {
    let mut t = parse_dmesg(QEMU_SEABIOS_512M).unwrap();
    t.sanitize();
    assert!(t.mapped_all(0x100000, 0x200000, E820Type::Usable));
    assert!(!t.mapped_all(0x9f000, 0xa0000, E820Type::Usable));
    assert!(t.mapped_any(0x9f000, 0xa0000, Some(E820Type::Reserved)));
    assert!(!t.mapped_any(0xa0000, 0xf0000, None));
    assert_eq!(t.type_at(0x9fc00), Some(E820Type::Reserved));
    assert_eq!(t.type_at(0xa0000), None);
}

#[test]
fn end_of_ram_pfn_caps_at_max_arch_pfn() {
    let t = table(&[(0, 0x1000, 1), (1 << 45, 1 << 47, 1)]);
    assert_eq!(t.end_of_ram_pfn(), MAX_ARCH_PFN);
}

#[test]
fn regions_from_bootloader_bios() {
    let regions = vec![
        (0, 0x9fc00, RegionKind::Usable),
        (0x9fc00, 0xa0000, RegionKind::UnknownBios(2)),
        (0xf0000, 0x100000, RegionKind::UnknownBios(2)),
        (0x100000, 0x200000, RegionKind::Usable),
        (0x200000, 0x280000, RegionKind::Bootloader),
        (0x280000, 0x300000, RegionKind::Bootloader),
        (0x300000, 0x1ffe0000, RegionKind::Usable),
        (0x1ffe0000, 0x20000000, RegionKind::UnknownBios(2)),
        (0x5000, 0x6000, RegionKind::Bootloader),
        (0x30000000, 0x30000000, RegionKind::Usable),
        (0x40000000, 0x50000000, RegionKind::UnknownBios(12)),
        (0x50000000, 0x60000000, RegionKind::UnknownBios(99)),
    ];
    let map = e820_from_regions(regions);
    assert_eq!(
        triples(&map.e820),
        vec![
            (0, 0x9fc00, 1),
            (0x9fc00, 0xa0000, 2),
            (0xf0000, 0x100000, 2),
            (0x100000, 0x1ffe0000, 1),
            (0x1ffe0000, 0x20000000, 2),
            (0x40000000, 0x50000000, 12),
            (0x50000000, 0x60000000, 99),
        ]
    );
    assert_eq!(
        map.bootloader,
        vec![
            PhysRange::new(0x5000, 0x6000),
            PhysRange::new(0x200000, 0x300000)
        ]
    );
}

#[test]
fn uefi_types_map_like_linux() {
    let expected = [
        (0, 2),
        (1, 1),
        (2, 1),
        (3, 1),
        (4, 1),
        (5, 2),
        (6, 2),
        (7, 1),
        (8, 5),
        (9, 3),
        (10, 4),
        (11, 2),
        (12, 2),
        (13, 2),
        (14, 7),
        (15, 2),
        (0x7000_0000, 2),
        (0x8000_0001, 2),
    ];
    for (efi, e820) in expected {
        assert_eq!(uefi_to_e820(efi).raw(), e820, "EFI type {efi}");
        assert_eq!(RegionKind::UnknownUefi(efi).e820_type().raw(), e820);
    }
    let map = e820_from_regions([
        (0x1_0000_0000, 0x1_0800_0000, RegionKind::UnknownUefi(14)),
        (0, 0x80000, RegionKind::Usable),
        (0x80000, 0xa0000, RegionKind::UnknownUefi(4)),
    ]);
    assert_eq!(
        triples(&map.e820),
        vec![(0, 0xa0000, 1), (0x1_0000_0000, 0x1_0800_0000, 7)]
    );
    assert!(map.bootloader.is_empty());
}

#[test]
fn dmesg_formats_and_errors() {
    let t = parse_dmesg(
        "BIOS-e820: [mem 0x0000000000000000-0x000000000009fbff] usable\r\n\
         Nov 27 10:00:00 host kernel: BIOS-e820: [mem 0x0000000100000000-0x000000013fffffff] persistent (type 12)\n\
         [    0.000000] BIOS-e820: [mem 0x0000000140000000-0x000000017fffffff] persistent (type 7)\n\
         [    0.000000] BIOS-e820: [mem 0x0000000180000000-0x00000001bfffffff] soft reserved\n\
         [    0.000000] BIOS-e820: [mem 0x00000001c0000000-0x00000001c0000fff] type 20\n\
         [    0.000000] BIOS-e820: [mem 0x00000001c0001000-0x00000001c0001fff] ACPI data\n\
         [    0.000000] BIOS-e820: [mem 0x00000001c0002000-0x00000001c0002fff] ACPI NVS\n\
         [    0.000000] BIOS-e820: [mem 0x00000001c0003000-0x00000001c0003fff] unusable\n\
         [    0.000000] user: [mem 0x0000000000000000-0x0000000000000fff] reserved\n\
         [    0.000000] BIOS-e820: [mem 0xfffffffffffff000-0xffffffffffffffff] reserved\n",
    )
    .unwrap();
    let raw: Vec<u32> = t.entries().iter().map(|e| e.typ.raw()).collect();
    assert_eq!(raw, vec![1, 12, 7, SR, 20, 3, 4, 5, 2]);
    assert_eq!(
        t.entries()[8].line("BIOS-e820").to_string(),
        "BIOS-e820: [mem 0xfffffffffffff000-0xffffffffffffffff] reserved"
    );

    let err = parse_dmesg("hello\n[ 0.0] BIOS-e820: [mem 0x1000-0x0fff] usable\n").unwrap_err();
    assert_eq!(err.line, 2);
    assert!(
        err.to_string()
            .contains("line 2: range ends before it starts")
    );
    for bad in [
        "BIOS-e820: 0000000000000000 - 000000000009fc00",
        "BIOS-e820: 0000000000000000 - 000000000009fc0g (usable)",
        "BIOS-e820: 0000000000000000-000000000009fc00 (usable)",
        "BIOS-e820: 00000000000a0000 - 0000000000090000 (usable)",
        "BIOS-e820: 0000000000000000 - 000000000009fc00 (mystery)",
        "BIOS-e820: [mem 0x0-0x1 usable",
        "BIOS-e820: [mem 0x0 0x1] usable",
        "BIOS-e820: [mem 0xg-0x1] usable",
        "BIOS-e820: [mem 0x0-0x10000000000000000] usable",
        "BIOS-e820: [mem 0x0-0x1] mystery",
        "BIOS-e820: [mem 0x0-0x1] type x",
        "BIOS-e820: [mem 0x0-0x1] type 99999999999",
        "BIOS-e820: [mem 0x0-0x1] persistent (type 7",
    ] {
        assert!(parse_dmesg(bad).is_err(), "{bad}");
    }
    let none = parse_dmesg("no map here\n").unwrap_err();
    assert_eq!(none.line, 0);
    assert!(none.to_string().contains("no `BIOS-e820"));
}

#[test]
fn dmesg_old_format() {
    // Kernels before 3.7 printed `start - end (type)` with the end exclusive.
    let t = parse_dmesg(
        "[    0.000000] BIOS-e820: 0000000000000000 - 000000000009fc00 (usable)\n\
         [    0.000000] BIOS-e820: 000000000009fc00 - 00000000000a0000 (reserved)\n\
         [    0.000000] BIOS-e820: 00000000000f0000 - 0000000000100000 (reserved)\n\
         [    0.000000] BIOS-e820: 0000000000100000 - 000000001fffd000 (usable)\n\
         [    0.000000] BIOS-e820: 000000001fffd000 - 0000000020000000 (ACPI data)\n\
         [    0.000000] BIOS-e820: 0000000020000000 - 0000000020001000 (ACPI NVS)\n\
         [    0.000000] BIOS-e820: 0000000020001000 - 0000000020002000 type 12\n",
    )
    .unwrap();
    assert_eq!(
        triples(&t),
        vec![
            (0, 0x9fc00, 1),
            (0x9fc00, 0xa0000, 2),
            (0xf0000, 0x100000, 2),
            (0x100000, 0x1fffd000, 1),
            (0x1fffd000, 0x20000000, 3),
            (0x20000000, 0x20001000, 4),
            (0x20001000, 0x20002000, 12),
        ]
    );
}

#[test]
fn whole_address_space_line_is_clipped_not_overflowed() {
    let t = parse_dmesg("BIOS-e820: [mem 0x0000000000000000-0xffffffffffffffff] usable").unwrap();
    assert_eq!(t.entries()[0].size, u64::MAX);
    assert_eq!(
        format!("{}", t.entries()[0].line("BIOS-e820")),
        "BIOS-e820: [mem 0x0000000000000000-0xfffffffffffffffe] usable"
    );
}

#[test]
fn printed_table_parses_back() {
    let mut t = parse_dmesg(LAPTOP_DMESG).unwrap();
    t.sanitize();
    let again = parse_dmesg(&t.lines("BIOS-e820").to_string()).unwrap();
    assert_eq!(again, t);
}
