//! Sparse memmap: the physical address space in 128 MiB sections, struct pages only for present
//! sections.
//!
//! The section table is two-level like Linux's `CONFIG_SPARSEMEM_EXTREME`: a root array of
//! [`NR_SECTION_ROOTS`] `u16` entries (16 KiB, allocated once) points to blocks of
//! [`SECTIONS_PER_ROOT`] sections (16 KiB each, 512 GiB of address space) that are allocated
//! only when a section inside them becomes present; the block of the first 512 GiB is built in.
//! A hole, or a device range at 64 TiB, costs nothing until it is added. Each present section
//! names the memmap chunk holding its pages; a chunk is one `&'static mut [Page]` from the
//! [`Platform`](crate::Platform) covering one or more
//! consecutive sections. `pfn_valid`, `pfn_to_page` and `page_to_pfn` are O(1).
//!
//! Sections go away again with [`Sparse::remove_sections`] (Linux's `sparse_remove_section`):
//! the table forgets them and hands back their struct pages with where the storage came from
//! ([`MemmapOrigin`]), for the caller to give back (buddy RAM freed, memblock RAM released,
//! storage in the removed range simply dropped). A chunk is split at section boundaries when
//! only part of it goes.

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use crate::PAGEBLOCK_ORDER;
use crate::page::Page;
use crate::pageblock::{MigrateType, PAGEBLOCK_NR_PAGES, PageblockFlags};

/// log2 of the section size in bytes (128 MiB).
pub const SECTION_SIZE_BITS: u32 = 27;
/// log2 of the number of pages per section.
pub const PFN_SECTION_SHIFT: u32 = SECTION_SIZE_BITS - crate::PAGE_SHIFT;
/// Pages per section (32768).
pub const PAGES_PER_SECTION: u64 = 1 << PFN_SECTION_SHIFT;
/// Bytes of memmap per section (1 MiB with 32-byte pages).
pub const MEMMAP_BYTES_PER_SECTION: u64 = PAGES_PER_SECTION * core::mem::size_of::<Page>() as u64;
/// Number of sections in the 52-bit physical address space.
pub const NR_MEM_SECTIONS: u64 = 1 << (crate::MAX_PHYSMEM_BITS - SECTION_SIZE_BITS);
const SECTIONS_PER_ROOT_SHIFT: u32 = 12;
/// Sections per second-level block.
pub const SECTIONS_PER_ROOT: usize = 1 << SECTIONS_PER_ROOT_SHIFT;
/// Entries of the root array.
pub const NR_SECTION_ROOTS: usize = (NR_MEM_SECTIONS as usize) / SECTIONS_PER_ROOT;

/// Section number of a pfn.
#[inline]
pub const fn pfn_to_section_nr(pfn: u64) -> u64 {
    pfn >> PFN_SECTION_SHIFT
}

/// First pfn of a section.
#[inline]
pub const fn section_nr_to_pfn(nr: u64) -> u64 {
    nr << PFN_SECTION_SHIFT
}

/// Errors when adding sections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SparseError {
    /// The range is beyond the 52-bit physical address space.
    OutOfRange,
    /// The chunk does not start on a section boundary or does not hold whole sections.
    Misaligned,
    /// A section of the range is already present.
    AlreadyPresent(u64),
    /// More chunks or root blocks than the 16-bit/32-bit indices can name.
    TooManyChunks,
    /// A section of a range being removed is not present.
    NotPresent(u64),
    /// A section that stays has its memmap stored inside the range being removed.
    SharedMemmap(u64),
    /// The section's memmap is boot memory (memblock), which is never removed.
    BootMemmap(u64),
}

impl fmt::Display for SparseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OutOfRange => f.write_str("section beyond the 52-bit physical address space"),
            Self::Misaligned => f.write_str("memmap chunk not section-aligned"),
            Self::AlreadyPresent(nr) => write!(f, "section {nr} already present"),
            Self::TooManyChunks => f.write_str("too many memmap chunks"),
            Self::NotPresent(nr) => write!(f, "section {nr} not present"),
            Self::SharedMemmap(nr) => write!(
                f,
                "section {nr} stays in use but its memmap is stored in the range"
            ),
            Self::BootMemmap(nr) => write!(f, "section {nr} has boot memmap (not removable)"),
        }
    }
}

/// Where a chunk's struct pages are stored, which decides what removing it gives back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemmapOrigin {
    /// Boot memory from memblock at this physical address (reserved, never managed).
    Memblock {
        /// Physical address of the storage.
        pa: u64,
    },
    /// A block from the buddy allocator at this physical address (flagged memmap).
    Buddy {
        /// Physical address of the storage.
        pa: u64,
    },
    /// The first pages of the range the sections cover (altmap / memmap on memory): it goes
    /// away with the range.
    InRange {
        /// Physical address of the storage.
        pa: u64,
    },
}

impl MemmapOrigin {
    /// Physical address of the storage.
    pub fn pa(self) -> u64 {
        match self {
            Self::Memblock { pa } | Self::Buddy { pa } | Self::InRange { pa } => pa,
        }
    }

    /// The same origin `pages` struct pages further on.
    fn offset(self, pages: u64) -> Self {
        let d = pages * core::mem::size_of::<Page>() as u64;
        match self {
            Self::Memblock { pa } => Self::Memblock { pa: pa + d },
            Self::Buddy { pa } => Self::Buddy { pa: pa + d },
            Self::InRange { pa } => Self::InRange { pa: pa + d },
        }
    }
}

/// One run of memmap storage.
#[derive(Debug)]
pub(crate) struct MemmapChunk {
    pub(crate) start_pfn: u64,
    pub(crate) pages: &'static mut [Page],
    pub(crate) origin: MemmapOrigin,
    /// The pageblock bitmap of these sections (`usemap`): one entry per pageblock.
    pub(crate) usemap: Vec<PageblockFlags>,
}

/// Struct pages of sections taken out of the table by [`Sparse::remove_sections`]: the
/// caller gives the storage back (or puts it back with [`Sparse::add_chunk`] to undo).
#[derive(Debug)]
pub struct RemovedMemmap {
    /// First pfn the pages described.
    pub start_pfn: u64,
    /// The struct pages (nothing else refers to them now).
    pub pages: &'static mut [Page],
    /// Where they are stored.
    pub origin: MemmapOrigin,
}

/// The section table and the memmap chunks (`mem_section[]`).
pub struct Sparse {
    /// The block of root 0 (the first 512 GiB, where RAM lives), reached without the root
    /// array: one dependent load fewer on every `pfn_to_page` of the allocator's fast path.
    low: Box<[u32; SECTIONS_PER_ROOT]>,
    roots: Box<[u16]>,
    blocks: Vec<Box<[u32]>>,
    pub(crate) chunks: Vec<MemmapChunk>,
    present_sections: u64,
}

impl fmt::Debug for Sparse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sparse")
            .field("present_sections", &self.present_sections)
            .field("chunks", &self.chunks.len())
            .finish()
    }
}

impl Default for Sparse {
    fn default() -> Self {
        Self::new()
    }
}

impl Sparse {
    /// An empty section table (allocates the 16 KiB root array).
    pub fn new() -> Self {
        Self {
            low: Box::new([0u32; SECTIONS_PER_ROOT]),
            roots: vec![0u16; NR_SECTION_ROOTS].into_boxed_slice(),
            blocks: Vec::new(),
            chunks: Vec::new(),
            present_sections: 0,
        }
    }

    #[inline]
    fn chunk_of_section(&self, nr: u64) -> Option<usize> {
        if nr < SECTIONS_PER_ROOT as u64 {
            let c = self.low[nr as usize];
            return (c != 0).then(|| c as usize - 1);
        }
        let root = (nr >> SECTIONS_PER_ROOT_SHIFT) as usize;
        let b = *self.roots.get(root)?;
        if b == 0 {
            return None;
        }
        let c = self.blocks[b as usize - 1][nr as usize & (SECTIONS_PER_ROOT - 1)];
        (c != 0).then(|| c as usize - 1)
    }

    /// Whether section `nr` has a memmap (`present_section_nr`).
    #[inline]
    pub fn section_present(&self, nr: u64) -> bool {
        self.chunk_of_section(nr).is_some()
    }

    /// Number of present sections.
    pub fn present_sections(&self) -> u64 {
        self.present_sections
    }

    /// `pfn_valid`: the pfn has a struct page.
    #[inline]
    pub fn pfn_valid(&self, pfn: u64) -> bool {
        self.section_present(pfn_to_section_nr(pfn))
    }

    #[inline]
    fn locate(&self, pfn: u64) -> Option<(usize, usize)> {
        let c = self.chunk_of_section(pfn_to_section_nr(pfn))?;
        let idx = pfn.wrapping_sub(self.chunks[c].start_pfn) as usize;
        Some((c, idx))
    }

    /// `pfn_to_page`.
    #[inline]
    pub fn page(&self, pfn: u64) -> Option<&Page> {
        let (c, i) = self.locate(pfn)?;
        self.chunks[c].pages.get(i)
    }

    /// `pfn_to_page` and the pageblock flags of the pfn, with one section lookup (the free
    /// path needs both).
    #[inline]
    pub(crate) fn page_and_pageblock(&self, pfn: u64) -> Option<(&Page, &PageblockFlags)> {
        let (c, i) = self.locate(pfn)?;
        let chunk = &self.chunks[c];
        Some((chunk.pages.get(i)?, chunk.usemap.get(i >> PAGEBLOCK_ORDER)?))
    }

    /// The pfns of an intrusive list of struct pages (free lists, per-CPU lists) from `head`
    /// along `next`, at most `limit` of them; stops at NIL or at a pfn without a struct page.
    pub(crate) fn walk_list(&self, head: u64, limit: u64) -> impl Iterator<Item = u64> + '_ {
        let (mut cur, mut left) = (head, limit);
        core::iter::from_fn(move || {
            if cur == crate::page::NIL || left == 0 {
                return None;
            }
            left -= 1;
            let pfn = cur;
            cur = self.page(pfn).map_or(crate::page::NIL, |p| p.next());
            Some(pfn)
        })
    }

    /// `pfn_to_page`, mutable (the checker's tests corrupt pages with it).
    #[cfg(test)]
    pub(crate) fn page_mut(&mut self, pfn: u64) -> Option<&mut Page> {
        let (c, i) = self.locate(pfn)?;
        self.chunks[c].pages.get_mut(i)
    }

    /// The pageblock flags of the pageblock holding `pfn`; None without a struct page.
    #[inline]
    pub(crate) fn pageblock(&self, pfn: u64) -> Option<&PageblockFlags> {
        let (c, i) = self.locate(pfn)?;
        self.chunks[c].usemap.get(i >> PAGEBLOCK_ORDER)
    }

    /// `get_pageblock_migratetype`: the migratetype of the pageblock holding `pfn` (None
    /// without a struct page).
    #[inline]
    pub fn pageblock_migratetype(&self, pfn: u64) -> Option<MigrateType> {
        self.pageblock(pfn).map(PageblockFlags::get)
    }

    /// The struct pages of `[pfn, pfn + n)` if they lie in one memmap chunk.
    pub(crate) fn pages(&self, pfn: u64, n: u64) -> Option<&[Page]> {
        let (c, i) = self.locate(pfn)?;
        self.chunks[c].pages.get(i..i.checked_add(n as usize)?)
    }

    /// The struct pages of `[pfn, pfn + n)` if they lie in one memmap chunk, mutable.
    pub(crate) fn pages_mut(&mut self, pfn: u64, n: u64) -> Option<&mut [Page]> {
        let (c, i) = self.locate(pfn)?;
        self.chunks[c].pages.get_mut(i..i.checked_add(n as usize)?)
    }

    /// `page_to_pfn`: the pfn of a struct page obtained from this memmap.
    pub fn page_to_pfn(&self, page: &Page) -> Option<u64> {
        let c = self.chunk_of_section(u64::from(page.section()))?;
        let chunk = &self.chunks[c];
        let base = chunk.pages.as_ptr().addr();
        let off = (page as *const Page).addr().checked_sub(base)? / core::mem::size_of::<Page>();
        (off < chunk.pages.len()).then(|| chunk.start_pfn + off as u64)
    }

    /// Make the sections of `[start_pfn, start_pfn + pages.len())` present with `pages` as
    /// their memmap, stored as `origin` says. The chunk must start on a section boundary and
    /// hold whole sections. On an error the table is as before and `pages` is handed back.
    pub(crate) fn add_chunk(
        &mut self,
        start_pfn: u64,
        pages: &'static mut [Page],
        origin: MemmapOrigin,
    ) -> Result<(), (SparseError, &'static mut [Page])> {
        match self.check_add(start_pfn, pages.len() as u64) {
            Ok(()) => {}
            Err(e) => return Err((e, pages)),
        }
        let first = pfn_to_section_nr(start_pfn);
        let nsec = pages.len() as u64 / PAGES_PER_SECTION;
        let chunk_id = self.chunks.len() as u32 + 1;
        for nr in first..first + nsec {
            self.set_entry(nr, chunk_id);
        }
        let usemap = (0..pages.len() as u64 / PAGEBLOCK_NR_PAGES)
            .map(|_| PageblockFlags::new())
            .collect();
        self.chunks.push(MemmapChunk {
            start_pfn,
            pages,
            origin,
            usemap,
        });
        self.present_sections += nsec;
        Ok(())
    }

    /// Validate an [`add_chunk`](Self::add_chunk) and allocate the root blocks it needs (an
    /// empty root block changes no lookup, so it may stay on a later refusal).
    fn check_add(&mut self, start_pfn: u64, n: u64) -> Result<(), SparseError> {
        if !start_pfn.is_multiple_of(PAGES_PER_SECTION)
            || n == 0
            || !n.is_multiple_of(PAGES_PER_SECTION)
        {
            return Err(SparseError::Misaligned);
        }
        let first = pfn_to_section_nr(start_pfn);
        let nsec = n / PAGES_PER_SECTION;
        if first + nsec > NR_MEM_SECTIONS {
            return Err(SparseError::OutOfRange);
        }
        for nr in first..first + nsec {
            if self.section_present(nr) {
                return Err(SparseError::AlreadyPresent(nr));
            }
        }
        u32::try_from(self.chunks.len() + 2).map_err(|_| SparseError::TooManyChunks)?;
        for nr in first..first + nsec {
            let root = (nr >> SECTIONS_PER_ROOT_SHIFT) as usize;
            if root != 0 && self.roots[root] == 0 {
                let id =
                    u16::try_from(self.blocks.len() + 1).map_err(|_| SparseError::TooManyChunks)?;
                self.blocks
                    .push(vec![0u32; SECTIONS_PER_ROOT].into_boxed_slice());
                self.roots[root] = id;
            }
        }
        Ok(())
    }

    /// Point section `nr` (whose root block exists) at chunk id `id` (0: absent).
    fn set_entry(&mut self, nr: u64, id: u32) {
        let root = (nr >> SECTIONS_PER_ROOT_SHIFT) as usize;
        if root == 0 {
            self.low[nr as usize] = id;
        } else {
            let b = self.roots[root] as usize - 1;
            self.blocks[b][nr as usize & (SECTIONS_PER_ROOT - 1)] = id;
        }
    }

    /// Split the chunk holding section `nr` so that `nr` starts a chunk (nothing to do when it
    /// does already, or is absent). The upper part becomes a new chunk.
    fn split_at_section(&mut self, nr: u64) -> Result<(), SparseError> {
        let Some(c) = self.chunk_of_section(nr) else {
            return Ok(());
        };
        let at = section_nr_to_pfn(nr);
        let chunk = &mut self.chunks[c];
        if chunk.start_pfn == at {
            return Ok(());
        }
        let id = u32::try_from(self.chunks.len() + 1).map_err(|_| SparseError::TooManyChunks)?;
        let chunk = &mut self.chunks[c];
        let keep = at - chunk.start_pfn;
        let (low, high) = core::mem::take(&mut chunk.pages).split_at_mut(keep as usize);
        chunk.pages = low;
        let origin = chunk.origin.offset(keep);
        let usemap = chunk.usemap.split_off((keep / PAGEBLOCK_NR_PAGES) as usize);
        let nsec = high.len() as u64 / PAGES_PER_SECTION;
        self.chunks.push(MemmapChunk {
            start_pfn: at,
            pages: high,
            origin,
            usemap,
        });
        for s in nr..nr + nsec {
            self.set_entry(s, id);
        }
        Ok(())
    }

    /// `sparse_remove_section` for every section of `[start_pfn, end_pfn)` (section-aligned,
    /// every section present): the table forgets them and hands back their struct pages, by
    /// chunk, with their storage origin. Refused (nothing changed) if the range is misaligned
    /// or a section is absent. Chunks reaching outside the range are split first.
    pub fn remove_sections(
        &mut self,
        start_pfn: u64,
        end_pfn: u64,
    ) -> Result<Vec<RemovedMemmap>, SparseError> {
        if !start_pfn.is_multiple_of(PAGES_PER_SECTION)
            || !end_pfn.is_multiple_of(PAGES_PER_SECTION)
            || end_pfn <= start_pfn
        {
            return Err(SparseError::Misaligned);
        }
        let (first, end) = (pfn_to_section_nr(start_pfn), pfn_to_section_nr(end_pfn));
        if end > NR_MEM_SECTIONS {
            return Err(SparseError::OutOfRange);
        }
        if let Some(nr) = (first..end).find(|&nr| !self.section_present(nr)) {
            return Err(SparseError::NotPresent(nr));
        }
        // At most two splits, each one new chunk id.
        u32::try_from(self.chunks.len() + 2).map_err(|_| SparseError::TooManyChunks)?;
        self.split_at_section(first)?;
        self.split_at_section(end)?;
        let mut out = Vec::new();
        let mut nr = first;
        while nr < end {
            let Some(c) = self.chunk_of_section(nr) else {
                return Err(SparseError::NotPresent(nr));
            };
            let nsec = self.chunks[c].pages.len() as u64 / PAGES_PER_SECTION;
            for s in nr..nr + nsec {
                self.set_entry(s, 0);
            }
            let removed = self.chunks.swap_remove(c);
            // The last chunk moved into slot c: its sections take the new id.
            if let Some(moved) = self.chunks.get(c) {
                let m_first = pfn_to_section_nr(moved.start_pfn);
                let m_n = moved.pages.len() as u64 / PAGES_PER_SECTION;
                for s in m_first..m_first + m_n {
                    self.set_entry(s, c as u32 + 1);
                }
            }
            self.present_sections -= nsec;
            out.push(RemovedMemmap {
                start_pfn: removed.start_pfn,
                pages: removed.pages,
                origin: removed.origin,
            });
            nr += nsec;
        }
        Ok(out)
    }

    /// Where the memmap of section `nr` is stored, if it is present.
    pub fn memmap_origin(&self, nr: u64) -> Option<MemmapOrigin> {
        let c = self.chunk_of_section(nr)?;
        let chunk = &self.chunks[c];
        Some(chunk.origin.offset(section_nr_to_pfn(nr) - chunk.start_pfn))
    }

    /// The memmap chunks as `(first pfn, struct pages)`, in the order they were added (for
    /// the kernel to see where the struct pages live, e.g. on which node).
    pub fn memmap_chunks(&self) -> impl Iterator<Item = (u64, &[Page])> + '_ {
        self.chunks.iter().map(|c| (c.start_pfn, &*c.pages))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGIN: MemmapOrigin = MemmapOrigin::Memblock { pa: 0 };

    fn storage(n: u64) -> &'static mut [Page] {
        Box::leak(vec![Page::default(); n as usize].into_boxed_slice())
    }

    #[test]
    fn sections_far_apart_cost_only_their_blocks() {
        let mut s = Sparse::new();
        s.add_chunk(0, storage(PAGES_PER_SECTION), ORIGIN).unwrap();
        let far = (64u64 << 40) >> crate::PAGE_SHIFT; // 64 TiB
        let pages = storage(PAGES_PER_SECTION);
        for p in pages.iter_mut() {
            p.set_section(pfn_to_section_nr(far) as u32);
        }
        s.add_chunk(far, pages, ORIGIN).unwrap();
        assert_eq!(
            s.blocks.len(),
            1,
            "root 0 is built in; 64 TiB needs one block"
        );
        assert!(s.pfn_valid(0) && s.pfn_valid(far + 5));
        assert!(!s.pfn_valid(PAGES_PER_SECTION));
        assert!(!s.pfn_valid(far - 1));
        assert!(!s.pfn_valid(u64::MAX));
        assert!(s.page(crate::MAX_PFN_LIMIT).is_none());
        let p = s.page(far + 7).unwrap();
        assert_eq!(s.page_to_pfn(p), Some(far + 7));
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "every pfn of two sections (65536 struct pages): about a minute under Miri"
    )]
    fn page_to_pfn_inverts_pfn_to_page() {
        let mut s = Sparse::new();
        let base = 3 * PAGES_PER_SECTION;
        let pages = storage(2 * PAGES_PER_SECTION);
        for (i, p) in pages.iter_mut().enumerate() {
            p.set_section(pfn_to_section_nr(base + i as u64) as u32);
        }
        s.add_chunk(base, pages, ORIGIN).unwrap();
        for pfn in [
            base,
            base + 1,
            base + PAGES_PER_SECTION,
            base + 2 * PAGES_PER_SECTION - 1,
        ] {
            assert_eq!(s.page_to_pfn(s.page(pfn).unwrap()), Some(pfn));
        }
        let foreign = Page::default();
        assert_eq!(s.page_to_pfn(&foreign), None);
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "five sections of struct pages (32768 each, fixed): over a minute under Miri"
    )]
    fn add_chunk_refusals() {
        let mut s = Sparse::new();
        assert_eq!(
            s.add_chunk(1, storage(PAGES_PER_SECTION), ORIGIN)
                .map_err(|e| e.0),
            Err(SparseError::Misaligned)
        );
        assert_eq!(
            s.add_chunk(0, storage(100), ORIGIN).map_err(|e| e.0),
            Err(SparseError::Misaligned)
        );
        s.add_chunk(0, storage(PAGES_PER_SECTION), ORIGIN).unwrap();
        assert_eq!(
            s.add_chunk(0, storage(PAGES_PER_SECTION), ORIGIN)
                .map_err(|e| e.0),
            Err(SparseError::AlreadyPresent(0))
        );
        let last = section_nr_to_pfn(NR_MEM_SECTIONS - 1);
        assert_eq!(
            s.add_chunk(last, storage(2 * PAGES_PER_SECTION), ORIGIN)
                .map_err(|e| e.0),
            Err(SparseError::OutOfRange)
        );
        assert_eq!(s.present_sections(), 1);
    }

    fn numbered(base: u64, n: u64) -> &'static mut [Page] {
        let pages = storage(n);
        for (i, p) in pages.iter_mut().enumerate() {
            p.set_section(pfn_to_section_nr(base + i as u64) as u32);
        }
        pages
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "five sections of struct pages, each numbered and compared: over 2 minutes under Miri"
    )]
    fn remove_sections_splits_chunks_and_renumbers_the_moved_one() {
        let mut s = Sparse::new();
        let pps = PAGES_PER_SECTION;
        // Chunk 1: sections 2-5 (memmap at 0x10000); chunk 2: section 8.
        s.add_chunk(
            2 * pps,
            numbered(2 * pps, 4 * pps),
            MemmapOrigin::Buddy { pa: 0x10000 },
        )
        .unwrap();
        s.add_chunk(
            8 * pps,
            numbered(8 * pps, pps),
            MemmapOrigin::InRange { pa: 0x5000 },
        )
        .unwrap();
        // Sections 3-4 go: chunk 1 is cut in three.
        let removed = s.remove_sections(3 * pps, 5 * pps).unwrap();
        assert_eq!(removed.len(), 1);
        assert_eq!(removed[0].start_pfn, 3 * pps);
        assert_eq!(removed[0].pages.len() as u64, 2 * pps);
        assert_eq!(
            removed[0].origin,
            MemmapOrigin::Buddy {
                pa: 0x10000 + pps * 32
            }
        );
        assert_eq!(s.present_sections(), 3);
        for nr in [2, 5, 8] {
            let pfn = section_nr_to_pfn(nr) + 7;
            assert_eq!(
                s.page_to_pfn(s.page(pfn).unwrap()),
                Some(pfn),
                "section {nr}"
            );
        }
        for nr in [3, 4] {
            assert!(!s.section_present(nr));
        }
        assert_eq!(
            s.memmap_origin(5),
            Some(MemmapOrigin::Buddy {
                pa: 0x10000 + 3 * pps * 32
            })
        );
        // Refusals change nothing.
        assert_eq!(
            s.remove_sections(3 * pps, 4 * pps).map(|_| ()),
            Err(SparseError::NotPresent(3))
        );
        assert_eq!(
            s.remove_sections(2 * pps + 1, 3 * pps).map(|_| ()),
            Err(SparseError::Misaligned)
        );
        assert_eq!(s.present_sections(), 3);
        // Section 2 goes: the last chunk moves into its slot and still resolves.
        s.remove_sections(2 * pps, 3 * pps).unwrap();
        for nr in [5, 8] {
            let pfn = section_nr_to_pfn(nr) + 3;
            assert_eq!(
                s.page_to_pfn(s.page(pfn).unwrap()),
                Some(pfn),
                "section {nr}"
            );
        }
        // Put back, the removed pages resolve again.
        let back = removed.into_iter().next().unwrap();
        s.add_chunk(back.start_pfn, back.pages, back.origin)
            .unwrap();
        assert_eq!(s.present_sections(), 4);
        let pfn = 4 * pps + 9;
        assert_eq!(s.page_to_pfn(s.page(pfn).unwrap()), Some(pfn));
    }
}
