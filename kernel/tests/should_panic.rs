//! A should-panic test kernel: the test passes only if it panics.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![no_main]

use bootloader_api::{BootInfo, entry_point};
use kernel::qemu::{ExitCode, exit_qemu};
use kernel::{serial_print, serial_println};

entry_point!(main, config = &kernel::BOOTLOADER_CONFIG);

fn main(_boot_info: &'static mut BootInfo) -> ! {
    kernel::init_cpu();
    serial_print!("should_panic::assertion_fails ... ");
    assertion_fails();
    serial_println!("[test did not panic]");
    serial_println!("0 passed, 1 failed");
    exit_qemu(ExitCode::Failed)
}

fn assertion_fails() {
    let two = core::hint::black_box(1) + 1;
    assert_eq!(two, 3, "1 + 1 is not 3");
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    kernel::serial::force_unlock();
    serial_println!("ok (panicked: {})", info.message());
    serial_println!("1 passed, 0 failed");
    exit_qemu(ExitCode::Success)
}
