//! Page tables: the glue that gives the hardware-free memory manager virtual
//! addresses. It owns the bootloader's level-4 table (through an
//! `OffsetPageTable`), knows how far the bootloader's physical-memory mapping
//! reaches, and carves new virtual windows out of unused level-4 slots: one for
//! the growing heap, one for device memory (persistent memory lies outside the
//! bootloader's mapping on an Intel CPU or under UEFI), mapped with 2 MiB pages
//! where alignment allows.
//!
//! A mapping that is removed or changed ([`remap_page`], [`unmap_pages`]) is
//! invalidated on every online CPU (`smp::flush_tlb_range`, by NMI) before the
//! call returns, outside the page-table lock; only then may the caller reuse the
//! old frame.
use spin::Mutex;
use x86_64::structures::paging::mapper::{MapToError, Translate};
use x86_64::structures::paging::{
    FrameAllocator, Mapper, OffsetPageTable, Page, PageTable, PageTableFlags, PhysFrame, Size2MiB,
    Size4KiB,
};
use x86_64::{PhysAddr, VirtAddr};

/// How many device ranges can be mapped.
const MAX_DEVICE_MAPS: usize = 64;

/// Bytes covered by one level-4 entry.
pub const L4_SPAN: u64 = 512 << 30;

/// Why a mapping failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapError {
    /// No frame for a page table.
    OutOfFrames,
    /// Part of the range is mapped already.
    AlreadyMapped,
    /// No free virtual window is large enough.
    NoVirtualSpace,
    /// Paging was not initialised.
    NotReady,
}

impl core::fmt::Display for MapError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            MapError::OutOfFrames => "out of page-table frames",
            MapError::AlreadyMapped => "range already mapped",
            MapError::NoVirtualSpace => "no free kernel virtual window",
            MapError::NotReady => "paging not initialised",
        })
    }
}

struct Paging {
    mapper: OffsetPageTable<'static>,
    phys_offset: u64,
    /// End of the bootloader's physical-memory mapping.
    phys_map_end: u64,
    /// Device mappings made so far: (phys start, len, virt start). A fixed array:
    /// nothing may allocate from the heap under the PAGING lock, since the heap
    /// grows by mapping pages.
    device_maps: [(u64, u64, u64); MAX_DEVICE_MAPS],
    device_map_count: usize,
    /// Next free address in the device window.
    device_next: u64,
    device_end: u64,
    /// Level-4 slots handed out as windows (still empty until something is mapped).
    claimed: [bool; 512],
}

static PAGING: Mutex<Option<Paging>> = Mutex::new(None);

/// A frame source for page tables: a closure returning one zeroed-or-not 4 KiB frame.
struct Frames<'a>(&'a mut dyn FnMut() -> Option<u64>);

// SAFETY: the closures handed to this module return frames that nobody else uses
// (taken from the early pool or allocated from the buddy allocator).
unsafe impl FrameAllocator<Size4KiB> for Frames<'_> {
    fn allocate_frame(&mut self) -> Option<PhysFrame<Size4KiB>> {
        (self.0)().map(|pa| PhysFrame::containing_address(PhysAddr::new(pa)))
    }
}

/// Take over the bootloader's page tables. `phys_map_end` is where its mapping of
/// physical memory stops (max of the highest region end and 4 GiB).
pub fn init(phys_offset: u64, phys_map_end: u64) {
    let (l4_frame, _) = x86_64::registers::control::Cr3::read();
    let l4_virt = phys_offset + l4_frame.start_address().as_u64();
    // SAFETY: the bootloader maps all physical memory at `phys_offset`, so the
    // active level-4 table is reachable there; we make the only reference to it,
    // kept behind the PAGING lock for the kernel's lifetime.
    let mapper = unsafe {
        let l4: &'static mut PageTable = &mut *(l4_virt as *mut PageTable);
        OffsetPageTable::new(l4, VirtAddr::new(phys_offset))
    };
    let mut paging = Paging {
        mapper,
        phys_offset,
        phys_map_end,
        device_maps: [(0, 0, 0); MAX_DEVICE_MAPS],
        device_map_count: 0,
        device_next: 0,
        device_end: 0,
        claimed: [false; 512],
    };
    // The device window: 4 free level-4 slots (2 TiB), highest free ones first.
    if let Some(start) = free_l4_window(&mut paging, 4) {
        paging.device_next = start;
        paging.device_end = start + 4 * L4_SPAN;
    }
    *PAGING.lock() = Some(paging);
}

/// Find `slots` consecutive unused, unclaimed level-4 entries in the upper half
/// and claim them; returns the window's start address.
fn free_l4_window(paging: &mut Paging, slots: usize) -> Option<u64> {
    let l4 = paging.mapper.level_4_table();
    let mut run = 0;
    for i in (256..511).rev() {
        if l4[i].is_unused() && !paging.claimed[i] {
            run += 1;
            if run == slots {
                paging.claimed[i..i + slots]
                    .iter_mut()
                    .for_each(|c| *c = true);
                // Sign-extended canonical address of slot i.
                return Some(0xffff_0000_0000_0000 | ((i as u64) << 39));
            }
        } else {
            run = 0;
        }
    }
    None
}

/// Reserve a fresh virtual window of `slots` level-4 entries (used by the heap).
pub fn reserve_window(slots: usize) -> Result<u64, MapError> {
    let mut guard = PAGING.lock();
    let paging = guard.as_mut().ok_or(MapError::NotReady)?;
    free_l4_window(paging, slots).ok_or(MapError::NoVirtualSpace)
}

/// The bootloader's offset (virtual = physical + offset).
pub fn phys_offset() -> u64 {
    PAGING.lock().as_ref().map_or(0, |p| p.phys_offset)
}

/// Virtual address of physical `pa` for `len` bytes: through the bootloader's
/// physical mapping, or through a device mapping made by [`map_device`].
pub fn phys_to_virt(pa: u64, len: u64) -> Option<u64> {
    let guard = PAGING.lock();
    let p = guard.as_ref()?;
    let end = pa.checked_add(len)?;
    if end <= p.phys_map_end {
        return Some(p.phys_offset + pa);
    }
    p.device_maps[..p.device_map_count]
        .iter()
        .find(|&&(start, l, _)| pa >= start && end <= start + l)
        .map(|&(start, _, virt)| virt + (pa - start))
}

/// Translate a kernel virtual address.
pub fn translate(virt: u64) -> Option<u64> {
    let guard = PAGING.lock();
    guard
        .as_ref()?
        .mapper
        .translate_addr(VirtAddr::new(virt))
        .map(|p| p.as_u64())
}

/// Map `len` bytes of physical memory at `pa` (page aligned) into the device
/// window, writable, no-execute; 2 MiB pages where both sides are aligned.
/// Ranges inside the bootloader's physical mapping are reused as they are.
/// Returns the virtual address of `pa`.
pub fn map_device(
    pa: u64,
    len: u64,
    frames: &mut dyn FnMut() -> Option<u64>,
) -> Result<u64, MapError> {
    let mut guard = PAGING.lock();
    let p = guard.as_mut().ok_or(MapError::NotReady)?;
    let end = pa.checked_add(len).ok_or(MapError::NoVirtualSpace)?;
    if end <= p.phys_map_end {
        return Ok(p.phys_offset + pa);
    }
    if let Some(&(start, _, virt)) = p.device_maps[..p.device_map_count]
        .iter()
        .find(|&&(start, l, _)| pa >= start && end <= start + l)
    {
        return Ok(virt + (pa - start));
    }
    // Keep the 2 MiB alignment of the physical address in the virtual one.
    let virt = align_up(p.device_next, 2 << 20) + (pa & ((2 << 20) - 1));
    let virt_end = virt.checked_add(len).ok_or(MapError::NoVirtualSpace)?;
    if virt_end > p.device_end || p.device_map_count == MAX_DEVICE_MAPS {
        return Err(MapError::NoVirtualSpace);
    }
    map_range(p, virt, pa, len, frames)?;
    p.device_next = virt_end;
    p.device_maps[p.device_map_count] = (pa, len, virt);
    p.device_map_count += 1;
    Ok(virt)
}

/// Map fresh 4 KiB pages at `virt` backed by `phys_frames` (the heap's growth).
pub fn map_pages(
    virt: u64,
    phys: &[u64],
    frames: &mut dyn FnMut() -> Option<u64>,
) -> Result<(), MapError> {
    let mut guard = PAGING.lock();
    let p = guard.as_mut().ok_or(MapError::NotReady)?;
    for (i, &pa) in phys.iter().enumerate() {
        map_range(p, virt + (i as u64) * 4096, pa, 4096, frames)?;
    }
    Ok(())
}

/// Why a mapping could not be changed or removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnmapError {
    /// Paging was not initialised.
    NotReady,
    /// The address is not mapped by a 4 KiB page.
    NotMapped,
}

impl core::fmt::Display for UnmapError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            UnmapError::NotReady => "paging not initialised",
            UnmapError::NotMapped => "not mapped by a 4 KiB page",
        })
    }
}

/// A frame source that has none: changing an existing 4 KiB entry needs no new table.
fn no_frames() -> Option<u64> {
    None
}

/// Point the 4 KiB page at `virt` to the frame at `pa` (same flags) and flush it
/// on every CPU. Returns the old frame, which the caller may reuse once this
/// returns.
pub fn remap_page(virt: u64, pa: u64) -> Result<u64, UnmapError> {
    let page = Page::<Size4KiB>::containing_address(VirtAddr::new(virt));
    let old = {
        let mut guard = PAGING.lock();
        let p = guard.as_mut().ok_or(UnmapError::NotReady)?;
        let flags = match p.mapper.translate(page.start_address()) {
            x86_64::structures::paging::mapper::TranslateResult::Mapped {
                flags,
                frame: x86_64::structures::paging::mapper::MappedFrame::Size4KiB(_),
                ..
            } => flags,
            _ => return Err(UnmapError::NotMapped),
        };
        let (old, flush) = p.mapper.unmap(page).map_err(|_| UnmapError::NotMapped)?;
        // Flushed everywhere below, once the lock is dropped.
        flush.ignore();
        let frame = PhysFrame::<Size4KiB>::containing_address(PhysAddr::new(pa));
        let mut none = no_frames;
        // SAFETY: the page was mapped a moment ago (its tables exist, so no frame
        // is needed) and the caller hands us `pa` for this page, as for map_pages.
        let res = unsafe { p.mapper.map_to(page, frame, flags, &mut Frames(&mut none)) };
        res.map_err(|_| UnmapError::NotMapped)?.ignore();
        old.start_address().as_u64()
    };
    crate::smp::flush_tlb_range(
        page.start_address().as_u64(),
        page.start_address().as_u64() + 4096,
    );
    Ok(old)
}

/// Unmap `count` 4 KiB pages from `virt` and flush them on every CPU. Stops at
/// the first page that is not mapped (the ones before stay unmapped and flushed).
pub fn unmap_pages(virt: u64, count: u64) -> Result<(), UnmapError> {
    let start = virt & !0xfff;
    let mut done = 0;
    let res = {
        let mut guard = PAGING.lock();
        let p = guard.as_mut().ok_or(UnmapError::NotReady)?;
        let mut res = Ok(());
        while done < count {
            let page = Page::<Size4KiB>::containing_address(VirtAddr::new(start + done * 4096));
            match p.mapper.unmap(page) {
                Ok((_, flush)) => flush.ignore(),
                Err(_) => {
                    res = Err(UnmapError::NotMapped);
                    break;
                }
            }
            done += 1;
        }
        res
    };
    if done > 0 {
        crate::smp::flush_tlb_range(start, start + done * 4096);
    }
    res
}

/// Remove the device mapping [`map_device`] made for exactly `[pa, pa + len)` and
/// flush it on every CPU before returning (memunmap_pages, remove_memory). A range
/// inside the bootloader's physical mapping was never mapped here: nothing to do.
/// The window's tail is reused when the mapping was the last one made; the emptied
/// page tables stay (a later mapping of the same window reuses them).
pub fn unmap_device(pa: u64, len: u64) -> Result<(), UnmapError> {
    let (virt, end) = {
        let mut guard = PAGING.lock();
        let p = guard.as_mut().ok_or(UnmapError::NotReady)?;
        let end = pa.checked_add(len).ok_or(UnmapError::NotMapped)?;
        if end <= p.phys_map_end {
            return Ok(());
        }
        let i = p.device_maps[..p.device_map_count]
            .iter()
            .position(|&(start, l, _)| start == pa && l == len)
            .ok_or(UnmapError::NotMapped)?;
        let virt = p.device_maps[i].2;
        let mut off = 0;
        while off < len {
            let (v, ph) = (virt + off, pa + off);
            let huge = v % (2 << 20) == 0 && ph % (2 << 20) == 0 && len - off >= (2 << 20);
            let res = if huge {
                let page = Page::<Size2MiB>::containing_address(VirtAddr::new(v));
                off += 2 << 20;
                p.mapper.unmap(page).map(|(_, f)| f.ignore())
            } else {
                let page = Page::<Size4KiB>::containing_address(VirtAddr::new(v));
                off += 4096;
                p.mapper.unmap(page).map(|(_, f)| f.ignore())
            };
            // map_device mapped every page of the range this way: a page not mapped
            // means the tables were changed behind its back.
            res.map_err(|_| UnmapError::NotMapped)?;
        }
        p.device_maps.copy_within(i + 1..p.device_map_count, i);
        p.device_map_count -= 1;
        if virt + len == p.device_next {
            p.device_next = virt;
        }
        (virt, virt + len)
    };
    // Flushed everywhere once the lock is dropped, before anyone may reuse the range.
    crate::smp::flush_tlb_range(virt, end);
    Ok(())
}

fn map_range(
    p: &mut Paging,
    virt: u64,
    pa: u64,
    len: u64,
    frames: &mut dyn FnMut() -> Option<u64>,
) -> Result<(), MapError> {
    let flags = PageTableFlags::PRESENT | PageTableFlags::WRITABLE | PageTableFlags::NO_EXECUTE;
    let mut alloc = Frames(frames);
    let mut off = 0;
    while off < len {
        let (v, ph) = (virt + off, pa + off);
        let huge = v % (2 << 20) == 0 && ph % (2 << 20) == 0 && len - off >= (2 << 20);
        if huge {
            let page = Page::<Size2MiB>::containing_address(VirtAddr::new(v));
            let frame = PhysFrame::<Size2MiB>::containing_address(PhysAddr::new(ph));
            // SAFETY: the virtual page lies in a window no one else maps, and the
            // frame is device memory or RAM handed to us for exactly this use.
            let res = unsafe { p.mapper.map_to(page, frame, flags, &mut alloc) };
            // No invlpg: map_to only fills an entry that was not present, and a CPU
            // caches no translation for a non-present entry (SDM 4.10.2.3); Linux
            // does not flush after a vmap either. (On QEMU's TCG an invlpg of a
            // kernel address can flush its whole software TLB: milliseconds.)
            res.map(|f| f.ignore()).map_err(map_err)?;
            off += 2 << 20;
        } else {
            let page = Page::<Size4KiB>::containing_address(VirtAddr::new(v));
            let frame = PhysFrame::<Size4KiB>::containing_address(PhysAddr::new(ph));
            // SAFETY: the 4 KiB page lies in a window no one else maps, and the frame
            // is device memory or RAM handed to us for exactly this use.
            let res = unsafe { p.mapper.map_to(page, frame, flags, &mut alloc) };
            // No invlpg, as above: the entry was not present.
            res.map(|f| f.ignore()).map_err(map_err)?;
            off += 4096;
        }
    }
    Ok(())
}

fn map_err<S: x86_64::structures::paging::PageSize>(e: MapToError<S>) -> MapError {
    match e {
        MapToError::FrameAllocationFailed => MapError::OutOfFrames,
        MapToError::ParentEntryHugePage | MapToError::PageAlreadyMapped(_) => {
            MapError::AlreadyMapped
        }
    }
}

fn align_up(v: u64, a: u64) -> u64 {
    (v + a - 1) & !(a - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A device range mapped by map_device (2 MiB pages and a 4 KiB tail) is gone after
    /// unmap_device, a second unmap is refused, and the window's tail is reused.
    #[test_case]
    fn unmap_device_removes_the_mapping() {
        // Far above any RAM: never inside the bootloader's physical mapping.
        let pa = 1u64 << 45;
        let len = (4 << 20) + 4096;
        let mut frames: alloc::vec::Vec<u64> = crate::memory::with(|m| {
            (0..8)
                .filter_map(|_| m.alloc_pages(mm::Gfp::KERNEL | mm::Gfp::ZERO, 0))
                .map(mm::pfn_phys)
                .collect()
        })
        .unwrap_or_default();
        let virt = map_device(pa, len, &mut || frames.pop()).expect("map_device");
        assert_eq!(translate(virt), Some(pa));
        assert_eq!(translate(virt + (4 << 20)), Some(pa + (4 << 20)));
        assert_eq!(phys_to_virt(pa, len), Some(virt));
        assert_eq!(unmap_device(pa, len), Ok(()));
        assert_eq!(translate(virt), None);
        assert_eq!(translate(virt + (4 << 20)), None);
        assert_eq!(phys_to_virt(pa, len), None);
        assert_eq!(unmap_device(pa, len), Err(UnmapError::NotMapped));
        let again = map_device(pa, len, &mut || frames.pop()).expect("map_device again");
        assert_eq!(again, virt, "the window's tail is reused");
        assert_eq!(unmap_device(pa, len), Ok(()));
        crate::memory::with(|m| {
            for f in frames {
                let _ = m.free_pages(mm::pfn_down(f), 0);
            }
        });
    }
}
