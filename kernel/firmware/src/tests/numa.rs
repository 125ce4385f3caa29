//! SRAT, SLIT and the NUMA layout: tables built byte by byte as QEMU emits them, the
//! fallbacks and refusals of Linux's `x86_numa_init`, and properties over random layouts.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use proptest::prelude::*;

use super::sdt;
use crate::numa::{Level, NumaInput, NumaLayout, NumaSource, numa_init};
use crate::range::PhysRange;
use crate::slit::{SlitError, parse_slit};
use crate::srat::{SratEntry, SratError, parse_srat};

const M: u64 = 1 << 20;
const G: u64 = 1 << 30;

fn cpu(pxm: u32, apic: u8, flags: u32) -> Vec<u8> {
    let mut s = vec![0u8, 16, pxm as u8, apic];
    s.extend_from_slice(&flags.to_le_bytes());
    s.push(0);
    s.extend_from_slice(&(pxm >> 8).to_le_bytes()[..3]);
    s.extend_from_slice(&0u32.to_le_bytes());
    s
}

fn x2apic(pxm: u32, apic: u32, flags: u32) -> Vec<u8> {
    let mut s = vec![2u8, 24, 0, 0];
    s.extend_from_slice(&pxm.to_le_bytes());
    s.extend_from_slice(&apic.to_le_bytes());
    s.extend_from_slice(&flags.to_le_bytes());
    s.extend_from_slice(&[0; 8]);
    s
}

fn mem(pxm: u32, base: u64, len: u64, flags: u32) -> Vec<u8> {
    let mut s = vec![1u8, 40];
    s.extend_from_slice(&pxm.to_le_bytes());
    s.extend_from_slice(&[0; 2]);
    s.extend_from_slice(&base.to_le_bytes());
    s.extend_from_slice(&len.to_le_bytes());
    s.extend_from_slice(&[0; 4]);
    s.extend_from_slice(&flags.to_le_bytes());
    s.extend_from_slice(&[0; 8]);
    s
}

fn srat_bytes(revision: u8, subtables: &[Vec<u8>]) -> Vec<u8> {
    let mut body = vec![1, 0, 0, 0];
    body.extend_from_slice(&[0; 8]);
    for s in subtables {
        body.extend_from_slice(s);
    }
    sdt(b"SRAT", revision, &body)
}

fn slit_bytes(n: u64, d: &[u8]) -> Vec<u8> {
    let mut body = n.to_le_bytes().to_vec();
    body.extend_from_slice(d);
    sdt(b"SLIT", 1, &body)
}

/// QEMU's `-m 1G` with two 512 MiB nodes (RAM below 640K on node 0).
fn qemu_two_nodes() -> Vec<Vec<u8>> {
    vec![
        cpu(0, 0, 1),
        cpu(1, 1, 1),
        mem(0, 0, 0xa0000, 1),
        mem(0, 0x100000, 0x1ff0_0000, 1),
        mem(1, 0x2000_0000, 0x2000_0000, 1),
    ]
}

fn ram_1g() -> Vec<PhysRange> {
    vec![
        PhysRange::new(0x1000, 0x9f000),
        PhysRange::new(0x100000, 0x3ffd_f000),
    ]
}

fn layout(
    srat: Option<Vec<u8>>,
    slit: Option<Vec<u8>>,
    memory: &[PhysRange],
    off: bool,
) -> NumaLayout {
    layout_cmdline(srat, slit, memory, if off { "numa=off" } else { "" })
}

fn layout_cmdline(
    srat: Option<Vec<u8>>,
    slit: Option<Vec<u8>>,
    memory: &[PhysRange],
    cmdline: &str,
) -> NumaLayout {
    let srat = srat.map(|b| parse_srat(&b));
    let slit = slit.map(|b| parse_slit(&b));
    numa_init(
        NumaInput {
            srat: srat.as_ref(),
            slit: slit.as_ref(),
            memory,
            numa_off: false,
            fake: None,
        }
        .with_cmdline(cmdline),
    )
}

fn lines(l: &NumaLayout) -> Vec<&str> {
    l.messages.iter().map(|(_, s)| s.as_str()).collect()
}

#[test]
fn parse_qemu_srat() {
    let t = parse_srat(&srat_bytes(1, &qemu_two_nodes())).unwrap();
    assert_eq!(t.entries.len(), 5);
    assert!(t.problem.is_none());
    let SratEntry::Memory(m) = t.entries[4] else {
        panic!("not memory")
    };
    assert_eq!((m.pxm, m.base, m.length), (1, 0x2000_0000, 0x2000_0000));
    assert!(m.enabled() && !m.hot_pluggable() && !m.non_volatile());
}

#[test]
fn two_nodes_with_distance_as_linux_prints_them() {
    let l = layout(
        Some(srat_bytes(1, &qemu_two_nodes())),
        Some(slit_bytes(2, &[10, 21, 21, 10])),
        &ram_1g(),
        false,
    );
    assert_eq!(l.source, NumaSource::Srat);
    assert_eq!(
        lines(&l),
        [
            "SRAT: PXM 0 -> APIC 0x00 -> Node 0",
            "SRAT: PXM 1 -> APIC 0x01 -> Node 1",
            "ACPI: SRAT: Node 0 PXM 0 [mem 0x00000000-0x0009ffff]",
            "ACPI: SRAT: Node 0 PXM 0 [mem 0x00100000-0x1fffffff]",
            "ACPI: SRAT: Node 1 PXM 1 [mem 0x20000000-0x3fffffff]",
            "NUMA: Initialized distance table, cnt=2",
            "NUMA: Node 0 [mem 0x00000000-0x0009ffff] + [mem 0x00100000-0x1fffffff] -> [mem \
             0x00000000-0x1fffffff]",
        ]
    );
    assert_eq!(l.possible, [0, 1]);
    assert_eq!(l.distance(0, 1), 21);
    assert_eq!(l.distance(1, 1), 10);
    // Node 1's block is trimmed to max_pfn (the last RAM page at 0x3ffdf000).
    assert_eq!(
        l.node_span(1),
        Some(PhysRange::new(0x2000_0000, 0x3ffd_f000))
    );
    assert_eq!(l.apic_to_node.get(&1), Some(&1));
    let nodes = l.memory_nodes(&ram_1g());
    assert_eq!(
        nodes,
        [
            (Some(0), PhysRange::new(0x1000, 0x9f000)),
            (Some(0), PhysRange::new(0x100000, 0x2000_0000)),
            (Some(1), PhysRange::new(0x2000_0000, 0x3ffd_f000)),
        ]
    );
}

#[test]
fn pxm_numbering_is_first_seen_with_cpus_first() {
    // PXM 7 is named first by a CPU, so it becomes node 0; PXM 3 then node 1.
    let l = layout(
        Some(srat_bytes(
            3,
            &[
                x2apic(7, 0x100, 1),
                mem(3, 0, 0x2000_0000, 1),
                mem(7, 0x2000_0000, 0x2000_0000, 1),
            ],
        )),
        None,
        &ram_1g(),
        false,
    );
    assert_eq!(l.pxm_to_node(7), Some(0));
    assert_eq!(l.pxm_to_node(3), Some(1));
    assert_eq!(lines(&l)[0], "SRAT: PXM 7 -> APIC 0x0100 -> Node 0");
    assert_eq!(l.distance(0, 1), 20);
}

#[test]
fn disabled_entries_and_other_types_are_skipped() {
    let gi = {
        let mut s = vec![5u8, 32];
        s.extend_from_slice(&[0; 30]);
        s
    };
    let l = layout(
        Some(srat_bytes(
            1,
            &[
                cpu(0, 0, 1),
                cpu(5, 1, 0),
                gi,
                mem(0, 0, G, 1),
                mem(9, G, G, 0),
            ],
        )),
        None,
        &ram_1g(),
        false,
    );
    assert_eq!(l.possible, [0]);
    assert_eq!(l.pxm_to_node(5), None);
    assert_eq!(l.pxm_to_node(9), None);
}

#[test]
fn revision_1_masks_pxm_to_8_bits() {
    let t = srat_bytes(1, &[cpu(0x102, 0, 1), mem(0x102, 0, G, 1)]);
    let l = layout(Some(t), None, &ram_1g(), false);
    assert_eq!(l.pxm_to_node(2), Some(0));
    let t = srat_bytes(2, &[cpu(0x102, 0, 1), mem(0x102, 0, G, 1)]);
    let l = layout(Some(t), None, &ram_1g(), false);
    // PXM 0x102 is past MAX_PXM_DOMAINS: bad_srat, one faked node.
    assert_eq!(l.source, NumaSource::NoConfig);
    assert!(lines(&l).contains(&"ACPI: SRAT: SRAT not used."));
    assert!(lines(&l).contains(&"No NUMA configuration found"));
}

#[test]
fn nvdimm_and_hotplug_area_are_reserved_blocks_with_their_node() {
    // QEMU with an NVDIMM on node 1 and a hot-plug area: neither holds RAM.
    let mut t = qemu_two_nodes();
    t.push(mem(1, 0x1_0000_0000, 128 * M, 1 | 4));
    t.push(mem(1, 0x1_0000_0000, 2 * G, 1 | 2));
    let l = layout(Some(srat_bytes(1, &t)), None, &ram_1g(), false);
    assert!(
        lines(&l).contains(&"ACPI: SRAT: Node 1 PXM 1 [mem 0x100000000-0x107ffffff] non-volatile")
    );
    assert!(lines(&l).contains(&"ACPI: SRAT: Node 1 PXM 1 [mem 0x100000000-0x17fffffff] hotplug"));
    assert_eq!(l.phys_to_target_node(0x1_0000_1000), Some(1));
    assert_eq!(l.phys_to_target_node(0x1_7000_0000), Some(1));
    assert_eq!(l.phys_to_target_node(0x2_0000_0000), None);
    assert_eq!(l.memory_add_physaddr_to_nid(0x1_7000_0000), 0);
    assert_eq!(l.hotplug, [PhysRange::new(0x1_0000_0000, 0x1_8000_0000)]);
    assert_eq!(
        l.node_span(1),
        Some(PhysRange::new(0x2000_0000, 0x3ffd_f000))
    );
}

#[test]
fn memoryless_node_is_possible_without_blocks() {
    let mut t = qemu_two_nodes();
    t.push(cpu(3, 3, 1));
    let l = layout(Some(srat_bytes(1, &t)), None, &ram_1g(), false);
    assert_eq!(l.possible, [0, 1, 2]);
    assert!(!l.has_memory(2));
    assert_eq!(l.node_span(2), None);
}

#[test]
fn overlapping_nodes_fall_back_to_one_node() {
    let t = srat_bytes(1, &[mem(0, 0, 600 * M, 1), mem(1, 512 * M, 512 * M, 1)]);
    let l = layout(Some(t), None, &ram_1g(), false);
    assert_eq!(l.source, NumaSource::NoConfig);
    let ls = lines(&l);
    assert!(
        ls.contains(
            &"node 0 [mem 0x00000000-0x257fffff] overlaps with node 1 [mem 0x20000000-0x3ffdefff]"
        ),
        "{ls:?}"
    );
    assert_eq!(
        ls.last().copied(),
        Some("Faking a node at [mem 0x0000000000000000-0x000000003ffdefff]")
    );
    assert_eq!(l.memblks.len(), 1);
    assert_eq!(l.possible, [0]);
}

#[test]
fn nodes_that_miss_ram_are_not_used() {
    let t = srat_bytes(1, &[mem(0, 0, 256 * M, 1)]);
    let l = layout(Some(t), None, &ram_1g(), false);
    assert_eq!(l.source, NumaSource::NoConfig);
    assert!(
        lines(&l).contains(&"NUMA: nodes only cover 255MB of your 1023MB e820 RAM. Not used."),
        "{:?}",
        lines(&l)
    );
}

#[test]
fn malformed_memory_entry_is_bad_srat() {
    let mut short = mem(0, 0, G, 1);
    short.truncate(32);
    short[1] = 32;
    let l = layout(Some(srat_bytes(1, &[short])), None, &ram_1g(), false);
    let ls = lines(&l);
    assert!(ls.contains(&"ACPI: SRAT: Unexpected header length: 32"));
    assert!(ls.contains(&"ACPI: SRAT: SRAT not used."));
    assert_eq!(l.source, NumaSource::NoConfig);
}

#[test]
fn no_srat_and_numa_off() {
    let l = layout(None, None, &ram_1g(), false);
    assert_eq!(
        lines(&l),
        [
            "No NUMA configuration found",
            "Faking a node at [mem 0x0000000000000000-0x000000003ffdefff]"
        ]
    );
    let l = layout(
        Some(srat_bytes(1, &qemu_two_nodes())),
        None,
        &ram_1g(),
        true,
    );
    assert_eq!(l.source, NumaSource::Off);
    assert_eq!(lines(&l)[0], "NUMA turned off");
    assert_eq!(l.possible, [0]);
}

#[test]
fn srat_with_only_cpus_is_no_configuration() {
    let l = layout(Some(srat_bytes(1, &[cpu(0, 0, 1)])), None, &ram_1g(), false);
    assert_eq!(l.source, NumaSource::NoConfig);
}

#[test]
fn too_many_nodes() {
    let mut t = Vec::new();
    for pxm in 0..65 {
        t.push(cpu(pxm, pxm as u8, 1));
    }
    t.push(mem(0, 0, G, 1));
    let l = layout(Some(srat_bytes(1, &t)), None, &ram_1g(), false);
    assert!(lines(&l).contains(&"SRAT: Too many proximity domains 40"));
    assert_eq!(l.source, NumaSource::NoConfig);
}

#[test]
fn srat_rejections() {
    let good = srat_bytes(1, &qemu_two_nodes());
    let mut bad = good.clone();
    bad[9] ^= 1;
    assert!(matches!(
        parse_srat(&bad),
        Err(SratError::BadChecksum { .. })
    ));
    assert!(matches!(
        parse_srat(&good[..40]),
        Err(SratError::Truncated { .. })
    ));
    let mut zero = srat_bytes(1, &[cpu(0, 0, 1), vec![1, 0, 0, 0]]);
    let t = parse_srat(&zero).unwrap();
    assert_eq!(t.entries.len(), 1);
    assert!(matches!(
        t.problem,
        Some(SratError::BadSubtableLength { .. })
    ));
    // Past the end: the last subtable claims 60 bytes.
    let n = zero.len();
    zero[n - 3] = 60;
    super::fix_checksum(&mut zero);
    assert!(parse_srat(&zero).unwrap().problem.is_some());
    let nfit = sdt(b"NFIT", 1, &[0; 12]);
    assert!(matches!(parse_srat(&nfit), Err(SratError::NotSrat { .. })));
    // A rejected table logs one line and changes nothing: one faked node.
    let l = layout(Some(bad), None, &ram_1g(), false);
    assert_eq!(l.source, NumaSource::NoConfig);
    assert!(l.messages[0].1.starts_with("SRAT: bad checksum"));
}

#[test]
fn slit_validation_as_linux() {
    assert_eq!(
        parse_slit(&slit_bytes(2, &[10, 21, 21, 10])).unwrap().count,
        2
    );
    assert!(matches!(
        parse_slit(&slit_bytes(2, &[10, 21, 21, 11])),
        Err(SlitError::BadLocal {
            locality: 1,
            distance: 11
        })
    ));
    assert!(matches!(
        parse_slit(&slit_bytes(2, &[10, 10, 21, 10])),
        Err(SlitError::BadRemote { from: 0, to: 1, .. })
    ));
    assert!(matches!(
        parse_slit(&slit_bytes(3, &[10, 21, 21, 10])),
        Err(SlitError::WrongSize { count: 3, .. })
    ));
    assert!(matches!(
        parse_slit(&slit_bytes(u64::MAX, &[10])),
        Err(SlitError::WrongSize { .. })
    ));
    // A bad SLIT: Linux's line, default distances.
    let l = layout(
        Some(srat_bytes(1, &qemu_two_nodes())),
        Some(slit_bytes(2, &[10, 21, 21, 11])),
        &ram_1g(),
        false,
    );
    assert!(
        l.messages.iter().any(|(lv, s)| *lv == Level::Info
            && s.starts_with("ACPI: SLIT table looks invalid. Not used."))
    );
    assert_eq!(l.distance(0, 1), 20);
    assert_eq!(l.source, NumaSource::Srat);
}

#[test]
fn slit_localities_without_nodes_are_ignored() {
    let l = layout(
        Some(srat_bytes(1, &qemu_two_nodes())),
        Some(slit_bytes(3, &[10, 21, 31, 21, 10, 41, 31, 41, 10])),
        &ram_1g(),
        false,
    );
    assert_eq!(l.distance(1, 0), 21);
    assert_eq!(l.distance(1, 2), 20);
    assert_eq!(l.distance(2, 2), 10);
}

#[test]
fn numa_fake_4_on_one_node_as_linux_splits_it() {
    let l = layout_cmdline(None, None, &ram_1g(), "console=ttyS0 numa=fake=4");
    let ls = lines(&l);
    assert_eq!(
        ls[2..],
        [
            "Faking node 0 at [mem 0x0000000000000000-0x000000000fffffff] (256MB)",
            "Faking node 1 at [mem 0x0000000010000000-0x000000001fffffff] (256MB)",
            "Faking node 2 at [mem 0x0000000020000000-0x000000002fffffff] (256MB)",
            "Faking node 3 at [mem 0x0000000030000000-0x000000003ffdefff] (255MB)",
            "NUMA: Initialized distance table, cnt=4",
        ]
    );
    assert_eq!(l.possible, [0, 1, 2, 3]);
    // Fake nodes of one physical node are at the local distance from each other, as in Linux.
    assert_eq!(l.distance(0, 3), 10);
    assert_eq!(
        l.node_span(3),
        Some(PhysRange::new(0x3000_0000, 0x3ffd_f000))
    );
}

#[test]
fn numa_fake_over_two_physical_nodes_interleaves_and_maps_cpus() {
    let l = layout_cmdline(
        Some(srat_bytes(1, &qemu_two_nodes())),
        Some(slit_bytes(2, &[10, 21, 21, 10])),
        &ram_1g(),
        "numa=fake=4",
    );
    // Fake 0 and 2 on physical node 0, fake 1 and 3 on physical node 1.
    assert_eq!(l.node_span(0), Some(PhysRange::new(0, 0x1000_0000)));
    assert_eq!(
        l.node_span(1),
        Some(PhysRange::new(0x2000_0000, 0x3000_0000))
    );
    assert_eq!(
        l.node_span(2),
        Some(PhysRange::new(0x1000_0000, 0x2000_0000))
    );
    assert_eq!(l.distance(0, 1), 21);
    assert_eq!(l.distance(0, 2), 10);
    assert_eq!(l.apic_to_node.get(&1), Some(&1));
}

#[test]
fn numa_fake_refusals_leave_the_layout() {
    let base = layout(None, None, &ram_1g(), false);
    for cmd in [
        "numa=fake=0",
        "numa=fake=abc",
        "numa=fake=64",
        "numa=fake=512M",
    ] {
        let l = layout_cmdline(None, None, &ram_1g(), cmd);
        assert_eq!(l.memblks, base.memblks, "{cmd}");
        assert_eq!(l.possible, [0], "{cmd}");
    }
    let ls = layout_cmdline(None, None, &ram_1g(), "numa=fake=64");
    assert!(lines(&ls).contains(&"Not enough memory for each node.  NUMA emulation disabled."));
    let big = layout_cmdline(None, None, &ram_1g(), "numa=fake=100");
    assert!(lines(&big).contains(&"numa=fake=100 too large, reducing to 64"));
    let l = layout_cmdline(None, None, &ram_1g(), "numa=fake=0x2");
    assert_eq!(l.possible, [0, 1]);
}

/// The lines Linux 6.1 (Debian's linux-image-amd64) printed on the same QEMU machine, for the
/// SRAT/SLIT/NFIT that QEMU built for it (dumped from /sys/firmware/acpi/tables in that guest).
/// RAM is the zone map Linux built from the same E820 (page 0 and 0xa0000-0xfffff removed).
fn linux_reference(srat: &[u8], slit: Option<&[u8]>, ram_end: u64, cmdline: &str) -> NumaLayout {
    let memory = [
        PhysRange::new(0x1000, 0x9f000),
        PhysRange::new(0x100000, ram_end),
    ];
    layout_cmdline(
        Some(srat.to_vec()),
        slit.map(<[u8]>::to_vec),
        &memory,
        cmdline,
    )
}

fn node_range_lines(l: &NumaLayout, ram_end: u64) -> Vec<String> {
    let memory = [
        PhysRange::new(0x1000, 0x9f000),
        PhysRange::new(0x100000, ram_end),
    ];
    l.memory_nodes(&memory)
        .iter()
        .map(|(n, r)| alloc::format!("  node {:>3}: {}", n.unwrap(), r))
        .collect()
}

#[test]
fn linux_two_nodes_distance_21() {
    // -smp 2 -m 1G, two 512M memdev nodes, -numa dist,src=0,dst=1,val=21.
    let l = linux_reference(
        include_bytes!("data/qemu_two_nodes_SRAT.bin"),
        Some(include_bytes!("data/qemu_two_nodes_SLIT.bin")),
        0x3ffe_0000,
        "",
    );
    assert_eq!(
        lines(&l),
        [
            "SRAT: PXM 0 -> APIC 0x00 -> Node 0",
            "SRAT: PXM 1 -> APIC 0x01 -> Node 1",
            "ACPI: SRAT: Node 0 PXM 0 [mem 0x00000000-0x0009ffff]",
            "ACPI: SRAT: Node 0 PXM 0 [mem 0x00100000-0x1fffffff]",
            "ACPI: SRAT: Node 1 PXM 1 [mem 0x20000000-0x3fffffff]",
            "NUMA: Initialized distance table, cnt=2",
            "NUMA: Node 0 [mem 0x00000000-0x0009ffff] + [mem 0x00100000-0x1fffffff] -> [mem \
             0x00000000-0x1fffffff]",
        ]
    );
    assert_eq!(
        node_range_lines(&l, 0x3ffe_0000),
        [
            "  node   0: [mem 0x0000000000001000-0x000000000009efff]",
            "  node   0: [mem 0x0000000000100000-0x000000001fffffff]",
            "  node   1: [mem 0x0000000020000000-0x000000003ffdffff]",
        ]
    );
    // /sys/devices/system/node/node0/distance: 10 21
    assert_eq!([l.distance(0, 0), l.distance(0, 1)], [10, 21]);
}

#[test]
fn linux_four_nodes_memoryless_and_nvdimm_on_node_2() {
    // -smp 4 -m 2G,slots=2,maxmem=4G: nodes 0/1 512M, node 2 1G, node 3 CPU only; an
    // NVDIMM of 128M with node=2.
    let l = linux_reference(
        include_bytes!("data/qemu_four_nodes_nvdimm_SRAT.bin"),
        None,
        0x7ffd_f000,
        "",
    );
    assert_eq!(
        lines(&l),
        [
            "SRAT: PXM 0 -> APIC 0x00 -> Node 0",
            "SRAT: PXM 1 -> APIC 0x01 -> Node 1",
            "SRAT: PXM 2 -> APIC 0x02 -> Node 2",
            "SRAT: PXM 3 -> APIC 0x03 -> Node 3",
            "ACPI: SRAT: Node 0 PXM 0 [mem 0x00000000-0x0009ffff]",
            "ACPI: SRAT: Node 0 PXM 0 [mem 0x00100000-0x1fffffff]",
            "ACPI: SRAT: Node 1 PXM 1 [mem 0x20000000-0x3fffffff]",
            "ACPI: SRAT: Node 2 PXM 2 [mem 0x40000000-0x7fffffff]",
            "ACPI: SRAT: Node 2 PXM 2 [mem 0x100000000-0x107ffffff] non-volatile",
            "ACPI: SRAT: Node 3 PXM 3 [mem 0x100000000-0x1ffffffff] hotplug",
            "NUMA: Node 0 [mem 0x00000000-0x0009ffff] + [mem 0x00100000-0x1fffffff] -> [mem \
             0x00000000-0x1fffffff]",
        ]
    );
    assert_eq!(
        node_range_lines(&l, 0x7ffd_f000),
        [
            "  node   0: [mem 0x0000000000001000-0x000000000009efff]",
            "  node   0: [mem 0x0000000000100000-0x000000001fffffff]",
            "  node   1: [mem 0x0000000020000000-0x000000003fffffff]",
            "  node   2: [mem 0x0000000040000000-0x000000007ffdefff]",
        ]
    );
    assert_eq!(l.possible, [0, 1, 2, 3]);
    assert!(!l.has_memory(3));
    // The NVDIMM's target node: its NFIT SPA range names proximity domain 2, and the SRAT's
    // non-volatile entry puts its range on node 2.
    let nfit =
        crate::nfit::parse_nfit(include_bytes!("data/qemu_four_nodes_nvdimm_NFIT.bin")).unwrap();
    let spa = nfit.persistent().next().unwrap();
    assert_eq!((spa.base, spa.proximity_domain), (0x1_0000_0000, 2));
    assert_eq!(l.pxm_to_node(spa.proximity_domain), Some(2));
    assert_eq!(l.phys_to_target_node(spa.base), Some(2));
    assert_eq!(l.distance(0, 3), 20);
}

#[test]
fn linux_numa_fake_4_on_1g() {
    let l = layout_cmdline(
        None,
        None,
        &[
            PhysRange::new(0x1000, 0x9f000),
            PhysRange::new(0x100000, 0x3ffe_0000),
        ],
        "console=ttyS0 numa=fake=4",
    );
    assert_eq!(
        lines(&l),
        [
            "No NUMA configuration found",
            "Faking a node at [mem 0x0000000000000000-0x000000003ffdffff]",
            "Faking node 0 at [mem 0x0000000000000000-0x000000000fffffff] (256MB)",
            "Faking node 1 at [mem 0x0000000010000000-0x000000001fffffff] (256MB)",
            "Faking node 2 at [mem 0x0000000020000000-0x000000002fffffff] (256MB)",
            "Faking node 3 at [mem 0x0000000030000000-0x000000003ffdffff] (255MB)",
            "NUMA: Initialized distance table, cnt=4",
        ]
    );
    for n in 0..4 {
        assert_eq!(l.distance(0, n), 10);
    }
}

proptest! {
    // Miri's isolation forbids the regression file (getcwd), and each case is slow there.
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 4 } else { ProptestConfig::default().cases },
        failure_persistence: if cfg!(miri) { None } else { ProptestConfig::default().failure_persistence },
        ..ProptestConfig::default()
    })]

    /// Random SRATs over random RAM: never a panic; when the SRAT is used, every RAM page is
    /// in exactly one node's block (but at most 1 MiB), blocks of different nodes never
    /// overlap, every block lies within its node's span, and distances are 10 on the diagonal.
    #[test]
    fn layout_properties(
        ram in proptest::collection::vec((0u64..64, 1u64..32), 1..6),
        blks in proptest::collection::vec((0u32..6, 0u64..80, 1u64..40, 0u32..8), 0..10),
        cpus in proptest::collection::vec((0u32..8, 0u8..16), 0..4),
        fake in prop_oneof![Just(String::new()), (1u32..9).prop_map(|n| alloc::format!("numa=fake={n}"))],
    ) {
        let mut memory: Vec<PhysRange> = Vec::new();
        let mut at = 0x1000u64;
        for (gap, len) in ram {
            let start = at + gap * 16 * M;
            memory.push(PhysRange::new(start, start + len * 16 * M));
            at = start + len * 16 * M;
        }
        let mut subs: Vec<Vec<u8>> = cpus.iter().map(|&(p, a)| cpu(p, a, 1)).collect();
        subs.extend(blks.iter().map(|&(p, s, l, f)| mem(p, s * 16 * M, l * 16 * M, f)));
        let l = layout_cmdline(Some(srat_bytes(1, &subs)), None, &memory, &fake);
        let _: Vec<String> = l.messages.iter().map(|(_, s)| s.clone()).collect();
        for a in &l.memblks {
            for b in &l.memblks {
                if a.nid != b.nid {
                    prop_assert!(!a.range.overlaps(&b.range));
                }
            }
            let span = l.node_span(a.nid).unwrap();
            prop_assert!(span.start <= a.range.start && a.range.end <= span.end);
            prop_assert!(l.possible.contains(&a.nid));
        }
        let pieces = l.memory_nodes(&memory);
        let total: u64 = memory.iter().map(|r| r.size()).sum();
        let assigned: u64 = pieces.iter().filter(|p| p.0.is_some()).map(|p| p.1.size()).sum();
        let all: u64 = pieces.iter().map(|p| p.1.size()).sum();
        prop_assert_eq!(all, total);
        prop_assert!(total - assigned < M);
        for w in pieces.windows(2) {
            prop_assert!(w[0].1.end <= w[1].1.start);
        }
        for &n in &l.possible {
            prop_assert_eq!(l.distance(n, n), 10);
        }
    }

    /// Arbitrary bytes after a valid header: the SRAT and SLIT parsers never panic.
    #[test]
    fn parsers_take_any_bytes(body in proptest::collection::vec(any::<u8>(), 0..200)) {
        let srat = parse_srat(&sdt(b"SRAT", 2, &body));
        let slit = parse_slit(&sdt(b"SLIT", 1, &body));
        let _ = numa_init(NumaInput {
            srat: Some(&srat),
            slit: Some(&slit),
            memory: &ram_1g(),
            numa_off: false,
            fake: None,
        });
    }
}

#[test]
fn srat_from_linux_dmesg_gives_the_same_layout_as_the_table() {
    let dmesg = include_str!("../../../../tests/data/linux-6.1-qemu-four.dmesg");
    let from_log = crate::srat::srat_from_dmesg(dmesg).unwrap();
    let from_table = parse_srat(include_bytes!("data/qemu_four_nodes_nvdimm_SRAT.bin")).unwrap();
    let memory = [
        PhysRange::new(0x1000, 0x9f000),
        PhysRange::new(0x100000, 0x7ffd_f000),
    ];
    let run = |srat| {
        let r = Ok(srat);
        let l = numa_init(NumaInput {
            srat: Some(&r),
            slit: None,
            memory: &memory,
            numa_off: false,
            fake: None,
        });
        (
            l.memblks,
            l.reserved,
            l.possible,
            l.apic_to_node,
            l.messages,
        )
    };
    assert_eq!(run(from_log), run(from_table));
    assert!(crate::srat::srat_from_dmesg("BIOS-e820: [mem 0x0-0x1] usable").is_none());
}

/// Found by the srat fuzz target (input kept as tests/data/fuzz_srat_numa_fake_unaligned.bin,
/// mode byte then table): an SRAT with an unaligned memory block and `numa=fake=16` on 6 GiB
/// with the PCI hole; a page-granular hole larger than the block's byte length made the
/// emulation subtract past zero, where Linux's u64 arithmetic wraps.
#[test]
fn numa_fake_over_an_unaligned_srat_block() {
    let input = include_bytes!("data/fuzz_srat_numa_fake_unaligned.bin");
    let (mode, table) = (input[0], input[1..].to_vec());
    let mut table = table;
    let len = table.len() as u32;
    table[4..8].copy_from_slice(&len.to_le_bytes());
    super::fix_checksum(&mut table);
    let memory = [
        PhysRange::new(0x1000, 0x9f000),
        PhysRange::new(0x10_0000, 0xbffd_f000),
        PhysRange::new(0x1_0000_0000, 0x1_c000_0000),
    ];
    let fake = alloc::format!("numa=fake={}", (mode >> 4) + 1);
    let l = layout_cmdline(Some(table), None, &memory, &fake);
    assert!(!l.possible.is_empty());
}
