//! The runner's command-line options (`cargo run -- --help`), parsed by hand:
//! a dozen flags do not need an argument-parsing crate.
use std::path::PathBuf;

/// One emulated NVDIMM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nvdimm {
    /// Size in bytes.
    pub size: u64,
    /// Backing file; `None` picks one under target/nvdimm/.
    pub file: Option<PathBuf>,
    /// NUMA node (`node=N`), 0 by default.
    pub node: u32,
}

/// Where QEMU's screen goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Screen {
    /// No screen (`-display none`): the serial console on stdio is all there is.
    #[default]
    Headless,
    /// `--display`: a window if the host has a display, else VNC on a free port
    /// (decided by [`crate::qemu::resolve_screen`] just before QEMU starts).
    Auto,
    /// A QEMU window through this UI (`gtk` or `sdl`).
    Window(&'static str),
    /// VNC display N on localhost (TCP port 5900 + N).
    Vnc(u16),
}

/// The default port of `--gdb` (QEMU's `-s`).
pub const GDB_DEFAULT_PORT: u16 = 1234;

/// How to boot the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOptions {
    /// RAM in bytes.
    pub mem: u64,
    /// Emulated NVDIMMs.
    pub nvdimms: Vec<Nvdimm>,
    /// Boot through UEFI (OVMF) instead of BIOS.
    pub uefi: bool,
    /// Kernel command line (passed through fw_cfg).
    pub cmdline: String,
    /// Memory hotplug slots and the maximum memory (both or neither).
    pub slots: Option<u32>,
    /// Maximum memory in bytes with hotplug slots.
    pub maxmem: Option<u64>,
    /// QEMU monitor on this unix socket.
    pub monitor: Option<PathBuf>,
    /// Extra ACPI tables.
    pub acpitables: Vec<PathBuf>,
    /// Seconds before QEMU is killed; `None` waits for ever.
    pub timeout: Option<u64>,
    /// Extra raw QEMU arguments.
    pub qemu_args: Vec<String>,
    /// A prebuilt kernel ELF instead of building kernel/.
    pub kernel: Option<PathBuf>,
    /// Boot N times and report the median boot time.
    pub bench_boot: Option<u32>,
    /// `--bench-smp N`: boot N times with one CPU and N times with `--smp`, and
    /// report the ratio of the median boot times.
    pub bench_smp: Option<u32>,
    /// CPUs, NUMA nodes, distances and cold-plugged DIMMs.
    pub topology: crate::topology::Topology,
    /// The screen (`--display`); headless by default.
    pub screen: Screen,
    /// `--gdb [PORT]`: start halted with a gdb stub on this localhost port.
    pub gdb: Option<u16>,
    /// `--image DIR`: write the BIOS and UEFI disk images into DIR, do not boot.
    pub image_dir: Option<PathBuf>,
    /// Not an option: the localhost port of QEMU's own gdb stub when the runner's
    /// relay ([`crate::gdb::Relay`]) listens on the `--gdb` port. Without it, QEMU
    /// listens on the `--gdb` port itself.
    pub gdb_stub: Option<u16>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            mem: 512 << 20,
            nvdimms: Vec::new(),
            uefi: false,
            cmdline: String::new(),
            slots: None,
            maxmem: None,
            monitor: None,
            acpitables: Vec::new(),
            timeout: None,
            qemu_args: Vec::new(),
            kernel: None,
            bench_boot: None,
            bench_smp: None,
            topology: Default::default(),
            screen: Screen::Headless,
            gdb: None,
            image_dir: None,
            gdb_stub: None,
        }
    }
}

/// The `--help` text.
pub const USAGE: &str = "\
Usage: cargo run [--release] -- [OPTIONS]
       cargo run -- plan --e820 FILE [--cmdline \"memmap=...\"] [--nfit TABLE.bin]

Builds the kernel, makes a BIOS (or UEFI) disk image and boots it in QEMU with the
serial console on stdio. Type `help` at the prompt; `poweroff` ends the run.

Options:
  --mem SIZE              guest RAM (default 512M); sizes take K, M, G, T
  --nvdimm SIZE[,node=N][,file=PATH]
                          add an emulated NVDIMM (repeatable); backed by a sparse
                          file under target/nvdimm/ kept between runs
  --smp N                 N CPUs (multi-threaded TCG above 1)
  --numa SIZE[,cpus=LIST] add NUMA node i (repeatable, in order) with SIZE of RAM
                          (0 for a memoryless node) and CPUs LIST (e.g. 0-1,3);
                          the guest RAM is the sum, so --mem may be left out
  --numa-dist A,B,VAL     distance between nodes A and B (repeatable, symmetric)
  --dimm SIZE[,node=N]    a cold-plugged pc-dimm (multiple of 128M) on node N
  --uefi                  boot through UEFI (Debian's OVMF) instead of BIOS
  --cmdline \"STRING\"      kernel command line, passed through QEMU fw_cfg
  --slots N --maxmem SIZE room for hot-added memory (pc-dimm slots)
  --monitor PATH          QEMU monitor on a unix socket at PATH
  --acpitable FILE        add an ACPI table (repeatable)
  --timeout SECONDS       kill QEMU after SECONDS (exit code 124)
  --qemu ARG              pass ARG to QEMU (repeatable)
  --kernel ELF            boot this kernel ELF instead of building kernel/
  --bench-boot N          boot N times with the screen console and N with fbcon=off,
                          alternating; print the median times to the prompt
  --bench-smp N           boot N times with one CPU and N times with --smp (above 1),
                          alternating, fbcon=off; before each boot, measure how the
                          host serves two threads touching fresh memory against one,
                          with a pause of 6 s on each side; print the median kernel
                          entry to prompt of each side, their ratio and the host's
  --display               show the screen: a QEMU window if the host has a display
                          ($DISPLAY or $WAYLAND_DISPLAY), else VNC on a free port
                          (printed); the serial console stays on stdio
  --gdb [PORT]            start halted with a gdb stub on localhost:PORT (default
                          1234); prints the `target remote` line and the kernel ELF
                          with symbols and debug info to load in gdb
  --image DIR             write the BIOS and UEFI disk images into DIR (created if
                          missing) for a USB stick, and do not boot
  -h, --help              this text

Exit codes: 0 success (poweroff, tests passed); 1 the kernel reported failure
(panic, failed test); 2 triple fault or unexpected reset; 3 QEMU could not run;
124 timeout; 64 bad usage.";

/// Parse a size: decimal or 0x-hex with an optional K/M/G/T binary unit (`512M`, `0x1000`,
/// `4GiB`): the shell's own parser, so the runner and the kernel's console agree.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    shell::num::parse_size(s).map_err(|e| match e {
        shell::num::NumError::Overflow => format!("size '{s}' is too large"),
        e => format!("bad size '{s}': {e}"),
    })
}

fn parse_nvdimm(s: &str) -> Result<Nvdimm, String> {
    let mut parts = s.split(',');
    let size = parse_size(parts.next().unwrap_or(""))?;
    if size == 0 || size % (2 << 20) != 0 {
        return Err(format!(
            "--nvdimm size must be a non-zero multiple of 2M, got '{s}'"
        ));
    }
    let mut file = None;
    let mut node = 0;
    for p in parts {
        if let Some(n) = p.strip_prefix("node=") {
            node = n.parse().map_err(|_| format!("bad --nvdimm node '{n}'"))?;
            continue;
        }
        match p.strip_prefix("file=") {
            Some(path) if !path.is_empty() => file = Some(PathBuf::from(path)),
            _ => return Err(format!("bad --nvdimm option '{p}' (expected file=PATH)")),
        }
    }
    Ok(Nvdimm { size, file, node })
}

/// Parse the runner's options (everything after `--`).
pub fn parse(args: &[String]) -> Result<RunOptions, String> {
    let mut o = RunOptions::default();
    let mut mem_given = None;
    let mut it = args.iter().peekable();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match arg.as_str() {
            "--mem" => mem_given = Some(parse_size(&value("--mem")?)?),
            "--nvdimm" => o.nvdimms.push(parse_nvdimm(&value("--nvdimm")?)?),
            "--uefi" => o.uefi = true,
            "--cmdline" => o.cmdline = value("--cmdline")?,
            "--slots" => {
                let v = value("--slots")?;
                o.slots = Some(v.parse().map_err(|_| format!("bad --slots '{v}'"))?);
            }
            "--maxmem" => o.maxmem = Some(parse_size(&value("--maxmem")?)?),
            "--monitor" => o.monitor = Some(PathBuf::from(value("--monitor")?)),
            "--acpitable" => o.acpitables.push(PathBuf::from(value("--acpitable")?)),
            "--timeout" => {
                let v = value("--timeout")?;
                o.timeout = Some(v.parse().map_err(|_| format!("bad --timeout '{v}'"))?);
            }
            "--qemu" => o.qemu_args.push(value("--qemu")?),
            "--kernel" => o.kernel = Some(PathBuf::from(value("--kernel")?)),
            "--bench-boot" => {
                let v = value("--bench-boot")?;
                o.bench_boot = Some(v.parse().map_err(|_| format!("bad --bench-boot '{v}'"))?);
            }
            "--bench-smp" => {
                let v = value("--bench-smp")?;
                o.bench_smp = Some(
                    v.parse()
                        .ok()
                        .filter(|&n| n > 0)
                        .ok_or(format!("bad --bench-smp '{v}' (a count above 0)"))?,
                );
            }
            "--display" => o.screen = Screen::Auto,
            "--gdb" => {
                // The port is optional: take the next argument only if it is not
                // another option.
                let port = match it.peek() {
                    Some(v) if !v.starts_with('-') => {
                        let v = it.next().map(String::as_str).unwrap_or_default();
                        match v.parse::<u16>() {
                            Ok(p) if p > 0 => p,
                            _ => return Err(format!("bad --gdb port '{v}' (1-65535)")),
                        }
                    }
                    _ => GDB_DEFAULT_PORT,
                };
                o.gdb = Some(port);
            }
            "--image" => {
                let v = value("--image")?;
                if v.is_empty() {
                    return Err("--image needs a directory".into());
                }
                o.image_dir = Some(PathBuf::from(v));
            }
            "--smp" | "--numa" | "--numa-dist" | "--dimm" => {
                let v = value(arg)?;
                o.topology.take(arg, &v).unwrap_or(Ok(()))?;
            }
            other => return Err(format!("unknown option '{other}' (see --help)")),
        }
    }
    let nv_nodes: Vec<u32> = o.nvdimms.iter().map(|n| n.node).collect();
    if let Some(mem) = o.topology.check(mem_given, &nv_nodes)? {
        o.mem = mem;
    }
    if o.mem < (64 << 20) {
        return Err("--mem must be at least 64M".into());
    }
    match (o.slots, o.maxmem) {
        (Some(0), _) => return Err("--slots must be at least 1".into()),
        (Some(_), None) | (None, Some(_)) => {
            return Err("--slots and --maxmem go together".into());
        }
        (Some(_), Some(max)) if max < o.mem => return Err("--maxmem is below --mem".into()),
        _ => {}
    }
    if o.gdb.is_some() && (o.bench_boot.is_some() || o.bench_smp.is_some()) {
        return Err("--gdb and --bench-boot/--bench-smp do not go together".into());
    }
    if o.bench_smp.is_some() {
        if o.bench_boot.is_some() {
            return Err("--bench-boot and --bench-smp do not go together".into());
        }
        if o.topology.smp.unwrap_or(1) < 2 || !o.topology.nodes.is_empty() {
            return Err(
                "--bench-smp compares one CPU with --smp N (N above 1), without --numa".into(),
            );
        }
    }
    if o.image_dir.is_some() {
        let booting = [
            (o.gdb.is_some(), "--gdb"),
            (o.screen != Screen::Headless, "--display"),
            (o.bench_boot.is_some(), "--bench-boot"),
            (o.bench_smp.is_some(), "--bench-smp"),
        ];
        if let Some((_, name)) = booting.iter().find(|(on, _)| *on) {
            return Err(format!(
                "--image writes disk images without booting: it does not go with {name}"
            ));
        }
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn bench_smp_needs_more_than_one_cpu_and_no_numa() {
        let o = parse(&args("--mem 16G --smp 2 --bench-smp 5")).unwrap();
        assert_eq!((o.bench_smp, o.topology.smp), (Some(5), Some(2)));
        for bad in [
            "--bench-smp 5",
            "--smp 1 --bench-smp 5",
            "--smp 2 --bench-smp 0",
            "--smp 2 --bench-smp x",
            "--smp 2 --bench-smp 3 --bench-boot 3",
            "--smp 2 --numa 256M,cpus=0 --numa 256M,cpus=1 --bench-smp 3",
            "--smp 2 --bench-smp 3 --gdb",
        ] {
            assert!(parse(&args(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("0x1000"), Ok(4096));
        assert_eq!(parse_size("6G"), Ok(6 << 30));
        assert!(parse_size("16777216T").is_err());
        assert!(parse_size("M").is_err());
        assert!(parse_size("12Q").is_err());
    }

    #[test]
    fn full_set() {
        let o = parse(&args(
            "--mem 1G --nvdimm 128M --nvdimm 64M,file=/tmp/x --uefi --slots 2 --maxmem 4G --timeout 30 --qemu -S",
        ))
        .unwrap();
        assert_eq!(o.mem, 1 << 30);
        assert_eq!(o.nvdimms.len(), 2);
        assert_eq!(
            o.nvdimms[1].file.as_deref(),
            Some(std::path::Path::new("/tmp/x"))
        );
        assert!(o.uefi);
        assert_eq!((o.slots, o.maxmem), (Some(2), Some(4 << 30)));
        assert_eq!(o.timeout, Some(30));
        assert_eq!(o.qemu_args, vec!["-S".to_string()]);
    }

    #[test]
    fn errors() {
        assert!(parse(&args("--mem")).is_err());
        assert!(parse(&args("--bogus")).is_err());
        assert!(parse(&args("--slots 2")).is_err());
        assert!(parse(&args("--nvdimm 3M")).is_err());
        assert!(parse(&args("--nvdimm 4M,size=2")).is_err());
        assert!(parse(&args("--mem 1M")).is_err());
        assert!(parse(&args("--nvdimm 128M,node=x")).is_err());
        assert!(parse(&args("--numa 1G --nvdimm 128M,node=1")).is_err());
        assert!(parse(&args("--mem 1G --numa 512M")).is_err());
    }

    #[test]
    fn display_gdb_image() {
        let o = parse(&[]).unwrap();
        assert_eq!(
            (o.screen, o.gdb, o.image_dir.clone()),
            (Screen::Headless, None, None)
        );
        assert_eq!(parse(&args("--display")).unwrap().screen, Screen::Auto);
        // --gdb's port is optional, also before another option or at the end.
        assert_eq!(parse(&args("--gdb")).unwrap().gdb, Some(GDB_DEFAULT_PORT));
        assert_eq!(parse(&args("--gdb 4321")).unwrap().gdb, Some(4321));
        let o = parse(&args("--gdb --uefi --display")).unwrap();
        assert_eq!((o.gdb, o.uefi, o.screen), (Some(1234), true, Screen::Auto));
        let o = parse(&args("--uefi --gdb 65535 --mem 1G")).unwrap();
        assert_eq!((o.gdb, o.mem), (Some(65535), 1 << 30));
        let o = parse(&args("--image target/usb")).unwrap();
        assert_eq!(
            o.image_dir.as_deref(),
            Some(std::path::Path::new("target/usb"))
        );
    }

    #[test]
    fn display_gdb_image_errors() {
        for bad in ["--gdb 0", "--gdb 65536", "--gdb port", "--gdb 12ab"] {
            let e = parse(&args(bad)).unwrap_err();
            assert!(e.contains("bad --gdb port"), "{bad}: {e}");
        }
        assert!(
            parse(&args("--image"))
                .unwrap_err()
                .contains("needs a value")
        );
        assert!(parse(&[String::from("--image"), String::new()]).is_err());
        for bad in [
            "--image d --gdb",
            "--image d --display",
            "--image d --bench-boot 2",
        ] {
            let e = parse(&args(bad)).unwrap_err();
            assert!(e.contains("without booting"), "{bad}: {e}");
        }
        assert!(parse(&args("--gdb --bench-boot 2")).is_err());
    }

    #[test]
    fn numa_options() {
        let o = parse(&args(
            "--smp 2 --numa 512M,cpus=0 --numa 1G,cpus=1 --numa-dist 0,1,21 --nvdimm 128M,node=1",
        ))
        .unwrap();
        assert_eq!(o.mem, 1536 << 20);
        assert_eq!(o.nvdimms[0].node, 1);
        assert_eq!(o.topology.nodes.len(), 2);
    }

    /// QEMU 7.2's `pc` machine takes 1 to 255 CPUs ("Invalid SMP CPUs 256. The max CPUs
    /// supported by machine 'pc-i440fx-7.2' is 255"): the runner refuses the rest itself.
    #[test]
    fn smp_counts_within_qemus_limit() {
        assert_eq!(parse(&args("--smp 255")).unwrap().topology.smp, Some(255));
        assert_eq!(parse(&args("--smp 1")).unwrap().topology.smp, Some(1));
        for bad in ["--smp 0", "--smp 256", "--smp -3", "--smp four", "--smp"] {
            let e = parse(&args(bad)).unwrap_err();
            assert!(e.contains("--smp"), "{bad}: {e}");
        }
    }
}
