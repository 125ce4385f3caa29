//! A NUMA node (`pg_data_t`): its zone array, span, counters and zonelist.
//!
//! Every node has the whole zone array, empty where it has no such memory; DMA and DMA32
//! belong to whichever node holds that memory. A memoryless node (CPUs, no memory) has only the
//! empty array and a zonelist into the other nodes. The machine-wide parts (memmap, memblock,
//! pagemaps, hotplug) live in [`Machine`](crate::Machine).

use alloc::vec::Vec;

use crate::zone::{MAX_NR_ZONES, NumaStat, Zone, ZoneId};

/// One entry of a zonelist (`struct zoneref`): a zone of a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZoneRef {
    /// The node.
    pub nid: u8,
    /// The zone of that node.
    pub zone: ZoneId,
}

/// A node (`struct pglist_data`).
#[derive(Debug)]
pub struct PgData {
    pub(crate) id: u8,
    pub(crate) zones: [Zone; MAX_NR_ZONES],
    /// The fallback zonelist (`ZONELIST_FALLBACK`): the nodes in [`node_orders`] order, each
    /// node's managed zones from the highest down. The `__GFP_THISNODE` list is its entries of
    /// this node.
    ///
    /// [`node_orders`]: crate::numa::node_orders
    pub(crate) zonelist: Vec<ZoneRef>,
    /// The zonelist cut for each allocation class, so the allocation path walks only the
    /// zones it may use: index `2 * highest allowed zone + THISNODE`.
    pub(crate) cut: [Vec<ZoneRef>; 8],
    /// The node fallback order the zonelist was built from.
    pub(crate) node_order: Vec<usize>,
}

impl PgData {
    pub(crate) fn new(id: u8) -> Self {
        Self {
            id,
            zones: ZoneId::ALL.map(|z| Zone::new(z, id)),
            zonelist: Vec::new(),
            cut: Default::default(),
            node_order: Vec::new(),
        }
    }

    /// Set the zonelist and cut it per allocation class (see [`PgData::cut`]).
    pub(crate) fn set_zonelist(&mut self, zonelist: Vec<ZoneRef>, order: Vec<usize>) {
        for high in ZoneId::RAM {
            for thisnode in [false, true] {
                self.cut[cut_index(high, thisnode)] = zonelist
                    .iter()
                    .copied()
                    .filter(|z| z.zone <= high && (!thisnode || z.nid == self.id))
                    .collect();
            }
        }
        self.zonelist = zonelist;
        self.node_order = order;
    }

    /// The node id.
    pub fn id(&self) -> usize {
        usize::from(self.id)
    }

    /// The zones, in index order (DMA, DMA32, Normal, Device).
    pub fn zones(&self) -> &[Zone] {
        &self.zones
    }

    /// One zone.
    pub fn zone(&self, id: ZoneId) -> &Zone {
        &self.zones[id.index()]
    }

    /// `node_start_pfn`: the lowest pfn of the node's RAM zones (0 for a memoryless node).
    pub fn start_pfn(&self) -> u64 {
        self.ram_zones()
            .filter(|z| z.spanned() > 0)
            .map(|z| z.start_pfn())
            .min()
            .unwrap_or(0)
    }

    /// One past the highest pfn of the node's RAM zones.
    pub fn end_pfn(&self) -> u64 {
        self.ram_zones()
            .filter(|z| z.spanned() > 0)
            .map(|z| z.end_pfn())
            .max()
            .unwrap_or(0)
    }

    /// `node_spanned_pages`.
    pub fn spanned(&self) -> u64 {
        self.end_pfn() - self.start_pfn()
    }

    /// `node_present_pages` (RAM only; ZONE_DEVICE is never present).
    pub fn present(&self) -> u64 {
        self.ram_zones().map(|z| z.present()).sum()
    }

    /// Managed pages of the node.
    pub fn managed(&self) -> u64 {
        self.ram_zones().map(|z| z.managed()).sum()
    }

    /// Free pages of the node, per-CPU lists included.
    pub fn free_pages(&self) -> u64 {
        self.zones.iter().map(|z| z.free_pages()).sum()
    }

    /// The node's `NR_FREE_PAGES` as Linux counts it (sysfs `MemFree`, numactl's `free:`):
    /// free pages in the buddy free lists, not on per-CPU lists.
    pub fn nr_free_pages(&self) -> u64 {
        self.zones.iter().map(|z| z.nr_free_pages()).sum()
    }

    /// `N_MEMORY`: the node has memory (present RAM pages).
    pub fn has_memory(&self) -> bool {
        self.present() > 0
    }

    /// The node's NUMA events, its zones summed (`/sys/devices/system/node/nodeN/numastat`).
    pub fn numa_stat(&self) -> NumaStat {
        let mut s = NumaStat::default();
        for z in &self.zones {
            s.add(&z.numa_stat());
        }
        s
    }

    /// The fallback zonelist.
    pub fn zonelist(&self) -> &[ZoneRef] {
        &self.zonelist
    }

    /// The node fallback order (Linux's "Fallback order for Node N:").
    pub fn node_order(&self) -> &[usize] {
        &self.node_order
    }

    fn ram_zones(&self) -> impl Iterator<Item = &Zone> {
        self.zones.iter().filter(|z| z.id != ZoneId::Device)
    }
}

/// Index into [`PgData::cut`] for an allocation whose highest allowed zone is `high` (never
/// Device).
#[inline]
pub(crate) const fn cut_index(high: ZoneId, thisnode: bool) -> usize {
    let h = if high.index() > 3 { 3 } else { high.index() };
    2 * h + thisnode as usize
}

/// `build_zonelists_in_node_order`: for each node of `order`, its managed zones from the
/// highest down.
pub(crate) fn build_zonelist(nodes: &[&'static mut PgData], order: &[usize]) -> Vec<ZoneRef> {
    let mut list = Vec::new();
    for &nid in order {
        for z in nodes[nid].zones.iter().rev().filter(|z| z.is_managed()) {
            list.push(ZoneRef {
                nid: nid as u8,
                zone: z.id,
            });
        }
    }
    list
}
