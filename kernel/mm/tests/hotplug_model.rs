//! Property test: random sequences of hot-add, online (default, kernel, movable), offline, remove,
//! allocations (movable or not) and frees against a simple model of the blocks and the live
//! allocations, with the invariant checker after every step. A failed operation must leave
//! everything as it was; an offline fails exactly when the block holds an allocation without
//! a movable owner (or there is no memory to move to); a movable block's contents follow it.

use std::collections::BTreeMap;
use std::format;
use std::string::String;
use std::sync::Mutex;

use mm::memory_block::BlockState;
use mm::migrate::{MigrateError, MovableOps, MovableOwner};
use mm::testing::{FakePlatform, hotplug_state, pc_node};
use mm::{Gfp, HotplugError, Machine, OnlineType};
use proptest::prelude::*;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
/// DIMM slots: 256 MiB each from 4 GiB on (two blocks each).
const SLOTS: u64 = 3;
const SLOT_SIZE: u64 = 256 * MIB;

fn slot_base(slot: u64) -> u64 {
    4 * GIB + slot * SLOT_SIZE
}

#[derive(Clone, Debug)]
enum Op {
    Add { slot: u64 },
    Online { block: u64, how: u8 },
    Offline { block: u64 },
    Alloc { order: u32, movable: bool, gfp: u8 },
    Free { index: usize },
    Remove { slot: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    let blocks = 0..SLOTS * 2;
    prop_oneof![
        1 => (0..SLOTS).prop_map(|slot| Op::Add { slot }),
        3 => (blocks.clone(), 0u8..3).prop_map(|(block, how)| Op::Online { block, how }),
        4 => blocks.prop_map(|block| Op::Offline { block }),
        8 => (0u32..=4, any::<bool>(), 0u8..3)
            .prop_map(|(order, movable, gfp)| Op::Alloc { order, movable, gfp }),
        5 => any::<usize>().prop_map(|index| Op::Free { index }),
        2 => (0..SLOTS).prop_map(|slot| Op::Remove { slot }),
    ]
}

/// The owner of the movable blocks: pfn → order, followed on migration.
#[derive(Default)]
struct Owner(Mutex<BTreeMap<u64, u32>>);

impl MovableOps for Owner {
    fn isolate_page(&self, pfn: u64, _order: u32) -> bool {
        self.0.lock().unwrap().contains_key(&pfn)
    }
    fn migrate_page(&self, src: u64, dst: u64, order: u32) {
        let mut m = self.0.lock().unwrap();
        assert_eq!(
            m.remove(&src),
            Some(order),
            "migrate_page of an unknown block"
        );
        m.insert(dst, order);
    }
}

/// What a failed operation must not change.
fn snapshot(n: &Machine<FakePlatform>, owner: &Owner) -> String {
    format!("{}{:?}\n", hotplug_state(n), owner.0.lock().unwrap())
}

struct Model {
    n: Machine<FakePlatform>,
    owner: &'static Owner,
    handle: MovableOwner,
    added: [bool; SLOTS as usize],
    /// Plain (unmovable) allocations.
    plain: Vec<(u64, u32)>,
    /// `totalram - free - allocated` stays constant: the kernel's own pages.
    kernel_pages: u64,
}

impl Model {
    fn allocated(&self) -> u64 {
        let movable: u64 = self.owner.0.lock().unwrap().values().map(|&o| 1 << o).sum();
        movable + self.plain.iter().map(|&(_, o)| 1u64 << o).sum::<u64>()
    }

    fn kernel_pages(&self) -> u64 {
        self.n.totalram_pages() - self.n.nr_free_pages() - self.allocated()
    }

    fn block_of(block: u64) -> u64 {
        slot_base(0) / (128 * MIB) + block
    }

    fn step(&mut self, op: &Op) {
        let before = snapshot(&self.n, self.owner);
        let n = &mut self.n;
        match *op {
            Op::Add { slot } => {
                let r = n.add_memory(0, slot_base(slot), SLOT_SIZE);
                assert_eq!(r.is_ok(), !self.added[slot as usize], "{r:?}");
                if r.is_err() {
                    assert_eq!(snapshot(n, self.owner), before);
                }
                self.added[slot as usize] = true;
                self.kernel_pages = self.kernel_pages();
            }
            Op::Online { block, how } => {
                let nr = Self::block_of(block);
                let how =
                    [OnlineType::Online, OnlineType::Kernel, OnlineType::Movable][usize::from(how)];
                let state = n.memory_block(nr).map(|b| b.state);
                let r = n.online_memory_block_type(nr, how);
                match (state, &r) {
                    (None, Err(HotplugError::NoBlock { .. }))
                    | (Some(BlockState::Online), Err(HotplugError::BlockOnline { .. }))
                    | (Some(BlockState::Offline), Err(HotplugError::ZoneConflict { .. })) => {
                        assert_eq!(snapshot(n, self.owner), before)
                    }
                    (Some(BlockState::Offline), Ok(_)) => {
                        assert_eq!(n.memory_block(nr).unwrap().state, BlockState::Online)
                    }
                    other => panic!("online {nr}: {other:?}"),
                }
            }
            Op::Offline { block } => {
                let nr = Self::block_of(block);
                let b = n.memory_block(nr);
                let (s, e) = (nr << 15, (nr + 1) << 15);
                let unmovable = self.plain.iter().any(|&(p, _)| p >= s && p < e);
                let r = n.offline_memory_block(nr);
                match (b.map(|b| b.state), &r) {
                    (None, Err(HotplugError::NoBlock { .. }))
                    | (Some(BlockState::Offline), Err(HotplugError::BlockOffline { .. })) => {
                        assert_eq!(snapshot(n, self.owner), before)
                    }
                    (Some(BlockState::Online), Err(HotplugError::Offline(f))) => {
                        assert!(
                            unmovable || matches!(f.migrate, Some(MigrateError::NoMemory { .. })),
                            "{f}"
                        );
                        assert_eq!(snapshot(n, self.owner), before, "{f}");
                    }
                    (Some(BlockState::Online), Ok(_)) => {
                        assert!(!unmovable);
                        assert_eq!(n.memory_block(nr).unwrap().state, BlockState::Offline);
                        for &p in self.owner.0.lock().unwrap().keys() {
                            assert!(p < s || p >= e, "movable block left in the offline block");
                        }
                    }
                    other => panic!("offline {nr}: {other:?}"),
                }
            }
            Op::Alloc {
                order,
                movable,
                gfp,
            } => {
                let gfp = [Gfp::KERNEL, Gfp::DMA32, Gfp::HIGHUSER_MOVABLE][usize::from(gfp)]
                    | Gfp::NOWARN;
                if let Some(pfn) = n.alloc_pages(gfp, order) {
                    if movable {
                        n.set_page_movable(pfn, self.handle).unwrap();
                        for i in 0..1u64 << order {
                            n.platform().write_frame(pfn + i, pfn + i);
                        }
                        self.owner.0.lock().unwrap().insert(pfn, order);
                    } else {
                        self.plain.push((pfn, order));
                    }
                }
            }
            Op::Remove { slot } => {
                let nr = Self::block_of(slot * 2);
                let offline = [nr, nr + 1].iter().all(|&b| {
                    n.memory_block(b)
                        .is_some_and(|b| b.state == BlockState::Offline)
                });
                let r = n.remove_memory(slot_base(slot), SLOT_SIZE);
                match (self.added[slot as usize], offline, &r) {
                    (false, _, Err(HotplugError::NotAdded))
                    | (true, false, Err(HotplugError::BlockOnline { .. })) => {
                        assert_eq!(snapshot(n, self.owner), before)
                    }
                    (true, true, Ok(_)) => {
                        assert_eq!(n.memory_block(nr), None);
                        assert!(!n.pfn_valid(slot_base(slot) >> 12));
                        self.added[slot as usize] = false;
                    }
                    other => panic!("remove slot {slot}: {other:?}"),
                }
            }
            Op::Free { index } => {
                let movable = self.owner.0.lock().unwrap().len();
                let total = self.plain.len() + movable;
                if total > 0 {
                    let i = index % total;
                    let (pfn, order) = if i < self.plain.len() {
                        self.plain.swap_remove(i)
                    } else {
                        let mut m = self.owner.0.lock().unwrap();
                        let (&p, &o) = m.iter().nth(i - self.plain.len()).unwrap();
                        m.remove(&p);
                        (p, o)
                    };
                    n.free_pages(pfn, order).unwrap();
                }
            }
        }
        self.n
            .check()
            .unwrap_or_else(|e| panic!("after {op:?}: {e}"));
        assert_eq!(self.kernel_pages(), self.kernel_pages, "after {op:?}");
    }

    /// Every movable block holds the words written when it was allocated, which name the
    /// frames it started in: at least the frame count and order match.
    fn check_contents(&self) {
        for (&pfn, &order) in self.owner.0.lock().unwrap().iter() {
            let first = self.n.platform().read_frame(pfn).expect("contents lost");
            for i in 0..1u64 << order {
                assert_eq!(self.n.platform().read_frame(pfn + i), Some(first + i));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 24,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    #[cfg_attr(miri, ignore = "slow under Miri: see README")]
    fn random_hotplug_sequences_match_the_model(ops in proptest::collection::vec(op(), 1..80)) {
        let mut n = pc_node(64);
        // Slot 0 starts plugged and online, so most sequences offline something.
        n.add_and_online_memory(0, slot_base(0), SLOT_SIZE).unwrap();
        let owner: &'static Owner = Box::leak(Box::default());
        let handle = n.register_movable_ops(owner).unwrap();
        let mut m = Model {
            n,
            owner,
            handle,
            added: [true, false, false],
            plain: Vec::new(),
            kernel_pages: 0,
        };
        m.kernel_pages = m.kernel_pages();
        for op in &ops {
            m.step(op);
            m.check_contents();
        }
    }
}
