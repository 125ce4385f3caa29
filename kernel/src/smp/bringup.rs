//! Starting the application processors, as Linux's `smp_init` / `do_boot_cpu`:
//! for each enabled, de-duplicated MADT CPU in logical order, a stack and a
//! GDT/TSS of its own, INIT, then two start-up IPIs at the trampoline page, then
//! a wait (TSC-timed) until the AP says it is online. One that does not answer
//! within [`BOOT_TIMEOUT_MS`] is reported with Linux's line and skipped.
//!
//! The AP's Rust entry [`ap_main`] sets its GS base, loads its GDT/TSS and the
//! shared IDT, enables its local APIC, marks itself online and idles in `hlt`,
//! serving `on_each_cpu` calls and TLB shootdowns.
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use super::percpu::{self, BOOTING, GIVEN_UP, ONLINE};
use super::{Lines, apic, lines, trampoline};

/// How long the boot CPU waits for an AP (Linux: 10 s; TCG answers in
/// milliseconds).
pub const BOOT_TIMEOUT_MS: u64 = 1000;
/// Each AP's kernel stack (as large as the boot CPU's, 256 KiB: the stress work
/// runs on every CPU), above a [`GUARD_SIZE`] guard page ([`crate::kstack`]).
pub const AP_STACK_SIZE: usize = 256 * 1024;

/// What bring-up needs from discovery, per logical CPU.
pub struct CpuInfo {
    /// APIC id.
    pub apic_id: u32,
    /// NUMA node.
    pub node: usize,
}

/// The machine as discovery saw it.
pub struct Plan {
    /// Present CPUs by logical number (boot CPU first).
    pub cpus: Vec<CpuInfo>,
    /// Possible CPUs (present + hotplug), for Linux's column width and packages.
    pub possible_cpus: usize,
    /// Possible NUMA nodes, for the column width.
    pub possible_nodes: usize,
    /// Nodes with memory (online even without a CPU).
    pub memory_nodes: Vec<usize>,
    /// CPUs to give INIT but no start-up IPI (`smp.nosipi=N`, the test of the
    /// timeout path: such a CPU stays in wait-for-SIPI as a dead one would).
    pub no_sipi: Vec<usize>,
    /// Microseconds between INIT assert and de-assert ([`init_udelay`]).
    pub init_udelay: u64,
}

/// The MP specification's 10 ms between INIT assert and de-assert, for CPUs older
/// than the families [`init_udelay`] exempts.
pub const UDELAY_10MS_DEFAULT: u64 = 10_000;

/// Linux's `init_udelay` (`smp_quirk_init_udelay`): `cpu_init_udelay=N` on the
/// command line if given (the last one; a bad value is reported and ignored), else
/// 0 for modern CPUs (Intel family 6 and up, AMD family 0xF and up, Hygon 0x18 and
/// up), else [`UDELAY_10MS_DEFAULT`].
pub fn init_udelay(cmdline: &str, vendor: Option<&str>, family: u32) -> u64 {
    let mut given = None;
    for v in cmdline
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("cpu_init_udelay="))
    {
        match v.parse::<u64>() {
            Ok(us) if us <= 1_000_000 => given = Some(us),
            _ => log::warn!("cpu_init_udelay={v}: expected microseconds up to 1000000; ignored"),
        }
    }
    if let Some(us) = given {
        return us;
    }
    let modern = match vendor {
        Some("Intel") => family >= 6,
        Some("AMD") => family >= 0xf,
        Some("Hygon") => family >= 0x18,
        _ => false,
    };
    if modern { 0 } else { UDELAY_10MS_DEFAULT }
}

fn delay_us(us: u64) {
    let start = crate::tsc::rdtsc();
    let ticks = crate::tsc::hz() / 1_000_000 * us;
    while crate::tsc::rdtsc().wrapping_sub(start) < ticks {
        core::hint::spin_loop();
    }
}

/// The unmapped page below each AP stack (see [`crate::kstack`]).
pub use crate::kstack::GUARD_SIZE;

/// Start one AP; Ok when it is online.
fn do_boot_cpu(
    out: &mut Lines,
    t: &trampoline::Installed,
    cpu: usize,
    apic_id: u32,
    no_sipi: bool,
    init_udelay: u64,
) -> Result<(), i32> {
    let pc = percpu::get(cpu).ok_or(-1)?;
    let mut no_memory = |e: &str| {
        out.error(format!("smpboot: CPU#{cpu}: {e}"));
        -12
    };
    let stack = crate::kstack::alloc(AP_STACK_SIZE).map_err(&mut no_memory)?;
    let tables = crate::gdt::new_cpu_tables().map_err(&mut no_memory)?;
    pc.gdt.store(tables.gdt_addr(), Ordering::Relaxed);
    pc.tss.store(tables.tss_addr(), Ordering::Relaxed);
    TABLES.get(cpu).ok_or(-1)?.call_once(|| tables);
    pc.stack_top.store(stack, Ordering::Relaxed);
    t.set_ap(stack, cpu);
    pc.state.store(BOOTING, Ordering::SeqCst);
    let t0 = crate::tsc::rdtsc();
    // Linux's wakeup_secondary_cpu_via_init: INIT asserted, init_udelay, INIT
    // de-asserted, then two start-up IPIs, each followed by 10 + 10 us (300 + 200 us
    // when the CPU needs the INIT delay); the second is not needed once it is up.
    let sent = apic::send_init_assert(apic_id);
    delay_us(init_udelay);
    let sent = apic::send_init_deassert(apic_id) && sent;
    let mut sipi_ok = true;
    if !no_sipi {
        for _ in 0..2 {
            sipi_ok &= apic::send_startup(apic_id, t.vector());
            delay_us(if init_udelay == 0 { 20 } else { 500 });
            if pc.state.load(Ordering::Acquire) == ONLINE {
                break;
            }
        }
    }
    if !sent || !sipi_ok {
        out.warn(format!(
            "smpboot: CPU#{cpu} (APIC 0x{apic_id:x}): the local APIC did not send the IPI"
        ));
    }
    let limit = crate::tsc::hz() / 1000 * BOOT_TIMEOUT_MS;
    while crate::tsc::rdtsc().wrapping_sub(t0) < limit {
        if pc.state.load(Ordering::Acquire) == ONLINE {
            BOOT_TICKS.fetch_add(crate::tsc::rdtsc() - t0, Ordering::Relaxed);
            return Ok(());
        }
        core::hint::spin_loop();
    }
    // Give it up; if it comes online in this very moment, keep it.
    match pc
        .state
        .compare_exchange(BOOTING, GIVEN_UP, Ordering::AcqRel, Ordering::Acquire)
    {
        Ok(_) => {
            // Back to wait-for-SIPI, as Linux leaves a CPU that did not answer.
            apic::send_init(apic_id);
            Err(-1)
        }
        Err(_) => Ok(()),
    }
}

/// TSC ticks spent bringing APs up (INIT to online), for the report and tests.
pub static BOOT_TICKS: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// Each AP's GDT and TSS, kept for the CPU's lifetime.
static TABLES: [spin::Once<&'static crate::gdt::CpuTables>; percpu::MAX_CPUS] =
    [const { spin::Once::new() }; percpu::MAX_CPUS];

/// Bring every AP of `plan` up, with Linux's lines (kept in `out`). The boot
/// CPU's APIC must be initialised.
pub fn bring_up(plan: &Plan, out: &mut Lines) {
    out.info("smp: Bringing up secondary CPUs ...");
    let installed = if plan.cpus.len() > 1 {
        match trampoline::install(crate::paging::phys_to_virt) {
            Ok(t) => Some(t),
            Err(e) => {
                out.warn(format!("smpboot: {e}; secondary CPUs not started"));
                None
            }
        }
    } else {
        None
    };
    if let Some(t) = &installed {
        let mut line = String::new();
        let mut node = usize::MAX;
        for (cpu, info) in plan.cpus.iter().enumerate().skip(1) {
            if cpu == 1 {
                out.info("x86: Booting SMP configuration:");
            }
            if info.node != node {
                if !line.is_empty() {
                    out.info(core::mem::take(&mut line));
                }
                node = info.node;
                line = lines::node_header(node, plan.possible_nodes);
            }
            line.push_str(&lines::cpu_piece(cpu, plan.possible_cpus));
            if apic::mode() != apic::Mode::X2Apic && info.apic_id > 0xfe {
                out.info(core::mem::take(&mut line));
                node = usize::MAX;
                out.warn(format!(
                    "smpboot: CPU#{cpu}: APIC id 0x{:x} is out of reach in xAPIC mode; skipped",
                    info.apic_id
                ));
                continue;
            }
            let no_sipi = plan.no_sipi.contains(&cpu);
            if let Err(err) = do_boot_cpu(out, t, cpu, info.apic_id, no_sipi, plan.init_udelay) {
                // Linux prints this on its own line, ending the node line.
                out.info(core::mem::take(&mut line));
                node = usize::MAX;
                out.error(format!(
                    "smpboot: do_boot_cpu failed({err}) to wakeup CPU#{cpu}"
                ));
            }
        }
        if !line.is_empty() {
            out.info(core::mem::take(&mut line));
        }
    }
    let online: Vec<usize> = (0..plan.cpus.len())
        .filter(|&c| super::is_online(c))
        .collect();
    let mut nodes: Vec<usize> = plan.memory_nodes.clone();
    nodes.extend(online.iter().map(|&c| plan.cpus[c].node));
    nodes.sort_unstable();
    nodes.dedup();
    out.info(lines::brought_up(nodes.len().max(1), online.len()));
    let boot_pkg = super::topology::package_of(plan.cpus[0].apic_id);
    let in_boot_pkg = online
        .iter()
        .filter(|&&c| super::topology::package_of(plan.cpus[c].apic_id) == boot_pkg)
        .count();
    out.info(lines::max_logical_packages(plan.possible_cpus, in_boot_pkg));
    let lpj = lines::lpj_from_tsc(crate::tsc::hz());
    out.info(lines::total_activated(
        online.len(),
        lpj * online.len() as u64,
    ));
}

/// An AP's Rust entry, on its own stack with the kernel's page table (from
/// `zoned_ap_long_entry`).
pub extern "C" fn ap_main(cpu: usize) -> ! {
    percpu::set_this_cpu(cpu);
    if let Some(t) = TABLES.get(cpu).and_then(|o| o.get()) {
        t.load();
    }
    crate::interrupts::init_idt();
    apic::init_ap();
    let pc = percpu::this_cpu();
    // Counted before the state says online, so whoever sees ONLINE sees the count.
    super::ONLINE_COUNT.fetch_add(1, Ordering::AcqRel);
    if pc
        .state
        .compare_exchange(BOOTING, ONLINE, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        // The boot CPU gave up on us: stay out of the way.
        super::ONLINE_COUNT.fetch_sub(1, Ordering::AcqRel);
        crate::hlt_loop();
    }
    idle()
}

/// Whether idle APs poll for work instead of halting (see [`set_idle_poll`]).
static IDLE_POLL: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(true);

/// Idle APs poll for work (`true`) or halt until the next IPI. They poll while the
/// kernel boots, so the deferred init finds them running: waking a halted vCPU
/// costs milliseconds of host scheduling under QEMU (and the vCPU threads may
/// share a host core for a while after), which is why Linux guests have
/// cpuidle-haltpoll. `smp::boot_done` ends it, unless `idle=poll`.
pub fn set_idle_poll(on: bool) {
    IDLE_POLL.store(on, Ordering::Relaxed);
}

/// Checks of the call and idle flags between two `pause`s of a polling AP.
///
/// Under QEMU's multi-threaded TCG every `pause` leaves the vCPU's execution loop,
/// and each time round that loop the vCPU thread takes QEMU's big lock, which
/// every port I/O of the boot CPU (each byte of its serial log) needs as well. An
/// AP pausing on every check kept that lock busy: with it, the boot CPU's log
/// lines after the APs start took about twice as long (`--mem 16G --smp 2`: 2.6-4.5
/// against 1.5 ms for the zone ranges). A few hundred loads of two flags in the
/// AP's own cache between pauses cost nothing on hardware and free the lock.
const POLLS_PER_PAUSE: u32 = 256;

/// The idle loop of an AP: serve calls, print the boot's queued log lines, write
/// the boot's deferred struct pages, then poll or sleep until the next IPI.
fn idle() -> ! {
    loop {
        super::call::poll();
        if IDLE_POLL.load(Ordering::Relaxed) {
            // The boot's log lines for COM1, then its deferred struct pages, while no
            // call waits for us (and, for the struct pages, no line).
            crate::serial::print_queued_when_idle(super::call::pending);
            crate::memory::background_work(&|| {
                super::call::pending() || crate::console_printer::waiting()
            });
            for _ in 0..POLLS_PER_PAUSE {
                if super::call::pending()
                    || !IDLE_POLL.load(Ordering::Relaxed)
                    || crate::console_printer::waiting()
                {
                    break;
                }
            }
            core::hint::spin_loop();
            continue;
        }
        x86_64::instructions::interrupts::enable_and_hlt();
        x86_64::instructions::interrupts::disable();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Linux's `smp_quirk_init_udelay` and its `cpu_init_udelay=` parameter.
    #[test_case]
    fn init_udelay_as_linux_chooses_it() {
        // QEMU's TCG CPU: "AMD QEMU Virtual CPU version 2.5+ (family: 0xf ...)".
        assert_eq!(init_udelay("", Some("AMD"), 0xf), 0);
        assert_eq!(init_udelay("", Some("AMD"), 0x6), UDELAY_10MS_DEFAULT);
        assert_eq!(init_udelay("", Some("Intel"), 6), 0);
        assert_eq!(init_udelay("", Some("Intel"), 5), UDELAY_10MS_DEFAULT);
        assert_eq!(init_udelay("", Some("Hygon"), 0x18), 0);
        assert_eq!(init_udelay("", Some("Centaur"), 6), UDELAY_10MS_DEFAULT);
        assert_eq!(init_udelay("", None, 6), UDELAY_10MS_DEFAULT);
        // The parameter wins; a bad value is ignored.
        assert_eq!(
            init_udelay("cpu_init_udelay=10000", Some("AMD"), 0xf),
            10_000
        );
        assert_eq!(init_udelay("cpu_init_udelay=0", None, 4), 0);
        assert_eq!(init_udelay("cpu_init_udelay=-1", Some("AMD"), 0xf), 0);
        assert_eq!(
            init_udelay("cpu_init_udelay=5000000", None, 4),
            UDELAY_10MS_DEFAULT
        );
    }
}
