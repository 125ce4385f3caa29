//! Host side of the zoned kernel: builds the kernel (a nested cargo in kernel/),
//! makes BIOS/UEFI disk images with the `bootloader` crate, boots them in QEMU,
//! runs test kernels, and offers the dry-run planner. `cargo run` at the
//! repository root is `src/main.rs` of this package; the boot scenarios in tests/
//! use this library.
#![forbid(unsafe_code)]

pub mod gdb;
pub mod host_faults;
pub mod image;
pub mod kbuild;
pub mod ktest;
pub mod options;
pub mod plan;
pub mod qemu;
pub mod session;
pub mod topology;

use std::path::PathBuf;
use std::sync::{Condvar, Mutex, OnceLock};

pub use options::RunOptions;
pub use qemu::{Console, Outcome, RunResult};

/// The kernel ELF, built once per process.
pub fn kernel_elf() -> Result<PathBuf, String> {
    static ELF: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    ELF.get_or_init(|| kbuild::build_kernel(false)).clone()
}

/// At most this many QEMUs at once from one test process (TCG is CPU-bound).
const QEMU_SLOTS: usize = 2;
static RUNNING: Mutex<usize> = Mutex::new(0);
static FREED: Condvar = Condvar::new();

/// One of the QEMU slots, held while a QEMU runs (also by boot scenarios that
/// start the runner binary themselves).
pub struct Slot;

impl Slot {
    /// Wait for a free slot.
    pub fn take() -> Slot {
        let mut n = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
        while *n >= QEMU_SLOTS {
            n = FREED.wait(n).unwrap_or_else(|e| e.into_inner());
        }
        *n += 1;
        Slot
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        *RUNNING.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        FREED.notify_one();
    }
}

/// Boot the kernel with `opts`, feed `script` to its console and return what it
/// printed (boot scenarios). The kernel is built on first use.
pub fn boot_with_script(opts: &RunOptions, script: &str) -> Result<RunResult, String> {
    let elf = match &opts.kernel {
        Some(k) => k.clone(),
        None => kernel_elf()?,
    };
    let image = image::disk_image(&elf, opts.uefi)?;
    let _slot = Slot::take();
    qemu::run(
        &image,
        opts,
        &Console::Script {
            input: script.as_bytes().to_vec(),
            echo: false,
        },
    )
}
