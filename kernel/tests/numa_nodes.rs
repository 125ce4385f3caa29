//! The memory manager on QEMU's four-node machine (the layout Linux 6.1 was compared on):
//! nodes of 512 MiB, 512 MiB and 1 GiB, a memoryless fourth with a CPU, an NVDIMM on node
//! 2. Checks, inside the real kernel: the nodes and their zones, Linux's fallback orders,
//! each node's memmap and pg_data stored in that node's own memory, THISNODE and fallback allocation,
//! the NVDIMM in node 2's ZONE_DEVICE, and the invariant checker.
//! runner: --smp 4 --numa 512M,cpus=0 --numa 512M,cpus=1 --numa 1G,cpus=2 --numa 0,cpus=3
//! runner: --nvdimm 128M,node=2 --slots 1 --maxmem 3968M
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(kernel::testing::test_runner)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

use kernel::memory;
use mm::{Gfp, MAX_ORDER, ZoneId};

kernel::test_kernel!();

const MIB_PAGES: u64 = 256;

#[test_case]
fn four_nodes_with_their_zones() {
    let g = memory::lock();
    let n = g.as_ref().expect("mm up");
    assert_eq!(n.nodes().len(), 4);
    let present: [u64; 4] = core::array::from_fn(|i| n.nodes()[i].present());
    assert!(present[0] > 500 * MIB_PAGES && present[0] <= 512 * MIB_PAGES);
    assert_eq!(present[1], 512 * MIB_PAGES);
    assert!(present[2] > 1000 * MIB_PAGES);
    assert_eq!(present[3], 0, "node 3 is memoryless");
    assert!(n.nodes()[0].zone(ZoneId::Dma).is_populated());
    for nid in 1..4 {
        assert!(!n.nodes()[nid].zone(ZoneId::Dma).is_populated());
    }
    assert_eq!(n.nodes()[1].start_pfn(), 512 * MIB_PAGES);
    assert_eq!(n.pfn_to_nid(1024 * MIB_PAGES), Some(2));
    // Linux 6.1 on this machine: "Fallback order for Node 0: 0 1 2" ... "Node 3: 3 0 1 2".
    assert_eq!(n.nodes()[0].node_order(), [0, 1, 2]);
    assert_eq!(n.nodes()[1].node_order(), [1, 2, 0]);
    assert_eq!(n.nodes()[2].node_order(), [2, 0, 1]);
    assert_eq!(n.nodes()[3].node_order(), [3, 0, 1, 2]);
    assert_eq!(n.local_node(), 0, "the boot CPU (APIC 0) is on node 0");
    n.check().expect("consistent");
}

#[test_case]
fn each_nodes_memmap_lies_in_its_own_memory() {
    let g = memory::lock();
    let n = g.as_ref().expect("mm up");
    let mut seen = [false; 3];
    for (start, pages) in n.sparse().memmap_chunks() {
        let Some(nid) = n.pfn_to_nid(start) else {
            continue;
        };
        if n.page(start).is_some_and(|p| p.is_device()) {
            continue;
        }
        let pa = kernel::paging::translate(pages.as_ptr() as u64).expect("mapped memmap");
        assert_eq!(
            n.pfn_to_nid(pa >> 12),
            Some(nid),
            "the memmap of pfn {start:#x} (node {nid}) is at {pa:#x}"
        );
        seen[nid] = true;
    }
    assert_eq!(seen, [true; 3], "a memmap chunk for every node with memory");
    // And each node's pg_data (zones, counters, zonelist) lies in that node's memory too.
    for nid in 0..3 {
        let pg: &mm::PgData = n.nodes()[nid];
        let pa = kernel::paging::translate(pg as *const mm::PgData as u64).expect("mapped");
        assert_eq!(pa, n.node_data()[nid].0);
        assert_eq!(
            n.pfn_to_nid(pa >> 12),
            Some(nid),
            "NODE_DATA({nid}) at {pa:#x}"
        );
    }
}

#[test_case]
fn thisnode_and_fallback_allocations() {
    let mut g = memory::lock();
    let n = g.as_mut().expect("mm up");
    for nid in 0..3 {
        let p = n
            .alloc_pages_node(nid, Gfp::KERNEL | Gfp::THISNODE, MAX_ORDER)
            .expect("a block on a node with memory");
        assert_eq!(n.pfn_to_nid(p), Some(nid));
        n.free_pages(p, MAX_ORDER).expect("free");
    }
    assert_eq!(
        n.alloc_pages_node(3, Gfp::KERNEL | Gfp::THISNODE | Gfp::NOWARN, 0),
        None,
        "THISNODE on a memoryless node fails"
    );
    let p = n.alloc_pages_node(3, Gfp::KERNEL, 0).expect("a page");
    assert_eq!(
        n.pfn_to_nid(p),
        Some(0),
        "node 3 falls back to node 0 first"
    );
    n.free_pages(p, 0).expect("free");
    let hit = n.nodes()[0].numa_stat().hit;
    assert!(hit > 0);
    n.check().expect("consistent");
}

#[test_case]
fn the_nvdimm_is_node_2s_device_memory() {
    let g = memory::lock();
    let n = g.as_ref().expect("mm up");
    let map = n.pagemaps().first().expect("the NVDIMM's pagemap");
    assert_eq!(map.nid(), 2);
    let dev = n.nodes()[2].zone(ZoneId::Device);
    assert_eq!(dev.spanned(), map.end_pfn() - map.start_pfn());
    assert_eq!((dev.present(), dev.managed()), (0, 0));
    assert_eq!(n.pfn_to_nid(map.start_pfn()), Some(2));
    assert_eq!(n.nearest_online_node(2), 2);
    assert_eq!(n.device_pfns_in_free_lists(), 0);
}
