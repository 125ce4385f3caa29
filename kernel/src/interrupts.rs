//! The IDT and the CPU exception handlers: breakpoint (logged, execution
//! resumes), page fault (CR2 and the error code), general protection fault, and
//! double fault on its own IST stack, which is how a kernel stack overflow shows.
//! The kernel runs with external interrupts disabled: the console is polled.
use core::sync::atomic::{AtomicU64, Ordering};
use spin::LazyLock as Lazy;
use x86_64::registers::control::Cr2;
use x86_64::structures::idt::{InterruptDescriptorTable, InterruptStackFrame, PageFaultErrorCode};

use crate::fault::{Fault, fatal};
use crate::gdt::DOUBLE_FAULT_IST_INDEX;

/// How many breakpoints were taken (tests check that execution resumed).
pub static BREAKPOINTS: AtomicU64 = AtomicU64::new(0);

static IDT: Lazy<InterruptDescriptorTable> = Lazy::new(|| {
    let mut idt = InterruptDescriptorTable::new();
    idt.breakpoint.set_handler_fn(breakpoint_handler);
    idt.page_fault.set_handler_fn(page_fault_handler);
    idt.general_protection_fault
        .set_handler_fn(general_protection_handler);
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
