//! A general protection fault must be reported with its error code, then stop
//! the machine (here the test declares it expects it).
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![no_main]

use bootloader_api::{BootInfo, entry_point};
use kernel::fault::Fault;

entry_point!(main, config = &kernel::BOOTLOADER_CONFIG);

fn main(_boot_info: &'static mut BootInfo) -> ! {
    kernel::init_cpu();
    kernel::testing::expect_fatal(
        "general_protection::reported",
        Fault::GeneralProtection,
        || {
            // SAFETY: deliberately reads a non-canonical address, which raises #GP.
            let v = unsafe {
                core::ptr::read_volatile(0x8000_0000_0000_0000_u64 as usize as *const u64)
            };
            core::hint::black_box(v);
        },
    )
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    kernel::testing::fail_on_panic(info)
}
