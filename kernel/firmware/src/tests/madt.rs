//! MADT: tables built byte by byte (every subtable type, QEMU's `-smp 4` layout, disabled,
//! online-capable and x2APIC processors, malformed and truncated tables), Linux's lines and
//! CPU list, and properties over random bytes and random entries.

use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use proptest::prelude::*;

use super::{fix_checksum, sdt};
use crate::madt::{
    CpuPolicy, CpuState, InterruptOverride, IoApic, LocalApic, LocalApicNmi, LocalX2Apic, Madt,
    MadtEntry, MadtError, SmpConfig, build_madt, parse_madt, smp_config,
};
use crate::numa::Level;

fn lapic(acpi_id: u8, apic_id: u8, flags: u32) -> Vec<u8> {
    let mut s = vec![0u8, 8, acpi_id, apic_id];
    s.extend_from_slice(&flags.to_le_bytes());
    s
}

fn ioapic(id: u8, address: u32, gsi_base: u32) -> Vec<u8> {
    let mut s = vec![1u8, 12, id, 0];
    s.extend_from_slice(&address.to_le_bytes());
    s.extend_from_slice(&gsi_base.to_le_bytes());
    s
}

fn iso(irq: u8, gsi: u32, flags: u16) -> Vec<u8> {
    let mut s = vec![2u8, 10, 0, irq];
    s.extend_from_slice(&gsi.to_le_bytes());
    s.extend_from_slice(&flags.to_le_bytes());
    s
}

fn lapic_nmi(acpi_id: u8, flags: u16, lint: u8) -> Vec<u8> {
    let mut s = vec![4u8, 6, acpi_id];
    s.extend_from_slice(&flags.to_le_bytes());
    s.push(lint);
    s
}

fn x2apic(apic_id: u32, flags: u32, uid: u32) -> Vec<u8> {
    let mut s = vec![9u8, 16, 0, 0];
    s.extend_from_slice(&apic_id.to_le_bytes());
    s.extend_from_slice(&flags.to_le_bytes());
    s.extend_from_slice(&uid.to_le_bytes());
    s
}

fn madt_bytes(revision: u8, subtables: &[Vec<u8>]) -> Vec<u8> {
    let mut body = 0xfee0_0000u32.to_le_bytes().to_vec();
    body.extend_from_slice(&1u32.to_le_bytes());
    for s in subtables {
        body.extend_from_slice(s);
    }
    sdt(b"APIC", revision, &body)
}

/// QEMU's MADT for `-smp 4` (hw/i386/acpi-common.c `acpi_build_madt`): one enabled local APIC
/// per CPU with ACPI id = APIC id, the I/O APIC at 0xfec00000, IRQ 0 on GSI 2, IRQs 5, 9, 10
/// and 11 active high, level triggered, LINT1 NMI for all processors.
fn qemu_smp(n: u8, present: u8) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = (0..n)
        .map(|i| lapic(i, i, u32::from(i < present)))
        .collect();
    v.push(ioapic(0, 0xfec0_0000, 0));
    v.push(iso(0, 2, 0));
    for irq in [5u8, 9, 10, 11] {
        v.push(iso(irq, u32::from(irq), 0xd));
    }
    v.push(lapic_nmi(0xff, 0, 1));
    v
}

fn config(bytes: &[u8], policy: &CpuPolicy) -> SmpConfig {
    smp_config(Some(&parse_madt(bytes)), policy)
}

fn info_lines(c: &SmpConfig) -> Vec<&str> {
    c.messages
        .iter()
        .filter(|(l, _)| *l != Level::Debug)
        .map(|(_, s)| s.as_str())
        .collect()
}

fn all_lines(c: &SmpConfig) -> Vec<&str> {
    c.messages.iter().map(|(_, s)| s.as_str()).collect()
}

#[test]
fn qemu_smp4_matches_linux_dmesg() {
    let t = madt_bytes(1, &qemu_smp(4, 4));
    let m = parse_madt(&t).unwrap();
    assert!(m.problem.is_none());
    assert!(m.pcat_compat());
    assert_eq!(m.lapic_address(), 0xfee0_0000);
    assert_eq!(m.entries.len(), 11);
    let c = config(&t, &CpuPolicy::default());
    // What Linux 6.1 prints on the console for this table (KERN_INFO and above).
    assert_eq!(
        info_lines(&c),
        [
            "ACPI: LAPIC_NMI (acpi_id[0xff] dfl dfl lint[0x1])",
            "ACPI: INT_SRC_OVR (bus 0 bus_irq 0 global_irq 2 dfl dfl)",
            "ACPI: INT_SRC_OVR (bus 0 bus_irq 5 global_irq 5 high level)",
            "ACPI: INT_SRC_OVR (bus 0 bus_irq 9 global_irq 9 high level)",
            "ACPI: INT_SRC_OVR (bus 0 bus_irq 10 global_irq 10 high level)",
            "ACPI: INT_SRC_OVR (bus 0 bus_irq 11 global_irq 11 high level)",
            "ACPI: Using ACPI (MADT) for SMP configuration information",
            "smpboot: Allowing 4 CPUs, 0 hotplug CPUs",
        ]
    );
    let all = all_lines(&c);
    assert_eq!(all[0], "ACPI: Local APIC address 0xfee00000");
    assert_eq!(all[1], "ACPI: LAPIC (acpi_id[0x00] lapic_id[0x00] enabled)");
    assert!(all.contains(&"ACPI: IOAPIC (id[0x00] address[0xfec00000] gsi_base[0])"));
    assert_eq!(c.present_apic_ids(), [0, 1, 2, 3]);
    assert_eq!((c.present, c.possible, c.hotplug()), (4, 4, 0));
    assert!(c.acpi_lapic);
    assert_eq!(c.io_apics.len(), 1);
    assert_eq!(c.overrides.len(), 5);
    assert_eq!(c.lapic_nmis.len(), 1);
}

#[test]
fn qemu_maxcpus_disabled_entries_are_hotplug_before_revision_5() {
    // -smp 2,maxcpus=4: QEMU lists 4 local APICs, the last two disabled (MADT revision 1).
    let t = madt_bytes(1, &qemu_smp(4, 2));
    let c = config(&t, &CpuPolicy::default());
    assert!(all_lines(&c).contains(&"ACPI: LAPIC (acpi_id[0x03] lapic_id[0x03] disabled)"));
    assert_eq!(
        *info_lines(&c).last().unwrap(),
        "smpboot: Allowing 4 CPUs, 2 hotplug CPUs"
    );
    assert_eq!(c.present_apic_ids(), [0, 1]);
    let hot: Vec<u32> = c
        .cpus
        .iter()
        .filter(|c| c.state == CpuState::Hotplug)
        .map(|c| c.apic_id)
        .collect();
    assert_eq!(hot, [2, 3]);
}

#[test]
fn online_capable_bit_from_revision_5() {
    // Revision 5: a disabled entry counts only with the online-capable bit.
    let subs = [
        lapic(0, 0, 1),
        lapic(1, 1, 0),
        lapic(2, 2, 2),
        lapic(3, 3, 3),
    ];
    let c = config(&madt_bytes(5, &subs), &CpuPolicy::default());
    assert_eq!(
        *info_lines(&c).last().unwrap(),
        "smpboot: Allowing 3 CPUs, 1 hotplug CPUs"
    );
    assert_eq!(c.present_apic_ids(), [0, 3]);
    assert_eq!(c.cpus[2].apic_id, 2);
    assert_eq!(c.cpus[2].state, CpuState::Hotplug);
    // The same table with the rule forced off (an FADT before 6.3, later 6.1.y kernels).
    let policy = CpuPolicy {
        online_capable: Some(false),
        ..CpuPolicy::default()
    };
    let c = config(&madt_bytes(5, &subs), &policy);
    assert_eq!(
        *info_lines(&c).last().unwrap(),
        "smpboot: Allowing 4 CPUs, 2 hotplug CPUs"
    );
}

#[test]
fn x2apic_entries() {
    let subs = [
        x2apic(0, 1, 0),
        x2apic(0x100, 1, 1),
        x2apic(0x101, 0, 2),
        x2apic(u32::MAX, 1, 3),
        {
            let mut s = vec![0xau8, 12, 0, 0];
            s.extend_from_slice(&u32::MAX.to_le_bytes());
            s.extend_from_slice(&[1, 0, 0, 0]);
            s
        },
        ioapic(0, 0xfec0_0000, 0),
    ];
    let t = madt_bytes(3, &subs);
    let m = parse_madt(&t).unwrap();
    assert_eq!(
        m.entries[1],
        MadtEntry::LocalX2Apic(LocalX2Apic {
            apic_id: 0x100,
            flags: 1,
            uid: 1
        })
    );
    let x2 = CpuPolicy {
        x2apic_mode: true,
        ..CpuPolicy::default()
    };
    let c = smp_config(Some(&Ok(m.clone())), &x2);
    let all = all_lines(&c);
    assert!(all.contains(&"ACPI: X2APIC (apic_id[0x100] uid[0x01] enabled)"));
    assert!(all.contains(&"ACPI: X2APIC_NMI (uid[0xffffffff] dfl dfl lint[0x1])"));
    assert_eq!(c.present_apic_ids(), [0, 0x100]);
    assert!(all.contains(&"smpboot: Allowing 3 CPUs, 1 hotplug CPUs"));
    // xAPIC mode: an enabled id of 255 or more is ignored with Linux's line.
    let c = smp_config(Some(&Ok(m)), &CpuPolicy::default());
    assert!(all_lines(&c).contains(&"ACPI: x2apic entry ignored"));
    assert_eq!(c.present_apic_ids(), [0]);
}

#[test]
fn every_subtable_type_decodes_and_prints() {
    let mut ovr = vec![5u8, 12, 0, 0];
    ovr.extend_from_slice(&0xfee0_1000u64.to_le_bytes());
    let mut nmi_src = vec![3u8, 8];
    nmi_src.extend_from_slice(&0xfu16.to_le_bytes());
    nmi_src.extend_from_slice(&7u32.to_le_bytes());
    let gicc = {
        let mut s = vec![0xbu8, 80];
        s.resize(80, 0);
        s
    };
    let subs = [
        lapic(0, 0, 1),
        ioapic(2, 0xfec0_0000, 24),
        iso(9, 9, 0x10d),
        nmi_src,
        lapic_nmi(0, 0xf, 0),
        ovr,
        x2apic(7, 1, 7),
        gicc,
    ];
    let m = parse_madt(&madt_bytes(4, &subs)).unwrap();
    assert!(m.problem.is_none());
    assert_eq!(
        m.entries,
        [
            MadtEntry::LocalApic(LocalApic {
                acpi_id: 0,
                apic_id: 0,
                flags: 1
            }),
            MadtEntry::IoApic(IoApic {
                id: 2,
                address: 0xfec0_0000,
                gsi_base: 24
            }),
            MadtEntry::InterruptOverride(InterruptOverride {
                bus: 0,
                source_irq: 9,
                gsi: 9,
                flags: 0x10d
            }),
            MadtEntry::NmiSource { flags: 0xf, gsi: 7 },
            MadtEntry::LocalApicNmi(LocalApicNmi {
                uid: 0,
                flags: 0xf,
                lint: 0,
                x2apic: false
            }),
            MadtEntry::LocalApicAddressOverride {
                address: 0xfee0_1000
            },
            MadtEntry::LocalX2Apic(LocalX2Apic {
                apic_id: 7,
                flags: 1,
                uid: 7
            }),
            MadtEntry::Other { kind: 0xb, len: 80 },
        ]
    );
    assert_eq!(m.lapic_address(), 0xfee0_1000);
    let c = smp_config(Some(&Ok(m)), &CpuPolicy::default());
    assert_eq!(c.lapic_address, 0xfee0_1000);
    let all = all_lines(&c);
    for want in [
        "ACPI: LAPIC_ADDR_OVR (address[0xfee01000])",
        "ACPI: IOAPIC (id[0x02] address[0xfec00000] gsi_base[24])",
        "ACPI: INT_SRC_OVR (bus 0 bus_irq 9 global_irq 9 high level)",
        "ACPI: INT_SRC_OVR unexpected reserved flags: 0x100",
        "ACPI: NMI_SRC (low level global_irq 7)",
        "ACPI: LAPIC_NMI (acpi_id[0x00] low level lint[0x0])",
        "ACPI: X2APIC (apic_id[0x07] uid[0x07] enabled)",
        "smpboot: Allowing 2 CPUs, 0 hotplug CPUs",
    ] {
        assert!(all.contains(&want), "{want} not in {all:#?}");
    }
    // Linux's pass order: address override first, NMI sources last.
    assert!(all[1].starts_with("ACPI: LAPIC_ADDR_OVR"));
    assert!(all[all.len() - 3].starts_with("ACPI: NMI_SRC"));
}

#[test]
fn longer_subtables_are_accepted() {
    let mut long = lapic(1, 1, 1);
    long[1] = 12;
    long.extend_from_slice(&[0xaa; 4]);
    let m = parse_madt(&madt_bytes(1, &[lapic(0, 0, 1), long])).unwrap();
    assert!(m.problem.is_none());
    assert_eq!(m.entries.len(), 2);
}

#[test]
fn malformed_lengths_stop_the_walk_and_linux_gives_up() {
    // A local APIC entry of 6 bytes (below its 8).
    let mut short = lapic(1, 1, 1);
    short[1] = 6;
    short.truncate(6);
    let t = madt_bytes(1, &[lapic(0, 0, 1), short, ioapic(0, 0xfec0_0000, 0)]);
    let m = parse_madt(&t).unwrap();
    assert_eq!(m.entries.len(), 1);
    let p = m.problem.unwrap();
    assert_eq!(
        p,
        MadtError::BadLength {
            offset: 52,
            kind: 0,
            len: 6,
            min: 8
        }
    );
    assert!(!p.rejects_table());
    assert_eq!(
        p.to_string(),
        "MADT: subtable type 0 at offset 52 has length 6, below its 8 bytes (malformed entry); \
         rest of table ignored"
    );
    let c = smp_config(Some(&Ok(m)), &CpuPolicy::default());
    assert_eq!(
        info_lines(&c)[1..],
        [
            "ACPI: Error parsing LAPIC/X2APIC entries",
            "ACPI: Invalid BIOS MADT, disabling ACPI",
            "smpboot: Boot CPU (id 0) not listed by BIOS",
            "smpboot: Allowing 1 CPUs, 0 hotplug CPUs",
        ]
    );
    assert!(!c.acpi_lapic);
    assert_eq!(c.present_apic_ids(), [0]);
    assert!(c.io_apics.is_empty());

    // Zero length: Linux's first pass (address overrides) fails.
    let t = madt_bytes(1, &[lapic(0, 0, 1), vec![0x11, 0, 0, 0]]);
    let c = config(&t, &CpuPolicy::default());
    let lines = info_lines(&c);
    assert_eq!(lines[1], "ACPI: [APIC:0x05] Invalid zero length");
    assert_eq!(lines[2], "ACPI: Error parsing LAPIC address override entry");

    // A malformed interrupt source override.
    let mut bad_iso = iso(0, 2, 0);
    bad_iso[1] = 8;
    bad_iso.truncate(8);
    let c = config(
        &madt_bytes(1, &[lapic(0, 0, 1), bad_iso]),
        &CpuPolicy::default(),
    );
    assert!(info_lines(&c).contains(&"ACPI: Error parsing interrupt source overrides entry"));
}

#[test]
fn entries_past_the_end() {
    // The last local APIC entry says 8 bytes but the table ends 3 bytes in.
    let mut t = madt_bytes(1, &[lapic(0, 0, 1), ioapic(0, 0xfec0_0000, 0)]);
    t.extend_from_slice(&[0, 8, 1]);
    let len = t.len() as u32;
    t[4..8].copy_from_slice(&len.to_le_bytes());
    fix_checksum(&mut t);
    let m = parse_madt(&t).unwrap();
    assert_eq!(m.entries.len(), 2);
    assert_eq!(
        m.problem,
        Some(MadtError::PastEnd {
            offset: 64,
            kind: 0,
            len: 8,
            remaining: 3
        })
    );
    let c = smp_config(Some(&Ok(m)), &CpuPolicy::default());
    assert!(info_lines(&c).contains(&"ACPI: Invalid BIOS MADT, disabling ACPI"));
    // An unknown type running past the end: Linux never looks at it; the entries before count.
    let mut t = madt_bytes(1, &qemu_smp(2, 2));
    t.extend_from_slice(&[0x7f, 40, 0, 0]);
    let len = t.len() as u32;
    t[4..8].copy_from_slice(&len.to_le_bytes());
    fix_checksum(&mut t);
    let c = config(&t, &CpuPolicy::default());
    assert!(c.acpi_lapic);
    assert_eq!(
        *info_lines(&c).last().unwrap(),
        "smpboot: Allowing 2 CPUs, 0 hotplug CPUs"
    );
    // One stray byte.
    let mut t = madt_bytes(1, &qemu_smp(2, 2));
    t.push(0);
    let len = t.len() as u32;
    t[4..8].copy_from_slice(&len.to_le_bytes());
    fix_checksum(&mut t);
    let m = parse_madt(&t).unwrap();
    assert!(matches!(m.problem, Some(MadtError::TrailingByte { .. })));
    assert!(smp_config(Some(&Ok(m)), &CpuPolicy::default()).acpi_lapic);
}

#[test]
fn whole_table_rejections_go_through_checked_table() {
    let good = madt_bytes(1, &qemu_smp(4, 4));
    let mut bad = good.clone();
    bad[40] ^= 1;
    let e = parse_madt(&bad).unwrap_err();
    assert!(matches!(e, MadtError::BadChecksum { .. }) && e.rejects_table());
    assert!(e.to_string().starts_with("MADT: bad checksum"));
    assert!(matches!(
        parse_madt(&good[..good.len() - 1]),
        Err(MadtError::Truncated { .. })
    ));
    assert!(matches!(
        parse_madt(&sdt(b"APIC", 1, &[0; 4])),
        Err(MadtError::TooShort { length: 40 })
    ));
    assert!(matches!(
        parse_madt(&sdt(b"FACP", 1, &[0; 16])),
        Err(MadtError::NotMadt { .. })
    ));
    let c = smp_config(Some(&parse_madt(&bad)), &CpuPolicy::default());
    assert_eq!(c.present_apic_ids(), [0]);
    assert_eq!(
        info_lines(&c),
        [
            e.to_string().as_str(),
            "smpboot: Boot CPU (id 0) not listed by BIOS",
            "smpboot: Allowing 1 CPUs, 0 hotplug CPUs"
        ]
    );
    // No MADT at all.
    let c = smp_config(None, &CpuPolicy::default());
    assert_eq!(c.possible, 1);
    assert_eq!(c.lapic_address, 0xfee0_0000);
}

#[test]
fn nr_cpus_limit_duplicates_and_invalid_ids() {
    // 6 CPUs, NR_CPUS 4, the boot CPU (APIC id 2) listed third.
    let subs: Vec<Vec<u8>> = (0..6).map(|i| lapic(i, i, 1)).collect();
    let policy = CpuPolicy {
        nr_cpu_ids: 4,
        boot_apic_id: 2,
        ..CpuPolicy::default()
    };
    let c = config(&madt_bytes(1, &subs), &policy);
    let lines = info_lines(&c);
    assert!(
        lines.contains(&"APIC: NR_CPUS/possible_cpus limit of 4 reached. Processor 4/0x4 ignored.")
    );
    assert!(
        lines.contains(&"APIC: NR_CPUS/possible_cpus limit of 4 reached. Processor 5/0x5 ignored.")
    );
    assert!(lines.contains(&"smpboot: 6 Processors exceeds NR_CPUS limit of 4"));
    assert_eq!(
        *lines.last().unwrap(),
        "smpboot: Allowing 4 CPUs, 0 hotplug CPUs"
    );
    assert_eq!(c.present_apic_ids(), [2, 0, 1, 3]);

    // Boot CPU listed last with NR_CPUS 2: Linux keeps its slot.
    let subs = [lapic(0, 1, 1), lapic(1, 2, 1), lapic(2, 0, 1)];
    let policy = CpuPolicy {
        nr_cpu_ids: 2,
        ..CpuPolicy::default()
    };
    let c = config(&madt_bytes(1, &subs), &policy);
    assert!(info_lines(&c).contains(
        &"APIC: NR_CPUS/possible_cpus limit of 2 almost reached. Keeping one slot for boot \
          cpu.  Processor 1/0x2 ignored."
    ));
    assert_eq!(c.present_apic_ids(), [0, 1]);

    // Duplicates and APIC id 0xff.
    let subs = [
        lapic(0, 0, 1),
        lapic(1, 1, 1),
        lapic(2, 1, 1),
        lapic(3, 0xff, 1),
    ];
    let c = config(&madt_bytes(1, &subs), &CpuPolicy::default());
    assert!(
        info_lines(&c)
            .contains(&"APIC: APIC id 0x1 (ACPI id 0x02) listed twice in the MADT; entry ignored")
    );
    assert_eq!(c.present_apic_ids(), [0, 1]);
}

#[test]
fn no_processor_or_ioapic_entries() {
    let c = config(
        &madt_bytes(1, &[ioapic(0, 0xfec0_0000, 0)]),
        &CpuPolicy::default(),
    );
    assert!(info_lines(&c).contains(&"ACPI: No LAPIC entries present"));
    assert!(!c.acpi_lapic && c.io_apics.is_empty());
    let c = config(&madt_bytes(1, &[lapic(0, 0, 1)]), &CpuPolicy::default());
    let lines = info_lines(&c);
    assert!(lines.contains(&"ACPI: No IOAPIC entries present"));
    assert!(lines.contains(&"ACPI: Using ACPI for processor (LAPIC) configuration information"));
}

#[test]
fn build_round_trips_qemu_table() {
    let m = parse_madt(&madt_bytes(1, &qemu_smp(4, 4))).unwrap();
    let again = build_madt(1, m.local_apic_address, m.flags, &m.entries);
    assert_eq!(again, madt_bytes(1, &qemu_smp(4, 4)));
}

fn entry() -> impl Strategy<Value = MadtEntry> {
    prop_oneof![
        (any::<u8>(), any::<u8>(), 0u32..4).prop_map(|(acpi_id, apic_id, flags)| {
            MadtEntry::LocalApic(LocalApic {
                acpi_id,
                apic_id,
                flags,
            })
        }),
        (any::<u8>(), any::<u32>(), any::<u32>()).prop_map(|(id, address, gsi_base)| {
            MadtEntry::IoApic(IoApic {
                id,
                address,
                gsi_base,
            })
        }),
        (any::<u8>(), any::<u8>(), any::<u32>(), any::<u16>()).prop_map(|(bus, s, gsi, flags)| {
            MadtEntry::InterruptOverride(InterruptOverride {
                bus,
                source_irq: s,
                gsi,
                flags,
            })
        }),
        (any::<u16>(), any::<u32>()).prop_map(|(flags, gsi)| MadtEntry::NmiSource { flags, gsi }),
        (any::<u8>(), any::<u16>(), any::<u8>()).prop_map(|(uid, flags, lint)| {
            MadtEntry::LocalApicNmi(LocalApicNmi {
                uid: u32::from(uid),
                flags,
                lint,
                x2apic: false,
            })
        }),
        (any::<u32>(), any::<u16>(), any::<u8>()).prop_map(|(uid, flags, lint)| {
            MadtEntry::LocalApicNmi(LocalApicNmi {
                uid,
                flags,
                lint,
                x2apic: true,
            })
        }),
        any::<u64>().prop_map(|address| MadtEntry::LocalApicAddressOverride { address }),
        (any::<u32>(), 0u32..4, any::<u32>()).prop_map(|(apic_id, flags, uid)| {
            MadtEntry::LocalX2Apic(LocalX2Apic {
                apic_id,
                flags,
                uid,
            })
        }),
        (11u8..=255, 2u8..=64).prop_map(|(kind, len)| MadtEntry::Other { kind, len }),
    ]
}

fn check_config(c: &SmpConfig, policy: &CpuPolicy) {
    for (_, m) in &c.messages {
        assert!(!m.is_empty() && !m.contains('\n'), "{m:?}");
    }
    assert!(c.present >= 1 && c.possible >= c.present);
    assert!(c.possible <= policy.nr_cpu_ids.max(1));
    assert!(c.cpus.len() as u32 <= c.possible);
    let ids = c.present_apic_ids();
    assert_eq!(ids[0], policy.boot_apic_id);
    for (i, a) in ids.iter().enumerate() {
        assert!(!ids[..i].contains(a), "APIC id {a:#x} twice");
    }
    let last: &String = &c.messages.last().unwrap().1;
    assert!(last.starts_with("smpboot: Allowing "));
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 4 } else { 512 },
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let r = parse_madt(&bytes);
        if let Err(e) = &r {
            prop_assert!(e.rejects_table());
        }
        check_config(&smp_config(Some(&r), &CpuPolicy::default()), &CpuPolicy::default());
    }

    #[test]
    fn random_body_with_valid_header(
        body in prop::collection::vec(any::<u8>(), 0..300),
        nr in 1u32..8,
        boot in 0u32..4,
        x2apic_mode in any::<bool>(),
        revision in 0u8..7,
    ) {
        let t = sdt(b"APIC", revision, &body);
        let r = parse_madt(&t);
        let policy = CpuPolicy { nr_cpu_ids: nr, boot_apic_id: boot, x2apic_mode, online_capable: None };
        match &r {
            Ok(m) => prop_assert!(m.problem.is_none_or(|p| !p.rejects_table())),
            Err(e) => prop_assert!(matches!(e, MadtError::TooShort { .. }), "{e:?}"),
        }
        check_config(&smp_config(Some(&r), &policy), &policy);
    }

    #[test]
    fn built_tables_parse_back(
        entries in prop::collection::vec(entry(), 0..24),
        revision in any::<u8>(),
        address in any::<u32>(),
        flags in any::<u32>(),
    ) {
        let t = build_madt(revision, address, flags, &entries);
        let m: Madt = parse_madt(&t).unwrap();
        prop_assert_eq!(&m.entries, &entries);
        prop_assert!(m.problem.is_none());
        prop_assert_eq!((m.local_apic_address, m.flags, m.header.revision), (address, flags, revision));
        let policy = CpuPolicy { x2apic_mode: true, ..CpuPolicy::default() };
        check_config(&smp_config(Some(&Ok(m)), &policy), &policy);
    }
}

/// QEMU's `-smp 4` MADT as a fixture (hand-built by make_seeds.py to QEMU's layout; no
/// captured dump was available): the same table and Linux's lines.
#[test]
fn fixture_qemu_smp4() {
    let bytes = include_bytes!("data/qemu_smp4_APIC_handbuilt.bin");
    assert_eq!(bytes.as_slice(), madt_bytes(1, &qemu_smp(4, 4)).as_slice());
    let c = config(bytes, &CpuPolicy::default());
    assert_eq!(c.present_apic_ids(), [0, 1, 2, 3]);
    assert_eq!(
        *info_lines(&c).last().unwrap(),
        "smpboot: Allowing 4 CPUs, 0 hotplug CPUs"
    );
}
