//! The memory manager inside the real kernel, with 6 GiB of RAM and an NVDIMM:
//! zone placement, the zonelist, exhaustion of every zone, device page
//! lifetime, and a million-operation stress run with the invariant checker.
//! A cold-plugged DIMM stays offline (test kernels do not scan the hotplug
//! controller at boot) until the stress run hot-adds it halfway through.
//! runner: --mem 6G --nvdimm 128M --slots 2 --maxmem 8G
//! runner: --qemu -object --qemu memory-backend-ram,id=hp,size=256M
//! runner: --qemu -device --qemu pc-dimm,id=hpd,memdev=hp
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(kernel::testing::test_runner)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

use alloc::vec::Vec;
use kernel::memory;
use mm::{Gfp, ZoneId};

kernel::test_kernel!();

const DMA_END: u64 = 0x1000; // pfn of 16 MiB
const DMA32_END: u64 = 0x10_0000; // pfn of 4 GiB

#[test_case]
fn normal_zone_exists_and_is_used_first() {
    let mut g = memory::lock();
    let n = g.as_mut().expect("mm up");
    assert!(n.nodes()[0].zone(ZoneId::Normal).present() > 0);
    let pfn = n.alloc_pages(Gfp::KERNEL, 0).expect("a page");
    assert!(pfn >= DMA32_END, "GFP_KERNEL took pfn {pfn:#x} below 4 GiB");
    n.free_pages(pfn, 0).expect("free");
}

#[test_case]
fn dma_and_dma32_requests_land_below_their_limits() {
    let mut g = memory::lock();
    let n = g.as_mut().expect("mm up");
    for order in [0, 3, 9] {
        let dma = n.alloc_pages(Gfp::DMA, order).expect("dma block");
        assert!(
            dma + (1 << order) <= DMA_END,
            "DMA block {dma:#x} order {order}"
        );
        let dma32 = n.alloc_pages(Gfp::DMA32, order).expect("dma32 block");
        assert!(
            dma32 + (1 << order) <= DMA32_END,
            "DMA32 block {dma32:#x} order {order}"
        );
        n.free_pages(dma, order).expect("free");
        n.free_pages(dma32, order).expect("free");
    }
}

#[test_case]
fn dma_zone_exhaustion_and_recovery() {
    exhaust(ZoneId::Dma, Gfp::DMA);
}

#[test_case]
fn dma32_zone_exhaustion_and_recovery() {
    // DMA32 requests fall back to DMA: both are drained, DMA32's counters checked.
    exhaust(ZoneId::Dma32, Gfp::DMA32);
}

#[test_case]
fn normal_zone_exhaustion_and_recovery() {
    exhaust(ZoneId::Normal, Gfp::KERNEL);
}

/// Exhaust `zone` through `gfp` (the zonelist also drains the zones below it), check
/// the refusal and the emergency reserve, free everything and compare counters.
fn exhaust(zone: ZoneId, gfp: Gfp) {
    let mut blocks: Vec<(u64, u32)> = Vec::with_capacity(1 << 17);
    let mut g = memory::lock();
    let n = g.as_mut().expect("mm up");
    n.drain_pages();
    let free_before = n.nodes()[0].zone(zone).free_pages();
    let total_before = n.nr_free_pages();
    // Big blocks first, then smaller ones, until the watermarks refuse.
    for order in (0..=10).rev() {
        while blocks.len() < blocks.capacity() {
            match n.alloc_pages(gfp | Gfp::NOWARN, order) {
                Some(pfn) => blocks.push((pfn, order)),
                None => break,
            }
        }
    }
    let wm = n.nodes()[0].zone(zone).watermarks();
    let left = n.nodes()[0].zone(zone).free_pages();
    assert!(
        left <= wm.min + 1024,
        "{zone:?} refused with {left} free, min {}",
        wm.min
    );
    assert!(
        n.alloc_pages(gfp | Gfp::NOWARN, 0).is_none(),
        "{zone:?}: refused, then accepted"
    );
    let emergency = n.alloc_pages(gfp | Gfp::MEMALLOC | Gfp::NOWARN, 0);
    assert!(
        emergency.is_some() || left == 0,
        "{zone:?}: no emergency page below min"
    );
    if let Some(pfn) = emergency {
        blocks.push((pfn, 0));
    }
    n.check().expect("consistent when exhausted");
    for (pfn, order) in blocks.drain(..) {
        n.free_pages(pfn, order).expect("free");
    }
    n.drain_pages();
    assert_eq!(
        n.nodes()[0].zone(zone).free_pages(),
        free_before,
        "{zone:?} free pages not restored"
    );
    assert_eq!(n.nr_free_pages(), total_before);
    n.check().expect("consistent after freeing");
}

#[test_case]
fn device_pages_never_reach_the_buddy_allocator() {
    let mut g = memory::lock();
    let n = g.as_mut().expect("mm up");
    let map = n.pagemaps().first().expect("the NVDIMM's pagemap");
    let pfn = map.start_pfn() + 100;
    assert_eq!(n.page(pfn).map(|p| p.zone()), Some(ZoneId::Device));
    assert!(
        n.free_pages(pfn, 0).is_err(),
        "a device page was accepted by free_pages"
    );
    let calls = kernel::pmem::PAGE_FREE_CALLS.load(core::sync::atomic::Ordering::Relaxed);
    assert_eq!(n.get_page(pfn), Ok(2));
    assert_eq!(n.get_page(pfn), Ok(3));
    assert_eq!(n.put_page(pfn), Ok(2));
    assert_eq!(
        kernel::pmem::PAGE_FREE_CALLS.load(core::sync::atomic::Ordering::Relaxed),
        calls
    );
    assert_eq!(n.put_page(pfn), Ok(1));
    assert_eq!(
        kernel::pmem::PAGE_FREE_CALLS.load(core::sync::atomic::Ordering::Relaxed),
        calls + 1
    );
    assert!(n.put_page(pfn).is_err(), "put_page on an idle device page");
    assert_eq!(n.device_pfns_in_free_lists(), 0);
    assert_eq!(n.nodes()[0].zone(ZoneId::Device).free_pages(), 0);
    n.check().expect("consistent");
}

#[test_case]
fn bad_frees_change_nothing() {
    let mut g = memory::lock();
    let n = g.as_mut().expect("mm up");
    n.drain_pages();
    let free = n.nr_free_pages();
    let pfn = n.alloc_pages(Gfp::KERNEL, 2).expect("block");
    assert!(n.free_pages(pfn, 1).is_err(), "wrong order accepted");
    assert!(n.free_pages(pfn + 1, 0).is_err(), "tail page accepted");
    assert!(n.free_pages(1 << 39, 0).is_err(), "invalid pfn accepted");
    n.free_pages(pfn, 2).expect("right free");
    assert!(n.free_pages(pfn, 2).is_err(), "double free accepted");
    n.drain_pages();
    assert_eq!(n.nr_free_pages(), free);
    n.check().expect("consistent");
}

#[test_case]
fn a_million_random_operations_stay_consistent() {
    let dimm = kernel::memhp::slots()
        .into_iter()
        .next()
        .expect("the cold-plugged DIMM");
    let rep = kernel::stress::run(1_000_000, 0x2545_f491, Some((dimm.base, dimm.size)))
        .expect("stress run consistent");
    assert!(rep.hot_added > 0, "the DIMM was not onlined");
    assert_eq!(rep.ops, 1_000_000);
    assert!(rep.checks >= 100);
    assert!(rep.device_refs > 0);
    assert_eq!(rep.free_before + rep.hot_added, rep.free_after);
    kernel::serial_print!(
        "[{} allocs, {} refused, {} device get/put, {} pages hot-added, {} checks, {} cycles/op] ",
        rep.allocs,
        rep.alloc_failures,
        rep.device_refs,
        rep.hot_added,
        rep.checks,
        rep.cycles / rep.ops
    );
}
