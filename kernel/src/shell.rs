//! The serial console shell: reads bytes from COM1 (sleeping in hlt until its
//! receive interrupt), feeds them to the
//! hardware-free line editor, parses complete lines with the `shell` crate and runs
//! the commands against the memory manager. Every command's output is written whole
//! before the next prompt, so log lines never interleave mid-line.
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;
use shell::command::{self, Command, NodePolicy, OnlineZone, Zone};
use shell::line::{Editor, Event, TOO_LONG};

use crate::memory;
use crate::qemu::{ExitCode, exit_qemu};
use crate::{boot, pmem, serial, serial_print, tsc};

/// The prompt (the host runner watches for the same constant).
pub use shell::PROMPT;

/// A block `alloc` holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Block {
    pfn: u64,
    order: u32,
    movable: bool,
}

/// Blocks allocated with `alloc`, so `free` never releases someone else's pages. It is
/// also the owner of the movable ones (Linux's movable_ops): migration tells it the new
/// pfn. Lock order: taken inside [`memory::MM`] (migration runs with the memory manager
/// held), so shell code never waits for the memory manager while holding it.
static ALLOCATED: spin::Mutex<Vec<Block>> = spin::Mutex::new(Vec::new());

/// The alloc table as an owner of movable blocks.
struct AllocTable;

static ALLOC_TABLE: AllocTable = AllocTable;

/// The table's handle in the memory manager, registered on the first movable `alloc`.
static MOVABLE_OWNER: spin::Mutex<Option<mm::migrate::MovableOwner>> = spin::Mutex::new(None);

impl mm::migrate::MovableOps for AllocTable {
    fn isolate_page(&self, pfn: u64, order: u32) -> bool {
        // The shell never uses the blocks' contents: any of its movable blocks may go.
        ALLOCATED
            .lock()
            .iter()
            .any(|b| b.pfn == pfn && b.order == order && b.movable)
    }

    fn migrate_page(&self, src: u64, dst: u64, order: u32) {
        if let Some(b) = ALLOCATED
            .lock()
            .iter_mut()
            .find(|b| b.pfn == src && b.order == order)
        {
            b.pfn = dst;
        }
    }
}

/// The owner handle, registering the table first if needed.
fn movable_owner(m: &mut mm::Machine<memory::KernelPlatform>) -> Option<mm::migrate::MovableOwner> {
    let mut owner = MOVABLE_OWNER.lock();
    if owner.is_none() {
        *owner = m.register_movable_ops(&ALLOC_TABLE).ok();
    }
    *owner
}

/// Run the shell for ever.
pub fn run() -> ! {
    let mut editor = Editor::new();
    serial_print!("{PROMPT}");
    loop {
        let Some(byte) = serial::try_read_byte() else {
            // Nothing typed: sleep until COM1's interrupt (no busy host CPU).
            crate::interrupts::wait_for_interrupt();
            continue;
        };
        let event = editor.feed(byte);
        for chunk in event.echo().slices() {
            serial::write_bytes(chunk);
        }
        match event {
            Event::Line(line) => {
                let line = String::from(line);
                let mut out = String::new();
                execute(&line, &mut out);
                serial_print!("{out}{PROMPT}");
            }
            Event::TooLong => serial_print!("{TOO_LONG}\n{PROMPT}"),
            Event::Cancel => serial_print!("{PROMPT}"),
            _ => {}
        }
    }
}

/// Parse and run one line, appending the output (each line ending in `\n`).
pub fn execute(line: &str, out: &mut String) {
    match command::parse(line) {
        Ok(cmd) => run_command(cmd, out),
        Err(e) => {
            let _ = writeln!(out, "{e}");
        }
    }
}

/// Forget a block of the table; false if `alloc` did not allocate it.
fn take_block(pfn: u64, order: u32) -> Option<Block> {
    let mut t = ALLOCATED.lock();
    let i = t.iter().position(|b| b.pfn == pfn && b.order == order)?;
    Some(t.swap_remove(i))
}

/// `pfn 0x... order N (P pages, node N, zone Z, [mem ...])`, ` movable` for a movable one.
fn write_block(out: &mut String, b: Block) {
    let (zone, nid) = memory::with_shared(|n| n.page(b.pfn).map(|p| (p.zone().name(), p.nid())))
        .flatten()
        .unwrap_or(("?", 0));
    let _ = writeln!(
        out,
        "pfn {:#x} order {} ({} pages, node {nid}, zone {zone}, [mem {:#018x}-{:#018x}]){}",
        b.pfn,
        b.order,
        1u64 << b.order,
        mm::pfn_phys(b.pfn),
        mm::pfn_phys(b.pfn + (1 << b.order)) - 1,
        if b.movable { " movable" } else { "" }
    );
}

fn run_command(cmd: Command, out: &mut String) {
    match cmd {
        Command::Empty => {}
        Command::Help { topic } => {
            for spec in shell::help::help_lines(topic) {
                let _ = writeln!(out, "{spec}");
            }
            if topic.is_none() {
                for note in shell::help::HELP_NOTES {
                    let _ = writeln!(out, "{note}");
                }
            }
        }
        Command::Dmesg => crate::logger::dump(|b| out.push_str(&String::from_utf8_lossy(b))),
        Command::E820 => {
            if let Some(d) = boot::DISCOVERY.lock().as_ref() {
                let _ = write!(out, "{}", d.e820.lines("e820"));
            }
        }
        Command::Iomem => {
            if let Some(d) = boot::DISCOVERY.lock().as_ref() {
                let _ = write!(out, "{}", d.iomem);
            }
        }
        Command::Zoneinfo => view(out, |n, o| n.write_zoneinfo(o)),
        Command::Buddyinfo => view(out, |n, o| n.write_buddyinfo(o)),
        Command::Pagetypeinfo => view(out, |n, o| n.write_pagetypeinfo(o)),
        Command::Meminfo { node: None } => view(out, |n, o| n.write_meminfo(o)),
        Command::Meminfo { node: Some(nid) } => view(out, |n, o| {
            if n.node(usize::from(nid)).is_none() {
                return writeln!(o, "meminfo: node {nid} does not exist");
            }
            n.write_node_meminfo(o, usize::from(nid))
        }),
        Command::Memmap => crate::memview::write(out),
        Command::Page { pfn } => view(out, |n, o| n.write_page(o, pfn)),
        Command::Alloc {
            order,
            zone,
            policy,
            movable,
        } => {
            let mut gfp = match zone {
                Some(Zone::Dma) => mm::Gfp::DMA,
                Some(Zone::Dma32) => mm::Gfp::DMA32,
                Some(Zone::Normal) | None => mm::Gfp::KERNEL,
            } | mm::Gfp::NOWARN;
            if movable {
                // What user pages use (GFP_HIGHUSER_MOVABLE): ZONE_MOVABLE first.
                gfp |= mm::Gfp::HIGHUSER_MOVABLE;
            }
            let order = u32::from(order);
            let res = memory::with(|n| {
                let owner = if movable {
                    Some(movable_owner(n).ok_or_else(|| {
                        String::from("alloc: the alloc table cannot own movable blocks")
                    })?)
                } else {
                    None
                };
                let pfn = match policy {
                    NodePolicy::Interleave => n.alloc_pages_interleave(gfp, order),
                    NodePolicy::Node { node, thisnode } => {
                        let nid = node.map_or(n.local_node(), usize::from);
                        if n.node(nid).is_none() {
                            return Err(alloc::format!("alloc: node {nid} does not exist"));
                        }
                        if thisnode {
                            gfp |= mm::Gfp::THISNODE;
                        }
                        n.alloc_pages_node(nid, gfp, order)
                    }
                };
                if let (Some(pfn), Some(owner)) = (pfn, owner)
                    && n.set_page_movable(pfn, owner).is_err()
                {
                    let _ = n.free_pages(pfn, order);
                    return Err(String::from(
                        "alloc: the block could not be made movable; freed",
                    ));
                }
                Ok(pfn)
            });
            match res {
                Some(Err(e)) => {
                    let _ = writeln!(out, "{e}");
                }
                Some(Ok(Some(pfn))) => {
                    let b = Block {
                        pfn,
                        order,
                        movable,
                    };
                    ALLOCATED.lock().push(b);
                    write_block(out, b);
                }
                Some(Ok(None)) => {
                    let _ = writeln!(
                        out,
                        "alloc: no free block of order {order} in the allowed zones and nodes"
                    );
                }
                None => {}
            }
        }
        Command::AllocList => {
            let blocks = ALLOCATED.lock().clone();
            if blocks.is_empty() {
                out.push_str("alloc: no blocks allocated\n");
            }
            for b in blocks {
                write_block(out, b);
            }
        }
        Command::Numa => view(out, |n, o| n.write_numa_hardware(o)),
        Command::Cpus => crate::memory::write_cpus(out),
        Command::Numastat { node } => view(out, |n, o| match node {
            Some(nid) if n.node(usize::from(nid)).is_none() => {
                writeln!(o, "numastat: node {nid} does not exist")
            }
            Some(nid) => n.write_numastat(o, usize::from(nid)),
            None => n.write_numastat_table(o),
        }),
        Command::Free { pfn, order } => {
            let order = u32::from(order);
            if let Some(b) = take_block(pfn, order) {
                match memory::with(|n| n.free_pages(pfn, order)) {
                    Some(Ok(())) => {
                        let _ = writeln!(out, "freed pfn {pfn:#x} order {order}");
                    }
                    Some(Err(e)) => {
                        ALLOCATED.lock().push(b);
                        let _ = writeln!(out, "free: {e}");
                    }
                    None => {}
                }
            } else if ALLOCATED.lock().iter().any(|b| b.pfn == pfn) {
                let _ = writeln!(
                    out,
                    "free: pfn {pfn:#x} was allocated by 'alloc' with another order"
                );
            } else {
                // Not ours: let the allocator explain why it is not a freeable block
                // (free, reserved, device, invalid), but never release a block that
                // the kernel itself is using.
                let in_use = memory::with(|n| {
                    n.page(pfn)
                        .map(|p| p.refcount() > 0 && !p.is_device() && !p.is_reserved())
                })
                .flatten()
                .unwrap_or(false);
                if in_use {
                    let _ = writeln!(
                        out,
                        "free: pfn {pfn:#x} is in use by the kernel, not by 'alloc'; refused"
                    );
                } else {
                    match memory::with(|n| n.free_pages(pfn, order)) {
                        Some(Err(e)) => {
                            let _ = writeln!(out, "free: {e}");
                        }
                        Some(Ok(())) => {
                            let _ = writeln!(out, "freed pfn {pfn:#x} order {order}");
                        }
                        None => {}
                    }
                }
            }
        }
        Command::HotplugScan => memory::hotplug_scan(out),
        Command::HotplugList => memory::hotplug_list(out),
        Command::HotplugOffline { block } => memory::hotplug_offline(out, block),
        Command::HotplugRemove { block } => memory::hotplug_remove(out, block),
        Command::HotplugOnline { block, zone } => memory::hotplug_online(
            out,
            block,
            match zone {
                OnlineZone::Default => mm::OnlineType::Online,
                OnlineZone::Kernel => mm::OnlineType::Kernel,
                OnlineZone::Movable => mm::OnlineType::Movable,
            },
        ),
        Command::Devmem { addr, width, value } => {
            crate::devmem::command(out, addr, width.bytes(), value)
        }
        Command::PmemList => {
            let devs = pmem::devices();
            if devs.is_empty() {
                let _ = writeln!(out, "no pmem devices");
            }
            for (i, d) in devs.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "pmem{i}: [mem {:#018x}-{:#018x}] node {}{} {} MiB data{}{}",
                    d.start,
                    d.start + d.reserved + d.size - 1,
                    d.numa_node,
                    if d.target_node != d.numa_node {
                        alloc::format!(" (target_node {})", d.target_node)
                    } else {
                        String::new()
                    },
                    d.size >> 20,
                    if d.reserved > 0 {
                        ", memmap on device: "
                    } else {
                        ""
                    },
                    if d.reserved > 0 {
                        alloc::format!("{} KiB", d.reserved >> 10)
                    } else {
                        String::new()
                    }
                );
                if d.legacy {
                    let _ = writeln!(out, "       legacy (e820 type 12 / memmap=)");
                }
                let (pages, pins) = pmem::pinned(i as u8);
                let state = match d.state {
                    pmem::PmemState::Enabled => "enabled",
                    pmem::PmemState::Disabling => "disabling",
                    pmem::PmemState::Disabled => "disabled",
                };
                let _ = writeln!(
                    out,
                    "       {state}, {pages} pinned page{} ({pins} pin{})",
                    if pages == 1 { "" } else { "s" },
                    if pins == 1 { "" } else { "s" }
                );
            }
        }
        Command::PmemPin { dev, offset } => match pmem::pin(dev, offset) {
            Ok(r) => {
                let _ = writeln!(
                    out,
                    "pmem{dev}: pinned pfn {:#x} (offset {offset:#x}, refcount {}, {} pin{})",
                    r.pfn,
                    r.refcount,
                    r.pins,
                    if r.pins == 1 { "" } else { "s" }
                );
            }
            Err(e) => {
                let _ = writeln!(out, "pmem: {e}");
            }
        },
        Command::PmemUnpin { dev, offset } => match pmem::unpin(dev, offset) {
            Ok(r) => {
                let _ = writeln!(
                    out,
                    "pmem{dev}: unpinned pfn {:#x} (refcount {}, {} pin{} left)",
                    r.pfn,
                    r.refcount,
                    r.pins,
                    if r.pins == 1 { "" } else { "s" }
                );
                if r.disabled {
                    let _ = writeln!(out, "pmem{dev}: disabled");
                }
            }
            Err(e) => {
                let _ = writeln!(out, "pmem: {e}");
            }
        },
        Command::PmemDisable { dev } => match pmem::disable(dev) {
            Ok(pmem::DisableReport::Disabled) => {
                let _ = writeln!(out, "pmem{dev}: disabled");
            }
            Ok(pmem::DisableReport::Waiting(n)) => {
                let _ = writeln!(
                    out,
                    "pmem{dev}: disable waits for {n} pinned page{}",
                    if n == 1 { "" } else { "s" }
                );
            }
            Err(e) => {
                let _ = writeln!(out, "pmem: {e}");
            }
        },
        Command::PmemEnable { dev } => match pmem::enable(dev) {
            Ok(()) => {
                let _ = writeln!(out, "pmem{dev}: enabled");
            }
            Err(e) => {
                let _ = writeln!(out, "pmem: {e}");
            }
        },
        Command::PmemRead { dev, offset, len } => {
            let mut buf = alloc::vec![0u8; len as usize];
            match pmem::read(dev, offset, &mut buf) {
                Ok(()) => hexdump(out, offset, &buf),
                Err(e) => {
                    let _ = writeln!(out, "pmem: {e}");
                }
            }
        }
        Command::PmemWrite { dev, offset, data } => match pmem::write(dev, offset, data.as_bytes())
        {
            Ok(()) => {
                let _ = writeln!(
                    out,
                    "pmem{dev}: wrote {} bytes at {offset:#x} (flushed)",
                    data.as_bytes().len()
                );
            }
            Err(e) => {
                let _ = writeln!(out, "pmem: {e}");
            }
        },
        Command::Stress { n } => crate::stress::command(out, n),
        Command::Bench => crate::stress::bench(out),
        Command::Poweroff => {
            serial_print!("{out}reboot: Power down\n");
            exit_qemu(ExitCode::Success);
        }
        Command::Reboot => {
            serial_print!("{out}reboot: Restarting system\n");
            reboot();
        }
    }
}

fn view(
    out: &mut String,
    f: impl FnOnce(&mm::Machine<memory::KernelPlatform>, &mut String) -> core::fmt::Result,
) {
    let shared = memory::Shared::take();
    match shared.get() {
        Some(node) => {
            let _ = f(node, out);
        }
        None => out.push_str("memory manager not initialised\n"),
    }
}

fn hexdump(out: &mut String, base: u64, bytes: &[u8]) {
    for (i, row) in bytes.chunks(16).enumerate() {
        let _ = write!(out, "{:08x}:", base + (i as u64) * 16);
        for b in row {
            let _ = write!(out, " {b:02x}");
        }
        for _ in row.len()..16 {
            out.push_str("   ");
        }
        out.push_str("  ");
        for &b in row {
            out.push(if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '.'
            });
        }
        out.push('\n');
    }
}

/// Reset the machine through the keyboard controller (QEMU's -no-reboot turns the
/// reset into an exit, which the runner turns into a fresh boot).
fn reboot() -> ! {
    // SAFETY: 0x64 is the i8042 command port; 0xfe pulses the CPU reset line.
    unsafe { x86_64::instructions::port::Port::<u8>::new(0x64).write(0xfe) };
    // If that did not work, a triple fault resets just as well.
    // SAFETY: loading an empty IDT and trapping makes the CPU triple-fault (reset).
    unsafe {
        x86_64::instructions::tables::lidt(&x86_64::structures::DescriptorTablePointer {
            limit: 0,
            base: x86_64::VirtAddr::new(0),
        });
        core::arch::asm!("int3");
    }
    crate::hlt_loop()
}

/// Time from kernel entry (TSC calibration) to the first prompt, logged for
/// `--bench-boot`.
pub fn log_init_time() {
    // Up to the prompt means every line before it printed, also those an idle CPU
    // prints for us (console_printer.rs).
    crate::serial::flush();
    log::info!("kernel init took {} us", tsc::uptime_ns() / 1000);
}
