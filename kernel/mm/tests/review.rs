//! Tests from the review of issue 14: device frees where an address rule ("refuse pfn >=
//! max_pfn") would let them through, RAM and device memory inside one max-order block, the
//! device memmap block that must not be freed, and the public APIs' arithmetic at the edges of
//! the pfn space.

use mm::testing::{FakePlatform, memmap_block_head, node, settle};
use mm::{
    BadPageReason, Gfp, HotplugError, MAX_ORDER, MAX_PFN_LIMIT, Machine, MemremapOptions,
    PageRefError, ZoneId,
};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// Every way of freeing a device pfn is refused, and nothing changes.
fn device_frees_refused(n: &mut Machine<FakePlatform>, pfn: u64) {
    let free = n.nr_free_pages();
    assert!(n.page(pfn).unwrap().is_device(), "{pfn:#x}");
    for order in [0, 3, MAX_ORDER] {
        let head = pfn & !((1 << order) - 1);
        let e = n.free_pages(head, order).unwrap_err();
        if n.page(head).unwrap().is_device() {
            assert_eq!(
                e.reason,
                BadPageReason::DevicePage,
                "{head:#x} order {order}"
            );
        }
    }
    assert_eq!(n.put_page(pfn), Err(PageRefError::IdleDevicePage));
    assert_eq!(n.get_page(pfn), Ok(2));
    assert_eq!(
        n.free_page(pfn).unwrap_err().reason,
        BadPageReason::DevicePage
    );
    assert_eq!(n.put_page(pfn), Ok(1));
    assert_eq!(n.nr_free_pages(), free);
    settle(n);
}

#[test]
fn device_pfns_below_ram_are_refused() {
    // memmap=64M!256M on 512 MiB: the device lies below max_pfn.
    let mut n = node(
        &[(0x1000, 0x9f000), (MIB, 256 * MIB), (320 * MIB, 512 * MIB)],
        &[],
    );
    n.memremap_pages(256 * MIB, 64 * MIB, MemremapOptions::new(64 * MIB))
        .unwrap();
    let (lo, hi) = ((256 * MIB) >> 12, ((320 * MIB) >> 12) - 1);
    assert!(hi < n.max_pfn(), "the device is below RAM");
    for pfn in [lo, lo + 1, lo + 513, hi] {
        device_frees_refused(&mut n, pfn);
    }
}

#[test]
fn device_pfns_below_a_later_hot_add_are_refused() {
    let mut n = node(&[(0x1000, 0x9f000), (MIB, 512 * MIB)], &[]);
    n.memremap_pages(4 * GIB, 128 * MIB, MemremapOptions::new(128 * MIB))
        .unwrap();
    n.add_and_online_memory(0, 8 * GIB, 128 * MIB).unwrap();
    let dev = (4 * GIB) >> 12;
    assert!(
        dev + 32767 < n.max_pfn(),
        "hot-add moved max_pfn above the device"
    );
    for pfn in [dev, dev + 4096, dev + 32767] {
        device_frees_refused(&mut n, pfn);
    }
    // RAM hot-added above it is allocatable and never a device page.
    let p = n.alloc_pages(Gfp::KERNEL, MAX_ORDER).unwrap();
    assert!(!n.page(p).unwrap().is_device());
    n.free_pages(p, MAX_ORDER).unwrap();
    settle(&n);
}

#[test]
#[cfg_attr(miri, ignore = "slow under Miri: see README")]
fn ram_and_device_in_one_max_order_block_never_merge() {
    // memmap=62M!258M: the 4 MiB block at 256 MiB is half RAM, half device.
    let mut n = node(
        &[(0x1000, 0x9f000), (MIB, 258 * MIB), (320 * MIB, 512 * MIB)],
        &[],
    );
    n.memremap_pages(258 * MIB, 62 * MIB, MemremapOptions::new(62 * MIB))
        .unwrap();
    let block = (256 * MIB) >> 12;
    let dev = (258 * MIB) >> 12;
    assert_eq!(block >> MAX_ORDER, dev >> MAX_ORDER, "one max-order block");
    // Take every RAM page and give them back in a shuffled order: frees merge as far as they
    // can, and must stop at the device boundary.
    let mut live = Vec::new();
    while let Some(p) = n.alloc_pages(Gfp::MEMALLOC | Gfp::NOWARN, 0) {
        live.push(p);
    }
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for i in (1..live.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        live.swap(i, (x % (i as u64 + 1)) as usize);
    }
    for p in live {
        n.free_page(p).unwrap();
    }
    n.drain_pages();
    settle(&n);
    let head = n.page(block).unwrap();
    assert!(head.is_buddy());
    assert_eq!(
        head.order(),
        9,
        "2 MiB of RAM: merging stopped at the device"
    );
    device_frees_refused(&mut n, dev);
    // Stress: mixed orders, frees out of order, a device get/put now and then.
    let mut held: Vec<(u64, u32)> = Vec::new();
    for i in 0..20_000u64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if x % 3 != 0 || held.is_empty() {
            let order = (x >> 8) as u32 % (MAX_ORDER + 1);
            if let Some(p) = n.alloc_pages(Gfp::KERNEL | Gfp::NOWARN, order) {
                let end = p + (1 << order);
                assert!(end <= dev || p >= (320 * MIB) >> 12, "{p:#x} order {order}");
                held.push((p, order));
            }
        } else {
            let (p, o) = held.swap_remove((x >> 16) as usize % held.len());
            n.free_pages(p, o).unwrap();
        }
        if i % 5000 == 0 {
            let d = dev + (x >> 20) % ((62 * MIB) >> 12);
            assert_eq!(n.get_page(d), Ok(2));
            assert_eq!(n.put_page(d), Ok(1));
            settle(&n);
        }
    }
    for (p, o) in held {
        n.free_pages(p, o).unwrap();
    }
    n.drain_pages();
    settle(&n);
    assert_eq!(n.page(block).unwrap().order(), 9);
}

#[test]
fn a_device_memmap_block_cannot_be_freed() {
    // Issue 14's host repro: memremap at 4 GiB without altmap, free the MEMMAP head.
    let mut n = node(&[(0x1000, 0x9f000), (MIB, 512 * MIB)], &[]);
    n.memremap_pages(
        4 * GIB,
        128 * MIB,
        MemremapOptions::new(128 * MIB).altmap(false),
    )
    .unwrap();
    let head = memmap_block_head(&n).expect("the memmap block");
    let order = n.page(head).unwrap().order();
    let free = n.nr_free_pages();
    let e = n.free_pages(head, order).unwrap_err();
    assert_eq!(e.reason, BadPageReason::Memmap);
    assert!(e.to_string().contains("memmap"), "{e}");
    // put_page down to zero would free it too: refused the same way.
    assert_eq!(n.put_page(head), Err(PageRefError::NotInUse));
    assert_eq!(n.page(head).unwrap().refcount(), 1);
    assert_eq!(n.nr_free_pages(), free);
    settle(&n);
}

#[test]
fn pfn_arithmetic_at_the_edges_is_checked() {
    let mut n = node(&[(0x1000, 0x9f000), (MIB, 64 * MIB)], &[]);
    let before = n.nr_free_pages();
    for pfn in [MAX_PFN_LIMIT, MAX_PFN_LIMIT + 1, u64::MAX, u64::MAX - 1] {
        for order in [0, MAX_ORDER] {
            assert_eq!(
                n.free_pages(pfn & !((1 << order) - 1), order)
                    .unwrap_err()
                    .reason,
                BadPageReason::InvalidPfn
            );
        }
        assert_eq!(n.get_page(pfn), Err(PageRefError::InvalidPfn));
        assert_eq!(n.put_page(pfn), Err(PageRefError::InvalidPfn));
        assert!(n.page(pfn).is_none() && !n.pfn_valid(pfn));
    }
    for (pfn, nr) in [
        (u64::MAX, 1),
        (u64::MAX - 10, 100),
        (MAX_PFN_LIMIT - 1, 2),
        (1, u64::MAX),
    ] {
        assert_eq!(
            n.online_pages(pfn, nr),
            Err(HotplugError::InvalidPfn { pfn, nr_pages: nr })
        );
    }
    assert_eq!(
        n.generic_online_page(u64::MAX, 0),
        Err(HotplugError::InvalidPfn {
            pfn: u64::MAX,
            nr_pages: 1
        })
    );
    assert_eq!(
        n.generic_online_page(u64::MAX - 1023, MAX_ORDER),
        Err(HotplugError::InvalidPfn {
            pfn: u64::MAX - 1023,
            nr_pages: 1024
        })
    );
    assert_eq!(
        n.generic_online_page(0, MAX_ORDER + 1),
        Err(HotplugError::NotOnlining)
    );
    for (start, size) in [
        (!0xfff, 0x1000),
        (1 << 52, 128 * MIB),
        ((1 << 52) - 0x1000, 0x2000),
    ] {
        assert_eq!(n.add_memory(0, start, size), Err(HotplugError::OutOfRange));
        assert!(
            n.memremap_pages(start, size, MemremapOptions::new(size))
                .is_err()
        );
    }
    assert_eq!(n.nr_free_pages(), before);
    settle(&n);
    assert!(n.nodes()[0].zone(ZoneId::Normal).spanned() == 0);
}

#[test]
fn memmap_init_near_the_end_of_the_pfn_space_terminates() {
    let mb = mm::testing::memblock(&[(MIB, 64 * MIB)], &[]);
    let mut pages = vec![mm::Page::default(); 64];
    for start in [u64::MAX - 10, u64::MAX, MAX_PFN_LIMIT - 3, MAX_PFN_LIMIT] {
        mm::mm_init::memmap_init_pages(&mb, &[], start, &mut pages);
        mm::memremap::memmap_init_device_pages(start, &mut pages, 0, 8, 0);
    }
    // Only the three pfns below the limit were written (as holes, then device pages).
    assert!(pages[..3].iter().all(|p| p.is_device()));
    assert!(pages[3..].iter().all(|p| *p == mm::Page::default()));
}

#[test]
fn a_refused_memmap_storage_leaves_the_free_memory_as_it_was() {
    let mut n = node(&[(0x1000, 0x9f000), (MIB, 512 * MIB)], &[]);
    let (free, sections) = (n.nr_free_pages(), n.sparse().present_sections());
    n.platform_mut().fail_storage = true;
    let e = n
        .memremap_pages(4 * GIB, 256 * MIB, MemremapOptions::new(0).altmap(false))
        .unwrap_err();
    assert!(e.to_string().contains("mapping failed"), "{e}");
    assert_eq!(n.nr_free_pages(), free, "the memmap blocks went back");
    assert_eq!(n.sparse().present_sections(), sections);
    assert!(n.pagemaps().is_empty());
    settle(&n);
    // And the same range works once the platform agrees.
    n.platform_mut().fail_storage = false;
    n.memremap_pages(4 * GIB, 256 * MIB, MemremapOptions::new(0).altmap(false))
        .unwrap();
    settle(&n);
}
