//! The GDT and TSS: kernel code/data segments, and a separate interrupt stack
//! (IST 0) for double faults, so a kernel stack overflow (a page fault on the
//! guard page that cannot push its frame) is reported instead of triple-faulting.
use core::cell::UnsafeCell;
use spin::LazyLock as Lazy;
use x86_64::VirtAddr;
use x86_64::instructions::segmentation::{CS, DS, ES, SS, Segment};
use x86_64::instructions::tables::load_tss;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;

/// IST slot of the double-fault handler's stack.
pub const DOUBLE_FAULT_IST_INDEX: u16 = 0;
const IST_STACK_SIZE: usize = 5 * 4096;

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
    GDT.0.load();
    let sel = &GDT.1;
    // SAFETY: the selectors index descriptors of the GDT just loaded (a 64-bit code
    // segment, a data segment, and the TSS that lives in a static for ever).
    unsafe {
        CS::set_reg(sel.code);
        SS::set_reg(sel.data);
        DS::set_reg(sel.data);
        ES::set_reg(sel.data);
        load_tss(sel.tss);
    }
}
