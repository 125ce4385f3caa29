//! The IDT and the CPU exception handlers: breakpoint (logged, execution
//! resumes), page fault (CR2 and the error code), general protection fault, and
//! double fault on its own IST stack, which is how a kernel stack overflow shows.
//!
//! External interrupts: the two 8259 PICs (the `pic8259` crate) are remapped to
//! vectors 32-47 with every line masked except COM1's (IRQ 4). The kernel runs
//! with interrupts disabled and enables them only to `hlt` while the shell waits
//! for input; the COM1 handler just acknowledges the interrupt, waking the CPU.
use core::sync::atomic::{AtomicU64, Ordering};
use spin::LazyLock as Lazy;
use x86_64::registers::control::Cr2;
use x86_64::structures::idt::{InterruptDescriptorTable, InterruptStackFrame, PageFaultErrorCode};

use crate::fault::{Fault, fatal};
use crate::gdt::DOUBLE_FAULT_IST_INDEX;

/// How many breakpoints were taken (tests check that execution resumed).
pub static BREAKPOINTS: AtomicU64 = AtomicU64::new(0);

/// First vector of the remapped PICs.
pub const PIC_OFFSET: u8 = 32;
/// COM1's IRQ line.
const IRQ_COM1: u8 = 4;

static PICS: spin::Mutex<pic8259::ChainedPics> =
    // SAFETY: 32-47 are free vectors (the CPU's exceptions use 0-31).
    spin::Mutex::new(unsafe { pic8259::ChainedPics::new_contiguous(PIC_OFFSET) });

static IDT: Lazy<InterruptDescriptorTable> = Lazy::new(|| {
    let mut idt = InterruptDescriptorTable::new();
    idt.breakpoint.set_handler_fn(breakpoint_handler);
    idt.page_fault.set_handler_fn(page_fault_handler);
    idt.general_protection_fault
        .set_handler_fn(general_protection_handler);
    idt[PIC_OFFSET + IRQ_COM1].set_handler_fn(com1_handler);
    // Spurious IRQ 7 and 15 of the 8259s: nothing to acknowledge.
    idt[PIC_OFFSET + 7].set_handler_fn(spurious_handler);
    idt[PIC_OFFSET + 15].set_handler_fn(spurious_handler);
    // SAFETY: the IST index names the stack the TSS of gdt.rs sets up, used by no
    // other handler.
    unsafe {
        idt.double_fault
            .set_handler_fn(double_fault_handler)
            .set_stack_index(DOUBLE_FAULT_IST_INDEX);
    }
    idt
});

/// Load the IDT.
pub fn init_idt() {
    IDT.load();
}

/// Remap the PICs and unmask only COM1 (and the cascade line). Interrupts stay
/// disabled until [`wait_for_interrupt`].
pub fn init_pics() {
    let mut pics = PICS.lock();
    // SAFETY: the PICs' ports belong to this driver; remapping moves their vectors
    // away from the CPU exceptions, and the masks allow only IRQ 2 (cascade) and 4.
    unsafe {
        pics.initialize();
        pics.write_masks(!((1 << IRQ_COM1) | (1 << 2)), 0xff);
    }
}

/// Sleep until an interrupt arrives (`sti; hlt` is atomic), then disable them again.
pub fn wait_for_interrupt() {
    x86_64::instructions::interrupts::enable_and_hlt();
    x86_64::instructions::interrupts::disable();
}

extern "x86-interrupt" fn com1_handler(_frame: InterruptStackFrame) {
    // The data stays in the UART for the shell to read; only acknowledge.
    if let Some(mut pics) = PICS.try_lock() {
        // SAFETY: this is the COM1 vector of the remapped primary PIC.
        unsafe { pics.notify_end_of_interrupt(PIC_OFFSET + IRQ_COM1) };
    }
}

extern "x86-interrupt" fn spurious_handler(_frame: InterruptStackFrame) {}

fn report(args: core::fmt::Arguments) {
    crate::serial::force_unlock();
    crate::serial_println!("{}", args);
}

extern "x86-interrupt" fn breakpoint_handler(frame: InterruptStackFrame) {
    BREAKPOINTS.fetch_add(1, Ordering::SeqCst);
    log::info!("breakpoint at {:#x}", frame.instruction_pointer.as_u64());
}

extern "x86-interrupt" fn page_fault_handler(frame: InterruptStackFrame, code: PageFaultErrorCode) {
    let addr = Cr2::read_raw();
    report(format_args!(
        "BUG: unable to handle page fault for address: {addr:#018x}\n#PF: error_code({:#06x}) {:?}\nRIP: {:#x} RSP: {:#x}",
        code.bits(),
        code,
        frame.instruction_pointer.as_u64(),
        frame.stack_pointer.as_u64()
    ));
    fatal(Fault::PageFault)
}

extern "x86-interrupt" fn general_protection_handler(frame: InterruptStackFrame, code: u64) {
    report(format_args!(
        "general protection fault: {code:#06x}\nRIP: {:#x} RSP: {:#x}",
        frame.instruction_pointer.as_u64(),
        frame.stack_pointer.as_u64()
    ));
    fatal(Fault::GeneralProtection)
}

extern "x86-interrupt" fn double_fault_handler(frame: InterruptStackFrame, _code: u64) -> ! {
    report(format_args!(
        "double fault (kernel stack overflow?)\nRIP: {:#x} RSP: {:#x}",
        frame.instruction_pointer.as_u64(),
        frame.stack_pointer.as_u64()
    ));
    fatal(Fault::DoubleFault)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test_case]
    fn breakpoint_resumes() {
        let before = BREAKPOINTS.load(Ordering::SeqCst);
        x86_64::instructions::interrupts::int3();
        assert_eq!(BREAKPOINTS.load(Ordering::SeqCst), before + 1);
    }
}
