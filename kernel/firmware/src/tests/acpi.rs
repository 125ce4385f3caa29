use alloc::string::ToString;
use alloc::vec;
use alloc::vec::Vec;

use super::{fix_checksum, sdt};
use crate::acpi::*;

const RSDP_PA: u64 = 0xf5a40;
const RSDT_PA: u64 = 0x1ffe_1000;
const XSDT_PA: u64 = 0x1ffe_2000;
const FACP_PA: u64 = 0x1ffe_3000;
const NFIT_PA: u64 = 0x1_0000_0000 - 0x2000;
const NFIT_HIGH_PA: u64 = 0x1_2000_0000;

fn rsdp(revision: u8, rsdt: u32, xsdt: u64) -> Vec<u8> {
    let mut r = Vec::new();
    r.extend_from_slice(b"RSD PTR ");
    r.push(0);
    r.extend_from_slice(b"BOCHS ");
    r.push(revision);
    r.extend_from_slice(&rsdt.to_le_bytes());
    if revision >= 2 {
        r.extend_from_slice(&36u32.to_le_bytes());
        r.extend_from_slice(&xsdt.to_le_bytes());
        r.extend_from_slice(&[0, 0, 0, 0]);
    }
    r[8] = 0u8.wrapping_sub(checksum(&r[..20]));
    if revision >= 2 {
        r[32] = 0u8.wrapping_sub(checksum(&r));
    }
    r
}

fn rsdt(entries: &[u32]) -> Vec<u8> {
    let body: Vec<u8> = entries.iter().flat_map(|e| e.to_le_bytes()).collect();
    sdt(b"RSDT", 1, &body)
}

fn xsdt(entries: &[u64]) -> Vec<u8> {
    let body: Vec<u8> = entries.iter().flat_map(|e| e.to_le_bytes()).collect();
    sdt(b"XSDT", 1, &body)
}

fn nfit_table() -> Vec<u8> {
    sdt(b"NFIT", 1, &[0; 4])
}

/// SeaBIOS-like memory: RSDP revision 0 -> RSDT -> FACP, NFIT.
fn seabios() -> MemImage {
    let mut m = MemImage::new();
    m.insert(RSDP_PA, rsdp(0, RSDT_PA as u32, 0));
    m.insert(RSDT_PA, rsdt(&[FACP_PA as u32, NFIT_PA as u32]));
    m.insert(FACP_PA, sdt(b"FACP", 1, &[0; 80]));
    m.insert(NFIT_PA, nfit_table());
    m
}

/// OVMF-like memory: RSDP revision 2 -> XSDT (64-bit entries, NFIT above 4 GiB), with an
/// RSDT that lists only the FACP.
fn ovmf() -> MemImage {
    let mut m = MemImage::new();
    m.insert(RSDP_PA, rsdp(2, RSDT_PA as u32, XSDT_PA));
    m.insert(RSDT_PA, rsdt(&[FACP_PA as u32]));
    m.insert(XSDT_PA, xsdt(&[FACP_PA, NFIT_HIGH_PA]));
    m.insert(FACP_PA, sdt(b"FACP", 1, &[0; 80]));
    m.insert(NFIT_HIGH_PA, nfit_table());
    m
}

#[test]
fn rsdp_revision_0_walks_the_rsdt() {
    let m = seabios();
    let root = read_root(&m, RSDP_PA).unwrap();
    assert_eq!(root.rsdp.revision, 0);
    assert_eq!(root.signature, Signature::RSDT);
    assert_eq!(root.address, RSDT_PA);
    assert_eq!(root.entries, vec![FACP_PA, NFIT_PA]);
    assert!(root.problems.is_empty());
    let (pa, nfit) = root.find(&m, Signature::NFIT).unwrap().unwrap();
    assert_eq!(pa, NFIT_PA);
    assert_eq!(nfit, nfit_table());
    assert_eq!(root.find(&m, Signature(*b"SRAT")).unwrap(), None);
    assert_eq!(
        root.rsdp.to_string(),
        "ACPI: RSDP 0x00000000000F5A40 000014 (v00 BOCHS )"
    );
    let headers = root.headers(&m);
    assert_eq!(
        headers[1]
            .1
            .as_ref()
            .unwrap()
            .line(headers[1].0)
            .to_string(),
        "ACPI: NFIT 0x00000000FFFFE000 000028 (v01 BOCHS  BXPC     00000001 BXPC 00000001)"
    );
}

#[test]
fn rsdp_revision_2_walks_the_xsdt() {
    let m = ovmf();
    let root = read_root(&m, RSDP_PA).unwrap();
    assert_eq!(root.rsdp.revision, 2);
    assert_eq!(root.rsdp.xsdt_address, XSDT_PA);
    assert_eq!(root.signature, Signature::XSDT);
    assert_eq!(root.entries, vec![FACP_PA, NFIT_HIGH_PA]);
    let (pa, _) = root.find(&m, Signature::NFIT).unwrap().unwrap();
    assert_eq!(pa, NFIT_HIGH_PA);
}

#[test]
fn broken_xsdt_falls_back_to_rsdt() {
    let mut m = ovmf();
    let mut bad = xsdt(&[FACP_PA]);
    bad[20] ^= 0xff;
    m.insert(XSDT_PA, bad);
    let root = read_root(&m, RSDP_PA).unwrap();
    assert_eq!(root.signature, Signature::RSDT);
    assert_eq!(root.problems.len(), 1);
    assert!(matches!(root.problems[0], AcpiError::BadChecksum { .. }));
    assert!(
        root.problems[0]
            .to_string()
            .contains("XSDT at 0x1ffe2000: bad checksum")
    );
}

#[test]
fn broken_xsdt_without_rsdt_is_an_error() {
    let mut m = MemImage::new();
    m.insert(RSDP_PA, rsdp(2, 0, XSDT_PA));
    assert_eq!(
        read_root(&m, RSDP_PA),
        Err(AcpiError::Unreadable {
            what: "ACPI table header",
            addr: XSDT_PA,
            len: 36
        })
    );
    let mut m = MemImage::new();
    m.insert(RSDP_PA, rsdp(0, 0, 0));
    let e = read_root(&m, RSDP_PA).unwrap_err();
    assert_eq!(e, AcpiError::NoRootTable { addr: RSDP_PA });
    assert!(e.to_string().contains("no RSDT or XSDT address"));
}

#[test]
fn rsdp_errors() {
    let m = MemImage::new();
    let e = read_rsdp(&m, RSDP_PA).unwrap_err();
    assert!(
        e.to_string()
            .contains("cannot read RSDP at 0xf5a40 (20 bytes)")
    );

    let mut m = MemImage::new();
    let mut r = rsdp(0, RSDT_PA as u32, 0);
    r[10] ^= 1;
    m.insert(RSDP_PA, r);
    let e = read_rsdp(&m, RSDP_PA).unwrap_err();
    assert!(matches!(
        e,
        AcpiError::BadRsdpChecksum {
            extended: false,
            ..
        }
    ));
    assert!(e.to_string().contains("20-byte checksum is wrong"));

    let mut m = MemImage::new();
    let mut r = rsdp(2, RSDT_PA as u32, XSDT_PA);
    r[24] ^= 1; // XSDT address: only the extended checksum covers it
    m.insert(RSDP_PA, r);
    let e = read_rsdp(&m, RSDP_PA).unwrap_err();
    assert!(matches!(
        e,
        AcpiError::BadRsdpChecksum { extended: true, .. }
    ));
    assert!(
        e.to_string()
            .contains("extended (36-byte) checksum is wrong")
    );

    let mut m = MemImage::new();
    m.insert(RSDP_PA, rsdp(2, RSDT_PA as u32, XSDT_PA)[..20].to_vec());
    assert!(matches!(
        read_rsdp(&m, RSDP_PA),
        Err(AcpiError::Unreadable { len: 36, .. })
    ));

    let mut m = MemImage::new();
    let mut r = rsdp(0, RSDT_PA as u32, 0);
    r[0] = b'X';
    m.insert(RSDP_PA, r);
    assert_eq!(
        read_rsdp(&m, RSDP_PA),
        Err(AcpiError::BadRsdpSignature { addr: RSDP_PA })
    );
}

#[test]
fn table_errors() {
    // Wrong signature where the RSDT should be.
    let mut m = seabios();
    m.insert(RSDT_PA, sdt(b"FACP", 1, &[]));
    let e = read_root(&m, RSDP_PA).unwrap_err();
    assert!(matches!(e, AcpiError::BadSignature { .. }));
    assert!(
        e.to_string()
            .contains("has signature \"FACP\", expected RSDT")
    );

    // Length below the header.
    let mut m = seabios();
    let mut t = rsdt(&[]);
    t[4..8].copy_from_slice(&20u32.to_le_bytes());
    fix_checksum(&mut t);
    m.insert(RSDT_PA, t);
    let e = read_root(&m, RSDP_PA).unwrap_err();
    assert_eq!(
        e,
        AcpiError::TooShort {
            sig: Signature::RSDT,
            addr: RSDT_PA,
            length: 20
        }
    );
    assert!(e.to_string().contains("shorter than the 36-byte header"));

    // Absurd length.
    let mut m = seabios();
    let mut t = rsdt(&[]);
    t[4..8].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
    m.insert(RSDT_PA, t);
    let e = read_root(&m, RSDP_PA).unwrap_err();
    assert!(matches!(e, AcpiError::TooLong { .. }));
    assert!(e.to_string().contains("exceeds the 1048576-byte limit"));

    // Header claims more bytes than memory holds.
    let mut m = seabios();
    let mut t = rsdt(&[FACP_PA as u32]);
    t[4..8].copy_from_slice(&0x100u32.to_le_bytes());
    m.insert(RSDT_PA, t);
    assert!(matches!(
        read_root(&m, RSDP_PA),
        Err(AcpiError::Unreadable { len: 0x100, .. })
    ));

    // NFIT with a bad checksum: find reports it.
    let mut m = seabios();
    let mut n = nfit_table();
    n[36] = 1;
    m.insert(NFIT_PA, n);
    let root = read_root(&m, RSDP_PA).unwrap();
    let e = root.find(&m, Signature::NFIT).unwrap_err();
    assert_eq!(
        e.to_string(),
        "ACPI: NFIT at 0xffffe000: bad checksum (bytes sum to 0x01, expected 0); table ignored"
    );
}

#[test]
fn pointer_loops_null_and_unreadable_entries() {
    let mut m = seabios();
    m.insert(
        RSDT_PA,
        rsdt(&[
            0,
            RSDT_PA as u32,
            FACP_PA as u32,
            0x7000_0000,
            FACP_PA as u32,
            NFIT_PA as u32,
        ]),
    );
    let root = read_root(&m, RSDP_PA).unwrap();
    assert_eq!(root.entries, vec![FACP_PA, 0x7000_0000, NFIT_PA]);
    assert_eq!(
        root.problems,
        vec![
            AcpiError::PointerLoop {
                root: Signature::RSDT,
                index: 1,
                target: RSDT_PA
            },
            AcpiError::PointerLoop {
                root: Signature::RSDT,
                index: 4,
                target: FACP_PA
            }
        ]
    );
    assert!(root.problems[0].to_string().contains("pointer loop"));
    // The unreadable entry is skipped; NFIT is still found.
    assert_eq!(root.find(&m, Signature::NFIT).unwrap().unwrap().0, NFIT_PA);
    assert!(root.headers(&m)[1].1.is_err());
}

#[test]
fn rsdt_with_partial_trailing_entry() {
    let mut m = seabios();
    let mut body: Vec<u8> = FACP_PA.to_le_bytes()[..4].to_vec();
    body.extend_from_slice(&[1, 2]);
    m.insert(RSDT_PA, sdt(b"RSDT", 1, &body));
    let root = read_root(&m, RSDP_PA).unwrap();
    assert_eq!(root.entries, vec![FACP_PA]);
}

#[test]
fn find_rsdp_scans_bios_areas() {
    let mut m = MemImage::new();
    let mut area = vec![0u8; 0x20000];
    // A candidate with a bad checksum first, then the real one.
    let mut bad = rsdp(0, 1, 0);
    bad[8] ^= 1;
    area[0x100..0x100 + 20].copy_from_slice(&bad);
    let off = (RSDP_PA - 0xe0000) as usize;
    area[off..off + 20].copy_from_slice(&rsdp(0, RSDT_PA as u32, 0));
    m.insert(0xe0000, area);
    m.insert(0x40e, vec![0, 0]);
    assert_eq!(find_rsdp(&m).unwrap().address, RSDP_PA);

    // In the EBDA.
    let mut m = MemImage::new();
    m.insert(0x40e, 0x9fc0u16.to_le_bytes().to_vec());
    let mut ebda = vec![0u8; 1024];
    ebda[0x10..0x10 + 36].copy_from_slice(&rsdp(2, RSDT_PA as u32, XSDT_PA));
    m.insert(0x9fc00, ebda);
    assert_eq!(find_rsdp(&m).unwrap().address, 0x9fc10);

    assert_eq!(find_rsdp(&MemImage::new()), Err(AcpiError::RsdpNotFound));
}

/// Fuzzing (target `acpi`) found an EBDA segment of 0xffff making the scan read 0xffff0-0x1003ef
/// and return an RSDP above 1 MiB, in RAM. Like ACPICA, an EBDA at or above 0xa0000 is ignored
/// and the window never passes 0xa0000.
#[test]
fn find_rsdp_ignores_an_ebda_outside_low_memory() {
    let mut m = MemImage::new();
    m.insert(0x40e, 0xffffu16.to_le_bytes().to_vec());
    let mut above = vec![0u8; 1024];
    above[0x20..0x20 + 20].copy_from_slice(&rsdp(0, RSDT_PA as u32, 0));
    m.insert(0xffff0, above);
    assert_eq!(find_rsdp(&m), Err(AcpiError::RsdpNotFound));

    // An EBDA 0x100 bytes below 0xa0000: only those 0x100 bytes are scanned.
    let mut m = MemImage::new();
    m.insert(0x40e, 0x9ff0u16.to_le_bytes().to_vec());
    let mut ebda = vec![0u8; 0x100];
    ebda[0xe0..0xe0 + 20].copy_from_slice(&rsdp(0, RSDT_PA as u32, 0));
    m.insert(0x9ff00, ebda);
    assert_eq!(find_rsdp(&m).unwrap().address, 0x9ffe0);
}

#[test]
fn mem_image_reads_across_chunks_and_fails_outside() {
    let mut m = MemImage::new();
    m.insert(0x1000, vec![1, 2, 3, 4]);
    m.insert(0x1004, vec![5, 6]);
    let mut buf = [0u8; 6];
    assert!(m.read(0x1000, &mut buf));
    assert_eq!(buf, [1, 2, 3, 4, 5, 6]);
    assert!(!m.read(0x1001, &mut buf));
    assert!(!m.read(u64::MAX, &mut [0u8; 2]));
    assert!(m.read(0x5000, &mut []));
    m.insert(0x1002, vec![9]);
    let mut b = [0u8; 3];
    assert!(m.read(0x1001, &mut b));
    assert_eq!(b, [2, 9, 4]);
}

#[test]
fn signature_display_escapes() {
    assert_eq!(Signature(*b"NF\x01T").to_string(), "NF?T");
    assert_eq!(Signature(*b"AB\0\0").to_string(), "AB  ");
}
