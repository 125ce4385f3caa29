//! Deferred struct page init (`Machine::init_numa_deferred` + `deferred_init_memmap`): the
//! machine it leaves is the one `init_numa` builds, page for page and counter for counter,
//! whether one CPU or several do the work; before it, the deferred pages have no struct
//! pages and the checker says so; memremap and hotplug finish it first. Both rules: Linux's
//! (the highest zone of each node) and this kernel's (every zone).
use mm::mm_init::{Deferral, InitOptions};
use mm::movable::CoreParams;
use mm::testing::{FakePlatform, memblock};
use mm::{Machine, MemremapOptions, Topology};

const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;

/// Two nodes of 3 GiB (node 0: 1 MiB-3 GiB) and 5 GiB (4-9 GiB), two CPUs each.
fn layout() -> (mm::Memblock, Topology) {
    let mut mb = memblock(&[(MIB, 3 * GIB), (4 * GIB, 9 * GIB)], &[(MIB, 3 * MIB)]);
    mb.set_node(4 * GIB, 5 * GIB, 1).unwrap();
    let topo = Topology::new(2, vec![10, 21, 21, 10], vec![vec![0, 1], vec![2, 3]]).unwrap();
    (mb, topo)
}

fn views<P: mm::Platform>(m: &Machine<P>) -> String {
    let mut s = String::new();
    m.write_zoneinfo(&mut s).unwrap();
    m.write_buddyinfo(&mut s).unwrap();
    m.write_meminfo(&mut s).unwrap();
    m.write_numa_hardware(&mut s).unwrap();
    s
}

fn deferred(cpus: usize) -> Machine<FakePlatform> {
    let (mb, topo) = layout();
    let platform = FakePlatform {
        parallel_cpus: cpus,
        ..FakePlatform::new()
    };
    Machine::init_numa_deferred(platform, mb, topo).unwrap()
}

/// The deferred init builds the eager machine whoever writes the struct pages: one or four
/// threads in `deferred_init_memmap`, background threads (`Platform::start_background`)
/// while the boot part allocates, or some items written by hand first. Before it, the
/// deferred pages have no struct pages and the checker says so.
#[test]
fn deferred_init_builds_the_same_machine_whoever_writes_it() {
    let (mb, topo) = layout();
    let full = Machine::init_numa(FakePlatform::new(), mb, topo).unwrap();
    let p = full.alloc_pages(mm::Gfp::KERNEL, 3).unwrap();
    full.free_pages(p, 3).unwrap();
    full.drain_all_pages();
    for (background_cpus, parallel_cpus, by_hand) in [(1, 1, false), (3, 4, false), (0, 2, true)] {
        let what = format!("{background_cpus} background, {parallel_cpus} parallel, {by_hand}");
        let (mb, topo) = layout();
        let platform = FakePlatform {
            parallel_cpus,
            background_cpus,
            ..FakePlatform::new()
        };
        let mut m = Machine::init_numa_deferred(platform, mb, topo).unwrap();
        // Two works went to the idle CPUs: the boot sections' struct pages, all written
        // and taken back before init returned, then the deferred ones.
        let [boot, work] = &m.platform().handed_out[..] else {
            panic!("{} works handed out, {what}", m.platform().handed_out.len());
        };
        let (boot, work) = (boot.clone(), work.clone());
        assert!(boot.pages() > 0 && boot.left() == 0, "{what}");
        assert_eq!(work.pages(), m.deferred_pages(), "{what}");
        // Node 0's highest zone is DMA32, node 1's Normal: each keeps its lower zones and
        // the first section (128 MiB) and a bit of its highest zone up to a section
        // boundary; the rest waits.
        let waiting = m.deferred_pages();
        assert!(waiting > 0, "something is deferred");
        assert!(!m.pfn_valid((5 * GIB) >> 12) && m.pfn_valid((4 * GIB) >> 12));
        if by_hand {
            // Some items written "on an idle CPU" before the boot CPU gets to them.
            let before = work.left();
            let n = core::cell::Cell::new(0);
            work.run(1, &|| {
                n.set(n.get() + 1);
                n.get() > 3
            });
            assert_eq!(work.left(), before - 3, "{what}");
        }
        // Still deferred for the checker, whatever threads have written by now.
        assert_eq!(
            m.check(),
            Err(mm::CheckError::DeferredInit { pages: waiting })
        );
        let p = m.alloc_pages(mm::Gfp::KERNEL, 3).unwrap();
        m.free_pages(p, 3).unwrap();
        let freed = m.deferred_init_memmap().unwrap();
        assert!(freed > 0 && freed <= waiting, "{what}");
        assert_eq!((work.left(), m.deferred_pages()), (0, 0), "{what}");
        assert_eq!(m.deferred_init_memmap().unwrap(), 0, "once");
        for t in m.platform().background.lock().drain(..) {
            t.join().unwrap();
        }
        m.drain_all_pages();
        m.check().unwrap();
        assert_eq!(views(&m), views(&full), "{what}");
        for pfn in (0..(9 * GIB) >> 12).step_by(4093) {
            assert_eq!(m.page(pfn), full.page(pfn), "pfn {pfn:#x}, {what}");
        }
    }
}

#[test]
fn memremap_and_hotplug_finish_a_pending_deferred_init_first() {
    let mut m = deferred(1);
    assert!(m.deferred_pages() > 0);
    m.memremap_pages(10 * GIB, 128 * MIB, MemremapOptions::new(128 * MIB))
        .unwrap();
    assert_eq!(m.deferred_pages(), 0);
    m.check().unwrap();
    let mut m = deferred(2);
    m.add_memory(1, 12 * GIB, 256 * MIB).unwrap();
    assert_eq!(m.deferred_pages(), 0);
    m.check().unwrap();
}

#[test]
fn a_node_too_small_to_defer_is_initialised_whole() {
    let m = Machine::init_numa_deferred(
        FakePlatform::new(),
        memblock(&[(MIB, 200 * MIB)], &[]),
        Topology::single(),
    )
    .unwrap();
    // DMA32 (16-200 MiB) is the highest zone: the first section boundary more than a
    // section past its start (16 + 128 MiB) is 256 MiB, past the end.
    assert_eq!(m.deferred_pages(), 0);
    m.check().unwrap();
}

/// One node with DMA, DMA32 (1 MiB-3 GiB) and Normal (4-6 GiB), QEMU's hole below 4 GiB.
fn one_node_three_zones() -> mm::Memblock {
    memblock(
        &[(0x1000, 0x9f000), (MIB, 3 * GIB), (4 * GIB, 6 * GIB)],
        &[(MIB, 3 * MIB)],
    )
}

fn build(
    mb: mm::Memblock,
    deferred: Deferral,
    core: CoreParams,
    cpus: usize,
) -> Machine<FakePlatform> {
    let platform = FakePlatform {
        parallel_cpus: cpus,
        ..FakePlatform::new()
    };
    let opts = InitOptions {
        deferred,
        core,
        ..InitOptions::default()
    };
    Machine::init_with(platform, mb, Topology::single(), &opts).unwrap()
}

/// After the deferred init, `m` is `full`, page for page and view for view.
fn assert_same_machine(m: &mut Machine<FakePlatform>, full: &Machine<FakePlatform>, what: &str) {
    let waiting = m.deferred_pages();
    let freed = m.deferred_init_memmap().unwrap();
    assert!(freed <= waiting, "{what}");
    assert_eq!(m.deferred_pages(), 0, "{what}");
    m.drain_all_pages();
    m.check().unwrap();
    assert_eq!(views(m), views(full), "{what}");
    for pfn in (0..(6 * GIB) >> 12).step_by(4093) {
        assert_eq!(m.page(pfn), full.page(pfn), "pfn {pfn:#x}, {what}");
    }
}

#[test]
fn every_zone_defers_dma32_beyond_its_first_sections_and_linux_keeps_it() {
    let pfn = |a: u64| a >> 12;
    let linux = build(
        one_node_three_zones(),
        Deferral::HighestZone,
        CoreParams::default(),
        1,
    );
    // Linux: DMA32 whole, Normal's first section and a bit (to 4 GiB + 256 MiB).
    assert!(linux.pfn_valid(pfn(3 * GIB - MIB)) && linux.pfn_valid(pfn(4 * GIB + 200 * MIB)));
    assert!(!linux.pfn_valid(pfn(4 * GIB + 256 * MIB)));
    let every = build(
        one_node_three_zones(),
        Deferral::EveryZone,
        CoreParams::default(),
        1,
    );
    // Every zone: DMA (inside the first section) and DMA32's first 256 MiB, Normal as Linux.
    assert!(every.pfn_valid(pfn(MIB)) && every.pfn_valid(pfn(200 * MIB)));
    assert!(!every.pfn_valid(pfn(256 * MIB)) && !every.pfn_valid(pfn(3 * GIB - MIB)));
    assert!(every.pfn_valid(pfn(4 * GIB + 200 * MIB)));
    assert!(!every.pfn_valid(pfn(4 * GIB + 256 * MIB)));
    assert_eq!(
        every.deferred_pages() - linux.deferred_pages(),
        (3 * GIB - 256 * MIB) >> 12,
        "DMA32 from 256 MiB to 3 GiB waits as well"
    );
    // Address-limited allocations work before the deferred init, from DMA32's first part.
    let p = every.alloc_pages(mm::Gfp::DMA32, 4).unwrap();
    assert!(p < pfn(256 * MIB));
    every.free_pages(p, 4).unwrap();
    let p = every.alloc_pages(mm::Gfp::DMA, 0).unwrap();
    assert!(p < pfn(16 * MIB));
    every.free_pages(p, 0).unwrap();
}

#[test]
fn both_rules_build_the_eager_machine_on_one_or_four_cpus() {
    // movablecore=300M puts the Movable start (near 5.7 GiB) inside a section, which Normal
    // and Movable share: it is written at boot by either rule.
    let cores = [
        CoreParams::default(),
        CoreParams {
            required_movablecore: 300 * 256,
            ..CoreParams::default()
        },
    ];
    for core in cores {
        let full = build(one_node_three_zones(), Deferral::Off, core, 1);
        full.check().unwrap();
        for rule in [Deferral::HighestZone, Deferral::EveryZone] {
            for cpus in [1, 4] {
                let mut m = build(one_node_three_zones(), rule, core, cpus);
                assert!(m.deferred_pages() > 0);
                if let Some(z) = m
                    .zones()
                    .find(|z| z.id() == mm::ZoneId::Movable && z.spanned() > 0)
                {
                    let start = z.start_pfn();
                    assert!(start % (1 << 15) != 0, "{start:#x} inside a section");
                    assert!(m.pfn_valid(start) && m.pfn_valid(start - 1), "{rule:?}");
                } else {
                    assert_eq!(
                        core,
                        CoreParams::default(),
                        "movablecore=300M has a Movable zone"
                    );
                }
                let what = format!("{rule:?}, {cpus} CPUs, {core:?}");
                assert_same_machine(&mut m, &full, &what);
            }
        }
    }
}
