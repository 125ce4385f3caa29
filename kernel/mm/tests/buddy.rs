//! The buddy allocator through the node: splitting, merging, zone boundaries, holes,
//! watermarks, bad frees, exhaustion, zone modifiers.

use mm::testing::{FakePlatform, node, pc_node};
use mm::{BadPageReason, Gfp, MAX_ORDER, Machine, ZoneId};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

fn counts(n: &Machine<FakePlatform>, z: ZoneId) -> Vec<u64> {
    (0..=MAX_ORDER)
        .map(|o| n.nodes()[0].zone(z).nr_free(o))
        .collect()
}

fn buddyinfo(n: &Machine<FakePlatform>) -> String {
    let mut s = String::new();
    n.write_buddyinfo(&mut s).unwrap();
    s
}

#[test]
fn alloc_splits_the_smallest_sufficient_block_and_free_merges_back() {
    // DMA32 only: 16-32 MiB. Order 4 is above the per-CPU lists' orders, and a movable
    // allocation finds its own (Movable) lists: the smallest sufficient block is split.
    let n = node(&[(16 * MIB, 32 * MIB)], &[]);
    let before = counts(&n, ZoneId::Dma32);
    let k = (4..=MAX_ORDER as usize).find(|&o| before[o] > 0).unwrap();
    let pfn = n.alloc_pages(Gfp::MOVABLE, 4).unwrap();
    assert_eq!(pfn % 16, 0);
    let after = counts(&n, ZoneId::Dma32);
    for o in 0..=MAX_ORDER as usize {
        let expect = if o == k {
            before[o] - 1
        } else if (4..k).contains(&o) {
            before[o] + 1
        } else {
            before[o]
        };
        assert_eq!(after[o], expect, "order {o}");
    }
    assert_eq!(
        n.nodes()[0].zone(ZoneId::Dma32).free_pages(),
        n.nodes()[0].zone(ZoneId::Dma32).managed() - 16
    );
    n.check().unwrap();
    n.free_pages(pfn, 4).unwrap();
    assert_eq!(counts(&n, ZoneId::Dma32), before);
    n.check().unwrap();
}

#[test]
#[cfg_attr(miri, ignore = "slow under Miri: see README")]
fn order0_goes_through_the_page_cache_and_drains_back() {
    let n = pc_node(64);
    let before = buddyinfo(&n);
    let free = n.nr_free_pages();
    let pfns: Vec<u64> = (0..1000)
        .map(|_| n.alloc_page(Gfp::KERNEL).unwrap())
        .collect();
    assert_eq!(n.nr_free_pages(), free - 1000);
    n.check().unwrap();
    for p in pfns {
        n.free_page(p).unwrap();
    }
    assert_eq!(n.nr_free_pages(), free);
    assert!(n.nodes()[0].zone(ZoneId::Dma32).pcp_count() > 0);
    n.check().unwrap();
    n.drain_pages();
    assert_eq!(n.nodes()[0].zone(ZoneId::Dma32).pcp_count(), 0);
    assert_eq!(buddyinfo(&n), before);
    n.check().unwrap();
}

#[test]
#[cfg_attr(miri, ignore = "slow under Miri: see README")]
fn blocks_never_cross_16m_or_4g() {
    let n = node(
        &[(12 * MIB, 20 * MIB), (4 * GIB - 4 * MIB, 4 * GIB + 4 * MIB)],
        &[],
    );
    // Take everything, give everything back: merging must stop at the zone boundaries.
    let mut live = Vec::new();
    while let Some(p) = n.alloc_pages(Gfp::MEMALLOC | Gfp::NOWARN, 0) {
        live.push(p);
    }
    for z in ZoneId::RAM {
        assert_eq!(n.nodes()[0].zone(z).free_pages(), 0);
    }
    for p in live.into_iter().rev() {
        n.free_page(p).unwrap();
    }
    n.drain_pages();
    n.check().unwrap();
    for z in ZoneId::RAM {
        let zone = n.nodes()[0].zone(z);
        assert_eq!(zone.free_pages(), zone.managed());
    }
    let boundary = [(16 * MIB) >> 12, (4 * GIB) >> 12];
    let ranges = [(12 * MIB, 20 * MIB), (4 * GIB - 4 * MIB, 4 * GIB + 4 * MIB)];
    let mut heads = 0;
    for (s, e) in ranges {
        for pfn in s >> 12..e >> 12 {
            let p = n.page(pfn).unwrap();
            if p.is_buddy() {
                heads += 1;
                let end = pfn + (1 << p.order());
                for b in boundary {
                    assert!(
                        !(pfn < b && b < end),
                        "block {pfn:#x}+{} crosses {b:#x}",
                        p.order()
                    );
                }
                assert_eq!(ZoneId::for_pfn(end - 1), p.zone());
            }
        }
    }
    assert!(heads >= 4);
    // Every free block lies in one zone: check() verifies each block's tails share the
    // head's zone and that zone is the zone of the address.
    assert_eq!(n.nodes()[0].zone(ZoneId::Dma).present(), (4 * MIB) >> 12);
    assert_eq!(n.nodes()[0].zone(ZoneId::Dma32).present(), (8 * MIB) >> 12);
    assert_eq!(n.nodes()[0].zone(ZoneId::Normal).present(), (4 * MIB) >> 12);
}

#[test]
#[cfg_attr(miri, ignore = "slow under Miri: see README")]
fn holes_are_never_free_and_refused() {
    let n = pc_node(64);
    // The legacy hole 0x9f000-0x100000 and page 0.
    for pfn in [0u64, 0x9f, 0xa0, 0xff] {
        let e = n.free_page(pfn).unwrap_err();
        assert_eq!(e.reason, BadPageReason::Reserved, "{pfn:#x}");
    }
    let mut live = Vec::new();
    while let Some(p) = n.alloc_pages(Gfp::DMA | Gfp::MEMALLOC | Gfp::NOWARN, 0) {
        assert!(!(0x9f..0x100).contains(&p) && p != 0);
        live.push(p);
    }
    assert_eq!(live.len() as u64, n.nodes()[0].zone(ZoneId::Dma).managed());
}

#[test]
#[cfg_attr(miri, ignore = "slow under Miri: see README")]
fn watermarks_refuse_ordinary_allocations_below_min() {
    let n = node(&[(16 * MIB, 48 * MIB)], &[]);
    let z = ZoneId::Dma32;
    let wm = n.nodes()[0].zone(z).watermarks();
    assert!(wm.min > 0 && wm.min < wm.low && wm.low < wm.high);
    let mut live = Vec::new();
    while let Some(p) = n.alloc_pages(Gfp::KERNEL | Gfp::NOWARN, 0) {
        live.push(p);
    }
    assert_eq!(n.nodes()[0].zone(z).free_pages(), wm.min);
    // ATOMIC may dip to half of min.
    while let Some(p) = n.alloc_pages(Gfp::ATOMIC | Gfp::NOWARN, 0) {
        live.push(p);
    }
    assert_eq!(n.nodes()[0].zone(z).free_pages(), wm.min - wm.min / 2);
    // MEMALLOC takes everything.
    while let Some(p) = n.alloc_pages(Gfp::MEMALLOC | Gfp::NOWARN, 0) {
        live.push(p);
    }
    assert_eq!(n.nodes()[0].zone(z).free_pages(), 0);
    assert_eq!(live.len() as u64, n.nodes()[0].zone(z).managed());
    n.check().unwrap();
    for p in live {
        n.free_page(p).unwrap();
    }
    assert_eq!(
        n.nodes()[0].zone(z).free_pages(),
        n.nodes()[0].zone(z).managed()
    );
}

#[test]
#[cfg_attr(miri, ignore = "slow under Miri: see README")]
fn bad_frees_are_refused_and_leave_the_lists_intact() {
    let n = pc_node(64);
    let a = n.alloc_pages(Gfp::KERNEL, 2).unwrap();
    let b = n.alloc_page(Gfp::KERNEL).unwrap();
    n.free_page(b).unwrap();
    let info = buddyinfo(&n);
    let free = n.nr_free_pages();
    let cases = [
        (a, 3, BadPageReason::WrongOrder { allocated: 2 }),
        (a, 0, BadPageReason::WrongOrder { allocated: 2 }),
        (a + 1, 0, BadPageReason::NotAllocated),
        (b, 0, BadPageReason::AlreadyFree),
        (0x200, 0, BadPageReason::Reserved), // the "kernel"
        (1 << 30, 0, BadPageReason::InvalidPfn),
        (u64::MAX, 0, BadPageReason::InvalidPfn),
        (a, 11, BadPageReason::OrderTooLarge),
    ];
    for (pfn, order, reason) in cases {
        let e = n.free_pages(pfn, order).unwrap_err();
        assert_eq!(e.reason, reason, "pfn {pfn:#x} order {order}");
        assert!(
            e.to_string()
                .starts_with(&format!("bad page: pfn {pfn:#x} order {order}: "))
        );
        assert_eq!(buddyinfo(&n), info);
        assert_eq!(n.nr_free_pages(), free);
        n.check().unwrap();
    }
    // A free page inside a free buddy block.
    let free_tail = (0x1000..0x4000)
        .find(|&p| {
            let pg = n.page(p).unwrap();
            pg.flags().is_empty()
        })
        .unwrap();
    assert_eq!(
        n.free_page(free_tail).unwrap_err().reason,
        BadPageReason::NotAllocated
    );
    n.free_pages(a, 2).unwrap();
    assert_eq!(
        n.free_pages(a, 2).unwrap_err().reason,
        BadPageReason::AlreadyFree
    );
    n.check().unwrap();
}

#[test]
#[cfg_attr(miri, ignore = "slow under Miri: see README")]
fn zone_modifiers_and_zonelist_order() {
    let n = node(&[(MIB, 64 * MIB), (4 * GIB, 4 * GIB + 64 * MIB)], &[]);
    let p = n.alloc_page(Gfp::KERNEL).unwrap();
    assert_eq!(ZoneId::for_pfn(p), ZoneId::Normal, "Normal is used first");
    let p = n.alloc_page(Gfp::DMA32).unwrap();
    assert_eq!(ZoneId::for_pfn(p), ZoneId::Dma32);
    let p = n.alloc_pages(Gfp::DMA, 4).unwrap();
    assert!(p < (16 * MIB) >> 12);
    // Exhaust Normal: KERNEL falls back to DMA32, then DMA.
    while n.nodes()[0].zone(ZoneId::Normal).free_pages()
        > n.nodes()[0].zone(ZoneId::Normal).watermarks().min
    {
        n.alloc_page(Gfp::KERNEL).unwrap();
    }
    let p = n.alloc_page(Gfp::KERNEL).unwrap();
    assert_eq!(ZoneId::for_pfn(p), ZoneId::Dma32);
    n.check().unwrap();
}

#[test]
#[cfg_attr(miri, ignore = "slow under Miri: see README")]
fn exhaustion_in_every_zone_restores_counters_exactly() {
    let n = node(
        &[
            (0x1000, 0x9f000),
            (MIB, 64 * MIB),
            (4 * GIB, 4 * GIB + 32 * MIB),
        ],
        &[],
    );
    n.drain_pages();
    let info = buddyinfo(&n);
    let free: Vec<u64> = n.zones().map(|z| z.free_pages()).collect();
    for gfp in [Gfp::DMA, Gfp::DMA32, Gfp::KERNEL] {
        let mut live = Vec::new();
        for order in [3u32, 0] {
            while let Some(p) = n.alloc_pages(gfp | Gfp::NOWARN, order) {
                live.push((p, order));
            }
        }
        let high = gfp.high_zone();
        for z in ZoneId::RAM.iter().filter(|z| **z <= high) {
            let zone = n.nodes()[0].zone(*z);
            assert!(zone.free_pages() >= zone.watermarks().min, "{z:?}");
        }
        let mut emergency = 0;
        while let Some(p) = n.alloc_pages(gfp | Gfp::MEMALLOC | Gfp::NOWARN, 0) {
            live.push((p, 0));
            emergency += 1;
        }
        assert!(
            emergency > 0,
            "{gfp:?}: emergency allocations dip below min"
        );
        for z in ZoneId::RAM.iter().filter(|z| **z <= high) {
            assert_eq!(n.nodes()[0].zone(*z).free_pages(), 0, "{z:?}");
        }
        assert_eq!(n.alloc_pages(gfp | Gfp::MEMALLOC | Gfp::NOWARN, 0), None);
        n.check().unwrap();
        for (p, o) in live {
            n.free_pages(p, o).unwrap();
        }
        n.drain_pages();
        n.check().unwrap();
        assert_eq!(buddyinfo(&n), info);
        let now: Vec<u64> = n.zones().map(|z| z.free_pages()).collect();
        assert_eq!(now, free);
    }
}

#[test]
fn zero_flag_zeroes_through_the_platform() {
    let n = pc_node(64);
    let p = n.alloc_pages(Gfp::KERNEL | Gfp::ZERO, 3).unwrap();
    assert_eq!(*n.platform().zeroed.lock(), vec![(p, 8)]);
    n.alloc_page(Gfp::KERNEL).unwrap();
    assert_eq!(n.platform().zeroed.lock().len(), 1);
}

#[test]
fn order_above_max_is_none() {
    let n = pc_node(64);
    assert_eq!(n.alloc_pages(Gfp::KERNEL, MAX_ORDER + 1), None);
    let p = n.alloc_pages(Gfp::KERNEL, MAX_ORDER).unwrap();
    assert_eq!(p % 1024, 0);
}

#[test]
fn ram_page_refcounts() {
    let n = pc_node(64);
    let p = n.alloc_pages(Gfp::KERNEL, 1).unwrap();
    assert_eq!(n.get_page(p), Ok(2));
    assert_eq!(n.put_page(p), Ok(1));
    let free = n.nr_free_pages();
    assert_eq!(n.put_page(p), Ok(0));
    assert_eq!(n.nr_free_pages(), free + 2);
    assert_eq!(n.put_page(p), Err(mm::PageRefError::NotInUse));
    assert_eq!(n.get_page(p), Err(mm::PageRefError::NotInUse));
    n.check().unwrap();
    // __free_pages on a block someone else still holds drops one reference; the block goes
    // back to the buddy allocator only with the last one (put_page_testzero).
    let q = n.alloc_pages(Gfp::KERNEL, 4).unwrap();
    assert_eq!(n.get_page(q), Ok(2));
    let free = n.nr_free_pages();
    n.free_pages(q, 4).unwrap();
    assert_eq!(n.nr_free_pages(), free, "still held");
    assert!(n.page(q).unwrap().flags().contains(mm::PageFlags::HEAD));
    n.check().unwrap();
    n.free_pages(q, 4).unwrap();
    assert_eq!(n.nr_free_pages(), free + 16);
    assert!(n.free_pages(q, 4).is_err(), "a third free is refused");
    n.check().unwrap();
}
