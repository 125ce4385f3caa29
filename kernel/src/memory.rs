//! The memory manager inside the kernel: the hardware-free `mm::Machine` (with
//! one `PgData` per NUMA node) behind a reader-writer lock, and `KernelPlatform`,
//! the glue it reaches the machine through (struct page storage through the
//! bootloader's physical mapping, device and hot-added ranges mapped by our page
//! tables, zeroing frames, the running CPU's number).
//!
//! Allocation, free and the views share the machine ([`with_shared`]: any number
//! of CPUs at once; the allocator's per-CPU lists and zone locks do the rest).
//! Hotplug, memremap and the invariant checker hold it exclusively ([`with`]),
//! Linux's `mem_hotplug_lock`: taking it waits until no CPU is inside the
//! allocator, which is the quiescent state the checker needs.
//!
//! Page-table frames needed while the node is busy (memremap, hotplug) come from a
//! pool filled from the buddy allocator just before the call, so mapping never has
//! to re-enter the locked allocator.
//!
//! # Lock order
//!
//! A lock taken twice on one CPU, or two locks taken in opposite orders by code
//! and by what it calls (or by two CPUs), is a hang. Locks are taken in this order
//! and never the other way round:
//!
//! 1. [`boot::DISCOVERY`] (firmware's view: e820, pmem, iomem) before
//! 2. [`MM`] (the memory manager; inside it the allocator's pageset lock, then a
//!    zone lock, with interrupts off) before
//! 3. the record of handed-out memmap storage (taken inside `memmap_storage`),
//! 4. the heap's locks (`HEAP`, then its frame sources), which only *try* [`MM`]
//!    for frames and never wait for it,
//! 5. `paging`'s page-table lock (nothing allocates under it),
//! 6. the log ring, and the console (COM1, and inside it the printer queue of
//!    console_printer.rs), innermost: anything may log.
//!
//! `hotplug_scan` holds DISCOVERY while it asks MM about known ranges: code that
//! holds MM must therefore never take DISCOVERY. Interrupt handlers that return
//! (COM1, breakpoint) take no lock at all or only try one (see `interrupts`).
//! [`MM`] is taken with interrupts enabled (a CPU waiting for it still answers
//! IPIs) and held with them disabled for shared use, so an interrupt handler's
//! heap growth (which only tries [`MM`]) can never meet this CPU's pageset lock
//! held by the code it interrupted.
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt::Write;
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use firmware::iomem::{Resource, ResourceKind};
use firmware::range::PhysRange;
use mm::memmap_work::MemmapWork;
use mm::{Gfp, Machine, Memblock, MemremapOptions, Page, PgData, Platform, Topology};
use spin::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use mm::sparse::pfn_to_section_nr;

use crate::discovery::Discovery;
use crate::{boot, heap, kimage, memhp, paging, pmem};

/// Cycles and struct pages of the boot-time memmap set-up (for `bench`).
static BOOT_MEMMAP_CYCLES: AtomicU64 = AtomicU64::new(0);
static BOOT_MEMMAP_PAGES: AtomicU64 = AtomicU64::new(0);

/// TSC cycles and struct pages of the boot-time memmap, zones and buddy set-up.
pub fn boot_memmap_cost() -> (u64, u64) {
    (
        BOOT_MEMMAP_CYCLES.load(Ordering::Relaxed),
        BOOT_MEMMAP_PAGES.load(Ordering::Relaxed),
    )
}

/// Struct pages handed out at boot for idle CPUs to write while the boot goes on
/// ([`background_work`]), in order: the boot sections', then the deferred ones, until
/// [`late_init`] takes them back.
static BACKGROUND: Mutex<Vec<Arc<MemmapWork>>> = Mutex::new(Vec::new());
/// Whether [`BACKGROUND`] holds work not all taken (read by polling CPUs).
static BACKGROUND_WAITING: AtomicBool = AtomicBool::new(false);

/// An idle CPU's share of the boot: write struct pages (mm's `MemmapWork`) until
/// none is left or `stop` says this CPU has something else to do. A CPU polling for
/// work during the boot calls it (smp's idle loop): with two CPUs the AP starts on
/// them while the boot CPU writes the node data, builds the zones and logs.
pub fn background_work(stop: &dyn Fn() -> bool) {
    if !BACKGROUND_WAITING.load(Ordering::Acquire) {
        return;
    }
    // Each work once, in order (one whose items are all taken, some still being
    // written by another CPU, is passed over).
    for i in 0.. {
        if stop() {
            return;
        }
        // The lock is not held while the work runs: the boot CPU hands out the next
        // one meanwhile.
        let work = {
            let Some(works) = BACKGROUND.try_lock() else {
                return;
            };
            let Some(w) = works.get(i) else {
                // Under the lock, so a work handed out now sets the flag again after.
                if works.iter().all(|w| w.left() == 0) {
                    BACKGROUND_WAITING.store(false, Ordering::Release);
                }
                return;
            };
            w.clone()
        };
        work.run(crate::smp::cpu_id(), stop);
    }
}

/// The kernel's side of `mm::Platform`.
pub struct KernelPlatform {
    /// Frames for page tables of the next mapping.
    pt_pool: Vec<u64>,
}

/// Physical ranges `[start, end)` handed out as struct-page storage, sorted and
/// disjoint, adjacent ranges merged. Global (not per `KernelPlatform`): the
/// slices are `'static`, so no storage may ever be handed out twice, whoever asks.
static MEMMAP_HANDED_OUT: Mutex<Vec<(u64, u64)>> = Mutex::new(Vec::new());

/// Why storage was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageError {
    /// `[pa, pa + bytes)` wraps or is empty.
    BadRange,
    /// It overlaps storage handed out before.
    Overlap,
    /// No memory to record it.
    NoMemory,
}

/// Record `[pa, pa + bytes)` as handed out, unless it overlaps what was.
fn claim_storage(ranges: &mut Vec<(u64, u64)>, pa: u64, bytes: u64) -> Result<(), StorageError> {
    let end = pa
        .checked_add(bytes)
        .filter(|_| bytes > 0)
        .ok_or(StorageError::BadRange)?;
    // The first recorded range that ends after pa: the only one that can overlap
    // [pa, end) (the ranges are sorted and disjoint), and the only one that can
    // touch it from the right; the one before it may touch it from the left.
    let i = ranges.partition_point(|&(_, e)| e <= pa);
    if let Some(&(s, _)) = ranges.get(i)
        && s < end
    {
        return Err(StorageError::Overlap);
    }
    if ranges.try_reserve(1).is_err() {
        return Err(StorageError::NoMemory);
    }
    let joins_left = i > 0 && ranges[i - 1].1 == pa;
    let joins_right = ranges.get(i).is_some_and(|&(s, _)| s == end);
    match (joins_left, joins_right) {
        (true, true) => {
            ranges[i - 1].1 = ranges[i].1;
            ranges.remove(i);
        }
        (true, false) => ranges[i - 1].1 = end,
        (false, true) => ranges[i].0 = pa,
        (false, false) => ranges.insert(i, (pa, end)),
    }
    Ok(())
}

/// Forget `[pa, pa + bytes)` from the handed-out ranges (storage given back). When
/// cutting a range in two needs memory there is none of, the storage simply stays
/// recorded (it is never handed out again: a later request for it is refused).
fn unclaim_storage(ranges: &mut Vec<(u64, u64)>, pa: u64, bytes: u64) {
    let end = pa.saturating_add(bytes);
    let i = ranges.partition_point(|&(_, e)| e <= pa);
    let Some(&(s, e)) = ranges.get(i) else {
        return;
    };
    if s >= end {
        return;
    }
    match (s < pa, end < e) {
        (false, false) => {
            ranges.remove(i);
        }
        (true, false) => ranges[i].1 = pa,
        (false, true) => ranges[i].0 = end,
        (true, true) => {
            if ranges.try_reserve(1).is_err() {
                log::warn!("memmap storage [{pa:#x}-{:#x}] not reusable", end - 1);
                return;
            }
            ranges[i].1 = pa;
            ranges.insert(i + 1, (end, e));
        }
    }
}

fn map_err(e: paging::MapError) -> mm::MapError {
    match e {
        paging::MapError::OutOfFrames => mm::MapError::OutOfMemory,
        paging::MapError::AlreadyMapped => mm::MapError::Other("range already mapped"),
        paging::MapError::NoVirtualSpace => mm::MapError::Other("no free kernel virtual window"),
        paging::MapError::NotReady => mm::MapError::Other("paging not initialised"),
    }
}

impl KernelPlatform {
    fn map(&mut self, start: u64, len: u64) -> Result<(), mm::MapError> {
        let pool = &mut self.pt_pool;
        paging::map_device(start, len, &mut || pool.pop())
            .map(|_| ())
            .map_err(map_err)
    }
}

impl Platform for KernelPlatform {
    fn memmap_storage(
        &mut self,
        pa: u64,
        count: usize,
    ) -> Result<&'static mut [Page], mm::MapError> {
        let bytes = count
            .checked_mul(size_of::<Page>())
            .ok_or(mm::MapError::BadAddress)? as u64;
        let virt = paging::phys_to_virt(pa, bytes).ok_or(mm::MapError::BadAddress)?;
        if virt % align_of::<Page>() as u64 != 0 {
            return Err(mm::MapError::BadAddress);
        }
        // Platform's contract says mm never asks twice for the same storage; this
        // safe method does not rely on it: overlapping requests are refused.
        claim_storage(&mut MEMMAP_HANDED_OUT.lock(), pa, bytes).map_err(|e| match e {
            StorageError::NoMemory => mm::MapError::OutOfMemory,
            StorageError::BadRange => mm::MapError::BadAddress,
            StorageError::Overlap => mm::MapError::Other("memmap storage handed out twice"),
        })?;
        // [virt, virt + bytes) maps physical memory the memory manager owns from now
        // on (memblock or buddy RAM, or the first pages of a range it just mapped),
        // and claim_storage just checked that no byte of it was handed out before.
        // Its bytes are whatever the RAM holds (outside every Rust allocation); it is
        // not cleared, since mm writes every struct page before reading it (clearing
        // was most of the boot time under TCG). The mapping lives for ever.
        // SAFETY: so no other slice aliases it, and every bit pattern is a valid Page
        // (mm's Page is integers and integer atomics).
        Ok(unsafe { core::slice::from_raw_parts_mut(virt as *mut Page, count) })
    }

    fn node_data_storage(
        &mut self,
        pa: u64,
    ) -> Result<&'static mut MaybeUninit<PgData>, mm::MapError> {
        let bytes = size_of::<PgData>() as u64;
        let virt = paging::phys_to_virt(pa, bytes).ok_or(mm::MapError::BadAddress)?;
        if virt % align_of::<PgData>() as u64 != 0 {
            return Err(mm::MapError::BadAddress);
        }
        claim_storage(&mut MEMMAP_HANDED_OUT.lock(), pa, bytes).map_err(|e| match e {
            StorageError::NoMemory => mm::MapError::OutOfMemory,
            StorageError::BadRange => mm::MapError::BadAddress,
            StorageError::Overlap => mm::MapError::Other("node data storage handed out twice"),
        })?;
        // The range is RAM memblock reserved for this (never freed to the buddy
        // allocator), mapped for ever, and aligned for PgData (checked above).
        // SAFETY: claim_storage proved no byte was handed out before (no alias), and
        // MaybeUninit<PgData> has no validity requirement (mm writes it before use).
        Ok(unsafe { &mut *(virt as *mut MaybeUninit<PgData>) })
    }

    fn map_device(&mut self, start: u64, len: u64) -> Result<(), mm::MapError> {
        self.map(start, len)
    }

    fn map_ram(&mut self, start: u64, len: u64) -> Result<(), mm::MapError> {
        self.map(start, len)
    }

    fn unmap_range(&mut self, start: u64, len: u64) -> Result<(), mm::MapError> {
        paging::unmap_device(start, len).map_err(|e| match e {
            paging::UnmapError::NotReady => mm::MapError::Other("paging not initialised"),
            paging::UnmapError::NotMapped => mm::MapError::Other("range not mapped as made"),
        })
    }

    fn release_memmap_storage(&mut self, pa: u64, pages: &'static mut [Page]) {
        let bytes = core::mem::size_of_val(pages) as u64;
        unclaim_storage(&mut MEMMAP_HANDED_OUT.lock(), pa, bytes);
    }

    fn this_cpu(&self) -> usize {
        crate::smp::cpu_id()
    }

    fn start_background(&mut self, work: Arc<MemmapWork>) {
        BACKGROUND.lock().push(work);
        BACKGROUND_WAITING.store(true, Ordering::Release);
    }

    fn parallel(&self, work: &(dyn Fn(usize) + Sync)) {
        /// Runs the work whose `&&dyn Fn` address `arg` is, on each CPU.
        fn run(cpu: usize, arg: usize) {
            // `arg` is the address of `work` below, which lives until `parallel`
            // returns, and on_each_cpu returns only once every CPU has returned here.
            // SAFETY: so the reference is live; the closure is Sync, so several CPUs
            // may call it at once.
            let work = unsafe { &*(arg as *const &(dyn Fn(usize) + Sync)) };
            work(cpu);
        }
        crate::smp::on_each_cpu(run, &raw const work as usize);
    }

    fn copy_pages(&self, src_pfn: u64, dst_pfn: u64, count: u64) {
        let len = mm::pfn_phys(count);
        let (Some(src), Some(dst)) = (
            paging::phys_to_virt(mm::pfn_phys(src_pfn), len),
            paging::phys_to_virt(mm::pfn_phys(dst_pfn), len),
        ) else {
            log::error!("migration: pfn {src_pfn:#x} or {dst_pfn:#x} is not mapped");
            return;
        };
        // Both blocks are RAM the memory manager holds while it migrates (the source
        // still its owner's, the destination just allocated), mapped, and distinct
        // blocks of the buddy allocator, so the ranges do not overlap.
        // SAFETY: so both are valid for `len` bytes and nothing else writes them now.
        unsafe { core::ptr::copy_nonoverlapping(src as *const u8, dst as *mut u8, len as usize) };
    }

    fn zero_pages(&self, pfn: u64, count: u64) {
        let (pa, len) = (mm::pfn_phys(pfn), mm::pfn_phys(count));
        if let Some(virt) = paging::phys_to_virt(pa, len) {
            // SAFETY: the frames were just allocated by the caller, so nothing else
            // uses them; they are mapped (RAM inside the physical mapping).
            unsafe { core::ptr::write_bytes(virt as *mut u8, 0, len as usize) };
        }
    }
}

/// The memory manager: the machine and its NUMA nodes (see the module comment for
/// who shares it and who holds it alone).
pub static MM: RwLock<Option<Machine<KernelPlatform>>> = RwLock::new(None);

/// The memory manager held exclusively: waits (with interrupts enabled) until no
/// CPU uses it.
pub fn lock() -> RwLockWriteGuard<'static, Option<Machine<KernelPlatform>>> {
    loop {
        if let Some(g) = MM.try_write() {
            return g;
        }
        core::hint::spin_loop();
    }
}

/// Run `f` on the memory manager held exclusively, if it is up.
pub fn with<R>(f: impl FnOnce(&mut Machine<KernelPlatform>) -> R) -> Option<R> {
    lock().as_mut().map(f)
}

/// The memory manager shared with the other CPUs, with interrupts disabled on this
/// one until the guard is dropped (they are restored as they were). Waits for a
/// CPU holding it exclusively with interrupts enabled.
pub struct Shared {
    guard: Option<RwLockReadGuard<'static, Option<Machine<KernelPlatform>>>>,
    irqs: bool,
}

impl Shared {
    /// Take the memory manager shared.
    pub fn take() -> Self {
        use x86_64::instructions::interrupts;
        loop {
            let irqs = interrupts::are_enabled();
            interrupts::disable();
            if let Some(guard) = MM.try_read() {
                return Self {
                    guard: Some(guard),
                    irqs,
                };
            }
            if irqs {
                interrupts::enable();
            }
            core::hint::spin_loop();
        }
    }

    /// The machine, if the memory manager is up.
    pub fn get(&self) -> Option<&Machine<KernelPlatform>> {
        self.guard.as_ref().and_then(|g| g.as_ref())
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.guard = None;
        if self.irqs {
            x86_64::instructions::interrupts::enable();
        }
    }
}

/// Run `f` on the memory manager shared with the other CPUs (see [`Shared`]), if
/// it is up: allocation, free and the views.
pub fn with_shared<R>(f: impl FnOnce(&Machine<KernelPlatform>) -> R) -> Option<R> {
    Shared::take().get().map(f)
}

/// Page-table frames needed to map `len` bytes with 2 MiB pages (one page directory
/// per GiB, a PDPT per 512 GiB, and 4 KiB tables at unaligned ends), plus slack.
pub fn pt_frames_for(len: u64) -> usize {
    (len.div_ceil(1 << 30) + len.div_ceil(512 << 30) + 6) as usize
}

/// Fill the page-table pool with `n` frames from the buddy allocator.
pub fn fill_pt_pool(node: &mut Machine<KernelPlatform>, n: usize) -> bool {
    while node.platform().pt_pool.len() < n {
        match node.alloc_pages(Gfp::KERNEL | Gfp::ZERO | Gfp::NOWARN, 0) {
            Some(pfn) => node.platform_mut().pt_pool.push(mm::pfn_phys(pfn)),
            None => return false,
        }
    }
    true
}

/// Give unused pool frames back.
pub fn drain_pt_pool(node: &mut Machine<KernelPlatform>) {
    while let Some(pa) = node.platform_mut().pt_pool.pop() {
        let _ = node.free_pages(mm::pfn_down(pa), 0);
    }
}

/// Give back a frame [`heap_page`] handed out (the heap's frame source undoing a
/// request it could not fill).
fn heap_page_free(pa: u64) {
    with_shared(|m| {
        if let Err(e) = m.free_pages(mm::pfn_down(pa), 0) {
            log::error!("heap: frame {pa:#x} could not be given back: {e}");
        }
    });
}

/// The heap's page source once the buddy allocator exists: one frame, or None
/// when the node is busy (the heap then uses its reserve) or out of memory.
fn heap_page() -> Option<u64> {
    use x86_64::instructions::interrupts;
    interrupts::without_interrupts(|| {
        let guard = MM.try_read()?;
        let node = guard.as_ref()?;
        node.alloc_pages(Gfp::KERNEL | Gfp::NOWARN, 0)
            .map(mm::pfn_phys)
    })
}

fn log_lines(text: &str) {
    for line in text.lines() {
        log::info!("{line}");
    }
}

/// Register one persistent range as ZONE_DEVICE (memremap_pages), logging the result.
pub fn memremap(
    node: &mut Machine<KernelPlatform>,
    start: u64,
    size: u64,
    opts: MemremapOptions,
) -> bool {
    if !fill_pt_pool(node, pt_frames_for(size)) {
        log::warn!(
            "memremap: [mem {start:#018x}-{:#018x}]: no memory for page tables",
            start + size - 1
        );
        return false;
    }
    let res = node.memremap_pages(start, size, opts);
    drain_pt_pool(node);
    match res {
        Ok(index) => {
            let map = &node.pagemaps()[index];
            log::info!(
                "memremap: [mem {start:#018x}-{:#018x}] ZONE_DEVICE pagemap {index}: {} pages, memmap {} (altmap {} pages)",
                start + size - 1,
                mm::pfn_down(size),
                if map.altmap_pages() > 0 {
                    "on the device"
                } else {
                    "in RAM"
                },
                map.altmap_pages()
            );
            true
        }
        Err(e) => {
            log::warn!(
                "memremap: [mem {start:#018x}-{:#018x}] refused: {e}",
                start + size - 1
            );
            false
        }
    }
}

/// Register a pmem device for the pagemap just made for `[start, start+size)`.
fn register_pmem(node: &Machine<KernelPlatform>, start: u64, size: u64, legacy: bool) {
    let Some(map) = node
        .pagemaps()
        .iter()
        .find(|p| p.start_pfn() == mm::pfn_down(start))
    else {
        return;
    };
    let reserved = mm::pfn_phys(map.altmap_pages());
    let nodes = pmem::PmemNodes {
        numa_node: node.nearest_online_node(map.nid()),
        target_node: map.nid(),
    };
    match pmem::register(start, size, reserved, legacy, nodes) {
        Some(i) => log::info!(
            "pmem{i}: {} MiB at [mem {start:#018x}-{:#018x}], node {} (target_node {})",
            (size - reserved) >> 20,
            start + size - 1,
            nodes.numa_node,
            nodes.target_node
        ),
        None => log::warn!(
            "pmem: [mem {start:#018x}-{:#018x}] is not mapped",
            start + size - 1
        ),
    }
}

/// The memory manager's view of the NUMA layout: nodes `0..=highest possible`,
/// the SLIT distances, and each node's CPUs, numbered as Linux numbers them: the
/// MADT's present CPUs in its order, the boot CPU first (without an MADT, the
/// SRAT's processors in APIC-id order).
fn topology(numa: &firmware::numa::NumaLayout, smp: &firmware::madt::SmpConfig) -> Topology {
    let nr = numa.possible.last().map_or(1, |&n| n + 1);
    let mut distance = Vec::with_capacity(nr * nr);
    for a in 0..nr {
        for b in 0..nr {
            distance.push(numa.distance(a, b));
        }
    }
    let mut cpus: Vec<Vec<u32>> = alloc::vec![Vec::new(); nr];
    let apic_ids = smp.present_apic_ids();
    let apic_ids: Vec<u32> = if smp.acpi_lapic && !apic_ids.is_empty() {
        apic_ids
    } else {
        numa.apic_to_node.keys().copied().collect()
    };
    for (cpu, apic) in apic_ids.iter().enumerate() {
        // A CPU the SRAT does not place is on node 0 (Linux: numa_init_array).
        let nid = numa.apic_to_node.get(apic).copied().unwrap_or(0);
        if let Some(c) = cpus.get_mut(nid) {
            c.push(cpu as u32);
        }
    }
    if apic_ids.is_empty() {
        cpus[0].push(0);
    }
    Topology::new(nr, distance, cpus).unwrap_or_else(|e| {
        log::warn!("{e}: one node");
        Topology::single()
    })
}

/// `deferred_struct_pages=every|highest|off`: which struct pages wait for the
/// other CPUs. `every` (the default) defers all but the first section's worth of
/// every zone; `highest` is Linux's rule (the lower zones written whole at boot);
/// `off` writes every struct page at boot. A bad value is reported and the default
/// kept.
fn deferral(cmdline: &str) -> mm::mm_init::Deferral {
    use mm::mm_init::Deferral;
    let mut d = Deferral::EveryZone;
    for v in cmdline
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("deferred_struct_pages="))
    {
        d = match v {
            "every" => Deferral::EveryZone,
            "highest" => Deferral::HighestZone,
            "off" => Deferral::Off,
            _ => {
                log::warn!("deferred_struct_pages={v}: expected every, highest or off; every kept");
                continue;
            }
        };
    }
    d
}

/// Memblock from what discovery found: usable RAM, with the bootloader's ranges
/// and the AP trampoline's low pages reserved, each range on its node. Refuses
/// persistent memory the kernel was loaded into (first, as the rest relies on it).
pub fn memblock_init(d: &mut Discovery) -> Memblock {
    // Persistent memory the kernel itself was loaded into (a `memmap=` over the
    // bootloader's RAM) cannot become a device: refuse it.
    d.pmem.retain(
        |p| match d.bootloader.iter().find(|b| b.overlaps(&p.range)) {
            Some(b) => {
                log::warn!(
                    "pmem: {} overlaps memory in use by the kernel {b}; refused",
                    p.range
                );
                false
            }
            None => true,
        },
    );
    let mut mb = Memblock::new();
    for r in d.zone_map.usable_pages() {
        if let Err(e) = mb.add(r.start, r.size()) {
            log::warn!("memblock: cannot add {r}: {e}");
        }
    }
    for r in &d.bootloader {
        if let Err(e) = mb.reserve(r.start, r.size()) {
            log::warn!("memblock: cannot reserve {r}: {e}");
        }
    }
    // The secondary CPUs' start-up code needs low pages (Linux's reserve_real_mode).
    if let Err(e) = crate::smp::reserve_trampoline(&mut mb) {
        log::warn!("{e}");
    }
    for b in &d.numa.memblks {
        if let Err(e) = mb.set_node(b.range.start, b.range.size(), b.nid as u16) {
            log::warn!("memblock: cannot set node {} on {}: {e}", b.nid, b.range);
        }
    }
    mb
}

/// Build the memory manager from `mb` ([`memblock_init`]) and what discovery found:
/// memmap, zones and buddy (ZONE_DEVICE for the persistent ranges follows in
/// [`late_init`]). Switches the heap to the buddy allocator.
pub fn init(d: &mut Discovery, mb: Memblock) {
    let t0 = crate::tsc::rdtsc();
    let topology = topology(&d.numa, &d.smp);
    // Struct pages beyond each zone's first section wait for the other CPUs
    // (late_init), as Linux's deferred struct page init does for the highest zone
    // (`deferred_struct_pages=`). ZONE_MOVABLE as kernelcore=/movablecore=/movable_node
    // ask (movable_node reads the SRAT's hot-pluggable ranges).
    let opts = mm::mm_init::InitOptions {
        deferred: deferral(&crate::boot::cmdline()),
        core: d.movable,
        hotpluggable: d.numa.hotplug.iter().map(|r| (r.start, r.end)).collect(),
    };
    let platform = KernelPlatform {
        pt_pool: Vec::new(),
    };
    let mut node = match Machine::init_with(platform, mb, topology, &opts) {
        Ok(n) => n,
        Err(e) => panic!("memory manager set-up failed: {e}"),
    };
    // The boot CPU's node: its APIC id (CPUID, read by discovery) through the SRAT.
    let bsp = d
        .numa
        .apic_to_node
        .get(&d.boot_apic_id)
        .copied()
        .unwrap_or(0);
    node.set_local_node(bsp);
    let t1 = crate::tsc::rdtsc();
    let mut text = String::new();
    let _ = node.write_node_data(&mut text);
    let _ = node.write_zone_ranges(&mut text);
    log_lines(&text);
    // The MADT's lines come between the zones and the zonelists in Linux's log.
    d.smp.log();
    let mut text = String::new();
    let _ = node.write_zonelist_summary(&mut text);
    log_lines(&text);
    BOOT_MEMMAP_CYCLES.store(t1 - t0, Ordering::Relaxed);
    *lock() = Some(node);
    heap::set_page_source(heap_page, heap_page_free);
}

/// The rest of the memory set-up, once the other CPUs run (Linux's
/// `page_alloc_init_late`, then the drivers): the deferred struct pages written by
/// every CPU at once, then ZONE_DEVICE for every persistent range, the kernel image
/// in iomem, and Linux's `Memory:` line. Once, after `start_secondary_cpus` (test
/// kernels: right after `boot::init`).
pub fn late_init() {
    let mut disc = boot::DISCOVERY.lock();
    let Some(d) = disc.as_mut() else {
        return;
    };
    let mut guard = lock();
    let Some(node) = guard.as_mut() else {
        return;
    };
    let t0 = crate::tsc::rdtsc();
    let waiting = node.deferred_pages();
    // What idle CPUs wrote while the boot went on (background_work).
    let early = node.deferred_pages_written();
    BACKGROUND_WAITING.store(false, Ordering::Release);
    BACKGROUND.lock().clear();
    match node.deferred_init_memmap() {
        Ok(0) => {}
        Ok(freed) => {
            let cpus = crate::smp::online_cpus();
            let before = if early > 0 {
                alloc::format!(" ({early} of them before, in the background)")
            } else {
                String::new()
            };
            log::info!(
                "deferred struct pages: {waiting} initialised on {cpus} CPU{} in {} us{before}, \
                 {freed} freed",
                if cpus == 1 { "" } else { "s" },
                crate::tsc::ticks_to_us(crate::tsc::rdtsc() - t0)
            );
        }
        Err(e) => log::error!("deferred struct page init: {e}"),
    }
    let late = crate::tsc::rdtsc() - t0;
    let setup = BOOT_MEMMAP_CYCLES.fetch_add(late, Ordering::Relaxed) + late;
    BOOT_MEMMAP_PAGES.store(
        node.sparse().present_sections() * mm::sparse::PAGES_PER_SECTION,
        Ordering::Relaxed,
    );
    for p in &d.pmem {
        let (start, size) = (p.range.start, p.range.size());
        let nid = d.numa.pmem_target_node(p);
        let opts = MemremapOptions::new(size)
            .page_free(pmem::page_free)
            .node(nid);
        if memremap(node, start, size, opts) {
            register_pmem(node, start, size, p.is_legacy());
        }
    }
    // The kernel image under System RAM in /proc/iomem.
    for seg in kimage::segments() {
        let (Some(s), Some(e)) = (
            paging::translate(seg.virt),
            paging::translate(seg.virt + seg.size - 1),
        ) else {
            continue;
        };
        if e >= s && e - s == seg.size - 1 {
            let _ = d.iomem.insert(Resource::new(
                PhysRange::new(s, e + 1),
                seg.kind.iomem_name(),
                ResourceKind::Kernel,
            ));
        }
    }
    let mut text = String::new();
    let _ = node.write_boot_summary(&mut text, &kimage::sizes());
    log_lines(&text);
    log::info!(
        "memmap: {} bytes of struct pages in RAM, {} on devices, {} bytes per struct page; set-up took {} us",
        node.memmap_ram_bytes(),
        node.memmap_device_bytes(),
        size_of::<Page>(),
        crate::tsc::ticks_to_us(setup)
    );
}

/// Tell the memory manager which CPUs came up (after `smp::init`; Linux's CPU
/// hotplug callbacks for the page allocator): offline CPUs' lists are drained and
/// every zone's per-CPU `high` is recomputed for the CPUs online on its node.
pub fn sync_online_cpus() {
    with(|m| {
        for cpu in 0..m.nr_cpus() {
            m.set_cpu_online(cpu, crate::smp::is_online(cpu));
        }
    });
}

/// Read the hotplug controller and add every plugged DIMM that is new, is not
/// persistent memory, and does not overlap known memory; online it and clear its
/// insert event. Lines of what happened go to `out`.
pub fn hotplug_scan(out: &mut String) {
    let slots = memhp::slots();
    if slots.is_empty() {
        out.push_str(
            "hotplug: no memory-hotplug slots with a DIMM (QEMU needs --slots N --maxmem SIZE)\n",
        );
        return;
    }
    for slot in slots {
        let range = PhysRange::from_size(slot.base, slot.size);
        if slot.removing {
            eject_slot(out, &slot);
            continue;
        }
        let (pmem_overlap, known, nid) = {
            let disc = boot::DISCOVERY.lock();
            let nid = disc.as_ref().map_or(0, |d| dimm_node(&d.numa, &slot, out));
            let pm = disc.as_ref().and_then(|d| {
                d.pmem
                    .iter()
                    .find(|p| p.range.overlaps(&range))
                    .map(|p| p.range)
            });
            let known = with(|n| {
                n.hotplug_ranges()
                    .iter()
                    .any(|h| h.start_pfn == mm::pfn_down(slot.base))
                    || n.pagemaps()
                        .iter()
                        .any(|p| p.start_pfn() == mm::pfn_down(slot.base))
            })
            .unwrap_or(false);
            (pm, known, nid)
        };
        if let Some(p) = pmem_overlap {
            let _ = writeln!(
                out,
                "hotplug: slot {} {range} is persistent memory {p}: not onlined as RAM",
                slot.index
            );
            if slot.inserting {
                memhp::clear_insert(slot.index);
            }
            continue;
        }
        if known {
            if slot.inserting {
                memhp::clear_insert(slot.index);
            }
            continue;
        }
        let res = with(|n| {
            if !fill_pt_pool(n, pt_frames_for(slot.size)) {
                return Err(String::from("no memory for page tables"));
            }
            let managed_before = n.totalram_pages();
            let r = n
                .add_and_online_memory(nid, slot.base, slot.size)
                .map_err(|e| alloc::format!("{e}"));
            drain_pt_pool(n);
            r.map(|_| n.totalram_pages() - managed_before)
        });
        match res {
            Some(Ok(pages)) => {
                let _ = writeln!(
                    out,
                    "hotplug: slot {} {range} onlined on node {nid}: {pages} pages ({} MiB) managed, max_pfn {:#x}",
                    slot.index,
                    pages >> 8,
                    with(|n| n.max_pfn()).unwrap_or(0)
                );
                if let Some(d) = boot::DISCOVERY.lock().as_mut() {
                    let _ = d.iomem.insert(Resource::new(
                        range,
                        "System RAM",
                        ResourceKind::from_e820(firmware::e820::E820Type::Usable),
                    ));
                }
                memhp::clear_insert(slot.index);
            }
            Some(Err(e)) => {
                let _ = writeln!(out, "hotplug: slot {} {range} refused: {e}", slot.index);
            }
            None => {}
        }
    }
}

/// A DIMM whose remove event is pending (`device_del`): offline and remove its memory,
/// then eject the slot (Linux's acpi_memory_device_remove, then _EJ0). Memory that
/// cannot be offlined stays online and the reason is printed; the event is cleared
/// either way (Linux reports the failure to the firmware through _OST).
fn eject_slot(out: &mut String, slot: &memhp::Slot) {
    let range = PhysRange::from_size(slot.base, slot.size);
    let pmem = boot::DISCOVERY.lock().as_ref().and_then(|d| {
        d.pmem
            .iter()
            .find(|p| p.range.overlaps(&range))
            .map(|p| p.range)
    });
    if let Some(p) = pmem {
        let _ = writeln!(
            out,
            "hotplug: slot {} {range} is persistent memory {p}: not ejected",
            slot.index
        );
        memhp::clear_remove(slot.index);
        return;
    }
    match remove_range(slot.base, slot.size) {
        Ok(removed) => {
            memhp::eject(slot.index);
            let _ = writeln!(
                out,
                "hotplug: slot {} {range} {removed}, ejected",
                slot.index
            );
        }
        Err(e) => {
            memhp::clear_remove(slot.index);
            let _ = writeln!(
                out,
                "hotplug: slot {} {range} not ejected, its memory {e}",
                slot.index
            );
        }
    }
}

/// Offline and remove the hot-added range `[base, base + size)` and take its
/// "System RAM" resource out of /proc/iomem. Says what was done, or why not (then
/// nothing changed). A range the memory manager does not know is not in use.
fn remove_range(base: u64, size: u64) -> Result<String, String> {
    let known = with_shared(|n| {
        n.hotplug_ranges()
            .iter()
            .any(|h| mm::pfn_phys(h.start_pfn) == base)
    })
    .unwrap_or(false);
    if !known {
        return Ok(String::from("was not in use"));
    }
    let res = with(|n| n.offline_and_remove_memory(base, size))
        .unwrap_or(Err(mm::HotplugError::NotAdded));
    match res {
        Ok(pages) => {
            if let Some(d) = boot::DISCOVERY.lock().as_mut() {
                let _ = d.iomem.remove(base, base + size - 1, "System RAM");
            }
            Ok(alloc::format!(
                "offlined and removed: {pages} pages ({} MiB) no longer managed",
                pages >> 8
            ))
        }
        Err(mm::HotplugError::Offline(f)) => Err(stays_online(&f)),
        Err(e) => Err(alloc::format!("could not be removed: {e}")),
    }
}

/// "stays online: offlining failed due to REASON (pfn P: dump reason)". Linux's own
/// lines (dump_page, "memory offlining ... failed due to ...") are in the log, which
/// the console shows too.
fn stays_online(f: &mm::memory_hotremove::OfflineFailure) -> String {
    alloc::format!(
        "stays online: offlining failed due to {}{}",
        f.reason,
        f.page
            .map(|p| alloc::format!(" (pfn {:#x}: {})", p.pfn, p.reason))
            .unwrap_or_default()
    )
}

/// `hotplug remove N`: remove the hot-added memory that memory block N belongs to
/// (its whole DIMM, whose blocks must all be offline already, as Linux's
/// remove_memory wants), and eject its slot if it is a DIMM's.
pub fn hotplug_remove(out: &mut String, nr: u64) {
    let found = with_shared(|n| {
        let block = n.memory_block(nr);
        let range = n
            .hotplug_ranges()
            .iter()
            .find(|h| {
                pfn_to_section_nr(h.start_pfn) <= nr && nr <= pfn_to_section_nr(h.end_pfn - 1)
            })
            .map(|h| {
                (
                    mm::pfn_phys(h.start_pfn),
                    mm::pfn_phys(h.end_pfn - h.start_pfn),
                )
            });
        (block, range)
    });
    let Some((block, range)) = found else {
        return;
    };
    let Some((base, size)) = range else {
        let _ = writeln!(
            out,
            "hotplug: remove memory{nr}: {}",
            if block.is_some() {
                "boot memory cannot be removed"
            } else {
                "memory block is not present"
            }
        );
        return;
    };
    let prange = PhysRange::from_size(base, size);
    match with(|n| n.remove_memory(base, size)) {
        Some(Ok(_)) => {
            if let Some(d) = boot::DISCOVERY.lock().as_mut() {
                let _ = d.iomem.remove(base, base + size - 1, "System RAM");
            }
            let slot = memhp::slots().into_iter().find(|s| s.base == base);
            if let Some(s) = &slot {
                memhp::eject(s.index);
            }
            let _ = writeln!(
                out,
                "hotplug: {prange} removed{}",
                slot.map(|s| alloc::format!(", slot {} ejected", s.index))
                    .unwrap_or_default()
            );
        }
        Some(Err(e)) => {
            let _ = writeln!(out, "hotplug: remove {prange}: {e}");
        }
        None => {}
    }
}

/// `hotplug offline N`: offline memory block N (Linux's `echo offline >
/// /sys/devices/system/memory/memoryN/state`); a failure leaves it online and says
/// why in Linux's words.
pub fn hotplug_offline(out: &mut String, nr: u64) {
    match with(|n| n.offline_memory_block(nr)) {
        Some(Ok(pages)) => {
            let _ = writeln!(
                out,
                "hotplug: memory{nr} offline: {pages} pages ({} MiB) no longer managed",
                pages >> 8
            );
        }
        Some(Err(mm::HotplugError::Offline(f))) => {
            let _ = writeln!(out, "hotplug: memory{nr} {}", stays_online(&f));
        }
        Some(Err(e)) => {
            let _ = writeln!(out, "hotplug: offline memory{nr}: {e}");
        }
        None => {}
    }
}

/// `hotplug online N [movable|kernel]`: online memory block N into the zone
/// `online_type` picks (Linux's default online policy for `Online`).
pub fn hotplug_online(out: &mut String, nr: u64, online_type: mm::OnlineType) {
    match with(|n| {
        n.online_memory_block_type(nr, online_type)
            .map(|pages| (pages, n.memory_block(nr).and_then(|b| b.zone)))
    }) {
        Some(Ok((pages, zone))) => {
            let _ = writeln!(
                out,
                "hotplug: memory{nr} online in zone {}: {pages} pages ({} MiB) managed",
                zone.map_or("none", |z| z.name()),
                pages >> 8
            );
        }
        Some(Err(e)) => {
            let _ = writeln!(out, "hotplug: online memory{nr}: {e}");
        }
        None => {}
    }
}

/// The `cpus` command: every CPU the MADT lists (Linux's possible CPUs), with its
/// APIC id, NUMA node (the SRAT's) and state. Only the boot CPU runs: the others
/// are present but not started until SMP bring-up exists.
pub fn write_cpus(out: &mut String) {
    let disc = boot::DISCOVERY.lock();
    let Some(d) = disc.as_ref() else {
        out.push_str("cpus: discovery has not run\n");
        return;
    };
    if !d.smp.acpi_lapic {
        out.push_str("cpus: no usable MADT; only the boot CPU runs\n");
    }
    let _ = writeln!(out, "CPU  APIC id  node  state");
    for c in &d.smp.cpus {
        let nid = d.numa.apic_to_node.get(&c.apic_id).copied().unwrap_or(0);
        let (cpu, state) = match c.state {
            firmware::madt::CpuState::Present { cpu: 0 } => {
                (String::from("0"), "online (boot CPU)")
            }
            firmware::madt::CpuState::Present { cpu } if crate::smp::is_online(cpu as usize) => {
                (alloc::format!("{cpu}"), "online")
            }
            firmware::madt::CpuState::Present { cpu } => {
                (alloc::format!("{cpu}"), "present, not started")
            }
            firmware::madt::CpuState::Hotplug => (String::from("-"), "hotplug (disabled)"),
        };
        let _ = writeln!(out, "{cpu:>3}  {:#7x}  {nid:>4}  {state}", c.apic_id);
    }
}

/// The node of a DIMM: its proximity register through the SRAT (Linux's
/// `acpi_get_node` of the DIMM's `_PXM`), else `memory_add_physaddr_to_nid`. With
/// an SRAT, a proximity domain it did not name is reported in `out`.
fn dimm_node(numa: &firmware::numa::NumaLayout, slot: &memhp::Slot, out: &mut String) -> usize {
    match numa.pxm_to_node(slot.node) {
        Some(nid) => nid,
        None if numa.source != firmware::numa::NumaSource::Srat => {
            numa.memory_add_physaddr_to_nid(slot.base)
        }
        None => {
            let nid = numa.memory_add_physaddr_to_nid(slot.base);
            let _ = writeln!(
                out,
                "hotplug: slot {}: proximity domain {} is not in the SRAT; using node {nid}",
                slot.index, slot.node
            );
            nid
        }
    }
}

/// List the memory blocks (as /sys/devices/system/memory shows them), then the
/// hotplug slots.
pub fn hotplug_list(out: &mut String) {
    with_shared(|n| n.write_memory_blocks(out));
    let slots = memhp::slots();
    if slots.is_empty() {
        out.push_str("hotplug: no memory-hotplug slots with a DIMM\n");
    }
    for s in &slots {
        let online = with(|n| {
            n.hotplug_ranges()
                .iter()
                .any(|h| h.start_pfn == mm::pfn_down(s.base) && h.online)
        })
        .unwrap_or(false);
        let dev = with(|n| {
            n.pagemaps()
                .iter()
                .any(|p| p.start_pfn() == mm::pfn_down(s.base))
        })
        .unwrap_or(false);
        let _ = writeln!(
            out,
            "slot {:>3}: {} node {} {}{}",
            s.index,
            PhysRange::from_size(s.base, s.size),
            s.node,
            if online {
                "online (System RAM)"
            } else if dev {
                "ZONE_DEVICE (persistent memory)"
            } else {
                "offline"
            },
            if s.inserting {
                ", insert event pending"
            } else {
                ""
            }
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test_case]
    fn deferred_struct_pages_parameter() {
        use mm::mm_init::Deferral;
        assert_eq!(deferral(""), Deferral::EveryZone);
        assert_eq!(
            deferral("a deferred_struct_pages=highest b"),
            Deferral::HighestZone
        );
        assert_eq!(deferral("deferred_struct_pages=off"), Deferral::Off);
        // The last good value wins; a bad one changes nothing.
        assert_eq!(
            deferral("deferred_struct_pages=off deferred_struct_pages=every"),
            Deferral::EveryZone
        );
        assert_eq!(
            deferral("deferred_struct_pages=highest deferred_struct_pages=sometimes"),
            Deferral::HighestZone
        );
    }

    #[test_case]
    fn storage_ranges_never_overlap() {
        let mut r = Vec::new();
        assert_eq!(claim_storage(&mut r, 0x1000, 0x1000), Ok(()));
        assert_eq!(claim_storage(&mut r, 0x4000, 0x1000), Ok(()));
        assert_eq!(r, [(0x1000, 0x2000), (0x4000, 0x5000)]);
        // The same range, a part of it, one straddling either end, one covering.
        for (pa, len) in [
            (0x1000, 0x1000),
            (0x1800, 0x10),
            (0x800, 0x1000),
            (0x1fff, 2),
            (0x3fff, 2),
            (0, 0x10000),
        ] {
            assert_eq!(
                claim_storage(&mut r, pa, len),
                Err(StorageError::Overlap),
                "{pa:#x}+{len:#x}"
            );
        }
        assert_eq!(
            claim_storage(&mut r, 0x1000, 0),
            Err(StorageError::BadRange)
        );
        assert_eq!(
            claim_storage(&mut r, u64::MAX, 2),
            Err(StorageError::BadRange)
        );
        // Touching ranges are fine and merge.
        assert_eq!(claim_storage(&mut r, 0x2000, 0x2000), Ok(()));
        assert_eq!(r, [(0x1000, 0x5000)]);
        assert_eq!(claim_storage(&mut r, 0x0, 0x1000), Ok(()));
        assert_eq!(claim_storage(&mut r, 0x6000, 0x1000), Ok(()));
        assert_eq!(r, [(0, 0x5000), (0x6000, 0x7000)]);
        assert_eq!(
            claim_storage(&mut r, 0x5000, 0x1001),
            Err(StorageError::Overlap)
        );
    }

    /// The owner of the block `migration_copies_the_contents` moves.
    struct TestOwner(AtomicU64);

    impl mm::migrate::MovableOps for TestOwner {
        fn isolate_page(&self, pfn: u64, _order: u32) -> bool {
            self.0.load(Ordering::Relaxed) == pfn
        }
        fn migrate_page(&self, _src: u64, dst: u64, _order: u32) {
            self.0.store(dst, Ordering::Relaxed);
        }
    }

    static TEST_OWNER: TestOwner = TestOwner(AtomicU64::new(0));

    /// KernelPlatform::copy_pages through the physical map: the bytes of a migrated
    /// block are at its new pfn, and the owner was told it.
    #[test_case]
    fn migration_copies_the_contents() {
        let len = 2 * 4096usize;
        let moved = with(|n| {
            let owner = n.register_movable_ops(&TEST_OWNER).expect("owner");
            let pfn = n
                .alloc_pages(Gfp::KERNEL | Gfp::NOWARN, 1)
                .expect("two frames");
            let virt = paging::phys_to_virt(mm::pfn_phys(pfn), len as u64).expect("mapped");
            // The two frames were just allocated here: nothing else uses them.
            // SAFETY: so writing them is sound; they are mapped RAM.
            unsafe {
                for i in 0..len {
                    *((virt as *mut u8).add(i)) = (i % 251) as u8;
                }
            }
            n.set_page_movable(pfn, owner).expect("movable");
            TEST_OWNER.0.store(pfn, Ordering::Relaxed);
            let dst = n.migrate_page(pfn).expect("migrated");
            (pfn, dst)
        })
        .expect("memory manager");
        let (src, dst) = moved;
        assert_ne!(src, dst);
        assert_eq!(TEST_OWNER.0.load(Ordering::Relaxed), dst);
        let virt = paging::phys_to_virt(mm::pfn_phys(dst), len as u64).expect("mapped");
        // The block at dst is ours (allocated by the migration for our owner).
        // SAFETY: so reading it is sound; it is mapped RAM.
        let bytes = unsafe { core::slice::from_raw_parts(virt as *const u8, len) };
        assert!(bytes.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
        with(|n| n.free_pages(dst, 1)).expect("mm").expect("freed");
    }

    #[test_case]
    fn storage_given_back_can_be_claimed_again() {
        let mut r = alloc::vec![(0x1000, 0x9000)];
        unclaim_storage(&mut r, 0x3000, 0x1000);
        assert_eq!(r, [(0x1000, 0x3000), (0x4000, 0x9000)]);
        unclaim_storage(&mut r, 0x1000, 0x2000);
        unclaim_storage(&mut r, 0x8000, 0x1000);
        assert_eq!(r, [(0x4000, 0x8000)]);
        unclaim_storage(&mut r, 0x4000, 0x4000);
        assert_eq!(r, []);
        unclaim_storage(&mut r, 0x4000, 0x4000);
        assert_eq!(claim_storage(&mut r, 0x3000, 0x1000), Ok(()));
        assert_eq!(r, [(0x3000, 0x4000)]);
    }

    /// Platform::memmap_storage is safe: asking twice for the same storage must be
    /// an error, not a second `&'static mut` to the same struct pages.
    #[test_case]
    fn memmap_storage_refuses_storage_handed_out_before() {
        let pfn = with(|n| n.alloc_pages(Gfp::KERNEL | Gfp::NOWARN, 1))
            .flatten()
            .expect("two frames");
        // The frames stay the storage's for ever: never freed.
        let pa = mm::pfn_phys(pfn);
        let per_frame = 4096 / size_of::<Page>();
        let mut platform = KernelPlatform {
            pt_pool: Vec::new(),
        };
        let first = platform
            .memmap_storage(pa, per_frame)
            .expect("fresh storage");
        assert_eq!(first.len(), per_frame);
        assert!(platform.memmap_storage(pa, per_frame).is_err());
        assert!(platform.memmap_storage(pa + 2048, 1).is_err());
        // The kernel's own platform shares the record.
        let again = with(|n| n.platform_mut().memmap_storage(pa, 1).is_err());
        assert_eq!(again, Some(true));
        // The frame next to it is still free to hand out.
        assert!(platform.memmap_storage(pa + 4096, per_frame).is_ok());
    }
}
