//! What happens after a fatal CPU exception or a panic has been reported: the
//! machine stops, telling QEMU it failed, unless a test kernel declared that it
//! expects exactly this fault (the page-fault, GPF and stack-overflow tests).
use core::sync::atomic::{AtomicU8, Ordering};

use crate::qemu::{ExitCode, exit_qemu};

/// The fatal events a test kernel can expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Fault {
    /// No fault expected.
    None = 0,
    /// A page fault.
    PageFault = 1,
    /// A general protection fault.
    GeneralProtection = 2,
    /// A double fault (for example a kernel stack overflow).
    DoubleFault = 3,
}

static EXPECTED: AtomicU8 = AtomicU8::new(Fault::None as u8);

/// Declare that the next fatal event of this kind is the test's success.
pub fn expect(fault: Fault) {
    EXPECTED.store(fault as u8, Ordering::SeqCst);
}

/// Stop after a fatal `fault` was reported.
pub fn fatal(fault: Fault) -> ! {
    crate::serial::force_unlock();
    crate::fbcon::emergency_flush();
    if EXPECTED.load(Ordering::SeqCst) == fault as u8 && fault != Fault::None {
        crate::serial_println!("[ok]");
        crate::serial_println!("1 passed, 0 failed");
        exit_qemu(ExitCode::Success);
    }
    exit_qemu(ExitCode::Failed)
}
