//! The in-kernel test framework (`custom_test_frameworks`): each test kernel prints
//! `name ... ok` per test and a final `N passed, N failed` line over serial, then
//! exits QEMU through isa-debug-exit (0x10 success, 0x11 failure).
//!
//! A kernel cannot unwind out of a failed test, so a panic prints `FAILED`, the
//! message, and a `ktest: resume NEXT PASSED FAILED` line, and ends the run; the
//! host runner boots the test kernel again with `ktest.resume=NEXT,PASSED,FAILED`
//! on its command line, so the remaining tests still run on a fresh machine and
//! the final line counts them all.
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::qemu::{ExitCode, exit_qemu};
use crate::{serial_print, serial_println};

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PASSED: AtomicUsize = AtomicUsize::new(0);
static FAILED: AtomicUsize = AtomicUsize::new(0);
static SKIP: AtomicUsize = AtomicUsize::new(0);

/// Something the runner can run and name.
pub trait Testable {
    /// Run the test, printing its name and `ok`.
    fn run(&self);
}

impl<T: Fn()> Testable for T {
    fn run(&self) {
        serial_print!("{} ... ", core::any::type_name::<T>());
        self();
        serial_println!("ok");
    }
}

/// Parse `ktest.resume=NEXT,PASSED,FAILED` from the command line.
pub fn parse_resume(cmdline: &str) {
    let Some(arg) = cmdline
        .split_whitespace()
        .find_map(|w| w.strip_prefix("ktest.resume="))
    else {
        return;
    };
    let mut it = arg.split(',').map(|n| n.parse::<usize>().ok());
    if let (Some(Some(next)), Some(Some(passed)), Some(Some(failed))) =
        (it.next(), it.next(), it.next())
    {
        SKIP.store(next, Ordering::SeqCst);
        PASSED.store(passed, Ordering::SeqCst);
        FAILED.store(failed, Ordering::SeqCst);
    }
}

/// Bring up a test kernel: the same memory set-up as the real kernel, plus the
/// resume point from the command line.
pub fn init(boot_info: &'static mut bootloader_api::BootInfo) {
    crate::boot::init(boot_info);
    crate::memory::late_init();
    // CPUs started from here on halt when idle, as after the real kernel's boot.
    crate::smp::boot_done();
    parse_resume(&crate::boot::cmdline());
}

/// The runner `#![test_runner]` names.
pub fn test_runner(tests: &[&dyn Testable]) -> ! {
    let skip = SKIP.load(Ordering::SeqCst);
    serial_println!("running {} tests", tests.len().saturating_sub(skip));
    for (i, test) in tests.iter().enumerate().skip(skip) {
        CURRENT.store(i, Ordering::SeqCst);
        test.run();
        PASSED.fetch_add(1, Ordering::SeqCst);
    }
    finish()
}

/// Print the summary line and exit with the verdict.
pub fn finish() -> ! {
    let (passed, failed) = (PASSED.load(Ordering::SeqCst), FAILED.load(Ordering::SeqCst));
    serial_println!("{passed} passed, {failed} failed");
    exit_qemu(if failed == 0 {
        ExitCode::Success
    } else {
        ExitCode::Failed
    })
}

/// The panic handler of test kernels.
pub fn test_panic_handler(info: &core::panic::PanicInfo) -> ! {
    crate::serial::force_unlock();
    crate::logger::force_unlock();
    serial_println!("FAILED");
    serial_println!("Kernel panic - {}", info);
    let next = CURRENT.load(Ordering::SeqCst) + 1;
    let (passed, failed) = (
        PASSED.load(Ordering::SeqCst),
        FAILED.load(Ordering::SeqCst) + 1,
    );
    serial_println!("ktest: resume {next} {passed} {failed}");
    exit_qemu(ExitCode::Failed)
}

/// The boilerplate of a test kernel that uses the test framework: its entry point
/// (full boot, memory manager included), `test_main`, and the panic handler.
/// The file itself still names the runner with the crate attributes
/// `#![test_runner(kernel::testing::test_runner)]` and
/// `#![reexport_test_harness_main = "test_main"]`.
#[macro_export]
macro_rules! test_kernel {
    () => {
        bootloader_api::entry_point!(__test_kernel_main, config = &$crate::BOOTLOADER_CONFIG);

        fn __test_kernel_main(boot_info: &'static mut bootloader_api::BootInfo) -> ! {
            $crate::init_cpu();
            $crate::testing::init(boot_info);
            test_main();
            $crate::hlt_loop()
        }

        #[panic_handler]
        fn __test_kernel_panic(info: &core::panic::PanicInfo) -> ! {
            $crate::testing::test_panic_handler(info)
        }
    };
}

/// A test kernel whose single test passes by taking the fatal `fault` that
/// `trigger` causes (page fault, #GP, stack overflow): declares the expectation,
/// runs the trigger, and fails if it returns.
pub fn expect_fatal(name: &str, fault: crate::fault::Fault, trigger: fn()) -> ! {
    serial_print!("{name} ... ");
    crate::fault::expect(fault);
    trigger();
    serial_println!("[no fault]");
    serial_println!("0 passed, 1 failed");
    exit_qemu(ExitCode::Failed)
}

/// Panic handler of the `harness = false` test kernels: a panic is a failure.
pub fn fail_on_panic(info: &core::panic::PanicInfo) -> ! {
    crate::serial::force_unlock();
    serial_println!("FAILED: {info}");
    serial_println!("0 passed, 1 failed");
    exit_qemu(ExitCode::Failed)
}
