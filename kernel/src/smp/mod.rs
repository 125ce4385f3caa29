//! Symmetric multiprocessing: every enabled CPU of the MADT started and kept
//! idle for work (issue 13, item 1).
//!
//! - [`percpu`]: per-CPU blocks through the GS base; [`cpu_id`] is one `gs:` load.
//! - [`apic`]: the local APIC, xAPIC (MMIO) or x2APIC (MSRs) as CPUID says.
//! - [`trampoline`]: the real-mode → long-mode start code in reserved low pages.
//! - [`bringup`]: INIT-SIPI-SIPI per CPU with a timeout, Linux's boot lines.
//! - [`call`]: [`on_each_cpu`]; [`tlb`]: TLB shootdown by NMI.
//! - [`lines`]: Linux's line formats; [`topology`]: packages and the CPU0 line.
//!
//! Order at boot: [`percpu::init_boot_cpu`] first in `init_cpu` (so `cpu_id()` is
//! 0 from then on), [`reserve_trampoline`] while memblock is built, [`start`] right
//! after that (the APs come up while the memory manager is built), [`init`] after
//! the memory manager is up, printing the lines where Linux's `smp_init` does. Test
//! kernels may skip [`start`]: [`init`] then starts the CPUs itself.
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

pub mod apic;
pub mod bringup;
pub mod call;
pub mod lines;
pub mod percpu;
pub mod tlb;
pub mod topology;
pub mod trampoline;

pub use call::on_each_cpu;
pub use percpu::{MAX_CPUS, cpu_id};
pub use tlb::{flush_tlb_all, flush_tlb_range};

/// CPUs online (the boot CPU counts from the start).
static ONLINE_COUNT: AtomicUsize = AtomicUsize::new(1);
/// Logical CPUs with a number (the MADT's present CPUs, at most [`MAX_CPUS`]); 1
/// until [`init`].
static NR_POSSIBLE: AtomicUsize = AtomicUsize::new(1);

/// How many CPUs are online.
pub fn online_cpus() -> usize {
    ONLINE_COUNT.load(Ordering::Acquire)
}

/// Whether logical CPU `cpu` is online (CPU 0 always is).
pub fn is_online(cpu: usize) -> bool {
    cpu == 0 || percpu::get(cpu).is_some_and(|p| p.state.load(Ordering::Acquire) == percpu::ONLINE)
}

/// Logical CPUs the kernel numbered (the MADT's enabled, de-duplicated CPUs up to
/// [`MAX_CPUS`]; 1 before [`init`]). Linux's possible CPUs also count hotplug
/// slots; those have no number here.
pub fn nr_possible_cpus() -> usize {
    NR_POSSIBLE.load(Ordering::Acquire)
}

/// The APIC id of logical CPU `cpu`, if it has a number.
pub fn apic_id(cpu: usize) -> Option<u32> {
    (cpu < nr_possible_cpus())
        .then(|| percpu::get(cpu))
        .flatten()
        .map(|p| p.apic_id.load(Ordering::Relaxed))
}

/// The NUMA node of logical CPU `cpu` (the SRAT's; 0 without one).
pub fn cpu_node(cpu: usize) -> Option<usize> {
    (cpu < nr_possible_cpus())
        .then(|| percpu::get(cpu))
        .flatten()
        .map(|p| p.node.load(Ordering::Relaxed) as usize)
}

/// Reserve the trampoline's low pages (20 KiB, page aligned, in [4 KiB, 1 MiB))
/// in memblock, before the memory manager takes the rest. Returns the physical
/// address. Must run while memory.rs builds the memblock (after the bootloader's
/// ranges are reserved, before `Machine::init_numa`).
pub fn reserve_trampoline(mb: &mut mm::Memblock) -> Result<u64, &'static str> {
    let pa = mb
        .alloc_range(trampoline::TRAMPOLINE_SIZE, 4096, 0x1000, 0x10_0000)
        .ok_or("smpboot: no free memory below 1 MiB for the AP trampoline")?;
    trampoline::TRAMPOLINE_PA.store(pa, Ordering::Relaxed);
    Ok(pa)
}

/// Spin until `done()`, warning once (as Linux's CSD-lock watchdog) if CPU `cpu`
/// has not answered `what` after a second; keeps waiting: going on would leave a
/// stale TLB entry or a half-run call.
pub(crate) fn wait_until(done: impl Fn() -> bool, what: &str, cpu: usize) {
    let start = crate::tsc::rdtsc();
    let mut warned = false;
    while !done() {
        if !warned && crate::tsc::rdtsc().wrapping_sub(start) > crate::tsc::hz() {
            warned = true;
            crate::logger::try_log(format_args!(
                "smp: CPU#{cpu} has not answered {what} for 1 s; waiting"
            ));
        }
        core::hint::spin_loop();
    }
}

/// Take a cross-CPU request flag (`on_each_cpu`'s, the TLB flush's), running
/// `serve` while another CPU holds it: that CPU may be waiting for this one.
pub(crate) fn lock_serving(lock: &AtomicBool, serve: impl Fn()) {
    while lock
        .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        serve();
        core::hint::spin_loop();
    }
}

/// Set `flag` on every other online CPU and `kick` it (by its APIC id).
pub(crate) fn signal_others(flag: fn(&percpu::PerCpu) -> &AtomicBool, kick: fn(u32) -> bool) {
    let me = cpu_id();
    for cpu in (0..nr_possible_cpus()).filter(|&c| c != me && is_online(c)) {
        let Some(pc) = percpu::get(cpu) else { continue };
        flag(pc).store(true, Ordering::Release);
        kick(pc.apic_id.load(Ordering::Relaxed));
    }
}

/// Wait until every other CPU has cleared its `flag` (see [`wait_until`]).
pub(crate) fn wait_others(flag: fn(&percpu::PerCpu) -> &AtomicBool, what: &str) {
    let me = cpu_id();
    for cpu in (0..nr_possible_cpus()).filter(|&c| c != me) {
        let Some(pc) = percpu::get(cpu) else { continue };
        wait_until(|| !flag(pc).load(Ordering::Acquire), what, cpu);
    }
}

/// `smp.nosipi=N[,M...]`: CPUs that get INIT but no start-up IPI.
fn parse_nosipi(cmdline: &str) -> Vec<usize> {
    cmdline
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("smp.nosipi="))
        .flat_map(|v| v.split(','))
        .filter_map(|n| n.parse().ok())
        .collect()
}

/// Lines of the bring-up, kept until [`init`] prints them: the CPUs start before
/// the memory manager is built ([`start`]), Linux's log says so after it.
#[derive(Default)]
pub struct Lines(Vec<(log::Level, String)>);

impl Lines {
    /// An info line.
    pub fn info(&mut self, line: impl Into<String>) {
        self.0.push((log::Level::Info, line.into()));
    }

    /// A warning.
    pub fn warn(&mut self, line: impl Into<String>) {
        self.0.push((log::Level::Warn, line.into()));
    }

    /// An error.
    pub fn error(&mut self, line: impl Into<String>) {
        self.0.push((log::Level::Error, line.into()));
    }

    /// Print them, in order, to the kernel log.
    pub fn print(self) {
        for (level, line) in self.0 {
            log::log!(level, "{line}");
        }
    }
}

/// What [`start`] did, until [`init`] reports it.
static STARTED: spin::Mutex<Option<Lines>> = spin::Mutex::new(None);

/// Start every other CPU now, quietly: the boot CPU's local APIC, then each
/// enabled CPU of the MADT (see [`bringup`]); [`init`] prints the lines later,
/// where Linux's `smp_init` prints them. Linux 6.5's parallel bring-up kicks every
/// AP before it waits for any; here they come up even earlier, while the boot CPU
/// builds the memory manager, so their start-up (the first run of a vCPU costs a
/// few milliseconds on QEMU's TCG) overlaps with it. Needs discovery's results,
/// the heap and the trampoline's pages (memblock reserved them: call it between
/// `memory::memblock_init` and `memory::init`). Once; later calls do nothing.
pub fn start(d: &crate::discovery::Discovery) {
    // Before the buddy allocator exists, the stacks come from the kernel's early
    // pool (2 MiB, which the heap needs too): a machine with more APs than half of
    // it can hold starts them in init, after the memory manager, as before.
    let aps = d.smp.present_apic_ids().len().clamp(1, MAX_CPUS) - 1;
    let per_ap = crate::kstack::frames_for(bringup::AP_STACK_SIZE)
        + crate::kstack::frames_for(crate::gdt::IST_STACK_SIZE);
    if aps * per_ap <= crate::heap::early_pool_free_frames() / 2 {
        start_now(d);
    }
}

/// [`start`] without its check: once (later calls do nothing).
fn start_now(d: &crate::discovery::Discovery) {
    if STARTED_ONCE.swap(true, Ordering::AcqRel) {
        return;
    }
    let mut out = Lines::default();
    start_cpus(d, &mut out);
    *STARTED.lock() = Some(out);
}

/// Whether [`start`] ran (its lines may have been printed already).
static STARTED_ONCE: AtomicBool = AtomicBool::new(false);

fn start_cpus(d: &crate::discovery::Discovery, out: &mut Lines) {
    let plan = {
        let mut ids = if d.smp.acpi_lapic {
            d.smp.present_apic_ids()
        } else {
            Vec::new()
        };
        if ids.is_empty() {
            ids.push(d.boot_apic_id);
        }
        if ids.len() > MAX_CPUS {
            out.warn(alloc::format!(
                "smp: {} CPUs listed, this kernel supports {MAX_CPUS}; CPU#{MAX_CPUS} and up skipped",
                ids.len()
            ));
            ids.truncate(MAX_CPUS);
        }
        let cpus: Vec<bringup::CpuInfo> = ids
            .iter()
            .map(|&apic_id| bringup::CpuInfo {
                apic_id,
                node: d.numa.apic_to_node.get(&apic_id).copied().unwrap_or(0),
            })
            .collect();
        bringup::Plan {
            possible_cpus: (d.smp.possible as usize).max(cpus.len()),
            possible_nodes: d.numa.possible.len().max(1),
            memory_nodes: d
                .numa
                .possible
                .iter()
                .copied()
                .filter(|&n| d.numa.has_memory(n))
                .collect(),
            cpus,
            no_sipi: parse_nosipi(&crate::boot::cmdline()),
            init_udelay: bringup::init_udelay(
                &crate::boot::cmdline(),
                topology::vendor(),
                topology::signature().0,
            ),
        }
    };
    for (cpu, info) in plan.cpus.iter().enumerate() {
        if let Some(p) = percpu::get(cpu) {
            p.apic_id.store(info.apic_id, Ordering::Relaxed);
            p.node.store(info.node as u32, Ordering::Relaxed);
        }
    }
    if let Some(p) = percpu::get(0) {
        p.state.store(percpu::ONLINE, Ordering::Release);
        p.gdt.store(crate::gdt::boot_gdt_addr(), Ordering::Relaxed);
        p.tss.store(crate::gdt::boot_tss_addr(), Ordering::Relaxed);
    }
    NR_POSSIBLE.store(plan.cpus.len(), Ordering::Release);
    if idle_param() == Some(false) {
        bringup::set_idle_poll(false);
    }
    out.info(lines::calibrating(lines::lpj_from_tsc(crate::tsc::hz())));
    out.info(topology::cpu0_line());
    if let Err(e) = apic::init_boot_cpu(|pa| crate::paging::phys_to_virt(pa, 4096)) {
        out.warn(alloc::format!("smp: {e}; only the boot CPU runs"));
        out.info("smp: Bringing up secondary CPUs ...");
        out.info(lines::brought_up(1, 1));
        return;
    }
    let own = apic::id();
    if own != plan.cpus[0].apic_id {
        out.warn(alloc::format!(
            "smp: the boot CPU's APIC id is 0x{own:x}, the MADT's CPU 0 has 0x{:x}",
            plan.cpus[0].apic_id
        ));
    }
    bringup::bring_up(&plan, out);
    // A polling AP prints the log's COM1 lines from now until boot_done.
    if online_cpus() > 1 && idle_param() != Some(false) {
        crate::serial::start_printer();
    }
}

/// Linux's `idle=`: `poll` keeps idle APs polling for ever, `halt` makes them
/// halt from the start; anything else is reported and ignored. The last one wins.
fn parse_idle(cmdline: &str) -> Option<bool> {
    let mut poll = None;
    for v in cmdline
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("idle="))
    {
        match v {
            "poll" => poll = Some(true),
            "halt" => poll = Some(false),
            _ => log::warn!("idle={v}: expected poll or halt; ignored"),
        }
    }
    poll
}

/// The kernel command line's `idle=`, read (and reported if bad) once.
fn idle_param() -> Option<bool> {
    static PARAM: spin::Once<Option<bool>> = spin::Once::new();
    *PARAM.call_once(|| parse_idle(&crate::boot::cmdline()))
}

/// The boot is over (the shell is about to start): the log prints to COM1 itself
/// again (console_printer.rs), and idle APs halt from now on, unless the command
/// line says `idle=poll` (see [`bringup::set_idle_poll`]).
pub fn boot_done() {
    crate::serial::stop_printer();
    bringup::set_idle_poll(idle_param() == Some(true));
}

/// Bring up SMP if [`start`] has not (test kernels), and print its lines (Linux's
/// `smp_init`). Needs discovery's results and the heap; runs once, after
/// `boot::init`.
pub fn init() {
    if !STARTED_ONCE.load(Ordering::Acquire) {
        let disc = crate::boot::DISCOVERY.lock();
        let Some(d) = disc.as_ref() else {
            log::warn!("smp: discovery has not run; only the boot CPU runs");
            return;
        };
        start_now(d);
    }
    if let Some(out) = STARTED.lock().take() {
        out.print();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `idle=poll` and `idle=halt` as Linux reads them; a bad value changes nothing.
    #[test_case]
    fn idle_parameter() {
        assert_eq!(parse_idle(""), None);
        assert_eq!(parse_idle("idle=poll"), Some(true));
        assert_eq!(parse_idle("quiet idle=halt"), Some(false));
        assert_eq!(parse_idle("idle=halt idle=poll"), Some(true));
        assert_eq!(parse_idle("idle=nomwait"), None);
        assert_eq!(parse_idle("idle=poll idle=bogus"), Some(true));
    }
}
