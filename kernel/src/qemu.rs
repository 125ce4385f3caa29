//! QEMU's isa-debug-exit device (`-device isa-debug-exit,iobase=0xf4,iosize=0x04`):
//! writing v to port 0xf4 ends QEMU with exit status (v << 1) | 1. The host runner
//! turns 33 (0x10) into success and 35 (0x11) into failure.
use x86_64::instructions::port::Port;

/// What the kernel tells the host when it ends the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum ExitCode {
    /// QEMU exits with 33: `poweroff`, or every test passed.
    Success = 0x10,
    /// QEMU exits with 35: a test failed or the kernel panicked.
    Failed = 0x11,
}

/// Ask QEMU to exit. Outside QEMU (no such device) the write does nothing and the
/// CPU halts.
pub fn exit_qemu(code: ExitCode) -> ! {
    // SAFETY: port 0xf4 is the isa-debug-exit device the runner adds; on a machine
    // without it the write goes to an unused ISA port and has no effect.
    unsafe { Port::<u32>::new(0xf4).write(code as u32) };
    crate::hlt_loop()
}
