//! Grouping pages by mobility: pageblock migratetypes, free lists per type with Linux's
//! fallbacks and pageblock stealing, HighAtomic reserves, isolation, the per-order per-CPU
//! lists, and /proc/pagetypeinfo against Linux 6.1's (tests/data/linux-6.1-qemu-movablecore.*).

use mm::mm_init::InitOptions;
use mm::movable::CoreParams;
use mm::page_isolation::IsolateError;
use mm::pageblock::{MigrateType, PAGEBLOCK_NR_PAGES};
use mm::testing::{FakePlatform, memblock};
use mm::{Gfp, Machine, Topology, ZoneId};

/// QEMU's 2 GiB PC map, `movablecore=256M`: the machine Linux's pagetypeinfo was read on.
fn qemu_2g_movablecore() -> Machine<FakePlatform> {
    let mb = memblock(&[(0x1000, 0x9f000), (0x10_0000, 0x7ffe_0000)], &[]);
    let opts = InitOptions {
        core: CoreParams {
            required_movablecore: 256 << 8,
            ..CoreParams::default()
        },
        ..InitOptions::default()
    };
    Machine::init_with(FakePlatform::new(), mb, Topology::single(), &opts).unwrap()
}

/// A 64 MiB machine (DMA and 48 MiB of DMA32).
fn small() -> Machine<FakePlatform> {
    mm::testing::pc_node(64)
}

fn pagetypeinfo(m: &Machine<FakePlatform>) -> String {
    let mut s = String::new();
    m.write_pagetypeinfo(&mut s).unwrap();
    s
}

/// Pageblocks of `mt` in `zone` of node 0, from the pagetypeinfo block table.
fn blocks(m: &Machine<FakePlatform>, zone: &str, mt: MigrateType) -> u64 {
    let text = pagetypeinfo(m);
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("Node 0, zone {zone:>8} ")))
        .unwrap_or_else(|| panic!("no block line for {zone}:\n{text}"));
    line.split_whitespace()
        .nth(4 + mt.index())
        .unwrap()
        .parse()
        .unwrap()
}

fn mt_of(m: &Machine<FakePlatform>, pfn: u64) -> MigrateType {
    m.sparse().pageblock_migratetype(pfn).unwrap()
}

#[test]
fn pagetypeinfo_has_linuxs_layout_and_block_totals() {
    let m = qemu_2g_movablecore();
    let ours = pagetypeinfo(&m);
    let linux = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/linux-6.1-qemu-movablecore.pagetypeinfo"
    ))
    .unwrap();
    // Line for line the same shape: the same headers, the same row labels, and every number
    // in the same columns (each field ends where Linux's does).
    let (o, l): (Vec<&str>, Vec<&str>) = (ours.lines().collect(), linux.lines().collect());
    assert_eq!(o.len(), l.len(), "ours:\n{ours}\nLinux:\n{linux}");
    let ends = |s: &str| -> Vec<usize> {
        s.char_indices()
            .filter(|&(i, c)| c != ' ' && s[i + c.len_utf8()..].starts_with(' '))
            .map(|(i, _)| i)
            .collect()
    };
    for (a, b) in o.iter().zip(&l) {
        let label = |s: &str| s.split(", type ").next().unwrap_or(s).to_string();
        if b.starts_with("Node") && b.contains(", type ") {
            assert_eq!(&a[..43], &b[..43], "row label");
        } else if !b.starts_with("Node") {
            assert_eq!(a, b, "header");
        } else {
            assert_eq!(label(a)[..19], label(b)[..19], "row label");
        }
        assert_eq!(ends(a), ends(b), "columns of\n{a}\n{b}");
    }
    // The same pageblocks in each zone as Linux's machine (all Movable: nothing allocated).
    for (zone, total) in [("DMA", 8), ("DMA32", 888), ("Movable", 128)] {
        let sum: u64 = MigrateType::ALL
            .iter()
            .map(|&mt| blocks(&m, zone, mt))
            .sum();
        assert_eq!(sum, total, "{zone}");
        assert_eq!(blocks(&m, zone, MigrateType::Movable), total);
    }
    m.check().unwrap();
}

#[test]
fn unmovable_allocations_gather_in_stolen_pageblocks() {
    let m = small();
    let mut got = Vec::new();
    for _ in 0..3000 {
        got.push((m.alloc_pages(Gfp::KERNEL, 0).unwrap(), 0));
    }
    for _ in 0..100 {
        got.push((m.alloc_pages(Gfp::KERNEL, 3).unwrap(), 3));
    }
    // 3800 pages fill 8 pageblocks; stealing whole pageblocks keeps them in few more.
    let unmovable = blocks(&m, "DMA32", MigrateType::Unmovable);
    assert!(
        (8..=12).contains(&unmovable),
        "{unmovable} Unmovable pageblocks"
    );
    for &(pfn, _) in &got {
        assert_eq!(mt_of(&m, pfn), MigrateType::Unmovable, "pfn {pfn:#x}");
    }
    // Movable allocations keep out of them while Movable pageblocks have room.
    for _ in 0..500 {
        let pfn = m.alloc_pages(Gfp::MOVABLE, 0).unwrap();
        assert_eq!(mt_of(&m, pfn), MigrateType::Movable, "pfn {pfn:#x}");
        got.push((pfn, 0));
    }
    let reclaimable = m.alloc_pages(Gfp::RECLAIMABLE, 0).unwrap();
    assert_eq!(mt_of(&m, reclaimable), MigrateType::Reclaimable);
    got.push((reclaimable, 0));
    m.check().unwrap();
    for (pfn, order) in got {
        m.free_pages(pfn, order).unwrap();
    }
    m.drain_all_pages();
    m.check().unwrap();
}

#[test]
fn per_cpu_lists_hold_orders_up_to_3() {
    // 512 MiB: DMA32's batch is 31 (a 64 MiB zone's is 1, which caches nothing).
    let m = mm::testing::pc_node(512);
    let z = m.node(0).unwrap().zone(ZoneId::Dma32);
    let before = z.nr_free_pages();
    let a = m.alloc_pages(Gfp::KERNEL, 2).unwrap();
    // The refill took at least two order-2 blocks; one stays on the list.
    assert!(z.pcp_count() >= 4, "{}", z.pcp_count());
    assert!(z.nr_free_pages() <= before - 8);
    let cached = z.pcp_count();
    m.free_pages(a, 2).unwrap();
    assert_eq!(z.pcp_count(), cached + 4);
    // Order 4 is never cached.
    let b = m.alloc_pages(Gfp::KERNEL, 4).unwrap();
    m.free_pages(b, 4).unwrap();
    assert_eq!(z.pcp_count(), cached + 4);
    m.check().unwrap();
    assert_eq!(m.drain_all_pages(), cached + 4);
    assert_eq!(z.nr_free_pages(), before);
    m.check().unwrap();
}

#[test]
fn isolation_takes_a_range_away_and_gives_it_back() {
    let m = small();
    let buddy = |m: &Machine<FakePlatform>| {
        let mut s = String::new();
        m.write_buddyinfo(&mut s).unwrap();
        s
    };
    let before = (buddy(&m), m.nr_free_pages());
    // A block allocated in the range before isolation, freed after it.
    let inside = m.alloc_pages(Gfp::KERNEL, 10).unwrap();
    let (s, e) = (inside & !4095, (inside & !4095) + 4096);
    m.drain_all_pages();
    let free_in_range: u64 = (s..e)
        .filter_map(|pfn| {
            m.page(pfn)
                .filter(|p| p.is_buddy())
                .map(|p| 1u64 << p.order())
        })
        .sum();
    let free_before = m.nr_free_pages();
    assert_eq!(
        m.start_isolate_page_range(s + 1, e),
        Err(IsolateError::Misaligned {
            start_pfn: s + 1,
            end_pfn: e
        })
    );
    m.start_isolate_page_range(s, e).unwrap();
    assert!(free_in_range > 0);
    assert_eq!(m.nr_free_pages(), free_before - free_in_range);
    assert_eq!(
        m.start_isolate_page_range(s, e),
        Err(IsolateError::Busy { pfn: s }),
        "twice"
    );
    assert_eq!(m.test_pages_isolated(s, e), Err(inside));
    m.check().unwrap();
    // Nothing in the range is handed out, whatever the type.
    let mut got = Vec::new();
    for gfp in [Gfp::KERNEL, Gfp::MOVABLE, Gfp::RECLAIMABLE] {
        while let Some(pfn) = m.alloc_pages(gfp | Gfp::NOWARN | Gfp::MEMALLOC, 0) {
            assert!(!(s..e).contains(&pfn), "{gfp:?} got isolated pfn {pfn:#x}");
            got.push(pfn);
        }
    }
    // A block freed into the range stays out of NR_FREE_PAGES.
    let free = m.nr_free_pages();
    m.free_pages(inside, 10).unwrap();
    assert_eq!(m.nr_free_pages(), free);
    if free_in_range + 1024 == e - s {
        assert_eq!(m.test_pages_isolated(s, e), Ok(()));
    }
    m.check().unwrap();
    for pfn in got {
        m.free_pages(pfn, 0).unwrap();
    }
    m.drain_all_pages();
    assert_eq!(
        m.undo_isolate_page_range(s, e, MigrateType::Movable),
        free_in_range + 1024
    );
    m.drain_all_pages();
    m.check().unwrap();
    assert_eq!((buddy(&m), m.nr_free_pages()), before);
    for pfn in (s..e).step_by(PAGEBLOCK_NR_PAGES as usize) {
        assert_eq!(mt_of(&m, pfn), MigrateType::Movable);
    }
}

#[test]
fn atomic_high_order_allocations_reserve_a_highatomic_pageblock() {
    let m = small();
    let a = m.alloc_pages(Gfp::ATOMIC, 2).unwrap();
    assert_eq!(mt_of(&m, a), MigrateType::HighAtomic);
    assert_eq!(blocks(&m, "DMA32", MigrateType::HighAtomic), 1);
    m.check().unwrap();
    // The reserve serves atomic requests from the free lists first (orders up to 3 come from
    // the per-CPU lists, as in Linux 6.1).
    let b = m.alloc_pages(Gfp::ATOMIC, 4).unwrap();
    assert_eq!(mt_of(&m, b), MigrateType::HighAtomic);
    m.free_pages(a, 2).unwrap();
    m.free_pages(b, 4).unwrap();
    // Exhaustion gives the reserve back (unreserve_highatomic_pageblock, forced at last).
    let mut got = Vec::new();
    while let Some(pfn) = m.alloc_pages(Gfp::KERNEL | Gfp::NOWARN | Gfp::MEMALLOC, 0) {
        got.push(pfn);
    }
    assert_eq!(blocks(&m, "DMA32", MigrateType::HighAtomic), 0);
    m.check().unwrap();
    for pfn in got {
        m.free_pages(pfn, 0).unwrap();
    }
    m.check().unwrap();
}

#[test]
fn a_tiny_machine_does_not_group_by_mobility() {
    // 8 MiB: about 2000 pages
    // against 5 * 512 = 2560 (Linux's page_group_by_mobility_disabled).
    let m = Machine::init(
        FakePlatform::new(),
        memblock(&[(0x1000, 0x9f000), (0x10_0000, 0x80_0000)], &[]),
    )
    .unwrap();
    assert!(!m.mobility_grouping());
    let mut s = String::new();
    m.write_zonelist_summary(&mut s).unwrap();
    assert!(s.contains("mobility grouping off."), "{s}");
    assert!(small().mobility_grouping());
}
