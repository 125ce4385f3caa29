//! `memunmap_pages`: tearing a device pagemap down, and the pagemap reference count that makes
//! it wait for pinned pages (Linux's `percpu_ref` in `struct dev_pagemap`).
//!
//! A device page taken by [`get_page`](crate::Machine::get_page) (idle → in use) holds one
//! reference on its pagemap; the [`put_page`](crate::Machine::put_page) that makes it idle again
//! drops it. Teardown is Linux's two halves: [`Machine::memunmap_pages`] kills the reference
//! (`percpu_ref_kill`: from then on every `get_page` on the pagemap's pages is refused) and, if
//! nothing is pinned, completes at once; otherwise it reports how many pinned pages it waits
//! for. The kernel cannot sleep in it, so the put that drops the last reference does not
//! complete it by itself: the caller sees [`Machine::pagemap_released`] and runs
//! [`Machine::memunmap_complete`] (Linux's `wait_for_completion(&pgmap->done)` returning).
//! Completion removes the memmap and the sections only the range used (their storage given
//! back), unmaps the range (every CPU's TLB flushed by the platform), puts back the struct pages
//! the range had in sections that stay, shrinks the Device zone's span and forgets the pagemap
//! (the later pagemaps move down one index). The range can be mapped again afterwards with
//! `memremap_pages`; its data was never touched.
//!
//! The count is one atomic per pagemap rather than a per-CPU counter: Linux's `percpu_ref`
//! avoids cache-line bouncing when every page fault of a device takes a reference, while here
//! device references are pins taken from the shell, and kill runs with the machine held
//! exclusively, so no CPU is inside `get_page` and no per-CPU sum is needed to see zero.

use core::fmt;
use core::sync::atomic::Ordering::Relaxed;
use core::sync::atomic::{AtomicBool, AtomicU64};

use crate::machine::Machine;
use crate::platform::Platform;
use crate::section_remove::RemoveError;
use crate::zone::ZoneId;
use crate::{PAGE_SIZE, pfn_phys};

/// A pagemap's reference count: pinned pages, and whether it was killed.
#[derive(Debug, Default)]
pub struct PagemapRef {
    pinned: AtomicU64,
    dead: AtomicBool,
}

impl PagemapRef {
    pub(crate) const fn new() -> Self {
        Self {
            pinned: AtomicU64::new(0),
            dead: AtomicBool::new(false),
        }
    }

    /// `percpu_ref_tryget_live`: one more reference, unless killed.
    pub(crate) fn tryget_live(&self) -> bool {
        if self.dead.load(Relaxed) {
            return false;
        }
        self.pinned.fetch_add(1, Relaxed);
        true
    }

    /// `percpu_ref_put`.
    pub(crate) fn put(&self) {
        let mut c = self.pinned.load(Relaxed);
        while c > 0 {
            match self
                .pinned
                .compare_exchange_weak(c, c - 1, Relaxed, Relaxed)
            {
                Ok(_) => return,
                Err(now) => c = now,
            }
        }
    }

    /// References held (pinned pages).
    pub fn count(&self) -> u64 {
        self.pinned.load(Relaxed)
    }

    /// Whether the reference was killed (teardown started).
    pub fn is_dying(&self) -> bool {
        self.dead.load(Relaxed)
    }
}

/// What [`Machine::memunmap_pages`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Memunmap {
    /// The pagemap is gone.
    Done,
    /// The reference is killed; teardown waits for this many pinned pages.
    Waiting {
        /// Pages still pinned.
        pinned: u64,
    },
}

/// Why a teardown was refused (nothing changed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemunmapError {
    /// No pagemap with that index.
    NoPagemap {
        /// The index given.
        index: usize,
    },
    /// The pagemap's teardown has started already.
    AlreadyDying {
        /// Pages it still waits for.
        pinned: u64,
    },
    /// [`Machine::memunmap_complete`] on a pagemap whose teardown has not started.
    NotDying,
    /// [`Machine::memunmap_complete`] while pages are still pinned.
    StillPinned {
        /// Pages still pinned.
        pinned: u64,
    },
    /// Removing the sections or the mapping failed.
    Remove(RemoveError),
}

impl fmt::Display for MemunmapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoPagemap { index } => write!(f, "no device pagemap {index}"),
            Self::AlreadyDying { pinned } => write!(
                f,
                "teardown already started (waiting for {pinned} pinned pages)"
            ),
            Self::NotDying => f.write_str("teardown not started"),
            Self::StillPinned { pinned } => write!(f, "{pinned} pages still pinned"),
            Self::Remove(e) => write!(f, "{e}"),
        }
    }
}

impl<P: Platform> Machine<P> {
    /// `memunmap_pages` for pagemap `index`: kill its reference (no new `get_page` on its
    /// pages), then tear it down at once when no page is pinned; otherwise return how many
    /// pinned pages it waits for (complete with [`memunmap_complete`](Self::memunmap_complete)
    /// once [`pagemap_released`](Self::pagemap_released)). On an error nothing changed (the
    /// reference is not killed).
    pub fn memunmap_pages(&mut self, index: usize) -> Result<Memunmap, MemunmapError> {
        let pm = self
            .pagemaps
            .get(index)
            .ok_or(MemunmapError::NoPagemap { index })?;
        if pm.refs.is_dying() {
            return Err(MemunmapError::AlreadyDying {
                pinned: pm.refs.count(),
            });
        }
        let pinned = pm.refs.count();
        if pinned == 0 {
            self.memunmap_teardown(index)?;
            return Ok(Memunmap::Done);
        }
        // Refuse now what completion would refuse later.
        let (spfn, epfn) = (pm.start_pfn(), pm.end_pfn());
        self.removable_sections(spfn, epfn)
            .map_err(|e| MemunmapError::Remove(RemoveError::Sparse(e)))?;
        self.pagemaps[index].refs.dead.store(true, Relaxed);
        Ok(Memunmap::Waiting { pinned })
    }

    /// Whether pagemap `index` is being torn down and its last pinned page was released
    /// (Linux's `dev_pagemap_percpu_release` having run): time for
    /// [`memunmap_complete`](Self::memunmap_complete).
    pub fn pagemap_released(&self, index: usize) -> bool {
        self.pagemaps
            .get(index)
            .is_some_and(|p| p.refs.is_dying() && p.refs.count() == 0)
    }

    /// The second half of `memunmap_pages`, once the last pinned page was released. On an
    /// error nothing changed (the pagemap stays killed, waiting).
    pub fn memunmap_complete(&mut self, index: usize) -> Result<(), MemunmapError> {
        let pm = self
            .pagemaps
            .get(index)
            .ok_or(MemunmapError::NoPagemap { index })?;
        if !pm.refs.is_dying() {
            return Err(MemunmapError::NotDying);
        }
        let pinned = pm.refs.count();
        if pinned > 0 {
            return Err(MemunmapError::StillPinned { pinned });
        }
        self.memunmap_teardown(index)
    }

    /// Remove pagemap `index` (no page pinned): sections, storage, mapping, struct pages of
    /// shared sections, Device zone span, the pagemap itself.
    fn memunmap_teardown(&mut self, index: usize) -> Result<(), MemunmapError> {
        let pm = &self.pagemaps[index];
        let (start, end, nid) = (pm.start, pm.end, pm.nid);
        let (spfn, epfn) = (pm.start_pfn(), pm.end_pfn());
        let altmap_bytes = pm.altmap_pages * PAGE_SIZE;
        self.arch_remove_memory(start, end - start)
            .map_err(MemunmapError::Remove)?;
        let pm = self.pagemaps.remove(index);
        self.restore_holes(&pm.holes, spfn, epfn, nid);
        self.memmap_device_bytes -= altmap_bytes;
        self.shrink_zone_span(nid, ZoneId::Device, spfn, epfn);
        // The later pagemaps move down one index: so do their pages.
        for i in index..self.pagemaps.len() {
            let (s, e) = (self.pagemaps[i].start_pfn(), self.pagemaps[i].end_pfn());
            for pfn in s..e {
                if let Some(p) = self.sparse.page(pfn) {
                    p.set_pgmap_raw(i as u16 + 1);
                }
            }
        }
        log::info!(
            "memunmap: [mem {:#018x}-{:#018x}] ZONE_DEVICE pagemap {index} removed",
            pfn_phys(spfn),
            pfn_phys(epfn) - 1
        );
        self.debug_check();
        Ok(())
    }
}
