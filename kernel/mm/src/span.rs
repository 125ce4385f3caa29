//! Zone and node spans shrinking when a range goes away (Linux's `shrink_zone_span` and
//! `update_pgdat_span` in mm/memory_hotplug.c).
//!
//! A zone's span only ever grew (boot, online_pages, memremap_pages). When `[start, end)`
//! leaves a zone at its start or its end, the span shrinks to the nearest pfn still in the zone
//! (a struct page of this zone and node that is neither a hole nor offline, outside the range);
//! a range in the middle leaves the span as it is, as in Linux. A zone with nothing left gets
//! an empty span. A node's span is derived from its RAM zones' spans ([`PgData::start_pfn`]),
//! so it follows by itself (`update_pgdat_span`).
//!
//! [`PgData::start_pfn`]: crate::PgData::start_pfn

use crate::machine::Machine;
use crate::page::PageFlags;
use crate::platform::Platform;
use crate::sparse::{Sparse, pfn_to_section_nr, section_nr_to_pfn};
use crate::zone::ZoneId;

/// Whether `pfn` (outside the range going away) still belongs to zone `zid` of node `nid`.
fn in_zone(sparse: &Sparse, pfn: u64, zid: ZoneId, nid: usize) -> bool {
    sparse.page(pfn).is_some_and(|p| {
        p.zone_index() == zid as u8
            && p.nid() == nid
            && !p
                .flags()
                .intersects(PageFlags::HOLE.union(PageFlags::OFFLINE))
    })
}

/// `find_smallest_section_pfn`: the first pfn of `[from, to)` in the zone (absent sections
/// skipped whole).
fn find_smallest(sparse: &Sparse, from: u64, to: u64, zid: ZoneId, nid: usize) -> Option<u64> {
    let mut pfn = from;
    while pfn < to {
        let sec_end = section_nr_to_pfn(pfn_to_section_nr(pfn) + 1).min(to);
        if !sparse.pfn_valid(pfn) {
            pfn = sec_end;
            continue;
        }
        if let Some(p) = (pfn..sec_end).find(|&p| in_zone(sparse, p, zid, nid)) {
            return Some(p);
        }
        pfn = sec_end;
    }
    None
}

/// `find_biggest_section_pfn`: the last pfn of `[from, to)` in the zone.
fn find_biggest(sparse: &Sparse, from: u64, to: u64, zid: ZoneId, nid: usize) -> Option<u64> {
    let mut end = to;
    while end > from {
        let sec_start = section_nr_to_pfn(pfn_to_section_nr(end - 1)).max(from);
        if !sparse.pfn_valid(end - 1) {
            end = sec_start;
            continue;
        }
        if let Some(p) = (sec_start..end)
            .rev()
            .find(|&p| in_zone(sparse, p, zid, nid))
        {
            return Some(p);
        }
        end = sec_start;
    }
    None
}

impl<P: Platform> Machine<P> {
    /// `shrink_zone_span`: `[start_pfn, end_pfn)` has left zone `zid` of node `nid` (its
    /// struct pages are gone or no longer in the zone); shrink the span if the range was at
    /// either end of it.
    pub(crate) fn shrink_zone_span(
        &mut self,
        nid: usize,
        zid: ZoneId,
        start_pfn: u64,
        end_pfn: u64,
    ) {
        let zone = &self.nodes[nid].zones[zid.index()];
        let (zs, ze) = (zone.start_pfn(), zone.end_pfn());
        if zone.spanned() == 0 || end_pfn <= zs || ze <= start_pfn {
            return;
        }
        let (mut s, mut e) = (zs, ze);
        if start_pfn <= zs {
            match find_smallest(&self.sparse, end_pfn, ze, zid, nid) {
                Some(p) => s = p,
                None => (s, e) = (0, 0),
            }
        } else if end_pfn >= ze {
            match find_biggest(&self.sparse, zs, start_pfn, zid, nid) {
                Some(p) => e = p + 1,
                None => (s, e) = (0, 0),
            }
        }
        self.zone_mut(nid, zid).set_span(s, e);
    }
}
