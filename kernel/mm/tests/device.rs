//! ZONE_DEVICE (memremap, altmap, device page lifetime) and memory hotplug scenarios. Every
//! scenario ends with a scan of every free list for device pfns and the invariant checker.

use std::sync::atomic::{AtomicU64, Ordering};

use mm::testing::{FakePlatform, node, pc_node, settle};
use mm::{
    BadPageReason, Gfp, HotplugError, Machine, MemremapError, MemremapOptions, PageFlags,
    PageRefError, ZoneId,
};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// Allocate every RAM page there is, assert none is a device page, give them back.
fn drain_ram_and_check(n: &mut Machine<FakePlatform>) {
    if cfg!(miri) {
        return settle(n);
    }
    let mut live = Vec::new();
    while let Some(p) = n.alloc_pages(Gfp::MEMALLOC | Gfp::NOWARN, 0) {
        assert!(!n.page(p).unwrap().is_device());
        assert!(
            n.pagemaps()
                .iter()
                .all(|m| p < m.start_pfn() || p >= m.end_pfn())
        );
        live.push(p);
    }
    for p in live {
        n.free_page(p).unwrap();
    }
    settle(n);
}

#[test]
fn nvdimm_128m_without_altmap() {
    let mut n = pc_node(64);
    let free = n.nr_free_pages();
    let max_pfn = n.max_pfn();
    let idx = n
        .memremap_pages(4 * GIB, 128 * MIB, MemremapOptions::new(128 * MIB))
        .unwrap();
    let dev = n.nodes()[0].zone(ZoneId::Device);
    // Linux: only the Device zone's span grows; present and managed stay 0.
    assert_eq!((dev.spanned(), dev.present()), (32768, 0));
    assert_eq!((dev.free_pages(), dev.managed()), (0, 0));
    assert!(!dev.is_populated());
    assert_eq!(dev.start_pfn(), (4 * GIB) >> 12);
    assert_eq!(n.max_pfn(), max_pfn, "device memory never moves max_pfn");
    assert!(!n.nodes()[0].zone(ZoneId::Normal).is_populated());
    assert_eq!(n.platform().device_maps, vec![(4 * GIB, 128 * MIB)]);
    // The memmap (1 MiB) came from RAM.
    assert_eq!(n.nr_free_pages(), free - 256);
    assert_eq!(n.pagemaps()[idx].memmap_ram_bytes(), MIB);
    assert_eq!(n.pagemaps()[idx].altmap_pages(), 0);
    for pfn in [(4 * GIB) >> 12, ((4 * GIB + 128 * MIB) >> 12) - 1] {
        let p = n.page(pfn).unwrap();
        assert!(p.is_device() && p.is_reserved());
        assert_eq!(
            (p.zone(), p.refcount(), p.pagemap()),
            (ZoneId::Device, 1, Some(idx))
        );
        assert_eq!(
            n.free_page(pfn).unwrap_err().reason,
            BadPageReason::DevicePage
        );
    }
    let mut b = String::new();
    n.write_buddyinfo(&mut b).unwrap();
    assert!(
        !b.contains("Device"),
        "no buddyinfo row for ZONE_DEVICE:\n{b}"
    );
    let mut z = String::new();
    n.write_zoneinfo(&mut z).unwrap();
    assert!(z.contains("Node 0, zone   Device"), "{z}");
    settle(&n);
    drain_ram_and_check(&mut n);
}

#[test]
#[cfg_attr(miri, ignore = "slow under Miri: see README")]
fn altmap_puts_the_memmap_on_the_device() {
    let size = if cfg!(miri) { 128 * MIB } else { 2 * GIB };
    let mut n = pc_node(64);
    let free = n.nr_free_pages();
    let opts = MemremapOptions::new(size);
    assert_eq!(opts.altmap, size > GIB);
    let idx = n.memremap_pages(8 * GIB, size, opts.altmap(true)).unwrap();
    let sections = size / (128 * MIB);
    let pm = &n.pagemaps()[idx];
    assert_eq!(pm.altmap_pages(), sections * 256);
    assert_eq!(pm.memmap_ram_bytes(), 0);
    assert_eq!(n.memmap_device_bytes(), sections * MIB);
    assert_eq!(n.nr_free_pages(), free, "no RAM spent on the memmap");
    assert_eq!(n.platform().storage.last().unwrap().0, 8 * GIB);
    let first = n.page((8 * GIB) >> 12).unwrap();
    assert!(
        first
            .flags()
            .contains(PageFlags::MEMMAP.union(PageFlags::DEVICE))
    );
    let after = n.page(((8 * GIB) >> 12) + sections * 256).unwrap();
    assert!(!after.flags().contains(PageFlags::MEMMAP) && after.is_device());
    assert_eq!(n.nodes()[0].zone(ZoneId::Device).spanned(), size >> 12);
    assert_eq!(n.nodes()[0].zone(ZoneId::Device).present(), 0);
    assert_eq!(n.device_pages(), size >> 12);
    let mut m = String::new();
    n.write_meminfo(&mut m).unwrap();
    assert!(m.contains(&format!("MemmapOnDevice: {:>8} kB\n", sections * 1024)));
    settle(&n);
}

#[test]
#[cfg_attr(miri, ignore = "slow under Miri: see README")]
fn memremap_refusals() {
    let mut n = pc_node(64);
    n.memremap_pages(4 * GIB, 128 * MIB, MemremapOptions::new(0))
        .unwrap();
    let o = MemremapOptions::new(0);
    assert_eq!(
        n.memremap_pages(32 * MIB, 64 * MIB, o),
        Err(MemremapError::IntersectsRam {
            start: MIB,
            end: 64 * MIB
        })
    );
    assert_eq!(
        n.memremap_pages(4 * GIB + 64 * MIB, 128 * MIB, o),
        Err(MemremapError::IntersectsPagemap { index: 0 })
    );
    assert_eq!(
        n.memremap_pages(8 * GIB + 1, 4096, o),
        Err(MemremapError::Misaligned)
    );
    assert_eq!(n.memremap_pages(8 * GIB, 0, o), Err(MemremapError::Empty));
    assert_eq!(
        n.memremap_pages((1 << 52) - 4096, 8192, o),
        Err(MemremapError::OutOfRange)
    );
    assert_eq!(
        n.memremap_pages(u64::MAX - 4095, 4096, o),
        Err(MemremapError::OutOfRange)
    );
    n.platform_mut().fail_map = true;
    assert!(matches!(
        n.memremap_pages(8 * GIB, 128 * MIB, o),
        Err(MemremapError::Map(_))
    ));
    assert!(
        !n.pfn_valid((8 * GIB) >> 12),
        "a refused range leaves no sections"
    );
    assert_eq!(n.pagemaps().len(), 1);
    let e = MemremapError::IntersectsRam {
        start: MIB,
        end: 64 * MIB,
    };
    assert_eq!(
        e.to_string(),
        "range intersects System RAM [mem 0x0000000000100000-0x0000000003ffffff]"
    );
    settle(&n);
}

static PAGE_FREE_CALLS: AtomicU64 = AtomicU64::new(0);
static PAGE_FREE_LAST: AtomicU64 = AtomicU64::new(0);

fn record_page_free(_pgmap: usize, pfn: u64) {
    PAGE_FREE_CALLS.fetch_add(1, Ordering::SeqCst);
    PAGE_FREE_LAST.store(pfn, Ordering::SeqCst);
}

#[test]
fn device_page_lifetime_runs_page_free() {
    let mut n = pc_node(64);
    let idx = n
        .memremap_pages(
            4 * GIB,
            128 * MIB,
            MemremapOptions::new(0).page_free(record_page_free),
        )
        .unwrap();
    let pfn = ((4 * GIB) >> 12) + 77;
    assert_eq!(n.put_page(pfn), Err(PageRefError::IdleDevicePage));
    assert_eq!(n.get_page(pfn), Ok(2));
    assert_eq!(n.get_page(pfn), Ok(3));
    assert_eq!(n.put_page(pfn), Ok(2));
    assert_eq!(PAGE_FREE_CALLS.load(Ordering::SeqCst), 0);
    assert_eq!(n.put_page(pfn), Ok(1));
    assert_eq!(PAGE_FREE_CALLS.load(Ordering::SeqCst), 1);
    assert_eq!(PAGE_FREE_LAST.load(Ordering::SeqCst), pfn);
    assert_eq!(n.pagemaps()[idx].page_free_calls(), 1);
    // Never into the buddy allocator, whatever the count.
    assert_eq!(n.get_page(pfn), Ok(2));
    assert_eq!(
        n.free_page(pfn).unwrap_err().reason,
        BadPageReason::DevicePage
    );
    assert_eq!(
        n.free_pages(pfn & !7, 3).unwrap_err().reason,
        BadPageReason::DevicePage
    );
    assert_eq!(n.put_page(pfn), Ok(1));
    assert_eq!(
        n.pagemap_of(pfn).unwrap().range(),
        (4 * GIB, 4 * GIB + 128 * MIB)
    );
    settle(&n);
}

#[test]
#[cfg_attr(miri, ignore = "slow under Miri: see README")]
fn pmem_below_ram_shares_a_section() {
    // memmap=64M!256M on a 512 MiB machine: RAM on both sides inside the same section.
    let mut n = node(
        &[(0x1000, 0x9f000), (MIB, 256 * MIB), (320 * MIB, 512 * MIB)],
        &[],
    );
    let sections = n.sparse().present_sections();
    n.memremap_pages(256 * MIB, 64 * MIB, MemremapOptions::new(64 * MIB))
        .unwrap();
    assert_eq!(
        n.sparse().present_sections(),
        sections,
        "section already present"
    );
    assert_eq!(
        n.nodes()[0].zone(ZoneId::Device).spanned(),
        (64 * MIB) >> 12
    );
    assert_eq!(n.device_pages(), (64 * MIB) >> 12);
    for pfn in [((256 * MIB) >> 12) - 1, (320 * MIB) >> 12] {
        assert!(!n.page(pfn).unwrap().is_device());
    }
    assert!(n.page((256 * MIB) >> 12).unwrap().is_device());
    assert_eq!(n.max_pfn(), (512 * MIB) >> 12);
    settle(&n);
    drain_ram_and_check(&mut n);
}

#[test]
#[cfg_attr(miri, ignore = "slow under Miri: see README")]
fn hot_add_above_a_device_range_moves_max_pfn_and_normal() {
    let mut n = pc_node(64);
    n.memremap_pages(4 * GIB, 128 * MIB, MemremapOptions::new(0))
        .unwrap();
    let size = if cfg!(miri) { 128 * MIB } else { 256 * MIB };
    let start = 4 * GIB + 128 * MIB;
    let handed = n.add_and_online_memory(0, start, size).unwrap();
    let pages = size >> 12;
    let memmap = pages / 128; // 1 MiB per 128 MiB, on the range itself
    assert_eq!(handed, pages - memmap);
    assert_eq!(n.max_pfn(), (start + size) >> 12);
    let normal = n.nodes()[0].zone(ZoneId::Normal);
    assert_eq!(normal.managed(), pages - memmap);
    assert_eq!(normal.present(), pages);
    assert_eq!(normal.end_pfn(), n.max_pfn());
    assert!(normal.watermarks().min > 0);
    assert_eq!(n.platform().ram_maps, vec![(start, size)]);
    assert_eq!(n.platform().storage.last().unwrap().0, start);
    let r = n.hotplug_ranges()[0];
    assert!(r.online && r.memmap_pages == memmap);
    settle(&n);
    drain_ram_and_check(&mut n);
}

#[test]
#[cfg_attr(miri, ignore = "slow under Miri: see README")]
fn device_first_then_ram_above_it_spans_across_the_device() {
    let mut n = node(&[(MIB, 64 * MIB), (4 * GIB, 4 * GIB + 128 * MIB)], &[]);
    n.memremap_pages(8 * GIB, 128 * MIB, MemremapOptions::new(0))
        .unwrap();
    n.add_and_online_memory(0, 16 * GIB, 128 * MIB).unwrap();
    let normal = n.nodes()[0].zone(ZoneId::Normal);
    assert_eq!(normal.start_pfn(), (4 * GIB) >> 12);
    assert_eq!(normal.end_pfn(), (16 * GIB + 128 * MIB) >> 12);
    assert!(
        normal.spans((8 * GIB) >> 12),
        "Normal's span covers the device range"
    );
    assert_eq!(normal.present(), 2 * 32768);
    settle(&n);
    drain_ram_and_check(&mut n);
}

#[test]
#[cfg_attr(miri, ignore = "slow under Miri: see README")]
fn hot_add_below_a_device_range() {
    let mut n = pc_node(64);
    n.memremap_pages(8 * GIB, 128 * MIB, MemremapOptions::new(0))
        .unwrap();
    n.add_and_online_memory(0, 4 * GIB, 128 * MIB).unwrap();
    assert_eq!(n.max_pfn(), (4 * GIB + 128 * MIB) >> 12);
    assert_eq!(n.nodes()[0].zone(ZoneId::Normal).end_pfn(), n.max_pfn());
    assert!(!n.nodes()[0].zone(ZoneId::Normal).spans((8 * GIB) >> 12));
    settle(&n);
    drain_ram_and_check(&mut n);
}

#[test]
#[cfg_attr(miri, ignore = "slow under Miri: see README")]
fn hot_add_refusals() {
    let mut n = pc_node(64);
    n.memremap_pages(4 * GIB, 128 * MIB, MemremapOptions::new(0))
        .unwrap();
    assert!(matches!(
        n.add_memory(0, 32 * MIB, 128 * MIB),
        Err(HotplugError::OverlapsRam { .. })
    ));
    assert_eq!(
        n.add_memory(0, 4 * GIB + 64 * MIB, 128 * MIB),
        Err(HotplugError::OverlapsPagemap { index: 0 })
    );
    n.add_memory(0, 8 * GIB, 128 * MIB).unwrap();
    assert!(matches!(
        n.add_memory(0, 8 * GIB, 128 * MIB),
        Err(HotplugError::OverlapsRam { .. })
    ));
    assert!(matches!(
        n.memremap_pages(8 * GIB, 128 * MIB, MemremapOptions::new(0)),
        Err(MemremapError::IntersectsRam { .. })
    ));
    // Offline until onlined: present but not yet counted, no free pages.
    assert_eq!(n.nodes()[0].zone(ZoneId::Normal).present(), 0);
    assert!(
        n.page(((8 * GIB) >> 12) + 1000)
            .is_none_or(|p| p.is_reserved())
    );
    assert_eq!(n.online_pages(1, 2), Err(HotplugError::NotAdded));
    n.platform_mut().fail_map = true;
    assert!(matches!(
        n.add_memory(0, 12 * GIB, 128 * MIB),
        Err(HotplugError::Map(_))
    ));
    assert!(!n.memblock().memory().intersects(12 * GIB, 12 * GIB + 1));
    settle(&n);
    n.online_pages((8 * GIB) >> 12, 32768).unwrap();
    assert_eq!(
        n.online_pages((8 * GIB) >> 12, 32768),
        Err(HotplugError::NotAdded)
    );
    settle(&n);
}

static KEPT: AtomicU64 = AtomicU64::new(0);

fn keep_reserved(_n: &mut Machine<FakePlatform>, _pfn: u64, order: u32) {
    KEPT.fetch_add(1 << order, Ordering::SeqCst);
}

fn other_callback(_n: &mut Machine<FakePlatform>, _pfn: u64, _order: u32) {}

#[test]
fn online_callback_keeps_pages_reserved_then_restore() {
    let mut n = pc_node(64);
    assert!(n.online_page_callback_is_generic());
    let stale = n.set_online_page_callback(other_callback).unwrap();
    n.restore_online_page_callback(stale).unwrap();
    assert_eq!(
        n.restore_online_page_callback(stale),
        Err(HotplugError::CallbackMismatch),
        "nothing to restore while the generic callback is set"
    );
    let token = n.set_online_page_callback(keep_reserved).unwrap();
    assert_eq!(
        n.set_online_page_callback(other_callback),
        Err(HotplugError::CallbackBusy)
    );
    let start = 4 * GIB;
    let handed = n.add_and_online_memory(0, start, 128 * MIB).unwrap();
    assert_eq!(KEPT.load(Ordering::SeqCst), handed);
    let normal = n.nodes()[0].zone(ZoneId::Normal);
    assert_eq!(
        (normal.present(), normal.managed(), normal.free_pages()),
        (32768, 0, 0)
    );
    settle(&n);
    assert_eq!(
        n.restore_online_page_callback(stale),
        Err(HotplugError::CallbackMismatch),
        "not the callback currently set"
    );
    n.restore_online_page_callback(token).unwrap();
    assert!(n.online_page_callback_is_generic());
    // The driver releases its pages later.
    let first = (start >> 12) + 256;
    n.generic_online_page(first, 8).unwrap();
    n.generic_online_page(first + 256, 8).unwrap();
    assert_eq!(n.nodes()[0].zone(ZoneId::Normal).managed(), 512);
    assert_eq!(
        n.generic_online_page(first, 8),
        Err(HotplugError::NotOnlining),
        "already released"
    );
    assert_eq!(
        n.generic_online_page(start >> 12, 0),
        Err(HotplugError::NotOnlining),
        "memmap"
    );
    assert_eq!(
        n.generic_online_page(0x200, 0),
        Err(HotplugError::NotOnlining),
        "boot RAM"
    );
    settle(&n);
    // Generic again: the next hot-add is freed into the buddy allocator.
    n.add_and_online_memory(0, start + 128 * MIB, 128 * MIB)
        .unwrap();
    assert_eq!(
        n.nodes()[0].zone(ZoneId::Normal).managed(),
        512 + 32768 - 256
    );
    settle(&n);
}

#[test]
#[cfg_attr(miri, ignore = "slow under Miri: see README")]
fn nvdimm_and_hot_add_together_never_reach_free_lists() {
    let mut n = node(
        &[(0x1000, 0x9f000), (MIB, 256 * MIB), (320 * MIB, 512 * MIB)],
        &[],
    );
    n.memremap_pages(256 * MIB, 64 * MIB, MemremapOptions::new(0))
        .unwrap();
    n.memremap_pages(4 * GIB, 128 * MIB, MemremapOptions::new(0).altmap(true))
        .unwrap();
    n.add_and_online_memory(0, 4 * GIB + 128 * MIB, 128 * MIB)
        .unwrap();
    // Churn: allocate and free mixed orders, device get/put in between.
    let mut live = Vec::new();
    for i in 0..2000u64 {
        if let Some(p) = n.alloc_pages(Gfp::KERNEL | Gfp::NOWARN, (i % 5) as u32) {
            live.push((p, (i % 5) as u32));
        }
        if i % 3 == 0
            && let Some((p, o)) = live.pop()
        {
            n.free_pages(p, o).unwrap();
        }
        let dev = ((4 * GIB) >> 12) + 300 + i % 50;
        n.get_page(dev).unwrap();
        n.put_page(dev).unwrap();
    }
    for (p, o) in live {
        n.free_pages(p, o).unwrap();
    }
    settle(&n);
    drain_ram_and_check(&mut n);
}

#[test]
#[cfg_attr(miri, ignore = "slow under Miri: see README")]
fn hot_add_below_4g_lands_in_dma32_and_can_share_a_section() {
    // 64 MiB at boot; hot-add 64-128 MiB (same section as boot RAM: no new memmap) and 2 GiB.
    let mut n = pc_node(64);
    let sections = n.sparse().present_sections();
    let handed = n.add_and_online_memory(0, 64 * MIB, 64 * MIB).unwrap();
    assert_eq!(n.sparse().present_sections(), sections);
    assert_eq!(
        handed,
        (64 * MIB) >> 12,
        "no memmap needed: every page onlined"
    );
    n.add_and_online_memory(0, 2 * GIB, 128 * MIB).unwrap();
    let dma32 = n.nodes()[0].zone(ZoneId::Dma32);
    assert_eq!(dma32.end_pfn(), (2 * GIB + 128 * MIB) >> 12);
    assert_eq!(dma32.present(), 0x3000 + 16384 + 32768);
    assert!(!n.nodes()[0].zone(ZoneId::Normal).is_populated());
    let p = n.alloc_pages(Gfp::DMA32, 10).unwrap();
    assert!(p < (4 * GIB) >> 12);
    n.free_pages(p, 10).unwrap();
    settle(&n);
    drain_ram_and_check(&mut n);
}

#[test]
#[cfg_attr(miri, ignore = "slow under Miri: see README")]
fn device_ranges_at_1_tib_and_64_tib() {
    let mut n = pc_node(64);
    let free = n.nr_free_pages();
    let tib = 1u64 << 40;
    n.memremap_pages(tib, 128 * MIB, MemremapOptions::new(0).altmap(true))
        .unwrap();
    n.memremap_pages(64 * tib, 128 * MIB, MemremapOptions::new(0).altmap(true))
        .unwrap();
    assert_eq!(n.nr_free_pages(), free, "altmap: no RAM spent");
    for base in [tib, 64 * tib] {
        let pfn = base >> 12;
        assert!(n.pfn_valid(pfn) && n.pfn_valid(pfn + 32767));
        assert!(!n.pfn_valid(pfn - 1) && !n.pfn_valid(pfn + 32768));
        let p = n.page(pfn + 5000).unwrap();
        assert!(p.is_device());
        assert_eq!(n.page_to_pfn(p), Some(pfn + 5000));
    }
    let dev = n.nodes()[0].zone(ZoneId::Device);
    assert_eq!(
        (dev.start_pfn(), dev.end_pfn()),
        (tib >> 12, (64 * tib + 128 * MIB) >> 12)
    );
    assert_eq!(dev.present(), 0);
    assert_eq!(n.device_pages(), 2 * 32768);
    assert_eq!(n.max_pfn(), (64 * MIB) >> 12);
    settle(&n);
}
