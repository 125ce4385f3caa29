//! Tier 3: boot scenarios. The real kernel boots in QEMU with chosen runner options,
//! shell commands are piped to its console, and the console is checked line by line.
mod common;

use std::time::Duration;

use boot::Outcome;
use boot::session::Session;
use common::*;

#[test]
fn help_and_poweroff() {
    let res = boot("", "help\npoweroff\n");
    let help = section(&res.output, "help");
    for cmd in [
        "zoneinfo",
        "buddyinfo",
        "alloc [ORDER",
        "devmem ADDR",
        "pmem read",
        "stress N",
        "poweroff",
    ] {
        assert!(help.contains(cmd), "help lacks {cmd}:\n{help}");
    }
    assert!(
        res.output.starts_with("zoned "),
        "banner first:\n{}",
        res.output
    );
    assert!(res.output.contains("reboot: Power down"));
}

#[test]
fn timeout_is_reported() {
    let res = boot::boot_with_script(&opts("--timeout 20"), "").unwrap();
    assert_eq!(res.outcome, Outcome::Timeout);
    assert_eq!(res.outcome.exit_code(), 124);
    assert!(
        res.prompt_at.is_some(),
        "no prompt before the timeout:\n{}",
        res.output
    );
}

#[test]
fn bad_lines_change_nothing() {
    let res = boot(
        "",
        "buddyinfo\nfoo\nalloc 11\nfree 0x123456789 0\nfree 0x1 0\npage 99999999\ndevmem 0x1ffffffffffffff\npmem read 7 0 16\nbuddyinfo\npoweroff\n",
    );
    let out = &res.output;
    assert!(section(out, "foo").contains("unknown command 'foo'"));
    assert!(section(out, "alloc 11").contains("out of range"));
    assert!(section(out, "free 0x1 0").contains("bad page"), "{out}");
    assert!(section(out, "page 99999999").contains("pfn"), "{out}");
    assert!(section(out, "pmem read 7 0 16").contains("no pmem device"));
    let outputs: Vec<&str> = out
        .split("zoned> buddyinfo\n")
        .skip(1)
        .map(|s| s.split("zoned> ").next().unwrap())
        .collect();
    assert_eq!(outputs.len(), 2);
    assert_eq!(
        outputs[0], outputs[1],
        "a bad command changed the free lists"
    );
}

#[test]
fn views_agree_and_alloc_free_restores_buddyinfo() {
    let res = boot(
        "",
        "meminfo\nzoneinfo\nbuddyinfo\nalloc 4 dma32\nbuddyinfo\npoweroff\n",
    );
    let out = &res.output;
    let zi = section(out, "zoneinfo");
    let free_pages: u64 = ["DMA", "DMA32", "Normal"]
        .iter()
        .map(|z| zone_field(zi, z, "free"))
        .sum();
    let mi = section(out, "meminfo");
    assert_eq!(
        meminfo_kb(mi, "MemFree"),
        free_pages * 4,
        "zoneinfo and meminfo disagree"
    );
    let managed: u64 = ["DMA", "DMA32", "Normal"]
        .iter()
        .map(|z| zone_field(zi, z, "managed"))
        .sum();
    assert_eq!(meminfo_kb(mi, "MemTotal"), managed * 4);
    // buddyinfo's blocks add up to the free pages (the page cache is empty at rest).
    let bi = section(out, "buddyinfo");
    let from_buddy: u64 = bi
        .lines()
        .filter(|l| !l.contains("Device"))
        .flat_map(|l| {
            l.split_whitespace()
                .skip(4)
                .enumerate()
                .map(|(o, n)| n.parse::<u64>().unwrap() << o)
        })
        .sum();
    assert_eq!(from_buddy, free_pages, "buddyinfo:\n{bi}");
    // Order 4: above the per-CPU lists' orders (0-3), so the block is split from and merged
    // back into the free lists buddyinfo shows.
    let alloc = section(out, "alloc 4 dma32");
    let pfn = alloc.split_whitespace().nth(1).unwrap();
    let res2 = boot(
        "",
        &format!("buddyinfo\nalloc 4 dma32\nfree {pfn} 4\nbuddyinfo\npoweroff\n"),
    );
    let parts: Vec<&str> = res2
        .output
        .split("zoned> buddyinfo\n")
        .skip(1)
        .map(|s| s.split("zoned> ").next().unwrap())
        .collect();
    assert_eq!(
        parts[0], parts[1],
        "alloc+free did not restore buddyinfo:\n{}",
        res2.output
    );
}

#[test]
fn nvdimm_is_zone_device_with_nothing_free() {
    let res = boot(
        "--nvdimm 128M",
        "iomem\nzoneinfo\npage 0x100000\npage 0x107fff\ndevmem 0x100000000\nmemmap\nstress 100000\npoweroff\n",
    );
    let out = &res.output;
    let iomem = section(out, "iomem");
    assert!(
        iomem.contains("100000000-107ffffff : Persistent Memory\n"),
        "{iomem}"
    );
    let zi = section(out, "zoneinfo");
    // Linux: ZONE_DEVICE only grows its span; present and managed stay 0.
    assert_eq!(zone_field(zi, "Device", "spanned"), 32768);
    assert_eq!(zone_field(zi, "Device", "present"), 0);
    assert_eq!(zone_field(zi, "Device", "free"), 0);
    assert_eq!(zone_field(zi, "Device", "managed"), 0);
    let page = section(out, "page 0x100000");
    assert!(
        page.contains("zone:Device") && page.contains("reserved"),
        "{page}"
    );
    assert!(section(out, "devmem 0x100000000").contains("refused"));
    assert!(section(out, "memmap").contains("Device"));
    let stress = section(out, "stress 100000");
    assert!(
        stress.contains(" operations on ")
            && stress.contains(" cycles per operation, check passed"),
        "{stress}"
    );
    assert!(out.contains("NFIT: SPA range"), "NFIT range not logged");
}

#[test]
fn memmap_parameter_makes_legacy_pmem_below_ram() {
    let res = boot(
        "--cmdline memmap=64M!256M",
        "e820\niomem\nzoneinfo\ndevmem 0x10000000\ndevmem 0x10000000 8\ndevmem 0x200000\ndevmem 0xf0000 8\npage 0x10000\nstress 20000\npoweroff\n",
    );
    let out = &res.output;
    assert!(out.contains("user-defined physical RAM map:"));
    assert!(
        out.contains("user: [mem 0x0000000010000000-0x0000000013ffffff] persistent (type 12)"),
        "{out}"
    );
    let e820 = section(out, "e820");
    assert!(
        e820.contains("[mem 0x0000000010000000-0x0000000013ffffff] persistent (type 12)"),
        "{e820}"
    );
    assert!(section(out, "iomem").contains("10000000-13ffffff : Persistent Memory (legacy)"));
    assert_eq!(
        zone_field(section(out, "zoneinfo"), "Device", "spanned"),
        16384
    );
    assert!(
        section(out, "devmem 0x10000000").contains("refused"),
        "pmem below RAM must be refused"
    );
    assert!(
        section(out, "devmem 0x200000").contains("refused"),
        "System RAM must be refused"
    );
    assert!(section(out, "devmem 0xf0000 8").contains("Value at address"));
    let page = section(out, "page 0x10000");
    assert!(page.contains("zone:Device"), "{page}");
    assert!(section(out, "stress 20000").contains(", check passed"));
}

#[test]
fn uefi_boot_finds_the_nvdimm() {
    let res = boot("--uefi --nvdimm 128M", "iomem\nzoneinfo\npoweroff\n");
    let iomem = section(&res.output, "iomem");
    assert!(iomem.contains(": Persistent Memory\n"), "{iomem}");
    assert_eq!(
        zone_field(section(&res.output, "zoneinfo"), "Device", "spanned"),
        32768
    );
}

/// RAM and device memory inside one 4 MiB max-order block (issue 14): merging stops at the
/// boundary, the device pfns below RAM are refused by every free path, stress stays
/// consistent.
#[test]
fn ram_and_device_in_one_max_order_block() {
    let res = boot(
        "--cmdline memmap=62M!258M",
        "page 0x101ff\npage 0x10200\nfree 0x10200 0\nfree 0x10200 9\nfree 0x10000 10\n\
         stress 20000\nzoneinfo\npoweroff\n",
    );
    let out = &res.output;
    assert!(section(out, "page 0x101ff").contains("zone:DMA32"), "{out}");
    assert!(
        section(out, "page 0x10200").contains("zone:Device"),
        "{out}"
    );
    for cmd in ["free 0x10200 0", "free 0x10200 9"] {
        let f = section(out, cmd);
        assert!(
            f.contains("ZONE_DEVICE page freed to the buddy allocator"),
            "{cmd}: {f}"
        );
    }
    // The 4 MiB block at 256 MiB is half RAM: a free head there is RAM, never order 10.
    let f = section(out, "free 0x10000 10");
    assert!(f.contains("bad page: pfn 0x10000"), "{f}");
    assert!(
        section(out, "stress 20000").contains(", check passed"),
        "{out}"
    );
    let zi = section(out, "zoneinfo");
    assert_eq!(zone_field(zi, "Device", "spanned"), (62 << 20) >> 12);
    assert_eq!(zone_field(zi, "Device", "present"), 0);
}

#[test]
fn uefi_boot_with_memmap_parameter() {
    let res = boot("--uefi --cmdline memmap=64M!256M", "iomem\npoweroff\n");
    assert!(
        section(&res.output, "iomem").contains("10000000-13ffffff : Persistent Memory (legacy)")
    );
}

fn malformed_nfit(name: &str, table: Vec<u8>, expect_log: &str) {
    let file = temp_file(&format!("{name}.nfit"), &table);
    let res = boot(
        &format!("--acpitable {file}"),
        "zoneinfo\nbuddyinfo\npoweroff\n",
    );
    let out = &res.output;
    assert!(
        out.contains(expect_log),
        "{name}: no `{expect_log}` in the log:\n{out}"
    );
    let zi = section(out, "zoneinfo");
    assert_eq!(
        zone_field(zi, "Device", "spanned"),
        0,
        "{name}: a rejected range reached ZONE_DEVICE"
    );
    assert!(!out.contains("memremap:"), "{name}: memremap ran:\n{out}");
}

#[test]
fn nfit_with_zero_length_subtable_is_rejected() {
    let mut bad = spa(1, 0x1_0000_0000, 0x800_0000, 56);
    bad[2] = 0;
    bad[3] = 0;
    malformed_nfit("zero-length", nfit(&[bad]), "NFIT:");
}

#[test]
fn truncated_nfit_is_rejected() {
    let mut t = nfit(&[spa(1, 0x1_0000_0000, 0x800_0000, 56)]);
    t.truncate(t.len() - 20);
    malformed_nfit("truncated", t, "NFIT:");
}

#[test]
fn nfit_range_over_ram_is_refused() {
    malformed_nfit(
        "over-ram",
        nfit(&[spa(1, 0x100_0000, 0x100_0000, 56)]),
        "overlaps",
    );
}

#[test]
fn nfit_range_above_2_pow_52_is_refused() {
    malformed_nfit("absurd", nfit(&[spa(1, 1 << 53, 0x800_0000, 56)]), "NFIT:");
}

#[test]
fn six_gib_has_a_normal_zone_used_first() {
    let res = boot(
        "--mem 6G",
        "zoneinfo\nalloc 0\nalloc 0 dma32\nalloc 0 dma\npoweroff\n",
    );
    let out = &res.output;
    let zi = section(out, "zoneinfo");
    assert!(zone_field(zi, "Normal", "present") > 0);
    let pfn = |cmd: &str| {
        let s = section(out, cmd);
        u64::from_str_radix(
            s.split_whitespace()
                .nth(1)
                .unwrap()
                .trim_start_matches("0x"),
            16,
        )
        .unwrap()
    };
    assert!(
        pfn("alloc 0") >= 0x100000,
        "default allocation not from Normal"
    );
    assert!(pfn("alloc 0 dma32") < 0x100000);
    assert!(pfn("alloc 0 dma") < 0x1000);
}

#[test]
fn pmem_data_survives_a_reboot() {
    let file = boot::kbuild::repo_root()
        .join("target")
        .join("scenario-files")
        .join("persist.nvdimm");
    let _ = std::fs::create_dir_all(file.parent().unwrap());
    let _ = std::fs::remove_file(&file);
    let flags = format!("--nvdimm 128M,file={}", file.display());
    let stamp = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    boot(
        &flags,
        &format!("pmem write 0 0x1000 \"zoned-{stamp}\"\npoweroff\n"),
    );
    let res = boot(&flags, "pmem read 0 0x1000 32\npoweroff\n");
    let dump = section(&res.output, "pmem read 0 0x1000 32");
    let text: String = dump
        .lines()
        .map(|l| l.rsplit("  ").next().unwrap_or(""))
        .collect();
    assert!(
        text.contains(&format!("zoned-{stamp}")),
        "pmem data lost across boots:\n{dump}"
    );
}

#[test]
fn random_lines_are_all_answered() {
    // 10,000 random lines: random bytes, random words, huge numbers. The kernel
    // must answer each with a prompt and still power off cleanly.
    let words = [
        "alloc",
        "free",
        "page",
        "devmem",
        "pmem",
        "read",
        "write",
        "hotplug",
        "scan",
        "stress",
        "help",
        "zone",
        "dma",
        "0x",
        "18446744073709551616",
        "99999999999999999999999",
        "-1",
        "\"",
        "0xffffffffffffffff",
        "K",
        "G",
    ];
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut script = String::new();
    for _ in 0..10_000 {
        let kind = next() % 3;
        let n = 1 + next() % 6;
        let mut line = String::new();
        for _ in 0..n {
            match kind {
                0 => line.push(char::from(b' ' + (next() % 95) as u8)),
                1 => line.push_str(words[(next() % words.len() as u64) as usize]),
                _ => line.push_str(&format!("{}", next())),
            }
            line.push(' ');
        }
        // Never power off, reboot, stress or write by accident.
        let first = line.split_whitespace().next().unwrap_or("");
        if [
            "poweroff", "reboot", "stress", "pmem", "devmem", "alloc", "free",
        ]
        .contains(&first)
        {
            line.insert(0, '#');
        }
        script.push_str(&line);
        script.push('\n');
    }
    script.push_str("meminfo\npoweroff\n");
    let mut o = opts("");
    o.timeout = Some(900);
    let res = boot::boot_with_script(&o, &script).unwrap();
    assert_eq!(res.outcome, Outcome::Success, "{}", res.outcome.reason());
    assert!(res.output.matches(boot::qemu::PROMPT).count() >= 10_002);
    assert!(res.output.contains("MemTotal:"));
}

#[test]
fn hot_added_dimm_grows_normal() {
    let sock = monitor_socket("hotplug.sock");
    let mut o = opts("--slots 2 --maxmem 2G --nvdimm 128M");
    o.monitor = Some(sock.clone());
    let mut s = Session::start(&o).unwrap();
    s.wait_for_count(boot::qemu::PROMPT, 1, Duration::from_secs(120))
        .unwrap();
    let before = s.command("zoneinfo", Duration::from_secs(60)).unwrap();
    let managed_before = zone_field(&before, "Normal", "managed");
    monitor(
        &sock,
        &[
            "object_add memory-backend-ram,id=hp1,size=256M",
            "device_add pc-dimm,id=dimm1,memdev=hp1",
        ],
    );
    let scan = s.command("hotplug scan", Duration::from_secs(60)).unwrap();
    assert!(scan.contains("onlined"), "{scan}");
    assert!(
        !scan.contains("Persistent Memory") || scan.contains("not onlined"),
        "{scan}"
    );
    let after = s.command("zoneinfo", Duration::from_secs(60)).unwrap();
    let managed_after = zone_field(&after, "Normal", "managed");
    let gained = managed_after - managed_before;
    // 65536 pages less the hot-added range's own memmap (memmap_on_memory: 256 MiB
    // of struct pages at 32 bytes each is 2 MiB = 512 pages).
    assert_eq!(
        gained,
        65536 - 512,
        "Normal managed {managed_before} -> {managed_after}"
    );
    assert_eq!(zone_field(&after, "Device", "free"), 0);
    let stress = s.command("stress 50000", Duration::from_secs(300)).unwrap();
    assert!(
        stress.contains(" operations on ")
            && stress.contains(" cycles per operation, check passed"),
        "{stress}"
    );
    let list = s.command("hotplug list", Duration::from_secs(60)).unwrap();
    // QEMU 7.2 does not list the NVDIMM among the hotplug controller's slots (seen
    // here); the hot-added DIMM is there, online.
    assert!(list.contains("online (System RAM)"), "{list}");
    s.send("poweroff").unwrap();
    let (outcome, out) = s.finish(Duration::from_secs(60));
    assert_eq!(outcome, Outcome::Success, "{out}");
}

#[test]
fn cold_plugged_dimm_is_onlined_at_boot() {
    let res = boot(
        "--slots 2 --maxmem 2G --qemu -object --qemu memory-backend-ram,id=cold,size=128M --qemu -device --qemu pc-dimm,id=cd,memdev=cold",
        "hotplug list\nzoneinfo\npoweroff\n",
    );
    assert!(res.output.contains("onlined"), "{}", res.output);
    assert!(section(&res.output, "hotplug list").contains("online (System RAM)"));
    assert!(zone_field(section(&res.output, "zoneinfo"), "Normal", "managed") > 0);
}

/// Send QEMU monitor commands over its unix socket.
#[test]
fn large_nvdimm_keeps_its_memmap_on_the_device() {
    // The scale scenario, small: 6 GiB of RAM and a 4 GiB NVDIMM whose struct pages
    // live on the NVDIMM itself (altmap), so RAM pays nothing for them.
    let res = boot(
        "--mem 6G --nvdimm 4G",
        "meminfo\nzoneinfo\npmem list\nstress 20000\npoweroff\n",
    );
    let out = &res.output;
    let mi = section(out, "meminfo");
    assert_eq!(meminfo_kb(mi, "MemmapOnDevice"), 32 * 1024, "{mi}");
    assert_eq!(meminfo_kb(mi, "DeviceTotal"), 4 * 1024 * 1024, "{mi}");
    let zi = section(out, "zoneinfo");
    assert_eq!(zone_field(zi, "Device", "spanned"), 1 << 20);
    assert_eq!(zone_field(zi, "Device", "free"), 0);
    assert!(section(out, "pmem list").contains("memmap on device"));
    assert!(section(out, "stress 20000").contains(", check passed"));
}

#[test]
fn nvdimm_outside_the_bootloader_mapping_is_mapped_by_the_kernel() {
    // With an Intel-vendor CPU there is no HyperTransport hole, so the bootloader
    // maps only the first 4 GiB and the NVDIMM at 4 GiB needs our page tables.
    let res = boot(
        "--nvdimm 128M --qemu -cpu --qemu qemu64,vendor=GenuineIntel",
        "pmem write 0 0x20 \"mapped\"\npmem read 0 0x20 6\npoweroff\n",
    );
    assert!(
        !res.output.contains("fd00000000"),
        "expected no HT hole:\n{}",
        res.output
    );
    let dump = section(&res.output, "pmem read 0 0x20 6");
    assert!(dump.contains("6d 61 70 70 65 64"), "{dump}");
}

#[test]
fn piped_lines_after_two_reboots_are_all_answered() {
    // Issue 14 item 1: `printf '...reboot\nzoneinfo\n...' | cargo run` lost the
    // lines after a reboot (the runner counted a prompt twice and typed the next
    // line into the kernel that was resetting). The runner binary itself, with
    // its stdin a pipe, exactly as `cargo run` starts it.
    use std::io::Write;
    use std::process::{Command, Stdio};
    let elf = boot::kernel_elf().unwrap();
    let lines = [
        "meminfo",
        "reboot",
        "zoneinfo",
        "buddyinfo",
        "reboot",
        "iomem",
        "buddyinfo",
        "poweroff",
    ];
    let _slot = boot::Slot::take();
    let mut child = Command::new(env!("CARGO_BIN_EXE_boot"))
        .args(["--timeout", "240", "--kernel"])
        .arg(&elf)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut script = lines.join("\n");
    script.push('\n');
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let res = child.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&res.stdout).replace('\r', "");
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(
        res.status.success(),
        "runner failed ({}): {err}\n{out}",
        res.status
    );
    assert_eq!(out.matches(boot::qemu::REBOOT_MARKER).count(), 2, "{out}");
    // Every line answered, in order: each appears after its own prompt, after
    // the previous line.
    let mut at = 0;
    for line in lines {
        let marker = format!("{}{line}\n", boot::qemu::PROMPT);
        let found = out[at..]
            .find(&marker)
            .unwrap_or_else(|| panic!("`{line}` not answered (in order):\n{out}"));
        at += found + marker.len();
    }
    assert!(section(&out, "meminfo").contains("MemTotal:"), "{out}");
    assert!(section(&out, "zoneinfo").contains("spanned"), "{out}");
    assert!(section(&out, "iomem").contains("System RAM"), "{out}");
    assert!(out.contains("reboot: Power down"), "{out}");
}

/// A table that fwts would warn about (SPA range index 0, a memory attribute outside
/// EFI_MEMORY_*) is reported line by line and its range is still used.
#[test]
fn nfit_warnings_are_logged_and_the_range_kept() {
    let mut s = spa(0, 0x1_0000_0000, 0x800_0000, 56);
    s[48 + 6] |= 0x80;
    let file = temp_file("fwts-warnings.nfit", &nfit(&[s]));
    let res = boot(&format!("--acpitable {file}"), "poweroff\n");
    let out = &res.output;
    assert!(out.contains("has range index 0"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains("NFIT: ") && l.contains("attribute")),
        "{out}"
    );
    assert!(out.contains("memremap:"), "the range was not used:\n{out}");
}
