//! The ACPI walk over a fake physical memory: an RSDP and a few tables at addresses taken from
//! the input, put in a `MemImage`; then `read_root` at the first chunk's address, `find_rsdp`
//! (EBDA pointer and 0xe0000-0xfffff), `root_from_rsdp`, the table headers, and the NFIT found
//! through the root table, parsed.
//!
//! Input: chunks of `addr: u64`, `fix: u8`, `len: u16` (little-endian) and `len` bytes (fewer
//! if the input ends). `fix` bits make the chunk well-formed where the fuzzer is unlikely to
//! get there by itself: bit 0 sets an SDT's length field to the chunk's length, bit 1 fixes
//! the SDT checksum (byte 9), bit 2 fixes both RSDP checksums (bytes 8 and 32), bit 3 puts the
//! chunk at `0xe0000 + 16 * (addr % 0x2000)` (where `find_rsdp` looks, zero-filling the rest of
//! that area so it can be read), bit 4 at `addr % 2^32`
//! (RSDT entries are 32-bit).
//!
//! Checked: nothing panics; a root table lists no null, repeated or self pointer; every table
//! handed out has its signature, its header length and a zero checksum.
#![no_main]

use firmware::acpi::{
    MemImage, PhysRead, RSDP_V1_LEN, RSDP_V2_LEN, RootTable, SDT_HEADER_LEN, Signature, checksum,
    find_rsdp, read_root, root_from_rsdp,
};
use firmware::nfit::parse_nfit;
use libfuzzer_sys::fuzz_target;

const MAX_CHUNKS: usize = 16;

fn fix_chunk(fix: u8, b: &mut [u8]) {
    if fix & 1 != 0 && b.len() >= 8 {
        let len = u32::try_from(b.len()).unwrap_or(u32::MAX);
        b[4..8].copy_from_slice(&len.to_le_bytes());
    }
    if fix & 2 != 0 && b.len() >= SDT_HEADER_LEN {
        let len = u32::from_le_bytes([b[4], b[5], b[6], b[7]]) as usize;
        let end = len.min(b.len());
        if end >= 10 {
            b[9] = 0;
            b[9] = 0u8.wrapping_sub(checksum(&b[..end]));
        }
    }
    if fix & 4 != 0 && b.len() >= RSDP_V1_LEN {
        b[8] = 0;
        b[8] = 0u8.wrapping_sub(checksum(&b[..RSDP_V1_LEN]));
        if b.len() >= RSDP_V2_LEN {
            b[32] = 0;
            b[32] = 0u8.wrapping_sub(checksum(&b[..RSDP_V2_LEN]));
        }
    }
}

fn check_root(mem: &MemImage, root: &RootTable) {
    for (i, &e) in root.entries.iter().enumerate() {
        assert_ne!(e, 0);
        assert_ne!(e, root.address);
        assert!(!root.entries[..i].contains(&e), "repeated entry {e:#x}");
    }
    assert!(root.signature == Signature::RSDT || root.signature == Signature::XSDT);
    assert_eq!(root.header.signature, root.signature);
    let _ = root.header.line(root.address).to_string();
    let _ = root.rsdp.to_string();
    for p in &root.problems {
        let _ = p.to_string();
    }
    for (pa, h) in root.headers(mem) {
        match h {
            Ok(h) => {
                let _ = h.line(pa).to_string();
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
    match root.find(mem, Signature::NFIT) {
        Ok(Some((pa, table))) => {
            assert!(root.entries.contains(&pa));
            assert!(table.len() >= SDT_HEADER_LEN);
            assert_eq!(&table[..4], b"NFIT");
            let len = u32::from_le_bytes([table[4], table[5], table[6], table[7]]) as usize;
            assert_eq!(len, table.len());
            assert_eq!(checksum(&table), 0);
            let mut copy = vec![0u8; table.len()];
            assert!(mem.read(pa, &mut copy) && copy == table);
            match parse_nfit(&table) {
                Ok(nfit) => {
                    for s in &nfit.spa_ranges {
                        let _ = s.to_string();
                    }
                }
                Err(e) => {
                    let _ = e.to_string();
                }
            }
        }
        Ok(None) => {}
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut chunks: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut bios_area = false;
    let mut rest = data;
    while rest.len() >= 11 && chunks.len() < MAX_CHUNKS {
        let mut a = [0u8; 8];
        a.copy_from_slice(&rest[..8]);
        let mut addr = u64::from_le_bytes(a);
        let fix = rest[8];
        let len = usize::from(u16::from_le_bytes([rest[9], rest[10]]));
        let body = &rest[11..];
        let take = len.min(body.len());
        let mut bytes = body[..take].to_vec();
        rest = &body[take..];
        if fix & 8 != 0 {
            addr = 0xe0000 + 16 * (addr % 0x2000);
            bios_area = true;
        } else if fix & 16 != 0 {
            addr %= 1 << 32;
        }
        fix_chunk(fix, &mut bytes);
        chunks.push((addr, bytes));
    }
    let first = chunks.first().map(|c| c.0);
    let mut mem = MemImage::new();
    if bios_area {
        // Zeroes under the chunks placed there, so that find_rsdp can read the whole area.
        mem.insert(0xe0000, vec![0u8; 0x20000]);
    }
    for (addr, bytes) in chunks {
        mem.insert(addr, bytes);
    }
    if let Some(pa) = first {
        match read_root(&mem, pa) {
            Ok(root) => check_root(&mem, &root),
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
    match find_rsdp(&mem) {
        Ok(rsdp) => {
            assert!(rsdp.address < 0x100000);
            match root_from_rsdp(&mem, rsdp) {
                Ok(root) => check_root(&mem, &root),
                Err(e) => {
                    let _ = e.to_string();
                }
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
