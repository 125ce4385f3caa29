//! `struct page`: one 32-byte descriptor per 4 KiB frame.
//!
//! A [`Page`] is made of plain integers and integer atomics only, so **every bit pattern is a
//! valid value**: the kernel turns RAM, whatever it holds, into `&'static mut [Page]` in
//! `KernelPlatform::memmap_storage`, and the memory manager writes every struct page of a
//! chunk before anything reads it (boot's `memmap_init`, a hole fill for memremap and hotplug
//! sections). Keep it that way: no enums, references, `NonZero` or `bool` fields here. (The
//! all-zero page is no flags, zone DMA, node 0, order 0, refcount 0, no pagemap, no links.)
//!
//! List links are pfns, not pointers; they are meaningful only while the page is the head
//! of a free buddy block ([`PageFlags::BUDDY`]) or on a per-CPU list ([`PageFlags::PCP`]).

use core::fmt;
use core::sync::atomic::AtomicU64;
use core::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed};

use crate::zone::ZoneId;

bitflags::bitflags! {
    /// Page flag bits (Linux's `PG_*`), stored in [`Page`] as their `u16` bits.
    ///
    /// The states a page can be in are:
    /// * [`RESERVED`](Self::RESERVED): not managed by the buddy allocator (firmware or boot
    ///   reservations, holes, memmap storage, device pages, offline hot-added RAM);
    /// * [`BUDDY`](Self::BUDDY): head of a free block of `order` in its zone's free list;
    /// * [`PCP`](Self::PCP): a free order-0 page held in its zone's page cache;
    /// * [`HEAD`](Self::HEAD): head of an allocated block of `order` (refcount ≥ 1);
    /// * no state flag: a tail page of a free or allocated block.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct PageFlags: u16 {
        /// Not managed by the buddy allocator.
        const RESERVED = 1 << 0;
        /// Head of a free buddy block (`PageBuddy`).
        const BUDDY = 1 << 1;
        /// Head of an allocated block.
        const HEAD = 1 << 2;
        /// Free order-0 page cached in the zone's page cache (Linux's pcp lists).
        const PCP = 1 << 3;
        /// ZONE_DEVICE page, owned by a device pagemap.
        const DEVICE = 1 << 4;
        /// The frame holds memmap storage (struct pages).
        const MEMMAP = 1 << 5;
        /// Hot-added RAM that has not been onlined yet.
        const OFFLINE = 1 << 6;
        /// No memory behind this pfn: a hole inside a present section.
        const HOLE = 1 << 7;
        /// Head of an allocated block whose owner can move it (`__PageMovable`: Linux's
        /// movable_ops pages); the owner's index is kept where a device page keeps its
        /// pagemap ([`Page::movable_owner`]).
        const MOVABLE = 1 << 8;
    }
}

impl PageFlags {
    /// The flags that say what a page is (free head, cache, allocated head, reserved).
    pub const STATE: Self = Self::RESERVED
        .union(Self::BUDDY)
        .union(Self::HEAD)
        .union(Self::PCP);

    const NAMES: [(Self, &'static str); 9] = [
        (Self::RESERVED, "reserved"),
        (Self::BUDDY, "buddy"),
        (Self::HEAD, "head"),
        (Self::PCP, "pcp"),
        (Self::DEVICE, "device"),
        (Self::MEMMAP, "memmap"),
        (Self::OFFLINE, "offline"),
        (Self::HOLE, "hole"),
        (Self::MOVABLE, "movable"),
    ];
}

impl fmt::Display for PageFlags {
    /// Linux's `%pGp` style: `0x11(reserved|device)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}(", self.bits())?;
        let mut first = true;
        for (flag, name) in Self::NAMES {
            if self.contains(flag) {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        f.write_str(")")
    }
}

/// Free-list terminator stored in [`Page`] links.
pub(crate) const NIL: u64 = u64::MAX;

/// `struct page`: the descriptor of one page frame: four 64-bit words. See the module
/// documentation for the any-bit-pattern guarantee.
///
/// * `info`: flags (bits 0-15), zone (16-23), order (24-31), pagemap index + 1 (32-47),
///   node (48-55), and for a block on a per-CPU list the migratetype it goes back to
///   (56-63, Linux's `set_pcppage_migratetype` in `page->index`);
/// * `count`: reference count (bits 0-31), section number (32-63, for `page_to_pfn`);
/// * `next`, `prev`: list links (pfns).
///
/// Whole words, so initialising a memmap writes four 64-bit words per page (a store costs
/// the same under QEMU's TCG whatever its width, and one per field made boot several
/// times slower), and the buddy check reads a neighbour's flags, order, zone and node in
/// one load.
///
/// # Concurrency
/// The words are atomics, so struct pages can be shared between CPUs in safe Rust. Each page
/// has one owner at a time, and only the owner writes `info` and the links: the zone's lock
/// for a free buddy block, the CPU's pageset lock for a page in a per-CPU list, the holder for
/// an allocated block. Ownership changes only with both locks held (a refill or drain holds
/// the pageset lock and then the zone lock), so the owner updates them with relaxed loads and
/// stores, a plain `mov` on x86, and others may only read them (the buddy check under the zone
/// lock reads a neighbour's flags: it sees `BUDDY` only if the zone, which it holds, set it).
/// The reference count is the exception: several holders share it, so it changes with atomic
/// read-modify-write operations on `count`, which leave the section number as it is. Zone,
/// node, section and pagemap change only while the memory manager is held exclusively (boot,
/// hotplug, memremap).
#[repr(C)]
pub struct Page {
    info: AtomicU64,
    count: AtomicU64,
    next: AtomicU64,
    prev: AtomicU64,
}

const _: () = assert!(core::mem::size_of::<Page>() == 32);

const FLAGS_MASK: u64 = 0xffff;
const ZONE_SHIFT: u32 = 16;
const ORDER_SHIFT: u32 = 24;
const PGMAP_SHIFT: u32 = 32;
const NODE_SHIFT: u32 = 48;
const PCPMT_SHIFT: u32 = 56;
const REF_MASK: u64 = 0xffff_ffff;
const SECTION_SHIFT: u32 = 32;

impl Default for Page {
    /// The all-zero page.
    fn default() -> Self {
        Self::new(PageFlags::empty(), ZoneId::Dma, 0, 0)
    }
}

impl Page {
    /// A struct page of garbage (every byte 0xa5), as memmap storage may hold before the
    /// memory manager writes it: host tests hand out such storage.
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn garbage() -> Self {
        const G: u64 = 0xa5a5_a5a5_a5a5_a5a5;
        Self::from_words([G; 4])
    }

    const fn from_words(w: [u64; 4]) -> Self {
        Self {
            info: AtomicU64::new(w[0]),
            count: AtomicU64::new(w[1]),
            next: AtomicU64::new(w[2]),
            prev: AtomicU64::new(w[3]),
        }
    }

    fn words(&self) -> [u64; 4] {
        [
            self.info.load(Relaxed),
            self.count.load(Relaxed),
            self.next.load(Relaxed),
            self.prev.load(Relaxed),
        ]
    }
}

impl Clone for Page {
    /// A snapshot of every field.
    fn clone(&self) -> Self {
        Self::from_words(self.words())
    }
}

impl PartialEq for Page {
    fn eq(&self, o: &Self) -> bool {
        self.words() == o.words()
    }
}

impl Eq for Page {}

impl fmt::Debug for Page {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Page")
            .field("flags", &self.flags())
            .field("zone", &self.zone())
            .field("order", &self.order())
            .field("refcount", &self.refcount())
            .field("pgmap", &self.pagemap())
            .field("node", &self.nid())
            .field("section", &self.section())
            .field("next", &self.next())
            .field("prev", &self.prev())
            .finish()
    }
}

impl Page {
    /// A page initialised with the given flags, zone and node (everything else zero).
    #[inline]
    pub(crate) const fn new(flags: PageFlags, zone: ZoneId, node: u8, section: u32) -> Self {
        Self::from_words([
            flags.bits() as u64 | (zone as u64) << ZONE_SHIFT | (node as u64) << NODE_SHIFT,
            (section as u64) << SECTION_SHIFT,
            0,
            0,
        ])
    }

    /// Write `template` to every page of `pages`: four words per page, read once.
    #[inline]
    pub(crate) fn fill(pages: &mut [Page], template: &Page) {
        let w = template.words();
        for p in pages {
            *p = Self::from_words(w);
        }
    }

    #[inline]
    fn info(&self) -> u64 {
        self.info.load(Relaxed)
    }

    /// Replace the bits of `info` under `mask` (owner only: a load and a store).
    #[inline]
    fn set_info(&self, mask: u64, bits: u64) {
        self.info
            .store((self.info() & !mask) | (bits & mask), Relaxed);
    }

    /// The page's flags.
    #[inline]
    pub fn flags(&self) -> PageFlags {
        PageFlags::from_bits_retain(self.flag_bits())
    }

    /// The raw flag bits.
    #[inline]
    pub(crate) fn flag_bits(&self) -> u16 {
        self.info() as u16
    }

    /// Replace the flag bits (owner only, see the type's documentation).
    #[inline]
    pub(crate) fn set_flag_bits(&self, bits: u16) {
        self.set_info(FLAGS_MASK, u64::from(bits));
    }

    /// Whether any of `f` is set.
    #[inline]
    pub(crate) fn has(&self, f: PageFlags) -> bool {
        self.flag_bits() & f.bits() != 0
    }

    /// Set flags (owner only: a load and a store, not a locked read-modify-write).
    #[inline]
    pub(crate) fn set(&self, f: PageFlags) {
        self.set_flag_bits(self.flag_bits() | f.bits());
    }

    /// Clear flags (owner only).
    #[inline]
    pub(crate) fn clear(&self, f: PageFlags) {
        self.set_flag_bits(self.flag_bits() & !f.bits());
    }

    /// The zone this page belongs to (`page_zonenum`).
    #[inline]
    pub fn zone(&self) -> ZoneId {
        ZoneId::from_index(self.zone_index())
    }

    /// The stored zone index (values above 3 read as Device through [`zone`](Self::zone)).
    #[inline]
    pub(crate) fn zone_index(&self) -> u8 {
        (self.info() >> ZONE_SHIFT) as u8
    }

    /// Set the zone index (`set_page_zone`: onlining moves a range into its zone; tests
    /// damage a page on purpose with indices no zone has).
    pub(crate) fn set_zone(&self, zone: u8) {
        self.set_info(0xff << ZONE_SHIFT, u64::from(zone) << ZONE_SHIFT);
    }

    /// The NUMA node this page belongs to (`page_to_nid`).
    #[inline]
    pub fn nid(&self) -> usize {
        usize::from(self.node())
    }

    /// The stored node id.
    #[inline]
    pub(crate) fn node(&self) -> u8 {
        (self.info() >> NODE_SHIFT) as u8
    }

    /// Set the node (tests that damage a page on purpose).
    #[cfg(test)]
    pub(crate) fn set_node(&self, node: u8) {
        self.set_info(0xff << NODE_SHIFT, u64::from(node) << NODE_SHIFT);
    }

    /// Zone index and node in one load (the buddy check's `page_zone` comparison).
    #[inline]
    pub(crate) fn zone_and_node(&self) -> (u8, u8) {
        let w = self.info();
        ((w >> ZONE_SHIFT) as u8, (w >> NODE_SHIFT) as u8)
    }

    /// Buddy order: of the free block for a [`PageFlags::BUDDY`] head, of the allocation for a
    /// [`PageFlags::HEAD`] page; 0 otherwise.
    #[inline]
    pub fn order(&self) -> u32 {
        u32::from((self.info() >> ORDER_SHIFT) as u8)
    }

    /// Set flags and order in one store (owner only).
    #[inline]
    pub(crate) fn set_flags_and_order(&self, bits: u16, order: u32) {
        self.set_info(
            FLAGS_MASK | 0xff << ORDER_SHIFT,
            u64::from(bits) | u64::from(order as u8) << ORDER_SHIFT,
        );
    }

    /// Flags, order and the per-CPU migratetype in one store (owner only): a block going onto
    /// a per-CPU list.
    #[inline]
    pub(crate) fn set_pcp_block(&self, bits: u16, order: u32, mt: crate::pageblock::MigrateType) {
        self.set_info(
            FLAGS_MASK | 0xff << ORDER_SHIFT | 0xff << PCPMT_SHIFT,
            u64::from(bits) | u64::from(order as u8) << ORDER_SHIFT | (mt as u64) << PCPMT_SHIFT,
        );
    }

    /// `get_pcppage_migratetype`: the migratetype a per-CPU block goes back to.
    #[inline]
    pub(crate) fn pcp_migratetype(&self) -> crate::pageblock::MigrateType {
        crate::pageblock::MigrateType::from_index((self.info.load(Relaxed) >> PCPMT_SHIFT) as u8)
    }

    /// Set the order (owner only).
    #[inline]
    pub(crate) fn set_order(&self, order: u32) {
        self.set_info(0xff << ORDER_SHIFT, u64::from(order as u8) << ORDER_SHIFT);
    }

    /// The stored pagemap index + 1 (0: none).
    #[inline]
    pub(crate) fn pgmap_raw(&self) -> u16 {
        (self.info() >> PGMAP_SHIFT) as u16
    }

    /// Set the stored pagemap index + 1 (the memory manager held exclusively).
    #[inline]
    pub(crate) fn set_pgmap_raw(&self, v: u16) {
        self.set_info(0xffff << PGMAP_SHIFT, u64::from(v) << PGMAP_SHIFT);
    }

    /// Section number of this page (for `page_to_pfn`).
    #[inline]
    pub(crate) fn section(&self) -> u32 {
        (self.count.load(Relaxed) >> SECTION_SHIFT) as u32
    }

    /// Set the section number (the memory manager held exclusively).
    #[inline]
    pub(crate) fn set_section(&self, section: u32) {
        let c = self.count.load(Relaxed);
        self.count.store(
            (c & REF_MASK) | u64::from(section) << SECTION_SHIFT,
            Relaxed,
        );
    }

    /// Reference count (`page_ref_count`): 1 for a freshly allocated block head and for an idle
    /// device page, 0 for free pages.
    #[inline]
    pub fn refcount(&self) -> u32 {
        self.count.load(Relaxed) as u32
    }

    /// Set the reference count (`set_page_count`; owner only, no other holder exists).
    #[inline]
    pub(crate) fn set_refcount(&self, n: u32) {
        let c = self.count.load(Relaxed);
        self.count.store((c & !REF_MASK) | u64::from(n), Relaxed);
    }

    /// Change the reference count atomically for holders that share it (`page_ref_*`): `f`
    /// maps the count to the new one, or None to leave it; returns the old count, or the
    /// count `f` refused.
    #[inline]
    pub(crate) fn update_refcount(&self, f: impl Fn(u32) -> Option<u32>) -> Result<u32, u32> {
        self.count
            .try_update(AcqRel, Acquire, |c| {
                f(c as u32).map(|n| (c & !REF_MASK) | u64::from(n))
            })
            .map(|c| c as u32)
            .map_err(|c| c as u32)
    }

    /// Next entry of the list the page is on (free list or per-CPU list).
    #[inline]
    pub(crate) fn next(&self) -> u64 {
        self.next.load(Relaxed)
    }

    /// Previous entry of the list the page is on.
    #[inline]
    pub(crate) fn prev(&self) -> u64 {
        self.prev.load(Relaxed)
    }

    /// Set the next link (owner only).
    #[inline]
    pub(crate) fn set_next(&self, pfn: u64) {
        self.next.store(pfn, Relaxed);
    }

    /// Set the previous link (owner only).
    #[inline]
    pub(crate) fn set_prev(&self, pfn: u64) {
        self.prev.store(pfn, Relaxed);
    }

    /// Index of the device pagemap owning this page, for ZONE_DEVICE pages.
    #[inline]
    pub fn pagemap(&self) -> Option<usize> {
        let raw = self.pgmap_raw();
        (raw != 0 && !self.has(PageFlags::MOVABLE)).then(|| usize::from(raw) - 1)
    }

    /// The owner of a movable allocated block ([`PageFlags::MOVABLE`]): its index among the
    /// registered movable_ops (`page->mapping` of a movable page).
    #[inline]
    pub fn movable_owner(&self) -> Option<usize> {
        if self.has(PageFlags::MOVABLE) && !self.is_device() {
            let raw = self.pgmap_raw();
            (raw != 0).then(|| usize::from(raw) - 1)
        } else {
            None
        }
    }

    /// Whether the page is a ZONE_DEVICE page (`is_zone_device_page`).
    #[inline]
    pub fn is_device(&self) -> bool {
        self.has(PageFlags::DEVICE)
    }

    /// Whether the page is reserved (`PageReserved`).
    #[inline]
    pub fn is_reserved(&self) -> bool {
        self.has(PageFlags::RESERVED)
    }

    /// Whether the page heads a free buddy block (`PageBuddy`).
    #[inline]
    pub fn is_buddy(&self) -> bool {
        self.has(PageFlags::BUDDY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_zero_page_is_a_plain_reserved_free_value() {
        let p = Page::default();
        assert_eq!(p.flags(), PageFlags::empty());
        assert_eq!(p.zone(), ZoneId::Dma);
        assert_eq!(p.pagemap(), None);
        assert_eq!(p.nid(), 0);
        assert_eq!(core::mem::size_of::<Page>(), 32);
    }

    #[test]
    fn flags_display_like_linux() {
        let f = PageFlags::RESERVED.union(PageFlags::DEVICE);
        assert_eq!(std::format!("{f}"), "0x11(reserved|device)");
        assert_eq!(std::format!("{}", PageFlags::empty()), "0x0()");
        assert_eq!(
            std::format!("{}", PageFlags::from_bits_retain(0x8021)),
            "0x8021(reserved|memmap)",
            "unknown bits show in the number only"
        );
        assert!(f.contains(PageFlags::DEVICE));
        assert!(
            !f.difference(PageFlags::DEVICE)
                .intersects(PageFlags::DEVICE)
        );
    }
}
