//! Allocation flags (`gfp_t`): zone modifiers, zero-fill and access to the reserves.

use core::ops::BitOr;

use crate::zone::ZoneId;

/// Get-free-pages flags. Combine with `|`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Gfp(pub u32);

impl Gfp {
    /// `GFP_KERNEL`: any RAM zone, Normal first, watermarks respected.
    pub const KERNEL: Self = Self(0);
    /// `__GFP_DMA`: only ZONE_DMA (below 16 MiB).
    pub const DMA: Self = Self(1 << 0);
    /// `__GFP_DMA32`: ZONE_DMA32 then ZONE_DMA (below 4 GiB).
    pub const DMA32: Self = Self(1 << 1);
    /// `__GFP_ZERO`: the pages are zero-filled through the [`Platform`](crate::Platform).
    pub const ZERO: Self = Self(1 << 2);
    /// `__GFP_HIGH` (`GFP_ATOMIC`): may dip to half of the min watermark
    /// (Linux's `ALLOC_MIN_RESERVE`).
    pub const HIGH: Self = Self(1 << 3);
    /// `GFP_ATOMIC`, an alias of [`Gfp::HIGH`].
    pub const ATOMIC: Self = Self::HIGH;
    /// `__GFP_MEMALLOC`: emergency, ignores the watermarks entirely (`ALLOC_NO_WATERMARKS`).
    pub const MEMALLOC: Self = Self(1 << 4);
    /// `__GFP_NOWARN`: do not log an allocation failure.
    pub const NOWARN: Self = Self(1 << 5);
    /// `__GFP_THISNODE`: only the zones of the node asked for, never another node's.
    pub const THISNODE: Self = Self(1 << 6);

    /// Whether all bits of `other` are set.
    #[inline]
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// `gfp_zone`: the highest zone the flags allow. No flag reaches ZONE_DEVICE.
    #[inline]
    pub const fn high_zone(self) -> ZoneId {
        if self.0 & Self::DMA.0 != 0 {
            ZoneId::Dma
        } else if self.0 & Self::DMA32.0 != 0 {
            ZoneId::Dma32
        } else {
            ZoneId::Normal
        }
    }

    /// The watermark floor an allocation with these flags may go down to, given `min`.
    #[inline]
    pub const fn watermark_floor(self, min: u64) -> u64 {
        if self.0 & Self::MEMALLOC.0 != 0 {
            0
        } else if self.0 & Self::HIGH.0 != 0 {
            min - min / 2
        } else {
            min
        }
    }
}

impl BitOr for Gfp {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
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
    }

    #[test]
    fn reserves() {
        assert_eq!(Gfp::KERNEL.watermark_floor(100), 100);
        assert_eq!(Gfp::ATOMIC.watermark_floor(101), 51);
        assert_eq!(Gfp::MEMALLOC.watermark_floor(100), 0);
    }
}
