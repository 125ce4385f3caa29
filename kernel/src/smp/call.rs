//! `on_each_cpu`: run a function on every online CPU at once, the caller's too,
//! and return when all have finished (Linux's `on_each_cpu`, wait = 1).
//!
//! One call at a time: the caller takes [`CALL_LOCK`], publishes the function and
//! its argument, marks each other online CPU pending and sends it the
//! [`CALL_VECTOR`] IPI, runs the function itself, then waits for every pending
//! mark to clear. The IPI handler only sends the EOI (it takes no lock): the
//! function runs outside interrupt context, from the idle loop after `hlt` (APs,
//! and the boot CPU in the shell's `wait_for_interrupt`) through [`poll`], with
//! interrupts disabled and no lock held. A CPU that waits for the call lock
//! serves pending calls meanwhile, so two CPUs calling at once do not deadlock.
//!
//! The function must not call `on_each_cpu` itself (Linux forbids it too: the
//! caller holds the call lock and waits for it). It may take locks and allocate.
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::{apic, percpu};

/// The IPI vector that wakes a CPU for a call (Linux's CALL_FUNCTION_VECTOR).
pub const CALL_VECTOR: u8 = 0xfc;

static CALL_LOCK: AtomicBool = AtomicBool::new(false);
static CALL_FN: AtomicUsize = AtomicUsize::new(0);
static CALL_ARG: AtomicUsize = AtomicUsize::new(0);
/// Calls made (for tests and `bench`).
pub static CALLS: AtomicUsize = AtomicUsize::new(0);

/// Whether a call waits for this CPU ([`poll`] runs it).
pub fn pending() -> bool {
    percpu::this_cpu().call_pending.load(Ordering::Relaxed)
}

/// Run the call pending for this CPU, if any. Called from the idle loops.
pub fn poll() {
    let me = percpu::this_cpu();
    if !me.call_pending.load(Ordering::Acquire) {
        return;
    }
    let f = CALL_FN.load(Ordering::Relaxed);
    let arg = CALL_ARG.load(Ordering::Relaxed);
    // SAFETY: CALL_FN holds a `fn(usize, usize)` stored by `on_each_cpu` before it
    // set our pending mark (Release, read above with Acquire), and it stays valid
    // until we clear the mark (the caller holds the call lock until then).
    let f: fn(usize, usize) = unsafe { core::mem::transmute::<usize, fn(usize, usize)>(f) };
    f(percpu::cpu_id(), arg);
    me.call_pending.store(false, Ordering::Release);
}

/// Run `f(cpu, arg)` on every online CPU at once (this one included) and return
/// when all have finished. Afterwards the other CPUs are back in their idle loop.
pub fn on_each_cpu(f: fn(usize, usize), arg: usize) {
    // Another CPU calling may be waiting for us: serve it meanwhile.
    super::lock_serving(&CALL_LOCK, poll);
    CALL_FN.store(f as usize, Ordering::Relaxed);
    CALL_ARG.store(arg, Ordering::Relaxed);
    CALLS.fetch_add(1, Ordering::Relaxed);
    super::signal_others(
        |p| &p.call_pending,
        |apic_id| apic::send_ipi(apic_id, CALL_VECTOR),
    );
    f(percpu::cpu_id(), arg);
    super::wait_others(|p| &p.call_pending, "on_each_cpu");
    CALL_LOCK.store(false, Ordering::Release);
}
