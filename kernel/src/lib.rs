//! The zoned kernel: a bare-metal x86_64 kernel with Linux-style zoned physical
//! memory, in the spirit of ZONE_DEVICE.
//!
//! This crate is the thin hardware glue. Everything that can be decided without
//! touching the machine lives in the hardware-free crates, which are tested on
//! the host:
//! - `firmware`: E820/UEFI memory map, ACPI tables, NFIT, command line, iomem tree;
//! - `mm`: memblock, sparse memmap, zones, buddy allocator, memremap, hotplug;
//! - `shell`: the console's line editor and command parser.
//!
//! Here live the serial port, the framebuffer console, the PS/2 keyboard, the log, the GDT/IDT and exception handlers, the TSC,
//! QEMU's exit and fw_cfg devices, page tables, the heap and the boot sequence that
//! feeds firmware data through the hardware-free crates. Every `unsafe` block of
//! the project is in this crate, each with a `// SAFETY:` comment.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![cfg_attr(test, no_main)]
#![feature(custom_test_frameworks, abi_x86_interrupt)]
#![test_runner(crate::testing::test_runner)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

pub mod boot;
pub mod console_printer;
pub mod devmem;
pub mod discovery;
pub mod fault;
pub mod fbcon;
pub mod fw_cfg;
pub mod gdt;
pub mod heap;
pub mod interrupts;
pub mod keyboard;
pub mod kimage;
pub mod kstack;
pub mod logger;
pub mod memhp;
pub mod memory;
pub mod memview;
pub mod paging;
pub mod pmem;
pub mod qemu;
pub mod serial;
pub mod shell;
pub mod smp;
pub mod stress;
pub mod stress_smp;
pub mod testing;
pub mod tsc;

use bootloader_api::config::{BootloaderConfig, Mapping};

/// What the kernel asks of the bootloader: all of physical memory mapped at an
/// offset of its choosing (the glue reaches page tables, ACPI tables and struct
/// pages through it) and a kernel stack large enough for the stress tests.
pub const BOOTLOADER_CONFIG: BootloaderConfig = {
    let mut config = BootloaderConfig::new_default();
    config.mappings.physical_memory = Some(Mapping::Dynamic);
    config.kernel_stack_size = 256 * 1024;
    config
};

/// Start the other CPUs (Linux's `smp_init`) and tell the memory manager which
/// came up (its CPU hotplug callbacks: per-CPU list sizes, offline CPUs drained).
/// After `boot::init` (or `testing::init`), once.
pub fn start_secondary_cpus() {
    smp::init();
    memory::sync_online_cpus();
}

/// Bring up the CPU-level pieces every kernel (the real one and each test kernel)
/// needs before anything else: the boot CPU's GS base (per-CPU data), serial
/// console, log, GDT with the double-fault stack, IDT, and the TSC clock.
pub fn init_cpu() {
    // GS base first: smp::cpu_id() reads through it (0 on the boot CPU).
    smp::percpu::init_boot_cpu();
    serial::init();
    tsc::calibrate();
    logger::init();
    gdt::init();
    interrupts::init_idt();
    interrupts::init_pics();
}

/// Halt the CPU forever (interrupts stay disabled; nothing wakes us).
pub fn hlt_loop() -> ! {
    loop {
        x86_64::instructions::hlt();
    }
}

#[cfg(test)]
bootloader_api::entry_point!(test_kernel_main, config = &BOOTLOADER_CONFIG);

#[cfg(test)]
fn test_kernel_main(boot_info: &'static mut bootloader_api::BootInfo) -> ! {
    init_cpu();
    testing::init(boot_info);
    test_main();
    hlt_loop()
}

#[cfg(test)]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    testing::test_panic_handler(info)
}
