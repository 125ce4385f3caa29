//! The allocation and free paths: the zonelist walk with watermark and `lowmem_reserve` checks,
//! `__GFP_THISNODE`, interleaving, the NUMA event counters (`zone_statistics`), the order-0 page
//! cache, and the checked free path (`bad_page`).

use crate::gfp::Gfp;
use crate::machine::{BadPage, BadPageReason, Machine};
use crate::node::cut_index;
use crate::page::PageFlags;
use crate::platform::Platform;
use crate::sparse::Sparse;
use crate::zone::{Zone, ZoneId};
use crate::{MAX_ORDER, pcp};

impl<P: Platform> Machine<P> {
    /// `__alloc_pages` on the local node (`numa_node_id()`): see
    /// [`alloc_pages_node`](Self::alloc_pages_node).
    #[inline]
    pub fn alloc_pages(&mut self, gfp: Gfp, order: u32) -> Option<u64> {
        self.alloc_pages_node(self.local_node, gfp, order)
    }

    /// `alloc_page`: one page from the local node.
    #[inline]
    pub fn alloc_page(&mut self, gfp: Gfp) -> Option<u64> {
        self.alloc_pages(gfp, 0)
    }

    /// `__alloc_pages_node`: a block of `2^order` pages from the first zone of node `nid`'s
    /// zonelist (nearest node first, the highest allowed zone first within a node) that stays
    /// at or above its watermark floor plus its `lowmem_reserve` for the highest allowed zone.
    /// With [`Gfp::THISNODE`] only `nid`'s own zones are tried. Counts the NUMA events as
    /// Linux's `zone_statistics` does, one per allocation: `numa_hit` or `numa_miss` (and
    /// `numa_foreign` on the preferred zone) by whether the zone's node is the preferred
    /// zone's node, `local_node` or `other_node` by whether it is the running CPU's node.
    /// Returns the head pfn, or None (never panics; an unknown node fails).
    #[inline]
    pub fn alloc_pages_node(&mut self, nid: usize, gfp: Gfp, order: u32) -> Option<u64> {
        if order <= MAX_ORDER
            && let Some(pfn) = self.get_page_from_freelist(nid, gfp, order)
        {
            if gfp.contains(Gfp::ZERO) {
                self.platform.zero_pages(pfn, 1 << order);
            }
            self.debug_check();
            return Some(pfn);
        }
        if !gfp.contains(Gfp::NOWARN) {
            log::warn!(
                "page allocation failure: order:{order}, mode:{:#x}, nid:{nid}",
                gfp.bits()
            );
        }
        None
    }

    /// `get_page_from_freelist`: walk node `nid`'s zonelist for a zone that may give a block
    /// of `order`, take it, count the NUMA events and prepare the head page.
    #[inline(always)]
    fn get_page_from_freelist(&mut self, nid: usize, gfp: Gfp, order: u32) -> Option<u64> {
        let need = 1u64 << order;
        let high = gfp.high_zone();
        let thisnode = gfp.contains(Gfp::THISNODE);
        let memalloc = gfp.contains(Gfp::MEMALLOC);
        let nodes = &mut self.nodes;
        let cut = cut_index(high, thisnode);
        // The zonelist cut for this class; its first zone is the preferred zone
        // (`ac->preferred_zoneref`).
        let pref = *nodes.get(nid)?.cut[cut].first()?;
        for i in 0..nodes[nid].cut[cut].len() {
            let zr = nodes[nid].cut[cut][i];
            let zn = usize::from(zr.nid);
            let zone = &mut nodes[zn].zones[zr.zone.index()];
            // ALLOC_NO_WATERMARKS (__GFP_MEMALLOC) skips the lowmem reserve too.
            let floor = if memalloc {
                0
            } else {
                gfp.watermark_floor(zone.wmark.min) + zone.lowmem_reserve[high.index()]
            };
            if zone.free < need + floor {
                continue;
            }
            let got = if order == 0 {
                rmqueue_pcplist(&mut self.sparse, zone)
            } else {
                zone.areas.rmqueue_smallest(&mut self.sparse, order)
            };
            let Some(pfn) = got else { continue };
            zone.free -= need;
            // zone_statistics, on the zone already in hand; numa_foreign (the preferred
            // zone is another one) is the only case that touches a second zone.
            let hit = zr.nid == pref.nid;
            if hit {
                zone.numa.hit += 1;
            } else {
                zone.numa.miss += 1;
            }
            if zn == self.local_node {
                zone.numa.local += 1;
            } else {
                zone.numa.other += 1;
            }
            if !hit {
                nodes[usize::from(pref.nid)].zones[pref.zone.index()]
                    .numa
                    .foreign += 1;
            }
            if let Some(page) = self.sparse.page_mut(pfn) {
                // prep_new_page
                page.flags = (page.flags & !PageFlags::PCP.bits()) | PageFlags::HEAD.bits();
                page.order = order as u8;
                page.refcount = 1;
            }
            return Some(pfn);
        }
        None
    }

    /// `alloc_pages` under the interleave policy (`alloc_page_interleave`): the next node with
    /// memory after the last one used is the preferred node; `interleave_hit` counts when the
    /// block comes from it.
    pub fn alloc_pages_interleave(&mut self, gfp: Gfp, order: u32) -> Option<u64> {
        let n = self.nodes.len();
        let nid = (1..=n)
            .map(|k| (self.il_prev + k) % n)
            .find(|&i| self.nodes[i].has_memory())?;
        self.il_prev = nid;
        let pfn = self.alloc_pages_node(nid, gfp, order)?;
        if let Some(p) = self.sparse.page(pfn)
            && p.nid() == nid
        {
            let zid = p.zone();
            self.zone_mut(nid, zid).numa.interleave_hit += 1;
        }
        Some(pfn)
    }

    /// `__free_pages`: give back a block allocated with `order` to the zone of its node.
    /// Refuses (error value and a `bad page` log line, free lists untouched) a pfn without a
    /// struct page, a device page, a reserved page, a free page, a wrong order, or anything
    /// that is not an allocated head.
    #[inline]
    pub fn free_pages(&mut self, pfn: u64, order: u32) -> Result<(), BadPage> {
        let r = self.free_pages_inner(pfn, order);
        if let Err(bad) = &r {
            log::error!("{bad}");
        }
        self.debug_check();
        r
    }

    #[inline]
    fn free_pages_inner(&mut self, pfn: u64, order: u32) -> Result<(), BadPage> {
        let bad = |reason, flags| BadPage {
            pfn,
            order,
            reason,
            flags,
        };
        if order > MAX_ORDER {
            return Err(bad(BadPageReason::OrderTooLarge, PageFlags::empty()));
        }
        let Some(page) = self.sparse.page_mut(pfn) else {
            return Err(bad(BadPageReason::InvalidPfn, PageFlags::empty()));
        };
        let flags = page.flags();
        if page.flags & (PageFlags::HEAD | PageFlags::DEVICE | PageFlags::MEMMAP).bits()
            != PageFlags::HEAD.bits()
            || u32::from(page.order) != order
            || page.zone >= ZoneId::Device as u8
            || usize::from(page.node) >= self.nodes.len()
        {
            let reason = if flags.contains(PageFlags::DEVICE) || page.zone >= ZoneId::Device as u8 {
                BadPageReason::DevicePage
            } else if flags.contains(PageFlags::MEMMAP) {
                BadPageReason::Memmap
            } else if flags.intersects(PageFlags::BUDDY.union(PageFlags::PCP)) {
                BadPageReason::AlreadyFree
            } else if flags.contains(PageFlags::RESERVED) {
                BadPageReason::Reserved
            } else if flags.contains(PageFlags::HEAD) && u32::from(page.order) != order {
                BadPageReason::WrongOrder {
                    allocated: page.order(),
                }
            } else if flags.contains(PageFlags::HEAD) {
                BadPageReason::InvalidPfn
            } else {
                BadPageReason::NotAllocated
            };
            return Err(bad(reason, flags));
        }
        let (zid, nid) = (page.zone, usize::from(page.node));
        page.refcount = 0;
        page.order = 0;
        let zone = &mut self.nodes[nid].zones[usize::from(zid)];
        if order == 0 {
            page.flags = (page.flags & !PageFlags::HEAD.bits()) | PageFlags::PCP.bits();
            if zone.pcp.is_full() {
                drain_batch(&mut self.sparse, zone, pcp::PCP_BATCH);
            }
            zone.pcp.push(pfn);
        } else {
            page.clear(PageFlags::HEAD);
            zone.free_one(&mut self.sparse, pfn, order);
        }
        zone.free += 1 << order;
        Ok(())
    }

    /// `free_page`: one page.
    #[inline]
    pub fn free_page(&mut self, pfn: u64) -> Result<(), BadPage> {
        self.free_pages(pfn, 0)
    }

    /// `drain_all_pages`: move every cached order-0 page of every zone of every node back to
    /// the buddy free lists, so the free lists (and buddyinfo) show all free memory merged.
    pub fn drain_pages(&mut self) {
        for zone in self.nodes.iter_mut().flat_map(|n| n.zones.iter_mut()) {
            drain_batch(&mut self.sparse, zone, pcp::PCP_HIGH);
        }
    }
}

/// `rmqueue_pcplist`: an order-0 page from the zone's cache, refilled from the free lists
/// when empty.
#[inline]
fn rmqueue_pcplist(sparse: &mut Sparse, zone: &mut Zone) -> Option<u64> {
    if zone.pcp.count == 0 {
        for _ in 0..pcp::PCP_BATCH {
            let Some(pfn) = zone.areas.rmqueue_smallest(sparse, 0) else {
                break;
            };
            if let Some(p) = sparse.page_mut(pfn) {
                p.set(PageFlags::PCP);
            }
            zone.pcp.push(pfn);
        }
    }
    zone.pcp.pop()
}

/// `free_pcppages_bulk`: move up to `n` of the oldest cached pages to the free lists.
fn drain_batch(sparse: &mut Sparse, zone: &mut Zone, n: usize) {
    let Zone {
        pcp,
        areas,
        id,
        node,
        ..
    } = zone;
    let (zid, nid) = (*id as u8, *node);
    pcp.take_oldest(n, |pfn| {
        if let Some(p) = sparse.page_mut(pfn) {
            p.clear(PageFlags::PCP);
        }
        areas.free_one(sparse, pfn, 0, zid, nid);
    });
}
