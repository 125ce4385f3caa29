//! TLB shootdown: after a kernel mapping is removed or changed, every online CPU
//! invalidates it and the changer waits for all of them (Linux's
//! `flush_tlb_kernel_range`).
//!
//! The request travels by NMI, not by a maskable IPI: this kernel runs with
//! interrupts disabled nearly everywhere (and a CPU spinning on a lock the
//! flusher holds would never take a maskable IPI), but an NMI is always taken.
//! The NMI handler takes no lock: it reads the range from atomics, invalidates,
//! and clears this CPU's pending mark. Flushes are serialized by a flag; a CPU
//! waiting for it still takes the holder's NMI, so there is no deadlock.
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use super::{apic, percpu};

/// Ranges of more pages than this are flushed whole (Linux's
/// `tlb_single_page_flush_ceiling`, 33).
pub const FLUSH_CEILING: u64 = 33;

static TLB_LOCK: AtomicBool = AtomicBool::new(false);
static RANGE_START: AtomicU64 = AtomicU64::new(0);
/// End of the range; 0 means everything.
static RANGE_END: AtomicU64 = AtomicU64::new(0);
/// Shootdowns that went to other CPUs (for tests).
pub static SHOOTDOWNS: AtomicUsize = AtomicUsize::new(0);
/// NMIs that carried no flush (reported, then ignored).
pub static UNKNOWN_NMIS: AtomicUsize = AtomicUsize::new(0);

/// Invalidate `[start, end)` on this CPU (end 0: everything, global pages too).
fn flush_local(start: u64, end: u64) {
    if end == 0 || end <= start || (end - start) / 4096 > FLUSH_CEILING {
        flush_local_all();
        return;
    }
    let mut va = start & !0xfff;
    while va < end {
        x86_64::instructions::tlb::flush(x86_64::VirtAddr::new_truncate(va));
        va += 4096;
    }
}

/// Everything, global entries included (toggle CR4.PGE, or reload CR3).
fn flush_local_all() {
    use x86_64::registers::control::{Cr4, Cr4Flags};
    let cr4 = Cr4::read();
    if cr4.contains(Cr4Flags::PAGE_GLOBAL) {
        // SAFETY: clearing and setting PGE again only flushes the TLB (SDM
        // 4.10.4.1); no other CR4 bit changes.
        unsafe {
            Cr4::write(cr4 - Cr4Flags::PAGE_GLOBAL);
            Cr4::write(cr4);
        }
    } else {
        x86_64::instructions::tlb::flush_all();
    }
}

/// The NMI handler's part: serve this CPU's pending flush. Returns whether there
/// was one.
pub fn on_nmi() -> bool {
    let me = percpu::this_cpu();
    if !me.tlb_pending.load(Ordering::Acquire) {
        return false;
    }
    flush_local(
        RANGE_START.load(Ordering::Relaxed),
        RANGE_END.load(Ordering::Relaxed),
    );
    me.tlb_pending.store(false, Ordering::Release);
    true
}

/// Invalidate `[start, end)` (kernel virtual addresses) on every online CPU and
/// wait until all have; `end == 0` flushes everything.
pub fn flush_tlb_range(start: u64, end: u64) {
    flush_local(start, end);
    if super::online_cpus() <= 1 {
        return;
    }
    // Our own pending flush arrives by NMI; serving it while we wait is harmless.
    super::lock_serving(&TLB_LOCK, || {
        on_nmi();
    });
    RANGE_START.store(start, Ordering::Relaxed);
    RANGE_END.store(end, Ordering::Relaxed);
    SHOOTDOWNS.fetch_add(1, Ordering::Relaxed);
    super::signal_others(|p| &p.tlb_pending, apic::send_nmi);
    super::wait_others(|p| &p.tlb_pending, "a TLB shootdown");
    TLB_LOCK.store(false, Ordering::Release);
}

/// Invalidate every kernel mapping on every online CPU and wait.
pub fn flush_tlb_all() {
    flush_tlb_range(0, 0);
}
