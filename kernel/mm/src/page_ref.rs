//! Page reference counts: `get_page` / `put_page`.
//!
//! For an allocated RAM block the count starts at 1 and the block returns to the buddy
//! allocator when it drops to 0. For a ZONE_DEVICE page the count rests at 1 (idle); when it
//! falls back to 1 the pagemap's `page_free` callback runs instead of any buddy free path, and
//! a put on an idle device page is refused: a device page can never reach the free lists.

use core::sync::atomic::Ordering::Relaxed;

use crate::machine::{Machine, PageRefError};
use crate::page::PageFlags;
use crate::platform::Platform;

impl<P: Platform> Machine<P> {
    /// `get_page`: take a reference on an allocated block head or a device page. Returns the
    /// new count. Any CPU may call it for a page it holds a reference on.
    pub fn get_page(&self, pfn: u64) -> Result<u32, PageRefError> {
        let page = self.sparse.page(pfn).ok_or(PageRefError::InvalidPfn)?;
        let device = page.has(PageFlags::DEVICE);
        if !device && !page.has(PageFlags::HEAD) {
            return Err(PageRefError::NotInUse);
        }
        if device {
            return self.get_device_page(page);
        }
        // page_ref_inc, refusing a free block (count 0) and an overflow.
        let old = page
            .update_refcount(|c| match c {
                0 => None,
                c => c.checked_add(1),
            })
            .map_err(|c| {
                if c == 0 {
                    PageRefError::NotInUse
                } else {
                    PageRefError::Overflow
                }
            })?;
        Ok(old + 1)
    }

    /// `put_page`: drop a reference. An allocated block is freed when its count reaches 0
    /// (`put_page_testzero`: of CPUs dropping references at once, exactly one frees it); a
    /// device page runs its pagemap's `page_free` callback when its count falls back to 1.
    /// Returns the new count.
    pub fn put_page(&self, pfn: u64) -> Result<u32, PageRefError> {
        let page = self.sparse.page(pfn).ok_or(PageRefError::InvalidPfn)?;
        if page.has(PageFlags::DEVICE) {
            let Ok(old) = page.update_refcount(|c| (c > 1).then(|| c - 1)) else {
                log::error!(
                    "bad page: pfn {pfn:#x}: put_page on an idle ZONE_DEVICE page (flags {})",
                    page.flags()
                );
                return Err(PageRefError::IdleDevicePage);
            };
            let count = old - 1;
            if count == 1
                && let Some(pgmap) = page.pagemap().and_then(|i| self.pagemaps.get(i))
            {
                // Idle again: the page's pagemap reference goes (put_dev_pagemap).
                pgmap.refs.put();
                pgmap.page_free_calls.fetch_add(1, Relaxed);
                if let Some(f) = pgmap.page_free {
                    f(page_pgmap_index(page.pgmap_raw()), pfn);
                }
            }
            return Ok(count);
        }
        if !page.has(PageFlags::HEAD) {
            return Err(PageRefError::NotInUse);
        }
        let old = page
            .update_refcount(|c| c.checked_sub(1))
            .map_err(|_| PageRefError::NotInUse)?;
        if old > 1 {
            return Ok(old - 1);
        }
        // The last reference goes with the block: free it with its count restored (no one
        // else holds it now), so a refused free (a memmap block) leaves the page as it was.
        page.set_refcount(1);
        let order = page.order();
        self.free_pages(pfn, order)
            .map_err(|_| PageRefError::NotInUse)?;
        Ok(0)
    }
}

impl<P: Platform> Machine<P> {
    /// `get_page` on a device page: the pagemap's reference first (refused once the pagemap
    /// is being torn down), kept only when the page goes from idle to in use, so the count is
    /// the number of pinned pages. Taken before the page's count, so a racing put of another
    /// reference on the same page can never drop it below zero.
    fn get_device_page(&self, page: &crate::Page) -> Result<u32, PageRefError> {
        let pgmap = page
            .pagemap()
            .and_then(|i| self.pagemaps.get(i))
            .ok_or(PageRefError::NotInUse)?;
        if !pgmap.refs.tryget_live() {
            return Err(PageRefError::PagemapDying);
        }
        match page.update_refcount(|c| c.checked_add(1)) {
            Ok(old) => {
                if old != 1 {
                    pgmap.refs.put();
                }
                Ok(old + 1)
            }
            Err(_) => {
                pgmap.refs.put();
                Err(PageRefError::Overflow)
            }
        }
    }
}

fn page_pgmap_index(stored: u16) -> usize {
    usize::from(stored) - 1
}
