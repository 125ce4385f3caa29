//! ZONE_MOVABLE in the running allocator: who may allocate from it (`GFP_HIGHUSER_MOVABLE`
//! only), where it sits in the zonelists, what it reserves in the zones below it, and which
//! zone hot-added memory is onlined into (Linux's `zone_for_pfn_range`: online,
//! online_kernel, online_movable, `movable_node`).

use mm::mm_init::InitOptions;
use mm::movable::CoreParams;
use mm::testing::{FakePlatform, memblock};
use mm::{Gfp, Machine, OnlineType, Topology, ZoneId};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const M: u64 = 256; // pages per MiB

/// QEMU's 2 GiB PC map (e820 usable 0-0x9fbff and 1 MiB-0x7ffdffff, page 0 dropped), with
/// the given ZONE_MOVABLE parameters.
fn qemu_2g(core: CoreParams) -> Machine<FakePlatform> {
    let mb = memblock(&[(0x1000, 0x9f000), (0x10_0000, 0x7ffe_0000)], &[]);
    let opts = InitOptions {
        core,
        ..InitOptions::default()
    };
    Machine::init_with(FakePlatform::new(), mb, Topology::single(), &opts).expect("init")
}

fn movablecore_256m() -> Machine<FakePlatform> {
    qemu_2g(CoreParams {
        required_movablecore: 256 * M,
        ..CoreParams::default()
    })
}

fn zone_of(m: &Machine<FakePlatform>, pfn: u64) -> ZoneId {
    m.page(pfn).expect("struct page").zone()
}

#[test]
fn only_highuser_movable_allocations_reach_zone_movable() {
    let m = movablecore_256m();
    let node = m.node(0).unwrap();
    let movable = node.zone(ZoneId::Movable);
    assert_eq!(
        movable.start_pfn(),
        0x70000,
        "Linux: Node 0: 0x0000000070000000"
    );
    assert!(movable.managed() > 0);
    // The zonelist is the managed zones from the highest down: Movable first.
    let zl: Vec<ZoneId> = node.zonelist().iter().map(|z| z.zone).collect();
    assert_eq!(zl, [ZoneId::Movable, ZoneId::Dma32, ZoneId::Dma]);
    // Linux's policy_zone never is Movable.
    let mut lines = String::new();
    m.write_zonelist_summary(&mut lines).unwrap();
    assert!(lines.contains("Policy zone: DMA32\n"), "{lines}");

    // Kernel allocations (any order, any flags without MOVABLE|HIGHMEM) never land there,
    // even when all of the kernel zones are used up.
    let mut kernel = Vec::new();
    for gfp in [Gfp::KERNEL, Gfp::MOVABLE, Gfp::HIGHMEM] {
        while let Some(pfn) = m.alloc_pages(gfp | Gfp::NOWARN | Gfp::MEMALLOC, 3) {
            assert_ne!(zone_of(&m, pfn), ZoneId::Movable, "{gfp:?} pfn {pfn:#x}");
            kernel.push((pfn, 3));
        }
    }
    assert!(kernel.len() > 1000);
    // The Movable zone is still untouched and serves the movable allocations.
    let free_before = movable.free_pages();
    assert_eq!(free_before, movable.managed());
    let pfn = m
        .alloc_pages(Gfp::HIGHUSER_MOVABLE, 0)
        .expect("movable page");
    assert_eq!(zone_of(&m, pfn), ZoneId::Movable);
    assert!(movable.spans(pfn));
    m.free_pages(pfn, 0).unwrap();
    for (pfn, order) in kernel {
        m.free_pages(pfn, order).unwrap();
    }
    m.drain_all_pages();
    m.check().unwrap();
}

#[test]
fn movable_allocations_fall_back_to_the_kernel_zones() {
    let m = movablecore_256m();
    let movable = m.node(0).unwrap().zone(ZoneId::Movable);
    let mut got = Vec::new();
    // Movable first: every block of the zone before anything else.
    while let Some(pfn) = m.alloc_pages(Gfp::HIGHUSER_MOVABLE | Gfp::NOWARN, 10) {
        got.push(pfn);
        if zone_of(&m, pfn) != ZoneId::Movable {
            break;
        }
    }
    let last = *got.last().unwrap();
    assert_eq!(zone_of(&m, last), ZoneId::Dma32, "then the zone below it");
    assert!(
        movable.free_pages() < movable.watermarks().low + 1024,
        "Movable was used down to its watermark first: {} free",
        movable.free_pages()
    );
    for pfn in got {
        m.free_pages(pfn, 10).unwrap();
    }
    m.check().unwrap();
}

#[test]
fn the_zones_below_keep_a_reserve_from_movable_allocations() {
    let m = movablecore_256m();
    let node = m.node(0).unwrap();
    let (dma, dma32, movable) = (
        node.zone(ZoneId::Dma),
        node.zone(ZoneId::Dma32),
        node.zone(ZoneId::Movable),
    );
    // setup_per_zone_lowmem_reserve: zone i keeps sum(managed of i+1..=j) / ratio[i].
    let r32 = dma32.lowmem_reserve();
    assert_eq!(r32[ZoneId::Movable.index()], movable.managed() / 256);
    assert_eq!(r32[ZoneId::Normal.index()], 0);
    let rd = dma.lowmem_reserve();
    assert_eq!(
        rd[ZoneId::Movable.index()],
        (dma32.managed() + movable.managed()) / 256
    );
    assert_eq!(movable.lowmem_reserve(), [0; 5]);
}

#[test]
fn kernelcore_mirror_and_no_parameters() {
    // No parameter: no Movable zone, Linux's lines have none.
    let m = qemu_2g(CoreParams::default());
    assert_eq!(m.node(0).unwrap().zone(ZoneId::Movable).spanned(), 0);
    let mut out = String::new();
    m.write_zone_ranges(&mut out).unwrap();
    assert!(out.contains("Movable zone start for each node\nEarly memory node ranges\n"));
    // movablecore=100%: nothing left for the kernel, so no Movable zone (Linux's quirk).
    let m = qemu_2g(CoreParams {
        required_movablecore_percent: 100,
        ..CoreParams::default()
    });
    assert_eq!(m.node(0).unwrap().zone(ZoneId::Movable).spanned(), 0);
}

/// 1 GiB at 0x1_0000_0000 on a 2 GiB machine; optionally with `movable_node`.
fn hot_machine(movable_node: bool) -> Machine<FakePlatform> {
    qemu_2g(CoreParams {
        movable_node,
        ..CoreParams::default()
    })
}

#[test]
fn online_kernel_and_online_movable() {
    let mut m = hot_machine(false);
    let base = 4 * GIB;
    m.add_memory(0, base, 256 * MIB).unwrap();
    m.add_memory(0, base + 256 * MIB, 256 * MIB).unwrap();
    let (a, b) = (base >> 12, (base + 256 * MIB) >> 12);
    let n = (256 * MIB) >> 12;
    // While offline, the pages carry the zone of their address.
    assert_eq!(zone_of(&m, a + 100), ZoneId::Normal);
    m.online_pages_type(a, n, OnlineType::Movable).unwrap();
    m.online_pages_type(b, n, OnlineType::Kernel).unwrap();
    m.check().unwrap();
    let node = m.node(0).unwrap();
    let (normal, movable) = (node.zone(ZoneId::Normal), node.zone(ZoneId::Movable));
    assert_eq!((movable.start_pfn(), movable.end_pfn()), (a, a + n));
    assert_eq!((normal.start_pfn(), normal.end_pfn()), (b, b + n));
    assert_eq!(movable.present(), n);
    assert_eq!(zone_of(&m, a + 100), ZoneId::Movable);
    assert_eq!(zone_of(&m, b + 100), ZoneId::Normal);
    // The memmap at the start of the movable range is in its zone, present, not managed.
    assert_eq!(zone_of(&m, a), ZoneId::Movable);
    assert!(movable.managed() < n && movable.managed() > n - 2048);
    let zl: Vec<ZoneId> = node.zonelist().iter().map(|z| z.zone).collect();
    assert_eq!(
        zl,
        [ZoneId::Movable, ZoneId::Normal, ZoneId::Dma32, ZoneId::Dma]
    );
    // Kernel allocations get Normal, movable ones Movable.
    let k = m.alloc_pages(Gfp::KERNEL, 0).unwrap();
    let mv = m.alloc_pages(Gfp::HIGHUSER_MOVABLE, 0).unwrap();
    assert_eq!(
        (zone_of(&m, k), zone_of(&m, mv)),
        (ZoneId::Normal, ZoneId::Movable)
    );
    m.free_pages(k, 0).unwrap();
    m.free_pages(mv, 0).unwrap();
    m.check().unwrap();
}

#[test]
fn default_online_policy_is_linuxs() {
    let n = (256 * MIB) >> 12;
    let pfn = |i: u64| (4 * GIB + i * 256 * MIB) >> 12;
    // No Movable zone nearby and no movable_node: a kernel zone.
    let mut m = hot_machine(false);
    m.add_memory(0, 4 * GIB, 256 * MIB).unwrap();
    assert!(!m.online_to_movable(OnlineType::Online, 0, pfn(0), pfn(0) + n));
    m.online_pages(pfn(0), n).unwrap();
    assert_eq!(zone_of(&m, pfn(0) + 5), ZoneId::Normal);
    // movable_node: hot-added memory goes Movable by default.
    let mut m = hot_machine(true);
    m.add_memory(0, 4 * GIB, 256 * MIB).unwrap();
    m.online_pages(pfn(0), n).unwrap();
    assert_eq!(zone_of(&m, pfn(0) + 5), ZoneId::Movable);
    m.check().unwrap();
    // A range inside the Movable zone's span (and outside any kernel zone's) inherits it;
    // one both span goes to the kernel zone without movable_node.
    let mut m = hot_machine(false);
    for i in 0..4 {
        m.add_memory(0, 4 * GIB + i * 256 * MIB, 256 * MIB).unwrap();
    }
    m.online_pages_type(pfn(0), n, OnlineType::Movable).unwrap();
    m.online_pages_type(pfn(2), n, OnlineType::Movable).unwrap();
    assert!(m.online_to_movable(OnlineType::Online, 0, pfn(1), pfn(1) + n));
    m.online_pages(pfn(1), n).unwrap();
    assert_eq!(zone_of(&m, pfn(1) + 5), ZoneId::Movable);
    m.online_pages_type(pfn(3), n, OnlineType::Kernel).unwrap();
    m.check().unwrap();
    let movable = m.node(0).unwrap().zone(ZoneId::Movable);
    assert_eq!((movable.start_pfn(), movable.end_pfn()), (pfn(0), pfn(3)));
    assert_eq!(movable.present(), 3 * n);
}

#[test]
fn online_movable_on_a_movablecore_machine_extends_its_zone() {
    let mut m = movablecore_256m();
    let before = m.node(0).unwrap().zone(ZoneId::Movable).present();
    m.add_memory(0, 4 * GIB, 128 * MIB).unwrap();
    let n = (128 * MIB) >> 12;
    m.online_pages_type((4 * GIB) >> 12, n, OnlineType::Movable)
        .unwrap();
    let z = m.node(0).unwrap().zone(ZoneId::Movable);
    assert_eq!(z.start_pfn(), 0x70000);
    assert_eq!(z.end_pfn(), ((4 * GIB) >> 12) + n);
    assert_eq!(z.present(), before + n);
    m.check().unwrap();
}
