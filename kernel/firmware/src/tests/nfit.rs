use alloc::string::ToString;
use alloc::vec;
use alloc::vec::Vec;

use super::{fix_checksum, sdt};
use crate::acpi::Signature;
use crate::nfit::*;

/// An SPA range structure, 56 bytes, or 64 with a location cookie.
pub fn spa(index: u16, guid: Guid, base: u64, length: u64, cookie: Option<u64>) -> Vec<u8> {
    let len: u16 = if cookie.is_some() { 64 } else { 56 };
    let mut s = Vec::new();
    s.extend_from_slice(&0u16.to_le_bytes());
    s.extend_from_slice(&len.to_le_bytes());
    s.extend_from_slice(&index.to_le_bytes());
    s.extend_from_slice(&3u16.to_le_bytes()); // flags
    s.extend_from_slice(&[0; 4]); // reserved
    s.extend_from_slice(&0u32.to_le_bytes()); // proximity domain
    s.extend_from_slice(&guid.0);
    s.extend_from_slice(&base.to_le_bytes());
    s.extend_from_slice(&length.to_le_bytes());
    s.extend_from_slice(&0x8008u64.to_le_bytes());
    if let Some(c) = cookie {
        s.extend_from_slice(&c.to_le_bytes());
    }
    s
}

/// Any subtable: type, then `len` bytes in total.
fn sub(typ: u16, len: u16) -> Vec<u8> {
    let mut s = vec![0u8; usize::from(len).max(4)];
    s[..2].copy_from_slice(&typ.to_le_bytes());
    s[2..4].copy_from_slice(&len.to_le_bytes());
    s
}

/// An NFIT with the given subtables.
pub fn nfit(subtables: &[Vec<u8>]) -> Vec<u8> {
    let mut body = vec![0u8; 4];
    for s in subtables {
        body.extend_from_slice(s);
    }
    sdt(b"NFIT", 1, &body)
}

const PM: Guid = Guid::PERSISTENT_MEMORY;

#[test]
fn pm_guid_bytes_and_display() {
    assert_eq!(
        PM.0,
        [
            0x79, 0xD3, 0xF0, 0x66, 0xF3, 0xB4, 0x74, 0x40, 0xAC, 0x43, 0x0D, 0x33, 0x18, 0xB7,
            0x8C, 0xDB
        ]
    );
    assert_eq!(PM.to_string(), "66F0D379-B4F3-4074-AC43-0D3318B78CDB");
    assert_eq!(
        Guid::VOLATILE_MEMORY.to_string(),
        "7305944F-FDDA-44E3-B16C-3F22D252E5D0"
    );
    assert_eq!(
        Guid::CONTROL_REGION.to_string(),
        "92F701F6-13B4-405D-910B-299367E8234C"
    );
    assert_eq!(
        Guid::BLOCK_DATA_WINDOW.to_string(),
        "91AF0530-5D86-470E-A6B0-0A2DB9408249"
    );
}

#[test]
fn qemu_like_nfit() {
    // One SPA range per NVDIMM plus region mapping (type 1, 48 bytes) and control region
    // (type 4, 80 bytes) structures, as QEMU builds it.
    let t = nfit(&[
        spa(2, PM, 0x1_0000_0000, 0x800_0000, None),
        sub(1, 48),
        sub(4, 80),
    ]);
    let n = parse_nfit(&t).unwrap();
    assert_eq!(n.header.signature, Signature::NFIT);
    assert_eq!(n.skipped, 2);
    assert!(n.problems.is_empty());
    let pm: Vec<_> = n.persistent().collect();
    assert_eq!(pm.len(), 1);
    let s = pm[0];
    assert_eq!(
        (
            s.range_index,
            s.flags,
            s.proximity_domain,
            s.base,
            s.length,
            s.attributes
        ),
        (2, 3, 0, 0x1_0000_0000, 0x800_0000, 0x8008)
    );
    assert_eq!(s.location_cookie, None);
    assert_eq!(
        s.to_string(),
        "NFIT: SPA range 2 [mem 0x0000000100000000-0x0000000107ffffff] persistent memory, \
         proximity domain 0, flags 0x3, attributes 0x8008"
    );
}

#[test]
fn spa_64_byte_form_and_other_guids() {
    let t = nfit(&[
        spa(1, Guid::VOLATILE_MEMORY, 0x2000_0000, 0x1000_0000, None),
        spa(2, PM, 0x1_0000_0000, 0x800_0000, Some(0xabcd)),
        spa(3, Guid([7; 16]), 0x3_0000_0000, 0x1000, None),
        sub(99, 12),
    ]);
    let n = parse_nfit(&t).unwrap();
    assert_eq!(n.spa_ranges.len(), 3);
    assert_eq!(n.skipped, 1);
    let pm: Vec<_> = n.persistent().collect();
    assert_eq!(pm.len(), 1);
    assert_eq!(pm[0].location_cookie, Some(0xabcd));
    assert!(n.spa_ranges[0].to_string().contains("volatile memory"));
    assert!(
        n.spa_ranges[2]
            .to_string()
            .contains("type 07070707-0707-0707-0707-070707070707")
    );
    // A structure longer than 56 but not 64 bytes is read in its 56-byte form (Linux's
    // sizeof_spa).
    let mut long = spa(4, PM, 0x1000_0000, 0x1000, Some(5));
    long.extend_from_slice(&[0; 8]);
    long[2..4].copy_from_slice(&72u16.to_le_bytes());
    let n = parse_nfit(&nfit(&[long])).unwrap();
    assert_eq!(n.spa_ranges[0].location_cookie, None);
}

#[test]
fn whole_table_rejections() {
    let good = nfit(&[spa(1, PM, 0x1_0000_0000, 0x800_0000, None)]);

    let mut bad = good.clone();
    bad[60] ^= 0x40;
    let e = parse_nfit(&bad).unwrap_err();
    assert!(matches!(e, NfitError::BadChecksum { .. }));
    assert!(e.rejects_table());
    assert!(e.to_string().starts_with("NFIT: bad checksum"));
    assert!(e.to_string().ends_with("table rejected"));

    let e = parse_nfit(&good[..good.len() - 8]).unwrap_err();
    assert_eq!(
        e,
        NfitError::Truncated {
            header_length: good.len() as u32,
            available: good.len() - 8
        }
    );
    assert!(e.to_string().contains("truncated"));

    assert_eq!(
        parse_nfit(&good[..20]),
        Err(NfitError::TooShort { length: 20 })
    );
    let e = parse_nfit(&sdt(b"NFIT", 1, &[])).unwrap_err();
    assert_eq!(e, NfitError::TooShort { length: 36 });

    let e = parse_nfit(&sdt(b"SRAT", 1, &[0; 4])).unwrap_err();
    assert!(e.to_string().contains("signature is \"SRAT\""));

    // Bytes past the header length are ignored (only the header's length is summed).
    let mut longer = good.clone();
    longer.extend_from_slice(&[0xff; 7]);
    assert_eq!(parse_nfit(&longer).unwrap().spa_ranges.len(), 1);
}

#[test]
fn rest_of_table_rejections_keep_earlier_ranges() {
    let first = spa(1, PM, 0x1_0000_0000, 0x800_0000, None);
    let after = spa(2, PM, 0x2_0000_0000, 0x800_0000, None);

    // Length zero.
    let n = parse_nfit(&nfit(&[first.clone(), sub(4, 0), after.clone()])).unwrap();
    assert_eq!(n.spa_ranges.len(), 1);
    assert_eq!(
        n.problems,
        vec![NfitError::BadSubtableLength {
            offset: 96,
            typ: 4,
            length: 0
        }]
    );
    assert_eq!(
        n.problems[0].to_string(),
        "NFIT: subtable type 4 at offset 96 has length 0 (below its 4-byte header); rest of \
         table ignored"
    );
    assert!(!n.problems[0].rejects_table());

    // Length 2: below the subtable header.
    let n = parse_nfit(&nfit(&[first.clone(), sub(4, 2)])).unwrap();
    assert!(matches!(
        n.problems[..],
        [NfitError::BadSubtableLength { length: 2, .. }]
    ));

    // Past the end.
    let mut t = nfit(&[first.clone(), sub(1, 48)]);
    let off = t.len() - 48;
    t[off + 2..off + 4].copy_from_slice(&200u16.to_le_bytes());
    fix_checksum(&mut t);
    let n = parse_nfit(&t).unwrap();
    assert_eq!(n.spa_ranges.len(), 1);
    assert_eq!(
        n.problems,
        vec![NfitError::PastEnd {
            offset: 96,
            typ: 1,
            length: 200,
            remaining: 48
        }]
    );
    assert!(n.problems[0].to_string().contains("runs past the end"));

    // An SPA range cut short by the end of the table.
    let mut t = nfit(core::slice::from_ref(&first));
    t.extend_from_slice(&after[..30]);
    let len = t.len() as u32;
    t[4..8].copy_from_slice(&len.to_le_bytes());
    fix_checksum(&mut t);
    let n = parse_nfit(&t).unwrap();
    assert_eq!(n.spa_ranges.len(), 1);
    assert!(matches!(
        n.problems[..],
        [NfitError::PastEnd {
            length: 56,
            remaining: 30,
            ..
        }]
    ));

    // Stray bytes.
    let mut t = nfit(&[first]);
    t.extend_from_slice(&[1, 2, 3]);
    let len = t.len() as u32;
    t[4..8].copy_from_slice(&len.to_le_bytes());
    fix_checksum(&mut t);
    let n = parse_nfit(&t).unwrap();
    assert_eq!(
        n.problems,
        vec![NfitError::TrailingBytes {
            offset: 96,
            remaining: 3
        }]
    );
}

#[test]
fn single_range_rejections() {
    let mut short = spa(9, PM, 0x1000_0000, 0x1000, None);
    short.truncate(48);
    short[2..4].copy_from_slice(&48u16.to_le_bytes());
    let t = nfit(&[
        short,
        spa(1, PM, 0x1_0000_0000, 0, None),
        spa(2, PM, u64::MAX - 0xfff, 0x2000, None),
        spa(3, PM, (1 << 52) - 0x1000, 0x2000, None),
        spa(4, PM, (1 << 52) - 0x1000, 0x1000, None),
        spa(5, PM, 0x1_0000_0000, 0x800_0000, None),
    ]);
    let n = parse_nfit(&t).unwrap();
    let idx: Vec<_> = n.spa_ranges.iter().map(|s| s.range_index).collect();
    assert_eq!(
        idx,
        vec![4, 5],
        "a range ending exactly at 2^52 is accepted"
    );
    let lines: Vec<_> = n.problems.iter().map(|p| p.to_string()).collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_eq!(
        lines[0],
        "NFIT: SPA range structure at offset 40 is 48 bytes, shorter than 56; range ignored"
    );
    assert_eq!(
        lines[1],
        "NFIT: SPA range 1 at 0x100000000 has length 0; range ignored"
    );
    assert!(lines[2].contains("overflows 64 bits"));
    assert!(lines[3].contains("ends above 2^52 (MAXPHYADDR)"));
}

#[test]
fn empty_subtable_list_is_fine() {
    let n = parse_nfit(&nfit(&[])).unwrap();
    assert!(n.spa_ranges.is_empty() && n.problems.is_empty() && n.skipped == 0);
}
