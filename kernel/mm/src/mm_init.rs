//! Boot: [`Machine::init_numa`] does what Linux's `sparse_init`, `free_area_init`,
//! `memblock_free_all` and `build_all_zonelists` do.
//!
//! Every section that holds RAM gets a memmap allocated from memblock **on the section's own
//! node** where that node has room (`memblock_alloc_try_nid`); every struct page is initialised
//! in one pass (zone, node, reserved/hole state); each node's zones are sized from its memblock
//! regions; all free RAM is freed into the buddy allocator of its node's zone per max-order
//! block; then the zonelists, the watermarks and `lowmem_reserve` are computed.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::AtomicUsize;

use crate::machine::{InitError, Machine};
use crate::memblock::{Memblock, Region};
use crate::memmap_work::MemmapWork;
use crate::memory_hotplug::HotplugState;
use crate::movable::{
    CoreParams, Nid, boot_zone, calculate_node_totalpages, next_boot_zone_boundary,
    zone_movable_for,
};
use crate::node::{PgData, build_zonelist};
use crate::numa::{Topology, node_orders};
use crate::page::{Page, PageFlags};
use crate::pageblock::{MIGRATE_TYPES, MigrateType, PAGEBLOCK_NR_PAGES};
use crate::platform::Platform;
use crate::sparse::{
    MEMMAP_BYTES_PER_SECTION, MemmapOrigin, PAGES_PER_SECTION, Sparse, pfn_to_section_nr,
    section_nr_to_pfn,
};
use crate::zone::ZoneId;
use crate::{MAX_PFN_LIMIT, PAGE_SIZE, buddy, pfn_down, pfn_up, watermark};

/// Whether `pfn` is inside one of `regions` (with `round_in`: only pages entirely inside count,
/// as for RAM; otherwise any overlap counts, as for reservations), the node of that region (of
/// the next region for a pfn outside them, of the last one past the end), and the next pfn
/// where the answer may change.
fn classify(regions: &[Region], pfn: u64, round_in: bool) -> (bool, u8, u64) {
    let mut last_nid = 0;
    for r in regions {
        let (s, e) = if round_in {
            (pfn_up(r.base), pfn_down(r.end()))
        } else {
            (pfn_down(r.base), pfn_up(r.end()))
        };
        if s >= e {
            continue;
        }
        let nid = r.nid as u8;
        if pfn < s {
            return (false, nid, s);
        }
        if pfn < e {
            return (true, nid, e);
        }
        last_nid = nid;
    }
    (false, last_nid, u64::MAX)
}

/// Initialise `pages`, the struct pages of the pfns from `start_pfn` on, from memblock: zone by
/// address or, from its node's Movable start on (`zone_movable_pfn` per node, 0 for none),
/// Movable; node from the memblock region; holes `RESERVED|HOLE`, memblock reservations
/// `RESERVED`, free RAM without state flags. One `fill` per run of identical pages; this is the
/// whole per-page cost of boot. Pages for pfns at or past [`MAX_PFN_LIMIT`] (which cannot
/// exist) are left as they are.
pub fn memmap_init_pages(
    memblock: &Memblock,
    zone_movable_pfn: &[u64],
    start_pfn: u64,
    pages: &mut [Page],
) {
    let (mem, res) = (memblock.memory().regions(), memblock.reserved().regions());
    let end = start_pfn
        .saturating_add(pages.len() as u64)
        .min(MAX_PFN_LIMIT);
    let mut pfn = start_pfn;
    while pfn < end {
        let (in_mem, nid, mem_next) = classify(mem, pfn, true);
        let (in_res, _, res_next) = classify(res, pfn, false);
        let sec_end = section_nr_to_pfn(pfn_to_section_nr(pfn) + 1);
        let next = next_boot_zone_boundary(zone_movable_pfn, usize::from(nid), pfn, end)
            .min(mem_next)
            .min(res_next)
            .min(sec_end);
        let flags = if !in_mem {
            PageFlags::RESERVED.union(PageFlags::HOLE)
        } else if in_res {
            PageFlags::RESERVED
        } else {
            PageFlags::empty()
        };
        let template = Page::new(
            flags,
            boot_zone(zone_movable_pfn, usize::from(nid), pfn),
            nid,
            pfn_to_section_nr(pfn) as u32,
        );
        let (a, b) = ((pfn - start_pfn) as usize, (next - start_pfn) as usize);
        Page::fill(&mut pages[a..b], &template);
        pfn = next;
    }
}

impl<P: Platform> Machine<P> {
    /// One node over all of memblock's RAM: [`init_numa`](Self::init_numa) with
    /// [`Topology::single`].
    pub fn init(platform: P, memblock: Memblock) -> Result<Self, InitError> {
        Self::init_numa(platform, memblock, Topology::single())
    }

    /// Build the memmap, the nodes' zones and the buddy allocator from memblock (whose memory
    /// regions carry their node ids, [`Memblock::set_node`]), and free every free RAM page into
    /// the buddy allocator. The memmap is allocated from `memblock`, so it ends up reserved.
    /// Allocates a few KiB of heap (section tables, nodes, zonelists).
    pub fn init_numa(
        platform: P,
        memblock: Memblock,
        topology: Topology,
    ) -> Result<Self, InitError> {
        Self::init_numa_with(platform, memblock, topology, &InitOptions::default())
    }

    /// [`init_numa`](Self::init_numa) with Linux's deferred struct page init
    /// (`CONFIG_DEFERRED_STRUCT_PAGE_INIT`, [`Deferral::HighestZone`]): of each node's highest
    /// zone only the first section's worth of struct pages (up to a section boundary) is
    /// written and freed now, the lower zones whole (for address-limited allocations); the
    /// rest of the node waits, without struct pages (`pfn_valid` is false there), for
    /// [`deferred_init_memmap`](Self::deferred_init_memmap), which spreads the work over the
    /// CPUs once they run. Its memmap is already allocated (and accounted) now.
    pub fn init_numa_deferred(
        platform: P,
        memblock: Memblock,
        topology: Topology,
    ) -> Result<Self, InitError> {
        Self::init_with(
            platform,
            memblock,
            topology,
            &InitOptions {
                deferred: Deferral::HighestZone,
                ..InitOptions::default()
            },
        )
    }

    /// [`init_numa`](Self::init_numa) with the choices of [`InitOptions`]: deferred struct
    /// page init and a ZONE_MOVABLE (`kernelcore=`, `movablecore=`, `movable_node`), placed as
    /// Linux's `find_zone_movable_pfns_for_nodes` places it.
    pub fn init_with(
        platform: P,
        memblock: Memblock,
        topology: Topology,
        opts: &InitOptions,
    ) -> Result<Self, InitError> {
        Self::init_numa_with(platform, memblock, topology, opts)
    }

    fn init_numa_with(
        platform: P,
        memblock: Memblock,
        topology: Topology,
        opts: &InitOptions,
    ) -> Result<Self, InitError> {
        let min_pfn = memblock.start_pfn();
        let max_pfn = memblock.end_pfn();
        if memblock.memory().regions().is_empty() || max_pfn <= min_pfn {
            return Err(InitError::NoMemory);
        }
        if max_pfn > MAX_PFN_LIMIT {
            return Err(InitError::OutOfRange);
        }
        if let Some(r) = memblock
            .memory()
            .regions()
            .iter()
            .find(|r| usize::from(r.nid) >= topology.nr_nodes())
        {
            return Err(InitError::BadNode {
                nid: usize::from(r.nid),
            });
        }
        let (arch_zones, zone_movable) =
            zone_movable_for(&memblock, &opts.hotpluggable, &opts.core);
        let mut m = Self {
            platform,
            memblock,
            arch_zones,
            zone_movable,
            movable_node: opts.core.movable_node,
            sparse: Sparse::new(),
            nodes: Vec::new(),
            node_data: Vec::new(),
            topology,
            cpu_node: Vec::new(),
            cpu_online: Vec::new(),
            il_prev: AtomicUsize::new(0),
            min_pfn,
            max_pfn,
            memmap_ram_bytes: 0,
            memmap_device_bytes: 0,
            pagemaps: Vec::new(),
            hotplug: HotplugState::new(),
            movable_ops: Vec::new(),
            deferred: Vec::new(),
            background: None,
            memmap_allocs: Vec::new(),
            vm_total_pages: 0,
        };
        m.cpu_node = (0..m.topology.nr_cpus())
            .map(|cpu| m.topology.cpu_to_node(cpu as u32) as u8)
            .collect();
        m.cpu_online = alloc::vec![true; m.cpu_node.len()];
        m.alloc_node_data()?;
        let boot = m.sparse_init(opts.deferred)?;
        // Every struct page is work for idle CPUs before anything is written: they start
        // on the boot sections' while this CPU writes the node data, and go on with the
        // deferred ones while it builds the zones.
        let boot = m.start_memmap_work(boot);
        m.init_node_data()?;
        m.memmap_init_boot(&boot)?;
        m.free_area_init();
        // Linux builds the zonelists before memblock frees anything, from estimates.
        let total = m.boot_total_pages(core::mem::size_of::<Page>() as u64);
        m.mark_all_memmap();
        let deferred = m.deferred_ranges();
        m.memblock_free_all(&deferred, false);
        m.build_all_zonelists_with(total);
        m.setup_per_zone_wmarks();
        Ok(m)
    }

    /// `alloc_node_data`: room for every node's [`PgData`] in memblock memory of that node
    /// (any node for a memoryless one), before the memmap, so it sits at the top of the
    /// node's RAM as Linux's does. Written later, by [`init_node_data`](Self::init_node_data).
    fn alloc_node_data(&mut self) -> Result<(), InitError> {
        let size = (core::mem::size_of::<PgData>() as u64).next_multiple_of(PAGE_SIZE);
        for nid in 0..self.topology.nr_nodes() {
            let pa = self
                .memblock
                .alloc_try_nid(size, PAGE_SIZE, nid as u16)
                .ok_or(InitError::NodeData { nid })?;
            self.node_data.push((pa, size));
        }
        Ok(())
    }

    /// Every node's [`PgData`] written where [`alloc_node_data`](Self::alloc_node_data) put
    /// it (Linux's `pgdat_init_internals`), with a pageset per possible CPU in each zone.
    fn init_node_data(&mut self) -> Result<(), InitError> {
        for (nid, &(pa, _)) in self.node_data.iter().enumerate() {
            let slot = self
                .platform
                .node_data_storage(pa)
                .map_err(InitError::Map)?;
            let node = slot.write(PgData::new(nid as u8));
            for zone in &mut node.zones {
                zone.setup_pagesets(self.cpu_node.len());
            }
            self.nodes.push(node);
        }
        Ok(())
    }

    /// `sparse_init`: a memmap for every section that holds RAM, one memblock allocation per
    /// run of consecutive sections of one node (per section if that fails), from that node's
    /// RAM where it has room. A section shared by two nodes goes with the first. Records the
    /// allocations (`memmap_allocs`) and the deferred sections' storage (`deferred`), and
    /// returns the boot sections' storage, for
    /// [`memmap_init_boot`](Self::memmap_init_boot). Writes no struct page.
    fn sparse_init(&mut self, defer: Deferral) -> Result<Vec<PendingMemmap>, InitError> {
        // (first section, end section, nid)
        let mut runs: Vec<(u64, u64, u16)> = Vec::new();
        for r in self.memblock.memory().regions() {
            let (s, e) = (pfn_up(r.base), pfn_down(r.end()));
            if s >= e {
                continue;
            }
            let (mut fs, ls) = (pfn_to_section_nr(s), pfn_to_section_nr(e - 1) + 1);
            if let Some(last) = runs.last_mut() {
                if last.1 > fs {
                    fs = last.1; // the shared section stays with the earlier node
                }
                if last.2 == r.nid && last.1 >= fs {
                    last.1 = last.1.max(ls);
                    continue;
                }
            }
            if fs < ls {
                runs.push((fs, ls, r.nid));
            }
        }
        let mut allocs = Vec::new();
        let mut boot = Vec::new();
        for (first, end, nid) in runs {
            let deferred = self.deferred_sections(nid, defer);
            let nsec = end - first;
            let size = nsec * MEMMAP_BYTES_PER_SECTION;
            // Aligned as Linux's sparse_buffer_init aligns its buffer (section_map_size(),
            // PMD_SIZE): each 2 MiB of struct pages is one large page to map, and one to
            // fault in on a host that backs the guest with huge pages; unaligned, the few
            // sections boot writes would straddle two of them. Page-aligned if that fails.
            if let Some(pa) = self
                .memblock
                .alloc_try_nid(size, MEMMAP_ALIGN, nid)
                .or_else(|| self.memblock.alloc_try_nid(size, PAGE_SIZE, nid))
            {
                self.add_memmap(first, nsec, pa, &deferred, &mut boot)?;
                allocs.push((pa, nsec * MEMMAP_BYTES_PER_SECTION));
                continue;
            }
            for nr in first..end {
                let pa = self
                    .memblock
                    .alloc_try_nid(MEMMAP_BYTES_PER_SECTION, PAGE_SIZE, nid)
                    .ok_or(InitError::MemmapAlloc { section: nr })?;
                self.add_memmap(nr, 1, pa, &deferred, &mut boot)?;
                allocs.push((pa, MEMMAP_BYTES_PER_SECTION));
            }
        }
        self.memmap_allocs = allocs;
        Ok(boot)
    }

    /// The boot sections' struct pages as work ([`MemmapWork`]). When some are deferred,
    /// both go to the platform's idle CPUs ([`Platform::start_background`]), the boot ones
    /// first: they are needed first, by [`memmap_init_boot`](Self::memmap_init_boot); the
    /// deferred ones stay `background` work until
    /// [`deferred_init_memmap`](Self::deferred_init_memmap) takes them back.
    fn start_memmap_work(&mut self, boot: Vec<PendingMemmap>) -> Arc<MemmapWork> {
        let work = Arc::new(MemmapWork::new(
            boot,
            &self.memblock,
            &self.zone_movable.zone_movable_pfn,
            &self.cpu_node,
        ));
        if !self.deferred.is_empty() {
            self.platform.start_background(work.clone());
            let deferred = Arc::new(MemmapWork::new(
                core::mem::take(&mut self.deferred),
                &self.memblock,
                &self.zone_movable.zone_movable_pfn,
                &self.cpu_node,
            ));
            self.background = Some(deferred.clone());
            self.platform.start_background(deferred);
        }
        work
    }

    /// The boot sections' struct pages written and added to the section table: with idle
    /// CPUs on them already ([`start_memmap_work`](Self::start_memmap_work)), this CPU
    /// writes what they have not taken and waits for the rest (calling them would wait for
    /// the deferred item each has started too); otherwise on every CPU at once.
    fn memmap_init_boot(&mut self, work: &MemmapWork) -> Result<(), InitError> {
        if self.background.is_some() {
            work.run(self.platform.this_cpu(), &|| false);
            self.add_written(work)
        } else {
            self.finish_memmap_work(work)
        }
    }

    /// The sections of node `nid` whose struct pages wait for
    /// [`deferred_init_memmap`](Self::deferred_init_memmap), as sorted `[first, end)` section
    /// ranges. Linux's `defer_init` rule, for the node's highest zone
    /// ([`Deferral::HighestZone`]) or for each of its zones ([`Deferral::EveryZone`]): a zone
    /// keeps more than a section's worth of its own pages, up to a section boundary
    /// (`first_deferred_pfn`), and the whole sections after that wait. A section a lower
    /// zone shares with the next zone is never deferred: the next zone's first pages are in it.
    fn deferred_sections(&self, nid: u16, defer: Deferral) -> Vec<(u64, u64)> {
        let (mut start, mut end) = (u64::MAX, 0);
        for r in self
            .memblock
            .memory()
            .regions()
            .iter()
            .filter(|r| r.nid == nid)
        {
            let (s, e) = (pfn_up(r.base), pfn_down(r.end()));
            if s < e {
                start = start.min(s);
                end = end.max(e);
            }
        }
        if defer == Deferral::Off || start >= end {
            return Vec::new();
        }
        // The node's zones in address order, each as `[start, end)` clamped to the node.
        let zmp = &self.zone_movable.zone_movable_pfn;
        let mut zones = Vec::new();
        let mut pfn = start;
        while pfn < end {
            let next = next_boot_zone_boundary(zmp, usize::from(nid), pfn, end);
            zones.push((pfn, next));
            pfn = next;
        }
        let considered = match defer {
            Deferral::HighestZone => zones.len() - 1,
            _ => 0,
        };
        let last = zones.len() - 1;
        let mut out = Vec::new();
        for (i, &(zs, ze)) in zones.iter().enumerate().skip(considered) {
            let first = (zs + PAGES_PER_SECTION + 1).next_multiple_of(PAGES_PER_SECTION);
            // The highest zone defers to the node's end (its last section may be partial);
            // a lower one only its whole sections.
            let stop = if i == last {
                pfn_to_section_nr(end - 1) + 1
            } else {
                pfn_to_section_nr(ze)
            };
            if first < ze && pfn_to_section_nr(first) < stop {
                out.push((pfn_to_section_nr(first), stop));
            }
        }
        out
    }

    /// The memmap of `nsec` sections from section `first`, in the memblock allocation at
    /// `pa`: sections in `deferred` (sorted section ranges) wait for
    /// [`deferred_init_memmap`](Self::deferred_init_memmap); the others go to `boot`, to be
    /// written and join the section table at the end of [`sparse_init`](Self::sparse_init).
    fn add_memmap(
        &mut self,
        first: u64,
        nsec: u64,
        pa: u64,
        deferred: &[(u64, u64)],
        boot: &mut Vec<PendingMemmap>,
    ) -> Result<(), InitError> {
        let count = (nsec * PAGES_PER_SECTION) as usize;
        let mut rest = self
            .platform
            .memmap_storage(pa, count)
            .map_err(InitError::Map)?;
        let is_deferred = |nr: u64| deferred.iter().any(|&(a, b)| a <= nr && nr < b);
        let end = first + nsec;
        let mut nr = first;
        while nr < end {
            // The run of sections from `nr` that are all deferred or all not.
            let d = is_deferred(nr);
            let run_end = (nr + 1..end).find(|&k| is_deferred(k) != d).unwrap_or(end);
            let n = ((run_end - nr) * PAGES_PER_SECTION) as usize;
            let (pages, tail) = core::mem::take(&mut rest).split_at_mut(n);
            rest = tail;
            let chunk_pa = pa + (nr - first) * MEMMAP_BYTES_PER_SECTION;
            let chunk = PendingMemmap {
                start_pfn: section_nr_to_pfn(nr),
                pages,
                pa: chunk_pa,
            };
            if d {
                self.deferred.push(chunk);
            } else {
                boot.push(chunk);
            }
            nr = run_end;
        }
        self.memmap_ram_bytes += nsec * MEMMAP_BYTES_PER_SECTION;
        Ok(())
    }

    /// `free_area_init`: every node's zone spans and present counts
    /// (`zone_spanned_pages_in_node`: the node's span clamped to the zone's window). The
    /// struct pages (`memmap_init`) were written by [`sparse_init`](Self::sparse_init):
    /// holes reserved, memblock reservations reserved, free RAM left without state flags (it
    /// is freed by [`memblock_free_all`](Self::memblock_free_all)).
    fn free_area_init(&mut self) {
        let mem = memory_pfn_ranges(&self.memblock);
        for node in &mut self.nodes {
            let spans = calculate_node_totalpages(
                &mem,
                &self.zone_movable,
                &self.arch_zones,
                u16::from(node.id),
            );
            for zid in ZoneId::RAM {
                let (zone, span) = (&mut node.zones[zid.index()], spans[zid.index()]);
                zone.start_pfn = span.zone_start_pfn;
                zone.spanned = span.spanned_pages;
                zone.present = span.present_pages;
            }
        }
    }

    /// `memblock_free_all`: free every free memblock range into the buddy allocator of its
    /// node, one naturally aligned block of up to 1024 pages at a time, never across a zone
    /// boundary (a free range never crosses a node boundary).
    /// With `inside` false, the parts of the free ranges outside the pfn ranges `skip`
    /// (boot: the deferred ones); with `inside` true, only the parts inside them (the deferred
    /// init).
    fn memblock_free_all(&mut self, skip: &[(u64, u64)], inside: bool) {
        let ranges: Vec<(u64, u64, u16)> = self.memblock.free_ranges_nid().collect();
        let mut pieces: Vec<(u64, u64, u16)> = Vec::new();
        for (s, e, nid) in ranges {
            let (s, e) = (pfn_up(s), pfn_down(e));
            if inside {
                for &(a, b) in skip {
                    if a.max(s) < b.min(e) {
                        pieces.push((a.max(s), b.min(e), nid));
                    }
                }
            } else {
                let mut at = s;
                for &(a, b) in skip {
                    if a.max(at) < b.min(e) {
                        if at < a {
                            pieces.push((at, a, nid));
                        }
                        at = at.max(b);
                    }
                }
                if at < e {
                    pieces.push((at, e, nid));
                }
            }
        }
        for (s, end, nid) in pieces {
            let mut pfn = s;
            let zmp = &self.zone_movable.zone_movable_pfn;
            let n = usize::from(nid);
            while pfn < end {
                let zend = next_boot_zone_boundary(zmp, n, pfn, end);
                let zone = &mut self.nodes[n].zones[boot_zone(zmp, n, pfn).index()];
                let areas = zone.areas.get_mut();
                let mut freed = 0;
                while pfn < zend {
                    let order = buddy::max_block_order(pfn, zend);
                    // Every pageblock starts Movable (Linux's memmap_init_range).
                    let mt = self
                        .sparse
                        .pageblock_migratetype(pfn)
                        .unwrap_or(MigrateType::Movable);
                    areas.free_one(&self.sparse, pfn, order, zone.id as u8, zone.node, mt);
                    freed += 1 << order;
                    pfn += 1 << order;
                }
                zone.managed += freed;
                zone.add_free(freed);
            }
        }
    }

    /// `build_all_zonelists`: every node's fallback order and zonelist, from the distances and
    /// the nodes that have memory now. Runs at boot and whenever memory comes online.
    pub(crate) fn build_all_zonelists(&mut self) {
        // The zonelists first: the total walks the local one.
        self.build_all_zonelists_with(0);
        self.build_all_zonelists_with(self.nr_free_pagecache_pages());
    }

    /// [`build_all_zonelists`](Self::build_all_zonelists) with `total` as `vm_total_pages`.
    fn build_all_zonelists_with(&mut self, total: u64) {
        let has_memory: Vec<bool> = self.nodes.iter().map(|n| n.has_memory()).collect();
        let orders = node_orders(&self.topology, &has_memory);
        for (nid, order) in orders.into_iter().enumerate() {
            let list = build_zonelist(&self.nodes, &order);
            self.nodes[nid].set_zonelist(list, order);
        }
        // page_group_by_mobility_disabled: fewer pages than a pageblock per migratetype.
        self.vm_total_pages = total;
        let disabled = total < PAGEBLOCK_NR_PAGES * MIGRATE_TYPES as u64;
        for zone in self.nodes.iter_mut().flat_map(|n| n.zones.iter_mut()) {
            zone.mobility_disabled = disabled;
        }
    }

    /// Linux's `vm_total_pages` at boot: `build_all_zonelists` runs before memblock frees
    /// anything, so `nr_free_zone_pages` sums the estimates `free_area_init_core` left in
    /// `managed_pages` (`zone_init_internals`), with no watermark yet: each zone's present
    /// pages less its memmap (`calc_memmap_size` with struct pages of `page_size` bytes:
    /// the present pages when holes make the span more than 1/16 larger, else the span),
    /// and the first zone less `dma_reserve` (x86's `memblock_find_dma_reserve`: RAM below
    /// 16 MiB that memblock has reserved). Every node's zones count: the local zonelist
    /// falls back to all of them.
    pub fn boot_total_pages(&self, page_size: u64) -> u64 {
        let dma_end = ZoneId::Dma.window().map_or(0, |w| w.1);
        let clamp = |s: u64, e: u64| (s.min(dma_end), e.min(dma_end));
        let mem: u64 = memory_pfn_ranges(&self.memblock)
            .iter()
            .map(|&(s, e, _)| clamp(s, e))
            .map(|(s, e)| e - s)
            .sum();
        let free: u64 = self
            .memblock
            .free_ranges_nid()
            .map(|(s, e, _)| clamp(pfn_up(s), pfn_down(e)))
            .map(|(s, e)| e.saturating_sub(s))
            .sum();
        let dma_reserve = mem.saturating_sub(free);
        let mut total = 0;
        for node in &self.nodes {
            for (j, zone) in node.zones.iter().enumerate() {
                if zone.id == ZoneId::Device {
                    continue;
                }
                let (spanned, present) = (zone.spanned, zone.present);
                let pages = if spanned > present + (present >> 4) {
                    present
                } else {
                    spanned
                };
                let memmap = (pages * page_size).div_ceil(PAGE_SIZE);
                let mut freesize = present;
                if freesize >= memmap {
                    freesize -= memmap;
                }
                if j == 0 && freesize > dma_reserve {
                    freesize -= dma_reserve;
                }
                total += freesize;
            }
        }
        total
    }

    /// `nr_free_pagecache_pages` (`vm_total_pages`): over the local node's zonelist for
    /// `GFP_HIGHUSER_MOVABLE`, each zone's managed pages above its high watermark.
    pub fn nr_free_pagecache_pages(&self) -> u64 {
        self.nodes[self.local_node()]
            .zonelist()
            .iter()
            .map(|zr| {
                let z = self.nodes[usize::from(zr.nid)].zone(zr.zone);
                z.managed().saturating_sub(z.watermarks().high)
            })
            .sum()
    }

    /// Whether pages are grouped by mobility (Linux's "mobility grouping on"); off on a
    /// machine with fewer pages than a pageblock per migratetype.
    pub fn mobility_grouping(&self) -> bool {
        !self.zones().any(|z| z.mobility_disabled)
    }

    /// `setup_per_zone_wmarks` and `setup_per_zone_lowmem_reserve` over every node, then
    /// every CPU list's `high` and `batch` from the new watermarks (`zone_pcp_update`).
    pub(crate) fn setup_per_zone_wmarks(&mut self) {
        watermark::setup_per_zone_wmarks(&mut self.nodes);
        for node in &mut self.nodes {
            watermark::setup_per_zone_lowmem_reserve(&mut node.zones);
        }
        self.zone_pcp_update();
    }
}

/// Which struct pages boot leaves to [`Machine::deferred_init_memmap`]
/// (`CONFIG_DEFERRED_STRUCT_PAGE_INIT`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Deferral {
    /// None: every struct page is written at boot.
    #[default]
    Off,
    /// Linux's rule (`defer_init`): of each node's highest zone, all but the first section's
    /// worth; the lower zones are written whole at boot, for address-limited allocations.
    HighestZone,
    /// The same rule for every zone of every node: each keeps its first section's worth
    /// (DMA, inside the first section, is always whole), the rest waits. Boot then writes
    /// a few sections per node instead of all of DMA32, which on a large machine is most of
    /// the serial set-up; address-limited allocations before the deferred init have the
    /// first 128-256 MiB of DMA32 (no early user of this kernel needs more).
    EveryZone,
}

/// Alignment of a boot memmap allocation: PMD_SIZE, as Linux's `section_map_size()`.
pub const MEMMAP_ALIGN: u64 = 2 << 20;

/// How [`Machine::init_with`] builds the machine beyond memblock and the topology.
#[derive(Clone, Debug, Default)]
pub struct InitOptions {
    /// Deferred struct page init ([`Machine::init_numa_deferred`]).
    pub deferred: Deferral,
    /// `kernelcore=` / `movablecore=` / `movable_node` (all zero: no ZONE_MOVABLE).
    pub core: CoreParams,
    /// The byte ranges `[start, end)` the SRAT marks hot-pluggable (memblock's
    /// `MEMBLOCK_HOTPLUG`); only `movable_node` reads them.
    pub hotpluggable: Vec<(u64, u64)>,
}

/// memblock's RAM as `(start_pfn, end_pfn, nid)`, whole pages only (what Linux's
/// `for_each_mem_pfn_range` yields).
pub(crate) fn memory_pfn_ranges(memblock: &Memblock) -> Vec<(u64, u64, Nid)> {
    memblock
        .memory()
        .regions()
        .iter()
        .map(|r| (pfn_up(r.base), pfn_down(r.end()), r.nid))
        .filter(|r| r.0 < r.1)
        .collect()
}

/// Struct pages not written yet (the boot sections' until the end of `sparse_init`, the
/// deferred ones until [`Machine::deferred_init_memmap`]): their storage (allocated and
/// accounted at boot) and the pfn they start at. Not in the section table yet, so no pfn
/// they describe is valid.
pub(crate) struct PendingMemmap {
    pub(crate) start_pfn: u64,
    pub(crate) pages: &'static mut [Page],
    /// Physical address of `pages` (memblock RAM).
    pub(crate) pa: u64,
}

impl<P: Platform> Machine<P> {
    /// Pages whose struct pages are still deferred (0 once
    /// [`deferred_init_memmap`](Self::deferred_init_memmap) has run).
    pub fn deferred_pages(&self) -> u64 {
        self.background.as_ref().map_or(0, |w| w.pages)
    }

    /// Of those, the struct pages written already (by idle CPUs, while the boot went on).
    pub fn deferred_pages_written(&self) -> u64 {
        self.background.as_ref().map_or(0, |w| w.pages_written())
    }

    /// Run a pending deferred init before an operation that adds sections (its sections are
    /// not in the section table yet). A failure is logged: those pages stay without struct
    /// pages, and the operation then sees them as absent.
    pub(crate) fn finish_deferred_init(&mut self) {
        if let Err(e) = self.deferred_init_memmap() {
            log::error!("deferred struct page init: {e}");
        }
    }

    /// The pfn ranges `[start, end)` still deferred, sorted.
    fn deferred_ranges(&self) -> Vec<(u64, u64)> {
        self.background
            .as_ref()
            .map_or_else(Vec::new, |w| w.ranges.clone())
    }

    /// Flag the frames of every boot memmap allocation that have struct pages.
    fn mark_all_memmap(&mut self) {
        for (pa, size) in self.memmap_allocs.clone() {
            self.mark_memmap(pfn_down(pa), size / PAGE_SIZE);
        }
    }

    /// Write what is left of `work` on every CPU at once through [`Platform::parallel`],
    /// then take its struct pages back and add them to the section table. Work items are
    /// the whole sections within 2 MiB of storage; each CPU starts with its own node's (as
    /// Linux's per-node `pgdatinit` threads), then helps with the rest. The deferred
    /// memmap ([`deferred_init_memmap`](Self::deferred_init_memmap)) comes here, and the
    /// boot sections' when nothing is deferred ([`memmap_init_boot`](Self::memmap_init_boot)).
    fn finish_memmap_work(&mut self, work: &MemmapWork) -> Result<(), InitError> {
        self.platform.parallel(&|cpu| work.run(cpu, &|| false));
        self.add_written(work)
    }

    /// Take the struct pages of `work` back (written; an item another CPU is still writing
    /// is waited for) and add them to the section table.
    fn add_written(&mut self, work: &MemmapWork) -> Result<(), InitError> {
        for w in work.take_all(&self.memblock, &self.zone_movable.zone_movable_pfn) {
            self.sparse
                .add_chunk(w.start_pfn, w.pages, MemmapOrigin::Memblock { pa: w.pa })
                .map_err(|e| InitError::Sparse(e.0))?;
        }
        Ok(())
    }

    /// `page_alloc_init_late` → `deferred_init_memmap`: write the deferred struct pages on
    /// every CPU at once (`finish_memmap_work`), add their
    /// sections, free their free memory into the buddy allocator and recompute watermarks,
    /// zonelists and per-CPU list sizes. Returns the pages
    /// freed. Nothing to do (0) when nothing was deferred; memremap and hotplug run it first
    /// themselves if it is still pending.
    pub fn deferred_init_memmap(&mut self) -> Result<u64, InitError> {
        let Some(work) = self.background.take() else {
            return Ok(0);
        };
        let ranges = work.ranges.clone();
        self.finish_memmap_work(&work)?;
        self.mark_all_memmap();
        let before = self.totalram_pages();
        self.memblock_free_all(&ranges, true);
        self.build_all_zonelists();
        self.setup_per_zone_wmarks();
        Ok(self.totalram_pages() - before)
    }
}
