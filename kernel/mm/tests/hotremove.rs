//! remove_memory after offline: the machine as it was before the hot-add (counters, free
//! pages, sections, the platform's mappings and storage), refusals that change nothing, 50
//! add/remove cycles, and every failing platform call of add / online / offline / remove.

use std::format;
use std::sync::Mutex;

use mm::migrate::{MovableOps, MovableOwner};
use mm::testing::{FakePlatform, hotplug_state, pc_node, settle};
use mm::{Gfp, HotplugError, Machine, MemremapOptions, ZoneId};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const BLOCK_4G: u64 = (4 * GIB) >> 27;

#[derive(Default)]
struct Owner(Mutex<Vec<(u64, u32)>>);

impl MovableOps for Owner {
    fn isolate_page(&self, _: u64, _: u32) -> bool {
        true
    }
    fn migrate_page(&self, src: u64, dst: u64, order: u32) {
        let mut v = self.0.lock().unwrap();
        let e = v.iter_mut().find(|e| **e == (src, order)).unwrap();
        e.0 = dst;
    }
}

fn owner(n: &mut Machine<FakePlatform>) -> (&'static Owner, MovableOwner) {
    let o: &'static Owner = Box::leak(Box::default());
    let h = n.register_movable_ops(o).unwrap();
    (o, h)
}

#[test]
#[cfg_attr(miri, ignore = "slow under Miri: see README")]
fn offline_and_remove_leave_the_machine_as_before_the_hot_add() {
    let mut n = pc_node(64);
    let (o, h) = owner(&mut n);
    n.drain_all_pages();
    let before = hotplug_state(&n);
    let total = n.totalram_pages();
    let max_pfn = n.max_pfn();
    n.add_and_online_memory(0, 4 * GIB, 256 * MIB).unwrap();
    for i in 0..40 {
        let pfn = n.alloc_pages(Gfp::KERNEL, i % 3).unwrap();
        assert_eq!(pfn >> 16, (4 * GIB) >> 28, "inside the DIMM");
        n.set_page_movable(pfn, h).unwrap();
        o.0.lock().unwrap().push((pfn, i % 3));
    }
    assert_eq!(
        n.remove_memory(4 * GIB, 256 * MIB),
        Err(HotplugError::BlockOnline { nr: BLOCK_4G })
    );
    n.offline_memory_block(BLOCK_4G + 1).unwrap();
    let mid = hotplug_state(&n);
    assert_eq!(
        n.remove_memory(4 * GIB, 256 * MIB),
        Err(HotplugError::BlockOnline { nr: BLOCK_4G })
    );
    assert_eq!(hotplug_state(&n), mid, "a refused remove changes nothing");
    n.offline_memory_block(BLOCK_4G).unwrap();
    let normal = n.nodes()[0].zone(ZoneId::Normal);
    assert_eq!(
        (normal.spanned(), normal.present()),
        (0, 0),
        "shrink_zone_span"
    );
    assert_eq!(
        n.remove_memory(4 * GIB, 128 * MIB),
        Err(HotplugError::NotAdded)
    );
    let freed = n.remove_memory(4 * GIB, 256 * MIB).unwrap();
    assert_eq!(freed, 2 * MIB, "the range's own memmap");
    assert_eq!(n.platform().unmaps, vec![(4 * GIB, 256 * MIB)]);
    assert!(n.page((4 * GIB) >> 12).is_none() && !n.pfn_valid((4 * GIB) >> 12));
    assert_eq!(n.memory_block(BLOCK_4G), None);
    assert_eq!(
        n.max_pfn(),
        (4 * GIB + 256 * MIB) >> 12,
        "x86-64 never lowers max_pfn"
    );
    assert_ne!(max_pfn, n.max_pfn());
    // The movable blocks now live in boot RAM; once freed, everything is as before.
    for (pfn, order) in o.0.lock().unwrap().drain(..) {
        assert!(pfn < (64 * MIB) >> 12);
        n.free_pages(pfn, order).unwrap();
    }
    n.drain_all_pages();
    assert_eq!(n.totalram_pages(), total);
    assert_eq!(hotplug_state(&n), before);
    settle(&n);
    assert_eq!(
        n.remove_memory(4 * GIB, 256 * MIB),
        Err(HotplugError::NotAdded),
        "a second remove"
    );
}

#[test]
#[cfg_attr(miri, ignore = "slow under Miri: see README")]
fn fifty_add_remove_cycles_end_with_the_same_free_pages() {
    let mut n = pc_node(64);
    n.drain_all_pages();
    let before = hotplug_state(&n);
    let free = n.nr_free_pages();
    for i in 0..50 {
        let start = 4 * GIB + (i % 3) * 256 * MIB;
        n.add_and_online_memory(0, start, 256 * MIB).unwrap();
        let nr = start >> 27;
        n.offline_memory_block(nr).unwrap();
        n.offline_memory_block(nr + 1).unwrap();
        n.remove_memory(start, 256 * MIB).unwrap();
        n.drain_all_pages();
        assert_eq!(n.nr_free_pages(), free, "cycle {i}");
    }
    n.check().unwrap();
    // The platform's unmap record grew; everything else is as before.
    assert_eq!(hotplug_state(&n), before);
}

#[test]
#[cfg_attr(miri, ignore = "slow under Miri: see README")]
fn a_range_sharing_its_section_gives_back_its_pages_as_holes() {
    // With a device range: the section goes once both are gone.
    let mut n = pc_node(64);
    n.drain_all_pages();
    let before = hotplug_state(&n);
    n.memremap_pages(4 * GIB, 64 * MIB, MemremapOptions::new(0))
        .unwrap();
    n.add_and_online_memory(0, 4 * GIB + 64 * MIB, 64 * MIB)
        .unwrap();
    let e = n.offline_memory_block(BLOCK_4G).unwrap_err();
    assert!(format!("{e}").contains("failure to isolate range"), "{e}");
    n.memunmap_pages(0).unwrap();
    n.offline_memory_block(BLOCK_4G).unwrap();
    n.remove_memory(4 * GIB + 64 * MIB, 64 * MIB).unwrap();
    assert!(
        !n.pfn_valid((4 * GIB) >> 12),
        "nothing needs the section now"
    );
    n.drain_all_pages();
    assert_eq!(hotplug_state(&n), before);
    settle(&n);

    // With boot RAM (128-200 MiB of block 1; the boot memmap is in block 2, at the top):
    // the section stays, the range's pages are holes again.
    let mut n = mm::testing::node(
        &[(0x1000, 0x9f000), (MIB, 200 * MIB), (256 * MIB, 320 * MIB)],
        &[],
    );
    n.drain_all_pages();
    let before = hotplug_state(&n);
    n.add_and_online_memory(0, 200 * MIB, 56 * MIB).unwrap();
    assert_eq!(n.memory_blocks().len(), 3);
    n.offline_memory_block(1).unwrap();
    n.remove_memory(200 * MIB, 56 * MIB).unwrap();
    let p = n.page((200 * MIB) >> 12).unwrap();
    assert!(p.flags().contains(mm::PageFlags::HOLE));
    n.online_memory_block(1).unwrap();
    n.drain_all_pages();
    assert_eq!(hotplug_state(&n), before);
    settle(&n);
}

#[test]
#[cfg_attr(miri, ignore = "slow under Miri: see README")]
fn every_failing_platform_call_of_add_online_offline_remove_changes_nothing() {
    type Op = fn(&mut Machine<FakePlatform>) -> Result<u64, HotplugError>;
    let ops: [(&str, Op); 5] = [
        ("add", |n| n.add_memory(0, 4 * GIB, 256 * MIB).map(|()| 0)),
        ("online", |n| n.online_memory_block(BLOCK_4G)),
        ("online 2", |n| n.online_memory_block(BLOCK_4G + 1)),
        ("offline", |n| {
            n.offline_memory_block(BLOCK_4G + 1)?;
            n.offline_memory_block(BLOCK_4G)
        }),
        ("remove", |n| n.remove_memory(4 * GIB, 256 * MIB)),
    ];
    let mut n = pc_node(64);
    let mut failures = 0;
    for (name, op) in ops {
        for k in 1.. {
            n.drain_all_pages();
            let before = hotplug_state(&n);
            n.platform_mut().fail_nth_call_from_now(Some(k));
            let calls = n.platform().calls;
            let r = op(&mut n);
            let made = n.platform().calls - calls;
            n.platform_mut().fail_nth_call_from_now(None);
            match r {
                Err(e) => {
                    n.drain_all_pages();
                    assert_eq!(hotplug_state(&n), before, "{name}, call {k} failing: {e}");
                    n.check().unwrap();
                    failures += 1;
                }
                Ok(_) => {
                    assert!(made < k, "{name}: call {k} of {made} failed unnoticed");
                    break;
                }
            }
        }
    }
    // add_memory: map, memmap storage; remove_memory: the unmap. online and offline make no
    // fallible platform call (their failures are the refusals tested elsewhere).
    assert!(failures >= 3, "{failures}");
    settle(&n);
}

#[test]
#[cfg_attr(miri, ignore = "slow under Miri: see README")]
fn offline_and_remove_memory_rolls_back_when_a_block_cannot_go() {
    for movable in [false, true] {
        let mut n = pc_node(64);
        n.add_memory(0, 4 * GIB, 256 * MIB).unwrap();
        let how = if movable {
            mm::OnlineType::Movable
        } else {
            mm::OnlineType::Kernel
        };
        n.online_pages_type((4 * GIB) >> 12, (256 * MIB) >> 12, how)
            .unwrap();
        let (o, h) = owner(&mut n);
        let gfp = if movable {
            Gfp::HIGHUSER_MOVABLE
        } else {
            Gfp::KERNEL
        };
        for i in 0..20 {
            let pfn = n.alloc_pages(gfp, i % 3).unwrap();
            n.set_page_movable(pfn, h).unwrap();
            o.0.lock().unwrap().push((pfn, i % 3));
        }
        // One unmovable page in the first block: the second goes offline, then comes back.
        let mut skipped = Vec::new();
        let pin = loop {
            let p = n.alloc_pages(gfp, 0).unwrap();
            if p >> 15 == BLOCK_4G {
                break p;
            }
            skipped.push(p);
        };
        for p in skipped {
            n.free_page(p).unwrap();
        }
        n.drain_all_pages();
        let before = hotplug_state(&n);
        let blocks = o.0.lock().unwrap().clone();
        let e = n.offline_and_remove_memory(4 * GIB, 256 * MIB).unwrap_err();
        assert!(matches!(e, HotplugError::Offline(_)), "{e}");
        n.drain_all_pages();
        // Blocks the second block held moved out and stay where they went (as in Linux);
        // everything else is as before.
        let after = hotplug_state(&n);
        let strip = |s: &str| s.lines().skip(5).collect::<Vec<_>>().join("\n");
        assert_eq!(strip(&after), strip(&before), "movable={movable}");
        assert_eq!(o.0.lock().unwrap().len(), blocks.len());
        settle(&n);
        n.free_page(pin).unwrap();
        let pages = n.offline_and_remove_memory(4 * GIB, 256 * MIB).unwrap();
        assert_eq!(pages, 65536 - 512);
        assert!(n.hotplug_ranges().is_empty());
        settle(&n);
    }
}
