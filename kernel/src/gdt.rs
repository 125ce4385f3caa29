//! The GDT and TSS: kernel code/data segments, and a separate interrupt stack
//! (IST 0) for double faults, so a kernel stack overflow (a page fault on the
//! guard page that cannot push its frame) is reported instead of triple-faulting.
//!
//! The boot CPU's GDT and TSS are statics; each application processor gets its
//! own ([`new_cpu_tables`]: GDT and TSS on the heap, the double-fault stack in
//! the stack window of kstack.rs, kept for ever), since a TSS is busy on the CPU
//! that loaded it.
use alloc::vec::Vec;
use core::cell::UnsafeCell;
use spin::LazyLock as Lazy;
use x86_64::VirtAddr;
use x86_64::instructions::segmentation::{CS, DS, ES, SS, Segment};
use x86_64::instructions::tables::load_tss;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;

/// IST slot of the double-fault handler's stack.
pub const DOUBLE_FAULT_IST_INDEX: u16 = 0;
/// Bytes of each double-fault stack.
pub const IST_STACK_SIZE: usize = 5 * 4096;

/// The double-fault stack, 16-byte aligned. Only its address is used (the CPU
/// writes to it); the `UnsafeCell` puts it in writable memory without a
/// `static mut`.
#[repr(align(16))]
struct IstStack(UnsafeCell<[u8; IST_STACK_SIZE]>);

// SAFETY: no Rust code reads or writes the stack through this static; only its
// address goes to the TSS, and the CPU uses it for double faults alone.
unsafe impl Sync for IstStack {}

static DOUBLE_FAULT_STACK: IstStack = IstStack(UnsafeCell::new([0; IST_STACK_SIZE]));

static TSS: Lazy<TaskStateSegment> = Lazy::new(|| {
    let mut tss = TaskStateSegment::new();
    let start = VirtAddr::from_ptr(DOUBLE_FAULT_STACK.0.get());
    // Stacks grow down: the IST entry is the end of the array.
    tss.interrupt_stack_table[DOUBLE_FAULT_IST_INDEX as usize] = start + IST_STACK_SIZE as u64;
    tss
});

struct Selectors {
    code: SegmentSelector,
    data: SegmentSelector,
    tss: SegmentSelector,
}

static GDT: Lazy<(GlobalDescriptorTable, Selectors)> = Lazy::new(|| {
    let mut gdt = GlobalDescriptorTable::new();
    let code = gdt.append(Descriptor::kernel_code_segment());
    let data = gdt.append(Descriptor::kernel_data_segment());
    let tss = gdt.append(Descriptor::tss_segment(&TSS));
    (gdt, Selectors { code, data, tss })
});

/// Load the GDT, reload the segment registers and the task register.
pub fn init() {
    load(&GDT.0, &GDT.1);
}

/// Load `gdt` on this CPU, then its segments and its TSS.
fn load(gdt: &'static GlobalDescriptorTable, sel: &Selectors) {
    gdt.load();
    // SAFETY: the selectors index descriptors of the GDT just loaded (a 64-bit code
    // segment, a data segment, and a TSS that lives for ever and is loaded on this
    // CPU only: the boot CPU's static one, or an AP's own).
    unsafe {
        CS::set_reg(sel.code);
        SS::set_reg(sel.data);
        DS::set_reg(sel.data);
        ES::set_reg(sel.data);
        load_tss(sel.tss);
    }
}

/// The boot CPU's GDT (its address, as `sgdt` shows it).
pub fn boot_gdt_addr() -> u64 {
    &GDT.0 as *const GlobalDescriptorTable as u64
}

/// The boot CPU's TSS.
pub fn boot_tss_addr() -> u64 {
    &*TSS as *const TaskStateSegment as u64
}

/// One application processor's GDT, TSS and double-fault stack.
pub struct CpuTables {
    gdt: GlobalDescriptorTable,
    sel: Selectors,
    tss: &'static TaskStateSegment,
}

/// Move `v` to the heap for ever, or say there is no memory (never a panic).
fn leak<T>(v: T) -> Result<&'static mut T, &'static str> {
    let mut b: Vec<T> = Vec::new();
    b.try_reserve_exact(1)
        .map_err(|_| "out of memory for the CPU's GDT/TSS")?;
    b.push(v);
    Ok(&mut b.leak()[0])
}

/// GDT, TSS and a double-fault IST stack for another CPU.
pub fn new_cpu_tables() -> Result<&'static CpuTables, &'static str> {
    // Above a guard page of its own, as Linux's IST stacks in the cpu_entry_area.
    let top = crate::kstack::alloc(IST_STACK_SIZE)?;
    let mut tss = TaskStateSegment::new();
    tss.interrupt_stack_table[DOUBLE_FAULT_IST_INDEX as usize] = VirtAddr::new(top);
    let tss: &'static TaskStateSegment = leak(tss)?;
    let mut gdt = GlobalDescriptorTable::new();
    let code = gdt.append(Descriptor::kernel_code_segment());
    let data = gdt.append(Descriptor::kernel_data_segment());
    let tss_sel = gdt.append(Descriptor::tss_segment(tss));
    let t = leak(CpuTables {
        gdt,
        sel: Selectors {
            code,
            data,
            tss: tss_sel,
        },
        tss,
    })?;
    Ok(t)
}

impl CpuTables {
    /// Load them on the running CPU (an AP, once, at start-up).
    pub fn load(&'static self) {
        load(&self.gdt, &self.sel);
    }

    /// The GDT's address.
    pub fn gdt_addr(&self) -> u64 {
        &self.gdt as *const GlobalDescriptorTable as u64
    }

    /// The TSS's address.
    pub fn tss_addr(&self) -> u64 {
        self.tss as *const TaskStateSegment as u64
    }

    /// The top of the double-fault stack.
    pub fn ist_top(&self) -> u64 {
        self.tss.interrupt_stack_table[DOUBLE_FAULT_IST_INDEX as usize].as_u64()
    }
}

/// The double-fault stack top in the TSS at `tss` (a TSS this module made).
pub fn ist_top_of(tss: u64) -> u64 {
    if tss == boot_tss_addr() {
        return TSS.interrupt_stack_table[DOUBLE_FAULT_IST_INDEX as usize].as_u64();
    }
    // SAFETY: `tss` is the address of a TSS this module leaked (the callers pass
    // what PerCpu recorded from `tss_addr`), valid for ever and never written
    // after creation.
    unsafe {
        (*(tss as *const TaskStateSegment)).interrupt_stack_table[DOUBLE_FAULT_IST_INDEX as usize]
            .as_u64()
    }
}
