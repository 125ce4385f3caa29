//! Deferred struct page init (`Machine::init_numa_deferred` + `deferred_init_memmap`): the
//! machine it leaves is the one `init_numa` builds, page for page and counter for counter,
//! whether one CPU or several do the work; before it, the deferred pages have no struct
//! pages and the checker says so; memremap and hotplug finish it first.
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

#[test]
fn deferred_init_builds_the_same_machine_on_one_or_four_cpus() {
    for cpus in [1, 4] {
        let (mb, topo) = layout();
        let full = Machine::init_numa(FakePlatform::new(), mb, topo).unwrap();
        let p = full.alloc_pages(mm::Gfp::KERNEL, 3).unwrap();
        full.free_pages(p, 3).unwrap();
        full.drain_all_pages();
        full.check().unwrap();
        let mut m = deferred(cpus);
        // Node 0's highest zone is DMA32, node 1's Normal: each keeps its lower zones and
        // the first section (128 MiB) and a bit of its highest zone up to a section
        // boundary; the rest waits.
        let waiting = m.deferred_pages();
        assert!(waiting > 0, "something is deferred");
        assert!(!m.pfn_valid((5 * GIB) >> 12) && m.pfn_valid((4 * GIB) >> 12));
        assert_eq!(
            m.check(),
            Err(mm::CheckError::DeferredInit { pages: waiting })
        );
        // The boot part allocates and frees (as `full` did).
        let p = m.alloc_pages(mm::Gfp::KERNEL, 3).unwrap();
        m.free_pages(p, 3).unwrap();
        let freed = m.deferred_init_memmap().unwrap();
        assert!(freed > 0 && freed <= waiting);
        assert_eq!(m.deferred_pages(), 0);
        assert_eq!(m.deferred_init_memmap().unwrap(), 0, "once");
        m.drain_all_pages();
        m.check().unwrap();
        assert_eq!(views(&m), views(&full), "{cpus} CPUs");
        for pfn in (0..(9 * GIB) >> 12).step_by(4093) {
            assert_eq!(m.page(pfn), full.page(pfn), "pfn {pfn:#x}, {cpus} CPUs");
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
