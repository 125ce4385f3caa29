//! Allocator stress and benchmarks run inside the kernel: [`run`] (one CPU with
//! the memory manager held alone: random allocations and frees of orders 0-10
//! across zones, get/put on device pages, RAM hot-added halfway if asked, the
//! invariant checker every 10,000 operations and at the end, then everything
//! freed and the free count compared), the shell's `stress N` (the same mix on
//! every CPU at once, [`crate::stress_smp`]), and `bench` (TSC cycles per order-0
//! alloc+free pair and per struct page initialised at boot). Under QEMU's TCG the
//! cycle counts are indicative only.
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;
use mm::Gfp;

use crate::memory;
use crate::tsc::rdtsc;

/// Most blocks held at once (the list is allocated before the allocator is
/// locked, so the heap never has to grow during the run).
const MAX_LIVE: usize = 4096;
/// Device-page references held at once.
const MAX_DEV_REFS: usize = 256;
/// Invariant check period.
pub const CHECK_EVERY: u64 = 10_000;

/// What a stress run did.
#[derive(Debug, Default, Clone, Copy)]
pub struct StressReport {
    /// Operations.
    pub ops: u64,
    /// Successful allocations.
    pub allocs: u64,
    /// Allocations refused (out of memory, watermarks).
    pub alloc_failures: u64,
    /// Frees.
    pub frees: u64,
    /// get_page/put_page on device pages.
    pub device_refs: u64,
    /// Full invariant checks.
    pub checks: u64,
    /// Free pages before and after.
    pub free_before: u64,
    /// Free pages after everything was freed.
    pub free_after: u64,
    /// TSC cycles of the whole run.
    pub cycles: u64,
    /// Pages that RAM hot-added during the run brought under management.
    pub hot_added: u64,
}

/// Take a reference on a random page of a random device range (`devices`, pfn ranges),
/// or drop one of `dev_refs` (at most `max` held): one random operation `r` of a stress
/// run. Returns whether there was a device to do it on.
pub(crate) fn device_ref(
    m: &mm::Machine<memory::KernelPlatform>,
    r: u64,
    devices: &[(u64, u64)],
    dev_refs: &mut Vec<u64>,
    max: usize,
) -> Result<bool, String> {
    let Some(&(s, e)) = devices.get(((r >> 40) as usize) % devices.len().max(1)) else {
        return Ok(false);
    };
    if dev_refs.len() < max && (r >> 48) & 1 == 0 || dev_refs.is_empty() {
        let pfn = s + (r >> 8) % (e - s);
        m.get_page(pfn)
            .map_err(|e| format!("get_page({pfn:#x}): {e}"))?;
        dev_refs.push(pfn);
    } else {
        let pfn = dev_refs.swap_remove(((r >> 20) as usize) % dev_refs.len());
        m.put_page(pfn)
            .map_err(|e| format!("put_page({pfn:#x}): {e}"))?;
    }
    Ok(true)
}

/// xorshift64*, the stress runs' generator.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    /// The next number.
    pub(crate) fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Run `n` random operations with `seed`; Err names the first inconsistency.
/// With `hot_add = Some((base, size))`, that RAM is hot-added and onlined halfway
/// through (a DIMM from the hotplug controller), and the run goes on using it.
pub fn run(n: u64, seed: u64, hot_add: Option<(u64, u64)>) -> Result<StressReport, String> {
    let mut live: Vec<(u64, u32)> = Vec::with_capacity(MAX_LIVE);
    let mut dev_refs: Vec<u64> = Vec::with_capacity(MAX_DEV_REFS);
    let mut guard = memory::lock();
    let node = guard.as_mut().ok_or("memory manager not initialised")?;
    let devices: Vec<(u64, u64)> = node
        .pagemaps()
        .iter()
        .filter(|p| !p.refs().is_dying())
        .map(|p| (p.start_pfn(), p.end_pfn()))
        .collect();
    node.drain_pages();
    let mut rep = StressReport {
        free_before: node.nr_free_pages(),
        ..Default::default()
    };
    let mut rng = Rng(seed | 1);
    let start = rdtsc();
    for i in 0..n {
        let r = rng.next();
        let op = r % 8;
        if op <= 3 && live.len() < MAX_LIVE || live.is_empty() && op <= 6 {
            let order = if (r >> 8) % 100 < 70 {
                ((r >> 16) % 3) as u32
            } else {
                3 + ((r >> 16) % 8) as u32
            };
            let gfp = match (r >> 24) % 4 {
                0 => Gfp::DMA,
                1 => Gfp::DMA32,
                _ => Gfp::KERNEL,
            };
            match node.alloc_pages(gfp | Gfp::NOWARN, order) {
                Some(pfn) => {
                    if devices
                        .iter()
                        .any(|&(s, e)| pfn < e && pfn + (1 << order) > s)
                    {
                        return Err(format!("op {i}: allocation returned device pfn {pfn:#x}"));
                    }
                    live.push((pfn, order));
                    rep.allocs += 1;
                }
                None => rep.alloc_failures += 1,
            }
        } else if op <= 6 {
            let idx = ((r >> 32) as usize) % live.len();
            let (pfn, order) = live.swap_remove(idx);
            node.free_pages(pfn, order)
                .map_err(|e| format!("op {i}: free failed: {e}"))?;
            rep.frees += 1;
        } else if device_ref(node, r, &devices, &mut dev_refs, MAX_DEV_REFS)
            .map_err(|e| format!("op {i}: {e}"))?
        {
            rep.device_refs += 1;
        }
        rep.ops += 1;
        if let (Some((base, size)), true) = (hot_add, i == n / 2) {
            let managed_before = node.totalram_pages();
            if !memory::fill_pt_pool(node, memory::pt_frames_for(size)) {
                return Err(format!("op {i}: no memory for page tables to hot-add"));
            }
            let nid = node.local_node();
            let res = node.add_and_online_memory(nid, base, size);
            memory::drain_pt_pool(node);
            res.map_err(|e| format!("op {i}: hot-add of {base:#x}+{size:#x}: {e}"))?;
            rep.hot_added = node.totalram_pages() - managed_before;
            node.check()
                .map_err(|e| format!("op {i}: after hot-add: {e}"))?;
        }
        if (i + 1) % CHECK_EVERY == 0 {
            node.check().map_err(|e| format!("op {i}: {e}"))?;
            if node.device_pfns_in_free_lists() != 0 {
                return Err(format!("op {i}: device pfns in the free lists"));
            }
            rep.checks += 1;
        }
    }
    rep.cycles = rdtsc() - start;
    for (pfn, order) in live.drain(..) {
        node.free_pages(pfn, order)
            .map_err(|e| format!("final free: {e}"))?;
        rep.frees += 1;
    }
    for pfn in dev_refs.drain(..) {
        node.put_page(pfn)
            .map_err(|e| format!("final put_page({pfn:#x}): {e}"))?;
    }
    node.drain_pages();
    node.check().map_err(|e| format!("final check: {e}"))?;
    rep.checks += 1;
    if node.device_pfns_in_free_lists() != 0 {
        return Err("device pfns in the free lists after the run".into());
    }
    rep.free_after = node.nr_free_pages();
    if rep.free_after != rep.free_before + rep.hot_added {
        return Err(format!(
            "free pages {} after the run, {} before (+{} hot-added)",
            rep.free_after, rep.free_before, rep.hot_added
        ));
    }
    Ok(rep)
}

/// The shell's `stress N`: [`run_all`] on every online CPU at once.
pub fn command(out: &mut String, n: u64) {
    match crate::stress_smp::run_all(n, crate::tsc::rdtsc()) {
        Ok(r) => {
            let _ = writeln!(
                out,
                "stress: {} operations on {} CPU{}, {} cycles per operation, check passed",
                r.ops,
                r.cpus,
                if r.cpus == 1 { "" } else { "s" },
                r.busy_cycles / r.ops.max(1)
            );
            let _ = writeln!(
                out,
                "stress: {} allocs ({} refused), {} frees ({} of blocks another CPU allocated), {} device get/put; free pages {} before and after (TCG: cycles indicative only)",
                r.allocs, r.alloc_failures, r.frees, r.remote_frees, r.device_refs, r.free_before
            );
        }
        Err(e) => {
            let _ = writeln!(out, "stress: FAILED: {e}");
        }
    }
}

/// The shell's `bench`.
pub fn bench(out: &mut String) {
    const PAIRS: u64 = 100_000;
    let shared = memory::Shared::take();
    let Some(node) = shared.get() else {
        out.push_str("memory manager not initialised\n");
        return;
    };
    // Warm the page cache, then time pairs.
    for _ in 0..64 {
        if let Some(pfn) = node.alloc_pages(Gfp::KERNEL, 0) {
            let _ = node.free_pages(pfn, 0);
        }
    }
    let t = rdtsc();
    let mut done = 0;
    for _ in 0..PAIRS {
        let Some(pfn) = node.alloc_pages(Gfp::KERNEL | Gfp::NOWARN, 0) else {
            break;
        };
        let _ = node.free_pages(pfn, 0);
        done += 1;
    }
    let pair = (rdtsc() - t) / done.max(1);
    let t = rdtsc();
    let mut blocks = 0;
    for _ in 0..1000 {
        let Some(pfn) = node.alloc_pages(Gfp::KERNEL | Gfp::NOWARN, 10) else {
            break;
        };
        let _ = node.free_pages(pfn, 10);
        blocks += 1;
    }
    let big = (rdtsc() - t) / blocks.max(1);
    drop(shared);
    let (init_cycles, init_pages) = memory::boot_memmap_cost();
    let _ = writeln!(
        out,
        "bench: order-0 alloc+free pair: {pair} TSC cycles ({done} pairs)"
    );
    let _ = writeln!(
        out,
        "bench: order-10 alloc+free pair: {big} TSC cycles ({blocks} pairs)"
    );
    let _ = writeln!(
        out,
        "bench: memmap init at boot: {} TSC cycles per struct page ({init_pages} pages)",
        init_cycles / init_pages.max(1)
    );
    let _ = writeln!(
        out,
        "bench: TSC {} MHz; under QEMU TCG these figures are indicative only",
        crate::tsc::hz() / 1_000_000
    );
}
