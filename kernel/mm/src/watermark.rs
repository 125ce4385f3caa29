//! Zone watermarks, computed the Linux way (`calculate_min_free_kbytes`,
//! `__setup_per_zone_wmarks`):
//!
//! * `min_free_kbytes = clamp(int_sqrt(lowmem_kbytes * 16), 128, 262144)` (`u64::isqrt`), where lowmem is the
//!   managed RAM of all RAM zones;
//! * each zone's `min` is its share of `min_free_kbytes` in proportion to its managed pages;
//! * `low = min + max(min / 4, managed * watermark_scale_factor / 10000)`, `high = low + the same`,
//!   with `watermark_scale_factor = 10`.
//!
//! lowmem is summed over the zones of every node, as Linux does. `lowmem_reserve` is Linux's
//! `setup_per_zone_lowmem_reserve` with the default `sysctl_lowmem_reserve_ratio`.

use crate::node::PgData;
use crate::zone::{MAX_NR_ZONES, Zone, ZoneId};

/// Linux's default `watermark_scale_factor`.
pub const WATERMARK_SCALE_FACTOR: u64 = 10;

/// The three watermarks of a zone, in pages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Watermarks {
    /// `WMARK_MIN`: ordinary allocations never take the zone below this.
    pub min: u64,
    /// `WMARK_LOW`.
    pub low: u64,
    /// `WMARK_HIGH`.
    pub high: u64,
}

/// `calculate_min_free_kbytes` for `lowmem_pages` managed RAM pages.
pub fn min_free_kbytes(lowmem_pages: u64) -> u64 {
    let lowmem_kbytes = lowmem_pages * (crate::PAGE_SIZE >> 10);
    (lowmem_kbytes * 16).isqrt().clamp(128, 262_144)
}

/// Watermarks of one zone with `managed` pages, given the node-wide `pages_min`
/// (min_free_kbytes in pages) and the total managed `lowmem_pages`.
pub fn zone_watermarks(managed: u64, pages_min: u64, lowmem_pages: u64) -> Watermarks {
    if lowmem_pages == 0 || managed == 0 {
        return Watermarks::default();
    }
    let min = pages_min * managed / lowmem_pages;
    let step = (min >> 2).max(managed * WATERMARK_SCALE_FACTOR / 10_000);
    Watermarks {
        min,
        low: min + step,
        high: min + 2 * step,
    }
}

/// `setup_per_zone_wmarks`: recompute every RAM zone's watermarks on every node; Device
/// stays at zero.
pub(crate) fn setup_per_zone_wmarks(nodes: &mut [&'static mut PgData]) {
    let lowmem: u64 = nodes
        .iter()
        .flat_map(|n| n.zones.iter())
        .filter(|z| z.id != ZoneId::Device)
        .map(|z| z.managed)
        .sum();
    let pages_min = min_free_kbytes(lowmem) >> (crate::PAGE_SHIFT - 10);
    for z in nodes.iter_mut().flat_map(|n| n.zones.iter_mut()) {
        z.wmark = if z.id == ZoneId::Device {
            Watermarks::default()
        } else {
            zone_watermarks(z.managed, pages_min, lowmem)
        };
    }
}

/// Linux's `sysctl_lowmem_reserve_ratio` defaults, per zone (DMA 256, DMA32 256, Normal 32;
/// 0, no reserve, for Movable and Device).
pub const LOWMEM_RESERVE_RATIO: [u64; MAX_NR_ZONES] = [256, 256, 32, 0, 0];

/// `setup_per_zone_lowmem_reserve` for the zones of one node: zone `i` keeps back, from an
/// allocation whose highest allowed zone is `j > i`, the managed pages of zones `i+1..=j`
/// divided by zone `i`'s ratio (nothing if the ratio is 0 or the zone manages nothing).
pub(crate) fn setup_per_zone_lowmem_reserve(zones: &mut [Zone; MAX_NR_ZONES]) {
    for i in 0..MAX_NR_ZONES - 1 {
        let ratio = LOWMEM_RESERVE_RATIO[i];
        let clear = ratio == 0 || zones[i].managed == 0;
        let mut managed = 0;
        for j in i + 1..MAX_NR_ZONES {
            managed += zones[j].managed;
            zones[i].lowmem_reserve[j] = if clear { 0 } else { managed / ratio };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_free_kbytes_matches_linux_table() {
        // Linux's comment table: 16MB: 512k, 32MB: 724k, 64MB: 1024k, 128MB: 1448k,
        // 1GB: 4096k, 16GB: 16384k, 4TB: 262144k (clamped).
        let mb = |m: u64| m * 256;
        assert_eq!(min_free_kbytes(mb(16)), 512);
        assert_eq!(min_free_kbytes(mb(32)), 724);
        assert_eq!(min_free_kbytes(mb(64)), 1024);
        assert_eq!(min_free_kbytes(mb(128)), 1448);
        assert_eq!(min_free_kbytes(mb(1024)), 4096);
        assert_eq!(min_free_kbytes(mb(16 * 1024)), 16384);
        assert_eq!(min_free_kbytes(mb(4 * 1024 * 1024 * 1024)), 262_144);
        assert_eq!(min_free_kbytes(1), 128);
    }

    #[test]
    fn watermarks_split_by_managed_pages() {
        // Linux's __setup_per_zone_wmarks worked by hand for pages_min 1000 over 123977
        // managed pages: DMA (3977) gets 1000 * 3977 / 123977 = 32, low and high step by
        // max(32 / 4, 3977 * 10 / 10000) = 8; DMA32 (120000) gets 967, steps of 241.
        let w = |min, low, high| Watermarks { min, low, high };
        assert_eq!(zone_watermarks(3977, 1000, 123_977), w(32, 40, 48));
        assert_eq!(zone_watermarks(120_000, 1000, 123_977), w(967, 1208, 1449));
        // A large zone whose scale-factor step (0.1 % of managed) beats min / 4.
        assert_eq!(
            zone_watermarks(4_000_000, 1000, 4_000_000),
            w(1000, 5000, 9000)
        );
        assert_eq!(zone_watermarks(0, 1000, 123_977), Watermarks::default());
    }

    #[test]
    fn lowmem_reserve_like_linux() {
        // Linux 6.1 in QEMU, 512 MiB: DMA managed 3977, DMA32 118902 (no Normal) gives
        // "protection: (0, 464, 464, 464, 464)" for DMA: 118902 / 256 = 464.
        let mut zones = ZoneId::ALL.map(|z| Zone::new(z, 0));
        zones[0].managed = 3977;
        zones[1].managed = 118_902;
        setup_per_zone_lowmem_reserve(&mut zones);
        assert_eq!(zones[0].lowmem_reserve, [0, 464, 464, 464, 464]);
        assert_eq!(zones[1].lowmem_reserve, [0; 5]);
        zones[2].managed = 3200;
        setup_per_zone_lowmem_reserve(&mut zones);
        assert_eq!(zones[0].lowmem_reserve, [0, 464, 476, 476, 476]);
        assert_eq!(zones[1].lowmem_reserve, [0, 0, 12, 12, 12]);
        assert_eq!(zones[2].lowmem_reserve, [0, 0, 0, 0, 0]);
        // A Movable zone counts for the zones below it; its own ratio is 0.
        zones[3].managed = 6400;
        setup_per_zone_lowmem_reserve(&mut zones);
        assert_eq!(zones[0].lowmem_reserve, [0, 464, 476, 501, 501]);
        assert_eq!(zones[2].lowmem_reserve, [0, 0, 0, 200, 200]);
        assert_eq!(zones[3].lowmem_reserve, [0; 5], "Movable's ratio is 0");
        zones[0].managed = 0;
        setup_per_zone_lowmem_reserve(&mut zones);
        assert_eq!(
            zones[0].lowmem_reserve, [0; 5],
            "an empty zone reserves nothing"
        );
    }
}
