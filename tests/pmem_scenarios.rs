//! Boot scenarios of pmem devices going away and coming back: `pmem disable` held by a
//! pinned page and completed by the last `pmem unpin` (memunmap_pages' two halves), `pmem
//! enable` mapping the range again with its data intact, with the memmap in RAM and on the
//! device, and the bad lines around them changing nothing.
mod common;

use common::*;

/// The outputs of every run of `cmd` in a transcript, in order.
fn sections<'a>(out: &'a str, cmd: &str) -> Vec<&'a str> {
    let marker = format!("{}{cmd}\n", boot::qemu::PROMPT);
    out.match_indices(&marker)
        .map(|(i, _)| {
            let rest = &out[i + marker.len()..];
            &rest[..rest.find(boot::qemu::PROMPT).unwrap_or(rest.len())]
        })
        .collect()
}

#[test]
fn pmem_disable_waits_for_a_pin_and_enable_keeps_the_data() {
    // An Intel-vendor CPU: the bootloader maps only the first 4 GiB, so the kernel maps
    // (and on disable unmaps) the NVDIMMs itself. pmem0: memmap in RAM; pmem1 (2 GiB):
    // memmap on the device.
    let script = [
        "pmem write 0 0x1000 \"zoned-unmap\"",
        "pmem write 1 0x1000 \"altmap-data\"",
        "zoneinfo",
        "pmem pin 0 0x1000",
        "pmem disable 0",
        "pmem pin 0 0x2000",
        "pmem disable 0",
        "pmem read 0 0x1000 11",
        "pmem enable 0",
        "pmem list",
        "pmem unpin 0 0x1000",
        "page 0x100000",
        "pmem list",
        "pmem disable 0",
        "pmem pin 0 0",
        "pmem unpin 0 0x1000",
        "pmem read 0 0x1000 11",
        "pmem disable 9",
        "meminfo",
        "pmem enable 0",
        "pmem enable 0",
        "pmem read 0 0x1000 11",
        "pmem disable 1",
        "pmem enable 1",
        "pmem read 1 0x1000 11",
        "page 0x100000",
        "pmem list",
        "stress 20000",
        "poweroff",
    ]
    .join("\n");
    let res = boot(
        "--nvdimm 128M --nvdimm 2G --qemu -cpu --qemu qemu64,vendor=GenuineIntel",
        &format!("{script}\n"),
    );
    let out = &res.output;
    let pin = section(out, "pmem pin 0 0x1000");
    assert!(
        pin.starts_with("pmem0: pinned pfn 0x100001 (offset 0x1000")
            && pin.contains("refcount 2, 1 pin)"),
        "{pin}"
    );
    let disable = sections(out, "pmem disable 0");
    assert_eq!(disable.len(), 3);
    assert_eq!(disable[0], "pmem0: disable waits for 1 pinned page\n");
    assert_eq!(
        disable[1],
        "pmem: pmem0 is being disabled (waiting for its pinned pages)\n"
    );
    assert_eq!(
        section(out, "pmem pin 0 0x2000"),
        "pmem: pmem0 is being disabled (waiting for its pinned pages)\n"
    );
    let read = sections(out, "pmem read 0 0x1000 11");
    assert_eq!(
        read[0],
        "pmem: pmem0 is being disabled (waiting for its pinned pages)\n"
    );
    let enable = sections(out, "pmem enable 0");
    assert_eq!(
        enable[0],
        "pmem: pmem0 is being disabled (waiting for its pinned pages)\n"
    );
    let lists = sections(out, "pmem list");
    assert!(
        lists[0].contains("disabling, 1 pinned page (1 pin)"),
        "{}",
        lists[0]
    );
    // The last unpin completes the teardown.
    let unpin = sections(out, "pmem unpin 0 0x1000");
    assert!(
        unpin[0].contains("pmem0: unpinned pfn 0x100001 (refcount 1, 0 pins left)")
            && unpin[0].ends_with("pmem0: disabled\n"),
        "{}",
        unpin[0]
    );
    assert!(out.contains(
        "memunmap: [mem 0x0000000100000000-0x0000000107ffffff] ZONE_DEVICE pagemap 0 removed"
    ));
    let page = sections(out, "page 0x100000");
    assert!(!page[0].contains("zone:Device"), "{}", page[0]);
    assert!(
        lists[1].contains("disabled, 0 pinned pages (0 pins)"),
        "{}",
        lists[1]
    );
    // Bad lines: clear messages, nothing changed.
    assert_eq!(disable[2], "pmem: pmem0 is disabled (see 'pmem enable')\n");
    assert_eq!(
        section(out, "pmem pin 0 0"),
        "pmem: pmem0 is disabled (see 'pmem enable')\n"
    );
    assert_eq!(
        unpin[1],
        "pmem: pmem0: the page at offset 0x1000 is not pinned\n"
    );
    assert_eq!(read[1], "pmem: pmem0 is disabled (see 'pmem enable')\n");
    assert_eq!(
        section(out, "pmem disable 9"),
        "pmem: no pmem device pmem9 (see 'pmem list')\n"
    );
    // Only pmem1's pages are device memory now.
    let meminfo = section(out, "meminfo");
    assert_eq!(meminfo_kb(meminfo, "DeviceTotal"), 2 << 20, "{meminfo}");
    // Enabled again: the data is where it was.
    assert!(
        enable[1].ends_with(
            "ZONE_DEVICE pagemap 1: 32768 pages, memmap in RAM (altmap 0 pages)\npmem0: enabled\n"
        ),
        "{}",
        enable[1]
    );
    assert_eq!(enable[2], "pmem: pmem0 is enabled already\n");
    assert!(read[2].contains("zoned-unmap"), "{}", read[2]);
    // The device with its memmap on itself.
    let d1 = section(out, "pmem disable 1");
    assert!(
        d1.ends_with("ZONE_DEVICE pagemap 0 removed\npmem1: disabled\n"),
        "{d1}"
    );
    let e1 = section(out, "pmem enable 1");
    assert!(
        e1.ends_with("memmap on the device (altmap 4096 pages)\npmem1: enabled\n"),
        "{e1}"
    );
    assert!(
        section(out, "pmem read 1 0x1000 11").contains("altmap-data"),
        "{out}"
    );
    assert!(page[1].contains("zone:Device"), "{}", page[1]);
    assert!(lists[2].contains("enabled, 0 pinned pages"), "{}", lists[2]);
    let stress = section(out, "stress 20000");
    assert!(stress.contains("check passed"), "{stress}");
}
