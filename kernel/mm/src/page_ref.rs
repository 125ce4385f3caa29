//! Page reference counts: `get_page` / `put_page`.
//!
//! For an allocated RAM block the count starts at 1 and the block returns to the buddy
//! allocator when it drops to 0. For a ZONE_DEVICE page the count rests at 1 (idle); when it
//! falls back to 1 the pagemap's `page_free` callback runs instead of any buddy free path, and
//! a put on an idle device page is refused: a device page can never reach the free lists.

use crate::machine::{Machine, PageRefError};
use crate::page::PageFlags;
use crate::platform::Platform;

impl<P: Platform> Machine<P> {
    /// `get_page`: take a reference on an allocated block head or a device page. Returns the
    /// new count.
    pub fn get_page(&mut self, pfn: u64) -> Result<u32, PageRefError> {
        let page = self.sparse.page_mut(pfn).ok_or(PageRefError::InvalidPfn)?;
        let in_use =
            page.has(PageFlags::DEVICE) || (page.has(PageFlags::HEAD) && page.refcount > 0);
        if !in_use {
            return Err(PageRefError::NotInUse);
        }
        page.refcount = page.refcount.checked_add(1).ok_or(PageRefError::Overflow)?;
        Ok(page.refcount)
    }

    /// `put_page`: drop a reference. An allocated block is freed when its count reaches 0; a
    /// device page runs its pagemap's `page_free` callback when its count falls back to 1.
    /// Returns the new count.
    pub fn put_page(&mut self, pfn: u64) -> Result<u32, PageRefError> {
        let page = self.sparse.page_mut(pfn).ok_or(PageRefError::InvalidPfn)?;
        if page.has(PageFlags::DEVICE) {
            if page.refcount <= 1 {
                log::error!(
                    "bad page: pfn {pfn:#x}: put_page on an idle ZONE_DEVICE page (flags {})",
                    page.flags()
                );
                return Err(PageRefError::IdleDevicePage);
            }
            page.refcount -= 1;
            let count = page.refcount;
            if count == 1
                && let Some(pgmap) = page.pagemap().and_then(|i| self.pagemaps.get_mut(i))
            {
                pgmap.page_free_calls += 1;
                if let Some(f) = pgmap.page_free {
                    f(page_pgmap_index(page.pgmap), pfn);
                }
            }
            return Ok(count);
        }
        if !page.has(PageFlags::HEAD) || page.refcount == 0 {
            return Err(PageRefError::NotInUse);
        }
        page.refcount -= 1;
        if page.refcount > 0 {
            return Ok(page.refcount);
        }
        // The last reference goes with the block: free it with its count restored, so a
        // refused free (a memmap block) leaves the page as it was.
        page.refcount = 1;
        let order = page.order();
        self.free_pages(pfn, order)
            .map_err(|_| PageRefError::NotInUse)?;
        Ok(0)
    }
}

fn page_pgmap_index(stored: u16) -> usize {
    usize::from(stored) - 1
}
