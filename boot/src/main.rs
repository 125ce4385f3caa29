//! `cargo run` at the repository root: build the kernel, make its disk image and
//! boot it in QEMU with the serial console on stdio (see `--help`). Also the
//! cargo runner for kernel ELFs (`--kernel`), and `plan`, the dry-run planner.
#![forbid(unsafe_code)]

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use boot::ktest::run_test_kernel;
use boot::options::{self, Screen, USAGE};
use boot::qemu::{self, Console, Outcome};
use boot::{gdb, host_faults, image, kbuild};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("plan") {
        return match boot::plan::main(&args[1..]) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("plan: {e}");
                ExitCode::from(64)
            }
        };
    }
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let mut opts = match options::parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("boot: {e}");
            return ExitCode::from(64);
        }
    };
    // --gdb: reserve the port before anything slow, so a port in use fails at once.
    let relay = match opts.gdb.map(gdb::Relay::bind) {
        None => None,
        Some(Ok(r)) => Some(r),
        Some(Err(e)) => {
            eprintln!("boot: {e}");
            return ExitCode::from(3);
        }
    };
    let elf = match &opts.kernel {
        Some(k) => k.clone(),
        None => match kbuild::build_kernel(false) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("boot: {e}");
                return ExitCode::from(3);
            }
        },
    };
    if let Some(dir) = &opts.image_dir {
        return write_usb_images(&elf, dir);
    }
    // A test kernel handed to us as cargo's runner (cargo test inside kernel/).
    // Cargo names test executables `NAME-<16 hex digits>`.
    let stem = elf
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let test_name = stem
        .rsplit_once('-')
        .filter(|(_, hash)| hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit()))
        .map(|(name, _)| name.to_string());
    if let (Some(_), Some(name)) = (&opts.kernel, test_name) {
        let report = run_test_kernel(
            &kbuild::KernelArtifact {
                name,
                path: elf.clone(),
            },
            true,
        );
        return if report.failed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        };
    }
    let image = match image::disk_image(Path::new(&elf), opts.uefi) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("boot: {e}");
            return ExitCode::from(3);
        }
    };
    if let Some(n) = opts.bench_boot {
        return bench_boot(&image, &opts, n);
    }
    if let Some(n) = opts.bench_smp {
        return bench_smp(&image, &opts, n);
    }
    if opts.screen == Screen::Auto {
        match qemu::resolve_screen() {
            Ok((screen, line)) => {
                opts.screen = screen;
                println!("{line}");
            }
            Err(e) => {
                eprintln!("boot: {e}");
                return ExitCode::from(3);
            }
        }
    }
    if let Some(relay) = &relay {
        let symbols = match image::debug_elf(&elf) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("boot: {e}");
                return ExitCode::from(3);
            }
        };
        opts.gdb_stub = Some(relay.qemu_port());
        if let Err(e) = relay.serve(gdb::kernel_load_offset(&opts)) {
            eprintln!("boot: {e}");
            return ExitCode::from(3);
        }
        println!(
            "gdb: target remote localhost:{}, symbols in {}",
            relay.port(),
            symbols.display()
        );
    }
    let _ = std::io::stdout().flush();
    loop {
        match qemu::run(&image, &opts, &Console::Inherit) {
            Ok(res) if res.outcome == Outcome::Reboot => continue,
            Ok(res) => {
                if res.outcome != Outcome::Success {
                    eprintln!("boot: {}", res.outcome.reason());
                }
                return ExitCode::from(res.outcome.exit_code() as u8);
            }
            Err(e) => {
                eprintln!("boot: {e}");
                return ExitCode::from(3);
            }
        }
    }
}

/// `--image DIR`: write both disk images and say how to put one on a USB stick.
fn write_usb_images(elf: &Path, dir: &Path) -> ExitCode {
    let [bios, uefi] = match image::write_images(elf, dir) {
        Ok(paths) => paths,
        Err(image::WriteError::Dir(e)) => {
            eprintln!("boot: --image: {e}");
            return ExitCode::from(64);
        }
        Err(image::WriteError::Build(e)) => {
            eprintln!("boot: --image: {e}");
            return ExitCode::from(3);
        }
    };
    let size = |p: &Path| {
        std::fs::metadata(p)
            .map_or(0, |m| m.len())
            .div_ceil(1 << 20)
    };
    println!("image: BIOS {} ({} MiB)", bios.display(), size(&bios));
    println!("image: UEFI {} ({} MiB)", uefi.display(), size(&uefi));
    println!(
        "To boot a PC from a USB stick, write one image to the whole stick (not a partition).\n\
         WARNING: this erases everything on the stick; check its name with `lsblk` first,\n\
         /dev/sdX below must be the stick and nothing else:\n\
         \x20 sudo dd if={} of=/dev/sdX bs=4M conv=fsync status=progress\n\
         (UEFI firmware, Secure Boot off; for BIOS/CSM boot write {} instead.)\n\
         The kernel talks on the serial port (COM1, 115200 8N1); see README \"On a real machine\".",
        uefi.display(),
        bios.display()
    );
    ExitCode::SUCCESS
}

/// The pause before each `--bench-smp` boot. This machine's host hands freed memory
/// back to its hypervisor (virtio-balloon free page reporting, 2 MiB blocks, about 2 s
/// after the free), and touching such memory again is slow: 5-6.5 ms per 2 MiB, which
/// is most of a 16 GiB boot. A QEMU started right after another finds part of its RAM
/// still warm and boots up to five times faster, at random. After 6 s nearly every
/// boot starts cold (3 s was not enough); the bench prints min and max to show it.
const BENCH_PAUSE: std::time::Duration = std::time::Duration::from_secs(6);

/// MiB of fresh memory `--bench-smp` touches to measure the host before each boot
/// (boot/src/host_faults.rs): 64 huge pages, about 0.3 s with one thread.
const HOST_PROBE_MIB: usize = 128;

/// One `poweroff` boot for a bench. `Err((exit code, why))`: 3 when QEMU could not
/// run, 1 when the boot failed.
fn bench_run(image: &Path, o: &options::RunOptions) -> Result<qemu::RunResult, (u8, String)> {
    let res = qemu::run(
        image,
        o,
        &Console::Script {
            input: b"poweroff\n".to_vec(),
            echo: false,
        },
    )
    .map_err(|e| (3, e))?;
    if res.outcome != Outcome::Success {
        return Err((1, res.outcome.reason()));
    }
    Ok(res)
}

/// The microseconds the first line of `output` containing `line_has` prints right
/// after `before` (`kernel init took N us`, `deferred struct pages: ... in N us`), in ms.
fn kernel_ms(output: &str, line_has: &str, before: &str) -> Option<f64> {
    output
        .lines()
        .filter(|l| l.contains(line_has))
        .find_map(|l| {
            l.split(before)
                .nth(1)?
                .split(" us")
                .next()?
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map(|us| us / 1000.0)
}

/// The median of `v` (sorted in place); NaN when empty.
fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// `--bench-smp N`: boot N times with one CPU and N times with `--smp M`,
/// alternately, with `fbcon=off`; before each boot, a [`BENCH_PAUSE`], how the host
/// serves two threads touching fresh memory against one ([`host_faults::scaling`]: what
/// a cold deferred init is made of), and a pause again. Print for each side the median
/// kernel entry to prompt and deferred struct page init, the ratio of the entry-to-prompt
/// medians (issue 13's target: at most 0.6 for `--mem 16G --smp 2`) and the host's median.
fn bench_smp(image: &Path, opts: &options::RunOptions, n: u32) -> ExitCode {
    let smp = opts.topology.smp.unwrap_or(1);
    let mut totals = [Vec::new(), Vec::new()];
    let mut deferred = [Vec::new(), Vec::new()];
    let mut host = Vec::new();
    for i in 0..2 * n {
        let side = (i % 2) as usize;
        // The same before every boot, so that neither side starts colder: a pause (the
        // last QEMU's memory is given back), the host measured on cold memory, and a
        // pause again (the boot does not find that memory warm).
        std::thread::sleep(BENCH_PAUSE);
        match host_faults::scaling(HOST_PROBE_MIB, i % 4 >= 2) {
            Ok(s) => {
                println!(
                    "host before boot {}: {HOST_PROBE_MIB} MiB of fresh memory, 2 threads against 1: {s:.2}x",
                    i + 1
                );
                host.push(s);
            }
            Err(e) => println!("host: fresh memory not measured: {e}"),
        }
        let mut o = opts.clone();
        o.timeout = Some(o.timeout.unwrap_or(120));
        o.cmdline = format!("{} fbcon=off", o.cmdline).trim().to_string();
        if side == 0 {
            o.topology.smp = Some(1);
        }
        std::thread::sleep(BENCH_PAUSE);
        let res = match bench_run(image, &o) {
            Ok(res) => res,
            Err((code, e)) => {
                eprintln!("boot {i}: {e}");
                return ExitCode::from(code);
            }
        };
        let Some(total) = kernel_ms(&res.output, "kernel init took ", "kernel init took ") else {
            eprintln!("boot {i}: no `kernel init took` line");
            return ExitCode::from(1);
        };
        let d = kernel_ms(&res.output, "deferred struct pages:", " in ");
        println!(
            "boot {} (--smp {}): kernel entry to prompt {total:.1} ms, deferred struct page init {}",
            i + 1,
            o.topology.smp.unwrap_or(1),
            d.map_or_else(|| "none".to_string(), |d| format!("{d:.1} ms"))
        );
        totals[side].push(total);
        deferred[side].extend(d);
    }
    let mut med = [0.0; 2];
    for (side, cpus) in [1, smp].into_iter().enumerate() {
        med[side] = median(&mut totals[side]);
        println!(
            "--smp {cpus}: boots: {}  kernel entry to prompt: median {:.1} ms (min {:.1}, max {:.1})  deferred struct page init: median {:.1} ms",
            totals[side].len(),
            med[side],
            totals[side].first().copied().unwrap_or(f64::NAN),
            totals[side].last().copied().unwrap_or(f64::NAN),
            median(&mut deferred[side]),
        );
    }
    println!(
        "kernel entry to prompt, --smp {smp} against --smp 1: {:.2}x",
        med[1] / med[0]
    );
    if !host.is_empty() {
        println!(
            "host: fresh memory, 2 threads against 1: median {:.2}x of {} (a cold deferred init is mostly the host faulting guest RAM in)",
            median(&mut host),
            host.len()
        );
    }
    ExitCode::SUCCESS
}

/// Boot `n` times with the framebuffer console and `n` times with `fbcon=off`,
/// alternately (so both see the same machine load); print for each the median wall
/// time from QEMU start to the shell prompt and the kernel's own entry-to-prompt
/// time (TSC) that it prints at the prompt.
fn bench_boot(image: &Path, opts: &options::RunOptions, n: u32) -> ExitCode {
    let mut walls = [Vec::new(), Vec::new()];
    let mut kernels = [Vec::new(), Vec::new()];
    for i in 0..2 * n.max(1) {
        let side = (i % 2) as usize;
        let mut o = opts.clone();
        o.timeout = Some(o.timeout.unwrap_or(120));
        if side == 1 {
            o.cmdline = format!("{} fbcon=off", o.cmdline).trim().to_string();
        }
        let res = match bench_run(image, &o) {
            Ok(res) => res,
            Err((code, e)) => {
                eprintln!("boot {i}: {e}");
                return ExitCode::from(code);
            }
        };
        let Some(wall) = res.prompt_at else {
            eprintln!("boot {i}: no prompt seen");
            return ExitCode::from(1);
        };
        walls[side].push(wall.as_secs_f64());
        kernels[side].extend(kernel_ms(
            &res.output,
            "kernel init took ",
            "kernel init took ",
        ));
    }
    for (side, label) in ["framebuffer console on", "fbcon=off"].iter().enumerate() {
        println!(
            "{label}: boots: {}  median QEMU start to prompt: {:.3} s  median kernel entry to prompt: {:.1} ms (TCG)",
            walls[side].len(),
            median(&mut walls[side]),
            median(&mut kernels[side])
        );
    }
    ExitCode::SUCCESS
}
