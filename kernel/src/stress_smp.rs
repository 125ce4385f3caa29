//! `stress N` on every online CPU at once (issue 13, item 4): each CPU runs `N`
//! random operations on the shared memory manager (mixed orders 0-10, DMA, DMA32
//! and Normal, the local node, a chosen node, `__GFP_THISNODE` and interleaving,
//! get/put on device pages), and hands blocks to the other CPUs through a small
//! pool, so blocks are freed on another CPU than the one that allocated them.
//! Then, with every other CPU idle again, the boot CPU holds the memory manager
//! alone, frees what is left, drains the per-CPU lists and runs the full check.
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use mm::Gfp;
use spin::Mutex;

use crate::memory;
use crate::stress::{Rng, device_ref};
use crate::tsc::rdtsc;

/// Blocks one CPU holds at once.
const MAX_LIVE: usize = 1024;
/// Blocks waiting in the pool for another CPU to free them.
const POOL: usize = 512;
/// Device-page references one CPU holds at once.
const MAX_DEV_REFS: usize = 64;
/// Device ranges used.
const MAX_DEVICES: usize = 16;

#[derive(Default)]
struct Work {
    live: Vec<(u64, u32)>,
    dev_refs: Vec<u64>,
}

static OPS: AtomicU64 = AtomicU64::new(0);
static SEED: AtomicU64 = AtomicU64::new(0);
/// `(pfn, order, cpu that allocated it)`.
static HANDOFF: Mutex<Vec<(u64, u32, usize)>> = Mutex::new(Vec::new());
/// Device ranges the CPUs take references in (at most [`MAX_DEVICES`]).
static DEVICES: Mutex<([(u64, u64); MAX_DEVICES], usize)> = Mutex::new(([(0, 0); MAX_DEVICES], 0));
/// Each CPU's working lists, allocated before the free count is taken: a heap that
/// grew during the run would take pages from the buddy allocator for good.
static WORK: Mutex<Vec<Work>> = Mutex::new(Vec::new());
static RESULTS: Mutex<Vec<CpuReport>> = Mutex::new(Vec::new());
static FAILED: Mutex<Option<String>> = Mutex::new(None);

/// What one CPU did.
#[derive(Debug, Default, Clone, Copy)]
pub struct CpuReport {
    /// The CPU.
    pub cpu: usize,
    /// Operations.
    pub ops: u64,
    /// Successful allocations.
    pub allocs: u64,
    /// Allocations refused (out of memory, watermarks, a node without memory).
    pub alloc_failures: u64,
    /// Frees.
    pub frees: u64,
    /// Frees of blocks another CPU allocated.
    pub remote_frees: u64,
    /// get_page/put_page on device pages.
    pub device_refs: u64,
    /// TSC cycles of the CPU's run.
    pub cycles: u64,
}

/// What a run on all CPUs did.
#[derive(Debug, Default, Clone)]
pub struct AllReport {
    /// CPUs that ran.
    pub cpus: usize,
    /// Operations of all CPUs.
    pub ops: u64,
    /// Successful allocations.
    pub allocs: u64,
    /// Refused allocations.
    pub alloc_failures: u64,
    /// Frees (the final ones included).
    pub frees: u64,
    /// Frees of blocks another CPU allocated.
    pub remote_frees: u64,
    /// Device get/put.
    pub device_refs: u64,
    /// TSC cycles the CPUs spent, summed.
    pub busy_cycles: u64,
    /// Free pages before and after (after drains).
    pub free_before: u64,
    /// Free pages after everything was freed.
    pub free_after: u64,
    /// Each CPU's part.
    pub per_cpu: Vec<CpuReport>,
}

/// Run `n` random operations on every online CPU at once with `seed`, then check
/// everything with the other CPUs stopped; Err says what was wrong.
pub fn run_all(n: u64, seed: u64) -> Result<AllReport, String> {
    *FAILED.lock() = None;
    {
        let cpus = crate::smp::nr_possible_cpus();
        let mut pool = HANDOFF.lock();
        pool.clear();
        pool.reserve(POOL);
        let mut res = RESULTS.lock();
        res.clear();
        res.reserve(cpus);
        let mut work = WORK.lock();
        work.resize_with(cpus, Work::default);
        for w in work.iter_mut() {
            w.live.reserve(MAX_LIVE);
            w.dev_refs.reserve(MAX_DEV_REFS);
        }
    }
    let free_before = memory::with(|m| {
        m.drain_all_pages();
        let (ranges, count) = &mut *DEVICES.lock();
        *count = 0;
        // A pagemap being torn down takes no new reference.
        for p in m
            .pagemaps()
            .iter()
            .filter(|p| !p.refs().is_dying())
            .take(MAX_DEVICES)
        {
            ranges[*count] = (p.start_pfn(), p.end_pfn());
            *count += 1;
        }
        m.nr_free_pages()
    })
    .ok_or("memory manager not initialised")?;
    OPS.store(n, Ordering::Relaxed);
    SEED.store(seed, Ordering::Relaxed);
    crate::smp::on_each_cpu(cpu_main, 0);
    let per_cpu = core::mem::take(&mut *RESULTS.lock());
    let failed = FAILED.lock().take();
    // Every other CPU is idle again: hold the memory manager alone.
    let mut rep = AllReport {
        cpus: per_cpu.len(),
        free_before,
        ..Default::default()
    };
    for r in &per_cpu {
        rep.ops += r.ops;
        rep.allocs += r.allocs;
        rep.alloc_failures += r.alloc_failures;
        rep.frees += r.frees;
        rep.remote_frees += r.remote_frees;
        rep.device_refs += r.device_refs;
        rep.busy_cycles += r.cycles;
    }
    rep.per_cpu = per_cpu;
    let pool = core::mem::take(&mut *HANDOFF.lock());
    memory::with(|m| {
        for (pfn, order, _) in pool {
            m.free_pages(pfn, order)
                .map_err(|e| format!("final free: {e}"))?;
            rep.frees += 1;
        }
        if let Some(e) = failed {
            return Err(e);
        }
        m.drain_all_pages();
        m.check().map_err(|e| format!("check: {e}"))?;
        if m.device_pfns_in_free_lists() != 0 {
            return Err("device pfns in the free lists".into());
        }
        rep.free_after = m.nr_free_pages();
        if rep.free_after != rep.free_before {
            return Err(format!(
                "free pages {} after the run, {} before",
                rep.free_after, rep.free_before
            ));
        }
        Ok(())
    })
    .ok_or("memory manager not initialised")??;
    Ok(rep)
}

fn cpu_main(cpu: usize, _arg: usize) {
    match run_cpu(cpu) {
        Ok(r) => RESULTS.lock().push(r),
        Err(e) => {
            FAILED.lock().get_or_insert(e);
        }
    }
}

fn run_cpu(cpu: usize) -> Result<CpuReport, String> {
    let n = OPS.load(Ordering::Relaxed);
    let salt = (cpu as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut rng = Rng((SEED.load(Ordering::Relaxed) ^ salt) | 1);
    let (all_devices, nr_devices) = *DEVICES.lock();
    let devices = &all_devices[..nr_devices];
    let mut work = WORK
        .lock()
        .get_mut(cpu)
        .map(core::mem::take)
        .ok_or("CPU without working lists")?;
    let res = run_ops(cpu, n, &mut rng, devices, &mut work);
    if let Some(w) = WORK.lock().get_mut(cpu) {
        *w = work;
    }
    res
}

fn run_ops(
    cpu: usize,
    n: u64,
    rng: &mut Rng,
    devices: &[(u64, u64)],
    work: &mut Work,
) -> Result<CpuReport, String> {
    let Work { live, dev_refs } = work;
    live.clear();
    dev_refs.clear();
    let mut rep = CpuReport {
        cpu,
        ..Default::default()
    };
    let shared = memory::Shared::take();
    let m = shared.get().ok_or("memory manager not initialised")?;
    let nodes = m.nodes().len();
    let start = rdtsc();
    for i in 0..n {
        let r = rng.next();
        let op = r % 16;
        if op <= 6 && live.len() < MAX_LIVE || op <= 11 && live.is_empty() {
            let order = if (r >> 8) % 100 < 70 {
                ((r >> 16) % 3) as u32
            } else {
                3 + ((r >> 16) % 8) as u32
            };
            let gfp = Gfp::NOWARN
                | match (r >> 24) % 4 {
                    0 => Gfp::DMA,
                    1 => Gfp::DMA32,
                    _ => Gfp::KERNEL,
                };
            let nid = ((r >> 32) as usize) % nodes;
            let got = match (r >> 40) % 4 {
                0 => m.alloc_pages_node(nid, gfp, order),
                1 => m.alloc_pages_node(nid, gfp | Gfp::THISNODE, order),
                2 => m.alloc_pages_interleave(gfp, order),
                _ => m.alloc_pages(gfp, order),
            };
            match got {
                Some(pfn) => {
                    if devices
                        .iter()
                        .any(|&(s, e)| pfn < e && pfn + (1 << order) > s)
                    {
                        return Err(format!(
                            "cpu {cpu} op {i}: allocation returned device pfn {pfn:#x}"
                        ));
                    }
                    live.push((pfn, order));
                    rep.allocs += 1;
                }
                None => rep.alloc_failures += 1,
            }
        } else if op <= 11 {
            let (pfn, order) = live.swap_remove(((r >> 32) as usize) % live.len());
            m.free_pages(pfn, order)
                .map_err(|e| format!("cpu {cpu} op {i}: free failed: {e}"))?;
            rep.frees += 1;
        } else if op <= 13 {
            // The pool: free a block another CPU allocated, or leave one of ours.
            let mut pool = HANDOFF.lock();
            let theirs = pool.iter().rposition(|&(_, _, owner)| owner != cpu);
            if let Some(k) = theirs.filter(|_| (r >> 20) & 1 == 0 || live.is_empty()) {
                let (pfn, order, _) = pool.swap_remove(k);
                drop(pool);
                m.free_pages(pfn, order)
                    .map_err(|e| format!("cpu {cpu} op {i}: remote free failed: {e}"))?;
                rep.frees += 1;
                rep.remote_frees += 1;
            } else if !live.is_empty() && pool.len() < POOL {
                let (pfn, order) = live.swap_remove(((r >> 32) as usize) % live.len());
                pool.push((pfn, order, cpu));
            }
        } else if device_ref(m, r, devices, dev_refs, MAX_DEV_REFS)
            .map_err(|e| format!("cpu {cpu} op {i}: {e}"))?
        {
            rep.device_refs += 1;
        }
        rep.ops += 1;
    }
    rep.cycles = rdtsc() - start;
    for (pfn, order) in live.drain(..) {
        m.free_pages(pfn, order)
            .map_err(|e| format!("cpu {cpu}: final free: {e}"))?;
        rep.frees += 1;
    }
    for pfn in dev_refs.drain(..) {
        m.put_page(pfn)
            .map_err(|e| format!("cpu {cpu}: final put_page({pfn:#x}): {e}"))?;
    }
    Ok(rep)
}
