//! The MADT parser and Linux's CPU enumeration (`smp_config`) on raw table bytes.
//!
//! Input: one mode byte, then the table. Mode bit 0 sets the header's length field to the
//! table's size, bit 1 fixes the checksum byte (shared with the other table targets); bit 2
//! puts the local APIC in x2APIC mode, bit 3 forces the online-capable rule on, bit 4 off;
//! the high three bits give NR_CPUS = 1 + 2 × that (1 to 15) and the boot CPU's APIC id.
//!
//! Checked: an `Err` rejects the whole table; a walk problem never does; every message is one
//! line; the entries re-serialised (standard lengths) parse back to the same entries; the CPU
//! list has the boot CPU as CPU 0, no APIC id twice, at most `possible` CPUs, and `possible`
//! stays within NR_CPUS; the last line is `smpboot: Allowing N CPUs, M hotplug CPUs`.
#![no_main]

mod table_mode;

use firmware::madt::{CpuPolicy, build_madt, parse_madt, smp_config};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((mode, table)) = table_mode::table(data) else {
        return;
    };
    let madt = parse_madt(&table);
    match &madt {
        Err(e) => assert!(e.rejects_table(), "{e:?}"),
        Ok(m) => {
            if let Some(p) = &m.problem {
                assert!(!p.rejects_table(), "{p:?}");
            }
            let again = build_madt(m.header.revision, m.local_apic_address, m.flags, &m.entries);
            let back = parse_madt(&again).expect("a built table parses");
            assert_eq!(back.entries, m.entries);
            assert!(back.problem.is_none());
        }
    }
    let nr_cpu_ids = 1 + 2 * u32::from(mode >> 5);
    let policy = CpuPolicy {
        nr_cpu_ids,
        boot_apic_id: u32::from(mode >> 5),
        x2apic_mode: mode & 4 != 0,
        online_capable: match mode & 0x18 {
            8 => Some(true),
            16 => Some(false),
            _ => None,
        },
    };
    let c = smp_config(Some(&madt), &policy);
    for (_, m) in &c.messages {
        assert!(!m.is_empty() && !m.contains('\n'), "{m:?}");
    }
    assert!(c.present >= 1 && c.possible >= c.present && c.possible <= nr_cpu_ids);
    assert!(c.cpus.len() as u32 <= c.possible);
    let ids = c.present_apic_ids();
    assert_eq!(ids.first(), Some(&policy.boot_apic_id));
    for (i, a) in ids.iter().enumerate() {
        assert!(!ids[..i].contains(a), "APIC id {a:#x} twice");
    }
    assert!(
        c.messages
            .last()
            .unwrap()
            .1
            .starts_with("smpboot: Allowing ")
    );
});
