//! Pageblocks and migratetypes (Linux's `pageblock-flags.h` and the `MIGRATE_*` types):
//! grouping pages by mobility.
//!
//! Physical memory is cut into pageblocks of 2^[`PAGEBLOCK_ORDER`] pages (2 MiB). Each has a
//! migratetype, kept in its section's pageblock bitmap (Linux's `usemap`: one byte per
//! pageblock here, beside the section's struct pages in [`Sparse`](crate::sparse::Sparse)).
//! The buddy allocator keeps one free list per migratetype in each order, serves an allocation
//! from the lists of its own type first (`gfp_migratetype`) and falls back to the others in
//! Linux's order, stealing whole pageblocks when it can (see [`buddy`](crate::buddy)), so
//! that unmovable allocations gather in few pageblocks and the rest stays movable: what
//! offlining and large allocations need.
//!
//! Every pageblock starts Movable, as Linux's `memmap_init_range` sets it.

use core::fmt;
use core::sync::atomic::AtomicU8;
use core::sync::atomic::Ordering::Relaxed;

use crate::gfp::Gfp;

pub use crate::PAGEBLOCK_ORDER;

/// Pages in a pageblock (`pageblock_nr_pages`).
pub const PAGEBLOCK_NR_PAGES: u64 = 1 << PAGEBLOCK_ORDER;

/// Number of migratetypes (`MIGRATE_TYPES`; Linux without CMA, as Debian's 6.1 kernel shows in
/// /proc/pagetypeinfo).
pub const MIGRATE_TYPES: usize = 5;

/// The types the per-CPU lists hold (`MIGRATE_PCPTYPES`): Unmovable, Movable, Reclaimable.
pub const MIGRATE_PCPTYPES: usize = 3;

/// A pageblock's (or a free list's) mobility type (`enum migratetype`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum MigrateType {
    /// Kernel allocations that never move (`MIGRATE_UNMOVABLE`).
    Unmovable = 0,
    /// Pages whose owner can move them (`MIGRATE_MOVABLE`).
    Movable = 1,
    /// Pages that can be freed on demand, such as caches (`MIGRATE_RECLAIMABLE`).
    Reclaimable = 2,
    /// Pageblocks kept for high-order atomic allocations (`MIGRATE_HIGHATOMIC`).
    HighAtomic = 3,
    /// Pageblocks being taken away (offline, `alloc_contig_range`): their free pages are
    /// never handed out and not counted free (`MIGRATE_ISOLATE`).
    Isolate = 4,
}

impl MigrateType {
    /// All types in index order.
    pub const ALL: [MigrateType; MIGRATE_TYPES] = [
        Self::Unmovable,
        Self::Movable,
        Self::Reclaimable,
        Self::HighAtomic,
        Self::Isolate,
    ];

    /// The type of a stored index; an index no type has reads as Unmovable (never handed out
    /// as movable by mistake).
    #[inline]
    pub const fn from_index(i: u8) -> Self {
        match i {
            1 => Self::Movable,
            2 => Self::Reclaimable,
            3 => Self::HighAtomic,
            4 => Self::Isolate,
            _ => Self::Unmovable,
        }
    }

    /// Index for arrays.
    #[inline]
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Linux's `migratetype_names[]`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Unmovable => "Unmovable",
            Self::Movable => "Movable",
            Self::Reclaimable => "Reclaimable",
            Self::HighAtomic => "HighAtomic",
            Self::Isolate => "Isolate",
        }
    }

    /// `gfp_migratetype`: Movable for `__GFP_MOVABLE`, Reclaimable for `__GFP_RECLAIMABLE`,
    /// otherwise Unmovable.
    #[inline]
    pub const fn of_gfp(gfp: Gfp) -> Self {
        if gfp.contains(Gfp::MOVABLE) {
            Self::Movable
        } else if gfp.contains(Gfp::RECLAIMABLE) {
            Self::Reclaimable
        } else {
            Self::Unmovable
        }
    }

    /// `migratetype_is_mergeable`: free blocks of these types merge across pageblocks of
    /// another such type; HighAtomic and Isolate blocks keep to themselves.
    #[inline]
    pub const fn is_mergeable(self) -> bool {
        (self as usize) < MIGRATE_PCPTYPES
    }

    /// Linux's `fallbacks[]`: where an allocation of this type looks when its own lists are
    /// empty, in order (HighAtomic and Isolate never fall back).
    pub const fn fallbacks(self) -> &'static [MigrateType] {
        match self {
            Self::Unmovable => &[Self::Reclaimable, Self::Movable],
            Self::Movable => &[Self::Reclaimable, Self::Unmovable],
            Self::Reclaimable => &[Self::Unmovable, Self::Movable],
            Self::HighAtomic | Self::Isolate => &[],
        }
    }
}

impl fmt::Display for MigrateType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One pageblock's flags (`pageblock_flags`): its migratetype. Written under the zone lock (or
/// while the memory manager is held exclusively), read anywhere; a relaxed byte is a plain
/// `mov` on x86.
#[derive(Debug)]
pub(crate) struct PageblockFlags(AtomicU8);

impl PageblockFlags {
    /// Linux's initial type for every pageblock.
    pub(crate) const fn new() -> Self {
        Self(AtomicU8::new(MigrateType::Movable as u8))
    }

    /// `get_pageblock_migratetype`.
    #[inline]
    pub(crate) fn get(&self) -> MigrateType {
        MigrateType::from_index(self.0.load(Relaxed))
    }

    /// `set_pageblock_migratetype`.
    #[inline]
    pub(crate) fn set(&self, mt: MigrateType) {
        self.0.store(mt as u8, Relaxed);
    }
}

/// First pfn of the pageblock holding `pfn` (`pageblock_start_pfn`).
#[inline]
pub const fn pageblock_start_pfn(pfn: u64) -> u64 {
    pfn & !(PAGEBLOCK_NR_PAGES - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_fallbacks_are_linuxs() {
        let names: [&str; MIGRATE_TYPES] = MigrateType::ALL.map(|m| m.name());
        assert_eq!(
            names,
            [
                "Unmovable",
                "Movable",
                "Reclaimable",
                "HighAtomic",
                "Isolate"
            ]
        );
        for m in MigrateType::ALL {
            assert_eq!(MigrateType::from_index(m as u8), m);
            assert!(!m.fallbacks().contains(&m));
        }
        assert_eq!(MigrateType::from_index(9), MigrateType::Unmovable);
        assert_eq!(MigrateType::of_gfp(Gfp::KERNEL), MigrateType::Unmovable);
        assert_eq!(
            MigrateType::of_gfp(Gfp::HIGHUSER_MOVABLE),
            MigrateType::Movable
        );
        assert_eq!(
            MigrateType::of_gfp(Gfp::RECLAIMABLE),
            MigrateType::Reclaimable
        );
        assert!(MigrateType::Reclaimable.is_mergeable());
        assert!(!MigrateType::HighAtomic.is_mergeable());
        let f = PageblockFlags::new();
        assert_eq!(f.get(), MigrateType::Movable);
        f.set(MigrateType::Isolate);
        assert_eq!(f.get(), MigrateType::Isolate);
        assert_eq!(pageblock_start_pfn(1000), 512);
    }
}
