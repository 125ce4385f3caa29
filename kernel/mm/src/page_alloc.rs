//! The allocation and free paths: the zonelist walk with watermark and `lowmem_reserve` checks,
//! `__GFP_THISNODE`, interleaving, the NUMA event counters (`zone_statistics`), the per-CPU
//! page lists, `drain_all_pages`, and the checked free path (`bad_page`).
//!
//! # Concurrency
//! Allocation and free take `&self`: any number of CPUs run them at once. A request of order
//! up to [`PAGE_ALLOC_COSTLY_ORDER`] touches only the running CPU's pageset of the zone (its
//! lock is uncontended) and the zone lock only to refill or drain a batch; larger orders take
//! the zone lock. Lock order: pageset
//! lock, then zone lock; nothing else is taken inside. NUMA events go to the running CPU's
//! counters. The running CPU is [`Platform::this_cpu`]; each CPU number must be used by one
//! caller at a time (the kernel runs the allocator with interrupts off), or a CPU's NUMA
//! counters may miss events (its page list stays consistent regardless: it has a lock).

use core::sync::atomic::Ordering::Relaxed;

use crate::MAX_ORDER;
use crate::gfp::Gfp;
use crate::machine::{BadPage, BadPageReason, Machine};
use crate::node::cut_index;
use crate::page::{Page, PageFlags};
use crate::pageblock::{MIGRATE_PCPTYPES, MigrateType, PAGEBLOCK_NR_PAGES};
use crate::pcp::{NR_PCP_LISTS, PAGE_ALLOC_COSTLY_ORDER, Pcp, bump, order_to_pindex};
use crate::platform::Platform;
use crate::sparse::Sparse;
use crate::zone::{Zone, ZoneId};

impl<P: Platform> Machine<P> {
    /// `__alloc_pages` on the running CPU's node (`numa_node_id()`): see
    /// [`alloc_pages_node`](Self::alloc_pages_node).
    #[inline]
    pub fn alloc_pages(&self, gfp: Gfp, order: u32) -> Option<u64> {
        let cpu = self.this_cpu();
        self.alloc_pages_cpu(cpu, self.cpu_node(cpu), gfp, order)
    }

    /// `alloc_page`: one page from the local node.
    #[inline]
    pub fn alloc_page(&self, gfp: Gfp) -> Option<u64> {
        self.alloc_pages(gfp, 0)
    }

    /// `__alloc_pages_node`: a block of `2^order` pages from the first zone of node `nid`'s
    /// zonelist (nearest node first, the highest allowed zone first within a node) that stays
    /// at or above its watermark floor plus its `lowmem_reserve` for the highest allowed zone.
    /// With [`Gfp::THISNODE`] only `nid`'s own zones are tried. When no zone can give the
    /// block, every CPU's page lists are drained back to the zones and the walk is retried
    /// once (Linux drains in its slow path). Counts the NUMA events as Linux's
    /// `zone_statistics` does, one per allocation: `numa_hit` or `numa_miss` (and
    /// `numa_foreign` on the preferred zone) by whether the zone's node is the preferred
    /// zone's node, `local_node` or `other_node` by whether it is the running CPU's node.
    /// Returns the head pfn, or None (never panics; an unknown node fails).
    #[inline]
    pub fn alloc_pages_node(&self, nid: usize, gfp: Gfp, order: u32) -> Option<u64> {
        self.alloc_pages_cpu(self.this_cpu(), nid, gfp, order)
    }

    /// [`alloc_pages_node`](Self::alloc_pages_node) on CPU `cpu` (the running one).
    #[inline(always)]
    fn alloc_pages_cpu(&self, cpu: usize, nid: usize, gfp: Gfp, order: u32) -> Option<u64> {
        if order <= MAX_ORDER {
            // Linux's slow path: drain every CPU's lists (`drain_all_pages(NULL)`) and retry
            // once, whether or not this drain moved pages: another CPU's drain may just have
            // moved them into the zones.
            // Before that, give HighAtomic reserves beyond one pageblock per zone back
            // (`unreserve_highatomic_pageblock`), and all of them if that did not help.
            let got = self
                .get_page_from_freelist(cpu, nid, gfp, order)
                .or_else(|| {
                    self.unreserve_highatomic(nid, gfp, false);
                    self.drain_all_pages();
                    self.get_page_from_freelist(cpu, nid, gfp, order)
                })
                .or_else(|| {
                    (self.unreserve_highatomic(nid, gfp, true) > 0)
                        .then(|| self.get_page_from_freelist(cpu, nid, gfp, order))
                        .flatten()
                });
            if let Some(pfn) = got {
                if gfp.contains(Gfp::ZERO) {
                    self.platform.zero_pages(pfn, 1 << order);
                }
                self.debug_check();
                return Some(pfn);
            }
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
    fn get_page_from_freelist(&self, cpu: usize, nid: usize, gfp: Gfp, order: u32) -> Option<u64> {
        let need = 1u64 << order;
        let high = gfp.high_zone();
        let thisnode = gfp.contains(Gfp::THISNODE);
        let memalloc = gfp.contains(Gfp::MEMALLOC);
        let nodes = &self.nodes;
        let cut = &nodes.get(nid)?.cut[cut_index(high, thisnode)];
        // The zonelist cut for this class; its first zone is the preferred zone
        // (`ac->preferred_zoneref`).
        let pref = *cut.first()?;
        for zr in cut {
            let zn = usize::from(zr.nid);
            let zone = &nodes[zn].zones[zr.zone.index()];
            // ALLOC_NO_WATERMARKS (__GFP_MEMALLOC) skips the lowmem reserve too.
            let floor = if memalloc {
                0
            } else {
                gfp.watermark_floor(zone.wmark.min) + zone.lowmem_reserve[high.index()]
            };
            let Some(ps) = zone.pageset(cpu) else {
                continue;
            };
            // HighAtomic reserves are for atomic high-order requests only
            // (`__zone_watermark_unusable_free`).
            let harder = gfp.contains(Gfp::HIGH);
            let floor = if harder || memalloc {
                floor
            } else {
                floor + zone.nr_reserved_highatomic.load(Relaxed)
            };
            let mt = MigrateType::of_gfp(gfp);
            let mut got = None;
            if order <= PAGE_ALLOC_COSTLY_ORDER {
                // The pages on this CPU's lists are free pages this request can use.
                let mut pcp = ps.pcp.lock();
                if zone.nr_free_buddy() + u64::from(pcp.count) < need + floor {
                    continue;
                }
                got = rmqueue_pcplist(&self.sparse, zone, &mut pcp, order, mt);
            } else if zone.nr_free_buddy() < need + floor {
                continue;
            }
            if got.is_none() {
                // rmqueue_buddy (also when the per-CPU refill found nothing of this type).
                let mut areas = zone.areas.lock();
                got = zone
                    .rmqueue_locked(&mut areas, &self.sparse, order, mt, harder)
                    .and_then(|pfn| Some((pfn, self.sparse.page(pfn)?)));
            }
            if let Some((pfn, _)) = got
                && order > 0
                && harder
            {
                let mut areas = zone.areas.lock();
                reserve_highatomic_pageblock(&self.sparse, zone, &mut areas, pfn);
            }
            let Some((pfn, page)) = got else { continue };
            // zone_statistics, on this CPU's counters of the zone in hand; numa_foreign (the
            // preferred zone is another one) is the only case that touches a second zone.
            let hit = zr.nid == pref.nid;
            bump(if hit { &ps.numa.hit } else { &ps.numa.miss });
            bump(if zn == self.cpu_node(cpu) {
                &ps.numa.local
            } else {
                &ps.numa.other
            });
            if !hit
                && let Some(pps) =
                    nodes[usize::from(pref.nid)].zones[pref.zone.index()].pageset(cpu)
            {
                bump(&pps.numa.foreign);
            }
            // prep_new_page: flags and order in one store, then the count.
            page.set_flags_and_order(
                (page.flag_bits() & !PageFlags::PCP.bits()) | PageFlags::HEAD.bits(),
                order,
            );
            page.set_refcount(1);
            return Some(pfn);
        }
        None
    }

    /// `alloc_pages` under the interleave policy (`alloc_page_interleave`): the next node with
    /// memory after the last one used is the preferred node; `interleave_hit` counts when the
    /// block comes from it.
    pub fn alloc_pages_interleave(&self, gfp: Gfp, order: u32) -> Option<u64> {
        let n = self.nodes.len();
        let prev = self.il_prev.load(Relaxed);
        let nid = (1..=n)
            .map(|k| (prev + k) % n)
            .find(|&i| self.nodes[i].has_memory())?;
        self.il_prev.store(nid, Relaxed);
        let pfn = self.alloc_pages_node(nid, gfp, order)?;
        if let Some(p) = self.sparse.page(pfn)
            && p.nid() == nid
            && let Some(ps) = self.nodes[nid].zones[p.zone().index()].pageset(self.this_cpu())
        {
            bump(&ps.numa.interleave_hit);
        }
        Some(pfn)
    }

    /// `__free_pages`: drop the caller's reference on a block allocated with `order`; at the
    /// last reference the block goes back to the zone of its node (orders 0-3 to the running
    /// CPU's lists), as Linux's `put_page_testzero` decides. Refuses (error value and a `bad page` log
    /// line, free lists untouched) a pfn without a struct page, a device page, a reserved
    /// page, a free page, a wrong order, or anything that is not an allocated head.
    ///
    /// Freeing the same block twice at the same time from two CPUs is a bug in the caller
    /// that the check cannot always catch (it is not a lock); the memory stays safe, and the
    /// invariant checker reports the damage.
    #[inline]
    pub fn free_pages(&self, pfn: u64, order: u32) -> Result<(), BadPage> {
        let r = self.free_pages_inner(pfn, order);
        if let Err(bad) = &r {
            log::error!("{bad}");
        }
        self.debug_check();
        r
    }

    #[inline]
    fn free_pages_inner(&self, pfn: u64, order: u32) -> Result<(), BadPage> {
        let bad = |reason, flags| BadPage {
            pfn,
            order,
            reason,
            flags,
        };
        if order > MAX_ORDER {
            return Err(bad(BadPageReason::OrderTooLarge, PageFlags::empty()));
        }
        let Some((page, block)) = self.sparse.page_and_pageblock(pfn) else {
            return Err(bad(BadPageReason::InvalidPfn, PageFlags::empty()));
        };
        let flags = page.flags();
        if page.flag_bits() & (PageFlags::HEAD | PageFlags::DEVICE | PageFlags::MEMMAP).bits()
            != PageFlags::HEAD.bits()
            || page.order() != order
            || page.zone_index() >= ZoneId::Device as u8
            || page.nid() >= self.nodes.len()
        {
            let reason =
                if flags.contains(PageFlags::DEVICE) || page.zone_index() >= ZoneId::Device as u8 {
                    BadPageReason::DevicePage
                } else if flags.contains(PageFlags::MEMMAP) {
                    BadPageReason::Memmap
                } else if flags.intersects(PageFlags::BUDDY.union(PageFlags::PCP)) {
                    BadPageReason::AlreadyFree
                } else if flags.contains(PageFlags::RESERVED) {
                    BadPageReason::Reserved
                } else if flags.contains(PageFlags::HEAD) && page.order() != order {
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
        let zone = &self.nodes[page.nid()].zones[usize::from(page.zone_index())];
        let Some(ps) = zone.pageset(self.this_cpu()) else {
            return Err(bad(BadPageReason::InvalidPfn, flags));
        };
        // put_page_testzero: a block others still hold (get_page) only loses this reference;
        // of the CPUs dropping the last two at once, exactly one sees 1 and frees it.
        if page.update_refcount(|c| (c > 1).then(|| c - 1)).is_ok() {
            return Ok(());
        }
        page.set_refcount(0);
        if flags.contains(PageFlags::MOVABLE) {
            // A movable block's owner goes with it (`page->mapping` cleared).
            page.set_pgmap_raw(0);
        }
        const FREED: u16 = PageFlags::HEAD.union(PageFlags::MOVABLE).bits();
        let mt = block.get();
        if order <= PAGE_ALLOC_COSTLY_ORDER && mt != MigrateType::Isolate {
            // free_unref_page: HighAtomic blocks wait on the Movable list, and remember that
            // they go back to HighAtomic (set_pcppage_migratetype).
            let list = if mt.index() >= MIGRATE_PCPTYPES {
                MigrateType::Movable
            } else {
                mt
            };
            page.set_pcp_block(
                (page.flag_bits() & !FREED) | PageFlags::PCP.bits(),
                order,
                mt,
            );
            let pindex = order_to_pindex(list, order);
            let mut pcp = ps.pcp.lock();
            pcp.push_page(&self.sparse, pfn, page, pindex);
            if pcp.count >= pcp.high {
                let batch = pcp.batch;
                free_pcppages_bulk(&self.sparse, zone, &mut pcp, batch, pindex);
            }
        } else {
            page.set_flags_and_order(page.flag_bits() & !FREED, 0);
            let mut areas = zone.areas.lock();
            zone.free_one_locked(&mut areas, &self.sparse, pfn, order, mt);
        }
        Ok(())
    }

    /// `free_page`: one page.
    #[inline]
    pub fn free_page(&self, pfn: u64) -> Result<(), BadPage> {
        self.free_pages(pfn, 0)
    }

    /// `drain_all_pages`: give every page on every CPU's lists of every zone of every node
    /// back to the buddy free lists, so the free lists (and buddyinfo) show all free memory
    /// merged. A remote drain, as Linux does since 5.19: each list is taken under its own
    /// lock, so the CPUs may go on allocating meanwhile. Returns the pages drained.
    pub fn drain_all_pages(&self) -> u64 {
        let mut n = 0;
        for zone in self.nodes.iter().flat_map(|nd| nd.zones.iter()) {
            for ps in &zone.pagesets {
                let mut pcp = ps.pcp.lock();
                let count = pcp.count;
                if count > 0 {
                    free_pcppages_bulk(&self.sparse, zone, &mut pcp, count, 0);
                    n += u64::from(count);
                }
            }
        }
        n
    }

    /// `drain_all_pages` (the name this crate used before the lists were per CPU).
    pub fn drain_pages(&self) {
        self.drain_all_pages();
    }
}

/// `rmqueue_pcplist`: a block of `order` and migratetype `mt` from this CPU's list of the
/// zone, refilled under the zone lock when empty (`rmqueue_bulk`: `batch` pages' worth, at
/// least two blocks, through the fallbacks as any allocation).
#[inline]
fn rmqueue_pcplist<'a>(
    sparse: &'a Sparse,
    zone: &Zone,
    pcp: &mut Pcp,
    order: u32,
    mt: MigrateType,
) -> Option<(u64, &'a Page)> {
    let pindex = order_to_pindex(mt, order);
    if pcp.is_empty(pindex) {
        let batch = pcp.batch;
        let blocks = if batch > 1 {
            (batch >> order).max(2)
        } else {
            batch
        };
        let mut areas = zone.areas.lock();
        for _ in 0..blocks {
            let Some(pfn) = zone.rmqueue_locked(&mut areas, sparse, order, mt, false) else {
                break;
            };
            if let Some(p) = sparse.page(pfn) {
                p.set_pcp_block(p.flag_bits() | PageFlags::PCP.bits(), order, mt);
                pcp.push_page(sparse, pfn, p, pindex);
            }
        }
    }
    pcp.pop_page(sparse, pindex)
}

/// `free_pcppages_bulk`: move `n` pages' worth of the oldest blocks of a CPU's lists (its
/// lock held as `pcp`) to the zone's free lists under the zone lock, list by list round-robin
/// from list `first`. A block goes back to the migratetype it recorded when it was cached, or
/// to its pageblock's when the zone has isolated pageblocks (the block's pageblock may have
/// been isolated since).
pub(crate) fn free_pcppages_bulk(
    sparse: &Sparse,
    zone: &Zone,
    pcp: &mut Pcp,
    n: u32,
    first: usize,
) {
    let mut left = n.min(pcp.count);
    if left == 0 {
        return;
    }
    let mut areas = zone.areas.lock();
    let isolated = zone.has_isolate_pageblock();
    let mut pindex = first % NR_PCP_LISTS;
    while left > 0 {
        while pcp.is_empty(pindex) {
            pindex = (pindex + 1) % NR_PCP_LISTS;
        }
        let (order, list_mt) = crate::pcp::pindex_to_order(pindex);
        while left > 0 {
            let Some(pfn) = pcp.pop_oldest(sparse, pindex) else {
                break;
            };
            left = left.saturating_sub(1 << order);
            let mut mt = list_mt;
            if let Some(p) = sparse.page(pfn) {
                mt = p.pcp_migratetype();
                p.set_flags_and_order(p.flag_bits() & !PageFlags::PCP.bits(), 0);
                if isolated {
                    mt = sparse.pageblock_migratetype(pfn).unwrap_or(mt);
                }
            }
            zone.free_one_locked(&mut areas, sparse, pfn, order, mt);
        }
        pindex = (pindex + 1) % NR_PCP_LISTS;
    }
}

/// `reserve_highatomic_pageblock`: after a high-order atomic allocation, keep its pageblock
/// for such allocations (HighAtomic), up to 1 % of the zone plus one pageblock.
fn reserve_highatomic_pageblock(
    sparse: &Sparse,
    zone: &Zone,
    areas: &mut crate::buddy::FreeAreas,
    pfn: u64,
) {
    let max = zone.managed / 100 + PAGEBLOCK_NR_PAGES;
    if zone.nr_reserved_highatomic.load(Relaxed) >= max {
        return;
    }
    let Some(block) = sparse.pageblock(pfn) else {
        return;
    };
    if !block.get().is_mergeable() {
        return;
    }
    zone.nr_reserved_highatomic.store(
        zone.nr_reserved_highatomic.load(Relaxed) + PAGEBLOCK_NR_PAGES,
        Relaxed,
    );
    block.set(MigrateType::HighAtomic);
    areas.move_freepages_block(sparse, pfn, MigrateType::HighAtomic, zone.buddy_span());
}

impl<P: Platform> Machine<P> {
    /// `unreserve_highatomic_pageblock`: in each zone of node `nid`'s zonelist for `gfp`
    /// holding more than one reserved pageblock (any, with `force`), give the first HighAtomic
    /// pageblock with a free block back to the allocation's migratetype. Returns the pages
    /// moved.
    fn unreserve_highatomic(&self, nid: usize, gfp: Gfp, force: bool) -> u64 {
        let Some(node) = self.nodes.get(nid) else {
            return 0;
        };
        let mt = MigrateType::of_gfp(gfp);
        let cut = &node.cut[cut_index(gfp.high_zone(), gfp.contains(Gfp::THISNODE))];
        for zr in cut {
            let zone = &self.nodes[usize::from(zr.nid)].zones[zr.zone.index()];
            let reserved = zone.nr_reserved_highatomic.load(Relaxed);
            if reserved == 0 || (!force && reserved <= PAGEBLOCK_NR_PAGES) {
                continue;
            }
            let mut areas = zone.areas.lock();
            for order in 0..=MAX_ORDER {
                let pfn = areas.area[order as usize].head[MigrateType::HighAtomic.index()];
                if pfn == crate::page::NIL {
                    continue;
                }
                let Some(block) = self.sparse.pageblock(pfn) else {
                    continue;
                };
                if block.get() == MigrateType::HighAtomic {
                    let r = zone.nr_reserved_highatomic.load(Relaxed);
                    zone.nr_reserved_highatomic
                        .store(r - r.min(PAGEBLOCK_NR_PAGES), Relaxed);
                }
                block.set(mt);
                let (moved, _) =
                    areas.move_freepages_block(&self.sparse, pfn, mt, zone.buddy_span());
                if moved > 0 {
                    return moved;
                }
            }
        }
        0
    }
}
