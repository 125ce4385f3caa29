//! ZONE_MOVABLE placement (`mm::movable`) against Linux 6.1 itself: Debian's 6.1 kernel was
//! booted in QEMU 7.2 with `kernelcore=` / `movablecore=` / `movable_node` on 2 GiB, 4 GiB and
//! two-node maps; its dmesg excerpts and /proc/zoneinfo spans are in tests/data/
//! (`linux-6.1-qemu-{movablecore,kernelcore,...}.{dmesg,zoneinfo}`). Each test rebuilds
//! memblock from the dmesg's own e820 and SRAT lines (checked against its `Early memory node
//! ranges`), runs the module on it and compares the `Zone ranges:` / `Movable zone start for each
//! node` / `  Node N: 0x...` block and every zone's start_pfn, spanned and present pages. Then
//! edge cases and a property test over random layouts and parameters.

use mm::ZoneId;
use mm::movable::{
    ArchZoneRanges, CoreParams, MAX_ORDER_NR_PAGES, MovableWarning, Nid, ZoneMovable, ZoneSpan,
    calculate_node_totalpages, find_zone_movable_pfns_for_nodes, get_pfn_range_for_nid,
};
use proptest::prelude::*;

const M: u64 = 256; // pages per MiB
const G: u64 = 1024 * M;

/// What the tests read from one saved Linux boot.
struct LinuxBoot {
    lines: Vec<String>,
    /// memblock.memory as pfn ranges with node ids.
    mem: Vec<(u64, u64, Nid)>,
    /// SRAT ranges marked hotplug (pfns).
    hotplug: Vec<(u64, u64)>,
    /// (nid, zone name, spanned, present, start_pfn if printed) from /proc/zoneinfo.
    zoneinfo: Vec<(Nid, String, u64, u64, Option<u64>)>,
}

fn data(name: &str) -> String {
    let path = format!("{}/../../tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn hex(s: &str) -> u64 {
    u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap()
}

/// `[mem 0xA-0xB]` -> (A, B + 1).
fn mem_range(s: &str) -> (u64, u64) {
    let inner = s.split("[mem ").nth(1).unwrap().split(']').next().unwrap();
    let (a, b) = inner.split_once('-').unwrap();
    (hex(a), hex(b) + 1)
}

fn load(base: &str) -> LinuxBoot {
    let lines: Vec<String> = data(&format!("{base}.dmesg"))
        .lines()
        .map(|l| match l.find("] ") {
            Some(i) if l.starts_with('[') => l[i + 2..].to_string(),
            _ => l.to_string(),
        })
        .collect();
    // e820 usable RAM, minus page 0 and 0xa0000-0xfffff (Linux's trim_bios_range /
    // e820__memblock_setup), in pfns.
    let mut ram = Vec::new();
    let mut srat = Vec::new();
    let mut hotplug = Vec::new();
    for l in &lines {
        if l.starts_with("BIOS-e820:") && l.ends_with("usable") {
            let (s, e) = mem_range(l);
            for (s, e) in [(s, e.min(0xa0000)), (s.max(0x100000), e)] {
                let s = s.max(0x1000);
                let (s, e) = (s.div_ceil(4096), e / 4096);
                if s < e {
                    ram.push((s, e));
                }
            }
        }
        if let Some(rest) = l.strip_prefix("ACPI: SRAT: Node ") {
            let nid: Nid = rest.split(' ').next().unwrap().parse().unwrap();
            let (s, e) = mem_range(rest);
            if rest.ends_with("hotplug") {
                hotplug.push((s / 4096, e / 4096));
            } else {
                srat.push((nid, s / 4096, e / 4096));
            }
        }
    }
    ram.dedup();
    let mut mem = Vec::new();
    for (s, e) in ram {
        if srat.is_empty() {
            mem.push((s, e, 0));
        }
        for &(nid, ns, ne) in &srat {
            let (a, b) = (s.max(ns), e.min(ne));
            if a < b {
                mem.push((a, b, nid));
            }
        }
    }
    mem.sort_unstable();
    // Self-check: the reconstruction is Linux's memblock.
    let early: Vec<(u64, u64, Nid)> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("  node "))
        .map(|r| {
            let nid = r.split(':').next().unwrap().trim().parse().unwrap();
            let (s, e) = mem_range(r);
            (s / 4096, e / 4096, nid)
        })
        .collect();
    assert_eq!(mem, early, "{base}: memblock rebuilt from e820 + SRAT");

    let mut zoneinfo = Vec::new();
    let zi = data(&format!("{base}.zoneinfo"));
    let mut it = zi.lines().peekable();
    while let Some(l) = it.next() {
        let Some(rest) = l.strip_prefix("Node ") else {
            continue;
        };
        let nid = rest.split(',').next().unwrap().parse().unwrap();
        let zone = rest.split("zone").nth(1).unwrap().trim().to_string();
        let mut field = |name: &str| {
            let l = it.next().unwrap();
            assert!(l.trim_start().starts_with(name), "{l}");
            l.split_whitespace().last().unwrap().parse::<u64>().unwrap()
        };
        let spanned = field("spanned");
        let present = field("present");
        let _managed = field("managed");
        let start = it
            .peek()
            .filter(|l| l.contains("start_pfn"))
            .map(|l| l.split_whitespace().last().unwrap().parse().unwrap());
        if start.is_some() {
            it.next();
        }
        zoneinfo.push((nid, zone, spanned, present, start));
    }
    LinuxBoot {
        lines,
        mem,
        hotplug,
        zoneinfo,
    }
}

impl LinuxBoot {
    /// The lines from `Zone ranges:` up to `Early memory node ranges` (exclusive).
    fn zone_block(&self) -> Vec<String> {
        let start = self.lines.iter().position(|l| l == "Zone ranges:").unwrap();
        let end = self
            .lines
            .iter()
            .position(|l| l == "Early memory node ranges")
            .unwrap();
        self.lines[start..end].to_vec()
    }

    fn command_line(&self) -> &str {
        self.lines
            .iter()
            .find_map(|l| l.strip_prefix("Command line: "))
            .unwrap()
    }
}

fn nodes(mem: &[(u64, u64, Nid)]) -> Vec<Nid> {
    let mut v: Vec<Nid> = mem.iter().map(|r| r.2).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Runs the module on a saved boot and asserts Linux's lines and zone spans; returns the
/// Movable starts (pfns) per node.
fn check_against_linux(base: &str, param: &str, params: CoreParams) -> Vec<u64> {
    let boot = load(base);
    assert!(
        boot.command_line().split(' ').any(|w| w == param),
        "{base}: {}",
        boot.command_line()
    );
    let arch = ArchZoneRanges::for_memory(&boot.mem);
    let zm = find_zone_movable_pfns_for_nodes(&boot.mem, &boot.hotplug, &params, &arch);
    let mut out = String::new();
    arch.write(&mut out).unwrap();
    zm.write(&mut out).unwrap();
    let ours: Vec<&str> = out.lines().collect();
    assert_eq!(ours, boot.zone_block(), "{base}: boot lines");
    for w in &zm.warnings {
        let line = w.to_string();
        assert!(boot.lines.contains(&line), "{base}: {line}");
    }

    for nid in nodes(&boot.mem) {
        let zones = calculate_node_totalpages(&boot.mem, &zm, &arch, nid);
        for z in ZoneId::ALL {
            let linux = boot
                .zoneinfo
                .iter()
                .find(|e| e.0 == nid && e.1 == z.name())
                .unwrap_or_else(|| panic!("{base}: node {nid} zone {}", z.name()));
            let ours = zones[z.index()];
            assert_eq!(
                (ours.spanned_pages, ours.present_pages),
                (linux.2, linux.3),
                "{base}: node {nid} zone {} spanned/present",
                z.name()
            );
            if let Some(start) = linux.4 {
                assert_eq!(
                    ours.zone_start_pfn,
                    start,
                    "{base}: node {nid} {}",
                    z.name()
                );
            }
        }
    }
    check_machine_against_linux(base, &boot, &params);
    zm.zone_movable_pfn.clone()
}

/// The whole memory manager booted on the same memory map with the same parameters: every
/// zone of every node has Linux's start, spanned and present pages, its boot lines are
/// Linux's, each struct page is in the zone its pfn's placement says, and the checker passes.
fn check_machine_against_linux(base: &str, boot: &LinuxBoot, params: &CoreParams) {
    let mut mb = mm::Memblock::new();
    for &(s, e, nid) in &boot.mem {
        mb.add_node(s << 12, (e - s) << 12, nid).unwrap();
    }
    // x86 Linux reserves the whole first MiB (`reserve_real_mode`), which is x86's
    // `dma_reserve` below.
    mb.reserve(0, 1 << 20).unwrap();
    let nr_nodes = nodes(&boot.mem).last().map_or(1, |&n| usize::from(n) + 1);
    let topology = mm::Topology::new(nr_nodes, Vec::new(), vec![vec![0]]).unwrap();
    let opts = mm::mm_init::InitOptions {
        core: *params,
        hotpluggable: boot
            .hotplug
            .iter()
            .map(|&(s, e)| (s << 12, e << 12))
            .collect(),
        ..Default::default()
    };
    let m = mm::Machine::init_with(mm::testing::FakePlatform::new(), mb, topology, &opts)
        .unwrap_or_else(|e| panic!("{base}: {e}"));
    m.check().unwrap_or_else(|e| panic!("{base}: {e}"));
    let mut out = String::new();
    m.write_zone_ranges(&mut out).unwrap();
    let block: Vec<&str> = out
        .lines()
        .skip_while(|l| *l != "Zone ranges:")
        .take_while(|l| *l != "Early memory node ranges")
        .collect();
    assert_eq!(block, boot.zone_block(), "{base}: the machine's boot lines");
    for w in &m.zone_movable().warnings {
        let line = w.to_string();
        assert!(out.starts_with(&line), "{base}: {line} first");
        assert!(boot.lines.contains(&line), "{base}: {line}");
    }
    for (nid, name, spanned, present, start) in &boot.zoneinfo {
        let Some(z) = ZoneId::ALL.into_iter().find(|z| z.name() == name) else {
            panic!("{base}: zone {name}");
        };
        let zone = m.node(usize::from(*nid)).unwrap().zone(z);
        assert_eq!(
            (zone.spanned(), zone.present()),
            (*spanned, *present),
            "{base}: machine node {nid} zone {name} spanned/present"
        );
        if let Some(start) = start {
            assert_eq!(
                zone.start_pfn(),
                *start,
                "{base}: machine node {nid} {name}"
            );
        }
    }
    // Linux's `Built N zonelists, mobility grouping on.  Total pages: N` at boot, from the
    // zones' estimates with Linux's 64-byte struct page.
    let built = boot
        .lines
        .iter()
        .find(|l| l.starts_with("Built "))
        .unwrap_or_else(|| panic!("{base}: no Built line"));
    let total: u64 = built.rsplit(' ').next().unwrap().parse().unwrap();
    assert_eq!(m.boot_total_pages(64), total, "{base}: {built}");
    let mut zl = String::new();
    m.write_zonelist_summary(&mut zl).unwrap();
    let ours = m.boot_total_pages(core::mem::size_of::<mm::Page>() as u64);
    assert!(
        zl.contains(&format!("Total pages: {ours}\n")),
        "{base}: {zl}"
    );
    // Every present struct page of a Movable zone's span says Movable, and none outside it
    // does (holes past a zone's end take the zone before them, as Linux's
    // `init_unavailable_range` does: "zone Movable: 32 pages in unavailable ranges").
    for node in m.nodes() {
        let mz = node.zone(ZoneId::Movable);
        for (start, pages) in m.sparse().memmap_chunks() {
            for (i, p) in pages.iter().enumerate() {
                let pfn = start + i as u64;
                if p.nid() != node.id() || p.is_device() {
                    continue;
                }
                let hole = p.flags().contains(mm::PageFlags::HOLE);
                if mz.spans(pfn) && !hole {
                    assert_eq!(p.zone(), ZoneId::Movable, "{base}: pfn {pfn:#x}");
                } else if !mz.spans(pfn) && !hole {
                    assert_ne!(p.zone(), ZoneId::Movable, "{base}: pfn {pfn:#x}");
                }
            }
        }
    }
}

#[test]
fn movablecore_256m_on_2g_starts_at_0x70000000() {
    let zm = check_against_linux(
        "linux-6.1-qemu-movablecore",
        "movablecore=256M",
        CoreParams {
            required_movablecore: 256 * M,
            ..CoreParams::default()
        },
    );
    assert_eq!(zm, [0x70000]);
}

#[test]
fn kernelcore_1g_on_2g() {
    let zm = check_against_linux(
        "linux-6.1-qemu-kernelcore",
        "kernelcore=1G",
        CoreParams {
            required_kernelcore: G,
            ..CoreParams::default()
        },
    );
    assert_eq!(zm, [0x40400]);
}

#[test]
fn movablecore_25_percent_on_2g() {
    let zm = check_against_linux(
        "linux-6.1-qemu-movablecore-percent",
        "movablecore=25%",
        CoreParams {
            required_movablecore_percent: 25,
            ..CoreParams::default()
        },
    );
    assert_eq!(zm, [0x60000]);
}

#[test]
fn movablecore_512m_on_two_nodes_spreads_kernelcore_evenly() {
    let zm = check_against_linux(
        "linux-6.1-qemu-movablecore-numa",
        "movablecore=512M",
        CoreParams {
            required_movablecore: 512 * M,
            ..CoreParams::default()
        },
    );
    assert_eq!(zm, [0x30400, 0x70000]);
}

#[test]
fn movablecore_1900m_on_uneven_nodes() {
    let zm = check_against_linux(
        "linux-6.1-qemu-movablecore-numa-uneven",
        "movablecore=1900M",
        CoreParams {
            required_movablecore: 1900 * M,
            ..CoreParams::default()
        },
    );
    assert_eq!(zm, [0x4c00, 0x74c00]);
}

#[test]
fn kernelcore_1g_with_a_node_too_small_for_its_share() {
    // Node 1 (256 MiB) cannot hold its 512 MiB of kernelcore: the second pass gives the rest
    // to node 0, and node 1 has no Movable zone at all.
    let zm = check_against_linux(
        "linux-6.1-qemu-kernelcore-small-node",
        "kernelcore=1G",
        CoreParams {
            required_kernelcore: G,
            ..CoreParams::default()
        },
    );
    assert_eq!(zm, [0x30400, 0]);
}

#[test]
fn movablecore_1g_on_4g_comes_out_of_normal() {
    let zm = check_against_linux(
        "linux-6.1-qemu-movablecore-4g",
        "movablecore=1G",
        CoreParams {
            required_movablecore: G,
            ..CoreParams::default()
        },
    );
    assert_eq!(zm, [0x100000]);
}

#[test]
fn kernelcore_2g_on_two_nodes_with_4g() {
    // Node 0 lies wholly below Normal: all its memory is kernel memory and it gets no
    // Movable zone; node 1's Movable zone is all of its Normal memory.
    let zm = check_against_linux(
        "linux-6.1-qemu-kernelcore-numa-4g",
        "kernelcore=2G",
        CoreParams {
            required_kernelcore: 2 * G,
            ..CoreParams::default()
        },
    );
    assert_eq!(zm, [0, 0x100000]);
}

#[test]
fn kernelcore_and_movablecore_the_larger_kernelcore_wins() {
    let params = CoreParams {
        required_kernelcore: 1500 * M,
        required_movablecore: G,
        ..CoreParams::default()
    };
    let zm = check_against_linux(
        "linux-6.1-qemu-kernelcore-movablecore",
        "kernelcore=1500M",
        params,
    );
    assert_eq!(zm, [0x5e000]);
    // With a smaller kernelcore, movablecore's kernel part wins: as movablecore alone.
    let boot = load("linux-6.1-qemu-movablecore");
    let arch = ArchZoneRanges::for_memory(&boot.mem);
    let both = CoreParams {
        required_kernelcore: 256 * M,
        required_movablecore: 256 * M,
        ..CoreParams::default()
    };
    let zm = find_zone_movable_pfns_for_nodes(&boot.mem, &[], &both, &arch);
    assert_eq!(zm.zone_movable_pfn, [0x70000]);
}

#[test]
fn movablecore_over_100_percent_makes_no_movable_zone() {
    let zm = check_against_linux(
        "linux-6.1-qemu-movablecore-over100",
        "movablecore=150%",
        CoreParams {
            required_movablecore_percent: 150,
            ..CoreParams::default()
        },
    );
    assert_eq!(zm, [0]);
    let boot = load("linux-6.1-qemu-movablecore-over100");
    assert!(
        boot.lines
            .iter()
            .any(|l| l.contains("WARNING") && l.contains("cmdline_parse_core"))
    );
}

#[test]
fn movablecore_abc_reads_as_zero() {
    // Linux reads the word as movablecore=0 (the firmware parser refuses it instead).
    let zm = check_against_linux(
        "linux-6.1-qemu-movablecore-abc",
        "movablecore=abc",
        CoreParams::default(),
    );
    assert_eq!(zm, [0]);
}

#[test]
fn movable_node_with_hotplug_memory_only_above_ram() {
    // QEMU's SRAT marks only the DIMM area (slots/maxmem) hot-pluggable: no boot RAM in it.
    let boot = load("linux-6.1-qemu-movable-node");
    assert_eq!(boot.hotplug, [(0x100000, 0x200000)]);
    let zm = check_against_linux(
        "linux-6.1-qemu-movable-node",
        "movable_node",
        CoreParams {
            movable_node: true,
            ..CoreParams::default()
        },
    );
    assert_eq!(zm, [0]);
}

#[test]
fn kernelcore_mirror_without_mirrored_memory() {
    // 6.1 on a machine without mirrored memory: everything from 4 GiB up is Movable, with
    // the warning; Normal is then empty.
    let zm = check_against_linux(
        "linux-6.1-qemu-kernelcore-mirror-4g",
        "kernelcore=mirror",
        CoreParams {
            mirrored_kernelcore: true,
            ..CoreParams::default()
        },
    );
    assert_eq!(zm, [0x100000]);
    let boot = load("linux-6.1-qemu-kernelcore-mirror-4g");
    let arch = ArchZoneRanges::for_memory(&boot.mem);
    let p = CoreParams {
        mirrored_kernelcore: true,
        required_movablecore: G, // ignored with mirror
        ..CoreParams::default()
    };
    let zm = find_zone_movable_pfns_for_nodes(&boot.mem, &[], &p, &arch);
    assert_eq!(zm.warnings, [MovableWarning::UnmirroredKernelMemory]);
    assert_eq!(zm.zone_movable_pfn, [0x100000]);
    // On 2 GiB there is nothing above 4 GiB: no Movable zone, the same warning.
    let boot = load("linux-6.1-qemu-movablecore");
    let arch = ArchZoneRanges::for_memory(&boot.mem);
    let zm = find_zone_movable_pfns_for_nodes(&boot.mem, &[], &p, &arch);
    assert_eq!(zm.zone_movable_pfn, [0]);
    assert_eq!(zm.warnings, [MovableWarning::UnmirroredKernelMemory]);
}

#[test]
fn no_parameters_no_movable_lines() {
    let boot = load("linux-6.1-qemu-movablecore");
    let arch = ArchZoneRanges::for_memory(&boot.mem);
    let zm = find_zone_movable_pfns_for_nodes(&boot.mem, &[], &CoreParams::default(), &arch);
    assert!(!zm.any());
    let mut out = String::new();
    zm.write(&mut out).unwrap();
    assert_eq!(out, "Movable zone start for each node\n");
    let none = ZoneMovable::none(&arch);
    assert_eq!(none.movable_zone, ZoneId::Dma32);
    let zones = calculate_node_totalpages(&boot.mem, &none, &arch, 0);
    assert_eq!(
        zones[ZoneId::Dma32.index()],
        ZoneSpan {
            zone_start_pfn: 0x1000,
            spanned_pages: 520160,
            present_pages: 520160
        }
    );
    assert_eq!(zones[ZoneId::Movable.index()], ZoneSpan::default());
}

/// QEMU's 2 GiB map as memblock sees it.
const QEMU_2G: [(u64, u64, Nid); 2] = [(0x1, 0x9f, 0), (0x100, 0x7ffe0, 0)];

fn zm_2g(p: CoreParams) -> Vec<u64> {
    let arch = ArchZoneRanges::for_memory(&QEMU_2G);
    find_zone_movable_pfns_for_nodes(&QEMU_2G, &[], &p, &arch).zone_movable_pfn
}

#[test]
fn edge_sizes() {
    let total = 0x9e + 0x7fee0;
    let kc = |n| CoreParams {
        required_kernelcore: n,
        ..CoreParams::default()
    };
    let mc = |n| CoreParams {
        required_movablecore: n,
        ..CoreParams::default()
    };
    // kernelcore at least the RAM, or 0: none.
    assert_eq!(zm_2g(kc(total)), [0]);
    assert_eq!(zm_2g(kc(4 * G)), [0]);
    assert_eq!(zm_2g(kc(u64::MAX)), [0]);
    assert_eq!(zm_2g(kc(0)), [0]);
    // One page short of all RAM: rounding the start up reaches the node's end: none.
    assert_eq!(zm_2g(kc(total - 1)), [0]);
    // A kernelcore inside DMA: Movable starts at DMA32 (usable_startpfn), everything below
    // is kernel memory anyway.
    assert_eq!(zm_2g(kc(1)), [0x1000]);
    // movablecore 0: none; at least all RAM: none (no kernelcore left); 1 page: one
    // MAX_ORDER block at the top, rounded.
    assert_eq!(zm_2g(mc(0)), [0]);
    assert_eq!(zm_2g(mc(total)), [0]);
    assert_eq!(zm_2g(mc(u64::MAX)), [0]);
    assert_eq!(zm_2g(mc(1)), [0x7fc00]);
    let pct = |k, m| CoreParams {
        required_kernelcore_percent: k,
        required_movablecore_percent: m,
        ..CoreParams::default()
    };
    assert_eq!(zm_2g(pct(100, 0)), [0]);
    assert_eq!(zm_2g(pct(0, 100)), [0]);
    assert_eq!(zm_2g(pct(250, 0)), [0]);
    assert_eq!(zm_2g(pct(u64::MAX, u64::MAX)), [0]);
    assert_eq!(zm_2g(pct(50, 0)), [0x40400]);
    // A percentage overrides a size of the same parameter (Linux keeps both, the
    // percentage is computed last).
    let p = CoreParams {
        required_movablecore: 256 * M,
        required_movablecore_percent: 25,
        ..CoreParams::default()
    };
    assert_eq!(zm_2g(p), [0x60000]);
    // movable_node ignores kernelcore and movablecore.
    let p = CoreParams {
        movable_node: true,
        required_movablecore: G,
        ..CoreParams::default()
    };
    assert_eq!(zm_2g(p), [0]);
    // Empty memory.
    let arch = ArchZoneRanges::for_memory(&[]);
    let zm = find_zone_movable_pfns_for_nodes(&[], &[], &kc(G), &arch);
    assert!(zm.zone_movable_pfn.is_empty());
}

#[test]
fn movable_node_makes_hotpluggable_nodes_movable() {
    // Node 1 hot-pluggable from 1.5 GiB (SRAT hotplug flag): Movable from there, the lowest
    // hot-pluggable start of the node, rounded; node 0 untouched; kernelcore ignored.
    let mem = [
        (0x1, 0x9f, 0),
        (0x100, 0x40000, 0),
        (0x40000, 0x60000, 1),
        (0x60000, 0x7ffe0, 1),
    ];
    let arch = ArchZoneRanges::for_memory(&mem);
    let p = CoreParams {
        movable_node: true,
        required_kernelcore: 100 * M,
        ..CoreParams::default()
    };
    let zm = find_zone_movable_pfns_for_nodes(
        &mem,
        &[(0x60100, 0x70000), (0x70000, 0x80000), (0x200000, 0x300000)],
        &p,
        &arch,
    );
    assert_eq!(zm.zone_movable_pfn, [0, 0x60400]);
    let zones = calculate_node_totalpages(&mem, &zm, &arch, 1);
    assert_eq!(
        zones[ZoneId::Dma32.index()],
        ZoneSpan {
            zone_start_pfn: 0x40000,
            spanned_pages: 0x20400,
            present_pages: 0x20400
        }
    );
    assert_eq!(
        zones[ZoneId::Movable.index()],
        ZoneSpan {
            zone_start_pfn: 0x60400,
            spanned_pages: 0x7ffe0 - 0x60400,
            present_pages: 0x7ffe0 - 0x60400
        }
    );
}

#[test]
fn holes_inside_movable_are_absent() {
    // 4 GiB-style map with a hole in the Normal memory that becomes Movable.
    let mem = [
        (0x1, 0x9f, 0),
        (0x100, 0xbffe0, 0),
        (0x100000, 0x120000, 0),
        (0x130000, 0x140000, 0),
    ];
    let arch = ArchZoneRanges::for_memory(&mem);
    assert_eq!(arch.range(ZoneId::Normal), (0x100000, 0x140000));
    let span =
        |zm: &ZoneMovable, z: ZoneId| calculate_node_totalpages(&mem, zm, &arch, 0)[z.index()];
    let mc = |pages| CoreParams {
        required_movablecore: pages,
        ..CoreParams::default()
    };
    // 0x30000 pages of Normal RAM. movablecore=384M (0x18000 pages): the kernel part ends
    // inside the first Normal range and the hole lies in Movable.
    let zm = find_zone_movable_pfns_for_nodes(&mem, &[], &mc(384 * M), &arch);
    assert_eq!(zm.movable_zone, ZoneId::Normal);
    assert_eq!(zm.zone_movable_pfn, [0x118000]);
    let s = |start, spanned, present| ZoneSpan {
        zone_start_pfn: start,
        spanned_pages: spanned,
        present_pages: present,
    };
    assert_eq!(span(&zm, ZoneId::Normal), s(0x100000, 0x18000, 0x18000));
    assert_eq!(span(&zm, ZoneId::Movable), s(0x118000, 0x28000, 0x18000));
    // movablecore=128M: the kernel part fills the first range and half the second; the hole
    // is in Normal.
    let zm = find_zone_movable_pfns_for_nodes(&mem, &[], &mc(128 * M), &arch);
    assert_eq!(zm.zone_movable_pfn, [0x138000]);
    assert_eq!(span(&zm, ZoneId::Normal), s(0x100000, 0x38000, 0x28000));
    assert_eq!(span(&zm, ZoneId::Movable), s(0x138000, 0x8000, 0x8000));
    // movablecore=256M: the kernel part ends exactly at the hole; Movable starts there and
    // spans it (Linux does not move the start past a hole).
    let zm = find_zone_movable_pfns_for_nodes(&mem, &[], &mc(256 * M), &arch);
    assert_eq!(zm.zone_movable_pfn, [0x120000]);
    assert_eq!(span(&zm, ZoneId::Normal), s(0x100000, 0x20000, 0x20000));
    assert_eq!(span(&zm, ZoneId::Movable), s(0x120000, 0x20000, 0x10000));
    // DMA32 keeps its hole at the top (0xbffe0..0x100000) whatever Movable does.
    assert_eq!(
        span(&zm, ZoneId::Dma32),
        s(0x1000, 0xff000, 0xbffe0 - 0x1000)
    );
}

prop_compose! {
    /// 1-4 nodes of 1-6 ranges each, with holes, anywhere below 16 GiB.
    fn layout()(pieces in prop::collection::vec((0u64..0x20000, 1u64..0x40000, 0u16..4), 1..12))
        -> Vec<(u64, u64, Nid)> {
        let mut pos = 1u64;
        let mut v = Vec::new();
        let mut pieces = pieces;
        pieces.sort_by_key(|p| p.2);
        for (gap, len, nid) in pieces {
            let s = pos + gap;
            v.push((s, s + len, nid));
            pos = s + len;
        }
        v
    }
}

fn params() -> impl Strategy<Value = CoreParams> {
    (
        prop_oneof![Just(0u64), 0u64..0x400000, Just(u64::MAX)],
        prop_oneof![Just(0u64), 0u64..=100, 101u64..1000],
        prop_oneof![Just(0u64), 0u64..0x400000, Just(u64::MAX)],
        prop_oneof![Just(0u64), 0u64..=100, 101u64..1000],
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.1),
    )
        .prop_map(|(kc, kcp, mc, mcp, mirror, node)| CoreParams {
            required_kernelcore: kc,
            required_kernelcore_percent: kcp,
            required_movablecore: mc,
            required_movablecore_percent: mcp,
            mirrored_kernelcore: mirror,
            movable_node: node,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any layout and parameters: no panic; every Movable start is 0 or MAX_ORDER-aligned
    /// inside its node; the zones of a node are disjoint, ascending, inside the node, and
    /// (without mirror) their present pages add up to the node's RAM, Movable last.
    #[test]
    fn movable_layout_invariants(
        mem in layout(),
        hot in prop::collection::vec((0u64..0x200000, 1u64..0x80000), 0..3),
        p in params(),
    ) {
        let hot: Vec<(u64, u64)> = hot.into_iter().map(|(s, l)| (s, s + l)).collect();
        let arch = ArchZoneRanges::for_memory(&mem);
        let zm = find_zone_movable_pfns_for_nodes(&mem, &hot, &p, &arch);
        for nid in nodes(&mem) {
            let (ns, ne) = get_pfn_range_for_nid(&mem, nid);
            let start = zm.pfn(nid);
            if start != 0 {
                prop_assert_eq!(start % MAX_ORDER_NR_PAGES, 0);
                prop_assert!(ns <= start.max(ns) && start < ne, "{:#x} in {:#x}-{:#x}", start, ns, ne);
            }
            let zones = calculate_node_totalpages(&mem, &zm, &arch, nid);
            let ram: u64 = mem.iter().filter(|r| r.2 == nid).map(|r| r.1 - r.0).sum();
            let mut prev_end = 0;
            let mut present = 0;
            for z in ZoneId::ALL {
                let s = zones[z.index()];
                prop_assert!(s.present_pages <= s.spanned_pages);
                if s.spanned_pages == 0 {
                    prop_assert_eq!(s.zone_start_pfn, 0);
                    continue;
                }
                prop_assert!(s.zone_start_pfn >= ns && s.zone_start_pfn + s.spanned_pages <= ne);
                if !p.mirrored_kernelcore {
                    prop_assert!(s.zone_start_pfn >= prev_end, "{:?} overlaps", z);
                }
                prev_end = s.zone_start_pfn + s.spanned_pages;
                present += s.present_pages;
                if start != 0 && z != ZoneId::Movable && !p.mirrored_kernelcore {
                    prop_assert!(prev_end <= start);
                }
            }
            if !p.mirrored_kernelcore {
                prop_assert_eq!(present, ram, "node {} present pages", nid);
            }
            if start == 0 {
                prop_assert_eq!(zones[ZoneId::Movable.index()], ZoneSpan::default());
            }
        }
    }

    /// One node, kernelcore= only: when there is a Movable zone, the kernel zones hold at
    /// least the requested pages; movablecore= only: Movable holds at most the request
    /// rounded up to MAX_ORDER_NR_PAGES.
    #[test]
    fn movable_single_node_sizes(mem in layout(), n in 1u64..0x400000, kernel in any::<bool>()) {
        let mem: Vec<_> = mem.into_iter().map(|(s, e, _)| (s, e, 0)).collect();
        let p = if kernel {
            CoreParams { required_kernelcore: n, ..CoreParams::default() }
        } else {
            CoreParams { required_movablecore: n, ..CoreParams::default() }
        };
        let arch = ArchZoneRanges::for_memory(&mem);
        let zm = find_zone_movable_pfns_for_nodes(&mem, &[], &p, &arch);
        let zones = calculate_node_totalpages(&mem, &zm, &arch, 0);
        let movable = zones[ZoneId::Movable.index()].present_pages;
        let total: u64 = mem.iter().map(|r| r.1 - r.0).sum();
        if zm.pfn(0) != 0 {
            if kernel {
                prop_assert!(total - movable >= n);
            } else {
                prop_assert!(movable <= n.next_multiple_of(MAX_ORDER_NR_PAGES));
            }
        }
    }
}
