//! The kernel heap: `linked_list_allocator` over a virtual window of its own that
//! grows on demand. When an allocation does not fit, fresh 4 KiB frames are mapped
//! at the top of the heap and the heap is extended, so a large `Vec` needs no big
//! static array.
//!
//! Frames come from the early pool (a page-aligned array in .bss, so RAM the
//! bootloader loaded with the kernel and that no firmware map or `memmap=` can
//! claim) until it is used up, then from the buddy allocator (once
//! [`set_page_source`] gave it). Growth must never wait for the memory
//! manager's lock (the memory manager itself allocates at set-up time, under that
//! lock), so the page source only *tries* the lock, and a small reserve of frames
//! covers growth that happens while the lock is held.
use alloc::vec::Vec;
use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::ptr::{self, NonNull};
use linked_list_allocator::Heap;
use spin::Mutex;

use crate::paging;

/// Bytes mapped at start-up and the smallest growth step.
const GROW_MIN: usize = 64 * 1024;
/// Frames kept back for growth while the memory manager is busy.
const RESERVE_FRAMES: usize = 32;

struct HeapState {
    heap: Heap,
    /// First address of the heap window; 0 until [`init`].
    start: u64,
    /// End of what is mapped.
    mapped_end: u64,
    /// End of the virtual window.
    window_end: u64,
}

/// Size of the early pool.
const EARLY_POOL: usize = 2 << 20;

#[repr(C, align(4096))]
struct EarlyPool(UnsafeCell<[u8; EARLY_POOL]>);

// SAFETY: no Rust code reads or writes the pool through this static: only its
// address is used, to find its frames, which are then used only through the heap
// window (under the heap's lock).
unsafe impl Sync for EarlyPool {}

/// The early pool. Never touched through this name: its frames are mapped into the
/// heap window (found with a page-table walk) and used only there. The
/// `UnsafeCell` keeps it in writable .bss without a `static mut`.
static EARLY_POOL_MEM: EarlyPool = EarlyPool(UnsafeCell::new([0; EARLY_POOL]));

const EARLY_FRAMES: usize = EARLY_POOL / 4096;

/// Where frames come from.
struct FrameSources {
    /// Physical addresses of the early pool's frames (found once, at init: the
    /// page-table walk cannot run while the paging lock is held for a mapping).
    early: [u64; EARLY_FRAMES],
    /// Early pool: frames handed out.
    early_next: usize,
    /// Early pool: frames found.
    early_end: usize,
    /// The buddy allocator, once it exists: one 4 KiB frame, or None (busy or empty).
    page_source: Option<fn() -> Option<u64>>,
    /// Gives a frame of `page_source` back (only [`take_frames`] does, undoing a
    /// request it could not fill).
    page_free: Option<fn(u64)>,
    reserve: [u64; RESERVE_FRAMES],
    reserve_len: usize,
}

impl FrameSources {
    fn take(&mut self) -> Option<u64> {
        self.take_fresh().or_else(|| {
            (self.reserve_len > 0).then(|| {
                self.reserve_len -= 1;
                self.reserve[self.reserve_len]
            })
        })
    }

    /// A frame from the early pool or the page source, not the reserve.
    fn take_fresh(&mut self) -> Option<u64> {
        // The early pool first, even once the buddy allocator is up: its frames are
        // the kernel's own (.bss, loaded and zeroed by the bootloader), so they cost
        // no free memory and are already backed by the host; a fresh buddy frame is
        // often the first touch of a cold 2 MiB of guest RAM (5-6 ms under QEMU on a
        // host that hands freed memory back to its hypervisor).
        if self.early_next < self.early_end {
            self.early_next += 1;
            return Some(self.early[self.early_next - 1]);
        }
        self.page_source.and_then(|src| src())
    }

    fn refill(&mut self) {
        let Some(src) = self.page_source else { return };
        while self.reserve_len < RESERVE_FRAMES {
            match src() {
                Some(pa) => {
                    self.reserve[self.reserve_len] = pa;
                    self.reserve_len += 1;
                }
                None => break,
            }
        }
    }
}

static FRAMES: Mutex<FrameSources> = Mutex::new(FrameSources {
    early: [0; EARLY_FRAMES],
    early_next: 0,
    early_end: 0,
    page_source: None,
    page_free: None,
    reserve: [0; RESERVE_FRAMES],
    reserve_len: 0,
});

/// The global allocator.
pub struct KernelHeap(Mutex<HeapState>);

/// The kernel's global allocator.
#[global_allocator]
pub static HEAP: KernelHeap = KernelHeap(Mutex::new(HeapState {
    heap: Heap::empty(),
    start: 0,
    mapped_end: 0,
    window_end: 0,
}));

/// Set up the heap with frames from the early pool. Needs paging.
pub fn init() -> Result<(), paging::MapError> {
    {
        let mut f = FRAMES.lock();
        let base = EARLY_POOL_MEM.0.get() as u64;
        for i in 0..EARLY_FRAMES {
            if let Some(pa) = paging::translate(base + (i * 4096) as u64) {
                let n = f.early_end;
                f.early[n] = pa;
                f.early_end += 1;
            }
        }
    }
    let start = paging::reserve_window(1)?;
    let mut st = HEAP.0.lock();
    st.start = start;
    st.mapped_end = start;
    st.window_end = start + paging::L4_SPAN;
    map_more(&mut st, GROW_MIN)?;
    // SAFETY: [start, start + GROW_MIN) was just mapped to frames owned by the heap
    // and is not used by anything else.
    unsafe { st.heap.init(start as *mut u8, GROW_MIN) };
    Ok(())
}

/// Frames of the early pool not handed out yet.
pub fn early_pool_free_frames() -> usize {
    let f = FRAMES.lock();
    f.early_end - f.early_next
}

/// Bytes of the early pool used so far.
pub fn early_pool_used() -> usize {
    FRAMES.lock().early_next * 4096
}

/// Take frames from `source` (the buddy allocator) once the early pool is used
/// up, and keep a reserve from it for growth while the memory manager is busy;
/// `free` gives one of its frames back.
pub fn set_page_source(source: fn() -> Option<u64>, free: fn(u64)) {
    let mut f = FRAMES.lock();
    f.page_source = Some(source);
    f.page_free = Some(free);
    f.refill();
}

/// `n` frames for a kernel mapping outside the heap window (a CPU's stack, see
/// kstack.rs), from the heap's sources: the early pool first, then the page
/// source; never the reserve, which is for the heap's own growth. All or nothing:
/// when fewer are to be had, the ones taken go back and the answer is None.
pub fn take_frames(n: usize) -> Option<Vec<u64>> {
    // Allocated before the frame lock is taken: the heap may grow for it.
    let mut out = Vec::new();
    out.try_reserve_exact(n).ok()?;
    let mut f = FRAMES.lock();
    let early_before = f.early_next;
    while out.len() < n {
        let Some(pa) = f.take_fresh() else { break };
        out.push(pa);
    }
    if out.len() == n {
        f.refill();
        return Some(out);
    }
    // The early pool's frames came first and were its next ones: rewind it. The
    // others are the page source's.
    let from_pool = f.early_next - early_before;
    f.early_next = early_before;
    let free = f.page_free;
    drop(f);
    for &pa in &out[from_pool..] {
        if let Some(free) = free {
            free(pa);
        }
    }
    None
}

/// Bytes mapped for the heap and bytes in use.
pub fn stats() -> (usize, usize) {
    let st = HEAP.0.lock();
    (st.heap.size(), st.heap.used())
}

fn map_more(st: &mut HeapState, bytes: usize) -> Result<(), paging::MapError> {
    let pages = bytes.div_ceil(4096);
    // Checked: a huge request must fail here, not overflow (a panic inside the
    // allocator, with its lock held).
    let fits = (pages as u64)
        .checked_mul(4096)
        .and_then(|len| st.mapped_end.checked_add(len))
        .is_some_and(|end| end <= st.window_end);
    if !fits {
        return Err(paging::MapError::NoVirtualSpace);
    }
    let mut frames = FRAMES.lock();
    for _ in 0..pages {
        let pa = frames.take().ok_or(paging::MapError::OutOfFrames)?;
        let mut pt_frames = || frames.take();
        paging::map_pages(st.mapped_end, &[pa], &mut pt_frames)?;
        st.mapped_end += 4096;
    }
    frames.refill();
    Ok(())
}

fn grow(st: &mut HeapState, layout: Layout) -> bool {
    // Room for the block, its alignment and the allocator's bookkeeping; a size
    // that does not even fit a usize cannot be mapped.
    let Some(need) = layout.size().checked_add(layout.align()) else {
        return false;
    };
    let want = need
        .saturating_add(64)
        .max(GROW_MIN)
        .max(st.heap.size() / 4);
    let before = st.mapped_end;
    let res = map_more(st, want);
    let added = (st.mapped_end - before) as usize;
    if added > 0 {
        // SAFETY: [before, mapped_end) directly follows the heap's top and was just
        // mapped to frames owned by the heap.
        unsafe { st.heap.extend(added) };
    }
    res.is_ok() || added >= need
}

// SAFETY: allocation and deallocation go through linked_list_allocator under one
// lock; grown memory is mapped before the heap is extended over it.
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let mut st = self.0.lock();
        if st.start == 0 {
            return ptr::null_mut();
        }
        if let Ok(p) = st.heap.allocate_first_fit(layout) {
            return p.as_ptr();
        }
        if grow(&mut st, layout)
            && let Ok(p) = st.heap.allocate_first_fit(layout)
        {
            return p.as_ptr();
        }
        ptr::null_mut()
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        if let Some(p) = NonNull::new(p) {
            // SAFETY: GlobalAlloc's contract: `p` came from `alloc` with `layout`.
            unsafe { self.0.lock().heap.deallocate(p, layout) };
        }
    }
}

#[cfg(test)]
mod tests {
    use core::alloc::{GlobalAlloc, Layout};

    use super::HEAP;

    /// A request larger than the heap window returns null (it used to overflow
    /// `mapped_end + pages * 4096` and panic with the heap's lock held).
    #[test_case]
    fn huge_request_returns_null() {
        for size in [isize::MAX as usize - 4096, 1 << 62, 1 << 47] {
            let layout = Layout::from_size_align(size, 4096).unwrap();
            // SAFETY: the layout has a non-zero size; a non-null result is freed
            // with the same layout.
            let p = unsafe { HEAP.alloc(layout) };
            assert!(p.is_null(), "{size:#x} bytes allocated");
        }
        // The heap still works.
        let v = alloc::vec![7u8; 100_000];
        assert_eq!(v.iter().map(|&b| u64::from(b)).sum::<u64>(), 700_000);
    }
}
