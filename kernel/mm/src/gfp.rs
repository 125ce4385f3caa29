//! Allocation flags (`gfp_t`): zone modifiers, mobility, zero-fill and access to the reserves.

use crate::zone::ZoneId;

bitflags::bitflags! {
    /// Get-free-pages flags. Combine with `|`.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct Gfp: u32 {
        /// `GFP_KERNEL`: any RAM zone, Normal first, watermarks respected.
        const KERNEL = 0;
        /// `__GFP_DMA`: only ZONE_DMA (below 16 MiB).
        const DMA = 1 << 0;
        /// `__GFP_DMA32`: ZONE_DMA32 then ZONE_DMA (below 4 GiB).
        const DMA32 = 1 << 1;
        /// `__GFP_ZERO`: the pages are zero-filled through the [`Platform`](crate::Platform).
        const ZERO = 1 << 2;
        /// `__GFP_HIGH` (`GFP_ATOMIC`): may dip to half of the min watermark
        /// (Linux's `ALLOC_MIN_RESERVE`).
        const HIGH = 1 << 3;
        /// `GFP_ATOMIC`, an alias of [`Gfp::HIGH`].
        const ATOMIC = Self::HIGH.bits();
        /// `__GFP_MEMALLOC`: emergency, ignores the watermarks and the lowmem reserve
        /// entirely (`ALLOC_NO_WATERMARKS`).
        const MEMALLOC = 1 << 4;
        /// `__GFP_NOWARN`: do not log an allocation failure.
        const NOWARN = 1 << 5;
        /// `__GFP_THISNODE`: only the zones of the node asked for, never another node's.
        const THISNODE = 1 << 6;
        /// `__GFP_MOVABLE`: the owner can move the pages (migration), so they may be placed
        /// where memory must stay free to go away. Alone it still allows only up to
        /// ZONE_NORMAL, as in Linux; with [`Gfp::HIGHMEM`] ZONE_MOVABLE too.
        const MOVABLE = 1 << 7;
        /// `__GFP_HIGHMEM`: x86_64 has no ZONE_HIGHMEM, so alone it means Normal; with
        /// [`Gfp::MOVABLE`] it opens ZONE_MOVABLE (Linux's `GFP_ZONE_TABLE`).
        const HIGHMEM = 1 << 8;
        /// `__GFP_RECLAIMABLE`: the pages can be freed on demand (caches): grouped in
        /// Reclaimable pageblocks. No effect on the zone.
        const RECLAIMABLE = 1 << 9;
        /// `GFP_HIGHUSER_MOVABLE`: what user pages and the page cache use: anywhere, ZONE_MOVABLE
        /// first.
        const HIGHUSER_MOVABLE = Self::MOVABLE.bits() | Self::HIGHMEM.bits();
    }
}

impl Gfp {
    /// `gfp_zone`: the highest zone the flags allow. No flag reaches ZONE_DEVICE.
    #[inline]
    pub const fn high_zone(self) -> ZoneId {
        if self.contains(Self::DMA) {
            ZoneId::Dma
        } else if self.contains(Self::DMA32) {
            ZoneId::Dma32
        } else if self.contains(Self::HIGHUSER_MOVABLE) {
            ZoneId::Movable
        } else {
            ZoneId::Normal
        }
    }

    /// The watermark floor an allocation with these flags may go down to, given `min`.
    #[inline]
    pub const fn watermark_floor(self, min: u64) -> u64 {
        if self.contains(Self::MEMALLOC) {
            0
        } else if self.contains(Self::HIGH) {
            min - min / 2
        } else {
            min
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_modifiers() {
        assert_eq!(Gfp::KERNEL.high_zone(), ZoneId::Normal);
        assert_eq!(Gfp::DMA32.high_zone(), ZoneId::Dma32);
        assert_eq!((Gfp::DMA | Gfp::ZERO).high_zone(), ZoneId::Dma);
        assert!((Gfp::DMA | Gfp::ZERO).contains(Gfp::ZERO));
        // GFP_ZONE_TABLE: MOVABLE alone stays below Movable; only with HIGHMEM it opens it;
        // DMA/DMA32 win over MOVABLE.
        assert_eq!(Gfp::MOVABLE.high_zone(), ZoneId::Normal);
        assert_eq!(Gfp::HIGHMEM.high_zone(), ZoneId::Normal);
        assert_eq!(Gfp::HIGHUSER_MOVABLE.high_zone(), ZoneId::Movable);
        assert_eq!((Gfp::MOVABLE | Gfp::DMA32).high_zone(), ZoneId::Dma32);
        assert_eq!((Gfp::HIGHUSER_MOVABLE | Gfp::DMA).high_zone(), ZoneId::Dma);
    }

    #[test]
    fn reserves() {
        assert_eq!(Gfp::KERNEL.watermark_floor(100), 100);
        assert_eq!(Gfp::ATOMIC.watermark_floor(101), 51);
        assert_eq!(Gfp::MEMALLOC.watermark_floor(100), 0);
    }
}
