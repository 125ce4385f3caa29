//! Physical address ranges (Linux's `struct range`): a half-open `[start, end)` interval of
//! physical addresses, printed the way Linux prints memory ranges (`[mem 0x…-0x…]`, end
//! inclusive).

use core::fmt;

/// Size of a page frame on x86_64.
pub const PAGE_SIZE: u64 = 4096;

/// A half-open physical address range `[start, end)`.
///
/// `end` is exclusive, so the very last byte of the 64-bit address space (`u64::MAX`) cannot be
/// described; every parser in this crate clips such ranges by one byte instead of overflowing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PhysRange {
    /// First address of the range.
    pub start: u64,
    /// First address past the range.
    pub end: u64,
}

impl PhysRange {
    /// The range `[start, end)`.
    pub const fn new(start: u64, end: u64) -> Self {
        Self { start, end }
    }

    /// The range starting at `start` spanning `size` bytes, clipped at `u64::MAX`.
    pub const fn from_size(start: u64, size: u64) -> Self {
        Self {
            start,
            end: start.saturating_add(size),
        }
    }

    /// Number of bytes in the range (0 if `end <= start`).
    pub const fn size(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// True when the range holds no byte.
    pub const fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    /// Last address of the range (inclusive), as Linux prints it. `start` for an empty range.
    pub const fn last(&self) -> u64 {
        if self.is_empty() {
            self.start
        } else {
            self.end - 1
        }
    }

    /// True when `addr` lies inside the range.
    pub const fn contains(&self, addr: u64) -> bool {
        self.start <= addr && addr < self.end
    }

    /// True when both ranges share at least one byte.
    pub const fn overlaps(&self, other: &PhysRange) -> bool {
        self.start < other.end && other.start < self.end && !self.is_empty() && !other.is_empty()
    }

    /// True when every byte of `other` lies in `self` (an empty `other` is never contained).
    pub const fn covers(&self, other: &PhysRange) -> bool {
        !other.is_empty() && self.start <= other.start && other.end <= self.end
    }

    /// The bytes both ranges share, if any.
    pub fn intersection(&self, other: &PhysRange) -> Option<PhysRange> {
        let r = PhysRange::new(self.start.max(other.start), self.end.min(other.end));
        (!r.is_empty()).then_some(r)
    }

    /// The range shrunk inward to whole pages, or `None` if no whole page remains.
    pub fn page_trimmed(&self) -> Option<PhysRange> {
        let start = align_up(self.start, PAGE_SIZE)?;
        let end = align_down(self.end, PAGE_SIZE);
        (start < end).then_some(PhysRange::new(start, end))
    }
}

impl fmt::Display for PhysRange {
    /// `[mem 0x%016x-0x%016x]` with the end inclusive, as in Linux's boot log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[mem {:#018x}-{:#018x}]", self.start, self.last())
    }
}

/// `addr` rounded up to a multiple of `align` (a power of two), or `None` on overflow.
pub const fn align_up(addr: u64, align: u64) -> Option<u64> {
    match addr.checked_add(align - 1) {
        Some(v) => Some(v & !(align - 1)),
        None => None,
    }
}

/// `addr` rounded down to a multiple of `align` (a power of two).
pub const fn align_down(addr: u64, align: u64) -> u64 {
    addr & !(align - 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    #[test]
    fn display_is_inclusive() {
        let r = PhysRange::new(0, 0x9fc00);
        assert_eq!(
            format!("{r}"),
            "[mem 0x0000000000000000-0x000000000009fbff]"
        );
    }

    #[test]
    fn page_trim() {
        assert_eq!(
            PhysRange::new(0x100, 0x9fc00).page_trimmed(),
            Some(PhysRange::new(0x1000, 0x9f000))
        );
        assert_eq!(PhysRange::new(0x100, 0xf00).page_trimmed(), None);
        assert_eq!(PhysRange::new(u64::MAX - 5, u64::MAX).page_trimmed(), None);
    }

    #[test]
    fn overlap_and_cover() {
        let a = PhysRange::new(10, 20);
        assert!(a.overlaps(&PhysRange::new(19, 30)));
        assert!(!a.overlaps(&PhysRange::new(20, 30)));
        assert!(!a.overlaps(&PhysRange::new(15, 15)));
        assert!(a.covers(&PhysRange::new(10, 20)));
        assert!(!a.covers(&PhysRange::new(9, 20)));
        assert_eq!(
            a.intersection(&PhysRange::new(15, 40)),
            Some(PhysRange::new(15, 20))
        );
        assert_eq!(PhysRange::from_size(u64::MAX - 1, 10).end, u64::MAX);
    }
}
