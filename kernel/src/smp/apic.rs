//! The local APIC, in xAPIC mode (MMIO page at the MADT's address) or x2APIC mode
//! (MSRs 0x800-0x8ff) when CPUID says the CPU has x2APIC. The same mode on every
//! CPU: the boot CPU picks it in [`init_boot_cpu`], each AP enables it in
//! [`init_ap`].
//!
//! Not the `x2apic` crate: its `enable()` writes 0 to LVT LINT0/LINT1, which
//! *unmasks* them with vector 0 (QEMU then delivers the 8259's ExtINT to every
//! CPU as an illegal vector), starts a periodic timer, and it cannot mask a pin.
//! Here the boot CPU keeps the BIOS's virtual-wire set-up (LINT0 ExtINT for the
//! PICs, LINT1 NMI) and the APs mask both pins, as Linux does.
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use x86_64::registers::model_specific::Msr;

/// IA32_APIC_BASE: the APIC's physical base, global enable (bit 11), x2APIC (bit 10).
const IA32_APIC_BASE: u32 = 0x1b;
const BASE_ENABLE: u64 = 1 << 11;
const BASE_X2APIC: u64 = 1 << 10;
/// First x2APIC register MSR (register offset / 16 is added).
const X2APIC_MSR: u32 = 0x800;

/// Register offsets (xAPIC MMIO; x2APIC MSR = 0x800 + offset / 16).
const REG_ID: u32 = 0x20;
const REG_TPR: u32 = 0x80;
const REG_EOI: u32 = 0xb0;
const REG_SVR: u32 = 0xf0;
const REG_ESR: u32 = 0x280;
const REG_ICR_LOW: u32 = 0x300;
const REG_ICR_HIGH: u32 = 0x310;
const REG_LVT_TIMER: u32 = 0x320;
const REG_LVT_LINT0: u32 = 0x350;
const REG_LVT_LINT1: u32 = 0x360;
const REG_LVT_ERROR: u32 = 0x370;

const LVT_MASKED: u32 = 1 << 16;
const SVR_ENABLE: u32 = 1 << 8;
const ICR_PENDING: u32 = 1 << 12;

/// ICR delivery modes and flags.
const DM_FIXED: u32 = 0 << 8;
const DM_NMI: u32 = 4 << 8;
const DM_INIT: u32 = 5 << 8;
const DM_STARTUP: u32 = 6 << 8;
const LEVEL_ASSERT: u32 = 1 << 14;
const TRIGGER_LEVEL: u32 = 1 << 15;

/// The vector of spurious APIC interrupts (Linux's SPURIOUS_APIC_VECTOR).
pub const SPURIOUS_VECTOR: u8 = 0xff;
/// The vector of APIC errors (Linux's ERROR_APIC_VECTOR).
pub const ERROR_VECTOR: u8 = 0xfe;

static X2APIC: AtomicBool = AtomicBool::new(false);
/// Virtual address of the xAPIC page (0 until [`init_boot_cpu`]).
static XAPIC_VIRT: AtomicU64 = AtomicU64::new(0);

/// Which interface the local APICs run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// xAPIC: MMIO at this physical address.
    XApic(u64),
    /// x2APIC: MSRs.
    X2Apic,
}

/// Whether the running CPU has a local APIC and x2APIC (CPUID leaf 1).
fn cpuid_apic() -> (bool, bool) {
    let r = core::arch::x86_64::__cpuid(1);
    (r.edx & (1 << 9) != 0, r.ecx & (1 << 21) != 0)
}

fn read(reg: u32) -> u32 {
    if X2APIC.load(Ordering::Relaxed) {
        // SAFETY: x2APIC mode is on for this CPU (set before X2APIC is stored and
        // on every AP before it takes an IPI); reading an APIC register MSR has
        // no side effect.
        unsafe { Msr::new(X2APIC_MSR + reg / 16).read() as u32 }
    } else {
        let base = XAPIC_VIRT.load(Ordering::Relaxed);
        // SAFETY: `base` maps the local APIC's 4 KiB MMIO page (the physical
        // mapping covers 0xfee00000), `reg` is a register offset inside it, and
        // APIC registers are read as aligned 32-bit words.
        unsafe { core::ptr::read_volatile((base + u64::from(reg)) as *const u32) }
    }
}

fn write(reg: u32, value: u32) {
    if X2APIC.load(Ordering::Relaxed) {
        // SAFETY: as in `read`; the callers write only the registers they own
        // (EOI, SVR, TPR, LVTs, ESR, ICR) with values valid for them.
        unsafe { Msr::new(X2APIC_MSR + reg / 16).write(u64::from(value)) }
    } else {
        let base = XAPIC_VIRT.load(Ordering::Relaxed);
        // SAFETY: as in `read`, an aligned 32-bit write inside the APIC page.
        unsafe { core::ptr::write_volatile((base + u64::from(reg)) as *mut u32, value) }
    }
}

/// The mode in use.
pub fn mode() -> Mode {
    if X2APIC.load(Ordering::Relaxed) {
        Mode::X2Apic
    } else {
        // SAFETY: reading IA32_APIC_BASE has no side effect (the CPU has an APIC:
        // checked by init_boot_cpu before XAPIC_VIRT was set).
        let base = unsafe { Msr::new(IA32_APIC_BASE).read() } & 0x000f_ffff_ffff_f000;
        Mode::XApic(base)
    }
}

/// Switch this CPU's APIC on (and into x2APIC mode when in use).
fn enable_base() {
    let mut msr = Msr::new(IA32_APIC_BASE);
    // SAFETY: setting the global-enable bit (and the x2APIC bit, only when CPUID
    // reported x2APIC) is the documented way to turn the local APIC on; the base
    // address bits are written back unchanged.
    unsafe {
        let v = msr.read();
        let want = v
            | BASE_ENABLE
            | if X2APIC.load(Ordering::Relaxed) {
                BASE_X2APIC
            } else {
                0
            };
        if want != v {
            msr.write(want);
        }
    }
}

/// Set up the boot CPU's APIC: pick the mode, keep the BIOS's LINT0/LINT1
/// (virtual wire: the PICs' ExtINT and NMI), software-enable it with the spurious
/// vector, mask its timer, route errors to [`ERROR_VECTOR`].
pub fn init_boot_cpu(phys_to_virt: impl Fn(u64) -> Option<u64>) -> Result<Mode, &'static str> {
    let (has_apic, has_x2apic) = cpuid_apic();
    if !has_apic {
        return Err("the boot CPU has no local APIC (CPUID)");
    }
    if has_x2apic {
        X2APIC.store(true, Ordering::Relaxed);
    } else {
        // SAFETY: reading IA32_APIC_BASE has no side effect on a CPU with an APIC.
        let base = unsafe { Msr::new(IA32_APIC_BASE).read() } & 0x000f_ffff_ffff_f000;
        let virt = phys_to_virt(base).ok_or("the local APIC page is not mapped")?;
        XAPIC_VIRT.store(virt, Ordering::Relaxed);
    }
    enable_base();
    write(REG_TPR, 0);
    write(REG_LVT_TIMER, LVT_MASKED);
    write(REG_LVT_ERROR, u32::from(ERROR_VECTOR));
    write(REG_ESR, 0);
    write(REG_SVR, SVR_ENABLE | u32::from(SPURIOUS_VECTOR));
    Ok(mode())
}

/// Set up an AP's APIC in the boot CPU's mode: LINT0, LINT1 and the timer
/// masked, errors to [`ERROR_VECTOR`], software-enabled.
pub fn init_ap() {
    enable_base();
    write(REG_TPR, 0);
    write(REG_LVT_LINT0, LVT_MASKED);
    write(REG_LVT_LINT1, LVT_MASKED);
    write(REG_LVT_TIMER, LVT_MASKED);
    write(REG_LVT_ERROR, u32::from(ERROR_VECTOR));
    write(REG_ESR, 0);
    write(REG_SVR, SVR_ENABLE | u32::from(SPURIOUS_VECTOR));
    eoi();
}

/// This CPU's APIC id (8 bits in xAPIC mode, 32 in x2APIC mode).
pub fn id() -> u32 {
    let v = read(REG_ID);
    if X2APIC.load(Ordering::Relaxed) {
        v
    } else {
        v >> 24
    }
}

/// End of interrupt (an APIC register write: no lock, safe in any handler).
pub fn eoi() {
    write(REG_EOI, 0);
}

/// Read and clear the error status (the write arms the register, then read).
pub fn take_errors() -> u32 {
    write(REG_ESR, 0);
    read(REG_ESR)
}

/// Write the ICR for `dest` and, in xAPIC mode, wait (bounded) until the APIC has
/// sent it. Returns false if the xAPIC never cleared its send-pending bit.
fn send(dest: u32, low: u32) -> bool {
    if X2APIC.load(Ordering::Relaxed) {
        // SAFETY: x2APIC mode is on; one 64-bit write of the ICR (destination in
        // the high half) sends the IPI; the callers pass valid delivery modes.
        unsafe {
            Msr::new(X2APIC_MSR + REG_ICR_LOW / 16).write((u64::from(dest) << 32) | u64::from(low))
        };
        return true;
    }
    // Interrupts off: the two halves must not be split by an IPI sent from a
    // handler on this CPU.
    x86_64::instructions::interrupts::without_interrupts(|| {
        write(REG_ICR_HIGH, dest << 24);
        write(REG_ICR_LOW, low);
        let start = crate::tsc::rdtsc();
        let limit = crate::tsc::hz() / 1000; // 1 ms
        while read(REG_ICR_LOW) & ICR_PENDING != 0 {
            if crate::tsc::rdtsc().wrapping_sub(start) > limit {
                return false;
            }
            core::hint::spin_loop();
        }
        true
    })
}

/// A fixed-vector IPI to `dest`.
pub fn send_ipi(dest: u32, vector: u8) -> bool {
    send(dest, DM_FIXED | LEVEL_ASSERT | u32::from(vector))
}

/// An NMI to `dest`.
pub fn send_nmi(dest: u32) -> bool {
    send(dest, DM_NMI | LEVEL_ASSERT)
}

/// INIT (assert, level-triggered, then de-assert in xAPIC mode, as Linux's
/// `wakeup_secondary_cpu_via_init`).
pub fn send_init(dest: u32) -> bool {
    send_init_assert(dest) && send_init_deassert(dest)
}

/// The INIT IPI, level asserted (the first half of [`send_init`]).
pub fn send_init_assert(dest: u32) -> bool {
    send(dest, DM_INIT | LEVEL_ASSERT | TRIGGER_LEVEL)
}

/// The INIT level de-assert (the second half of [`send_init`]); x2APIC has no such
/// message (SDM 10.12.9), so there it sends nothing and succeeds.
pub fn send_init_deassert(dest: u32) -> bool {
    if X2APIC.load(Ordering::Relaxed) {
        return true;
    }
    send(dest, DM_INIT | TRIGGER_LEVEL)
}

/// A start-up IPI: the AP starts in real mode at `page << 12`.
pub fn send_startup(dest: u32, page: u8) -> bool {
    send(dest, DM_STARTUP | u32::from(page))
}
