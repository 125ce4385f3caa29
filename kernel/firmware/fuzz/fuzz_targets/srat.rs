//! The SRAT parser and Linux's `x86_numa_init` on raw table bytes.
//!
//! Input: one mode byte, then the table. Mode bit 0 sets the header's length field to the
//! table's size, bit 1 fixes the checksum byte (so the fuzzer gets past the whole-table
//! checks), bit 2 turns on `numa=off`, bit 3 `numa=fake=N` with N = 1 + the high nibble.
//!
//! Checked: an `Err` rejects the whole table; every message is one line; the layout has at
//! least one possible node, each block's node is possible and at most 63; blocks of different
//! nodes never overlap; RAM not given to any node is below 1 MiB in all; every node is at
//! distance 10 from itself.
#![no_main]

mod table_mode;

use firmware::numa::{MAX_NUMNODES, NumaInput, numa_init};
use firmware::numa_emulation::FakeSpec;
use firmware::range::PhysRange;
use firmware::srat::parse_srat;
use libfuzzer_sys::fuzz_target;

/// RAM of QEMU's `-m 6G` on `-machine pc`: 3 GiB low (less the BIOS area), 3 GiB from 4 GiB.
const MEMORY: [PhysRange; 3] = [
    PhysRange::new(0x1000, 0x9f000),
    PhysRange::new(0x10_0000, 0xbffd_f000),
    PhysRange::new(0x1_0000_0000, 0x1_c000_0000),
];

fuzz_target!(|data: &[u8]| {
    let Some((mode, table)) = table_mode::table(data) else {
        return;
    };
    let srat = parse_srat(&table);
    if let Err(e) = &srat {
        assert!(e.rejects_table(), "{e:?}");
    }
    let l = numa_init(NumaInput {
        srat: Some(&srat),
        slit: None,
        memory: &MEMORY,
        numa_off: mode & 4 != 0,
        fake: (mode & 8 != 0).then_some(FakeSpec::Nodes(u64::from(mode >> 4) + 1)),
    });
    for (_, m) in &l.messages {
        assert!(!m.is_empty() && !m.contains('\n'), "{m:?}");
    }
    assert!(!l.possible.is_empty());
    for a in &l.memblks {
        assert!(a.nid < MAX_NUMNODES && l.possible.contains(&a.nid));
        assert!(!a.range.is_empty());
        for b in &l.memblks {
            assert!(a.nid == b.nid || !a.range.overlaps(&b.range), "{a:?} {b:?}");
        }
    }
    let lost: u64 = l
        .memory_nodes(&MEMORY)
        .iter()
        .filter(|p| p.0.is_none())
        .map(|p| p.1.size())
        .sum();
    assert!(lost < 1 << 20, "{lost:#x} bytes of RAM on no node");
    for &n in &l.possible {
        assert_eq!(l.distance(n, n), 10);
    }
});
