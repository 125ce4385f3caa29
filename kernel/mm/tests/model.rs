//! Property tests: long random sequences of allocations and frees of mixed orders and zones,
//! against a simple model (a map of live blocks), with the invariant checker after every step.
//! Under Miri the case count and sequence length are reduced.

use std::collections::BTreeMap;

use mm::testing::{FakePlatform, node};
use mm::{Gfp, MAX_ORDER, Machine, ZoneId};
use proptest::prelude::*;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

#[derive(Clone, Debug)]
enum Op {
    Alloc { order: u32, zone: u8, flags: u8 },
    Free { index: usize },
    Drain,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (prop_oneof![4 => 0u32..=2, 1 => 0u32..=MAX_ORDER], 0u8..3, 0u8..4)
            .prop_map(|(order, zone, flags)| Op::Alloc { order, zone, flags }),
        5 => any::<usize>().prop_map(|index| Op::Free { index }),
        1 => Just(Op::Drain),
    ]
}

/// RAM crossing 16 MiB and 4 GiB, with a reservation and a hole.
fn layout() -> Machine<FakePlatform> {
    if cfg!(miri) {
        return node(&[(0x1000, 0x9f000), (MIB, 24 * MIB)], &[(MIB, 2 * MIB)]);
    }
    node(
        &[
            (0x1000, 0x9f000),
            (MIB, 24 * MIB),
            (4 * GIB - 4 * MIB, 4 * GIB + 4 * MIB),
        ],
        &[(MIB, 2 * MIB)],
    )
}

fn cases() -> (u32, usize) {
    if cfg!(miri) { (1, 40) } else { (16, 250) }
}

fn zone_pages(n: &Machine<FakePlatform>) -> Vec<(u64, u64, u64)> {
    n.zones()
        .map(|z| (z.present(), z.managed(), z.free_pages()))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases().0,
        // Miri's isolation forbids the regression file.
        failure_persistence: if cfg!(miri) { None } else { ProptestConfig::default().failure_persistence },
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_alloc_free_sequences_keep_every_invariant(
        ops in proptest::collection::vec(op(), 1..cases().1)
    ) {
        let n = layout();
        let initial = zone_pages(&n);
        let mut live: BTreeMap<u64, u32> = BTreeMap::new();
        for op in ops {
            match op {
                Op::Alloc { order, zone, flags } => {
                    let mut gfp = [Gfp::DMA, Gfp::DMA32, Gfp::KERNEL][zone as usize] | Gfp::NOWARN;
                    gfp |= [Gfp::KERNEL, Gfp::ATOMIC, Gfp::MEMALLOC, Gfp::ZERO][flags as usize];
                    if let Some(pfn) = n.alloc_pages(gfp, order) {
                        let end = pfn + (1 << order);
                        prop_assert_eq!(pfn % (1 << order), 0);
                        // No overlap with any live block.
                        if let Some((&p, &o)) = live.range(..end).next_back() {
                            prop_assert!(p + (1 << o) <= pfn, "{pfn:#x} overlaps {p:#x}");
                        }
                        // The zone modifier is honoured.
                        let limit = [16 * MIB, 4 * GIB, u64::MAX][zone as usize] >> 12;
                        prop_assert!(end <= limit);
                        prop_assert!(ZoneId::for_pfn(pfn) == ZoneId::for_pfn(end - 1));
                        live.insert(pfn, order);
                    }
                }
                Op::Free { index } => {
                    if !live.is_empty() {
                        let (&pfn, &order) = live.iter().nth(index % live.len()).unwrap();
                        live.remove(&pfn);
                        n.free_pages(pfn, order).unwrap();
                        // A second free is refused and changes nothing.
                        let free = n.nr_free_pages();
                        prop_assert!(n.free_pages(pfn, order).is_err());
                        prop_assert_eq!(n.nr_free_pages(), free);
                    }
                }
                Op::Drain => n.drain_pages(),
            }
            // Under Miri the memmap walk runs once, at the end (one walk costs seconds there);
            // the free-area part of the checker still runs after every step.
            if let Err(e) = if cfg!(miri) {
                n.check_free_areas()
            } else {
                n.check()
            } {
                return Err(TestCaseError::fail(format!("check: {e}")));
            }
            // Conservation per zone: free + allocated + reserved = present.
            for z in ZoneId::RAM {
                let zone = n.nodes()[0].zone(z);
                let allocated: u64 = live
                    .iter()
                    .filter(|(p, _)| ZoneId::for_pfn(**p) == z)
                    .map(|(_, o)| 1u64 << o)
                    .sum();
                let reserved = zone.present() - zone.managed();
                prop_assert_eq!(zone.free_pages() + allocated + reserved, zone.present(), "{:?}", z);
            }
        }
        for (pfn, order) in live {
            n.free_pages(pfn, order).unwrap();
        }
        n.drain_pages();
        prop_assert!(n.check().is_ok());
        prop_assert_eq!(zone_pages(&n), initial);
    }
}
