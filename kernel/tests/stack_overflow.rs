//! A kernel stack overflow must be reported by the double-fault handler running on
//! its own IST stack, not end in a triple fault.
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
        "stack_overflow::reported_as_double_fault",
        Fault::DoubleFault,
        || {
            recurse(0);
        },
    )
}

#[allow(unconditional_recursion)]
fn recurse(depth: u64) -> u64 {
    // A frame the optimiser cannot fold into a loop.
    let buf = core::hint::black_box([depth; 16]);
    recurse(buf[3] + 1) + core::hint::black_box(1)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    kernel::testing::fail_on_panic(info)
}
