//! The IDT and the CPU exception handlers: breakpoint (logged, execution
//! resumes), page fault (CR2 and the error code), general protection fault, and
//! double fault on its own IST stack, which is how a kernel stack overflow shows.
//!
//! External interrupts: the two 8259 PICs (the `pic8259` crate) are remapped to
//! vectors 32-47 with every line masked except the keyboard's (IRQ 1) and COM1's
//! (IRQ 4). The kernel runs with interrupts disabled and enables them only to `hlt`
//! while the shell waits for input; the COM1 handler just acknowledges the
//! interrupt, waking the CPU; the keyboard handler also moves the scancode into
//! keyboard.rs's lock-free ring.
//!
//! Handlers that return to the interrupted code (COM1, keyboard, breakpoint) never
//! wait for a lock: the code they interrupted may hold it, and on one CPU it would
//! never be released. The COM1 and keyboard handlers write their EOI straight to
//! the PIC's command port, and the breakpoint handler only tries the log and
//! console locks.
//!
//! SMP (one IDT for every CPU): the call IPI ([`crate::smp::call::CALL_VECTOR`])
//! only sends the local APIC's EOI (the call runs from the idle loop); the NMI
//! serves TLB shootdowns from atomics; APIC error and spurious vectors are
//! counted. None takes a lock.
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
/// The PS/2 keyboard's IRQ line.
const IRQ_KEYBOARD: u8 = 1;
/// The primary 8259's command port and its non-specific end-of-interrupt command.
const PIC1_COMMAND: u16 = 0x20;
const PIC_EOI: u8 = 0x20;
/// How many COM1 interrupts were acknowledged (tests check that none is skipped).
pub static COM1_EOIS: AtomicU64 = AtomicU64::new(0);
/// How many keyboard interrupts were acknowledged.
pub static KEYBOARD_EOIS: AtomicU64 = AtomicU64::new(0);

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
    idt[PIC_OFFSET + IRQ_KEYBOARD].set_handler_fn(keyboard_handler);
    idt[crate::smp::call::CALL_VECTOR].set_handler_fn(call_ipi_handler);
    idt[crate::smp::apic::ERROR_VECTOR].set_handler_fn(apic_error_handler);
    idt[crate::smp::apic::SPURIOUS_VECTOR].set_handler_fn(spurious_handler);
    idt.non_maskable_interrupt.set_handler_fn(nmi_handler);
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

/// Remap the PICs and unmask only the keyboard and COM1 (and the cascade line).
/// Interrupts stay disabled until [`wait_for_interrupt`].
pub fn init_pics() {
    let mut pics = PICS.lock();
    // SAFETY: the PICs' ports belong to this driver; remapping moves their vectors
    // away from the CPU exceptions, and the masks allow only IRQ 1, 2 (cascade) and 4.
    unsafe {
        pics.initialize();
        pics.write_masks(!((1 << IRQ_KEYBOARD) | (1 << IRQ_COM1) | (1 << 2)), 0xff);
    }
}

/// Sleep until an interrupt arrives (`sti; hlt` is atomic), then disable them
/// again, and run an `on_each_cpu` call another CPU made meanwhile.
pub fn wait_for_interrupt() {
    x86_64::instructions::interrupts::enable_and_hlt();
    x86_64::instructions::interrupts::disable();
    crate::smp::call::poll();
}

/// APIC errors seen (the error status of each).
pub static APIC_ERRORS: AtomicU64 = AtomicU64::new(0);

extern "x86-interrupt" fn call_ipi_handler(_frame: InterruptStackFrame) {
    // The call itself runs from the idle loop: only acknowledge (a register write).
    crate::smp::apic::eoi();
}

extern "x86-interrupt" fn apic_error_handler(_frame: InterruptStackFrame) {
    crate::smp::apic::take_errors();
    APIC_ERRORS.fetch_add(1, Ordering::SeqCst);
    crate::smp::apic::eoi();
}

extern "x86-interrupt" fn nmi_handler(_frame: InterruptStackFrame) {
    // A TLB shootdown (atomics only). Anything else: counted and tried on the log,
    // as Linux's "NMI received for unknown reason".
    if !crate::smp::tlb::on_nmi() {
        crate::smp::tlb::UNKNOWN_NMIS.fetch_add(1, Ordering::SeqCst);
        crate::logger::try_log(format_args!(
            "Uhhuh. NMI received for unknown reason on CPU {}.",
            crate::smp::cpu_id()
        ));
    }
}

extern "x86-interrupt" fn com1_handler(_frame: InterruptStackFrame) {
    // The data stays in the UART for the shell to read; only acknowledge, always:
    // without the EOI the PIC never raises IRQ 4 again. Not through PICS, whose
    // lock this handler may have interrupted.
    COM1_EOIS.fetch_add(1, Ordering::SeqCst);
    send_primary_eoi();
}

extern "x86-interrupt" fn keyboard_handler(_frame: InterruptStackFrame) {
    // Reads port 0x60 and pushes into a lock-free ring: no lock taken.
    crate::keyboard::on_interrupt();
    KEYBOARD_EOIS.fetch_add(1, Ordering::SeqCst);
    send_primary_eoi();
}

/// End of interrupt for an IRQ of the primary PIC (COM1's 4, the keyboard's 1: no
/// EOI to the secondary).
fn send_primary_eoi() {
    // The one multi-byte command sequence to this port (initialisation, in
    // `init_pics`) runs with interrupts disabled, so this write never lands in it.
    // SAFETY: a non-specific EOI to the primary 8259 only ends the IRQ in service.
    unsafe { x86_64::instructions::port::Port::<u8>::new(PIC1_COMMAND).write(PIC_EOI) };
}

extern "x86-interrupt" fn spurious_handler(_frame: InterruptStackFrame) {}

fn report(args: core::fmt::Arguments) {
    crate::serial::force_unlock();
    crate::serial_println!("{}", args);
}

extern "x86-interrupt" fn breakpoint_handler(frame: InterruptStackFrame) {
    BREAKPOINTS.fetch_add(1, Ordering::SeqCst);
    // Execution resumes, so the log and console locks of the interrupted code
    // must not be waited for: try them (the line is dropped where one is held).
    crate::logger::try_log(format_args!(
        "breakpoint at {:#x}",
        frame.instruction_pointer.as_u64()
    ));
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

    /// A breakpoint taken while the interrupted code holds the console and the log
    /// locks resumes (it used to spin for ever on the log's lock).
    #[test_case]
    fn breakpoint_under_the_console_and_log_locks_resumes() {
        let before = BREAKPOINTS.load(Ordering::SeqCst);
        crate::serial::with_console_locked(|| {
            crate::logger::with_log_locked(x86_64::instructions::interrupts::int3)
        });
        assert_eq!(BREAKPOINTS.load(Ordering::SeqCst), before + 1);
        crate::serial::with_console_locked(x86_64::instructions::interrupts::int3);
        assert_eq!(BREAKPOINTS.load(Ordering::SeqCst), before + 2);
    }

    /// COM1's handler acknowledges the interrupt even while the PICS lock is held
    /// (it used to skip the EOI, and COM1 never interrupted again).
    #[test_case]
    fn com1_interrupt_is_acknowledged_under_the_pics_lock() {
        let before = COM1_EOIS.load(Ordering::SeqCst);
        {
            let _pics = PICS.lock();
            // SAFETY: the COM1 vector's handler takes no arguments beyond the
            // frame the CPU pushes for `int`, and only writes the EOI.
            unsafe { core::arch::asm!("int {v}", v = const PIC_OFFSET + IRQ_COM1) };
        }
        assert_eq!(COM1_EOIS.load(Ordering::SeqCst), before + 1);
    }

    /// The keyboard's handler takes no lock either: it acknowledges under the
    /// PICS lock.
    #[test_case]
    fn keyboard_interrupt_is_acknowledged_under_the_pics_lock() {
        let before = KEYBOARD_EOIS.load(Ordering::SeqCst);
        {
            let _pics = PICS.lock();
            // SAFETY: the keyboard vector's handler takes no arguments beyond the
            // frame the CPU pushes for `int`; it reads the i8042's status (and its
            // data port only when a keyboard byte is waiting) and writes the EOI.
            unsafe { core::arch::asm!("int {v}", v = const PIC_OFFSET + IRQ_KEYBOARD) };
        }
        assert_eq!(KEYBOARD_EOIS.load(Ordering::SeqCst), before + 1);
    }
}
