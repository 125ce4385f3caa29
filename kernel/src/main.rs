//! The kernel binary: boot, then the serial shell.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![no_main]

use bootloader_api::{BootInfo, entry_point};
use kernel::qemu::{ExitCode, exit_qemu};
use kernel::serial_println;

entry_point!(kernel_main, config = &kernel::BOOTLOADER_CONFIG);

fn kernel_main(boot_info: &'static mut BootInfo) -> ! {
    kernel::init_cpu();
    // The screen shows the console from the first line on (drawn once the command
    // line has been read and does not say fbcon=off).
    kernel::fbcon::attach(boot_info.framebuffer.take());
    serial_println!(
        "zoned {} (x86_64, zoned physical memory with ZONE_DEVICE)",
        env!("CARGO_PKG_VERSION")
    );
    // The other CPUs start inside, as soon as memblock has their trampoline.
    kernel::boot::init_smp(boot_info);
    // Their lines after the memory manager's, before the drivers (Linux's smp_init).
    kernel::start_secondary_cpus();
    // The deferred struct pages on every CPU, then the persistent memory.
    kernel::memory::late_init();
    kernel::boot::late_init();
    kernel::shell::log_init_time();
    // Idle CPUs halt from now on (they polled for the boot's work).
    kernel::smp::boot_done();
    kernel::shell::run()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    kernel::serial::force_unlock();
    kernel::logger::force_unlock();
    kernel::serial::write_fmt_coloured(
        kernel::fbcon::Colour::Error,
        format_args!("Kernel panic - not syncing: {info}\n"),
    );
    kernel::fbcon::emergency_flush();
    exit_qemu(ExitCode::Failed)
}
