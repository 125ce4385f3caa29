//! `cargo run -- plan`: the dry-run planner. It reads a machine's E820 map from
//! Linux dmesg lines (`BIOS-e820: [mem 0x…-0x…] <type>`, with or without the
//! timestamp), applies an optional `memmap=` command line and NFIT table, and
//! prints what this kernel would do with that machine, using the kernel's own
//! code (the `firmware` and `mm` crates): the sanitized and user maps, `Zone
//! ranges:`, `Early memory node ranges`, the persistent ranges and the memmap size.
//!
//! NUMA: the SRAT comes from `--srat TABLE.bin` (as `acpidump -b` writes it) or else from the
//! dmesg's own `SRAT:` lines, the SLIT from `--slit TABLE.bin`, and `numa=off` /
//! `numa=fake=N` from the dmesg's `Command line:` (plus `--cmdline`); the report then shows
//! the NUMA lines Linux prints (block merges, fake nodes, fallbacks), the node of every
//! early memory range, the `Initmem setup` lines and each persistent range's node.
use std::fmt::Write;

use firmware::e820::parse_dmesg;
use firmware::nfit::parse_nfit;
use firmware::numa::{NumaInput, numa_init};
use firmware::setup::memory_setup;
use firmware::slit::parse_slit;
use firmware::srat::{parse_srat, srat_from_dmesg};
use mm::{Memblock, ZoneRanges};

/// Bytes of struct pages per 128 MiB section (32768 pages of 32 bytes).
const MEMMAP_PER_SECTION: u64 = mm::sparse::MEMMAP_BYTES_PER_SECTION;
const SECTION_SHIFT: u32 = mm::sparse::SECTION_SIZE_BITS;
/// Device ranges above this keep their memmap on the device (altmap), as the kernel does.
const ALTMAP_THRESHOLD: u64 = mm::memremap::ALTMAP_DEFAULT_THRESHOLD;

/// Usage of `plan`.
pub const USAGE: &str = "usage: cargo run -- plan --e820 FILE [--cmdline \"memmap=... numa=fake=N\"] \
     [--nfit TABLE.bin] [--srat TABLE.bin] [--slit TABLE.bin]";

/// The firmware tables and command line the report is made from.
#[derive(Default)]
struct Tables {
    spa: Vec<firmware::nfit::SpaRange>,
    srat: Option<Result<firmware::srat::Srat, firmware::srat::SratError>>,
    slit: Option<Result<firmware::slit::Slit, firmware::slit::SlitError>>,
}

/// The dmesg's `Command line: ...`, if any.
fn dmesg_cmdline(text: &str) -> Option<&str> {
    text.lines()
        .find_map(|l| l.find("Command line: ").map(|p| &l[p + 14..]))
}

/// Run the planner; the report, or an error line.
pub fn main(args: &[String]) -> Result<String, String> {
    let (mut e820_file, mut cmdline, mut nfit_file) = (None, String::new(), None);
    let (mut srat_file, mut slit_file) = (None, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{a} needs a value\n{USAGE}"))
        };
        match a.as_str() {
            "--e820" => e820_file = Some(value()?),
            "--cmdline" => cmdline = value()?,
            "--nfit" => nfit_file = Some(value()?),
            "--srat" => srat_file = Some(value()?),
            "--slit" => slit_file = Some(value()?),
            "-h" | "--help" => return Ok(format!("{USAGE}\n")),
            other => return Err(format!("unknown option '{other}'\n{USAGE}")),
        }
    }
    let e820_file = e820_file.ok_or_else(|| format!("--e820 FILE is required\n{USAGE}"))?;
    let text =
        std::fs::read_to_string(&e820_file).map_err(|e| format!("cannot read {e820_file}: {e}"))?;
    let table = parse_dmesg(&text).map_err(|e| format!("{e820_file}: {e}"))?;
    let mut out = String::new();
    let spa = match nfit_file {
        Some(f) => {
            let bytes = std::fs::read(&f).map_err(|e| format!("cannot read {f}: {e}"))?;
            match parse_nfit(&bytes) {
                Ok(n) => {
                    for p in &n.problems {
                        let _ = writeln!(out, "{p}");
                    }
                    for w in &n.warnings {
                        let _ = writeln!(out, "{w}");
                    }
                    for s in &n.spa_ranges {
                        let _ = writeln!(out, "{s}");
                    }
                    n.spa_ranges
                }
                Err(e) => {
                    let _ = writeln!(out, "{e}");
                    Vec::new()
                }
            }
        }
        None => Vec::new(),
    };
    let read = |f: &String| std::fs::read(f).map_err(|e| format!("cannot read {f}: {e}"));
    let srat = match &srat_file {
        Some(f) => Some(parse_srat(&read(f)?)),
        None => srat_from_dmesg(&text).map(Ok),
    };
    let slit = match &slit_file {
        Some(f) => Some(parse_slit(&read(f)?)),
        None => None,
    };
    let cmdline = match dmesg_cmdline(&text) {
        Some(boot) if cmdline.is_empty() => boot.to_string(),
        Some(boot) => format!("{boot} {cmdline}"),
        None => cmdline,
    };
    let tables = Tables { spa, srat, slit };
    Ok(report(table, &cmdline, &tables, out))
}

fn report(
    table: firmware::e820::E820Table,
    cmdline: &str,
    tables: &Tables,
    mut out: String,
) -> String {
    let spa = &tables.spa;
    let setup = memory_setup(table, cmdline, spa);
    let memory: Vec<_> = setup.zone_map.usable_pages().collect();
    let numa = numa_init(NumaInput::new(
        tables.srat.as_ref(),
        tables.slit.as_ref(),
        &memory,
        cmdline,
    ));
    for (_, line) in &numa.messages {
        let _ = writeln!(out, "{line}");
    }
    let mut head = String::new();
    let _ = writeln!(head, "BIOS-provided physical RAM map:");
    let _ = write!(head, "{}", setup.firmware.lines("BIOS-e820"));
    for e in &setup.memmap.errors {
        let _ = writeln!(head, "{e}");
    }
    if setup.memmap.user_defined() {
        let _ = writeln!(head, "user-defined physical RAM map:");
        let _ = write!(head, "{}", setup.e820.lines("user"));
    }
    out.insert_str(0, &head);
    // memblock as the kernel builds it (RAM, then each NUMA block's node), printed by the
    // kernel's own renderer.
    let mut mb = Memblock::new();
    for r in setup.zone_map.usable_pages() {
        if let Err(e) = mb.add(r.start, r.size()) {
            let _ = writeln!(out, "memblock: cannot add {r}: {e}");
        }
    }
    for b in &numa.memblks {
        if let Err(e) = mb.set_node(b.range.start, b.range.size(), b.nid as u16) {
            let _ = writeln!(
                out,
                "memblock: cannot set node {} on {}: {e}",
                b.nid, b.range
            );
        }
    }
    let nr_nodes = numa.possible.last().map_or(1, |&n| n + 1);
    // ZONE_MOVABLE as the kernel places it (kernelcore=, movablecore=, movable_node).
    let movable = firmware::movable::parse_movable_params(cmdline);
    for e in &movable.errors {
        let _ = writeln!(out, "{e}");
    }
    let core = movable.params;
    let hot: Vec<(u64, u64)> = numa.hotplug.iter().map(|r| (r.start, r.end)).collect();
    let (_, zm) = mm::movable::zone_movable_for(&mb, &hot, &core);
    for w in &zm.warnings {
        let _ = writeln!(out, "{w}");
    }
    let _ = mm::views::write_boot_ranges(
        &mut out,
        &ZoneRanges::from_memblock(&mb),
        &zm,
        &mb,
        nr_nodes,
    );
    for r in &setup.rejected {
        let _ = writeln!(out, "{r}");
    }
    let mut device_ram = 0;
    let mut device_on_dev = 0;
    if setup.pmem.is_empty() {
        let _ = writeln!(out, "Persistent memory: none");
    } else {
        let _ = writeln!(
            out,
            "Persistent memory (ZONE_DEVICE, never in the buddy allocator):"
        );
    }
    for p in &setup.pmem {
        let size = p.range.size();
        let secs = sections(p.range.start, p.range.end);
        let bytes = secs * MEMMAP_PER_SECTION;
        let on_device = size > ALTMAP_THRESHOLD;
        if on_device {
            device_on_dev += bytes;
        } else {
            device_ram += bytes;
        }
        let node = numa.pmem_target_node(p);
        let _ = writeln!(
            out,
            "  {} {} ({}), node {}, {} pages, memmap {} bytes {}",
            p.range,
            p.iomem_name(),
            p.source,
            node,
            size >> 12,
            bytes,
            if on_device {
                "on the device (altmap)"
            } else {
                "in RAM"
            }
        );
    }
    let mut ram_secs = std::collections::BTreeSet::new();
    for r in setup.zone_map.usable_pages() {
        for s in (r.start >> SECTION_SHIFT)..=((r.end - 1) >> SECTION_SHIFT) {
            ram_secs.insert(s);
        }
    }
    let ram_bytes = ram_secs.len() as u64 * MEMMAP_PER_SECTION;
    let _ = writeln!(
        out,
        "memmap: {} bytes in RAM for {} RAM sections, {} bytes in RAM and {} bytes on devices for persistent memory ({} bytes per struct page)",
        ram_bytes,
        ram_secs.len(),
        device_ram,
        device_on_dev,
        size_of::<mm::Page>()
    );
    for c in &setup.conflicts {
        let _ = writeln!(out, "{c}");
    }
    out
}

fn sections(start: u64, end: u64) -> u64 {
    if end <= start {
        return 0;
    }
    ((end - 1) >> SECTION_SHIFT) - (start >> SECTION_SHIFT) + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The map SeaBIOS gives the runner's default machine (`-m 512M`, AMD-vendor CPU), as
    /// Linux prints it: the same map as the firmware crate's tests use (QEMU_SEABIOS_512M).
    const QEMU_512M: &str = "\
[    0.000000] BIOS-provided physical RAM map:
[    0.000000] BIOS-e820: [mem 0x0000000000000000-0x000000000009fbff] usable
[    0.000000] BIOS-e820: [mem 0x000000000009fc00-0x000000000009ffff] reserved
[    0.000000] BIOS-e820: [mem 0x00000000000f0000-0x00000000000fffff] reserved
[    0.000000] BIOS-e820: [mem 0x0000000000100000-0x000000001ffdffff] usable
[    0.000000] BIOS-e820: [mem 0x000000001ffe0000-0x000000001fffffff] reserved
[    0.000000] BIOS-e820: [mem 0x00000000feffc000-0x00000000feffffff] reserved
[    0.000000] BIOS-e820: [mem 0x00000000fffc0000-0x00000000ffffffff] reserved
[    0.000000] BIOS-e820: [mem 0x000000fd00000000-0x000000ffffffffff] reserved
";

    fn plan(text: &str, cmdline: &str) -> String {
        report(
            parse_dmesg(text).unwrap(),
            cmdline,
            &Tables::default(),
            String::new(),
        )
    }

    #[test]
    fn qemu_machine_matches_linux() {
        let out = plan(QEMU_512M, "");
        // What Linux prints for this map.
        let linux = "\
Zone ranges:
  DMA      [mem 0x0000000000001000-0x0000000000ffffff]
  DMA32    [mem 0x0000000001000000-0x000000001ffdffff]
  Normal   empty
  Device   empty
Movable zone start for each node
Early memory node ranges
  node   0: [mem 0x0000000000001000-0x000000000009efff]
  node   0: [mem 0x0000000000100000-0x000000001ffdffff]
Initmem setup node 0 [mem 0x0000000000001000-0x000000001ffdffff]
";
        assert!(out.contains(linux), "{out}");
        assert!(out.contains("Persistent memory: none"));
        assert!(
            out.contains("memmap: 4194304 bytes in RAM for 4 RAM sections"),
            "{out}"
        );
    }

    #[test]
    fn large_machine_with_memmap_parameter() {
        let text = "\
BIOS-e820: [mem 0x0000000000000000-0x000000000009ffff] usable
BIOS-e820: [mem 0x0000000000100000-0x00000000bfffffff] usable
BIOS-e820: [mem 0x00000000c0000000-0x00000000ffffffff] reserved
BIOS-e820: [mem 0x0000000100000000-0x000000043fffffff] usable
";
        let out = plan(text, "memmap=4G!12G");
        assert!(
            out.contains("user: [mem 0x0000000300000000-0x00000003ffffffff] persistent (type 12)"),
            "{out}"
        );
        assert!(
            out.contains("  Normal   [mem 0x0000000100000000-0x000000043fffffff]"),
            "{out}"
        );
        assert!(
            out.contains("  node   0: [mem 0x0000000100000000-0x00000002ffffffff]"),
            "{out}"
        );
        assert!(
            out.contains("  node   0: [mem 0x0000000400000000-0x000000043fffffff]"),
            "{out}"
        );
        assert!(out.contains("Persistent Memory (legacy)"), "{out}");
        assert!(out.contains("on the device (altmap)"), "{out}");
    }

    /// The NUMA lines Linux 6.1 printed (Debian's kernel in this QEMU, tests/data/*.dmesg)
    /// must come out of the planner run on that same dmesg, in the same order. Only the
    /// `NODE_DATA(N) allocated` lines are left out: they name addresses memblock picked.
    /// With the SRAT read from the dmesg (no `--slit`), so is the distance-table line.
    fn numa_lines_match_linux(dmesg: &str, extra: &[&str]) {
        let path = format!("{}/tests/data/{dmesg}", env!("CARGO_MANIFEST_DIR"));
        let mut args = vec!["--e820".to_string(), path.clone()];
        args.extend(extra.iter().map(|a| a.to_string()));
        let out = main(&args).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let wanted: Vec<&str> = text
            .lines()
            .map(|l| l.split_once("] ").map_or(l, |(_, rest)| rest))
            .filter(|l| {
                [
                    "SRAT: ",
                    "NUMA: ",
                    "Faking ",
                    "  node ",
                    "Initmem ",
                    "Initializing node ",
                ]
                .iter()
                .any(|p| l.starts_with(p))
                    || l.starts_with("No NUMA configuration")
            })
            // A dmesg does not carry the SLIT's distances: that line needs --slit.
            .filter(|l| {
                !l.starts_with("NUMA: Initialized distance table")
                    || extra.contains(&"--slit")
                    || text.contains("numa=fake")
            })
            .collect();
        assert!(wanted.len() >= 5, "{dmesg}: too few NUMA lines");
        let mut got = out.lines();
        for w in &wanted {
            assert!(
                got.any(|g| g == *w),
                "{dmesg}: Linux's line {w:?} is missing or out of order in\n{out}"
            );
        }
    }

    #[test]
    fn numa_layouts_match_linux() {
        // The SRAT read back from the dmesg's own lines.
        numa_lines_match_linux("linux-6.1-qemu-two.dmesg", &[]);
        numa_lines_match_linux("linux-6.1-qemu-four.dmesg", &[]);
        numa_lines_match_linux("linux-6.1-qemu-fake.dmesg", &[]);
        // And from the binary tables QEMU built for those runs.
        let data = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/kernel/firmware/src/tests/data"
        );
        numa_lines_match_linux(
            "linux-6.1-qemu-two.dmesg",
            &[
                "--srat",
                &format!("{data}/qemu_two_nodes_SRAT.bin"),
                "--slit",
                &format!("{data}/qemu_two_nodes_SLIT.bin"),
            ],
        );
        let nfit = format!("{data}/qemu_four_nodes_nvdimm_NFIT.bin");
        let out = main(&[
            "--e820".into(),
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/data/linux-6.1-qemu-four.dmesg"
            )
            .into(),
            "--srat".into(),
            format!("{data}/qemu_four_nodes_nvdimm_SRAT.bin"),
            "--nfit".into(),
            nfit,
        ])
        .unwrap();
        assert!(
            out.contains("Persistent Memory (NFIT), node 2,"),
            "the NVDIMM's node: {out}"
        );
        assert!(
            main(&[
                "--e820".into(),
                "x".into(),
                "--srat".into(),
                "/nonexistent".into()
            ])
            .is_err()
        );
    }

    #[test]
    fn nfit_warnings_are_printed_and_the_range_kept() {
        let data = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/kernel/firmware/src/tests/data"
        );
        let mut t = std::fs::read(format!("{data}/qemu_four_nodes_nvdimm_NFIT.bin")).unwrap();
        // The first SPA range's memory attributes (table offset 40 + 48): a bit outside
        // EFI_MEMORY_*, then the checksum made good again.
        t[40 + 48 + 6] |= 0x80;
        t[9] = 0;
        t[9] = 0u8.wrapping_sub(t.iter().fold(0u8, |a, &b| a.wrapping_add(b)));
        let path = std::env::temp_dir().join(format!("plan-nfit-{}.bin", std::process::id()));
        std::fs::write(&path, &t).unwrap();
        let dmesg = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/linux-6.1-qemu-four.dmesg"
        );
        let out = main(&[
            "--e820".into(),
            dmesg.into(),
            "--nfit".into(),
            path.to_string_lossy().into_owned(),
        ])
        .unwrap();
        let _ = std::fs::remove_file(&path);
        assert!(
            out.lines()
                .any(|l| l.starts_with("NFIT: ") && l.contains("attribute")),
            "{out}"
        );
        assert!(out.contains("Persistent Memory (NFIT), node 2"), "{out}");
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(main(&["--e820".into()]).is_err());
        assert!(main(&["--bogus".into()]).is_err());
        assert!(main(&["--e820".into(), "/nonexistent/file".into()]).is_err());
    }
}
