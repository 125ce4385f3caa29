//! The real-mode trampoline an application processor starts in after INIT-SIPI-SIPI:
//! 16-bit real mode at `page << 12` → 32-bit protected mode (flat GDT of its own)
//! → long mode with a page table of its own (the kernel's level-4 entries plus an
//! identity mapping of its own code page, so the instructions right after `CR0.PG`
//! can be fetched) → a jump to [`ap_long_entry`] in the kernel's text, which loads the
//! kernel's CR3 and calls the Rust entry on the AP's own stack.
//!
//! The blob is position independent: its 16-bit code derives its physical base
//! from CS, and the few absolute addresses it needs (GDT base, far-jump targets)
//! are patched in by [`install`] when the blob is copied to the low pages that
//! [`super::reserve_trampoline`] reserved in memblock.
use core::sync::atomic::{AtomicU64, Ordering};
use x86_64::structures::paging::{PageTable, PageTableFlags};

/// Bytes reserved below 1 MiB: the code page, then the trampoline's PML4, PDPT,
/// PD and PT (the kernel's tables for virtual 0-2 MiB, copied, plus the code
/// page identity mapped).
pub const TRAMPOLINE_SIZE: u64 = 5 * 4096;

/// Physical address of the reserved trampoline pages (0: not reserved).
pub static TRAMPOLINE_PA: AtomicU64 = AtomicU64::new(0);

core::arch::global_asm!(
    r#"
    .section .text.zoned_trampoline, "ax"
    .balign 4096
    .global zoned_tr_start
zoned_tr_start:
    .code16
    cli
    cld
    mov %cs, %ax
    mov %ax, %ds
    xor %ebx, %ebx
    mov %cs, %bx
    shl $4, %ebx
    lgdtl (zoned_tr_gdtr - zoned_tr_start)
    mov %cr0, %eax
    or $1, %eax
    mov %eax, %cr0
    ljmpl *(zoned_tr_far32 - zoned_tr_start)

    .code32
zoned_tr_start32:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov %ax, %fs
    mov %ax, %gs
    mov (zoned_tr_cr4 - zoned_tr_start)(%ebx), %eax
    mov %eax, %cr4
    mov (zoned_tr_pml4 - zoned_tr_start)(%ebx), %eax
    mov %eax, %cr3
    mov $0xc0000080, %ecx
    mov (zoned_tr_efer - zoned_tr_start)(%ebx), %eax
    xor %edx, %edx
    wrmsr
    mov (zoned_tr_cr0 - zoned_tr_start)(%ebx), %eax
    mov %eax, %cr0
    ljmp *(zoned_tr_far64 - zoned_tr_start)(%ebx)

    .code64
zoned_tr_start64:
    mov %ebx, %ebx
    mov (zoned_tr_stack - zoned_tr_start)(%rbx), %rsp
    mov (zoned_tr_cpu - zoned_tr_start)(%rbx), %rdi
    mov (zoned_tr_kernel_cr3 - zoned_tr_start)(%rbx), %rax
    mov (zoned_tr_entry - zoned_tr_start)(%rbx), %rcx
    jmp *%rcx

    .balign 16
zoned_tr_gdt:
    .quad 0
    .quad 0x00cf9a000000ffff
    .quad 0x00cf92000000ffff
    .quad 0x00af9a000000ffff
    .global zoned_tr_gdtr
zoned_tr_gdtr:
    .word 31
    .long 0
    .balign 8
    .global zoned_tr_far32
zoned_tr_far32:
    .long 0
    .word 0x08
    .balign 8
    .global zoned_tr_far64
zoned_tr_far64:
    .long 0
    .word 0x18
    .balign 8
    .global zoned_tr_params
zoned_tr_params:
zoned_tr_pml4: .quad 0
zoned_tr_cr0: .quad 0
zoned_tr_cr4: .quad 0
zoned_tr_efer: .quad 0
zoned_tr_entry: .quad 0
zoned_tr_kernel_cr3: .quad 0
zoned_tr_stack: .quad 0
zoned_tr_cpu: .quad 0
    .global zoned_tr_end
zoned_tr_end:

    .global zoned_tr_gdt_sym
    .set zoned_tr_gdt_sym, zoned_tr_gdt
    .global zoned_tr_start32_sym
    .set zoned_tr_start32_sym, zoned_tr_start32
    .global zoned_tr_start64_sym
    .set zoned_tr_start64_sym, zoned_tr_start64

    .text
    .code64
    .global zoned_ap_long_entry
zoned_ap_long_entry:
    mov %rax, %cr3
    xor %ebp, %ebp
    call {main}
    ud2
"#,
    main = sym super::bringup::ap_main,
    options(att_syntax)
);

unsafe extern "C" {
    static zoned_tr_start: u8;
    static zoned_tr_end: u8;
    static zoned_tr_gdtr: u8;
    static zoned_tr_far32: u8;
    static zoned_tr_far64: u8;
    static zoned_tr_params: u8;
    static zoned_tr_gdt_sym: u8;
    static zoned_tr_start32_sym: u8;
    static zoned_tr_start64_sym: u8;
    static zoned_ap_long_entry: u8;
}

/// The parameters block at the end of the blob, in its order.
#[repr(C)]
struct Params {
    pml4: u64,
    cr0: u64,
    cr4: u64,
    efer: u64,
    entry: u64,
    kernel_cr3: u64,
    stack: u64,
    cpu: u64,
}

fn addr(p: *const u8) -> u64 {
    p as u64
}

/// Offset of a blob symbol from its start.
fn off(sym: *const u8) -> u64 {
    addr(sym) - addr(&raw const zoned_tr_start)
}

/// Where the blob and its tables were installed.
pub struct Installed {
    /// Physical base (page aligned, below 1 MiB): the SIPI vector is `base >> 12`.
    pub base: u64,
    /// Virtual address of the same, through the physical mapping.
    virt: u64,
}

/// CR4 bits that cannot be set outside long mode (PCIDE) are left to the kernel.
const CR4_PCIDE: u64 = 1 << 17;
/// EFER.LMA is set by the CPU, not written.
const EFER_LMA: u64 = 1 << 10;

/// Copy the blob to the reserved pages, build its page tables from the running
/// kernel's, and fill in everything but the per-AP stack and number.
pub fn install(phys_to_virt: impl Fn(u64, u64) -> Option<u64>) -> Result<Installed, &'static str> {
    let base = TRAMPOLINE_PA.load(Ordering::Relaxed);
    if base == 0 {
        return Err(
            "no trampoline page reserved below 1 MiB (smp::reserve_trampoline was not called)",
        );
    }
    let len = off(&raw const zoned_tr_end);
    if len > 4096 || addr(&raw const zoned_tr_start) % 4096 != 0 {
        return Err("the trampoline blob does not fit one page");
    }
    let virt = phys_to_virt(base, TRAMPOLINE_SIZE).ok_or("the trampoline pages are not mapped")?;
    let (kernel_l4, _) = x86_64::registers::control::Cr3::read();
    let kernel_cr3 = kernel_l4.start_address().as_u64();
    // The destination is the first of the pages memblock reserved for the
    // trampoline (never handed to the buddy allocator, so no one else uses them).
    // SAFETY: the blob is `len` bytes of kernel text (at most a page) between the
    // two symbols; the destination, mapped at `virt`, does not overlap it.
    unsafe {
        core::ptr::copy_nonoverlapping(&raw const zoned_tr_start, virt as *mut u8, len as usize);
    }
    let patch32 = |sym: *const u8, value: u64| {
        // SAFETY: `sym` is a field of the blob, so `virt + off(sym)` lies in the
        // page just written; the fields are 4-byte aligned `.long`s, written once
        // before any AP runs the code.
        unsafe { core::ptr::write_unaligned((virt + off(sym)) as *mut u32, value as u32) }
    };
    patch32(
        (addr(&raw const zoned_tr_gdtr) + 2) as *const u8,
        base + off(&raw const zoned_tr_gdt_sym),
    );
    patch32(
        &raw const zoned_tr_far32,
        base + off(&raw const zoned_tr_start32_sym),
    );
    patch32(
        &raw const zoned_tr_far64,
        base + off(&raw const zoned_tr_start64_sym),
    );

    // Page tables: PML4 at base + 4K, PDPT at +8K, PD at +12K, PT at +16K.
    let (pml4_pa, pdpt_pa, pd_pa, pt_pa) = (base + 4096, base + 8192, base + 12288, base + 16384);
    let table = |pa: u64| -> *mut PageTable { (virt + (pa - base)) as *mut PageTable };
    let kernel_table = |pa: u64| -> Result<&PageTable, &'static str> {
        let v = phys_to_virt(pa, 4096).ok_or("a kernel page table is not mapped")?;
        // SAFETY: `v` maps a page table of the running kernel (named by a present,
        // non-huge entry of the level above); it is only read here, by the boot
        // CPU, before any AP runs.
        Ok(unsafe { &*(v as *const PageTable) })
    };
    let huge = PageTableFlags::HUGE_PAGE;
    let kl4 = kernel_table(kernel_cr3)?;
    let kl3 = if kl4[0].is_unused() {
        None
    } else if kl4[0].flags().contains(huge) {
        return Err("the kernel's PML4 slot 0 has the huge bit set");
    } else {
        Some(kernel_table(kl4[0].addr().as_u64())?)
    };
    let kl2 = match kl3 {
        Some(t) if !t[0].is_unused() => {
            if t[0].flags().contains(huge) {
                return Err("the kernel maps virtual 0-1 GiB with a 1 GiB page");
            }
            Some(kernel_table(t[0].addr().as_u64())?)
        }
        _ => None,
    };
    // What the kernel maps at virtual 0-2 MiB: a page table (copied), a 2 MiB
    // page (split into 4 KiB entries) or nothing.
    let kl1 = match kl2 {
        Some(t) if !t[0].is_unused() && !t[0].flags().contains(huge) => {
            Some(kernel_table(t[0].addr().as_u64())?)
        }
        _ => None,
    };
    let huge0 =
        kl2.and_then(|t| (!t[0].is_unused() && t[0].flags().contains(huge)).then(|| t[0].clone()));
    let rw = PageTableFlags::PRESENT | PageTableFlags::WRITABLE;
    // SAFETY: the four destination tables are our reserved pages (page aligned,
    // used by nothing else until an AP starts); entries are plain u64 values.
    unsafe {
        let (l4, l3, l2, l1) = (
            &mut *table(pml4_pa),
            &mut *table(pdpt_pa),
            &mut *table(pd_pa),
            &mut *table(pt_pa),
        );
        *l4 = kl4.clone();
        match kl3 {
            Some(t) => *l3 = t.clone(),
            None => l3.zero(),
        }
        match kl2 {
            Some(t) => *l2 = t.clone(),
            None => l2.zero(),
        }
        match (kl1, &huge0) {
            (Some(t), _) => *l1 = t.clone(),
            (None, Some(e)) => {
                let flags = e.flags() - huge;
                for (i, entry) in l1.iter_mut().enumerate() {
                    entry.set_addr(e.addr() + (i as u64) * 4096, flags);
                }
            }
            (None, None) => l1.zero(),
        }
        // The code page, identity mapped and executable.
        l1[(base >> 12) as usize & 511].set_addr(x86_64::PhysAddr::new(base), rw);
        l2[0].set_addr(x86_64::PhysAddr::new(pt_pa), rw);
        l3[0].set_addr(x86_64::PhysAddr::new(pd_pa), rw);
        l4[0].set_addr(x86_64::PhysAddr::new(pdpt_pa), rw);
    }
    let cr0 = x86_64::registers::control::Cr0::read_raw();
    let cr4 = x86_64::registers::control::Cr4::read_raw() & !CR4_PCIDE;
    let efer = x86_64::registers::model_specific::Efer::read_raw() & !EFER_LMA;
    if cr0 >> 32 != 0 || cr4 >> 32 != 0 || efer >> 32 != 0 || pml4_pa >> 32 != 0 {
        return Err("CR0, CR4 or EFER has bits a 32-bit trampoline cannot load");
    }
    let params = Params {
        pml4: pml4_pa,
        cr0,
        cr4,
        efer,
        entry: addr(&raw const zoned_ap_long_entry),
        kernel_cr3,
        stack: 0,
        cpu: 0,
    };
    // SAFETY: the params block is the blob's last 64 bytes (8-aligned `.quad`s),
    // inside the page written above.
    unsafe {
        core::ptr::write_unaligned(
            (virt + off(&raw const zoned_tr_params)) as *mut Params,
            params,
        )
    };
    Ok(Installed { base, virt })
}

impl Installed {
    /// Set the stack and CPU number the next AP starts with.
    pub fn set_ap(&self, stack_top: u64, cpu: usize) {
        let p = (self.virt + off(&raw const zoned_tr_params)) as *mut Params;
        // SAFETY: the params block lies in the installed page; only the boot CPU
        // writes it, between two AP start-ups (the previous AP has finished with it:
        // it is online, or it was given up and INIT-ed).
        unsafe {
            core::ptr::write_volatile(&raw mut (*p).stack, stack_top);
            core::ptr::write_volatile(&raw mut (*p).cpu, cpu as u64);
        }
    }

    /// The SIPI vector (the start page number).
    pub fn vector(&self) -> u8 {
        (self.base >> 12) as u8
    }
}
