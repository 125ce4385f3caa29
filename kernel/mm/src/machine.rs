//! The machine: the memory manager's machine-wide part (Linux's globals) and its nodes.
//!
//! One [`Machine`] per kernel owns what Linux keeps in globals: the platform, memblock (with node
//! ids), the sparse memmap, the device pagemaps, the hotplug state, the NUMA topology and
//! `max_pfn`. Its [`PgData`] nodes own the zones. Boot is in [`mm_init`](crate::mm_init), the
//! allocation and free paths in [`page_alloc`](crate::page_alloc).

use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::AtomicUsize;

use crate::memblock::Memblock;
use crate::memory_hotplug::HotplugState;
use crate::memremap::Pagemap;
use crate::movable::{ArchZoneRanges, ZoneMovable};
use crate::node::PgData;
use crate::numa::{Topology, TopologyError};
use crate::page::{Page, PageFlags};
use crate::platform::{MapError, Platform};
use crate::sparse::{Sparse, SparseError};
use crate::zone::{Zone, ZoneId};

/// Why [`Machine::init`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitError {
    /// memblock has no RAM.
    NoMemory,
    /// RAM beyond the 52-bit physical address space.
    OutOfRange,
    /// memblock could not provide memmap storage for a section.
    MemmapAlloc {
        /// The section that got no memmap.
        section: u64,
    },
    /// The platform refused the memmap storage.
    Map(MapError),
    /// The section table refused a chunk.
    Sparse(SparseError),
    /// A memblock region names node `nid`, which the topology does not have.
    BadNode {
        /// The node id.
        nid: usize,
    },
    /// The NUMA topology was refused.
    Topology(TopologyError),
    /// memblock had no memory for a node's data.
    NodeData {
        /// The node.
        nid: usize,
    },
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoMemory => f.write_str("mm: no RAM registered in memblock"),
            Self::OutOfRange => f.write_str("mm: RAM beyond the 52-bit physical address space"),
            Self::MemmapAlloc { section } => {
                write!(f, "mm: no memory for the memmap of section {section}")
            }
            Self::Map(e) => write!(f, "mm: memmap storage: {e}"),
            Self::Sparse(e) => write!(f, "mm: {e}"),
            Self::BadNode { nid } => write!(f, "mm: memory on node {nid}, beyond the topology"),
            Self::Topology(e) => write!(f, "mm: {e}"),
            Self::NodeData { nid } => write!(f, "mm: no memory for NODE_DATA({nid})"),
        }
    }
}

/// What was wrong with a freed page (`bad_page` reasons).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadPageReason {
    /// No struct page for this pfn (hole, absent section, beyond 2^52).
    InvalidPfn,
    /// Order above [`MAX_ORDER`].
    OrderTooLarge,
    /// The page belongs to a device pagemap (ZONE_DEVICE).
    DevicePage,
    /// The page is reserved (firmware, kernel, memmap, hole, offline).
    Reserved,
    /// The page is already free (buddy list or page cache).
    AlreadyFree,
    /// The page heads an allocation of another order.
    WrongOrder {
        /// The order it was allocated with.
        allocated: u32,
    },
    /// The page is not the head of an allocated block.
    NotAllocated,
    /// The block holds struct pages (a device's memmap taken from the buddy allocator):
    /// only the memory manager itself may release it.
    Memmap,
}

impl fmt::Display for BadPageReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidPfn => f.write_str("invalid pfn"),
            Self::OrderTooLarge => f.write_str("order too large"),
            Self::DevicePage => f.write_str("ZONE_DEVICE page freed to the buddy allocator"),
            Self::Reserved => f.write_str("reserved page"),
            Self::AlreadyFree => f.write_str("already free"),
            Self::WrongOrder { allocated } => write!(f, "wrong order (allocated as {allocated})"),
            Self::NotAllocated => f.write_str("not allocated"),
            Self::Memmap => f.write_str("block holds memmap (struct pages) in use"),
        }
    }
}

/// A refused free: the error value of [`Machine::free_pages`]. Its `Display` is the log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadPage {
    /// The pfn passed in.
    pub pfn: u64,
    /// The order passed in.
    pub order: u32,
    /// What was wrong.
    pub reason: BadPageReason,
    /// The page's flags when it was refused (0 for an invalid pfn).
    pub flags: PageFlags,
}

impl fmt::Display for BadPage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bad page: pfn {:#x} order {}: {} (flags {})",
            self.pfn, self.order, self.reason, self.flags
        )
    }
}

/// Errors of [`Machine::get_page`] / [`Machine::put_page`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageRefError {
    /// No struct page for this pfn.
    InvalidPfn,
    /// The page is neither an allocated block head nor a device page.
    NotInUse,
    /// put_page on a device page whose count is already 1 (idle).
    IdleDevicePage,
    /// The reference count would overflow.
    Overflow,
    /// The page's pagemap is being torn down (memunmap_pages): no new reference.
    PagemapDying,
}

impl fmt::Display for PageRefError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::InvalidPfn => "invalid pfn",
            Self::NotInUse => "page is not in use",
            Self::IdleDevicePage => "put_page on an idle device page",
            Self::Overflow => "reference count overflow",
            Self::PagemapDying => "device pagemap is being torn down (disabled)",
        })
    }
}

/// The memory manager of one machine. Generic over the [`Platform`].
pub struct Machine<P: Platform> {
    pub(crate) platform: P,
    pub(crate) memblock: Memblock,
    /// Each zone's possible pfn range at boot (`arch_zone_{lowest,highest}_possible_pfn`).
    pub(crate) arch_zones: ArchZoneRanges,
    /// Where each node's ZONE_MOVABLE starts at boot (`zone_movable_pfn`).
    pub(crate) zone_movable: ZoneMovable,
    /// `movable_node_enabled`: hot-added memory is onlined Movable by default.
    pub(crate) movable_node: bool,
    pub(crate) sparse: Sparse,
    /// The nodes, each stored in memblock memory of its own node where it has memory.
    pub(crate) nodes: Vec<&'static mut PgData>,
    /// Where each node's data lives: `(pa, bytes)` (Linux's `NODE_DATA(N) allocated`).
    pub(crate) node_data: Vec<(u64, u64)>,
    pub(crate) topology: Topology,
    /// `cpu_to_node`: the node of each possible CPU, by CPU number.
    pub(crate) cpu_node: Vec<u8>,
    /// `cpu_online_mask` (every possible CPU until the kernel says otherwise).
    pub(crate) cpu_online: Vec<bool>,
    /// The node the last interleaved allocation went to (`il_prev`).
    pub(crate) il_prev: AtomicUsize,
    pub(crate) min_pfn: u64,
    pub(crate) max_pfn: u64,
    /// Bytes of memmap stored in RAM.
    pub(crate) memmap_ram_bytes: u64,
    /// Bytes of memmap stored on devices (altmap).
    pub(crate) memmap_device_bytes: u64,
    pub(crate) pagemaps: Vec<Pagemap>,
    pub(crate) hotplug: HotplugState<P>,
    /// The owners of movable allocations (`movable_operations`), by [`MovableOwner`] index.
    ///
    /// [`MovableOwner`]: crate::migrate::MovableOwner
    pub(crate) movable_ops: Vec<&'static dyn crate::migrate::MovableOps>,
    /// Struct pages for the deferred init (Linux's `first_deferred_pfn` onwards), while
    /// `sparse_init` collects them (they are `background` work from then on).
    pub(crate) deferred: Vec<crate::mm_init::PendingMemmap>,
    /// The deferred struct pages once boot handed them out as work (`start_memmap_work`,
    /// [`Platform::start_background`]), until `deferred_init_memmap` takes them back.
    pub(crate) background: Option<alloc::sync::Arc<crate::memmap_work::MemmapWork>>,
    /// The boot memmap's memblock allocations `(pa, bytes)`.
    pub(crate) memmap_allocs: Vec<(u64, u64)>,
    /// Linux's `vm_total_pages` as the last `build_all_zonelists` computed it (at boot from
    /// the zones' estimated managed pages, [`Machine::boot_total_pages`]).
    pub(crate) vm_total_pages: u64,
}

/// The nodes live in storage the platform handed out for ever, so dropping a machine (host
/// tests, fuzzing) never drops them: give back their heap parts here so storage can be
/// reused without leaking.
impl<P: Platform> Drop for Machine<P> {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            n.zonelist = Vec::new();
            n.cut = Default::default();
            n.node_order = Vec::new();
            for z in &mut n.zones {
                z.pagesets = Vec::new();
            }
        }
    }
}

impl<P: Platform> fmt::Debug for Machine<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Machine")
            .field("nodes", &self.nodes.len())
            .field("min_pfn", &self.min_pfn)
            .field("max_pfn", &self.max_pfn)
            .field("sparse", &self.sparse)
            .field("pagemaps", &self.pagemaps.len())
            .finish()
    }
}

impl<P: Platform> Machine<P> {
    /// Run the invariant checker after an operation (feature `debug-check`); panics with the
    /// inconsistency, as Linux's `VM_BUG_ON` would.
    #[inline]
    pub(crate) fn debug_check(&self) {
        #[cfg(feature = "debug-check")]
        if let Err(e) = self.check() {
            panic!("mm: {e}");
        }
    }

    /// The nodes, by id (`NODE_DATA`); each lives in its own node's memory (index and call
    /// methods as on `&[PgData]`).
    pub fn nodes(&self) -> &[&'static mut PgData] {
        &self.nodes
    }

    /// One node; None for an id the machine does not have.
    pub fn node(&self, nid: usize) -> Option<&PgData> {
        self.nodes.get(nid).map(|n| &**n)
    }

    /// Where each node's data lives, `(pa, bytes)` by node id.
    pub fn node_data(&self) -> &[(u64, u64)] {
        &self.node_data
    }

    /// Every zone of every node, node by node in index order.
    pub fn zones(&self) -> impl Iterator<Item = &Zone> {
        self.nodes.iter().flat_map(|n| n.zones.iter())
    }

    /// A zone of a node, mutable (the node must exist).
    #[inline]
    pub(crate) fn zone_mut(&mut self, nid: usize, zid: ZoneId) -> &mut Zone {
        &mut self.nodes[nid].zones[zid.index()]
    }

    /// Where each node's ZONE_MOVABLE starts at boot, and the warnings its placement gave.
    pub fn zone_movable(&self) -> &ZoneMovable {
        &self.zone_movable
    }

    /// The NUMA topology (distances, CPUs per node).
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// `smp_processor_id()`: the running CPU, as the platform says.
    #[inline]
    pub fn this_cpu(&self) -> usize {
        self.platform.this_cpu()
    }

    /// `nr_cpu_ids`: the CPUs that have a pageset in every zone (CPU numbers `0..n`).
    pub fn nr_cpus(&self) -> usize {
        self.cpu_node.len()
    }

    /// Whether a CPU is online (`cpu_online`).
    pub fn cpu_online(&self, cpu: usize) -> bool {
        self.cpu_online.get(cpu).copied().unwrap_or(false)
    }

    /// `num_online_cpus`.
    pub fn online_cpus(&self) -> usize {
        self.cpu_online.iter().filter(|&&o| o).count()
    }

    /// `set_cpu_online` with what Linux's CPU hotplug callbacks do for the page
    /// allocator: a CPU going offline has its lists drained (`page_alloc_cpu_dead`),
    /// and every zone's list `high` is recomputed for the CPUs now online on its node
    /// (`zone_pcp_update`). A CPU beyond [`nr_cpus`](Self::nr_cpus) is ignored.
    pub fn set_cpu_online(&mut self, cpu: usize, online: bool) {
        let Some(o) = self.cpu_online.get_mut(cpu) else {
            return;
        };
        *o = online;
        if !online {
            for zone in self.nodes.iter().flat_map(|n| n.zones.iter()) {
                if let Some(ps) = zone.pagesets.get(cpu) {
                    let mut pcp = ps.pcp.lock();
                    let count = pcp.count;
                    crate::page_alloc::free_pcppages_bulk(&self.sparse, zone, &mut pcp, count, 0);
                }
            }
        }
        self.zone_pcp_update();
    }

    /// `zone_pcp_update` for every zone: `high` and `batch` from the watermarks and the
    /// online CPUs of the zone's node.
    pub(crate) fn zone_pcp_update(&mut self) {
        let online = self.online_cpus();
        let cpu_node = &self.cpu_node;
        let cpu_online = &self.cpu_online;
        for node in &mut self.nodes {
            let nid = node.id();
            let node_cpus = (0..cpu_node.len())
                .filter(|&c| cpu_online[c] && usize::from(cpu_node[c]) == nid)
                .count();
            for zone in &mut node.zones {
                zone.set_high_and_batch(node_cpus, online);
            }
        }
    }

    /// `cpu_to_node`: the node of a CPU (node 0 for a CPU the topology does not have).
    #[inline]
    pub fn cpu_node(&self, cpu: usize) -> usize {
        self.cpu_node.get(cpu).map_or(0, |&n| usize::from(n))
    }

    /// `numa_node_id()`: the running CPU's node, which allocations without a node prefer.
    #[inline]
    pub fn local_node(&self) -> usize {
        self.cpu_node(self.this_cpu())
    }

    /// Set the node of the running CPU (ignored for a node the machine does not have or a CPU
    /// beyond [`nr_cpus`](Self::nr_cpus)).
    pub fn set_local_node(&mut self, nid: usize) {
        let cpu = self.this_cpu();
        if nid < self.nodes.len()
            && let Some(n) = self.cpu_node.get_mut(cpu)
        {
            *n = nid as u8;
        }
    }

    /// One past the highest RAM pfn (`max_pfn`); device memory never moves it.
    pub fn max_pfn(&self) -> u64 {
        self.max_pfn
    }

    /// Lowest RAM pfn.
    pub fn min_pfn(&self) -> u64 {
        self.min_pfn
    }

    /// `pfn_valid`.
    #[inline]
    pub fn pfn_valid(&self, pfn: u64) -> bool {
        self.sparse.pfn_valid(pfn)
    }

    /// `pfn_to_page`.
    #[inline]
    pub fn page(&self, pfn: u64) -> Option<&Page> {
        self.sparse.page(pfn)
    }

    /// `page_to_pfn` for a struct page of this memmap.
    pub fn page_to_pfn(&self, page: &Page) -> Option<u64> {
        self.sparse.page_to_pfn(page)
    }

    /// `pfn_to_nid`: the node of a pfn that has a struct page.
    pub fn pfn_to_nid(&self, pfn: u64) -> Option<usize> {
        self.page(pfn).map(|p| p.nid())
    }

    /// The section table.
    pub fn sparse(&self) -> &Sparse {
        &self.sparse
    }

    /// memblock as left after boot (RAM regions with their nodes, hot-added RAM included;
    /// reservations).
    pub fn memblock(&self) -> &Memblock {
        &self.memblock
    }

    /// The platform.
    pub fn platform(&self) -> &P {
        &self.platform
    }

    /// The platform, mutable.
    pub fn platform_mut(&mut self) -> &mut P {
        &mut self.platform
    }

    /// Free pages of all zones of all nodes, per-CPU lists included (what a drain would
    /// leave in the free lists).
    pub fn nr_free_pages(&self) -> u64 {
        self.zones().map(|z| z.free_pages()).sum()
    }

    /// `global_zone_page_state(NR_FREE_PAGES)` as Linux counts it (`MemFree`): free pages in
    /// the buddy free lists, not on per-CPU lists.
    pub fn nr_free_buddy_pages(&self) -> u64 {
        self.zones().map(|z| z.nr_free_pages()).sum()
    }

    /// Managed pages of all zones (`totalram_pages`).
    pub fn totalram_pages(&self) -> u64 {
        self.zones().map(|z| z.managed).sum()
    }

    /// Present RAM pages (`get_num_physpages`); ZONE_DEVICE is never present.
    pub fn physpages(&self) -> u64 {
        self.nodes.iter().map(|n| n.present()).sum()
    }

    /// Pages of device memory registered by memremap_pages (the Device zones' pages).
    pub fn device_pages(&self) -> u64 {
        self.pagemaps
            .iter()
            .map(|m| m.end_pfn() - m.start_pfn())
            .sum()
    }

    /// Bytes of memmap stored in RAM.
    pub fn memmap_ram_bytes(&self) -> u64 {
        self.memmap_ram_bytes
    }

    /// Bytes of memmap stored on device memory (altmap).
    pub fn memmap_device_bytes(&self) -> u64 {
        self.memmap_device_bytes
    }

    /// Flag the frames holding memmap storage.
    pub(crate) fn mark_memmap(&mut self, pfn: u64, n: u64) {
        for p in pfn..pfn.saturating_add(n) {
            if let Some(page) = self.sparse.page(p) {
                page.set(PageFlags::MEMMAP);
            }
        }
    }
}
