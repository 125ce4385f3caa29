//! The pmem driver: each persistent range registered as ZONE_DEVICE is a small
//! block device, read and written at byte offsets through the kernel's mapping of
//! the range. Writes are made durable the way Linux's pmem driver does on x86
//! without eADR: every written cache line is flushed (`clflush`), then a store
//! fence orders the flushes. With altmap, the first pages hold the range's struct
//! pages, so the device's data area starts after them.
use alloc::vec::Vec;
use spin::Mutex;

use crate::paging;

/// One pmem device.
#[derive(Debug, Clone, Copy)]
pub struct PmemDevice {
    /// Physical range start.
    pub start: u64,
    /// Bytes of data (after the altmap memmap, if any).
    pub size: u64,
    /// Bytes at the start used by the device's own memmap.
    pub reserved: u64,
    /// Kernel virtual address of the first data byte.
    virt: u64,
    /// Legacy (E820 type 12 / `memmap=`) or NFIT/type 7.
    pub legacy: bool,
    /// The online node nearest to the range (Linux's region `numa_node`).
    pub numa_node: usize,
    /// The range's own node, whose ZONE_DEVICE holds its pages (`target_node`).
    pub target_node: usize,
}

/// Where a device sits in the NUMA topology.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PmemNodes {
    /// Linux's region `numa_node`.
    pub numa_node: usize,
    /// Linux's region `target_node`.
    pub target_node: usize,
}

/// Why a pmem access failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PmemError {
    /// No device with that number.
    NoDevice(u8),
    /// Offset + length beyond the device.
    OutOfRange { size: u64 },
}

impl core::fmt::Display for PmemError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PmemError::NoDevice(n) => write!(f, "no pmem device pmem{n} (see 'pmem list')"),
            PmemError::OutOfRange { size } => {
                write!(f, "access beyond the end of the device ({size} bytes)")
            }
        }
    }
}

static DEVICES: Mutex<Vec<PmemDevice>> = Mutex::new(Vec::new());

/// How many times a device page of any pmem pagemap went idle again.
pub static PAGE_FREE_CALLS: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// The pagemaps' `page_free` callback (Linux's `dev_pagemap_ops.page_free`): a
/// device page's last user dropped it. The page stays the device's (it never
/// reaches the buddy allocator); the driver only counts it.
pub fn page_free(_pagemap: usize, _pfn: u64) {
    PAGE_FREE_CALLS.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
}

/// Register a device for a persistent range `[start, start+len)` whose first
/// `reserved` bytes hold its memmap. The range must be mapped already (memremap).
pub fn register(
    start: u64,
    len: u64,
    reserved: u64,
    legacy: bool,
    nodes: PmemNodes,
) -> Option<usize> {
    let virt = paging::phys_to_virt(start, len)?;
    let mut devs = DEVICES.lock();
    devs.push(PmemDevice {
        start,
        size: len - reserved,
        reserved,
        virt: virt + reserved,
        legacy,
        numa_node: nodes.numa_node,
        target_node: nodes.target_node,
    });
    Some(devs.len() - 1)
}

/// The devices.
pub fn devices() -> Vec<PmemDevice> {
    DEVICES.lock().clone()
}

fn device(dev: u8, offset: u64, len: u64) -> Result<PmemDevice, PmemError> {
    let d = *DEVICES
        .lock()
        .get(usize::from(dev))
        .ok_or(PmemError::NoDevice(dev))?;
    match offset.checked_add(len) {
        Some(end) if end <= d.size => Ok(d),
        _ => Err(PmemError::OutOfRange { size: d.size }),
    }
}

/// Read `buf.len()` bytes at `offset`.
pub fn read(dev: u8, offset: u64, buf: &mut [u8]) -> Result<(), PmemError> {
    let d = device(dev, offset, buf.len() as u64)?;
    // SAFETY: [virt+offset, +len) lies inside the device's mapping (checked above),
    // which maps device memory for ever; nothing else in the kernel uses the data area.
    let src = unsafe { core::slice::from_raw_parts((d.virt + offset) as *const u8, buf.len()) };
    buf.copy_from_slice(src);
    Ok(())
}

/// Write `data` at `offset`, then flush the written cache lines and fence.
pub fn write(dev: u8, offset: u64, data: &[u8]) -> Result<(), PmemError> {
    let d = device(dev, offset, data.len() as u64)?;
    let dst = (d.virt + offset) as *mut u8;
    // SAFETY: [virt+offset, +len) lies inside the device's mapping (checked by
    // `device`), which maps device memory for ever; the data area belongs to this
    // driver alone, and `data` is a separate (RAM) buffer, so they cannot overlap.
    unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), dst, data.len()) };
    let first = (d.virt + offset) & !63;
    let last = d.virt + offset + data.len() as u64;
    let mut line = first;
    while line < last {
        // SAFETY: `line` is inside the device's mapping (the written bytes rounded
        // down to a cache line); clflush of a mapped address only writes the line
        // back.
        unsafe { core::arch::x86_64::_mm_clflush(line as *const u8) };
        line += 64;
    }
    // SAFETY: sfence only orders the earlier stores and flushes; every x86_64 CPU
    // has the instruction.
    unsafe { core::arch::x86_64::_mm_sfence() };
    Ok(())
}
