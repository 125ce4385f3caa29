//! `cargo run` at the repository root: build the kernel, make its disk image and
//! boot it in QEMU with the serial console on stdio (see `--help`). Also the
//! cargo runner for kernel ELFs (`--kernel`), and `plan`, the dry-run planner.
#![forbid(unsafe_code)]

use std::path::Path;
use std::process::ExitCode;

use boot::ktest::run_test_kernel;
use boot::options::{self, USAGE};
use boot::qemu::{self, Console, Outcome};
use boot::{image, kbuild};

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
    let opts = match options::parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("boot: {e}");
            return ExitCode::from(64);
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

/// Boot `n` times; print the median wall time from QEMU start to the shell prompt
/// and the kernel's own entry-to-prompt time (TSC) that it prints at the prompt.
fn bench_boot(image: &Path, opts: &options::RunOptions, n: u32) -> ExitCode {
    let mut walls = Vec::new();
    let mut kernels = Vec::new();
    for i in 0..n.max(1) {
        let mut o = opts.clone();
        o.timeout = Some(o.timeout.unwrap_or(120));
        match qemu::run(
            image,
            &o,
            &Console::Script {
                input: b"poweroff\n".to_vec(),
                echo: false,
            },
        ) {
            Ok(res) if res.outcome == Outcome::Success => {
                let Some(wall) = res.prompt_at else {
                    eprintln!("boot {i}: no prompt seen");
                    return ExitCode::from(1);
                };
                walls.push(wall.as_secs_f64());
                if let Some(us) = res
                    .output
                    .lines()
                    .find_map(|l| l.split("kernel init took ").nth(1))
                    .and_then(|r| r.split(" us").next())
                    .and_then(|v| v.trim().parse::<f64>().ok())
                {
                    kernels.push(us / 1000.0);
                }
            }
            Ok(res) => {
                eprintln!("boot {i}: {}", res.outcome.reason());
                return ExitCode::from(1);
            }
            Err(e) => {
                eprintln!("boot {i}: {e}");
                return ExitCode::from(3);
            }
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    println!(
        "boots: {}  median QEMU start to prompt: {:.3} s  median kernel entry to prompt: {:.1} ms (TCG)",
        walls.len(),
        median(&mut walls),
        median(&mut kernels)
    );
    ExitCode::SUCCESS
}
