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

// ---- fwts checks: warnings that reject nothing ----

/// A subtable of type `typ` from its bytes after the 4-byte header.
fn raw(typ: u16, body: &[u8]) -> Vec<u8> {
    let mut s = Vec::new();
    s.extend_from_slice(&typ.to_le_bytes());
    s.extend_from_slice(&((body.len() + 4) as u16).to_le_bytes());
    s.extend_from_slice(body);
    s
}

/// An interleave structure: index, reserved, line count, line size, then `lines` offsets.
fn interleave(index: u16, reserved: u16, line_count: u32, line_size: u32, lines: usize) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&index.to_le_bytes());
    b.extend_from_slice(&reserved.to_le_bytes());
    b.extend_from_slice(&line_count.to_le_bytes());
    b.extend_from_slice(&line_size.to_le_bytes());
    for i in 0..lines {
        b.extend_from_slice(&(i as u32).to_le_bytes());
    }
    raw(2, &b)
}

/// A flush hint structure: device handle 1, `count` hints, reserved, then `hints` addresses.
fn flush(count: u16, reserved: [u8; 6], hints: usize) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&1u32.to_le_bytes());
    b.extend_from_slice(&count.to_le_bytes());
    b.extend_from_slice(&reserved);
    for i in 0..hints {
        b.extend_from_slice(&(0xfee0_0000u64 + 8 * i as u64).to_le_bytes());
    }
    raw(6, &b)
}

/// A platform capabilities structure.
fn caps(highest: u8, reserved1: [u8; 3], cap: u32, reserved2: u32) -> Vec<u8> {
    let mut b = vec![highest];
    b.extend_from_slice(&reserved1);
    b.extend_from_slice(&cap.to_le_bytes());
    b.extend_from_slice(&reserved2.to_le_bytes());
    raw(7, &b)
}

/// `t` with `f` applied to its bytes, length and checksum fixed.
fn patched(mut t: Vec<u8>, f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    f(&mut t);
    let len = t.len() as u32;
    t[4..8].copy_from_slice(&len.to_le_bytes());
    fix_checksum(&mut t);
    t
}

fn warnings(t: &[u8]) -> Vec<NfitWarning> {
    parse_nfit(t).unwrap().warnings
}

fn lines(t: &[u8]) -> Vec<alloc::string::String> {
    warnings(t).iter().map(|w| w.to_string()).collect()
}

/// First SPA range at offset 40 in `nfit(&[spa(..), ..])`.
const SPA0: usize = 40;

#[test]
fn clean_qemu_nfit_has_no_warnings() {
    // The NFIT QEMU 7.2 built for `-machine nvdimm=on` with one NVDIMM (SPA range, region
    // mapping, control region), as dumped from the guest.
    let n = parse_nfit(include_bytes!("data/qemu_four_nodes_nvdimm_NFIT.bin")).unwrap();
    assert_eq!(n.spa_ranges.len(), 1);
    assert_eq!(n.skipped, 2);
    assert!(n.problems.is_empty(), "{:?}", n.problems);
    assert!(n.warnings.is_empty(), "{:?}", n.warnings);
    // And the hand-built QEMU layout, plus the other well-formed types.
    let t = nfit(&[
        spa(2, PM, 0x1_0000_0000, 0x800_0000, None),
        spa(3, PM, 0x2_0000_0000, 0x800_0000, Some(1)),
        sub(1, 48),
        sub(4, 80),
        sub(4, 32),
        interleave(1, 0, 2, 256, 2),
        sub(3, 8),
        flush(2, [0; 6], 2),
        caps(2, [0; 3], 0x3, 0),
        raw(5, &{
            let mut b = vec![0u8; 36];
            b[0] = 3; // control region index
            b
        }),
    ]);
    assert_eq!(warnings(&t), vec![]);
}

#[test]
fn proximity_domain_is_exposed() {
    let mut s = spa(1, PM, 0x1_0000_0000, 0x800_0000, None);
    s[12..16].copy_from_slice(&7u32.to_le_bytes());
    let n = parse_nfit(&nfit(&[s])).unwrap();
    assert_eq!(n.spa_ranges[0].proximity_domain, 7);
    assert!(n.warnings.is_empty());
}

#[test]
fn table_revision_and_reserved() {
    let t = patched(nfit(&[spa(1, PM, 0x1_0000_0000, 0x800_0000, None)]), |t| {
        t[8] = 2;
        t[36] = 0x5a;
    });
    let n = parse_nfit(&t).unwrap();
    assert_eq!(n.spa_ranges.len(), 1, "warnings keep the ranges");
    assert_eq!(
        n.warnings,
        vec![
            NfitWarning::TableRevision { revision: 2 },
            NfitWarning::Reserved {
                offset: 36,
                field: "table reserved field",
                value: 0x5a
            }
        ]
    );
    assert_eq!(
        n.warnings[0].to_string(),
        "NFIT: table revision is 2, expected 1"
    );
    assert_eq!(
        n.warnings[1].to_string(),
        "NFIT: table reserved field at offset 36 is 0x5a, expected 0"
    );
}

#[test]
fn subtable_reserved_fields() {
    let mut s = spa(1, PM, 0x1_0000_0000, 0x800_0000, None);
    s[8] = 1;
    let mut memdev = sub(1, 48);
    memdev[46] = 2;
    let mut dcr = sub(4, 80);
    dcr[22] = 3;
    dcr[79] = 4;
    let mut smbios = sub(3, 8);
    smbios[4] = 5;
    let t = nfit(&[
        s,
        memdev,
        interleave(1, 6, 1, 256, 1),
        dcr,
        smbios,
        flush(0, [0, 0, 0, 0, 0, 7], 0),
        caps(0, [0, 8, 0], 0, 9),
    ]);
    let n = parse_nfit(&t).unwrap();
    assert_eq!(n.spa_ranges.len(), 1);
    let got: Vec<_> = n
        .warnings
        .iter()
        .map(|w| match *w {
            NfitWarning::Reserved { field, value, .. } => (field, value),
            _ => panic!("{w:?}"),
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("SPA range reserved field", 1),
            ("region mapping reserved field", 2),
            ("interleave reserved field", 6),
            ("control region reserved field", 3),
            ("control region reserved field (block window part)", 4 << 40),
            ("SMBIOS management information reserved field", 5),
            ("flush hint address reserved field", 7 << 40),
            ("platform capabilities reserved field", 8 << 8),
            ("platform capabilities reserved field", 9),
        ]
    );
    assert_eq!(
        n.warnings[0].to_string(),
        "NFIT: SPA range reserved field at offset 40 is 0x1, expected 0"
    );
}

#[test]
fn spa_range_index_zero() {
    let t = nfit(&[
        spa(0, PM, 0x1_0000_0000, 0x800_0000, None),
        spa(1, PM, 0x2_0000_0000, 0x800_0000, None),
    ]);
    let n = parse_nfit(&t).unwrap();
    assert_eq!(n.spa_ranges.len(), 2, "the range is kept");
    assert_eq!(
        n.warnings,
        vec![NfitWarning::SpaRangeIndexZero { offset: SPA0 }]
    );
    assert_eq!(
        n.warnings[0].to_string(),
        "NFIT: SPA range structure at offset 40 has range index 0 (only virtual disk and CD \
         regions may)"
    );
}

#[test]
fn virtual_regions_need_zero_index_flags_domain_attributes() {
    // A clean virtual disk: index, flags, proximity domain and attributes all 0.
    let mut clean = spa(
        0,
        Guid::PERSISTENT_VIRTUAL_DISK,
        0x1_0000_0000,
        0x10_0000,
        None,
    );
    clean[6..8].copy_from_slice(&0u16.to_le_bytes());
    clean[48..56].copy_from_slice(&0u64.to_le_bytes());
    assert_eq!(warnings(&nfit(&[clean.clone()])), vec![]);
    assert_eq!(
        Guid::PERSISTENT_VIRTUAL_DISK.to_string(),
        "5CEA02C9-4D07-69D3-269F-4496FBE096F9"
    );
    assert_eq!(
        Guid::VOLATILE_VIRTUAL_DISK.to_string(),
        "77AB535A-45FC-624B-5560-F7B281D1F96E"
    );
    assert_eq!(
        Guid::VOLATILE_VIRTUAL_CD.to_string(),
        "3D5ABD30-4175-87CE-6D64-D2ADE523C4BB"
    );
    assert_eq!(
        Guid::PERSISTENT_VIRTUAL_CD.to_string(),
        "08018188-42CD-BB48-100F-5387D53DED3D"
    );

    // The helper's defaults (index 5, flags 3, attributes 0x8008) plus domain 2.
    let mut bad = spa(5, Guid::VOLATILE_VIRTUAL_CD, 0x1_0000_0000, 0x10_0000, None);
    bad[12..16].copy_from_slice(&2u32.to_le_bytes());
    let w = warnings(&nfit(&[bad]));
    let fields: Vec<_> = w
        .iter()
        .map(|w| match *w {
            NfitWarning::VirtualRegionNonZero { field, value, .. } => (field, value),
            _ => panic!("{w:?}"),
        })
        .collect();
    assert_eq!(
        fields,
        vec![
            ("range index", 5),
            ("flags", 3),
            ("proximity domain", 2),
            ("memory mapping attributes", 0x8008)
        ]
    );
    assert_eq!(
        w[0].to_string(),
        "NFIT: SPA range structure at offset 40 is a volatile virtual CD region but its range \
         index is 0x5, expected 0"
    );
}

#[test]
fn spa_reserved_flag_bits() {
    let mut s = spa(1, PM, 0x1_0000_0000, 0x800_0000, None);
    s[6..8].copy_from_slice(&0x8007u16.to_le_bytes());
    let n = parse_nfit(&nfit(&[s])).unwrap();
    assert_eq!(n.spa_ranges.len(), 1);
    assert_eq!(
        n.warnings,
        vec![NfitWarning::ReservedBits {
            offset: SPA0,
            field: "SPA range flags",
            value: 0x8007,
            reserved: 0x8000
        }]
    );
    assert_eq!(
        n.warnings[0].to_string(),
        "NFIT: SPA range flags at offset 40 are 0x8007: reserved bits 0x8000 set"
    );
    // Bit 2 (location cookie valid, ACPI 6.4) is defined.
    let mut s = spa(1, PM, 0x1_0000_0000, 0x800_0000, Some(9));
    s[6..8].copy_from_slice(&0x7u16.to_le_bytes());
    assert_eq!(warnings(&nfit(&[s])), vec![]);
}

#[test]
fn spa_attributes_outside_efi_memory_set() {
    let every = EFI_MEMORY_UC
        | EFI_MEMORY_WC
        | EFI_MEMORY_WT
        | EFI_MEMORY_WB
        | EFI_MEMORY_UCE
        | EFI_MEMORY_WP
        | EFI_MEMORY_RP
        | EFI_MEMORY_XP
        | EFI_MEMORY_NV
        | EFI_MEMORY_MORE_RELIABLE
        | EFI_MEMORY_RO
        | EFI_MEMORY_SP;
    assert_eq!(every, 0x7_f01f);
    let mut ok = spa(1, PM, 0x1_0000_0000, 0x800_0000, None);
    ok[48..56].copy_from_slice(&every.to_le_bytes());
    assert_eq!(warnings(&nfit(&[ok])), vec![]);

    let attrs = EFI_MEMORY_WB | EFI_MEMORY_NV | 0x20 | (1 << 63);
    let mut s = spa(4, PM, 0x1_0000_0000, 0x800_0000, None);
    s[48..56].copy_from_slice(&attrs.to_le_bytes());
    let n = parse_nfit(&nfit(&[s])).unwrap();
    assert_eq!(n.spa_ranges[0].attributes, attrs, "kept as read");
    assert_eq!(
        n.warnings,
        vec![NfitWarning::SpaAttributes {
            offset: SPA0,
            range_index: 4,
            attributes: attrs,
            unknown: 0x20 | (1 << 63)
        }]
    );
    assert_eq!(
        n.warnings[0].to_string(),
        "NFIT: SPA range 4 at offset 40 has memory mapping attributes 0x8000000000008028 with \
         bits 0x8000000000000020 outside the EFI_MEMORY_* set"
    );
}

#[test]
fn fixed_lengths_per_type() {
    // Each fixed-size type one byte-group off; the walk goes on past each.
    let mut long_spa = spa(1, PM, 0x1_0000_0000, 0x800_0000, Some(5));
    long_spa.extend_from_slice(&[0; 8]);
    long_spa[2..4].copy_from_slice(&72u16.to_le_bytes());
    let mut bdw = sub(5, 44);
    bdw[4] = 1;
    let t = nfit(&[
        long_spa,
        sub(1, 52),
        sub(4, 40),
        bdw,
        sub(7, 20),
        spa(2, PM, 0x2_0000_0000, 0x800_0000, None),
    ]);
    let n = parse_nfit(&t).unwrap();
    assert_eq!(n.spa_ranges.len(), 2);
    let got: Vec<_> = n
        .warnings
        .iter()
        .map(|w| match *w {
            NfitWarning::BadLength {
                typ,
                length,
                expected,
                ..
            } => (typ, length, expected.to_string()),
            _ => panic!("{w:?}"),
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (0, 72, "56 or 64".into()),
            (1, 52, "48".into()),
            (4, 40, "32 or 80".into()),
            (5, 44, "40".into()),
            (7, 20, "16".into()),
        ]
    );
    assert_eq!(
        n.warnings[0].to_string(),
        "NFIT: SPA range structure (type 0) at offset 40 has length 72, expected 56 or 64"
    );
    // Too short for the fixed part: flagged, its fields are not read (no reserved or index
    // warnings from bytes it does not have), and an SPA range below 56 stays an error only.
    let mut short = spa(9, PM, 0x1000_0000, 0x1000, None);
    short.truncate(48);
    short[2..4].copy_from_slice(&48u16.to_le_bytes());
    let t = nfit(&[short, sub(1, 20), sub(5, 8), sub(3, 6)]);
    let n = parse_nfit(&t).unwrap();
    assert!(matches!(n.problems[..], [NfitError::SpaTooShort { .. }]));
    let got: Vec<_> = n.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(
        got,
        vec![
            "NFIT: region mapping structure (type 1) at offset 88 has length 20, expected 48",
            "NFIT: block data window structure (type 5) at offset 108 has length 8, expected 40",
            "NFIT: SMBIOS management information structure (type 3) at offset 116 has length 6, \
             expected at least 8",
        ]
    );
}

#[test]
fn variable_lengths_interleave_and_flush_hint() {
    // Interleave: 16 bytes plus 4 per line; flush hint: 16 plus 8 per hint. Longer is fine.
    let t = nfit(&[
        interleave(1, 0, 3, 256, 2),
        interleave(2, 0, 1, 256, 3),
        sub(2, 12),
        flush(2, [0; 6], 1),
        flush(1, [0; 6], 2),
        sub(6, 8),
    ]);
    let got: Vec<_> = warnings(&t)
        .iter()
        .map(|w| match *w {
            NfitWarning::BadLength {
                typ,
                length,
                expected,
                ..
            } => (typ, length, expected),
            _ => panic!("{w:?}"),
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (2, 24, LengthRule::AtLeast(28)),
            (2, 12, LengthRule::AtLeast(16)),
            (6, 24, LengthRule::AtLeast(32)),
            (6, 8, LengthRule::AtLeast(16)),
        ]
    );
    assert_eq!(
        lines(&t)[0],
        "NFIT: interleave structure (type 2) at offset 40 has length 24, expected at least 28"
    );
    // A huge count does not overflow the minimum.
    let t = nfit(&[
        interleave(1, 0, u32::MAX, 256, 0),
        flush(u16::MAX, [0; 6], 0),
    ]);
    let w = warnings(&t);
    assert!(matches!(
        w[..],
        [
            NfitWarning::BadLength {
                expected: LengthRule::AtLeast(0x4_0000_000c),
                ..
            },
            NfitWarning::BadLength {
                expected: LengthRule::AtLeast(524_296),
                ..
            }
        ]
    ));
}

#[test]
fn interleave_line_count_and_size() {
    let t = nfit(&[
        interleave(4, 0, 0, 256, 0),
        interleave(5, 0, 2, 0, 2),
        interleave(6, 0, 0, 0, 0),
    ]);
    let w = warnings(&t);
    assert_eq!(
        w,
        vec![
            NfitWarning::InterleaveNoLines {
                offset: 40,
                interleave_index: 4
            },
            NfitWarning::InterleaveLineSizeZero {
                offset: 56,
                interleave_index: 5,
                line_count: 2
            },
            NfitWarning::InterleaveNoLines {
                offset: 80,
                interleave_index: 6
            },
            NfitWarning::InterleaveLineSizeZero {
                offset: 80,
                interleave_index: 6,
                line_count: 0
            },
        ]
    );
    assert_eq!(
        w[0].to_string(),
        "NFIT: interleave structure 4 at offset 40 describes 0 lines"
    );
    assert_eq!(
        w[1].to_string(),
        "NFIT: interleave structure 5 at offset 56 has line size 0 (2 lines)"
    );
}

#[test]
fn other_reserved_flag_bits() {
    let mut memdev = sub(1, 48);
    memdev[44..46].copy_from_slice(&0x00c1u16.to_le_bytes());
    let mut dcr = sub(4, 80);
    dcr[18] = 0x03;
    dcr[72..74].copy_from_slice(&0x0003u16.to_le_bytes());
    let mut dcr32 = sub(4, 32);
    dcr32[18] = 0x80;
    let t = nfit(&[memdev, dcr, dcr32, caps(2, [0; 3], 0x13, 0)]);
    let got: Vec<_> = warnings(&t)
        .iter()
        .map(|w| match *w {
            NfitWarning::ReservedBits {
                field,
                value,
                reserved,
                ..
            } => (field, value, reserved),
            _ => panic!("{w:?}"),
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("region mapping state flags", 0xc1, 0x80),
            ("control region valid fields", 0x3, 0x2),
            ("control region flags", 0x3, 0x2),
            ("control region valid fields", 0x80, 0x80),
            ("platform capabilities", 0x13, 0x10),
        ]
    );
}

#[test]
fn block_data_window_region_index_zero() {
    let t = nfit(&[sub(5, 40)]);
    let w = warnings(&t);
    assert_eq!(
        w,
        vec![NfitWarning::BlockDataWindowRegionZero { offset: 40 }]
    );
    assert_eq!(
        w[0].to_string(),
        "NFIT: block data window structure at offset 40 has control region index 0"
    );
}

#[test]
fn capabilities_cache_flush_needs_memory_flush() {
    let t = nfit(&[caps(1, [0; 3], 0x1, 0), caps(1, [0; 3], 0x3, 0)]);
    let w = warnings(&t);
    assert_eq!(
        w,
        vec![NfitWarning::CapabilitiesCacheFlushWithoutMemoryFlush {
            offset: 40,
            capabilities: 1
        }]
    );
    assert!(w[0].to_string().contains("without memory controller flush"));
}

#[test]
fn unknown_subtable_type() {
    let t = nfit(&[
        sub(8, 12),
        sub(0xffff, 4),
        spa(1, PM, 0x1_0000_0000, 0x800_0000, None),
    ]);
    let n = parse_nfit(&t).unwrap();
    assert_eq!((n.spa_ranges.len(), n.skipped), (1, 2));
    assert_eq!(
        n.warnings,
        vec![
            NfitWarning::UnknownType {
                offset: 40,
                typ: 8,
                length: 12
            },
            NfitWarning::UnknownType {
                offset: 52,
                typ: 0xffff,
                length: 4
            }
        ]
    );
    assert_eq!(
        n.warnings[0].to_string(),
        "NFIT: unknown subtable type 8 at offset 40 (length 12); skipped"
    );
}

#[test]
fn warnings_on_rejected_ranges_and_every_line_is_one_line() {
    // A range rejected as an error still gets its fwts warnings; both lists are reported.
    let mut s = spa(0, PM, 0x1_0000_0000, 0, None);
    s[8] = 1;
    let n = parse_nfit(&nfit(&[s])).unwrap();
    assert!(n.spa_ranges.is_empty());
    assert!(matches!(n.problems[..], [NfitError::SpaEmpty { .. }]));
    assert_eq!(n.warnings.len(), 2);
    for w in &n.warnings {
        let l = w.to_string();
        assert!(l.starts_with("NFIT: ") && !l.contains('\n'), "{l}");
    }
}

#[test]
fn fwts_warnings_fuzz_seed() {
    // The seed make_seeds.py writes for these checks (mode byte 0, then the table).
    let seed = include_bytes!("../../fuzz/corpus/nfit/fwts_warnings");
    let n = parse_nfit(&seed[1..]).unwrap();
    assert_eq!(n.spa_ranges.len(), 1, "warnings reject nothing");
    assert!(n.problems.is_empty(), "{:?}", n.problems);
    let got: Vec<_> = n.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(
        got,
        vec![
            "NFIT: table revision is 2, expected 1",
            "NFIT: table reserved field at offset 36 is 0x1, expected 0",
            "NFIT: SPA range flags at offset 40 are 0x8003: reserved bits 0x8000 set",
            "NFIT: SPA range structure at offset 40 has range index 0 (only virtual disk and CD \
             regions may)",
            "NFIT: SPA range 0 at offset 40 has memory mapping attributes 0x10000008008 with \
             bits 0x10000000000 outside the EFI_MEMORY_* set",
            "NFIT: region mapping reserved field at offset 96 is 0x1, expected 0",
            "NFIT: region mapping state flags at offset 96 are 0x80: reserved bits 0x80 set",
            "NFIT: interleave structure 1 at offset 144 describes 0 lines",
            "NFIT: interleave structure 1 at offset 144 has line size 0 (0 lines)",
            "NFIT: flush hint address structure (type 6) at offset 160 has length 16, expected \
             at least 40",
            "NFIT: unknown subtable type 9 at offset 176 (length 8); skipped",
        ]
    );
}
