//! Tier 3: NUMA boot scenarios. The kernel boots on the same QEMU machines that Debian's
//! Linux 6.1 booted on for tests/data/linux-6.1-qemu-*.dmesg, and its NUMA lines (SRAT
//! entries, block merges, fake nodes) must be Linux's, in Linux's order.
mod common;

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
];

#[test]
fn two_nodes_with_a_distance_log_linux_srat_lines() {
    let res = boot(
        "--smp 2 --numa 512M,cpus=0 --numa 512M,cpus=1 --numa-dist 0,1,21",
        "poweroff\n",
    );
    assert_in_order(
        &res.output,
        &linux_lines("linux-6.1-qemu-two.dmesg", NUMA_PREFIXES),
    );
    assert!(res.output.contains("ACPI: SLIT "), "{}", res.output);
    assert!(!res.output.contains("SLIT table looks invalid"));
}

/// Linux's run: `-m 2G,slots=2,maxmem=4G` with the NVDIMM in one of the slots; the runner
/// adds the NVDIMM's slot and size to `--slots`/`--maxmem`, so 1 and 4G-128M give the same
/// machine (and the same hot-plug area in the SRAT).
#[test]
fn four_nodes_memoryless_one_and_an_nvdimm_on_node_2() {
    let res = boot(
        "--smp 4 --numa 512M,cpus=0 --numa 512M,cpus=1 --numa 1G,cpus=2 --numa 0,cpus=3 \
         --nvdimm 128M,node=2 --slots 1 --maxmem 3968M",
        "poweroff\n",
    );
    assert_in_order(
        &res.output,
        &linux_lines("linux-6.1-qemu-four.dmesg", NUMA_PREFIXES),
    );
    assert!(
        res.output
            .contains("proximity domain 2, flags 0x3, attributes 0x8008"),
        "the NVDIMM's NFIT range names node 2's PXM:\n{}",
        res.output
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
