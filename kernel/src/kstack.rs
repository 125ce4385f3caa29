//! Kernel stacks of the secondary CPUs, mapped as Linux's `CONFIG_VMAP_STACK`
//! maps them: in a virtual window of their own, each stack above a guard page that
//! is never mapped, so an overflow faults on it (and ends in the double-fault
//! handler on the CPU's IST stack) instead of overwriting what lies below.
//!
//! Mapping frames into an unused part of the window changes no present entry, so
//! no CPU needs a TLB flush (carving the guard page out of a heap block did: an
//! unmap and an `invlpg`, which cost about 6 ms at boot under QEMU's TCG). The
//! frames come from the heap's sources (`heap::take_frames`: the kernel's early
//! pool, then the buddy allocator). Stacks live as long as their CPU and are never
//! freed; they are not zeroed (a stack is written before it is read).
use alloc::vec::Vec;
use spin::Mutex;

use crate::{heap, paging};

/// The page below each stack that stays unmapped.
pub const GUARD_SIZE: usize = 4096;

/// New page tables one stack of at most [`MAX_STACK`] bytes can need: a 3rd-level
/// table for the window, and at most two 2nd- and two 1st-level ones (the stack
/// may straddle a 1 GiB and a 2 MiB boundary).
const PT_FRAMES: usize = 5;

/// Frames [`alloc`] may take for a stack of `size` bytes (its pages and the page
/// tables it may need).
pub fn frames_for(size: usize) -> usize {
    size.div_ceil(4096) + PT_FRAMES
}

/// The largest stack [`alloc`] maps.
pub const MAX_STACK: usize = 1 << 20;

struct Window {
    /// Next unused address (the next stack's guard page); 0 until the window is
    /// reserved.
    next: u64,
    end: u64,
    /// Frames taken and not used yet (page tables a mapping did not need, or a
    /// stack whose mapping failed), used before new ones are taken.
    spare: Vec<u64>,
}

static WINDOW: Mutex<Window> = Mutex::new(Window {
    next: 0,
    end: 0,
    spare: Vec::new(),
});

/// Map a stack of `size` bytes (rounded up to pages, at most [`MAX_STACK`]) above
/// an unmapped guard page. Returns its top: 16-byte aligned, just past its last
/// byte. On failure nothing is mapped and no frame is lost.
pub fn alloc(size: usize) -> Result<u64, &'static str> {
    if size == 0 || size > MAX_STACK {
        return Err("bad kernel stack size");
    }
    let pages = size.div_ceil(4096);
    let mut w = WINDOW.lock();
    if w.next == 0 {
        let start = paging::reserve_window(1).map_err(|_| "no virtual space for stacks")?;
        w.next = start;
        w.end = start + paging::L4_SPAN;
    }
    let base = w.next + GUARD_SIZE as u64;
    let top = base + (pages * 4096) as u64;
    if top > w.end {
        return Err("the stack window is full");
    }
    let want = pages + PT_FRAMES;
    if w.spare.len() < want {
        let more = heap::take_frames(want - w.spare.len()).ok_or("out of memory for a stack")?;
        w.spare
            .try_reserve(more.len())
            .map_err(|_| "out of memory for a stack")?;
        w.spare.extend(more);
    }
    let at = w.spare.len() - pages;
    let frames = w.spare.split_off(at);
    // The page tables come from what is left of the spare frames: no lock and no
    // allocation while the page-table lock is held.
    let res = {
        let spare = &mut w.spare;
        let mut pt = || spare.pop();
        paging::map_pages(base, &frames, &mut pt)
    };
    if res.is_err() {
        // Undo the pages mapped before the error (unmap_pages stops at the first
        // one that is not mapped); the frames are kept for the next request.
        let _ = paging::unmap_pages(base, pages as u64);
        w.spare.extend(frames);
        return Err("cannot map the stack");
    }
    w.next = top;
    Ok(top)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each stack is mapped and writable from its lowest byte to its top, the page
    /// below it is not mapped, and a bad size maps nothing.
    #[test_case]
    fn stacks_sit_above_unmapped_guard_pages() {
        let sizes = [8192u64, 3 * 4096, 100];
        let tops: Vec<u64> = sizes
            .iter()
            .map(|&s| alloc(s as usize).expect("stack"))
            .collect();
        for (&top, &size) in tops.iter().zip(&sizes) {
            let size = size.next_multiple_of(4096);
            assert_eq!(top % 16, 0, "top {top:#x} aligned");
            for va in (top - size..top).step_by(4096) {
                assert!(paging::translate(va).is_some(), "{va:#x} mapped");
                // SAFETY: the page was just mapped for this stack, writable, and
                // nothing else uses it (the stack is this test's).
                unsafe { core::ptr::write_volatile(va as *mut u64, va) };
                // SAFETY: as above; the value was just written.
                assert_eq!(unsafe { core::ptr::read_volatile(va as *const u64) }, va);
            }
            assert_eq!(paging::translate(top - size - GUARD_SIZE as u64), None);
        }
        assert!(
            tops.windows(2).all(|w| w[1] > w[0]),
            "stacks do not overlap"
        );
        let next = WINDOW.lock().next;
        assert!(alloc(0).is_err());
        assert!(alloc(MAX_STACK + 1).is_err());
        assert_eq!(WINDOW.lock().next, next, "a bad size changes nothing");
    }
}
