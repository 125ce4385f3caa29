//! The boot sequence, in the order data flows: bootloader memory regions and
//! firmware tables → firmware parsing → memory manager → kernel services.
use alloc::string::String;
use bootloader_api::BootInfo;
use bootloader_api::info::MemoryRegionKind;
use spin::Once;

use crate::{heap, paging};

/// Size of the early frame pool the heap uses before the buddy allocator exists.
const EARLY_POOL: u64 = 2 << 20;

static CMDLINE: Once<String> = Once::new();

/// The kernel command line (read from fw_cfg at boot).
pub fn cmdline() -> String {
    CMDLINE.get().cloned().unwrap_or_default()
}

/// Bring up memory: paging, the heap, then discovery and the memory manager.
pub fn init(boot_info: &'static mut BootInfo) {
    let Some(phys_offset) = boot_info.physical_memory_offset.into_option() else {
        panic!("bootloader did not map physical memory (BOOTLOADER_CONFIG asks for it)");
    };
    let regions = &boot_info.memory_regions;
    let highest = regions.iter().map(|r| r.end).max().unwrap_or(0);
    paging::init(phys_offset, highest.max(1 << 32));

    // The early pool: the first 2 MiB of the largest usable region above 1 MiB.
    let pool = regions
        .iter()
        .filter(|r| r.kind == MemoryRegionKind::Usable && r.start >= 1 << 20)
        .map(|r| ((r.start + 4095) & !4095, r.end & !4095))
        .filter(|(s, e)| e > s && e - s >= EARLY_POOL)
        .max_by_key(|(s, e)| e - s);
    let Some((pool_start, _)) = pool else {
        panic!("no usable RAM region of 2 MiB above 1 MiB for the early heap");
    };
    if let Err(e) = heap::init(pool_start, pool_start + EARLY_POOL) {
        panic!("heap set-up failed: {e}");
    }
    CMDLINE.call_once(crate::fw_cfg::cmdline);
}
