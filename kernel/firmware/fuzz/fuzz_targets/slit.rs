//! The SLIT parser on raw table bytes, applied to a fixed four-node SRAT (QEMU's layout with
//! PXMs 0-3, node 3 memoryless).
//!
//! Input: one mode byte, then the table; mode bits 0 and 1 fix the length field and the
//! checksum as in the `srat` target.
//!
//! Checked: a valid table has N×N entries, 10 on the diagonal and more elsewhere; a
//! rejection is one line starting with Linux's `ACPI: SLIT table looks invalid. Not used.`;
//! the layout's distances are the table's for mapped PXMs when valid, and 10/20 otherwise.
#![no_main]

mod table_mode;

use firmware::acpi::checksum;
use firmware::numa::{NumaInput, numa_init};
use firmware::range::PhysRange;
use firmware::slit::parse_slit;
use firmware::srat::{Srat, SratError, parse_srat};
use libfuzzer_sys::fuzz_target;

/// 768 MiB of RAM: 256 MiB on each of nodes 0-2.
const MEMORY: [PhysRange; 2] = [
    PhysRange::new(0x1000, 0x9f000),
    PhysRange::new(0x10_0000, 0x3000_0000),
];

fn srat() -> Result<Srat, SratError> {
    let mut t = b"SRAT".to_vec();
    t.extend_from_slice(&0u32.to_le_bytes());
    t.extend_from_slice(&[1, 0]);
    t.extend_from_slice(&[0; 26]);
    t.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    for pxm in 0u8..4 {
        t.extend_from_slice(&[0, 16, pxm, pxm, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    }
    for pxm in 0u32..3 {
        let mut m = vec![1u8, 40];
        m.extend_from_slice(&pxm.to_le_bytes());
        m.extend_from_slice(&[0; 2]);
        m.extend_from_slice(&(u64::from(pxm) << 28).to_le_bytes());
        m.extend_from_slice(&(1u64 << 28).to_le_bytes());
        m.extend_from_slice(&[0; 4]);
        m.extend_from_slice(&1u32.to_le_bytes());
        m.extend_from_slice(&[0; 8]);
        t.extend_from_slice(&m);
    }
    let len = t.len() as u32;
    t[4..8].copy_from_slice(&len.to_le_bytes());
    t[9] = 0u8.wrapping_sub(checksum(&t));
    parse_srat(&t)
}

fuzz_target!(|data: &[u8]| {
    let Some((_, table)) = table_mode::table(data) else {
        return;
    };
    let slit = parse_slit(&table);
    match &slit {
        Ok(s) => {
            assert_eq!(s.entries.len(), s.count * s.count);
            for i in 0..s.count {
                for j in 0..s.count {
                    let d = s.distance(i, j).unwrap();
                    assert!(if i == j { d == 10 } else { d > 10 });
                }
            }
        }
        Err(e) => {
            let m = e.to_string();
            assert!(
                m.starts_with("ACPI: SLIT table looks invalid. Not used.") && !m.contains('\n')
            );
        }
    }
    let srat = srat();
    let l = numa_init(NumaInput {
        srat: Some(&srat),
        slit: Some(&slit),
        memory: &MEMORY,
        numa_off: false,
        fake: None,
    });
    assert_eq!(l.possible, [0, 1, 2, 3]);
    for a in 0..4 {
        for b in 0..4 {
            let want = match &slit {
                Ok(s) if a < s.count && b < s.count => s.distance(a, b).unwrap(),
                _ if a == b => 10,
                _ => 20,
            };
            assert_eq!(l.distance(a, b), want, "{a} -> {b}");
        }
    }
});
