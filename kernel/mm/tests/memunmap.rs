//! Removal is exact: memremap_pages then memunmap_pages (with and without altmap, on two nodes,
//! with pinned pages, sharing a section) leaves the machine as it was, and every failure of a
//! platform call during memremap_pages, add_memory or memunmap_pages (fault injection: the k-th
//! call fails, for every k) changes nothing.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use mm::testing::{FakePlatform, FakeState, memblock, pc_node, settle};
use mm::{Machine, MemremapOptions, Memunmap, MemunmapError, PageRefError, Topology, ZoneId};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

type M = Machine<FakePlatform>;

/// Everything an operation may change, to compare before and after.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    check: Result<(), String>,
    free: u64,
    free_buddy: u64,
    totalram: u64,
    memmap_ram: u64,
    memmap_device: u64,
    device_pages: u64,
    pagemaps: Vec<(u64, u64, usize, u64, u64)>,
    zones: Vec<(u64, u64, u64, u64)>,
    nodes: Vec<(u64, u64)>,
    sections: u64,
    max_pfn: u64,
    hotplug: usize,
    platform: FakeState,
    memmap: u64,
}

/// A digest of every struct page's state (flags, zone, node, count, pagemap).
fn memmap_digest(m: &M) -> u64 {
    let mut h = DefaultHasher::new();
    for (start, pages) in m.sparse().memmap_chunks() {
        for (i, p) in pages.iter().enumerate() {
            (start + i as u64, p.flags().bits(), p.zone() as u8, p.nid()).hash(&mut h);
            (p.refcount(), p.pagemap()).hash(&mut h);
        }
    }
    let mut sections: Vec<u64> = m
        .sparse()
        .memmap_chunks()
        .map(|(s, p)| s + p.len() as u64)
        .collect();
    sections.sort_unstable();
    sections.hash(&mut h);
    h.finish()
}

fn snap(m: &M) -> Snapshot {
    Snapshot {
        check: m.check().map_err(|e| e.to_string()),
        free: m.nr_free_pages(),
        free_buddy: m.nr_free_buddy_pages(),
        totalram: m.totalram_pages(),
        memmap_ram: m.memmap_ram_bytes(),
        memmap_device: m.memmap_device_bytes(),
        device_pages: m.device_pages(),
        pagemaps: m
            .pagemaps()
            .iter()
            .map(|p| {
                (
                    p.start_pfn(),
                    p.end_pfn(),
                    p.nid(),
                    p.altmap_pages(),
                    p.memmap_ram_bytes(),
                )
            })
            .collect(),
        zones: m
            .zones()
            .map(|z| (z.start_pfn(), z.spanned(), z.present(), z.managed()))
            .collect(),
        nodes: m
            .nodes()
            .iter()
            .map(|n| (n.start_pfn(), n.spanned()))
            .collect(),
        sections: m.sparse().present_sections(),
        max_pfn: m.max_pfn(),
        hotplug: m.hotplug_ranges().len(),
        platform: m.platform().state(),
        memmap: memmap_digest(m),
    }
}

/// Two nodes of 512 MiB, distance 21.
fn two_nodes() -> M {
    let mut mb = memblock(&[(0x1000, 0x9f000), (MIB, GIB)], &[(MIB, 3 * MIB)]);
    mb.set_node(0, 512 * MIB, 0).unwrap();
    mb.set_node(512 * MIB, 512 * MIB, 1).unwrap();
    let topo = Topology::new(2, vec![10, 21, 21, 10], vec![vec![0], vec![1]]).unwrap();
    let mut m = Machine::init_numa(FakePlatform::new(), mb, topo).unwrap();
    m.deferred_init_memmap().unwrap();
    m
}

fn machine() -> M {
    let mut m = pc_node(256);
    m.deferred_init_memmap().unwrap();
    m
}

/// memremap then memunmap of `[start, start + size)`: the machine is as before.
fn round_trip(m: &mut M, start: u64, size: u64, opts: MemremapOptions) {
    let before = snap(m);
    let idx = m.memremap_pages(start, size, opts).unwrap();
    settle(m);
    assert_ne!(snap(m), before);
    assert_eq!(m.memunmap_pages(idx), Ok(Memunmap::Done));
    settle(m);
    assert_eq!(snap(m), before);
    assert!(m.platform().unmaps.contains(&(start, size)));
}

#[test]
fn memunmap_undoes_memremap_with_and_without_altmap() {
    let mut m = machine();
    round_trip(
        &mut m,
        4 * GIB,
        128 * MIB,
        MemremapOptions::new(128 * MIB).altmap(false),
    );
    round_trip(
        &mut m,
        4 * GIB,
        256 * MIB,
        MemremapOptions::new(256 * MIB).altmap(true),
    );
    // Not section-aligned: a section shared with nothing but holes still goes.
    round_trip(
        &mut m,
        4 * GIB + 2 * MIB,
        60 * MIB,
        MemremapOptions::new(60 * MIB).altmap(false),
    );
    // Again and again: nothing accumulates.
    for _ in 0..5 {
        round_trip(&mut m, 8 * GIB, GIB, MemremapOptions::new(GIB).altmap(true));
    }
}

#[test]
fn memunmap_on_two_nodes_shrinks_only_its_node() {
    let mut m = two_nodes();
    let before = snap(&m);
    let a = m
        .memremap_pages(4 * GIB, 128 * MIB, MemremapOptions::new(128 * MIB).node(1))
        .unwrap();
    let b = m
        .memremap_pages(
            5 * GIB,
            256 * MIB,
            MemremapOptions::new(256 * MIB).node(1).altmap(true),
        )
        .unwrap();
    let c = m
        .memremap_pages(6 * GIB, 128 * MIB, MemremapOptions::new(128 * MIB).node(0))
        .unwrap();
    // A last range on node 1, beyond node 0's: removing it shrinks node 1's end.
    let d = m
        .memremap_pages(7 * GIB, 128 * MIB, MemremapOptions::new(128 * MIB).node(1))
        .unwrap();
    let dev1 = m.nodes()[1].zone(ZoneId::Device);
    assert_eq!(dev1.end_pfn(), (7 * GIB + 128 * MIB) >> 12);
    assert_eq!(m.memunmap_pages(d), Ok(Memunmap::Done));
    settle(&m);
    let dev1 = m.nodes()[1].zone(ZoneId::Device);
    assert_eq!(
        (dev1.start_pfn(), dev1.end_pfn()),
        ((4 * GIB) >> 12, (5 * GIB + 256 * MIB) >> 12)
    );
    // The first pagemap of node 1 goes: its span starts at the second now; the later
    // pagemaps move down an index, their pages with them.
    assert_eq!(m.memunmap_pages(a), Ok(Memunmap::Done));
    settle(&m);
    let dev1 = m.nodes()[1].zone(ZoneId::Device);
    assert_eq!(
        (dev1.start_pfn(), dev1.end_pfn()),
        ((5 * GIB) >> 12, (5 * GIB + 256 * MIB) >> 12)
    );
    assert_eq!(m.pagemaps().len(), 2);
    assert_eq!(m.pagemap_of((6 * GIB) >> 12).unwrap().nid(), 0);
    assert_eq!(m.page((6 * GIB) >> 12).unwrap().pagemap(), Some(c - 1));
    assert_eq!(m.page((5 * GIB) >> 12).unwrap().pagemap(), Some(b - 1));
    let dev0 = m.nodes()[0].zone(ZoneId::Device);
    assert_eq!(dev0.spanned(), 32768);
    assert_eq!(m.memunmap_pages(c - 1), Ok(Memunmap::Done));
    assert_eq!(m.memunmap_pages(b - 1), Ok(Memunmap::Done));
    settle(&m);
    assert_eq!(snap(&m), before);
}

#[test]
fn a_shared_section_stays_until_its_last_user_goes() {
    let mut m = machine();
    let before = snap(&m);
    // Two device ranges in one section; the second reuses the first's memmap.
    let a = m
        .memremap_pages(4 * GIB, 64 * MIB, MemremapOptions::new(64 * MIB))
        .unwrap();
    let mid = snap(&m);
    let b = m
        .memremap_pages(4 * GIB + 64 * MIB, 64 * MIB, MemremapOptions::new(64 * MIB))
        .unwrap();
    assert_eq!(m.memunmap_pages(b), Ok(Memunmap::Done));
    settle(&m);
    assert_eq!(snap(&m), mid, "the section stays for the first range");
    let b = m
        .memremap_pages(4 * GIB + 64 * MIB, 64 * MIB, MemremapOptions::new(64 * MIB))
        .unwrap();
    assert_eq!(m.memunmap_pages(a), Ok(Memunmap::Done));
    settle(&m);
    assert!(
        m.pfn_valid((4 * GIB) >> 12),
        "the second range still needs it"
    );
    assert!(
        m.page((4 * GIB) >> 12)
            .unwrap()
            .flags()
            .contains(mm::PageFlags::HOLE)
    );
    let dev = m.nodes()[0].zone(ZoneId::Device);
    assert_eq!(dev.start_pfn(), (4 * GIB + 64 * MIB) >> 12);
    assert_eq!(m.memunmap_pages(b - 1), Ok(Memunmap::Done));
    settle(&m);
    assert_eq!(snap(&m), before);
}

#[test]
fn altmap_storage_needed_by_a_staying_range_is_refused() {
    let mut m = machine();
    // 64 MiB with its memmap on the device; a neighbour in the same section uses it.
    let a = m
        .memremap_pages(
            4 * GIB,
            64 * MIB,
            MemremapOptions::new(64 * MIB).altmap(true),
        )
        .unwrap();
    let b = m
        .memremap_pages(4 * GIB + 64 * MIB, 64 * MIB, MemremapOptions::new(64 * MIB))
        .unwrap();
    let before = snap(&m);
    let e = m.memunmap_pages(a).unwrap_err();
    assert!(
        e.to_string().contains("memmap is stored in the range"),
        "{e}"
    );
    assert_eq!(snap(&m), before);
    assert_eq!(m.memunmap_pages(b), Ok(Memunmap::Done));
    assert_eq!(m.memunmap_pages(a), Ok(Memunmap::Done));
    settle(&m);
}

#[test]
fn teardown_waits_for_pinned_pages() {
    let mut m = machine();
    let before = snap(&m);
    let idx = m
        .memremap_pages(4 * GIB, 128 * MIB, MemremapOptions::new(128 * MIB))
        .unwrap();
    let (p, q) = ((4 * GIB) >> 12, ((4 * GIB) >> 12) + 100);
    assert_eq!(m.get_page(p), Ok(2));
    assert_eq!(m.get_page(p), Ok(3), "a second reference on the same page");
    assert_eq!(m.get_page(q), Ok(2));
    assert_eq!(m.pagemaps()[idx].refs().count(), 2, "two pinned pages");
    assert_eq!(m.memunmap_pages(idx), Ok(Memunmap::Waiting { pinned: 2 }));
    // Killed: no new reference, a second teardown is refused, completion waits.
    assert_eq!(m.get_page(p + 1), Err(PageRefError::PagemapDying));
    assert_eq!(m.get_page(p), Err(PageRefError::PagemapDying));
    assert_eq!(
        m.memunmap_pages(idx),
        Err(MemunmapError::AlreadyDying { pinned: 2 })
    );
    assert_eq!(
        m.memunmap_complete(idx),
        Err(MemunmapError::StillPinned { pinned: 2 })
    );
    settle(&m);
    assert_eq!(m.put_page(p), Ok(2));
    assert_eq!(m.put_page(q), Ok(1));
    assert!(!m.pagemap_released(idx), "p is still pinned");
    assert_eq!(m.put_page(p), Ok(1));
    assert!(m.pagemap_released(idx));
    m.memunmap_complete(idx).unwrap();
    settle(&m);
    assert_eq!(snap(&m), before);
    assert_eq!(
        m.memunmap_complete(idx),
        Err(MemunmapError::NoPagemap { index: idx })
    );
    // Mapped again: the same pagemap, usable.
    let idx = m
        .memremap_pages(4 * GIB, 128 * MIB, MemremapOptions::new(128 * MIB))
        .unwrap();
    assert_eq!(m.get_page(p), Ok(2));
    assert_eq!(m.put_page(p), Ok(1));
    assert_eq!(m.memunmap_pages(idx), Ok(Memunmap::Done));
    assert_eq!(snap(&m), before);
}

#[test]
fn memunmap_complete_needs_a_started_teardown() {
    let mut m = machine();
    let idx = m
        .memremap_pages(4 * GIB, 128 * MIB, MemremapOptions::new(128 * MIB))
        .unwrap();
    let before = snap(&m);
    assert_eq!(m.memunmap_complete(idx), Err(MemunmapError::NotDying));
    assert_eq!(
        m.memunmap_pages(idx + 1),
        Err(MemunmapError::NoPagemap { index: idx + 1 })
    );
    assert_eq!(snap(&m), before);
}

/// Run `op` with the k-th platform call failing, for k = 1, 2, ... until it succeeds; after each
/// failure the machine must be as before. Returns how many calls the successful run made.
fn for_every_failing_call<T: std::fmt::Debug, E: std::fmt::Debug>(
    m: &mut M,
    mut op: impl FnMut(&mut M) -> Result<T, E>,
) -> (u64, T) {
    let before = snap(m);
    for k in 1.. {
        m.platform_mut().fail_nth_call_from_now(Some(k));
        let calls = m.platform().calls;
        match op(m) {
            Ok(v) => {
                m.platform_mut().fail_nth_call_from_now(None);
                return (m.platform().calls - calls, v);
            }
            Err(e) => {
                settle(m);
                assert_eq!(snap(m), before, "call {k} failed ({e:?}): state changed");
            }
        }
    }
    unreachable!()
}

#[test]
fn every_failing_platform_call_of_memremap_and_memunmap_changes_nothing() {
    for altmap in [false, true] {
        for (start, size) in [(4 * GIB, 384 * MIB), (4 * GIB + 8 * MIB, 200 * MIB)] {
            let mut m = machine();
            let before = snap(&m);
            let (calls, idx) = for_every_failing_call(&mut m, |m| {
                m.memremap_pages(start, size, MemremapOptions::new(size).altmap(altmap))
            });
            assert!(calls >= 2, "map_device and memmap storage: {calls} calls");
            settle(&m);
            let (calls, done) = for_every_failing_call(&mut m, |m| m.memunmap_pages(idx));
            assert_eq!((calls, done), (1, Memunmap::Done), "one unmap");
            settle(&m);
            assert_eq!(snap(&m), before);
        }
    }
}

#[test]
fn every_failing_platform_call_of_add_memory_changes_nothing() {
    let mut m = machine();
    let before = snap(&m);
    let (calls, ()) = for_every_failing_call(&mut m, |m| m.add_memory(0, 4 * GIB, 384 * MIB));
    assert!(calls >= 2, "map_ram and memmap storage: {calls} calls");
    settle(&m);
    assert_ne!(snap(&m), before);
    // A range too small for its own memmap takes it from the buddy allocator, section by
    // section: every one of those calls may fail too.
    let mut m = machine();
    let before = snap(&m);
    let (calls, ()) = for_every_failing_call(&mut m, |m| {
        m.add_memory(0, 4 * GIB + 128 * MIB - 256 * 1024, 512 * 1024)
    });
    assert_eq!(calls, 3, "map_ram and two sections' storage");
    assert_ne!(snap(&m), before);
}

#[test]
fn completion_after_a_failed_unmap_still_waits_and_then_succeeds() {
    let mut m = machine();
    let before = snap(&m);
    let idx = m
        .memremap_pages(4 * GIB, 128 * MIB, MemremapOptions::new(128 * MIB))
        .unwrap();
    let p = (4 * GIB) >> 12;
    m.get_page(p).unwrap();
    assert_eq!(m.memunmap_pages(idx), Ok(Memunmap::Waiting { pinned: 1 }));
    m.put_page(p).unwrap();
    let waiting = snap(&m);
    let (calls, ()) = for_every_failing_call(&mut m, |m| m.memunmap_complete(idx));
    assert_eq!(calls, 1);
    assert_ne!(waiting, before);
    assert_eq!(snap(&m), before);
}

mod random {
    //! Random memremap / memunmap / pin / unpin / complete sequences against a model: after
    //! every step the checker passes and the outcome is the model's; once every range is
    //! gone again, the machine is as it was at the start.

    use super::*;
    use proptest::prelude::*;

    /// Ranges `(start, size)`: two sharing a section, one over a section boundary, one
    /// large enough for altmap.
    const SLOTS: [(u64, u64); 4] = [
        (4 * GIB, 64 * MIB),
        (4 * GIB + 64 * MIB, 64 * MIB),
        (4 * GIB + 200 * MIB, 100 * MIB),
        (5 * GIB, 256 * MIB),
    ];

    #[derive(Clone, Debug)]
    enum Op {
        Remap { slot: usize, altmap: bool },
        Unmap { slot: usize },
        Complete { slot: usize },
        Pin { slot: usize, page: u64 },
        Unpin { slot: usize, page: u64 },
    }

    fn op() -> impl Strategy<Value = Op> {
        let slot = 0..SLOTS.len();
        prop_oneof![
            (slot.clone(), any::<bool>()).prop_map(|(slot, altmap)| Op::Remap { slot, altmap }),
            slot.clone().prop_map(|slot| Op::Unmap { slot }),
            slot.clone().prop_map(|slot| Op::Complete { slot }),
            (slot.clone(), 0..4u64).prop_map(|(slot, page)| Op::Pin { slot, page }),
            (slot, 0..4u64).prop_map(|(slot, page)| Op::Unpin { slot, page }),
        ]
    }

    /// The model's view of a slot: its pins per page (4 pages watched), killed or not.
    #[derive(Clone, Debug, Default)]
    struct Slot {
        pins: [u32; 4],
        dying: bool,
    }

    /// The pfn of watched page `page` of a slot (past an altmap's memmap pages).
    fn pfn(slot: usize, page: u64) -> u64 {
        let (start, size) = SLOTS[slot];
        (start + size) / mm::PAGE_SIZE - 1 - page * 97
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: if cfg!(miri) { 2 } else { 24 },
            ..ProptestConfig::default()
        })]
        #[test]
        fn random_sequences_match_the_model(ops in prop::collection::vec(op(), 1..40)) {
            let mut m = machine();
            let initial = snap(&m);
            // Live slots in pagemap-index order, with their model state.
            let mut live: Vec<(usize, Slot)> = Vec::new();
            for o in ops {
                let before = snap(&m);
                let index = |slot: usize, live: &Vec<(usize, Slot)>| {
                    live.iter().position(|(s, _)| *s == slot)
                };
                match o {
                    Op::Remap { slot, altmap } => {
                        let (start, size) = SLOTS[slot];
                        let r = m.memremap_pages(start, size, MemremapOptions::new(size).altmap(altmap));
                        match index(slot, &live) {
                            Some(_) => prop_assert!(r.is_err()),
                            None => {
                                prop_assert_eq!(r, Ok(live.len()));
                                live.push((slot, Slot::default()));
                            }
                        }
                    }
                    Op::Unmap { slot } => {
                        let Some(i) = index(slot, &live) else {
                            prop_assert!(m.memunmap_pages(live.len()).is_err());
                            continue;
                        };
                        let pinned = live[i].1.pins.iter().filter(|&&c| c > 0).count() as u64;
                        match m.memunmap_pages(i) {
                            Ok(Memunmap::Done) => {
                                prop_assert!(pinned == 0 && !live[i].1.dying);
                                live.remove(i);
                            }
                            Ok(Memunmap::Waiting { pinned: n }) => {
                                prop_assert!(!live[i].1.dying);
                                prop_assert_eq!(n, pinned);
                                live[i].1.dying = true;
                            }
                            Err(MemunmapError::AlreadyDying { pinned: n }) => {
                                prop_assert!(live[i].1.dying);
                                prop_assert_eq!(n, pinned);
                            }
                            Err(e) => {
                                // A neighbour uses this range's on-device memmap.
                                prop_assert!(e.to_string().contains("memmap is stored"), "{}", e);
                                prop_assert_eq!(&snap(&m), &before);
                            }
                        }
                    }
                    Op::Complete { slot } => {
                        let Some(i) = index(slot, &live) else { continue };
                        let pinned = live[i].1.pins.iter().filter(|&&c| c > 0).count() as u64;
                        let r = m.memunmap_complete(i);
                        match (live[i].1.dying, pinned) {
                            (false, _) => prop_assert_eq!(r, Err(MemunmapError::NotDying)),
                            (true, 0) => {
                                prop_assert_eq!(r, Ok(()));
                                live.remove(i);
                            }
                            (true, n) => prop_assert_eq!(r, Err(MemunmapError::StillPinned { pinned: n })),
                        }
                    }
                    Op::Pin { slot, page } => {
                        let r = m.get_page(pfn(slot, page));
                        match index(slot, &live) {
                            None => prop_assert!(r.is_err()),
                            Some(i) if live[i].1.dying => {
                                prop_assert_eq!(r, Err(PageRefError::PagemapDying));
                            }
                            Some(i) => {
                                let c = &mut live[i].1.pins[page as usize];
                                *c += 1;
                                prop_assert_eq!(r, Ok(*c + 1));
                            }
                        }
                    }
                    Op::Unpin { slot, page } => {
                        let Some(i) = index(slot, &live) else {
                            prop_assert!(m.put_page(pfn(slot, page)).is_err());
                            continue;
                        };
                        let c = &mut live[i].1.pins[page as usize];
                        let r = m.put_page(pfn(slot, page));
                        if *c == 0 {
                            prop_assert_eq!(r, Err(PageRefError::IdleDevicePage));
                        } else {
                            *c -= 1;
                            prop_assert_eq!(r, Ok(*c + 1));
                        }
                        let released = live[i].1.dying && live[i].1.pins.iter().all(|&c| c == 0);
                        prop_assert_eq!(m.pagemap_released(i), released);
                    }
                }
                settle(&m);
                prop_assert_eq!(m.pagemaps().len(), live.len());
            }
            // Take everything down: unpin all, complete or unmap each, from the last.
            while let Some((slot, s)) = live.pop() {
                let i = live.len();
                for (page, &c) in s.pins.iter().enumerate() {
                    for _ in 0..c {
                        m.put_page(pfn(slot, page as u64)).unwrap();
                    }
                }
                if s.dying {
                    m.memunmap_complete(i).unwrap();
                } else {
                    prop_assert_eq!(m.memunmap_pages(i), Ok(Memunmap::Done));
                }
            }
            settle(&m);
            prop_assert_eq!(snap(&m), initial);
        }
    }
}
