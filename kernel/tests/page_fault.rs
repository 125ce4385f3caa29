//! A page fault must be reported with CR2 and the error code, then stop the
//! machine (here the test declares it expects it).
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![no_main]

use bootloader_api::{BootInfo, entry_point};
use kernel::fault::Fault;

entry_point!(main, config = &kernel::BOOTLOADER_CONFIG);

fn main(_boot_info: &'static mut BootInfo) -> ! {
    kernel::init_cpu();
    kernel::testing::expect_fatal("page_fault::reported_with_cr2", Fault::PageFault, || {
        // SAFETY: deliberately reads an unmapped, canonical address to fault.
        let v = unsafe { core::ptr::read_volatile(0x0dea_dbee_f000 as *const u64) };
        core::hint::black_box(v);
    })
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    kernel::testing::fail_on_panic(info)
}
