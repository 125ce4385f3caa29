//! Boot scenarios: memory hot-remove with QEMU's eject. One boot hot-adds a 256 MiB DIMM,
//! fills it with movable allocations, refuses what must be refused (an unmovable page, a
//! remove of online memory), then `device_del` + `hotplug scan` offline, remove and eject it:
//! QEMU's `info memory-devices` no longer lists it, MemTotal is back, and the alloc table
//! shows the migrated pfns.
mod common;

use std::time::Duration;

use boot::Outcome;
use boot::session::Session;
use common::*;

/// The pfn of an `alloc` answer line (`pfn 0x... order ...`).
fn pfn_of(line: &str) -> u64 {
    let hex = line
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.strip_prefix("0x"))
        .unwrap_or_else(|| panic!("no pfn in {line:?}"));
    u64::from_str_radix(hex, 16).unwrap()
}

#[test]
fn device_del_offlines_removes_and_ejects_the_dimm() {
    let t = Duration::from_secs(60);
    let sock = monitor_socket("hotremove.sock");
    let mut o = opts("--slots 2 --maxmem 2G");
    o.monitor = Some(sock.clone());
    let mut s = Session::start(&o).unwrap();
    s.wait_for_count(boot::qemu::PROMPT, 1, Duration::from_secs(120))
        .unwrap();
    let total_before = meminfo_kb(&s.command("meminfo", t).unwrap(), "MemTotal");
    monitor(
        &sock,
        &[
            "object_add memory-backend-ram,id=hr1,size=256M",
            "device_add pc-dimm,id=dimm1,memdev=hr1",
        ],
    );
    let scan = s.command("hotplug scan", t).unwrap();
    assert!(scan.contains("onlined"), "{scan}");
    let base = 0x1_0000_0000u64 >> 12; // QEMU's device memory starts at 4 GiB here
    let list = s.command("hotplug list", t).unwrap();
    for b in ["memory32 ", "memory33 "] {
        assert!(
            list.lines()
                .any(|l| l.starts_with(b) && l.contains(" online  Normal ")),
            "{list}"
        );
    }
    // 40 movable allocations, all inside the DIMM (ZONE_NORMAL is only there).
    let mut movable = Vec::new();
    for i in 0..40 {
        let a = s.command(&format!("alloc {} movable", i % 4), t).unwrap();
        let line = a.lines().find(|l| l.starts_with("pfn ")).unwrap_or("");
        assert!(line.ends_with(" movable"), "{a}");
        let pfn = pfn_of(line);
        assert!(pfn >= base && pfn < base + 65536, "{a}");
        movable.push(pfn);
    }
    // One unmovable page inside the DIMM.
    let a = s.command("alloc 0", t).unwrap();
    let pinned = pfn_of(a.lines().find(|l| l.starts_with("pfn ")).unwrap());
    assert!(pinned >= base, "{a}");
    let block = if pinned >= base + 32768 { 33 } else { 32 };

    // Bad input: removing online memory; offlining the block with the unmovable page.
    let r = s.command("hotplug remove 32", t).unwrap();
    assert!(r.contains("memory32 is online"), "{r}");
    let off = s.command(&format!("hotplug offline {block}"), t).unwrap();
    assert!(
        off.contains("memory offlining [mem ")
            && off.contains("failed due to failure to isolate range")
            && off.contains("page dumped because: unmovable page")
            && off.contains(&format!("hotplug: memory{block} stays online")),
        "{off}"
    );
    // device_del with the unmovable page there: the DIMM stays, the reason is printed.
    monitor(&sock, &["device_del dimm1"]);
    let scan = s.command("hotplug scan", t).unwrap();
    assert!(
        scan.contains("not ejected, its memory stays online: offlining failed due to"),
        "{scan}"
    );
    let info = monitor_output(&sock, &["info memory-devices"]);
    assert!(info.contains("dimm1"), "{info}");
    let after_refusal = s.command("meminfo", t).unwrap();
    assert_eq!(
        meminfo_kb(&after_refusal, "MemTotal"),
        total_before + 256 * 1024 - 2048,
        "the DIMM stays online whole"
    );
    let f = s.command(&format!("free {pinned:#x} 0"), t).unwrap();
    assert!(f.contains("freed"), "{f}");

    // Now it goes: offlined (the movable blocks migrate), removed, ejected.
    monitor(&sock, &["device_del dimm1"]);
    let scan = s.command("hotplug scan", t).unwrap();
    assert!(
        scan.contains("offlined and removed: 65024 pages (254 MiB) no longer managed, ejected"),
        "{scan}"
    );
    std::thread::sleep(Duration::from_secs(1));
    let info = monitor_output(&sock, &["info memory-devices"]);
    assert!(!info.contains("dimm1"), "{info}");
    let mem = s.command("meminfo", t).unwrap();
    assert_eq!(meminfo_kb(&mem, "MemTotal"), total_before, "{mem}");
    let table = s.command("alloc", t).unwrap();
    let now: Vec<u64> = table
        .lines()
        .filter(|l| l.ends_with(" movable"))
        .map(pfn_of)
        .collect();
    assert_eq!(now.len(), 40, "{table}");
    assert!(
        now.iter().all(|&p| p < base),
        "migrated out of the DIMM:\n{table}"
    );
    let iomem = s.command("iomem", t).unwrap();
    assert!(
        !iomem.contains("100000000-10fffffff : System RAM"),
        "{iomem}"
    );
    let list = s.command("hotplug list", t).unwrap();
    assert!(!list.contains("memory32 "), "{list}");

    // Bad input after the removal: a block that is not present, a second device_del.
    let on = s.command("hotplug online 32", t).unwrap();
    assert!(on.contains("memory block 32 is not present"), "{on}");
    let again = monitor_output(&sock, &["device_del dimm1"]);
    assert!(again.contains("Device 'dimm1' not found"), "{again}");
    let scan = s.command("hotplug scan", t).unwrap();
    assert!(
        !scan.contains("onlined") && !scan.contains("ejected"),
        "{scan}"
    );
    assert_eq!(
        meminfo_kb(&s.command("meminfo", t).unwrap(), "MemTotal"),
        total_before
    );
    let stress = s.command("stress 20000", Duration::from_secs(300)).unwrap();
    assert!(stress.contains("check passed"), "{stress}");
    s.send("poweroff").unwrap();
    let (outcome, out) = s.finish(t);
    assert_eq!(outcome, Outcome::Success, "{out}");
}
