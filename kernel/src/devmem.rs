//! The shell's `devmem`: read or write physical memory under the /dev/mem policy
//! of the firmware crate (decided by the iomem tree, not by max_pfn: the first
//! MiB and reserved/ACPI ranges yes; System RAM, persistent memory and holes no).
use alloc::string::String;
use core::fmt::Write;

use crate::{boot, paging};

/// `devmem ADDR [WIDTH [VALUE]]` with `width` in bytes.
pub fn command(out: &mut String, addr: u64, width: u64, value: Option<u64>) {
    let verdict = match boot::DISCOVERY.lock().as_ref() {
        Some(d) => firmware::iomem::devmem_is_allowed(&d.iomem, addr, width),
        None => {
            out.push_str("devmem: no memory map yet\n");
            return;
        }
    };
    if let Err(why) = verdict {
        let _ = writeln!(out, "devmem: {addr:#x}: access refused: {why}");
        return;
    }
    let Some(virt) = paging::phys_to_virt(addr, width) else {
        let _ = writeln!(out, "devmem: {addr:#x}: not mapped by the kernel");
        return;
    };
    // SAFETY: the policy allowed [addr, addr+width): firmware-reserved, ACPI or
    // low-memory bytes, never RAM the kernel uses or persistent memory; the range
    // is inside the kernel's physical mapping, naturally aligned (parser checks).
    let read = |virt: u64| unsafe {
        match width {
            1 => u64::from(core::ptr::read_volatile(virt as *const u8)),
            2 => u64::from(core::ptr::read_volatile(virt as *const u16)),
            4 => u64::from(core::ptr::read_volatile(virt as *const u32)),
            _ => core::ptr::read_volatile(virt as *const u64),
        }
    };
    let digits = (width * 2) as usize;
    match value {
        None => {
            let v = read(virt);
            let _ = writeln!(out, "Value at address {addr:#x}: {v:#0w$x}", w = digits + 2);
        }
        Some(v) => {
            // SAFETY: the policy allowed [addr, addr+width) (firmware-reserved, ACPI
            // or low-memory bytes, never RAM the kernel uses or persistent memory),
            // inside the kernel's physical mapping and naturally aligned; the user
            // asked for this write.
            unsafe {
                match width {
                    1 => core::ptr::write_volatile(virt as *mut u8, v as u8),
                    2 => core::ptr::write_volatile(virt as *mut u16, v as u16),
                    4 => core::ptr::write_volatile(virt as *mut u32, v as u32),
                    _ => core::ptr::write_volatile(virt as *mut u64, v),
                }
            }
            let back = read(virt);
            let _ = writeln!(
                out,
                "Written {v:#0w$x}; readback {back:#0w$x}",
                w = digits + 2
            );
        }
    }
}
