//! The pmem driver: each persistent range registered as ZONE_DEVICE is a small
//! block device, read and written at byte offsets through the kernel's mapping of
//! the range. Writes are made durable the way Linux's pmem driver does on x86
//! without eADR: every written cache line is flushed (`clflush`), then a store
//! fence orders the flushes. With altmap, the first pages hold the range's struct
//! pages, so the device's data area starts after them.
//!
//! A device can be disabled and enabled again (Linux: `ndctl disable-namespace`):
//! [`disable`] tears its pagemap down with `memunmap_pages`, which waits while
//! pages are pinned ([`pin`], a `get_page` as `get_user_pages` takes); the
//! [`unpin`] that releases the last pinned page completes it. [`enable`] maps the
//! range again with `memremap_pages`; the data area was never touched, so the data
//! is intact. Lock order: the memory manager, then the device list.
use alloc::vec::Vec;
use mm::{Machine, MemremapOptions, Memunmap, MemunmapError, PageRefError};
use spin::Mutex;

use crate::memory::KernelPlatform;
use crate::{memory, paging};

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
    /// Enabled, being disabled, or disabled.
    pub state: PmemState,
}

/// Whether a device's pagemap is mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PmemState {
    /// Mapped: reads, writes and pins work.
    Enabled,
    /// memunmap_pages waits for pinned pages (no new pin, no I/O).
    Disabling,
    /// Unmapped: no pagemap, no struct pages, no mapping.
    Disabled,
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
    /// The device is not enabled.
    NotEnabled(u8, PmemState),
    /// The device is enabled already.
    Enabled(u8),
    /// `unpin` of a page `pin` did not pin.
    NotPinned(u8, u64),
    /// The memory manager refused a reference.
    PageRef(u8, PageRefError),
    /// memunmap_pages refused.
    Memunmap(u8, MemunmapError),
    /// memremap_pages refused (the reason is in the log).
    Memremap(u8),
    /// No pagemap for the device (the memory manager is not up).
    NoPagemap(u8),
}

impl core::fmt::Display for PmemError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PmemError::NoDevice(n) => write!(f, "no pmem device pmem{n} (see 'pmem list')"),
            PmemError::OutOfRange { size } => {
                write!(f, "access beyond the end of the device ({size} bytes)")
            }
            PmemError::NotEnabled(n, PmemState::Disabling) => write!(
                f,
                "pmem{n} is being disabled (waiting for its pinned pages)"
            ),
            PmemError::NotEnabled(n, _) => {
                write!(f, "pmem{n} is disabled (see 'pmem enable')")
            }
            PmemError::Enabled(n) => write!(f, "pmem{n} is enabled already"),
            PmemError::NotPinned(n, offset) => {
                write!(f, "pmem{n}: the page at offset {offset:#x} is not pinned")
            }
            PmemError::PageRef(n, e) => write!(f, "pmem{n}: {e}"),
            PmemError::Memunmap(n, e) => write!(f, "pmem{n}: {e}"),
            PmemError::Memremap(n) => write!(f, "pmem{n}: memremap refused (see dmesg)"),
            PmemError::NoPagemap(n) => write!(f, "pmem{n}: no pagemap"),
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
        state: PmemState::Enabled,
    });
    Some(devs.len() - 1)
}

/// The devices.
pub fn devices() -> Vec<PmemDevice> {
    DEVICES.lock().clone()
}

/// The device, in whatever state.
fn lookup(dev: u8) -> Result<PmemDevice, PmemError> {
    DEVICES
        .lock()
        .get(usize::from(dev))
        .copied()
        .ok_or(PmemError::NoDevice(dev))
}

fn device(dev: u8, offset: u64, len: u64) -> Result<PmemDevice, PmemError> {
    let d = lookup(dev)?;
    if d.state != PmemState::Enabled {
        return Err(PmemError::NotEnabled(dev, d.state));
    }
    match offset.checked_add(len) {
        Some(end) if end <= d.size => Ok(d),
        _ => Err(PmemError::OutOfRange { size: d.size }),
    }
}

/// Read `buf.len()` bytes at `offset`.
pub fn read(dev: u8, offset: u64, buf: &mut [u8]) -> Result<(), PmemError> {
    let d = device(dev, offset, buf.len() as u64)?;
    // [virt+offset, +len) lies inside the device's mapping (checked above), which
    // stays while the device is enabled: disable unmaps it only under the memory
    // manager's exclusive lock, which a read never overlaps (the shell runs one
    // command at a time, and only the shell disables).
    // SAFETY: so it is mapped; nothing else in the kernel uses the data area.
    let src = unsafe { core::slice::from_raw_parts((d.virt + offset) as *const u8, buf.len()) };
    buf.copy_from_slice(src);
    Ok(())
}

/// Write `data` at `offset`, then flush the written cache lines and fence.
pub fn write(dev: u8, offset: u64, data: &[u8]) -> Result<(), PmemError> {
    let d = device(dev, offset, data.len() as u64)?;
    let dst = (d.virt + offset) as *mut u8;
    // [virt+offset, +len) lies inside the device's mapping (checked by `device`),
    // mapped while the device is enabled (see `read`); the data area belongs to this
    // driver alone, and `data` is a separate (RAM) buffer, so they cannot overlap.
    // SAFETY: so the copy writes only mapped bytes nobody else uses.
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

/// Pages pinned through [`pin`]: `(device, pfn, pins)`.
static PINS: Mutex<Vec<(u8, u64, u32)>> = Mutex::new(Vec::new());

/// What a pin or an unpin did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinReport {
    /// The page.
    pub pfn: u64,
    /// Its reference count now.
    pub refcount: u32,
    /// Pins of this page through the driver now.
    pub pins: u32,
    /// The unpin released the last pinned page of a device being disabled, and the
    /// teardown completed: the device is disabled.
    pub disabled: bool,
}

/// What `disable` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisableReport {
    /// Disabled at once.
    Disabled,
    /// Waits for this many pinned pages.
    Waiting(u64),
}

/// The device (any state) and its page holding byte `offset` of the data area.
fn device_page(dev: u8, offset: u64) -> Result<(PmemDevice, u64), PmemError> {
    let d = lookup(dev)?;
    if offset >= d.size {
        return Err(PmemError::OutOfRange { size: d.size });
    }
    Ok((d, mm::pfn_down(d.start + d.reserved + offset)))
}

/// The index of the device's pagemap.
fn pagemap_index(m: &Machine<KernelPlatform>, d: &PmemDevice) -> Option<usize> {
    m.pagemaps()
        .iter()
        .position(|p| p.start_pfn() == mm::pfn_down(d.start))
}

fn set_state(dev: u8, state: PmemState) {
    if let Some(d) = DEVICES.lock().get_mut(usize::from(dev)) {
        d.state = state;
    }
}

/// `pmem pin`: take a reference on the page holding byte `offset` (get_page).
pub fn pin(dev: u8, offset: u64) -> Result<PinReport, PmemError> {
    let (d, pfn) = device_page(dev, offset)?;
    if d.state == PmemState::Disabled {
        return Err(PmemError::NotEnabled(dev, d.state));
    }
    let mut guard = memory::lock();
    let m = guard.as_mut().ok_or(PmemError::NoPagemap(dev))?;
    let refcount = m.get_page(pfn).map_err(|e| match e {
        PageRefError::PagemapDying => PmemError::NotEnabled(dev, PmemState::Disabling),
        e => PmemError::PageRef(dev, e),
    })?;
    let mut pins = PINS.lock();
    let pins_now = match pins.iter_mut().find(|p| p.0 == dev && p.1 == pfn) {
        Some(p) => {
            p.2 += 1;
            p.2
        }
        None => {
            pins.push((dev, pfn, 1));
            1
        }
    };
    Ok(PinReport {
        pfn,
        refcount,
        pins: pins_now,
        disabled: false,
    })
}

/// `pmem unpin`: drop a reference [`pin`] took; the last pinned page of a device
/// being disabled completes its teardown.
pub fn unpin(dev: u8, offset: u64) -> Result<PinReport, PmemError> {
    let (d, pfn) = device_page(dev, offset)?;
    let mut guard = memory::lock();
    let m = guard.as_mut().ok_or(PmemError::NoPagemap(dev))?;
    let mut pins = PINS.lock();
    let i = pins
        .iter()
        .position(|p| p.0 == dev && p.1 == pfn)
        .ok_or(PmemError::NotPinned(dev, offset))?;
    let refcount = m.put_page(pfn).map_err(|e| PmemError::PageRef(dev, e))?;
    pins[i].2 -= 1;
    let pins_now = pins[i].2;
    if pins_now == 0 {
        pins.swap_remove(i);
    }
    drop(pins);
    let mut disabled = false;
    if let Some(index) = pagemap_index(m, &d)
        && m.pagemap_released(index)
    {
        // The percpu_ref release: wake the waiting teardown (here: run it).
        m.memunmap_complete(index)
            .map_err(|e| PmemError::Memunmap(dev, e))?;
        set_state(dev, PmemState::Disabled);
        disabled = true;
    }
    Ok(PinReport {
        pfn,
        refcount,
        pins: pins_now,
        disabled,
    })
}

/// `pmem disable`: memunmap_pages, at once or once the pinned pages are released.
pub fn disable(dev: u8) -> Result<DisableReport, PmemError> {
    let d = lookup(dev)?;
    if d.state != PmemState::Enabled {
        return Err(PmemError::NotEnabled(dev, d.state));
    }
    let mut guard = memory::lock();
    let m = guard.as_mut().ok_or(PmemError::NoPagemap(dev))?;
    let index = pagemap_index(m, &d).ok_or(PmemError::NoPagemap(dev))?;
    match m
        .memunmap_pages(index)
        .map_err(|e| PmemError::Memunmap(dev, e))?
    {
        Memunmap::Done => {
            set_state(dev, PmemState::Disabled);
            Ok(DisableReport::Disabled)
        }
        Memunmap::Waiting { pinned } => {
            set_state(dev, PmemState::Disabling);
            Ok(DisableReport::Waiting(pinned))
        }
    }
}

/// `pmem enable`: memremap_pages again for a disabled device (same node, same
/// memmap placement); its data was left as it was.
pub fn enable(dev: u8) -> Result<(), PmemError> {
    let d = lookup(dev)?;
    match d.state {
        PmemState::Enabled => return Err(PmemError::Enabled(dev)),
        PmemState::Disabling => return Err(PmemError::NotEnabled(dev, d.state)),
        PmemState::Disabled => {}
    }
    let len = d.reserved + d.size;
    let opts = MemremapOptions::new(len)
        .altmap(d.reserved > 0)
        .page_free(page_free)
        .node(d.target_node);
    let mut guard = memory::lock();
    let m = guard.as_mut().ok_or(PmemError::NoPagemap(dev))?;
    if !memory::memremap(m, d.start, len, opts) {
        return Err(PmemError::Memremap(dev));
    }
    let index = pagemap_index(m, &d).ok_or(PmemError::NoPagemap(dev))?;
    let reserved = mm::pfn_phys(m.pagemaps()[index].altmap_pages());
    let virt = paging::phys_to_virt(d.start, len);
    match (virt, reserved == d.reserved) {
        (Some(virt), true) => {
            if let Some(dd) = DEVICES.lock().get_mut(usize::from(dev)) {
                dd.virt = virt + reserved;
                dd.state = PmemState::Enabled;
            }
            Ok(())
        }
        _ => {
            // Not the device it was (no mapping, or its memmap would overlap the
            // data): take the pagemap down again, the device stays disabled.
            let _ = m.memunmap_pages(index);
            Err(PmemError::Memremap(dev))
        }
    }
}

/// Pins of a device's pages through [`pin`]: `(pages, pins)`.
pub fn pinned(dev: u8) -> (usize, u32) {
    let pins = PINS.lock();
    let mine = pins.iter().filter(|p| p.0 == dev);
    (mine.clone().count(), mine.map(|p| p.2).sum())
}
