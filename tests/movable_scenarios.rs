//! Tier 3: ZONE_MOVABLE from the command line, checked against what Linux 6.1 prints for
//! the same QEMU machine (tests/data/linux-6.1-qemu-movablecore.*: `-m 2G`,
//! `movablecore=256M`).
mod common;

use common::*;

#[test]
fn movablecore_256m_on_2g_is_linuxs_movable_zone() {
    let res = boot(
        "--mem 2G --cmdline \"movablecore=256M kernelcore=abc\"",
        "zoneinfo\nbuddyinfo\npagetypeinfo\nalloc 0\npoweroff\n",
    );
    let out = &res.output;
    // The boot lines, as Linux's free_area_init prints them; a bad value is reported and
    // ignored (the other parameter still applies).
    for line in [
        "Movable zone start for each node\n",
        "  Node 0: 0x0000000070000000\n",
        "kernelcore=abc: ",
        "Policy zone: DMA32\n",
        "On node 0, zone Movable: 32 pages in unavailable ranges\n",
    ] {
        assert!(out.contains(line), "no {line:?} in:\n{out}");
    }
    let linux = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/linux-6.1-qemu-movablecore.zoneinfo"
    ))
    .unwrap();
    let zi = section(out, "zoneinfo");
    // Spanned, present and start as Linux's (managed differs: the two kernels reserve
    // different amounts).
    for zone in ["DMA", "DMA32", "Normal", "Movable", "Device"] {
        for key in ["spanned", "present"] {
            assert_eq!(
                zone_field(zi, zone, key),
                zone_field(&linux, zone, key),
                "{zone} {key}:\n{zi}"
            );
        }
    }
    assert!(zi.contains("start_pfn:           458752\n"), "{zi}");
    assert!(zone_field(zi, "Movable", "managed") > 60_000, "{zi}");
    let bi = section(out, "buddyinfo");
    assert!(bi.contains("Node 0, zone  Movable "), "{bi}");
    // /proc/pagetypeinfo: Linux's headers, rows and pageblock totals per zone (the types
    // differ: the kernels allocate differently).
    let pt = section(out, "pagetypeinfo");
    let linux_pt = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/linux-6.1-qemu-movablecore.pagetypeinfo"
    ))
    .unwrap();
    assert_eq!(pt.lines().count(), linux_pt.lines().count(), "{pt}");
    for (ours, theirs) in pt.lines().zip(linux_pt.lines()) {
        let head = |l: &str| {
            l.split(|c: char| c.is_ascii_digit())
                .next()
                .unwrap_or("")
                .to_string()
        };
        if theirs.contains(", type ") {
            assert_eq!(&ours[..43], &theirs[..43]);
        } else if !theirs.starts_with("Node") {
            assert_eq!(ours, theirs);
        } else {
            assert_eq!(head(ours), head(theirs));
            let total = |l: &str| -> u64 {
                l.split_whitespace()
                    .skip(4)
                    .map(|n| n.parse::<u64>().unwrap())
                    .sum()
            };
            assert_eq!(total(ours), total(theirs), "{ours}\n{theirs}");
        }
    }
    // An ordinary allocation never comes from Movable (it starts at pfn 0x70000).
    let pfn = section(out, "alloc 0")
        .split_whitespace()
        .nth(1)
        .and_then(|p| u64::from_str_radix(p.trim_start_matches("0x"), 16).ok())
        .expect("alloc answers with a pfn");
    assert!(pfn < 0x70000, "alloc 0 gave {pfn:#x}");
}
