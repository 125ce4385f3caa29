//! Page isolation for offlining (Linux's `mm/page_isolation.c`): a pfn range whose free
//! pages can no longer be handed out, and the check for pages that cannot leave it.
//!
//! [`Machine::start_isolate_page_range`] first looks for an unmovable page in the range
//! (`has_unmovable_pages`): a reserved page that is not offline (firmware, kernel, memmap
//! storage of something else, pages a driver kept), a device page, or an allocated block
//! without a movable owner. If there is none, it drains every CPU's page lists and takes
//! every free block of the range out of its zone's free lists, holding each as an allocated
//! block (head, count 1) of the isolation, so nothing can allocate them and the invariant
//! checker still sees every page in one state. [`Machine::undo_isolate_page_range`] frees
//! them back. Linux marks the range's pageblocks MIGRATE_ISOLATE instead, so that pages
//! freed later land on the isolate list; until pageblocks exist here this one function is
//! the isolation step, and offline_pages takes the blocks it migrates away itself.
//!
//! Pages the caller names as exempt (the range's own memmap, memmap on memory) are skipped.

use alloc::vec::Vec;

use crate::machine::Machine;
use crate::page::PageFlags;
use crate::platform::Platform;

/// A range whose free blocks are held by the isolation.
#[derive(Debug)]
pub(crate) struct IsolatedRange {
    /// The free blocks taken out of the free lists, `(pfn, order)`.
    pub(crate) blocks: Vec<(u64, u32)>,
}

impl<P: Platform> Machine<P> {
    /// `has_unmovable_pages` over `[spfn, epfn)`, skipping `exempt`: the first page that
    /// cannot leave the range, if any.
    pub(crate) fn has_unmovable_pages(
        &self,
        spfn: u64,
        epfn: u64,
        exempt: (u64, u64),
    ) -> Option<u64> {
        let mut pfn = spfn;
        while pfn < epfn {
            if pfn >= exempt.0 && pfn < exempt.1 {
                pfn = exempt.1;
                continue;
            }
            let Some(p) = self.sparse.page(pfn) else {
                pfn += 1;
                continue;
            };
            let flags = p.flags();
            if flags.intersects(PageFlags::HOLE.union(PageFlags::OFFLINE)) {
                pfn += 1;
            } else if p.is_device() || flags.contains(PageFlags::RESERVED) {
                return Some(pfn);
            } else if flags.contains(PageFlags::HEAD) {
                if p.movable_owner().is_none() || flags.contains(PageFlags::MEMMAP) {
                    return Some(pfn);
                }
                pfn += 1 << p.order();
            } else if flags.contains(PageFlags::BUDDY) {
                pfn += 1 << p.order();
            } else {
                // A page on a CPU's list (none after the drain) or a tail: step on.
                pfn += 1;
            }
        }
        None
    }

    /// `start_isolate_page_range`: see the module documentation. Fails with the first
    /// unmovable page, changing nothing but the drained CPU lists.
    pub(crate) fn start_isolate_page_range(
        &mut self,
        spfn: u64,
        epfn: u64,
        exempt: (u64, u64),
    ) -> Result<IsolatedRange, u64> {
        if let Some(pfn) = self.has_unmovable_pages(spfn, epfn, exempt) {
            return Err(pfn);
        }
        // zone_pcp_disable: the lists hold no page of the range once drained, and nothing
        // allocates meanwhile (the memory manager is held exclusively).
        self.drain_all_pages();
        let mut blocks = Vec::new();
        let mut pfn = spfn;
        while pfn < epfn {
            let Some(p) = self.sparse.page(pfn) else {
                pfn += 1;
                continue;
            };
            if !p.is_buddy() {
                pfn += if p.has(PageFlags::HEAD) {
                    1 << p.order()
                } else {
                    1
                };
                continue;
            }
            let order = p.order();
            let zone = &self.nodes[p.nid()].zones[p.zone().index()];
            {
                let mut areas = zone.areas.lock();
                areas.del(&self.sparse, pfn, order);
                zone.sub_free(1 << order);
            }
            p.set_flags_and_order(p.flag_bits() | PageFlags::HEAD.bits(), order);
            p.set_refcount(1);
            blocks.push((pfn, order));
            pfn += 1 << order;
        }
        Ok(IsolatedRange { blocks })
    }

    /// `undo_isolate_page_range`: give the held free blocks back to their free lists.
    pub(crate) fn undo_isolate_page_range(&mut self, iso: IsolatedRange) {
        for (pfn, order) in iso.blocks {
            self.release_isolated(pfn, order);
        }
    }

    /// Free one block the isolation (or offline_pages) holds into its zone's free lists.
    pub(crate) fn release_isolated(&self, pfn: u64, order: u32) {
        let Some(p) = self.sparse.page(pfn) else {
            return;
        };
        p.set_refcount(0);
        p.set_flags_and_order(p.flag_bits() & !PageFlags::HEAD.bits(), 0);
        let zone = &self.nodes[p.nid()].zones[p.zone().index()];
        zone.free_one_locked(&mut zone.areas.lock(), &self.sparse, pfn, order);
    }
}
