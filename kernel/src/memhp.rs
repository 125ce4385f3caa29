//! QEMU's ACPI memory-hotplug controller (I/O ports 0xa00-0xa17, QEMU's
//! docs/specs/acpi_mem_hotplug.rst), the hardware half of memory hotplug: it lists
//! the pc-dimm slots with their base, size and insert/remove events, clears the
//! events and ejects a slot (control byte 0x14: bit 1 clears the insert event, bit 2
//! the remove event that `device_del` raised, bit 3 ejects the selected slot, after
//! which QEMU unplugs the DIMM; bit 0 is reserved and written as 0). The policy
//! (never online a slot that overlaps persistent memory, add and online RAM, offline
//! and remove it before an eject) is in `memory::hotplug_scan` and in mm.
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
    /// A remove event is pending (`device_del` asked for the DIMM).
    pub removing: bool,
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
            removing: status & 4 != 0,
        });
    }
    out
}

/// Write the control byte of `slot`.
fn control(slot: u32, bits: u8) {
    select(slot);
    // SAFETY: offset 0x14 is the selected slot's control byte: bit 1 clears its insert
    // event, bit 2 its remove event, bit 3 ejects it; no memory of ours changes.
    unsafe { Port::<u8>::new(BASE + 0x14).write(bits) };
}

/// Clear the insert event of `slot`.
pub fn clear_insert(slot: u32) {
    control(slot, 1 << 1);
}

/// Clear the remove event of `slot` (the eject request was handled, or refused).
pub fn clear_remove(slot: u32) {
    control(slot, 1 << 2);
}

/// Eject `slot`: QEMU unplugs its DIMM. Only once the memory is removed.
pub fn eject(slot: u32) {
    control(slot, 1 << 3);
}
