use alloc::string::ToString;
use alloc::vec;
use alloc::vec::Vec;

use super::table;
use crate::e820::{E820Type, RegionKind, e820_from_regions};
use crate::nfit::{Guid, SpaRange};
use crate::pmem::*;
use crate::range::PhysRange;

const G: u64 = 1 << 30;
const M: u64 = 1 << 20;

fn spa(index: u16, guid: Guid, base: u64, length: u64) -> SpaRange {
    SpaRange {
        range_index: index,
        flags: 3,
        proximity_domain: 1,
        guid,
        base,
        length,
        attributes: 0x8008,
        location_cookie: None,
    }
}

fn ranges(v: &[PmemRange]) -> Vec<(u64, u64, PmemSource)> {
    v.iter()
        .map(|p| (p.range.start, p.range.end, p.source))
        .collect()
}

#[test]
fn e820_types_7_and_12() {
    let e = table(&[
        (0, G, 1),
        (G, 2 * G, 12),
        (2 * G, 3 * G, 12),
        (4 * G, 5 * G, 7),
    ]);
    let (p, r) = collect_persistent(&e, &[]);
    assert!(r.is_empty());
    assert_eq!(
        ranges(&p),
        vec![
            (G, 2 * G, PmemSource::E820(E820Type::Pram)),
            (2 * G, 3 * G, PmemSource::E820(E820Type::Pram)),
            (4 * G, 5 * G, PmemSource::E820(E820Type::Pmem)),
        ]
    );
    assert!(p[0].is_legacy());
    assert_eq!(p[0].iomem_name(), "Persistent Memory (legacy)");
    assert_eq!(p[2].iomem_name(), "Persistent Memory");
    assert_eq!(
        p[0].to_string(),
        "pmem: [mem 0x0000000040000000-0x000000007fffffff] (e820 type 12)"
    );
}

#[test]
fn uefi_type_14_arrives_as_type_7() {
    let map = e820_from_regions([
        (0, 0x9f000, RegionKind::Usable),
        (0x1_0000_0000, 0x1_0800_0000, RegionKind::UnknownUefi(14)),
    ]);
    let (p, r) = collect_persistent(&map.e820, &[]);
    assert!(r.is_empty());
    assert_eq!(
        ranges(&p),
        vec![(
            0x1_0000_0000,
            0x1_0800_0000,
            PmemSource::E820(E820Type::Pmem)
        )]
    );
}

#[test]
fn nfit_only_keeps_metadata_and_ignores_other_guids() {
    let e = table(&[(0, 512 * M, 1)]);
    let (p, r) = collect_persistent(
        &e,
        &[
            spa(1, Guid::PERSISTENT_MEMORY, 4 * G, 128 * M),
            spa(2, Guid::VOLATILE_MEMORY, 8 * G, 128 * M),
            spa(3, Guid::CONTROL_REGION, 0, 128 * M),
        ],
    );
    assert!(r.is_empty(), "non-PM GUIDs are not checked against RAM");
    assert_eq!(ranges(&p), vec![(4 * G, 4 * G + 128 * M, PmemSource::Nfit)]);
    assert_eq!(
        p[0].nfit,
        Some(NfitInfo {
            range_index: 1,
            proximity_domain: 1,
            flags: 3
        })
    );
    assert_eq!(
        p[0].to_string(),
        "pmem: [mem 0x0000000100000000-0x0000000107ffffff] (NFIT), range index 1, proximity \
         domain 1, flags 0x3"
    );
}

#[test]
fn nfit_and_e820_describing_the_same_memory_merge() {
    let e = table(&[(0, G, 1), (4 * G, 5 * G, 7), (6 * G, 7 * G, 12)]);
    let (p, r) = collect_persistent(
        &e,
        &[
            spa(1, Guid::PERSISTENT_MEMORY, 4 * G, G),
            spa(2, Guid::PERSISTENT_MEMORY, 6 * G + G / 2, G),
            spa(3, Guid::PERSISTENT_MEMORY, 8 * G, G),
            spa(4, Guid::PERSISTENT_MEMORY, 9 * G, G),
        ],
    );
    assert!(r.is_empty());
    assert_eq!(
        ranges(&p),
        vec![
            (4 * G, 5 * G, PmemSource::NfitAndE820(E820Type::Pmem)),
            (
                6 * G,
                7 * G + G / 2,
                PmemSource::NfitAndE820(E820Type::Pram)
            ),
            (8 * G, 9 * G, PmemSource::Nfit),
            (9 * G, 10 * G, PmemSource::Nfit),
        ]
    );
    assert_eq!(p[0].nfit.unwrap().range_index, 1);
    assert_eq!(p[1].nfit.unwrap().range_index, 2);
    assert!(!p[1].is_legacy(), "NFIT-described memory is not legacy");
    assert_eq!(
        p[1].to_string().split(',').next().unwrap(),
        "pmem: [mem 0x0000000180000000-0x00000001dfffffff] (NFIT + e820 type 12)"
    );
}

#[test]
fn range_over_ram_is_refused_naming_both() {
    let e = table(&[(0, 512 * M, 1), (G, 2 * G, 7)]);
    let (p, r) = collect_persistent(
        &e,
        &[
            spa(1, Guid::PERSISTENT_MEMORY, 256 * M, 512 * M),
            spa(2, Guid::PERSISTENT_MEMORY, G, G),
        ],
    );
    assert_eq!(
        ranges(&p),
        vec![(G, 2 * G, PmemSource::NfitAndE820(E820Type::Pmem))]
    );
    assert_eq!(
        r,
        vec![Rejection {
            range: PhysRange::new(256 * M, 768 * M),
            source: PmemSource::Nfit,
            ram: PhysRange::new(0, 512 * M),
        }]
    );
    assert_eq!(
        r[0].to_string(),
        "pmem: refusing persistent range [mem 0x0000000010000000-0x000000002fffffff] (NFIT): it \
         overlaps System RAM [mem 0x0000000000000000-0x000000001fffffff]"
    );
}

#[test]
fn unsanitized_overlap_of_ram_and_pmem_is_refused() {
    let e = table(&[(0, 512 * M, 1), (256 * M, 320 * M, 12)]);
    let (p, r) = collect_persistent(&e, &[]);
    assert!(p.is_empty());
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].source, PmemSource::E820(E820Type::Pram));
}

#[test]
fn soft_reserved_beside_pmem_and_ranges_above_1tib() {
    const T: u64 = 1 << 40;
    let mut e = table(&[
        (0, G, 1),
        (4 * G, 8 * G, 7),
        (8 * G, 12 * G, 0xefff_ffff),
        (2 * T, 2 * T + 64 * G, 12),
    ]);
    e.sanitize();
    let (p, r) = collect_persistent(&e, &[spa(7, Guid::PERSISTENT_MEMORY, 3 * T, 16 * G)]);
    assert!(r.is_empty());
    assert_eq!(
        ranges(&p),
        vec![
            (4 * G, 8 * G, PmemSource::E820(E820Type::Pmem)),
            (2 * T, 2 * T + 64 * G, PmemSource::E820(E820Type::Pram)),
            (3 * T, 3 * T + 16 * G, PmemSource::Nfit),
        ]
    );
    let (tree, conflicts) = crate::iomem::IomemTree::from_e820(&e, &p);
    assert!(conflicts.is_empty());
    assert_eq!(
        tree.to_string(),
        "\
00000000-3fffffff : System RAM
100000000-1ffffffff : Persistent Memory
200000000-2ffffffff : Soft Reserved
20000000000-20fffffffff : Persistent Memory (legacy)
30000000000-303ffffffff : Persistent Memory
"
    );
}
