//! Per-CPU data reached through the GS base, as Linux's `this_cpu` area: one
//! [`PerCpu`] block per logical CPU in a static array, and each CPU's GS base
//! pointing at its own block, so [`cpu_id`] is a single `gs:`-relative load.
//!
//! The boot CPU's GS base is set first thing in `init_cpu` ([`init_boot_cpu`]),
//! so `cpu_id()` answers 0 before SMP bring-up; an application processor sets
//! its own as the first step of its Rust entry.
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};

/// The most logical CPUs the kernel runs (the MADT parser's `nr_cpu_ids`, Linux's
/// NR_CPUS for this kernel); the MADT's further CPUs are reported and skipped.
pub const MAX_CPUS: usize = 256;

/// Not started (or not a CPU of this machine).
pub const OFFLINE: u8 = 0;
/// Sent INIT-SIPI-SIPI; the boot CPU waits for it.
pub const BOOTING: u8 = 1;
/// Runs kernel code and takes IPIs.
pub const ONLINE: u8 = 2;
/// Did not answer in time: the boot CPU went on without it (if it wakes up
/// after all, it halts at once instead of going online).
pub const GIVEN_UP: u8 = 3;

/// One CPU's block. `self_addr` and `cpu` sit at fixed offsets (0 and 8): the
/// `gs:` loads below depend on them.
#[repr(C, align(64))]
pub struct PerCpu {
    /// This block's own address (Linux's `this_cpu_off` idea: `gs:0` finds it).
    pub self_addr: AtomicU64,
    /// Logical CPU number, 0 for the boot CPU, in MADT order.
    pub cpu: AtomicUsize,
    /// Local APIC id (x2APIC id when the MADT gave one).
    pub apic_id: AtomicU32,
    /// NUMA node (the SRAT's, 0 without one).
    pub node: AtomicU32,
    /// [`OFFLINE`], [`BOOTING`], [`ONLINE`] or [`GIVEN_UP`].
    pub state: AtomicU8,
    /// An `on_each_cpu` call waits for this CPU (set by the caller, cleared here).
    pub call_pending: AtomicBool,
    /// A TLB flush waits for this CPU (set by the flusher, cleared by this CPU's NMI).
    pub tlb_pending: AtomicBool,
    /// Address of this CPU's GDT (what `sgdt` must show on it).
    pub gdt: AtomicU64,
    /// Address of this CPU's TSS.
    pub tss: AtomicU64,
    /// Top of this CPU's kernel stack (0 for the boot CPU: the bootloader's).
    pub stack_top: AtomicU64,
}

impl PerCpu {
    const fn new() -> Self {
        Self {
            self_addr: AtomicU64::new(0),
            cpu: AtomicUsize::new(0),
            apic_id: AtomicU32::new(0),
            node: AtomicU32::new(0),
            state: AtomicU8::new(OFFLINE),
            call_pending: AtomicBool::new(false),
            tlb_pending: AtomicBool::new(false),
            gdt: AtomicU64::new(0),
            tss: AtomicU64::new(0),
            stack_top: AtomicU64::new(0),
        }
    }
}

const _: () = assert!(core::mem::offset_of!(PerCpu, self_addr) == 0);
const _: () = assert!(core::mem::offset_of!(PerCpu, cpu) == 8);

static PERCPU: [PerCpu; MAX_CPUS] = [const { PerCpu::new() }; MAX_CPUS];

/// CPU `cpu`'s block, if the number is below [`MAX_CPUS`].
pub fn get(cpu: usize) -> Option<&'static PerCpu> {
    PERCPU.get(cpu)
}

/// Point this CPU's GS base at block `cpu` and fill in its number.
///
/// # Panics
/// Never: a number of [`MAX_CPUS`] or more is clamped out by the callers (the
/// boot CPU passes 0, bring-up only numbers below `MAX_CPUS`); it is ignored here.
pub fn set_this_cpu(cpu: usize) {
    let Some(block) = PERCPU.get(cpu) else {
        return;
    };
    let addr = block as *const PerCpu as u64;
    block.self_addr.store(addr, Ordering::Relaxed);
    block.cpu.store(cpu, Ordering::Relaxed);
    x86_64::registers::model_specific::GsBase::write(x86_64::VirtAddr::new(addr));
}

/// The boot CPU's GS base, before anything else runs: CPU 0.
pub fn init_boot_cpu() {
    set_this_cpu(0);
}

/// The running CPU's logical number (0 on the boot CPU, also before SMP
/// bring-up): one `gs:`-relative load.
#[inline]
pub fn cpu_id() -> usize {
    let id: usize;
    // SAFETY: from `init_cpu` on (the boot CPU) and from the first line of an
    // AP's Rust entry, GS base points at this CPU's `PerCpu` block, whose `cpu`
    // field is at offset 8 (asserted above); the load has no side effect.
    unsafe {
        core::arch::asm!("mov {}, gs:[8]", out(reg) id, options(nostack, preserves_flags, readonly));
    }
    id
}

/// The running CPU's block (through GS, checked against the array).
pub fn this_cpu() -> &'static PerCpu {
    &PERCPU[cpu_id().min(MAX_CPUS - 1)]
}

/// The GS base this CPU has (read from the MSR: for tests and checks).
pub fn gs_base() -> u64 {
    x86_64::registers::model_specific::GsBase::read().as_u64()
}
