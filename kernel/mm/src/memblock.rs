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

/// A physical range `[base, base + size)` and the NUMA node it belongs to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Region {
    /// First byte.
    pub base: u64,
    /// Length in bytes.
    pub size: u64,
    /// NUMA node id (`memblock_region.nid`); 0 until [`Memblock::set_node`] says otherwise.
    /// Reserved regions always carry 0.
    pub nid: u16,
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
            regions: [Region {
                base: 0,
                size: 0,
                nid: 0,
            }; INIT_MEMBLOCK_REGIONS],
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

    /// The node of the region holding `addr`, if any.
    pub fn nid_of(&self, addr: u64) -> Option<u16> {
        self.regions()
            .iter()
            .find(|r| r.base <= addr && addr < r.end())
            .map(|r| r.nid)
    }

    /// Append `r` (which must not start before the last region), merging it into the last
    /// region when they overlap or touch and belong to the same node.
    fn push_merge(&mut self, r: Region) -> Result<(), MemblockError> {
        if r.size == 0 {
            return Ok(());
        }
        if let Some(last) = self.cnt.checked_sub(1).map(|i| &mut self.regions[i])
            && last.nid == r.nid
            && last.end() >= r.base
        {
            last.size = last.end().max(r.end()) - last.base;
            return Ok(());
        }
        if self.cnt == INIT_MEMBLOCK_REGIONS {
            return Err(MemblockError::Full);
        }
        self.regions[self.cnt] = r;
        self.cnt += 1;
        Ok(())
    }

    /// Add `[base, base + size)` on node `nid`, merging with overlapping or adjacent regions
    /// of the same node (Linux's `memblock_add_range`: parts already covered keep their node).
    /// On error nothing changes.
    fn add(&mut self, base: u64, size: u64, nid: u16) -> Result<(), MemblockError> {
        if size == 0 {
            return Ok(());
        }
        let end = base
            .checked_add(size)
            .filter(|&e| e <= 1 << crate::MAX_PHYSMEM_BITS)
            .ok_or(MemblockError::OutOfRange)?;
        let mut out = Self::new();
        let (mut pos, mut placed) = (base, false);
        for &r in self.regions() {
            if !placed && r.base >= end {
                out.push_merge(Region {
                    base: pos,
                    size: end.saturating_sub(pos),
                    nid,
                })?;
                placed = true;
            }
            if !placed && r.end() > pos {
                if r.base > pos {
                    out.push_merge(Region {
                        base: pos,
                        size: r.base - pos,
                        nid,
                    })?;
                }
                pos = pos.max(r.end()).min(end);
            }
            out.push_merge(r)?;
        }
        if !placed {
            out.push_merge(Region {
                base: pos,
                size: end.saturating_sub(pos),
                nid,
            })?;
        }
        *self = out;
        Ok(())
    }

    /// `memblock_set_node`: the parts of the regions inside `[base, end)` belong to `nid`
    /// (regions are split at the boundaries; neighbours of one node merge). On error nothing
    /// changes.
    fn set_node(&mut self, base: u64, end: u64, nid: u16) -> Result<(), MemblockError> {
        let mut out = Self::new();
        for &r in self.regions() {
            let (a, b) = (r.base.max(base).min(r.end()), r.end().min(end).max(r.base));
            if a >= b {
                out.push_merge(r)?;
                continue;
            }
            out.push_merge(Region {
                base: r.base,
                size: a - r.base,
                nid: r.nid,
            })?;
            out.push_merge(Region {
                base: a,
                size: b - a,
                nid,
            })?;
            out.push_merge(Region {
                base: b,
                size: r.end() - b,
                nid: r.nid,
            })?;
        }
        *self = out;
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
                nid: r.nid,
            });
            let right = (r.end() > end).then(|| Region {
                base: end,
                size: r.end() - end,
                nid: r.nid,
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

    /// `memblock_add`: register RAM `[base, base + size)` on node 0.
    pub fn add(&mut self, base: u64, size: u64) -> Result<(), MemblockError> {
        self.memory.add(base, size, 0)
    }

    /// `memblock_add_node`: register RAM `[base, base + size)` on node `nid`.
    pub fn add_node(&mut self, base: u64, size: u64, nid: u16) -> Result<(), MemblockError> {
        self.memory.add(base, size, nid)
    }

    /// `memblock_set_node`: the RAM inside `[base, base + size)` belongs to node `nid`.
    pub fn set_node(&mut self, base: u64, size: u64, nid: u16) -> Result<(), MemblockError> {
        self.memory.set_node(base, base.saturating_add(size), nid)
    }

    /// `memblock_reserve`: mark `[base, base + size)` as in use.
    pub fn reserve(&mut self, base: u64, size: u64) -> Result<(), MemblockError> {
        self.reserved.add(base, size, 0)
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

    /// Whether `other` has the same memory and reserved regions (what struct pages are
    /// written from).
    pub fn same_regions(&self, other: &Memblock) -> bool {
        self.memory.regions() == other.memory.regions()
            && self.reserved.regions() == other.reserved.regions()
    }

    /// `memblock_phys_alloc`: `size` bytes aligned to `align` (a power of two), highest
    /// free address first below the current limit; the range is reserved. None when nothing fits.
    pub fn alloc(&mut self, size: u64, align: u64) -> Option<u64> {
        self.alloc_range(size, align, 0, self.current_limit)
    }

    /// `memblock_phys_alloc_range`: like [`alloc`](Self::alloc) inside `[start, end)`.
    pub fn alloc_range(&mut self, size: u64, align: u64, start: u64, end: u64) -> Option<u64> {
        self.alloc_range_nid(size, align, start, end, None)
    }

    /// `memblock_alloc_try_nid`: like [`alloc`](Self::alloc), from the RAM of node `nid` if it
    /// has room there, from any node otherwise.
    pub fn alloc_try_nid(&mut self, size: u64, align: u64, nid: u16) -> Option<u64> {
        let limit = self.current_limit;
        self.alloc_range_nid(size, align, 0, limit, Some(nid))
            .or_else(|| self.alloc_range_nid(size, align, 0, limit, None))
    }

    fn alloc_range_nid(
        &mut self,
        size: u64,
        align: u64,
        start: u64,
        end: u64,
        nid: Option<u16>,
    ) -> Option<u64> {
        if size == 0 || !align.is_power_of_two() {
            return None;
        }
        let mut found = None;
        for (fs, fe, n) in self.free_ranges_nid() {
            if nid.is_some_and(|want| want != n) {
                continue;
            }
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

    /// `for_each_free_mem_range`: RAM minus reserved, in address order, as `(start, end)`;
    /// a range never spans two memory regions, so it lies on one node.
    pub fn free_ranges(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.free_ranges_nid().map(|(s, e, _)| (s, e))
    }

    /// [`free_ranges`](Self::free_ranges) with each range's node: `(start, end, nid)`.
    pub fn free_ranges_nid(&self) -> FreeRanges<'_> {
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

/// Iterator over free ranges `(start, end, nid)` in bytes; see [`Memblock::free_ranges_nid`].
pub struct FreeRanges<'a> {
    mb: &'a Memblock,
    mi: usize,
    ri: usize,
    pos: u64,
}

impl Iterator for FreeRanges<'_> {
    type Item = (u64, u64, u16);

    fn next(&mut self) -> Option<(u64, u64, u16)> {
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
                    return Some((s, r.base, m.nid));
                }
                _ => {
                    let s = self.pos;
                    self.pos = m.end();
                    return Some((s, m.end(), m.nid));
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
                size: 0x5000,
                nid: 0
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
                size: 0x2000,
                nid: 0
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

    #[test]
    fn nodes_split_and_merge_regions() {
        let mut mb = Memblock::new();
        mb.add(0, 0x40_0000).unwrap();
        mb.set_node(0x10_0000, 0x10_0000, 1).unwrap();
        let r: Vec<(u64, u64, u16)> = mb
            .memory()
            .regions()
            .iter()
            .map(|r| (r.base, r.end(), r.nid))
            .collect();
        assert_eq!(
            r,
            [
                (0, 0x10_0000, 0),
                (0x10_0000, 0x20_0000, 1),
                (0x20_0000, 0x40_0000, 0)
            ]
        );
        assert_eq!(mb.memory().nid_of(0x18_0000), Some(1));
        // Adjacent RAM of another node stays a region of its own; of the same node it merges.
        mb.add_node(0x40_0000, 0x1000, 2).unwrap();
        mb.add_node(0x40_1000, 0x1000, 2).unwrap();
        assert_eq!(mb.memory().regions().len(), 4);
        assert_eq!(mb.memory().regions()[3].size, 0x2000);
        // Overlapping adds keep the node of what was there.
        mb.add_node(0x3f_0000, 0x2_0000, 3).unwrap();
        assert_eq!(mb.memory().nid_of(0x3f_8000), Some(0));
        assert_eq!(mb.memory().nid_of(0x40_1000), Some(2));
        assert_eq!(mb.memory().nid_of(0x40_8000), Some(3));
        mb.set_node(0, 0x10_0000, 1).unwrap();
        assert_eq!(mb.memory().regions()[0].end(), 0x20_0000, "node 1 merged");
        // Free ranges never cross a node boundary; allocation prefers the node asked for.
        let f: Vec<(u64, u64, u16)> = mb.free_ranges_nid().collect();
        assert_eq!(f[0], (0, 0x20_0000, 1));
        assert_eq!(f[1], (0x20_0000, 0x40_0000, 0));
        let a = mb.alloc_try_nid(0x1000, 0x1000, 1).unwrap();
        assert_eq!(a, 0x1f_f000);
        let b = mb.alloc_try_nid(0x1000, 0x1000, 9).unwrap();
        assert_eq!(b, 0x40_f000, "no node 9: anywhere, top-down");
    }

    #[test]
    fn failed_set_node_changes_nothing() {
        let mut mb = Memblock::new();
        for i in 0..INIT_MEMBLOCK_REGIONS as u64 {
            mb.add(i * 0x2000, 0x1000).unwrap();
        }
        let before = mb.memory().regions().to_vec();
        assert_eq!(mb.set_node(0x800, 0x100, 1), Err(MemblockError::Full));
        assert_eq!(mb.memory().regions(), &before[..]);
    }
}
