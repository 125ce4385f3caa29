//! The NUMA memory layout (Linux's `x86_numa_init` in `arch/x86/mm/numa.c` with
//! `acpi_numa_init` from `drivers/acpi/numa/srat.c`): proximity domains numbered into nodes,
//! the memory blocks of each node cleaned up and merged, node distances from the SLIT, and the
//! one-node fallback. One call, [`numa_init`], shared by the kernel and the host planner.
//!
//! The steps, each as Linux does them:
//! 1. `numa=off`: no SRAT is read; one node (`NUMA turned off`, `Faking a node at ...`).
//! 2. SRAT processor entries first (local APIC and x2APIC, in table order), then memory
//!    entries: each proximity domain gets the lowest free node id when first seen
//!    (`acpi_map_pxm_to_node`; PXMs from 256 on and nodes from 64 on do not map). A disabled
//!    entry is skipped. A malformed known entry, or a PXM that does not map, is `bad_srat()`:
//!    `ACPI: SRAT: SRAT not used.`, and every later entry is ignored. Memory entries are
//!    logged as `ACPI: SRAT: Node N PXM P [mem ...]` with ` hotplug` / ` non-volatile`.
//! 3. The SLIT, if valid (see [`crate::slit`]), sets the distance between every pair of mapped
//!    PXMs; otherwise every distance is 10 local / 20 remote.
//! 4. `numa_cleanup_meminfo`: blocks that hold no RAM move to the reserved list (persistent
//!    memory and hot-plug areas: [`NumaLayout::phys_to_target_node`] finds them there), blocks
//!    are trimmed to max_pfn (the part above goes to the reserved list), overlapping blocks of
//!    different nodes fail the SRAT, and blocks of one node are merged when no other node's
//!    block lies in between (`NUMA: Node N [mem ...] + [mem ...] -> [mem ...]`).
//! 5. `numa_register_memblks`: the nodes must cover all RAM but 1 MiB (`NUMA: nodes only
//!    cover ...MB of your ...MB e820 RAM. Not used.`); nodes with blocks get memory, the other
//!    parsed nodes (CPUs only) are memoryless.
//! 6. `numa=fake=N` replaces the blocks by N fake nodes ([`crate::numa_emulation`]).
//! 7. When no SRAT memory entry was usable, or steps 4-5 failed: one node
//!    (`No NUMA configuration found`, `Faking a node at [mem 0x0000000000000000-...]`), with
//!    the default distances.
//!
//! Where this differs from Linux: the AMD northbridge fallback (`amd_numa_init`) is not
//! tried (QEMU has no such northbridge, so Linux falls through to the fake node there too);
//! generic initiator entries are ignored rather than creating initiator-only nodes; NUMA
//! emulation takes only the node-count form (see [`crate::numa_emulation`]).

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::numa_emulation::{FakeSpec, parse_fake, split_nodes_interleave};
use crate::range::{PAGE_SIZE, PhysRange};
use crate::slit::{LOCAL_DISTANCE, REMOTE_DISTANCE, Slit, SlitError};
use crate::srat::{Srat, SratEntry, SratError};

/// Most nodes (Linux's `MAX_NUMNODES` with `NODES_SHIFT` 6).
pub const MAX_NUMNODES: usize = 64;
/// Most proximity domains that map to nodes (Linux's `MAX_PXM_DOMAINS`).
pub const MAX_PXM_DOMAINS: u32 = 256;
/// Most memory blocks (Linux's `NR_NODE_MEMBLKS`).
pub const NR_NODE_MEMBLKS: usize = MAX_NUMNODES * 2;

/// How urgent a log line is (Linux's `pr_info`/`pr_warn`/`pr_err`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// `pr_debug` / `KERN_DEBUG` (in dmesg, not on the console by default).
    Debug,
    /// `pr_info`.
    Info,
    /// `pr_warn`.
    Warn,
    /// `pr_err`.
    Error,
}

/// A memory block of one node (Linux's `struct numa_memblk`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Memblk {
    /// Node id.
    pub nid: usize,
    /// The block.
    pub range: PhysRange,
}

/// Where the layout came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NumaSource {
    /// The SRAT.
    Srat,
    /// One faked node: no (usable) SRAT.
    NoConfig,
    /// One faked node: `numa=off`.
    Off,
}

/// What [`numa_init`] takes.
#[derive(Clone, Copy, Debug)]
pub struct NumaInput<'a> {
    /// The SRAT, as parsed (or its parse error, or `None` without one).
    pub srat: Option<&'a Result<Srat, SratError>>,
    /// The SLIT, as parsed.
    pub slit: Option<&'a Result<Slit, SlitError>>,
    /// RAM (memblock.memory): the zone map's usable pages.
    pub memory: &'a [PhysRange],
    /// `numa=off` on the command line.
    pub numa_off: bool,
    /// `numa=fake=` on the command line.
    pub fake: Option<FakeSpec>,
}

impl<'a> NumaInput<'a> {
    /// The tables as parsed (`None` where the firmware has none) over `memory`, with the
    /// `numa=` options of `cmdline`.
    pub fn new(
        srat: Option<&'a Result<Srat, SratError>>,
        slit: Option<&'a Result<Slit, SlitError>>,
        memory: &'a [PhysRange],
        cmdline: &str,
    ) -> Self {
        NumaInput {
            srat,
            slit,
            memory,
            numa_off: false,
            fake: None,
        }
        .with_cmdline(cmdline)
    }

    /// Input with the `numa=` options of `cmdline` (the last `numa=` of each kind counts, as
    /// each `numa=` is an early parameter handled in order).
    pub fn with_cmdline(mut self, cmdline: &str) -> Self {
        for p in crate::cmdline::params(cmdline) {
            if !p.is("numa") {
                continue;
            }
            match p.value {
                Some("off") => self.numa_off = true,
                Some(v) if v.starts_with("fake=") => self.fake = Some(parse_fake(&v[5..])),
                _ => {}
            }
        }
        self
    }
}

/// The NUMA layout of the machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NumaLayout {
    /// Where it came from.
    pub source: NumaSource,
    /// Proximity domain to node id, for every PXM the SRAT named (kept after a fallback, as
    /// Linux keeps `pxm_to_node_map`).
    pub pxm_to_node: BTreeMap<u32, usize>,
    /// APIC id to node id, from the SRAT's enabled processor entries.
    pub apic_to_node: BTreeMap<u32, usize>,
    /// Node ids that exist (`node_possible_map`), ascending.
    pub possible: Vec<usize>,
    /// The memory blocks of the nodes after clean-up (`numa_meminfo`), in Linux's order.
    pub memblks: Vec<Memblk>,
    /// Blocks without RAM (`numa_reserved_meminfo`): persistent memory, hot-plug areas.
    pub reserved: Vec<Memblk>,
    /// SRAT ranges marked hot-pluggable (`memblock_mark_hotplug`).
    pub hotplug: Vec<PhysRange>,
    /// Distances, `distance_cnt` × `distance_cnt`, or empty for the defaults.
    distance: Vec<u8>,
    distance_cnt: usize,
    /// Log lines in Linux's order and wording.
    pub messages: Vec<(Level, String)>,
}

impl NumaLayout {
    /// Linux's `__node_distance`.
    pub fn distance(&self, from: usize, to: usize) -> u8 {
        if from >= self.distance_cnt || to >= self.distance_cnt {
            return if from == to {
                LOCAL_DISTANCE
            } else {
                REMOTE_DISTANCE
            };
        }
        self.distance[from * self.distance_cnt + to]
    }

    /// Node of a proximity domain, if the SRAT mapped it.
    pub fn pxm_to_node(&self, pxm: u32) -> Option<usize> {
        self.pxm_to_node.get(&pxm).copied()
    }

    /// True when the node has memory blocks.
    pub fn has_memory(&self, nid: usize) -> bool {
        self.memblks.iter().any(|b| b.nid == nid)
    }

    /// The span of a node's blocks, `None` for a memoryless node.
    pub fn node_span(&self, nid: usize) -> Option<PhysRange> {
        let mut blks = self.memblks.iter().filter(|b| b.nid == nid);
        let first = blks.next()?.range;
        Some(blks.fold(first, |s, b| {
            PhysRange::new(s.start.min(b.range.start), s.end.max(b.range.end))
        }))
    }

    /// Linux's `phys_to_target_node`: the node of the RAM block holding `addr`, else of the
    /// reserved block (persistent memory, hot-plug area) holding it.
    pub fn phys_to_target_node(&self, addr: u64) -> Option<usize> {
        meminfo_to_nid(&self.memblks, addr).or_else(|| meminfo_to_nid(&self.reserved, addr))
    }

    /// The node of a persistent range (Linux's region `target_node`): its NFIT SPA range's
    /// proximity domain when the SPA flags say the domain is valid, else the block (RAM or
    /// reserved) that covers the range, else node 0. The kernel and the planner both use it.
    pub fn pmem_target_node(&self, p: &crate::pmem::PmemRange) -> usize {
        /// `ACPI_NFIT_PROXIMITY_VALID`.
        const PROXIMITY_VALID: u16 = 1 << 1;
        p.nfit
            .as_ref()
            .filter(|n| n.flags & PROXIMITY_VALID != 0)
            .and_then(|n| self.pxm_to_node(n.proximity_domain))
            .or_else(|| self.phys_to_target_node(p.range.start))
            .unwrap_or(0)
    }

    /// Linux's `memory_add_physaddr_to_nid`: the node of the RAM block holding `addr`, else
    /// the first block's node.
    pub fn memory_add_physaddr_to_nid(&self, addr: u64) -> usize {
        meminfo_to_nid(&self.memblks, addr).unwrap_or(self.memblks.first().map_or(0, |b| b.nid))
    }

    /// RAM split by node (what `memblock_set_node` does to memblock.memory): each piece of
    /// `memory` with the node whose block holds it, or `None` for RAM no block covers (at most
    /// 1 MiB in all, else the SRAT would have been refused).
    pub fn memory_nodes(&self, memory: &[PhysRange]) -> Vec<(Option<usize>, PhysRange)> {
        let mut out = Vec::new();
        for &ram in memory {
            let mut cut = ram.start;
            let mut pieces: Vec<Memblk> = self
                .memblks
                .iter()
                .filter_map(|b| {
                    b.range.intersection(&ram).map(|r| Memblk {
                        nid: b.nid,
                        range: r,
                    })
                })
                .collect();
            pieces.sort_by_key(|b| b.range.start);
            for p in pieces {
                let start = p.range.start.max(cut);
                if start >= p.range.end {
                    continue;
                }
                if cut < start {
                    out.push((None, PhysRange::new(cut, start)));
                }
                out.push((Some(p.nid), PhysRange::new(start, p.range.end)));
                cut = p.range.end;
            }
            if cut < ram.end {
                out.push((None, PhysRange::new(cut, ram.end)));
            }
        }
        out
    }

    /// Writes the messages through the `log` facade.
    pub fn log(&self) {
        for (level, line) in &self.messages {
            match level {
                Level::Debug => log::debug!("{line}"),
                Level::Info => log::info!("{line}"),
                Level::Warn => log::warn!("{line}"),
                Level::Error => log::error!("{line}"),
            }
        }
    }
}

fn meminfo_to_nid(blks: &[Memblk], addr: u64) -> Option<usize> {
    blks.iter().find(|b| b.range.contains(addr)).map(|b| b.nid)
}

/// `%#010Lx-%#010Lx` of an inclusive range.
fn mem10(r: PhysRange) -> String {
    format!("[mem {:#010x}-{:#010x}]", r.start, r.end.wrapping_sub(1))
}

/// The state of one `numa_init` attempt.
struct Attempt {
    messages: Vec<(Level, String)>,
    pxm_to_node: BTreeMap<u32, usize>,
    apic_to_node: BTreeMap<u32, usize>,
    parsed: u64,
    memblks: Vec<Memblk>,
    reserved: Vec<Memblk>,
    hotplug: Vec<PhysRange>,
    distance: Vec<u8>,
    distance_cnt: usize,
}

impl Attempt {
    fn new() -> Self {
        Attempt {
            messages: Vec::new(),
            pxm_to_node: BTreeMap::new(),
            apic_to_node: BTreeMap::new(),
            parsed: 0,
            memblks: Vec::new(),
            reserved: Vec::new(),
            hotplug: Vec::new(),
            distance: Vec::new(),
            distance_cnt: 0,
        }
    }

    fn say(&mut self, level: Level, line: String) {
        self.messages.push((level, line));
    }

    /// `acpi_map_pxm_to_node`.
    fn map_pxm(&mut self, pxm: u32) -> Option<usize> {
        if pxm >= MAX_PXM_DOMAINS {
            return None;
        }
        if let Some(&nid) = self.pxm_to_node.get(&pxm) {
            return Some(nid);
        }
        let used: u64 = self.pxm_to_node.values().fold(0, |m, &n| m | (1 << n));
        let nid = (!used).trailing_zeros() as usize;
        if nid >= MAX_NUMNODES {
            return None;
        }
        self.pxm_to_node.insert(pxm, nid);
        Some(nid)
    }

    /// `numa_add_memblk_to`; false when the list is full.
    fn add_memblk(list: &mut Vec<Memblk>, nid: usize, range: PhysRange) -> Result<(), String> {
        if range.start == range.end {
            return Ok(());
        }
        if list.len() >= NR_NODE_MEMBLKS {
            return Err(String::from("too many memblk ranges"));
        }
        list.push(Memblk { nid, range });
        Ok(())
    }

    /// The SRAT walk of `acpi_numa_init`; returns the number of memory blocks added, or
    /// `None` after `bad_srat()`.
    fn parse_srat(&mut self, srat: &Srat) -> Option<usize> {
        let rev = srat.revision();
        let bad = |a: &mut Attempt| {
            a.say(Level::Error, String::from("ACPI: SRAT: SRAT not used."));
            None
        };
        // Processor entries first, all types in one pass, as acpi_table_parse_entries_array.
        for e in &srat.entries {
            match *e {
                SratEntry::Malformed { typ: 0 | 2, .. } => return bad(self),
                SratEntry::Cpu(cpu) => {
                    if !cpu.enabled() {
                        continue;
                    }
                    let pxm = cpu.pxm_for_revision(rev);
                    let Some(nid) = self.map_pxm(pxm) else {
                        self.say(
                            Level::Error,
                            format!("SRAT: Too many proximity domains {pxm:x}"),
                        );
                        return bad(self);
                    };
                    self.apic_to_node.insert(cpu.apic_id, nid);
                    self.parsed |= 1 << nid;
                    let id = if cpu.x2apic {
                        format!("{:#06x}", cpu.apic_id)
                    } else {
                        format!("{:#04x}", cpu.apic_id)
                    };
                    self.say(
                        Level::Info,
                        format!("SRAT: PXM {pxm} -> APIC {id} -> Node {nid}"),
                    );
                }
                _ => {}
            }
        }
        let mut added = 0;
        for e in &srat.entries {
            match *e {
                SratEntry::Malformed { typ: 1, length, .. } => {
                    self.say(
                        Level::Error,
                        format!("ACPI: SRAT: Unexpected header length: {length}"),
                    );
                    return bad(self);
                }
                SratEntry::Memory(ma) => {
                    if !ma.enabled() {
                        continue;
                    }
                    let pxm = if rev <= 1 { ma.pxm & 0xff } else { ma.pxm };
                    let Some(nid) = self.map_pxm(pxm) else {
                        self.say(
                            Level::Error,
                            String::from("ACPI: SRAT: Too many proximity domains."),
                        );
                        return bad(self);
                    };
                    let range = ma.range();
                    if let Err(why) = Self::add_memblk(&mut self.memblks, nid, range) {
                        self.say(Level::Error, why);
                        self.say(
                            Level::Error,
                            format!(
                                "ACPI: SRAT: Failed to add memblk to node {nid} {}",
                                mem10(range)
                            ),
                        );
                        return bad(self);
                    }
                    self.parsed |= 1 << nid;
                    let hot = ma.hot_pluggable();
                    self.say(
                        Level::Info,
                        format!(
                            "ACPI: SRAT: Node {nid} PXM {pxm} {}{}{}",
                            mem10(range),
                            if hot { " hotplug" } else { "" },
                            if ma.non_volatile() {
                                " non-volatile"
                            } else {
                                ""
                            }
                        ),
                    );
                    if hot && !range.is_empty() {
                        self.hotplug.push(range);
                    }
                    added += 1;
                }
                _ => {}
            }
        }
        Some(added)
    }

    /// `acpi_numa_slit_init` with `numa_set_distance`.
    fn apply_slit(&mut self, slit: &Slit) {
        for i in 0..slit.count {
            let Some(from) = self.pxm_to_node.get(&(i as u32)).copied() else {
                continue;
            };
            for j in 0..slit.count {
                let Some(to) = self.pxm_to_node.get(&(j as u32)).copied() else {
                    continue;
                };
                if let Some(d) = slit.distance(i, j) {
                    self.set_distance(from, to, d);
                }
            }
        }
    }

    /// `numa_set_distance`: the first call allocates the table (`numa_alloc_distance`), sized
    /// by the highest parsed or block node, with 10/20 defaults. Pairs outside the table are
    /// dropped (the SLIT and the emulation never produce any with a valid diagonal).
    fn set_distance(&mut self, from: usize, to: usize, d: u8) {
        if self.distance_cnt == 0 {
            let highest = (0..MAX_NUMNODES)
                .rev()
                .find(|&n| self.parsed & (1 << n) != 0 || self.memblks.iter().any(|b| b.nid == n));
            let cnt = highest.map_or(0, |h| h + 1);
            self.distance_cnt = cnt;
            self.distance = (0..cnt * cnt)
                .map(|i| {
                    if i / cnt == i % cnt {
                        LOCAL_DISTANCE
                    } else {
                        REMOTE_DISTANCE
                    }
                })
                .collect();
            self.say(
                Level::Debug,
                format!("NUMA: Initialized distance table, cnt={cnt}"),
            );
        }
        let cnt = self.distance_cnt;
        if from < cnt && to < cnt && (from != to || d == LOCAL_DISTANCE) {
            self.distance[from * cnt + to] = d;
        }
    }

    /// `numa_cleanup_meminfo`; `Err` when blocks of different nodes overlap.
    fn cleanup(&mut self, memory: &[PhysRange], high: u64) -> Result<(), ()> {
        let mut i = 0;
        while i < self.memblks.len() {
            let b = self.memblks[i];
            if !memory.iter().any(|m| m.overlaps(&b.range)) {
                self.memblks.remove(i);
                let _ = Self::add_memblk(&mut self.reserved, b.nid, b.range);
                continue;
            }
            if b.range.end > high {
                let _ =
                    Self::add_memblk(&mut self.reserved, b.nid, PhysRange::new(high, b.range.end));
                self.memblks[i].range.end = high;
            }
            if self.memblks[i].range.start >= self.memblks[i].range.end {
                self.memblks.remove(i);
                continue;
            }
            i += 1;
        }
        let mut i = 0;
        while i < self.memblks.len() {
            let mut j = i + 1;
            while j < self.memblks.len() {
                let (bi, bj) = (self.memblks[i], self.memblks[j]);
                if bi.range.end > bj.range.start && bi.range.start < bj.range.end {
                    if bi.nid != bj.nid {
                        self.say(
                            Level::Error,
                            format!(
                                "node {} {} overlaps with node {} {}",
                                bi.nid,
                                mem10(bi.range),
                                bj.nid,
                                mem10(bj.range)
                            ),
                        );
                        return Err(());
                    }
                    self.say(
                        Level::Warn,
                        format!(
                            "Warning: node {} {} overlaps with itself {}",
                            bi.nid,
                            mem10(bi.range),
                            mem10(bj.range)
                        ),
                    );
                }
                if bi.nid != bj.nid {
                    j += 1;
                    continue;
                }
                let merged = PhysRange::new(
                    bi.range.start.min(bj.range.start),
                    bi.range.end.max(bj.range.end),
                );
                let blocked = self.memblks.iter().any(|bk| {
                    bk.nid != bi.nid && merged.start < bk.range.end && merged.end > bk.range.start
                });
                if blocked {
                    j += 1;
                    continue;
                }
                self.say(
                    Level::Info,
                    format!(
                        "NUMA: Node {} {} + {} -> {}",
                        bi.nid,
                        mem10(bi.range),
                        mem10(bj.range),
                        mem10(merged)
                    ),
                );
                self.memblks[i].range = merged;
                self.memblks.remove(j);
            }
            i += 1;
        }
        Ok(())
    }

    /// `numa_emulation`: replaces the blocks by fake nodes' when `numa=fake=` asks for them
    /// and the split succeeds; otherwise leaves everything as it was.
    fn emulate(&mut self, fake: Option<FakeSpec>, memory: &[PhysRange], high: u64) {
        let n = match fake {
            None => return,
            Some(FakeSpec::Nodes(n)) => n,
            Some(FakeSpec::Unsupported) => {
                self.say(
                    Level::Warn,
                    String::from(
                        "NUMA: numa=fake= takes a node count here (size and uniform forms are \
                         not implemented); emulation not used",
                    ),
                );
                return;
            }
        };
        let physnodes = mask_nodes(self.parsed);
        let mut msgs = Vec::new();
        let emu =
            split_nodes_interleave(&self.memblks, &physnodes, memory, high, n, &mut |l, m| {
                msgs.push((l, m))
            });
        self.messages.append(&mut msgs);
        let Some(emu) = emu else { return };
        let saved = (self.memblks.clone(), self.reserved.clone());
        self.memblks = emu.blks;
        if self.cleanup(memory, high).is_err() {
            self.say(
                Level::Warn,
                String::from("NUMA: Warning: constructed meminfo invalid, disabling emulation"),
            );
            (self.memblks, self.reserved) = saved;
            return;
        }
        self.parsed = self.memblks.iter().fold(0, |m, b| m | (1 << b.nid));
        let e2p: Vec<usize> = emu.emu_nid_to_phys.iter().map(|p| p.unwrap_or(0)).collect();
        for v in self.apic_to_node.values_mut() {
            *v = e2p
                .iter()
                .zip(&emu.emu_nid_to_phys)
                .position(|(_, p)| *p == Some(*v))
                .unwrap_or(0);
        }
        // numa_reset_distance, then every pair from the physical distances.
        let (phys, phys_cnt) = (core::mem::take(&mut self.distance), self.distance_cnt);
        self.distance_cnt = 0;
        let cnt = mask_nodes(self.parsed).last().map_or(0, |&n| n + 1);
        for i in 0..cnt {
            for j in 0..cnt {
                let (pi, pj) = (e2p[i], e2p[j]);
                let d = if pi >= phys_cnt || pj >= phys_cnt {
                    if pi == pj {
                        LOCAL_DISTANCE
                    } else {
                        REMOTE_DISTANCE
                    }
                } else {
                    phys[pi * phys_cnt + pj]
                };
                self.set_distance(i, j, d);
            }
        }
    }

    /// `numa_register_memblks`' node masks, and the layout.
    fn finish(self, source: NumaSource) -> NumaLayout {
        let possible = self
            .memblks
            .iter()
            .fold(self.parsed, |m, b| m | (1 << b.nid));
        NumaLayout {
            source,
            pxm_to_node: self.pxm_to_node,
            apic_to_node: self.apic_to_node,
            possible: mask_nodes(possible),
            memblks: self.memblks,
            reserved: self.reserved,
            hotplug: self.hotplug,
            distance: self.distance,
            distance_cnt: self.distance_cnt,
            messages: self.messages,
        }
    }

    /// `numa_meminfo_cover_memory`.
    fn covers_memory(&mut self, memory: &[PhysRange], max_pfn: u64) -> bool {
        let pages = |r: PhysRange| {
            let s = r.start.div_ceil(PAGE_SIZE);
            let e = r.end / PAGE_SIZE;
            e.saturating_sub(s)
        };
        let mut numaram: u64 = 0;
        for b in &self.memblks {
            numaram += memory
                .iter()
                .filter_map(|m| m.intersection(&b.range))
                .map(pages)
                .sum::<u64>();
        }
        let below = PhysRange::new(0, max_pfn.saturating_mul(PAGE_SIZE));
        let e820ram: u64 = memory
            .iter()
            .filter_map(|m| m.intersection(&below))
            .map(pages)
            .sum();
        if e820ram.saturating_sub(numaram) >= (1 << (20 - 12)) {
            self.say(
                Level::Error,
                format!(
                    "NUMA: nodes only cover {}MB of your {}MB e820 RAM. Not used.",
                    (numaram * PAGE_SIZE) >> 20,
                    (e820ram * PAGE_SIZE) >> 20
                ),
            );
            return false;
        }
        true
    }
}

fn mask_nodes(mask: u64) -> Vec<usize> {
    (0..MAX_NUMNODES).filter(|n| mask & (1 << n) != 0).collect()
}

/// Linux's `x86_numa_init` over the parsed SRAT and SLIT and the RAM ranges.
pub fn numa_init(input: NumaInput<'_>) -> NumaLayout {
    let memory = input.memory;
    let max_pfn = memory.iter().map(|r| r.end / PAGE_SIZE).max().unwrap_or(0);
    let high = max_pfn * PAGE_SIZE;
    let mut carried = Vec::new();
    let mut pxm_to_node = BTreeMap::new();
    if !input.numa_off {
        let mut a = Attempt::new();
        let srat = match input.srat {
            Some(Ok(srat)) => {
                if let Some(p) = srat.problem {
                    a.say(Level::Warn, format!("{p}"));
                }
                Some(srat)
            }
            Some(Err(e)) => {
                a.say(Level::Warn, format!("{e}"));
                None
            }
            None => None,
        };
        let parsed = srat.and_then(|s| a.parse_srat(s));
        match input.slit {
            Some(Ok(slit)) if parsed.is_some() => a.apply_slit(slit),
            Some(Err(e)) => a.say(Level::Info, format!("{e}")),
            _ => {}
        }
        if parsed.is_some_and(|n| n > 0) && a.cleanup(memory, high).is_ok() {
            a.emulate(input.fake, memory, high);
            if a.covers_memory(memory, max_pfn) {
                return a.finish(NumaSource::Srat);
            }
        }
        carried = a.messages;
        pxm_to_node = a.pxm_to_node;
    }
    // dummy_numa_init, then the same clean-up and emulation.
    let mut a = Attempt::new();
    a.messages = carried;
    a.pxm_to_node = pxm_to_node;
    let off = input.numa_off;
    a.say(
        Level::Info,
        String::from(if off {
            "NUMA turned off"
        } else {
            "No NUMA configuration found"
        }),
    );
    a.say(
        Level::Info,
        format!(
            "Faking a node at [mem {:#018x}-{:#018x}]",
            0,
            high.wrapping_sub(1)
        ),
    );
    a.parsed = 1;
    let _ = Attempt::add_memblk(&mut a.memblks, 0, PhysRange::new(0, high));
    if a.cleanup(memory, high).is_ok() {
        a.emulate(input.fake, memory, high);
    }
    a.finish(if off {
        NumaSource::Off
    } else {
        NumaSource::NoConfig
    })
}
