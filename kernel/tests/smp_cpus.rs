//! SMP on four vCPUs: every CPU online with its own number, GS base, APIC id,
//! stack, GDT and TSS; `on_each_cpu` runs on all of them at once; a kernel page
//! remapped to another frame is seen with the new frame on every CPU after the
//! TLB shootdown; a shootdown started from an AP while the others run with
//! interrupts disabled completes. The memory manager on four CPUs: each CPU
//! refills and uses its own page lists, a remote drain empties them all, and
//! `stress` runs on every CPU at once with blocks freed across CPUs and the
//! checker passing with the other CPUs stopped.
//! runner: --smp 4 --timeout 180
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(kernel::testing::test_runner)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use kernel::serial_print;
use kernel::smp::{self, percpu};

bootloader_api::entry_point!(main, config = &kernel::BOOTLOADER_CONFIG);

fn main(boot_info: &'static mut bootloader_api::BootInfo) -> ! {
    kernel::init_cpu();
    kernel::testing::init(boot_info);
    kernel::start_secondary_cpus();
    test_main();
    kernel::hlt_loop()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    kernel::testing::test_panic_handler(info)
}

const CPUS: usize = 4;

#[test_case]
fn four_cpus_online_in_madt_order() {
    assert_eq!(smp::nr_possible_cpus(), CPUS);
    assert_eq!(smp::online_cpus(), CPUS);
    for cpu in 0..CPUS {
        assert!(smp::is_online(cpu), "CPU {cpu} online");
        // QEMU numbers the APIC ids 0..3 in the MADT, the boot CPU first.
        assert_eq!(smp::apic_id(cpu), Some(cpu as u32));
        assert_eq!(smp::cpu_node(cpu), Some(0));
    }
    assert!(!smp::is_online(CPUS));
    assert_eq!(smp::apic_id(CPUS), None);
    let ticks = smp::bringup::BOOT_TICKS.load(Ordering::Relaxed);
    serial_print!(
        "[{} us per AP from INIT to online] ",
        kernel::tsc::ticks_to_us(ticks) / (CPUS as u64 - 1)
    );
}

/// What each CPU saw of itself.
#[derive(Clone, Copy, Default)]
struct Seen {
    cpu: u64,
    gs: u64,
    apic: u64,
    gdt: u64,
    tr: u64,
    rsp: u64,
}

static SEEN: [[AtomicU64; 6]; CPUS] = [const { [const { AtomicU64::new(u64::MAX) }; 6] }; CPUS];

fn sgdt_base() -> u64 {
    x86_64::instructions::tables::sgdt().base.as_u64()
}

fn record(cpu: usize, _arg: usize) {
    let rsp: u64;
    // SAFETY: reads the stack pointer into a register; no memory is touched.
    unsafe {
        core::arch::asm!("mov {}, rsp", out(reg) rsp, options(nomem, nostack, preserves_flags))
    };
    let tr: u16;
    // SAFETY: `str` stores the task register's selector; no memory is touched.
    unsafe { core::arch::asm!("str {0:x}", out(reg) tr, options(nomem, nostack, preserves_flags)) };
    let v = [
        smp::cpu_id() as u64,
        percpu::gs_base(),
        u64::from(smp::apic::id()),
        sgdt_base(),
        u64::from(tr),
        rsp,
    ];
    for (slot, value) in SEEN[cpu.min(CPUS - 1)].iter().zip(v) {
        slot.store(value, Ordering::SeqCst);
    }
}

fn seen(cpu: usize) -> Seen {
    let v: Vec<u64> = SEEN[cpu].iter().map(|a| a.load(Ordering::SeqCst)).collect();
    Seen {
        cpu: v[0],
        gs: v[1],
        apic: v[2],
        gdt: v[3],
        tr: v[4],
        rsp: v[5],
    }
}

/// The base of the TSS descriptor `tr` selects in the GDT at `gdt`.
fn tss_base(gdt: u64, tr: u64) -> u64 {
    let at = gdt + (tr & !7);
    // SAFETY: `gdt` is a live GDT (the one `sgdt` showed on that CPU: a static
    // or a leaked heap table) and `tr` the loaded TSS selector, whose 16-byte
    // system descriptor lies inside it; plain reads.
    let (lo, hi) = unsafe {
        (
            core::ptr::read(at as *const u64),
            core::ptr::read((at + 8) as *const u64),
        )
    };
    ((lo >> 16) & 0xff_ffff) | (((lo >> 56) & 0xff) << 24) | ((hi & 0xffff_ffff) << 32)
}

#[test_case]
fn each_cpu_has_its_number_gs_base_stack_gdt_and_tss() {
    smp::on_each_cpu(record, 0);
    let mut tss = Vec::new();
    let mut ist = Vec::new();
    for cpu in 0..CPUS {
        let s = seen(cpu);
        let pc = percpu::get(cpu).expect("block");
        assert_eq!(s.cpu, cpu as u64, "cpu_id() on CPU {cpu}");
        assert_eq!(
            s.gs, pc as *const percpu::PerCpu as u64,
            "GS base of CPU {cpu}"
        );
        assert_eq!(
            s.apic,
            u64::from(smp::apic_id(cpu).unwrap()),
            "APIC id of CPU {cpu}"
        );
        assert_eq!(s.gdt, pc.gdt.load(Ordering::Relaxed), "GDT of CPU {cpu}");
        assert_ne!(s.tr, 0, "TR loaded on CPU {cpu}");
        let base = tss_base(s.gdt, s.tr);
        assert_eq!(base, pc.tss.load(Ordering::Relaxed), "TSS of CPU {cpu}");
        tss.push(base);
        ist.push(kernel::gdt::ist_top_of(base));
        if cpu > 0 {
            let top = pc.stack_top.load(Ordering::Relaxed);
            let size = smp::bringup::AP_STACK_SIZE as u64;
            assert!(
                s.rsp < top && s.rsp > top - size,
                "CPU {cpu} runs on its own stack"
            );
            // Its lowest byte is mapped, the page below it (the guard) is not.
            assert!(kernel::paging::translate(top - size).is_some());
            let guard = top - size - smp::bringup::GUARD_SIZE as u64;
            assert_eq!(
                kernel::paging::translate(guard),
                None,
                "CPU {cpu}'s guard page at {guard:#x}"
            );
        }
    }
    for list in [&tss, &ist] {
        let mut sorted = list.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), CPUS, "distinct per CPU: {list:x?}");
    }
    assert!(ist.iter().all(|&t| t != 0));
}

static RAN: AtomicUsize = AtomicUsize::new(0);
static MASK: AtomicUsize = AtomicUsize::new(0);
static ARRIVED: AtomicUsize = AtomicUsize::new(0);
static TOGETHER: AtomicUsize = AtomicUsize::new(0);

/// Counts, and waits (bounded) until every CPU is inside the call: true only if
/// they all run it at the same time.
fn meet(cpu: usize, round: usize) {
    RAN.fetch_add(1, Ordering::SeqCst);
    MASK.fetch_or(1 << cpu, Ordering::SeqCst);
    ARRIVED.fetch_add(1, Ordering::SeqCst);
    let start = kernel::tsc::rdtsc();
    let target = CPUS * (round + 1);
    while ARRIVED.load(Ordering::SeqCst) < target {
        if kernel::tsc::rdtsc() - start > kernel::tsc::hz() {
            return;
        }
        core::hint::spin_loop();
    }
    TOGETHER.fetch_add(1, Ordering::SeqCst);
}

#[test_case]
fn on_each_cpu_runs_on_every_cpu_at_once() {
    let calls_before = smp::call::CALLS.load(Ordering::SeqCst);
    const ROUNDS: usize = 50;
    for round in 0..ROUNDS {
        MASK.store(0, Ordering::SeqCst);
        smp::on_each_cpu(meet, round);
        // Returned: every CPU has finished this round.
        assert_eq!(
            MASK.load(Ordering::SeqCst),
            (1 << CPUS) - 1,
            "round {round}"
        );
        assert_eq!(RAN.load(Ordering::SeqCst), CPUS * (round + 1));
    }
    assert_eq!(
        TOGETHER.load(Ordering::SeqCst),
        CPUS * ROUNDS,
        "all CPUs inside each call at once"
    );
    assert_eq!(
        smp::call::CALLS.load(Ordering::SeqCst),
        calls_before + ROUNDS
    );
}

/// A page-aligned heap page that is never freed, and its physical address.
fn heap_frame() -> (u64, u64) {
    let layout = core::alloc::Layout::from_size_align(4096, 4096).unwrap();
    // SAFETY: a non-zero-size layout; the page is leaked (never deallocated).
    let p = unsafe { alloc::alloc::alloc_zeroed(layout) };
    assert!(!p.is_null(), "heap page");
    let pa = kernel::paging::translate(p as u64).expect("heap is mapped");
    (p as u64, pa)
}

static VIRT: AtomicU64 = AtomicU64::new(0);
static READS: [AtomicU64; CPUS] = [const { AtomicU64::new(0) }; CPUS];

fn read_page(cpu: usize, _arg: usize) {
    // SAFETY: VIRT is the test's page, mapped (to one frame or the other) for
    // the whole test; a volatile read of its first word.
    let v = unsafe { core::ptr::read_volatile(VIRT.load(Ordering::SeqCst) as *const u64) };
    READS[cpu].store(v, Ordering::SeqCst);
}

fn all_read(expect: u64) -> bool {
    READS.iter().all(|r| r.load(Ordering::SeqCst) == expect)
}

#[test_case]
fn tlb_shootdown_makes_every_cpu_see_the_new_frame() {
    let (a_virt, a_pa) = heap_frame();
    let (b_virt, b_pa) = heap_frame();
    // SAFETY: both are our own leaked heap pages, mapped in the heap window.
    unsafe {
        core::ptr::write_volatile(a_virt as *mut u64, 0xaaaa_aaaa);
        core::ptr::write_volatile(b_virt as *mut u64, 0xbbbb_bbbb);
    }
    // A fresh virtual page in a window of its own, mapped to A.
    let window = kernel::paging::reserve_window(1).expect("window");
    // Page-table frames taken before: nothing may allocate under the paging lock.
    let mut spare: Vec<u64> = (0..4).map(|_| heap_frame().1).collect();
    let mut tables = || spare.pop();
    kernel::paging::map_pages(window, &[a_pa], &mut tables).expect("mapped");
    VIRT.store(window, Ordering::SeqCst);
    // Every CPU reads it (so every TLB holds the A translation).
    smp::on_each_cpu(read_page, 0);
    assert!(all_read(0xaaaa_aaaa), "everyone sees frame A");
    let shootdowns = smp::tlb::SHOOTDOWNS.load(Ordering::SeqCst);
    let old = kernel::paging::remap_page(window, b_pa).expect("remapped");
    assert_eq!(old, a_pa);
    assert_eq!(smp::tlb::SHOOTDOWNS.load(Ordering::SeqCst), shootdowns + 1);
    smp::on_each_cpu(read_page, 0);
    let reads: Vec<u64> = READS.iter().map(|r| r.load(Ordering::SeqCst)).collect();
    assert!(
        all_read(0xbbbb_bbbb),
        "every CPU sees frame B after the shootdown: {reads:x?}"
    );
    // Unmapped: gone for translation, and a second unmap is refused.
    kernel::paging::unmap_pages(window, 1).expect("unmapped");
    assert_eq!(kernel::paging::translate(window), None);
    assert_eq!(
        kernel::paging::unmap_pages(window, 1),
        Err(kernel::paging::UnmapError::NotMapped)
    );
    assert_eq!(
        kernel::paging::remap_page(window, a_pa),
        Err(kernel::paging::UnmapError::NotMapped)
    );
}

fn flush_from_cpu1(cpu: usize, _arg: usize) {
    if cpu == 1 {
        smp::flush_tlb_all();
    } else {
        // Busy with interrupts disabled while CPU 1 flushes: the NMI still lands.
        let start = kernel::tsc::rdtsc();
        while kernel::tsc::rdtsc() - start < kernel::tsc::hz() / 100 {
            core::hint::spin_loop();
        }
    }
}

#[test_case]
fn a_shootdown_from_an_ap_reaches_cpus_with_interrupts_disabled() {
    let before = smp::tlb::SHOOTDOWNS.load(Ordering::SeqCst);
    let nmis = smp::tlb::UNKNOWN_NMIS.load(Ordering::SeqCst);
    smp::on_each_cpu(flush_from_cpu1, 0);
    assert_eq!(smp::tlb::SHOOTDOWNS.load(Ordering::SeqCst), before + 1);
    assert_eq!(
        smp::tlb::UNKNOWN_NMIS.load(Ordering::SeqCst),
        nmis,
        "no stray NMI"
    );
    assert_eq!(kernel::interrupts::APIC_ERRORS.load(Ordering::SeqCst), 0);
}

/// Per CPU: the count of its DMA32 list after it allocated a page (`u64::MAX`: no
/// page), and the page.
static LIST_COUNT: [AtomicU64; CPUS] = [const { AtomicU64::new(u64::MAX) }; CPUS];
static PAGE: [AtomicU64; CPUS] = [const { AtomicU64::new(0) }; CPUS];

fn alloc_on(cpu: usize, _arg: usize) {
    kernel::memory::with_shared(|m| {
        let Some(pfn) = m.alloc_pages(mm::Gfp::DMA32, 0) else {
            return;
        };
        let zone = m.page(pfn).map(|p| (p.nid(), p.zone()));
        if let Some((nid, zid)) = zone
            && let Some((count, _, _)) = m.nodes()[nid].zone(zid).pageset_info(cpu)
        {
            LIST_COUNT[cpu].store(u64::from(count), Ordering::Relaxed);
        }
        PAGE[cpu].store(pfn, Ordering::Relaxed);
    });
}

fn free_on(cpu: usize, _arg: usize) {
    kernel::memory::with_shared(|m| {
        let _ = m.free_pages(PAGE[cpu].load(Ordering::Relaxed), 0);
    });
}

#[test_case]
fn each_cpu_refills_and_uses_its_own_page_list() {
    kernel::memory::with(|m| {
        m.drain_all_pages();
        assert_eq!(
            m.online_cpus(),
            CPUS,
            "the memory manager knows the online CPUs"
        );
    });
    smp::on_each_cpu(alloc_on, 0);
    let batch =
        kernel::memory::with_shared(|m| m.nodes()[0].zone(mm::ZoneId::Dma32).pageset_info(0))
            .flatten()
            .map(|(_, _, b)| u64::from(b))
            .unwrap();
    let mut pages = Vec::new();
    for cpu in 0..CPUS {
        // Its own refill of `batch` pages, less the one it took.
        assert_eq!(
            LIST_COUNT[cpu].load(Ordering::Relaxed),
            batch - 1,
            "CPU {cpu}'s list"
        );
        pages.push(PAGE[cpu].load(Ordering::Relaxed));
    }
    pages.sort_unstable();
    pages.dedup();
    assert_eq!(pages.len(), CPUS, "four different pages");
    smp::on_each_cpu(free_on, 0);
    kernel::memory::with(|m| {
        let zone = m.nodes()[0].zone(mm::ZoneId::Dma32);
        for cpu in 0..CPUS {
            let (count, _, _) = zone.pageset_info(cpu).unwrap();
            assert_eq!(
                u64::from(count),
                batch,
                "CPU {cpu} freed its page to its own list"
            );
        }
        // drain_all_pages empties every CPU's lists from here (a remote drain).
        assert_eq!(m.drain_all_pages(), CPUS as u64 * batch);
        assert_eq!(zone.pcp_count(), 0);
        m.check().unwrap();
    });
}

#[test_case]
fn stress_runs_on_every_cpu_and_the_check_passes() {
    let r = kernel::stress_smp::run_all(20_000, 0x5eed).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.cpus, CPUS);
    assert_eq!(r.ops, CPUS as u64 * 20_000);
    assert!(r.per_cpu.iter().all(|c| c.allocs > 0 && c.frees > 0));
    assert!(
        r.remote_frees > 0,
        "blocks freed on another CPU than their allocator's"
    );
    assert_eq!(r.free_after, r.free_before);
    serial_print!(
        "[{} operations, {} cycles per operation, {} remote frees] ",
        r.ops,
        r.busy_cycles / r.ops,
        r.remote_frees
    );
}
