//! Tier 3: NUMA boot scenarios. The kernel boots on the same QEMU machines that Debian's
//! Linux 6.1 booted on for tests/data/linux-6.1-qemu-*.dmesg, and its NUMA lines (SRAT
//! entries, block merges, fake nodes, node ranges, unavailable ranges, fallback orders) must
//! be Linux's, in Linux's order. Each boot then checks the nodes at work: per-node zones and
//! buddyinfo, device memory and DIMMs on their node, fallback and THISNODE, numastat.
mod common;

use std::time::Duration;

use boot::session::Session;
use common::*;

/// Linux's lines of `dmesg` that start with one of `prefixes` (timestamps removed).
fn linux_lines(dmesg: &str, prefixes: &[&str]) -> Vec<String> {
    let path = format!("{}/tests/data/{dmesg}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|l| l.split_once("] ").map_or(l, |(_, rest)| rest).to_string())
        .filter(|l| prefixes.iter().any(|p| l.starts_with(p)))
        .collect()
}

/// Every wanted line appears in the kernel's output, in order.
fn assert_in_order(out: &str, wanted: &[String]) {
    assert!(!wanted.is_empty());
    let mut got = out
        .lines()
        .map(|l| l.split_once("] ").map_or(l, |(_, rest)| rest));
    for w in wanted {
        assert!(
            got.any(|g| g == w),
            "Linux's line {w:?} is missing or out of order in:\n{out}"
        );
    }
}

const NUMA_PREFIXES: &[&str] = &[
    "SRAT: ",
    "ACPI: SRAT: ",
    "NUMA: Node ",
    "Faking ",
    "No NUMA",
    "Early memory node ranges",
    "  node ",
    "Initmem setup node",
    "Initializing node",
    "On node ",
];

/// `Fallback order for Node N: …` lines, as Linux 6.1 printed them on the same machine
/// (checked 2026-12-02; the saved dmesg files stop before build_all_zonelists).
fn fallback_lines(orders: &[&str]) -> Vec<String> {
    orders
        .iter()
        .enumerate()
        .map(|(n, o)| format!("Fallback order for Node {n}: {o} "))
        .collect()
}

/// The counter `key` of node `nid` in numastat's table (the `numastat` command).
fn numastat(out: &str, nid: usize, key: &str) -> u64 {
    // The header is the first line made of node names (a session's output starts with the
    // echoed command).
    let mut lines = out
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("node0"));
    let header: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    let col = header
        .iter()
        .position(|h| *h == format!("node{nid}"))
        .unwrap_or_else(|| panic!("no node{nid} column in:\n{out}"));
    lines
        .find_map(|l| {
            let mut w = l.split_whitespace();
            (w.next()? == key).then(|| w.nth(col)?.parse().ok())?
        })
        .unwrap_or_else(|| panic!("no {key} for node{nid} in:\n{out}"))
}

#[test]
fn two_nodes_with_a_distance_log_linux_srat_lines() {
    let res = boot(
        "--smp 2 --numa 512M,cpus=0 --numa 512M,cpus=1 --numa-dist 0,1,21",
        "numa\nbuddyinfo\nzoneinfo\nalloc 0 node 1\nalloc 3 dma32 node=1 thisnode\n\
         alloc 0 node 7\nalloc 0 interleave\nalloc 0 interleave\nnumastat\nnumastat 1\n\
         meminfo 1\npage 0x30000\nmemmap\npoweroff\n",
    );
    let out = &res.output;
    assert_in_order(out, &linux_lines("linux-6.1-qemu-two.dmesg", NUMA_PREFIXES));
    assert_in_order(out, &fallback_lines(&["0 1", "1 0"]));
    assert!(
        out.contains("Built 2 zonelists, mobility grouping"),
        "{out}"
    );
    assert!(out.contains("ACPI: SLIT "), "{out}");
    assert!(!out.contains("SLIT table looks invalid"));
    let numa = section(out, "numa");
    assert!(
        numa.starts_with("available: 2 nodes (0-1)\nnode 0 cpus: 0\n"),
        "{numa}"
    );
    assert!(numa.contains("node 1 cpus: 1\n"), "{numa}");
    assert!(
        numa.ends_with("node   0   1 \n  0:  10  21 \n  1:  21  10 \n"),
        "{numa}"
    );
    // Node 0 has DMA and the lower DMA32, node 1 the upper DMA32: three buddyinfo rows.
    let bi: Vec<&str> = section(out, "buddyinfo")
        .lines()
        .map(|l| &l[..22])
        .collect();
    assert_eq!(
        bi,
        [
            "Node 0, zone      DMA ",
            "Node 0, zone    DMA32 ",
            "Node 1, zone    DMA32 "
        ]
    );
    let zi = section(out, "zoneinfo");
    assert_eq!(node_zone_field(zi, 1, "DMA32", "start_pfn:"), 0x20000);
    assert_eq!(node_zone_field(zi, 1, "DMA", "present"), 0);
    assert_eq!(node_zone_field(zi, 0, "DMA32", "spanned"), 0x20000 - 0x1000);
    // DMA's protection is node 0's DMA32 managed / 256 (Linux's lowmem_reserve_ratio).
    let dma32 = node_zone_field(zi, 0, "DMA32", "managed");
    assert!(
        zi.contains(&format!("protection: (0, {0}, {0}, {0}, {0})", dma32 / 256)),
        "{zi}"
    );
    assert!(
        section(out, "alloc 0 node 1").contains("node 1, zone DMA32"),
        "{out}"
    );
    assert!(section(out, "alloc 3 dma32 node=1 thisnode").contains("node 1, zone DMA32"));
    assert!(section(out, "alloc 0 node 7").contains("node 7 does not exist"));
    let st = section(out, "numastat");
    // The boot CPU is on node 0: node 1's allocations are hits there and other_node.
    assert!(numastat(st, 1, "numa_hit") >= 3, "{st}");
    assert_eq!(
        numastat(st, 1, "other_node"),
        numastat(st, 1, "numa_hit"),
        "{st}"
    );
    assert_eq!(
        numastat(st, 0, "numa_miss") + numastat(st, 1, "numa_miss"),
        0,
        "{st}"
    );
    assert_eq!(
        numastat(st, 0, "interleave_hit") + numastat(st, 1, "interleave_hit"),
        2,
        "one interleaved page on each node: {st}"
    );
    assert!(
        st.starts_with(&format!("{:16}{:>16}{:>16}\n", "", "node0", "node1")),
        "{st}"
    );
    let one = section(out, "numastat 1");
    assert!(
        one.starts_with(&format!("numa_hit {}\n", numastat(st, 1, "numa_hit"))),
        "{one}"
    );
    let mi = section(out, "meminfo 1");
    assert!(mi.starts_with("Node 1 MemTotal:       "), "{mi}");
    assert!(mi.contains("\nNode 1 MemUsed:        "), "{mi}");
    assert!(
        section(out, "page 0x30000").contains(" node:1 zone:DMA32 "),
        "{out}"
    );
    // The memmap view marks the nodes: node 1's DMA32 starts at 512 MiB.
    assert!(section(out, "memmap").contains("0x020000000-"), "{out}");
    assert!(section(out, "memmap").contains("    1 DMA32 "), "{out}");
}

/// DIMMs on node 1, cold- and hot-plugged (the hotplug controller's proximity register,
/// through the SRAT), then node 1 exhausted: allocations preferring it fall back to node 0
/// (numa_miss there, numa_foreign on node 1), and THISNODE ones fail.
#[test]
fn dimms_join_their_node_and_allocations_fall_back_by_distance() {
    let sock = monitor_socket("numa-hotplug.sock");
    let mut o = opts(
        "--smp 2 --numa 256M,cpus=0 --numa 128M,cpus=1 --numa-dist 0,1,21 \
         --slots 2 --maxmem 2G --dimm 128M,node=1",
    );
    o.monitor = Some(sock.clone());
    let mut s = Session::start(&o).unwrap();
    let t = Duration::from_secs(120);
    let log = s.wait_for_count(boot::qemu::PROMPT, 1, t).unwrap();
    assert!(log.contains("onlined on node 1: 32512 pages"), "{log}");
    let zi = s.command("zoneinfo", t).unwrap();
    assert_eq!(node_zone_field(&zi, 1, "Normal", "present"), 32768, "{zi}");
    assert_eq!(node_zone_field(&zi, 0, "Normal", "present"), 0, "{zi}");
    monitor(
        &sock,
        &[
            "object_add memory-backend-ram,id=hp2,size=128M",
            "device_add pc-dimm,id=dimm2,memdev=hp2,node=1",
        ],
    );
    let scan = s.command("hotplug scan", t).unwrap();
    assert!(scan.contains("onlined on node 1: 32512 pages"), "{scan}");
    let zi = s.command("zoneinfo", t).unwrap();
    assert_eq!(node_zone_field(&zi, 1, "Normal", "present"), 65536, "{zi}");
    let list = s.command("hotplug list", t).unwrap();
    assert_eq!(
        list.matches(" node 1 online (System RAM)").count(),
        2,
        "{list}"
    );
    // Node 1 holds 128 MiB of DMA32 and 256 MiB of Normal: 4 MiB blocks run out after at
    // most 96, then come from node 0.
    let (mut on1, mut on0) = (0, 0);
    for _ in 0..110 {
        let a = s.command("alloc 10 node 1", t).unwrap();
        if a.contains("node 1, zone") {
            assert_eq!(on0, 0, "back on node 1 after falling back: {a}");
            on1 += 1;
        } else if a.contains("node 0, zone") {
            on0 += 1;
        } else {
            panic!("{a}");
        }
    }
    assert!(
        on1 > 80 && on0 > 0,
        "{on1} blocks on node 1, {on0} on node 0"
    );
    let st = s.command("numastat", t).unwrap();
    assert_eq!(numastat(&st, 0, "numa_miss"), on0, "{st}");
    assert_eq!(numastat(&st, 1, "numa_foreign"), on0, "{st}");
    let none = s.command("alloc 10 node 1 thisnode", t).unwrap();
    assert!(none.contains("no free block"), "{none}");
    assert!(
        s.command("alloc 10 node 0 thisnode", t)
            .unwrap()
            .contains("node 0, zone")
    );
    let stress = s.command("stress 20000", Duration::from_secs(300)).unwrap();
    assert!(
        stress.contains(" operations on ")
            && stress.contains(" cycles per operation, check passed"),
        "{stress}"
    );
    s.send("poweroff").unwrap();
    let (outcome, out) = s.finish(Duration::from_secs(60));
    assert_eq!(outcome, boot::Outcome::Success, "{out}");
}

/// Linux's run: `-m 2G,slots=2,maxmem=4G` with the NVDIMM in one of the slots; the runner
/// adds the NVDIMM's slot and size to `--slots`/`--maxmem`, so 1 and 4G-128M give the same
/// machine (and the same hot-plug area in the SRAT).
#[test]
fn four_nodes_memoryless_one_and_an_nvdimm_on_node_2() {
    let res = boot(
        "--smp 4 --numa 512M,cpus=0 --numa 512M,cpus=1 --numa 1G,cpus=2 --numa 0,cpus=3 \
         --nvdimm 128M,node=2 --slots 1 --maxmem 3968M",
        "numa\nzoneinfo\nalloc 0 node 3 thisnode\nalloc 0 node 3\nnumastat 0\npmem list\n\
         cpus\npoweroff\n",
    );
    let out = &res.output;
    assert_in_order(
        out,
        &linux_lines("linux-6.1-qemu-four.dmesg", NUMA_PREFIXES),
    );
    assert_in_order(
        out,
        &fallback_lines(&["0 1 2", "1 2 0", "2 0 1", "3 0 1 2"]),
    );
    assert!(
        out.contains("Built 4 zonelists, mobility grouping"),
        "{out}"
    );
    assert!(
        out.contains("proximity domain 2, flags 0x3, attributes 0x8008"),
        "the NVDIMM's NFIT range names node 2's PXM:\n{out}"
    );
    // The NVDIMM's struct pages are node 2's ZONE_DEVICE (Linux's target_node).
    let zi = section(out, "zoneinfo");
    assert_eq!(node_zone_field(zi, 2, "Device", "spanned"), 32768, "{zi}");
    assert_eq!(node_zone_field(zi, 2, "Device", "present"), 0, "{zi}");
    assert_eq!(node_zone_field(zi, 0, "Device", "spanned"), 0, "{zi}");
    assert_eq!(node_zone_field(zi, 3, "DMA32", "present"), 0, "{zi}");
    let numa = section(out, "numa");
    assert!(numa.starts_with("available: 4 nodes (0-3)\n"), "{numa}");
    assert!(
        numa.contains("node 3 cpus: 3\nnode 3 size: 0 MB\n"),
        "{numa}"
    );
    assert!(
        section(out, "pmem list").contains("] node 2 128 MiB data"),
        "{out}"
    );
    // Memoryless node 3: THISNODE fails, otherwise its first fallback, node 0.
    assert!(section(out, "alloc 0 node 3 thisnode").contains("no free block"));
    assert!(
        section(out, "alloc 0 node 3").contains("node 0, zone"),
        "{out}"
    );
}

#[test]
fn numa_fake_4_splits_as_linux() {
    let res = boot("--mem 1G --cmdline numa=fake=4", "poweroff\n");
    assert_in_order(
        &res.output,
        &linux_lines("linux-6.1-qemu-fake.dmesg", NUMA_PREFIXES),
    );
}
