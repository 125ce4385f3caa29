//! Writing struct pages as work for several CPUs: the boot sections' memmap, once
//! `sparse_init` has allocated it, and the deferred struct page init (Linux's
//! `deferred_init_memmap`, which hands its chunks to padata's threads, one run per thread).
//!
//! [`MemmapWork`] cuts the pending memmap into items of whole sections within 2 MiB of
//! storage (Linux's padata chunks are a section of its 64-byte struct pages: 2 MiB), so two
//! CPUs never write the same 2 MiB of memmap, which on a host that backs guest RAM with huge
//! pages is one page fault that both would wait on. Any CPU may [`run`](MemmapWork::run) the
//! work at any time: an item is claimed by taking its lock, so each is written once, by the
//! first CPU to get it. Both works are handed out before any struct page is written, the
//! boot one first ([`crate::Platform::start_background`]): idle CPUs write struct pages while
//! the boot CPU goes on. It takes the boot items back before it builds the zones, and
//! [`Machine::deferred_init_memmap`](crate::Machine::deferred_init_memmap) does what is left
//! of the deferred ones on every CPU, then takes them back and adds their sections.
//!
//! What an item needs to be written (the memblock regions and the Movable zone starts) is a
//! copy taken when the work is made; the memory manager compares it with its own when it
//! takes the items back and rewrites them all if memblock changed in between.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::memblock::Memblock;
use crate::mm_init::{MEMMAP_ALIGN, PendingMemmap, memmap_init_pages};
use crate::page::Page;
use crate::sparse::PAGES_PER_SECTION;
use crate::sync::Mutex;
use crate::{pfn_down, pfn_up};

/// One item: `(start pfn, storage, written, storage pa)`.
type Item = Mutex<(u64, &'static mut [Page], bool, u64)>;

/// Struct pages to write, shared out among CPUs (see the module documentation).
pub struct MemmapWork {
    items: Vec<Item>,
    /// The node of each item's pages (CPUs start with their own node's).
    item_node: Vec<usize>,
    /// The node of each CPU.
    cpu_node: Vec<u8>,
    memblock: Memblock,
    zone_movable_pfn: Vec<u64>,
    /// Items not written yet.
    left: AtomicUsize,
    /// Struct pages written so far by [`run`](Self::run).
    written: AtomicU64,
    /// The pfn ranges `[start, end)` the items cover, sorted.
    pub(crate) ranges: Vec<(u64, u64)>,
    /// Struct pages in all items.
    pub(crate) pages: u64,
}

impl core::fmt::Debug for MemmapWork {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MemmapWork")
            .field("items", &self.items.len())
            .field("left", &self.left())
            .field("pages", &self.pages)
            .finish_non_exhaustive()
    }
}

/// A written item, handed back: `(start pfn, storage, storage pa)`.
pub(crate) struct Written {
    pub(crate) start_pfn: u64,
    pub(crate) pages: &'static mut [Page],
    pub(crate) pa: u64,
}

impl MemmapWork {
    /// The work of writing `chunks`, with the memblock and Movable zone starts they are
    /// written from, and each CPU's node.
    pub(crate) fn new(
        chunks: Vec<PendingMemmap>,
        memblock: &Memblock,
        zone_movable_pfn: &[u64],
        cpu_node: &[u8],
    ) -> Self {
        let page_bytes = core::mem::size_of::<Page>() as u64;
        let mut items: Vec<Item> = Vec::new();
        let mut item_node: Vec<usize> = Vec::new();
        let mut ranges = Vec::new();
        let mut total = 0;
        for d in chunks {
            let nid = memblock
                .memory()
                .regions()
                .iter()
                .find(|r| pfn_up(r.base) <= d.start_pfn && d.start_pfn < pfn_down(r.end()))
                .map_or(0, |r| usize::from(r.nid));
            ranges.push((d.start_pfn, d.start_pfn + d.pages.len() as u64));
            total += d.pages.len() as u64;
            let mut rest = d.pages;
            let mut pfn = d.start_pfn;
            let mut pa = d.pa;
            while !rest.is_empty() {
                // Whole sections, cut where the storage crosses a 2 MiB boundary.
                let mut n = 0usize;
                while n < rest.len() {
                    n += (rest.len() - n).min(PAGES_PER_SECTION as usize);
                    let next_pa = pa + n as u64 * page_bytes;
                    if next_pa.is_multiple_of(MEMMAP_ALIGN) || n as u64 * page_bytes >= MEMMAP_ALIGN
                    {
                        break;
                    }
                }
                let (chunk, tail) = core::mem::take(&mut rest).split_at_mut(n);
                items.push(Mutex::new((pfn, chunk, false, pa)));
                item_node.push(nid);
                pfn += n as u64;
                pa += n as u64 * page_bytes;
                rest = tail;
            }
        }
        ranges.sort_unstable();
        Self {
            left: AtomicUsize::new(items.len()),
            written: AtomicU64::new(0),
            items,
            item_node,
            cpu_node: cpu_node.to_vec(),
            memblock: memblock.clone(),
            zone_movable_pfn: zone_movable_pfn.to_vec(),
            ranges,
            pages: total,
        }
    }

    /// Items not written yet (0: nothing left to do).
    pub fn left(&self) -> usize {
        self.left.load(Ordering::Acquire)
    }

    /// Struct pages in all items.
    pub fn pages(&self) -> u64 {
        self.pages
    }

    /// Struct pages [`run`](Self::run) has written so far.
    pub fn pages_written(&self) -> u64 {
        self.written.load(Ordering::Acquire)
    }

    /// Write the items no CPU has taken yet, as CPU `cpu`, until none is left or `stop`
    /// says so (asked before each item: a CPU with other work to do comes back later). CPU k
    /// of its node's n CPUs starts k/n of the way into the node's items (padata's chunks,
    /// one run per thread), then helps with everything else.
    pub fn run(&self, cpu: usize, stop: &dyn Fn() -> bool) {
        // Idle CPUs call this often (between console lines): nothing left costs nothing.
        if self.left() == 0 {
            return;
        }
        let cpu_node = &self.cpu_node;
        let node = cpu_node.get(cpu).map_or(0, |&n| usize::from(n));
        let on_node = |c: &u8| usize::from(*c) == node;
        let k = cpu_node[..cpu.min(cpu_node.len())]
            .iter()
            .filter(|c| on_node(c))
            .count();
        let n = cpu_node.iter().filter(|c| on_node(c)).count().max(1);
        let mine = || (0..self.items.len()).filter(|&i| self.item_node[i] == node);
        let first = match mine().count() {
            0 => 0,
            len => mine().nth(len * k.min(n - 1) / n).unwrap_or(0),
        };
        for k in 0..self.items.len() {
            if self.left() == 0 || stop() {
                return;
            }
            let Some(mut item) = self.items[(first + k) % self.items.len()].try_lock() else {
                continue; // another CPU is on it
            };
            let (start, ref mut pages, ref mut done, _) = *item;
            if !*done {
                memmap_init_pages(&self.memblock, &self.zone_movable_pfn, start, pages);
                *done = true;
                self.written.fetch_add(pages.len() as u64, Ordering::AcqRel);
                self.left.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }

    /// Take every item back, written: one a CPU skipped (another held it and never
    /// finished it; no platform does this) is written here, and all of them again if
    /// `memblock` is not the one the work was made from. Each item is handed back once;
    /// later calls (and later [`run`](Self::run)s) find nothing.
    pub(crate) fn take_all(&self, memblock: &Memblock, zone_movable_pfn: &[u64]) -> Vec<Written> {
        let stale =
            !self.memblock.same_regions(memblock) || self.zone_movable_pfn != zone_movable_pfn;
        let mut out = Vec::with_capacity(self.items.len());
        for item in &self.items {
            let mut item = item.lock();
            let (start, ref mut pages, ref mut done, pa) = *item;
            if pages.is_empty() {
                continue;
            }
            if !*done || stale {
                memmap_init_pages(memblock, zone_movable_pfn, start, pages);
                if !*done {
                    *done = true;
                    self.left.fetch_sub(1, Ordering::AcqRel);
                }
            }
            out.push(Written {
                start_pfn: start,
                pages: core::mem::take(pages),
                pa,
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::memblock;
    use alloc::vec;

    const MIB: u64 = 1 << 20;

    /// Storage of `n` garbage struct pages for pfns from `start_pfn`, at `pa`.
    fn pending(start_pfn: u64, n: usize, pa: u64) -> PendingMemmap {
        let pages: Vec<Page> = (0..n).map(|_| Page::garbage()).collect();
        PendingMemmap {
            start_pfn,
            pages: pages.leak(),
            pa,
        }
    }

    /// What `memmap_init_pages` writes for `n` pages from `start_pfn` with `mb`.
    fn expected(mb: &Memblock, start_pfn: u64, n: usize) -> Vec<Page> {
        let mut pages: Vec<Page> = (0..n).map(|_| Page::garbage()).collect();
        memmap_init_pages(mb, &[], start_pfn, &mut pages);
        pages
    }

    /// The struct pages handed back are `want`, in order.
    fn assert_written(back: &[Written], want: &[Page]) {
        assert!(back.iter().flat_map(|w| w.pages.iter()).eq(want.iter()));
    }

    /// Two sections whose storage starts 1 MiB into a 2 MiB region are two items; `stop`
    /// is asked before each; what is taken back is written, whoever wrote it, and written
    /// again from the new memblock when memblock changed; it is handed back once.
    #[test]
    fn items_are_written_once_stop_is_heeded_and_a_stale_copy_is_rewritten() {
        let per = PAGES_PER_SECTION as usize;
        let mb = memblock(&[(0, 512 * MIB)], &[(MIB, 3 * MIB)]);
        let work = MemmapWork::new(vec![pending(0, 2 * per, 3 * MIB)], &mb, &[], &[0, 0]);
        assert_eq!(work.left(), 2);
        assert_eq!(work.pages, 2 * per as u64);
        assert_eq!(work.ranges, vec![(0, 2 * per as u64)]);
        work.run(1, &|| true);
        assert_eq!(work.left(), 2, "stopped before the first item");
        let asked = core::cell::Cell::new(0);
        work.run(1, &|| {
            asked.set(asked.get() + 1);
            asked.get() > 1
        });
        assert_eq!(work.left(), 1, "one item, then stopped");
        // Memblock changed since the work was made: both items are rewritten from it.
        let mut newer = mb.clone();
        newer.reserve(200 * MIB, MIB).unwrap();
        assert!(!newer.same_regions(&mb) && mb.same_regions(&mb.clone()));
        let back = work.take_all(&newer, &[]);
        assert_eq!(work.left(), 0);
        assert_eq!(back.len(), 2);
        assert_eq!((back[0].start_pfn, back[0].pa), (0, 3 * MIB));
        assert_eq!((back[1].start_pfn, back[1].pa), (per as u64, 4 * MIB));
        let want = expected(&newer, 0, 2 * per);
        assert_written(&back, &want);
        assert!(work.take_all(&newer, &[]).is_empty(), "handed back once");
        work.run(0, &|| false); // nothing left, nothing touched
    }

    /// With the memblock it was made from, an item no CPU wrote is written when taken back,
    /// and what CPUs wrote is kept.
    #[test]
    fn taking_back_writes_what_no_cpu_did() {
        let per = PAGES_PER_SECTION as usize;
        let mb = memblock(&[(0, 512 * MIB)], &[(5 * MIB, 6 * MIB)]);
        let work = MemmapWork::new(vec![pending(0, 2 * per, 3 * MIB)], &mb, &[], &[0]);
        let once = core::cell::Cell::new(false);
        work.run(0, &|| once.replace(true));
        assert_eq!(work.left(), 1);
        let back = work.take_all(&mb, &[]);
        let want = expected(&mb, 0, 2 * per);
        assert_written(&back, &want);
    }
}
