//! The machine split into NUMA nodes: per-node zones and memmap, zonelists by distance,
//! preferred-node and `__GFP_THISNODE` allocation, numastat, device memory and hotplug on
//! their node, and a property test of random layouts and operations.

use mm::testing::{FakePlatform, memblock};
use mm::{
    Gfp, HotplugError, InitError, MAX_ORDER, Machine, MemremapError, MemremapOptions, Topology,
    ZoneId, ZoneRef,
};
use proptest::prelude::*;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// RAM `ram` (byte ranges) with node boundaries: `nodes[i] = (start, end, nid)`.
fn machine(ram: &[(u64, u64)], nodes: &[(u64, u64, u16)], topo: Topology) -> Machine<FakePlatform> {
    let mut mb = memblock(ram, &[(MIB, 3 * MIB)]);
    for &(s, e, nid) in nodes {
        mb.set_node(s, e - s, nid).unwrap();
    }
    Machine::init_numa(FakePlatform::new(), mb, topo).expect("init_numa")
}

/// Two nodes of 512 MiB (QEMU's `--numa 512M --numa 512M`), distance 21.
fn two_nodes() -> Machine<FakePlatform> {
    machine(
        &[(0x1000, 0x9f000), (MIB, GIB)],
        &[(0, 512 * MIB, 0), (512 * MIB, GIB, 1)],
        Topology::new(2, vec![10, 21, 21, 10], vec![vec![0], vec![1]]).unwrap(),
    )
}

fn node_of_block(n: &Machine<FakePlatform>, pfn: u64, order: u32) -> usize {
    let nid = n.pfn_to_nid(pfn).unwrap();
    for p in pfn..pfn + (1 << order) {
        assert_eq!(n.pfn_to_nid(p), Some(nid), "block {pfn:#x} spans nodes");
    }
    nid
}

#[test]
fn each_node_has_its_zones_pages_and_memmap() {
    let n = two_nodes();
    assert_eq!(n.nodes().len(), 2);
    let (n0, n1) = (&n.nodes()[0], &n.nodes()[1]);
    assert!(n0.zone(ZoneId::Dma).is_populated(), "DMA is node 0's");
    assert!(!n1.zone(ZoneId::Dma).is_populated());
    assert_eq!(n0.zone(ZoneId::Dma32).end_pfn(), (512 * MIB) >> 12);
    assert_eq!(n1.zone(ZoneId::Dma32).start_pfn(), (512 * MIB) >> 12);
    assert_eq!(n1.present(), (512 * MIB) >> 12);
    assert_eq!((n0.start_pfn(), n1.end_pfn()), (1, (GIB) >> 12));
    for (pfn, nid) in [(1, 0), (((512 * MIB) >> 12) - 1, 0), ((512 * MIB) >> 12, 1)] {
        assert_eq!(n.pfn_to_nid(pfn), Some(nid));
    }
    // Each node's data and memmap come from its own memory (memblock_alloc_try_nid), its
    // data at the very top as Linux's NODE_DATA.
    let nd = n.node_data();
    assert_eq!(nd[0].0 + nd[0].1, 512 * MIB);
    assert_eq!(nd[1].0 + nd[1].1, GIB);
    let mut log = String::new();
    n.write_node_data(&mut log).unwrap();
    assert_eq!(
        log,
        format!(
            "NODE_DATA(0) allocated [mem {:#010x}-0x1fffffff]\nNODE_DATA(1) allocated [mem {:#010x}-0x3fffffff]\n",
            nd[0].0, nd[1].0
        )
    );
    let storage = &n.platform().storage;
    assert_eq!(
        storage.len(),
        2,
        "one run of sections per node: {storage:x?}"
    );
    assert_eq!((storage[0].1, storage[1].1), (4 * 32768, 4 * 32768));
    assert!(
        storage[0].0 < 512 * MIB,
        "node 0's memmap on node 0: {storage:x?}"
    );
    assert!(
        storage[1].0 >= 512 * MIB,
        "node 1's memmap on node 1: {storage:x?}"
    );
    n.check().unwrap();
    let mut z = String::new();
    n.write_zoneinfo(&mut z).unwrap();
    assert!(z.contains("Node 1, zone    DMA32\n  pages free"), "{z}");
    let mut b = String::new();
    n.write_buddyinfo(&mut b).unwrap();
    let rows: Vec<&str> = b.lines().map(|l| &l[..22]).collect();
    assert_eq!(
        rows,
        [
            "Node 0, zone      DMA ",
            "Node 0, zone    DMA32 ",
            "Node 1, zone    DMA32 "
        ]
    );
}

#[test]
fn zonelists_fall_back_by_distance_and_count_numastat() {
    let n = two_nodes();
    assert_eq!(n.nodes()[1].node_order(), [1, 0]);
    assert_eq!(
        n.nodes()[1].zonelist(),
        [
            ZoneRef {
                nid: 1,
                zone: ZoneId::Dma32
            },
            ZoneRef {
                nid: 0,
                zone: ZoneId::Dma32
            },
            ZoneRef {
                nid: 0,
                zone: ZoneId::Dma
            },
        ]
    );
    // Node 1 first, until its watermark; then node 0 (numa_miss there, numa_foreign here).
    let mut from = [0u64; 2];
    let mut live = Vec::new();
    while let Some(p) = n.alloc_pages_node(1, Gfp::KERNEL | Gfp::NOWARN, MAX_ORDER) {
        let nid = node_of_block(&n, p, MAX_ORDER);
        if nid == 0 {
            assert!(
                n.nodes()[1].free_pages()
                    < 2 * 1024 + n.nodes()[1].zone(ZoneId::Dma32).watermarks().min,
                "fell back while node 1 still had room"
            );
        }
        from[nid] += 1;
        live.push((p, MAX_ORDER));
    }
    assert!(from[0] > 0 && from[1] > 0, "{from:?}");
    let s0 = n.nodes()[0].numa_stat();
    let s1 = n.nodes()[1].numa_stat();
    assert_eq!((s1.hit, s1.foreign), (from[1], from[0]));
    assert_eq!((s0.miss, s0.hit), (from[0], 0));
    // The running CPU is on node 0: node 1's pages count as other_node.
    assert_eq!((s1.other, s1.local, s0.local), (from[1], 0, from[0]));
    // THISNODE never leaves the node: node 1 has no room for a max-order block.
    assert_eq!(
        n.alloc_pages_node(1, Gfp::KERNEL | Gfp::THISNODE | Gfp::NOWARN, MAX_ORDER),
        None
    );
    let p = n
        .alloc_pages_node(0, Gfp::KERNEL | Gfp::THISNODE | Gfp::NOWARN, 0)
        .unwrap();
    assert_eq!(n.pfn_to_nid(p), Some(0));
    live.push((p, 0));
    let mut stat = String::new();
    n.write_numastat(&mut stat, 1).unwrap();
    assert_eq!(
        stat,
        format!(
            "numa_hit {}\nnuma_miss 0\nnuma_foreign {}\ninterleave_hit 0\nlocal_node 0\nother_node {}\n",
            from[1], from[0], from[1]
        )
    );
    for (p, o) in live {
        n.free_pages(p, o).unwrap();
    }
    n.drain_pages();
    n.check().unwrap();
    // An unknown node fails cleanly.
    assert_eq!(n.alloc_pages_node(7, Gfp::KERNEL | Gfp::NOWARN, 0), None);
}

#[test]
fn interleave_alternates_and_counts_hits() {
    let n = two_nodes();
    let mut nodes = Vec::new();
    for _ in 0..6 {
        let p = n.alloc_pages_interleave(Gfp::KERNEL, 0).unwrap();
        nodes.push(n.pfn_to_nid(p).unwrap());
    }
    assert_eq!(nodes, [1, 0, 1, 0, 1, 0]);
    let hits: u64 = n.nodes().iter().map(|x| x.numa_stat().interleave_hit).sum();
    assert_eq!(hits, 6);
    n.check().unwrap();
}

#[test]
fn memoryless_node_allocates_from_the_nearest() {
    // Node 2 has a CPU and no memory; node 1 is nearer to it than node 0.
    let d = vec![10, 20, 30, 20, 10, 15, 30, 15, 10];
    let n = machine(
        &[(0x1000, 0x9f000), (MIB, GIB)],
        &[(0, 512 * MIB, 0), (512 * MIB, GIB, 1)],
        Topology::new(3, d, vec![vec![0], vec![1], vec![2]]).unwrap(),
    );
    assert!(!n.nodes()[2].has_memory());
    assert_eq!(n.nodes()[2].node_order(), [2, 1, 0]);
    let mut log = String::new();
    n.write_node_data(&mut log).unwrap();
    assert!(
        !log.contains("NODE_DATA(2)"),
        "no line for a memoryless node, as Linux: {log}"
    );
    let p = n.alloc_pages_node(2, Gfp::KERNEL, 0).unwrap();
    assert_eq!(n.pfn_to_nid(p), Some(1));
    // The preferred zone is node 1's: a hit there, as Linux counts it.
    assert_eq!(n.nodes()[1].numa_stat().hit, 1);
    assert_eq!(
        n.alloc_pages_node(2, Gfp::KERNEL | Gfp::THISNODE | Gfp::NOWARN, 0),
        None
    );
    let mut hw = String::new();
    n.write_numa_hardware(&mut hw).unwrap();
    assert!(
        hw.starts_with("available: 3 nodes (0-2)\nnode 0 cpus: 0\n"),
        "{hw}"
    );
    assert!(hw.contains("node 2 size: 0 MB\n"), "{hw}");
    assert!(hw.ends_with("  2:  30  15  10 \n"), "{hw}");
    let mut lines = String::new();
    n.write_zone_ranges(&mut lines).unwrap();
    assert!(
        lines.contains("Initializing node 2 as memoryless\nInitmem setup node 2 as memoryless\n"),
        "{lines}"
    );
    n.check().unwrap();
}

#[test]
fn device_memory_and_hotplug_land_on_their_node() {
    let mut n = machine(
        &[(0x1000, 0x9f000), (MIB, GIB)],
        &[(0, 512 * MIB, 0), (512 * MIB, GIB, 1)],
        Topology::new(3, vec![], vec![vec![0], vec![1]]).unwrap(),
    );
    // pmem on node 2 (a node with neither memory nor CPUs, as QEMU's NVDIMM node=2).
    let idx = n
        .memremap_pages(4 * GIB, 128 * MIB, MemremapOptions::new(128 * MIB).node(2))
        .unwrap();
    assert_eq!(n.pagemaps()[idx].nid(), 2);
    let dev = n.nodes()[2].zone(ZoneId::Device);
    assert_eq!((dev.spanned(), dev.present()), (32768, 0));
    assert_eq!(n.pfn_to_nid((4 * GIB) >> 12), Some(2));
    assert_eq!(n.nodes()[0].zone(ZoneId::Device).spanned(), 0);
    // Its memmap (no altmap) was allocated near node 2: node 0 by distance order.
    assert!(n.nodes()[0].numa_stat().hit + n.nodes()[0].numa_stat().miss >= 1);
    assert_eq!(
        n.memremap_pages(8 * GIB, 128 * MIB, MemremapOptions::new(128 * MIB).node(3)),
        Err(MemremapError::BadNode { nid: 3 })
    );
    // A DIMM on node 1, above 4 GiB: node 1's Normal zone.
    n.add_and_online_memory(1, 6 * GIB, 256 * MIB).unwrap();
    let normal1 = n.nodes()[1].zone(ZoneId::Normal);
    assert_eq!(normal1.present(), (256 * MIB) >> 12);
    assert!(!n.nodes()[0].zone(ZoneId::Normal).is_populated());
    assert_eq!(n.hotplug_ranges()[0].nid, 1);
    assert_eq!(n.pfn_to_nid((6 * GIB) >> 12), Some(1));
    assert_eq!(
        n.nodes()[1].zonelist()[0],
        ZoneRef {
            nid: 1,
            zone: ZoneId::Normal
        },
        "the zonelist was rebuilt"
    );
    let p = n
        .alloc_pages_node(1, Gfp::KERNEL | Gfp::THISNODE, MAX_ORDER)
        .unwrap();
    assert_eq!(n.page(p).unwrap().zone(), ZoneId::Normal);
    // A DIMM on memoryless node 2 gives it memory: it joins every zonelist.
    n.add_and_online_memory(2, 8 * GIB, 128 * MIB).unwrap();
    assert!(n.nodes()[2].has_memory());
    assert!(n.nodes()[0].zonelist().iter().any(|z| z.nid == 2));
    assert_eq!(
        n.add_memory(5, 12 * GIB, 128 * MIB),
        Err(HotplugError::BadNode { nid: 5 })
    );
    n.free_pages(p, MAX_ORDER).unwrap();
    assert_eq!(n.device_pfns_in_free_lists(), 0);
    n.check().unwrap();
}

#[test]
fn node_boundaries_inside_a_max_order_block_stop_merging() {
    // numa=fake style boundary at 33 MiB: not 4 MiB aligned. The memmap goes below 20 MiB
    // (the allocation limit), away from the boundary.
    let mut mb = memblock(&[(0x1000, 0x9f000), (MIB, 64 * MIB)], &[(MIB, 3 * MIB)]);
    mb.set_node(33 * MIB, 31 * MIB, 1).unwrap();
    mb.set_current_limit(20 * MIB);
    let n = Machine::init_numa(
        FakePlatform::new(),
        mb,
        Topology::new(2, vec![], vec![]).unwrap(),
    )
    .unwrap();
    let mut live = Vec::new();
    while let Some(p) = n.alloc_pages(Gfp::MEMALLOC | Gfp::NOWARN, 0) {
        live.push(p);
    }
    for p in live.into_iter().rev() {
        n.free_page(p).unwrap();
    }
    n.drain_pages();
    n.check().unwrap();
    let b = (32 * MIB) >> 12;
    let pg = n.page(b).unwrap();
    assert!(pg.is_buddy(), "{:?} nid {}", pg.flags(), pg.nid());
    assert_eq!(pg.order(), 8, "1 MiB of node 0 below 33 MiB");
    assert_eq!(n.pfn_to_nid(b + 256), Some(1));
    for (pfn, order) in (0..(64 * MIB) >> 12).filter_map(|p| {
        n.page(p)
            .filter(|pg| pg.is_buddy())
            .map(|pg| (p, pg.order()))
    }) {
        node_of_block(&n, pfn, order);
    }
}

#[test]
fn bad_node_layouts_are_refused() {
    let mut mb = memblock(&[(MIB, 64 * MIB)], &[]);
    mb.set_node(32 * MIB, 32 * MIB, 4).unwrap();
    assert_eq!(
        Machine::init_numa(
            FakePlatform::new(),
            mb,
            Topology::new(2, vec![], vec![]).unwrap()
        )
        .unwrap_err(),
        InitError::BadNode { nid: 4 }
    );
}

/// Symmetric distances from `picks` (10 on the diagonal, 20/30/40 elsewhere: steps larger
/// than find_next_best_node's penalties, so the order must follow the distance).
fn distances(n: usize, picks: &[u8]) -> Vec<u8> {
    let mut d = vec![10u8; n * n];
    let mut k = 0;
    for a in 0..n {
        for b in a + 1..n {
            let v = 20 + 10 * (picks[k % picks.len()] % 3);
            d[a * n + b] = v;
            d[b * n + a] = v;
            k += 1;
        }
    }
    d
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Random node boundaries (page-aligned, anywhere), distances and CPUs: every RAM pfn is
    /// on exactly the node its block says, node spans cover their blocks, and every node's
    /// zonelist holds every managed zone of the machine once, nodes by distance. Then random
    /// allocations with random preferred nodes and THISNODE: every block lies on one node,
    /// THISNODE blocks on the node asked for, the checker agrees, and freeing everything
    /// restores the free counts exactly.
    #[test]
    fn random_layouts_and_operations(
        cuts in proptest::collection::btree_set(1u64..16384, 1..4),
        picks in proptest::collection::vec(any::<u8>(), 6),
        cpus in proptest::collection::vec(any::<bool>(), 5),
        ops in proptest::collection::vec((0u8..4, 0u32..=MAX_ORDER, any::<bool>(), any::<u16>()), 1..300),
    ) {
        let ram_end = 64 * MIB;
        let mut bounds: Vec<u64> = cuts.into_iter().map(|c| c << 12).collect();
        bounds.insert(0, 0);
        bounds.push(ram_end);
        let nodes: Vec<(u64, u64, u16)> = bounds
            .windows(2)
            .enumerate()
            .map(|(i, w)| (w[0], w[1], i as u16))
            .collect();
        let nr = nodes.len();
        let cpu_lists: Vec<Vec<u32>> = (0..nr)
            .map(|i| if cpus[i] { vec![i as u32] } else { vec![] })
            .collect();
        let topo = Topology::new(nr, distances(nr, &picks), cpu_lists).unwrap();
        let n = machine(&[(0x1000, 0x9f000), (MIB, ram_end)], &nodes, topo.clone());
        n.check().unwrap();
        for &(s, e, nid) in &nodes {
            let node = &n.nodes()[usize::from(nid)];
            for pfn in (s >> 12).max(1)..e >> 12 {
                if (0x9f..0x100).contains(&pfn) {
                    continue; // the legacy hole
                }
                prop_assert_eq!(n.pfn_to_nid(pfn), Some(usize::from(nid)), "pfn {:#x}", pfn);
                prop_assert!(node.start_pfn() <= pfn && pfn < node.end_pfn());
            }
        }
        let managed: Vec<ZoneRef> = n
            .zones()
            .filter(|z| z.is_managed())
            .map(|z| ZoneRef { nid: z.nid() as u8, zone: z.id() })
            .collect();
        for (local, node) in n.nodes().iter().enumerate() {
            let list = node.zonelist();
            for zr in &managed {
                prop_assert_eq!(list.iter().filter(|x| *x == zr).count(), 1);
            }
            prop_assert_eq!(list.len(), managed.len());
            let order = node.node_order();
            prop_assert_eq!(order[0], local);
            for w in order[1..].windows(2) {
                prop_assert!(topo.distance(local, w[0]) <= topo.distance(local, w[1]), "{:?}", order);
            }
        }
        let free0: Vec<u64> = n.zones().map(|z| z.free_pages()).collect();
        let mut live: Vec<(u64, u32)> = Vec::new();
        for (nid, order, thisnode, pick) in ops {
            let nid = usize::from(nid) % nr;
            if pick % 3 == 0 && !live.is_empty() {
                let (p, o) = live.swap_remove(usize::from(pick) % live.len());
                n.free_pages(p, o).unwrap();
                continue;
            }
            let gfp = if thisnode { Gfp::KERNEL | Gfp::THISNODE } else { Gfp::KERNEL };
            if let Some(p) = n.alloc_pages_node(nid, gfp | Gfp::NOWARN, order) {
                let on = node_of_block(&n, p, order);
                if thisnode {
                    prop_assert_eq!(on, nid);
                }
                live.push((p, order));
            }
        }
        n.check().unwrap();
        for (p, o) in live {
            n.free_pages(p, o).unwrap();
        }
        n.drain_pages();
        n.check().unwrap();
        let free1: Vec<u64> = n.zones().map(|z| z.free_pages()).collect();
        prop_assert_eq!(free0, free1);
    }
}

#[test]
fn unavailable_ranges_as_linux_reports_them() {
    // Linux 6.1 on QEMU's four-node machine (tests/numa_scenarios.rs): RAM 4K-0x9f000,
    // 1M-512M on node 0, 512M-1G on node 1, 1G-0x7ffdf000 on node 2, node 3 memoryless.
    let n = machine(
        &[(0x1000, 0x9f000), (MIB, 0x7ffd_f000)],
        &[(0, 512 * MIB, 0), (512 * MIB, GIB, 1), (GIB, 2 * GIB, 2)],
        Topology::new(4, vec![], vec![vec![0], vec![1], vec![2], vec![3]]).unwrap(),
    );
    let mut w = String::new();
    n.write_unavailable_ranges(&mut w).unwrap();
    assert_eq!(
        w,
        "On node 0, zone DMA: 1 pages in unavailable ranges\n\
         On node 0, zone DMA: 97 pages in unavailable ranges\n\
         On node 2, zone DMA32: 33 pages in unavailable ranges\n"
    );
    let mut z = String::new();
    n.write_zonelist_summary(&mut z).unwrap();
    // Linux's lines from the same machine (no SLIT: all remote distances 20).
    assert!(
        z.starts_with(
            "Fallback order for Node 0: 0 1 2 \n\
             Fallback order for Node 1: 1 2 0 \n\
             Fallback order for Node 2: 2 0 1 \n\
             Fallback order for Node 3: 3 0 1 2 \n\
             Built 4 zonelists, mobility grouping on.  Total pages: "
        ),
        "{z}"
    );
    assert!(z.ends_with("\nPolicy zone: DMA32\n"), "{z}");
}
