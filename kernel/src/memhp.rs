//! QEMU's ACPI memory-hotplug controller (I/O ports 0xa00-0xa17), the hardware
//! half of memory hotplug: it lists the pc-dimm slots with their base, size and
//! insert/remove events. The policy (never online a slot that overlaps persistent
//! memory, add and online RAM) is in `hotplug_scan` below and in mm.
use alloc::vec::Vec;
use x86_64::instructions::port::Port;

const BASE: u16 = 0xa00;
/// Slots probed (QEMU's limit is 256).
const MAX_SLOTS: u32 = 256;

/// One occupied slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// Slot number.
    pub index: u32,
    /// Physical base.
    pub base: u64,
    /// Size in bytes.
    pub size: u64,
    /// Proximity domain.
    pub node: u32,
    /// Device enabled (a DIMM is plugged).
    pub enabled: bool,
    /// An insert event is pending.
    pub inserting: bool,
}

fn read32(off: u16) -> u32 {
    // SAFETY: 0xa00-0xa17 are the memory-hotplug controller's registers on QEMU's
    // pc machine; reads have no side effects. Elsewhere the ports are unassigned.
    unsafe { Port::<u32>::new(BASE + off).read() }
}

fn select(slot: u32) {
    // SAFETY: writing offset 0 selects the slot whose registers the reads show.
    unsafe { Port::<u32>::new(BASE).write(slot) };
}

/// Read every occupied slot. Empty when the machine has no controller.
pub fn slots() -> Vec<Slot> {
    let mut out = Vec::new();
    for index in 0..MAX_SLOTS {
        select(index);
        let status = read32(0x14) & 0xff;
        let base = u64::from(read32(0x0)) | (u64::from(read32(0x4)) << 32);
        let size = u64::from(read32(0x8)) | (u64::from(read32(0xc)) << 32);
        if status == 0xff && base == u64::MAX {
            break; // no controller: unassigned ports read all ones
        }
        if status & 1 == 0 || size == 0 {
            continue;
        }
        out.push(Slot {
            index,
            base,
            size,
            node: read32(0x10),
            enabled: true,
            inserting: status & 2 != 0,
        });
    }
    out
}

/// Clear the insert event of `slot`.
pub fn clear_insert(slot: u32) {
    select(slot);
    // SAFETY: writing bit 1 to offset 0x14 clears the selected slot's insert event.
    unsafe { Port::<u8>::new(BASE + 0x14).write(1 << 1) };
}
