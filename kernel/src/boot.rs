//! The boot sequence, in the order data flows: bootloader memory regions and
//! firmware tables → firmware parsing → memory manager → kernel services.
use alloc::string::String;
use bootloader_api::BootInfo;
use spin::Once;

use crate::{heap, paging};

static CMDLINE: Once<String> = Once::new();

/// The kernel command line (read from fw_cfg at boot).
pub fn cmdline() -> String {
    CMDLINE.get().cloned().unwrap_or_default()
}

/// Bring up memory: paging, the heap, then discovery and the memory manager. The
/// other CPUs wait for `start_secondary_cpus` (test kernels).
pub fn init(boot_info: &'static mut BootInfo) {
    init_with(boot_info, false);
}

/// [`init`], with the other CPUs started as soon as memblock exists, while the boot
/// CPU builds the memory manager (the real kernel; `start_secondary_cpus` reports
/// them afterwards).
pub fn init_smp(boot_info: &'static mut BootInfo) {
    init_with(boot_info, true);
}

fn init_with(boot_info: &'static mut BootInfo, start_cpus: bool) {
    let Some(phys_offset) = boot_info.physical_memory_offset.into_option() else {
        panic!("bootloader did not map physical memory (BOOTLOADER_CONFIG asks for it)");
    };
    let regions = &boot_info.memory_regions;
    let highest = regions.iter().map(|r| r.end).max().unwrap_or(0);
    paging::init(phys_offset, highest.max(1 << 32));

    if let Err(e) = heap::init() {
        panic!("heap set-up failed: {e}");
    }
    let cmdline = CMDLINE.call_once(crate::fw_cfg::cmdline);
    log::info!("Command line: {cmdline}");
    crate::fbcon::start(cmdline);
    crate::keyboard::init();
    let rsdp = boot_info.rsdp_addr.into_option();
    let mut found = crate::discovery::discover(&boot_info.memory_regions, rsdp, cmdline);
    let mb = crate::memory::memblock_init(&mut found);
    if start_cpus {
        crate::smp::start(&found);
    }
    crate::memory::init(&mut found, mb);
    *DISCOVERY.lock() = Some(found);
}

/// What discovery found (the shell's e820 and iomem views read it).
pub static DISCOVERY: spin::Mutex<Option<crate::discovery::Discovery>> = spin::Mutex::new(None);

/// After the memory manager: online the DIMMs that were cold-plugged.
pub fn late_init() {
    let mut out = String::new();
    if !crate::memhp::slots().is_empty() {
        crate::memory::hotplug_scan(&mut out);
        for line in out.lines() {
            log::info!("{line}");
        }
    }
}
