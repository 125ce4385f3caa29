//! `memblock`: the early boot allocator over RAM ranges minus reserved ranges.
//!
//! Two sorted, merged region arrays as in Linux: `memory` (all RAM the machine has) and
//! `reserved` (the parts in use: page 0, the kernel image, the bootloader's data, and everything
//! memblock itself hands out, the memmap above all). No heap: fixed arrays of
//! [`INIT_MEMBLOCK_REGIONS`] entries. Allocation is top-down below a limit, like Linux's default.

use core::fmt;

/// Capacity of each region array (Linux's `INIT_MEMBLOCK_REGIONS`).
pub const INIT_MEMBLOCK_REGIONS: usize = 128;

/// Errors of memblock operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemblockError {
    /// The region array is full.
    Full,
    /// `base + size` overflows or goes beyond the 52-bit physical address space.
    OutOfRange,
}

impl fmt::Display for MemblockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full => write!(f, "memblock: more than {INIT_MEMBLOCK_REGIONS} regions"),
            Self::OutOfRange => f.write_str("memblock: range beyond the physical address space"),
        }
    }
}

/// A physical range `[base, base + size)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Region {
    /// First byte.
    pub base: u64,
    /// Length in bytes.
    pub size: u64,
}

impl Region {
    /// One past the last byte.
    pub const fn end(&self) -> u64 {
        self.base + self.size
    }
}

/// One sorted array of non-overlapping, non-adjacent regions (`struct memblock_type`).
#[derive(Clone, Debug)]
pub struct MemblockType {
    regions: [Region; INIT_MEMBLOCK_REGIONS],
    cnt: usize,
}

impl MemblockType {
    const fn new() -> Self {
        Self {
            regions: [Region { base: 0, size: 0 }; INIT_MEMBLOCK_REGIONS],
            cnt: 0,
        }
    }

    /// The regions, sorted by base.
    pub fn regions(&self) -> &[Region] {
        &self.regions[..self.cnt]
    }

    /// Total bytes.
    pub fn total_size(&self) -> u64 {
        self.regions().iter().map(|r| r.size).sum()
    }

    /// Whether `[base, end)` intersects any region.
    pub fn intersects(&self, base: u64, end: u64) -> bool {
        self.regions()
            .iter()
            .any(|r| r.base < end && base < r.end())
    }

    /// Whether `addr` lies in a region; returns the end of that region or the start of the
    /// next one, whichever comes after `addr` (the next boundary).
    pub fn lookup(&self, addr: u64) -> (bool, u64) {
        for r in self.regions() {
            if addr < r.base {
                return (false, r.base);
            }
            if addr < r.end() {
                return (true, r.end());
            }
        }
        (false, u64::MAX)
    }

    /// Add `[base, base + size)`, merging with overlapping or adjacent regions.
    fn add(&mut self, base: u64, size: u64) -> Result<(), MemblockError> {
        if size == 0 {
            return Ok(());
        }
        let end = base
            .checked_add(size)
            .filter(|&e| e <= 1 << crate::MAX_PHYSMEM_BITS)
            .ok_or(MemblockError::OutOfRange)?;
        // Regions [i, j) touch the new one.
        let i = self.regions().partition_point(|r| r.end() < base);
        let j = self.regions().partition_point(|r| r.base <= end);
        if i == j {
            if self.cnt == INIT_MEMBLOCK_REGIONS {
                return Err(MemblockError::Full);
            }
            self.regions.copy_within(i..self.cnt, i + 1);
            self.regions[i] = Region { base, size };
            self.cnt += 1;
            return Ok(());
        }
        let nb = base.min(self.regions[i].base);
        let ne = end.max(self.regions[j - 1].end());
        self.regions[i] = Region {
            base: nb,
            size: ne - nb,
        };
        self.regions.copy_within(j..self.cnt, i + 1);
        self.cnt -= j - i - 1;
        Ok(())
    }

    /// Remove `[base, end)` from the regions (may split one).
    fn remove(&mut self, base: u64, end: u64) -> Result<(), MemblockError> {
        let mut k = 0;
        while k < self.cnt {
            let r = self.regions[k];
            if r.end() <= base || r.base >= end {
                k += 1;
                continue;
            }
            let left = (r.base < base).then(|| Region {
                base: r.base,
                size: base - r.base,
            });
            let right = (r.end() > end).then(|| Region {
                base: end,
                size: r.end() - end,
            });
            match (left, right) {
                (Some(l), Some(rr)) => {
                    if self.cnt == INIT_MEMBLOCK_REGIONS {
                        return Err(MemblockError::Full);
                    }
                    self.regions.copy_within(k + 1..self.cnt, k + 2);
                    self.regions[k] = l;
                    self.regions[k + 1] = rr;
                    self.cnt += 1;
                    return Ok(());
                }
                (Some(l), None) => {
                    self.regions[k] = l;
                    k += 1;
                }
                (None, Some(rr)) => {
                    self.regions[k] = rr;
                    return Ok(());
                }
                (None, None) => {
                    self.regions.copy_within(k + 1..self.cnt, k);
                    self.cnt -= 1;
                }
            }
        }
        Ok(())
    }
}

/// The early boot allocator (`struct memblock`).
#[derive(Clone, Debug)]
pub struct Memblock {
    memory: MemblockType,
    reserved: MemblockType,
    current_limit: u64,
}

impl Default for Memblock {
    fn default() -> Self {
        Self::new()
    }
}

impl Memblock {
    /// An empty memblock with no allocation limit.
    pub const fn new() -> Self {
        Self {
            memory: MemblockType::new(),
            reserved: MemblockType::new(),
            current_limit: u64::MAX,
        }
    }

    /// `memblock_add`: register RAM `[base, base + size)`.
    pub fn add(&mut self, base: u64, size: u64) -> Result<(), MemblockError> {
        self.memory.add(base, size)
    }

    /// `memblock_reserve`: mark `[base, base + size)` as in use.
    pub fn reserve(&mut self, base: u64, size: u64) -> Result<(), MemblockError> {
        self.reserved.add(base, size)
    }

    /// `memblock_remove`: forget RAM `[base, base + size)` (for example 0xa0000-0xfffff).
    pub fn remove(&mut self, base: u64, size: u64) -> Result<(), MemblockError> {
        self.memory.remove(base, base.saturating_add(size))
    }

    /// `memblock_phys_free`: give back a reserved range.
    pub fn free(&mut self, base: u64, size: u64) -> Result<(), MemblockError> {
        self.reserved.remove(base, base.saturating_add(size))
    }

    /// `memblock_set_current_limit`: allocations end at or below `limit`.
    pub fn set_current_limit(&mut self, limit: u64) {
        self.current_limit = limit;
    }

    /// The RAM regions.
    pub fn memory(&self) -> &MemblockType {
        &self.memory
    }

    /// The reserved regions.
    pub fn reserved(&self) -> &MemblockType {
        &self.reserved
    }

    /// `memblock_phys_alloc`: `size` bytes aligned to `align` (a power of two), highest
    /// free address first below the current limit; the range is reserved. None when nothing fits.
    pub fn alloc(&mut self, size: u64, align: u64) -> Option<u64> {
        self.alloc_range(size, align, 0, self.current_limit)
    }

    /// `memblock_phys_alloc_range`: like [`alloc`](Self::alloc) inside `[start, end)`.
    pub fn alloc_range(&mut self, size: u64, align: u64, start: u64, end: u64) -> Option<u64> {
        if size == 0 || !align.is_power_of_two() {
            return None;
        }
        let mut found = None;
        for (fs, fe) in self.free_ranges() {
            let fe = fe.min(end);
            let fs = fs.max(start);
            if fe <= fs || fe - fs < size {
                continue;
            }
            let base = (fe - size) & !(align - 1);
            if base >= fs {
                found = Some(base); // keep the highest
            }
        }
        let base = found?;
        self.reserve(base, size).ok()?;
        Some(base)
    }

    /// `for_each_free_mem_range`: RAM minus reserved, in address order.
    pub fn free_ranges(&self) -> FreeRanges<'_> {
        FreeRanges {
            mb: self,
            mi: 0,
            ri: 0,
            pos: self.memory.regions().first().map_or(0, |r| r.base),
        }
    }

    /// First pfn of RAM (`find_min_pfn_with_active_regions`).
    pub fn start_pfn(&self) -> u64 {
        self.memory
            .regions()
            .first()
            .map_or(0, |r| crate::pfn_up(r.base))
    }

    /// End pfn of RAM (`max_pfn` at boot).
    pub fn end_pfn(&self) -> u64 {
        self.memory
            .regions()
            .last()
            .map_or(0, |r| crate::pfn_down(r.end()))
    }
}

/// Iterator over free ranges `(start, end)` in bytes; see [`Memblock::free_ranges`].
pub struct FreeRanges<'a> {
    mb: &'a Memblock,
    mi: usize,
    ri: usize,
    pos: u64,
}

impl Iterator for FreeRanges<'_> {
    type Item = (u64, u64);

    fn next(&mut self) -> Option<(u64, u64)> {
        let mem = self.mb.memory.regions();
        let res = self.mb.reserved.regions();
        loop {
            let m = *mem.get(self.mi)?;
            if self.pos < m.base {
                self.pos = m.base;
            }
            if self.pos >= m.end() {
                self.mi += 1;
                continue;
            }
            while self.ri < res.len() && res[self.ri].end() <= self.pos {
                self.ri += 1;
            }
            match res.get(self.ri) {
                Some(r) if r.base <= self.pos => {
                    self.pos = r.end();
                }
                Some(r) if r.base < m.end() => {
                    let s = self.pos;
                    self.pos = r.end();
                    return Some((s, r.base));
                }
                _ => {
                    let s = self.pos;
                    self.pos = m.end();
                    return Some((s, m.end()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn free(mb: &Memblock) -> Vec<(u64, u64)> {
        mb.free_ranges().collect()
    }

    #[test]
    fn add_merges_overlapping_and_adjacent() {
        let mut mb = Memblock::new();
        mb.add(0x1000, 0x1000).unwrap();
        mb.add(0x5000, 0x1000).unwrap();
        mb.add(0x2000, 0x1000).unwrap(); // adjacent to the first
        assert_eq!(mb.memory().regions().len(), 2);
        mb.add(0x2800, 0x3000).unwrap(); // bridges both
        assert_eq!(
            mb.memory().regions(),
            &[Region {
                base: 0x1000,
                size: 0x5000
            }]
        );
        assert_eq!(mb.add(u64::MAX - 5, 10), Err(MemblockError::OutOfRange));
        assert_eq!(mb.add(1 << 52, 0x1000), Err(MemblockError::OutOfRange));
    }

    #[test]
    fn free_ranges_subtract_reserved() {
        let mut mb = Memblock::new();
        mb.add(0, 0x9f000).unwrap();
        mb.add(0x100000, 0x1f00000).unwrap();
        mb.reserve(0, 0x1000).unwrap();
        mb.reserve(0x200000, 0x100000).unwrap();
        mb.reserve(0x1ff0000, 0x20000).unwrap(); // runs past the end of RAM
        assert_eq!(
            free(&mb),
            [
                (0x1000, 0x9f000),
                (0x100000, 0x200000),
                (0x300000, 0x1ff0000)
            ]
        );
    }

    #[test]
    fn alloc_is_top_down_aligned_and_reserves() {
        let mut mb = Memblock::new();
        mb.add(0x100000, 0x100000).unwrap();
        let a = mb.alloc(0x3000, 0x1000).unwrap();
        assert_eq!(a, 0x1fd000);
        let b = mb.alloc(0x1000, 0x10000).unwrap();
        assert_eq!(b, 0x1f0000);
        assert_eq!(free(&mb), [(0x100000, 0x1f0000), (0x1f1000, 0x1fd000)]);
        mb.set_current_limit(0x180000);
        assert_eq!(mb.alloc(0x1000, 0x1000), Some(0x17f000));
        assert_eq!(mb.alloc(0x100000, 0x1000), None);
        assert_eq!(mb.alloc(0x1000, 3), None);
    }

    #[test]
    fn remove_and_free_split_regions() {
        let mut mb = Memblock::new();
        mb.add(0, 0x200000).unwrap();
        mb.remove(0xa0000, 0x60000).unwrap();
        assert_eq!(mb.memory().regions().len(), 2);
        assert_eq!(mb.end_pfn(), 0x200);
        mb.reserve(0x100000, 0x10000).unwrap();
        mb.free(0x104000, 0x1000).unwrap();
        assert_eq!(mb.reserved().regions().len(), 2);
        assert!(mb.memory().intersects(0x9f000, 0xa1000));
        assert!(!mb.memory().intersects(0xa0000, 0x100000));
        assert_eq!(mb.memory().lookup(0xa0000), (false, 0x100000));
        assert_eq!(mb.memory().lookup(0x1000), (true, 0xa0000));
    }

    #[test]
    fn remove_overlapping_the_start_of_a_region() {
        // Regression (found by the memblock property test): the left remainder was computed
        // eagerly and underflowed when the removed range began before the region.
        let mut mb = Memblock::new();
        mb.add(0x5000, 0x3000).unwrap();
        mb.remove(0x4000, 0x2000).unwrap();
        assert_eq!(
            mb.memory().regions(),
            &[Region {
                base: 0x6000,
                size: 0x2000
            }]
        );
        mb.reserve(0x6000, 0x1000).unwrap();
        mb.free(0x5000, 0x4000).unwrap();
        assert!(mb.reserved().regions().is_empty());
    }

    #[test]
    fn full_array_is_an_error() {
        let mut mb = Memblock::new();
        for i in 0..INIT_MEMBLOCK_REGIONS as u64 {
            mb.add(i * 0x2000, 0x1000).unwrap();
        }
        assert_eq!(mb.add(0x10_0000_0000, 0x1000), Err(MemblockError::Full));
        // Merging into an existing region still works.
        mb.add(0x1000, 0x1000).unwrap();
    }
}
