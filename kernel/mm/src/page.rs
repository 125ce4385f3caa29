//! `struct page`: one 32-byte descriptor per 4 KiB frame.
//!
//! A [`Page`] is made of plain integers only, and **the all-zero bit pattern is a valid value**
//! (no flags, zone DMA, node 0, order 0, refcount 0, no pagemap, no links): the memmap storage the
//! [`Platform`](crate::Platform) hands out is already zeroed, and the kernel turns that zeroed
//! memory into `&'static mut [Page]` in `KernelPlatform::memmap_storage`. Keep it that way: no enums,
//! references, `NonZero` or `bool` fields here.
//!
//! List links are pfns, not pointers; they are meaningful only while the page is the head
//! of a free buddy block ([`PageFlags::BUDDY`]) or on a per-CPU list ([`PageFlags::PCP`]).

use core::fmt;
use core::sync::atomic::Ordering::Relaxed;
use core::sync::atomic::{AtomicU8, AtomicU16, AtomicU32, AtomicU64};

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
    }
}

impl PageFlags {
    /// The flags that say what a page is (free head, cache, allocated head, reserved).
    pub const STATE: Self = Self::RESERVED
        .union(Self::BUDDY)
        .union(Self::HEAD)
        .union(Self::PCP);

    const NAMES: [(Self, &'static str); 8] = [
        (Self::RESERVED, "reserved"),
        (Self::BUDDY, "buddy"),
        (Self::HEAD, "head"),
        (Self::PCP, "pcp"),
        (Self::DEVICE, "device"),
        (Self::MEMMAP, "memmap"),
        (Self::OFFLINE, "offline"),
        (Self::HOLE, "hole"),
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

/// `struct page`: the descriptor of one page frame. See the module documentation for the
/// all-zero guarantee.
///
/// # Concurrency
/// The fields that change while CPUs allocate and free (flags, order, reference count and the
/// list links) are atomics, so struct pages can be shared between CPUs in safe Rust. Each page
/// has one owner at a time, and only the owner writes these fields: the zone's lock for a
/// free buddy block, the CPU's pageset lock for a page in a per-CPU list, the holder for an
/// allocated block. Ownership changes only with both locks held (a refill or drain holds the
/// pageset lock and then the zone lock), so the owner updates them with relaxed loads and
/// stores, a plain `mov` on x86, and others may only read them (the buddy check under the zone
/// lock reads a neighbour's flags: it sees `BUDDY` only if the zone, which it holds, set it).
/// The reference count is the exception: several holders share it, so it changes with atomic
/// read-modify-write operations. Zone, node, section and pagemap are set while the memory
/// manager is held exclusively (boot, hotplug, memremap) and are plain fields.
#[repr(C)]
pub struct Page {
    flags: AtomicU16,
    pub(crate) zone: u8,
    order: AtomicU8,
    refcount: AtomicU32,
    /// Device pagemap index + 1 (0: none).
    pub(crate) pgmap: u16,
    /// NUMA node (`page_to_nid`), an index into the machine's nodes.
    pub(crate) node: u8,
    /// Unused; keeps the layout explicit.
    pub(crate) _spare: u8,
    /// Section number of this page (for `page_to_pfn`).
    pub(crate) section: u32,
    next: AtomicU64,
    prev: AtomicU64,
}

const _: () = assert!(core::mem::size_of::<Page>() <= 32);

impl Default for Page {
    /// The all-zero page.
    fn default() -> Self {
        Self::new(PageFlags::empty(), ZoneId::Dma, 0, 0)
    }
}

impl Clone for Page {
    /// A snapshot of every field.
    fn clone(&self) -> Self {
        Self {
            flags: AtomicU16::new(self.flags.load(Relaxed)),
            zone: self.zone,
            order: AtomicU8::new(self.order.load(Relaxed)),
            refcount: AtomicU32::new(self.refcount.load(Relaxed)),
            pgmap: self.pgmap,
            node: self.node,
            _spare: self._spare,
            section: self.section,
            next: AtomicU64::new(self.next.load(Relaxed)),
            prev: AtomicU64::new(self.prev.load(Relaxed)),
        }
    }
}

impl PartialEq for Page {
    fn eq(&self, o: &Self) -> bool {
        self.flags.load(Relaxed) == o.flags.load(Relaxed)
            && self.zone == o.zone
            && self.order.load(Relaxed) == o.order.load(Relaxed)
            && self.refcount.load(Relaxed) == o.refcount.load(Relaxed)
            && self.pgmap == o.pgmap
            && self.node == o.node
            && self.section == o.section
            && self.next.load(Relaxed) == o.next.load(Relaxed)
            && self.prev.load(Relaxed) == o.prev.load(Relaxed)
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
            .field("node", &self.node)
            .field("section", &self.section)
            .field("next", &self.next())
            .field("prev", &self.prev())
            .finish()
    }
}

impl Page {
    /// A page initialised with the given flags, zone and node (everything else zero).
    #[inline]
    pub(crate) const fn new(flags: PageFlags, zone: ZoneId, node: u8, section: u32) -> Self {
        Self {
            flags: AtomicU16::new(flags.bits()),
            zone: zone as u8,
            order: AtomicU8::new(0),
            refcount: AtomicU32::new(0),
            pgmap: 0,
            node,
            _spare: 0,
            section,
            next: AtomicU64::new(0),
            prev: AtomicU64::new(0),
        }
    }

    /// The page's flags.
    #[inline]
    pub fn flags(&self) -> PageFlags {
        PageFlags::from_bits_retain(self.flags.load(Relaxed))
    }

    /// The raw flag bits.
    #[inline]
    pub(crate) fn flag_bits(&self) -> u16 {
        self.flags.load(Relaxed)
    }

    /// Replace the flag bits (owner only, see the type's documentation).
    #[inline]
    pub(crate) fn set_flag_bits(&self, bits: u16) {
        self.flags.store(bits, Relaxed);
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
        ZoneId::from_index(self.zone)
    }

    /// The NUMA node this page belongs to (`page_to_nid`).
    #[inline]
    pub fn nid(&self) -> usize {
        usize::from(self.node)
    }

    /// Buddy order: of the free block for a [`PageFlags::BUDDY`] head, of the allocation for a
    /// [`PageFlags::HEAD`] page; 0 otherwise.
    #[inline]
    pub fn order(&self) -> u32 {
        u32::from(self.order.load(Relaxed))
    }

    /// Set the order (owner only).
    #[inline]
    pub(crate) fn set_order(&self, order: u32) {
        self.order.store(order as u8, Relaxed);
    }

    /// Reference count (`page_ref_count`): 1 for a freshly allocated block head and for an idle
    /// device page, 0 for free pages.
    #[inline]
    pub fn refcount(&self) -> u32 {
        self.refcount.load(Relaxed)
    }

    /// Set the reference count (`set_page_count`; owner only, no other holder exists).
    #[inline]
    pub(crate) fn set_refcount(&self, n: u32) {
        self.refcount.store(n, Relaxed);
    }

    /// The reference count, for holders that share it (`page_ref_*`).
    #[inline]
    pub(crate) fn refcount_atomic(&self) -> &AtomicU32 {
        &self.refcount
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
        (self.pgmap != 0).then(|| usize::from(self.pgmap) - 1)
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
