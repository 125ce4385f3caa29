//! A heap allocation that cannot be satisfied must end in the alloc error path
//! with a clear message (a panic naming the size), not a hang.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![no_main]

extern crate alloc;

use bootloader_api::{BootInfo, entry_point};
use kernel::qemu::{ExitCode, exit_qemu};
use kernel::{serial_print, serial_println};

entry_point!(main, config = &kernel::BOOTLOADER_CONFIG);

fn main(boot_info: &'static mut BootInfo) -> ! {
    kernel::init_cpu();
    kernel::boot::init(boot_info);
    serial_print!("heap_exhaustion::huge_allocation_fails_cleanly ... ");
    let v: alloc::vec::Vec<u8> = alloc::vec::Vec::with_capacity(64 << 30);
    core::hint::black_box(&v);
    serial_println!("[64 GiB allocation succeeded on a 512 MiB machine]");
    serial_println!("0 passed, 1 failed");
    exit_qemu(ExitCode::Failed)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    kernel::serial::force_unlock();
    let msg = alloc::format!("{}", info.message());
    if msg.contains("memory allocation of") && msg.contains("failed") {
        serial_println!("ok ({msg})");
        serial_println!("1 passed, 0 failed");
        exit_qemu(ExitCode::Success)
    }
    serial_println!("FAILED: {info}");
    serial_println!("0 passed, 1 failed");
    exit_qemu(ExitCode::Failed)
}
