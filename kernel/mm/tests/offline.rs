//! Memory blocks, migration of movable allocations and offline_pages / online of memory
//! blocks: what moves, what cannot, and that a failed offline changes nothing.

use std::format;
use std::string::String;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use mm::memory_block::BlockState;
use mm::migrate::{MigrateError, MovableOps, MovableOwner};
use mm::testing::{FakePlatform, hotplug_state, pc_node, settle};
use mm::{Gfp, HotplugError, Machine, MemremapOptions, OnlineType, ZoneId};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
/// Block of the first 128 MiB at 4 GiB.
const BLOCK_4G: u64 = (4 * GIB) >> 27;

/// An owner of movable blocks like the shell's alloc table: it records its blocks and
/// follows them when they move; it can be told to refuse isolation.
#[derive(Default)]
struct Table {
    blocks: Mutex<Vec<(u64, u32)>>,
    refuse: AtomicBool,
    moves: Mutex<Vec<(u64, u64)>>,
}

impl MovableOps for Table {
    fn isolate_page(&self, _pfn: u64, _order: u32) -> bool {
        !self.refuse.load(Ordering::Relaxed)
    }
    fn migrate_page(&self, src: u64, dst: u64, order: u32) {
        let mut b = self.blocks.lock().unwrap();
        let e = b
            .iter_mut()
            .find(|e| **e == (src, order))
            .expect("migrate_page for a block the owner does not have");
        e.0 = dst;
        self.moves.lock().unwrap().push((src, dst));
    }
}

fn table(n: &mut Machine<FakePlatform>) -> (&'static Table, MovableOwner) {
    let t: &'static Table = Box::leak(Box::default());
    let owner = n.register_movable_ops(t).unwrap();
    (t, owner)
}

/// Allocate a movable block for `t`, writing a word into each of its frames.
fn alloc_movable(
    n: &Machine<FakePlatform>,
    t: &Table,
    owner: MovableOwner,
    order: u32,
    gfp: Gfp,
) -> Option<u64> {
    let pfn = n.alloc_pages(gfp | Gfp::NOWARN, order)?;
    n.set_page_movable(pfn, owner).unwrap();
    for i in 0..1u64 << order {
        n.platform().write_frame(pfn + i, (pfn + i) ^ 0x5a5a);
    }
    t.blocks.lock().unwrap().push((pfn, order));
    Some(pfn)
}

/// Every block of the owner still holds the words written at allocation time.
fn assert_contents_followed(n: &Machine<FakePlatform>, t: &Table, orig: &[(u64, u32)]) {
    let now = t.blocks.lock().unwrap().clone();
    assert_eq!(now.len(), orig.len());
    for (&(pfn, order), &(first, _)) in now.iter().zip(orig) {
        let p = n.page(pfn).unwrap();
        assert!(p.flags().contains(mm::PageFlags::MOVABLE), "pfn {pfn:#x}");
        for i in 0..1u64 << order {
            assert_eq!(n.platform().read_frame(pfn + i), Some((first + i) ^ 0x5a5a));
        }
    }
}

/// 64 MiB of boot RAM and 256 MiB hot-added at 4 GiB (ZONE_NORMAL), online.
fn machine_with_dimm() -> Machine<FakePlatform> {
    let mut n = pc_node(64);
    n.add_and_online_memory(0, 4 * GIB, 256 * MIB).unwrap();
    n
}

#[test]
#[cfg_attr(miri, ignore = "slow under Miri: see README")]
fn memory_blocks_as_sysfs_shows_them() {
    let mut n = pc_node(512);
    let blocks = n.memory_blocks();
    assert_eq!(blocks.len(), 4, "{blocks:?}");
    assert!(
        blocks
            .iter()
            .all(|b| b.state == BlockState::Online && !b.hot_added)
    );
    assert_eq!(blocks[0].zone, None, "block 0 holds DMA and DMA32");
    assert_eq!(blocks[1].zone, Some(ZoneId::Dma32));
    n.add_memory(0, 4 * GIB, 256 * MIB).unwrap();
    let b = n.memory_block(BLOCK_4G).unwrap();
    assert_eq!(
        (b.state, b.zone, b.nid),
        (BlockState::Offline, Some(ZoneId::Normal), 0)
    );
    assert!(b.hot_added);
    assert_eq!(b.ram_pages, 32768);
    let mut out = String::new();
    n.write_memory_blocks(&mut out).unwrap();
    assert!(
        out.contains(
            "memory32    offline -      node 0 [mem 0x0000000100000000-0x0000000107ffffff] phys_index 00000020 removable 1 valid_zones Normal Movable\n"
        ),
        "{out}"
    );
    assert!(out.contains("memory0     online  none   node 0 [mem 0x0000000000000000-0x0000000007ffffff] phys_index 00000000 removable 1 valid_zones none\n"), "{out}");
    n.online_memory_block(BLOCK_4G).unwrap();
    assert_eq!(n.memory_block(BLOCK_4G).unwrap().state, BlockState::Online);
    assert_eq!(
        n.memory_block(BLOCK_4G + 1).unwrap().state,
        BlockState::Offline
    );
    assert!(n.hotplug_ranges()[0].online);
    n.online_memory_block(BLOCK_4G + 1).unwrap();
    assert_eq!(n.memory_blocks().len(), 6);
    assert_eq!(n.memory_block(BLOCK_4G + 2), None);
    settle(&n);
}

#[test]
#[cfg_attr(miri, ignore = "slow under Miri: see README")]
fn migrate_page_moves_contents_and_tells_the_owner() {
    let mut n = machine_with_dimm();
    let (t, owner) = table(&mut n);
    let pfn = alloc_movable(&n, t, owner, 3, Gfp::KERNEL).unwrap();
    let free = n.nr_free_pages();
    let orig = t.blocks.lock().unwrap().clone();
    let dst = n.migrate_page(pfn).unwrap();
    assert_ne!(dst, pfn);
    assert_eq!(t.blocks.lock().unwrap()[0], (dst, 3));
    assert_contents_followed(&n, t, &orig);
    assert_eq!(n.nr_free_pages(), free, "the old block went back");
    assert!(
        !n.page(pfn)
            .unwrap()
            .flags()
            .contains(mm::PageFlags::MOVABLE)
    );
    assert_eq!(n.page(dst).unwrap().movable_owner(), Some(owner.index()));
    settle(&n);
    // Not movable: a plain allocation, a free page, a device page.
    let plain = n.alloc_pages(Gfp::KERNEL, 0).unwrap();
    assert_eq!(
        n.migrate_page(plain),
        Err(MigrateError::NotMovable { pfn: plain })
    );
    assert_eq!(
        n.set_page_movable(plain + 1, owner),
        Err(MigrateError::NotAllocated { pfn: plain + 1 })
    );
    // A pinned block stays.
    n.get_page(dst).unwrap();
    assert_eq!(
        n.migrate_page(dst),
        Err(MigrateError::Pinned {
            pfn: dst,
            refcount: 2
        })
    );
    n.put_page(dst).unwrap();
    // Freeing a movable block forgets its owner.
    n.free_pages(dst, 3).unwrap();
    t.blocks.lock().unwrap().clear();
    let again = n.alloc_pages(Gfp::KERNEL, 3).unwrap();
    assert_eq!(n.page(again).unwrap().movable_owner(), None);
    settle(&n);
}

#[test]
#[cfg_attr(miri, ignore = "slow under Miri: see README")]
fn offline_migrates_movable_blocks_and_online_brings_the_block_back() {
    let mut n = machine_with_dimm();
    let (t, owner) = table(&mut n);
    let total = n.totalram_pages();
    let free0 = n.nr_free_pages();
    // 40 movable blocks, all inside the DIMM (Normal is its only zone there).
    let mut in_second = 0;
    for i in 0..40 {
        let pfn = alloc_movable(&n, t, owner, i % 4, Gfp::KERNEL).unwrap();
        assert_eq!(n.page(pfn).unwrap().zone(), ZoneId::Normal);
        in_second += u64::from(pfn >> 15 == BLOCK_4G + 1);
    }
    let orig = t.blocks.lock().unwrap().clone();
    let block = if in_second > 0 {
        BLOCK_4G + 1
    } else {
        BLOCK_4G
    };
    let offlined = n.offline_memory_block(block).unwrap();
    assert_eq!(n.memory_block(block).unwrap().state, BlockState::Offline);
    assert_contents_followed(&n, t, &orig);
    for &(pfn, _) in t.blocks.lock().unwrap().iter() {
        assert_ne!(pfn >> 15, block, "a block stayed in the offline range");
    }
    assert!(!t.moves.lock().unwrap().is_empty());
    let own_memmap = if block == BLOCK_4G { 512 } else { 0 };
    assert_eq!(offlined, 32768 - own_memmap);
    assert_eq!(n.totalram_pages(), total - offlined);
    let normal = n.nodes()[0].zone(ZoneId::Normal);
    assert_eq!(normal.present(), 65536 - 32768);
    settle(&n);
    // Nothing is allocated from the offline block.
    let mut live = Vec::new();
    while let Some(p) = n.alloc_pages(Gfp::KERNEL | Gfp::NOWARN, 0) {
        assert_ne!(p >> 15, block);
        live.push(p);
    }
    for p in live {
        n.free_page(p).unwrap();
    }
    assert_eq!(
        n.offline_memory_block(block),
        Err(HotplugError::BlockOffline { nr: block })
    );
    n.online_memory_block(block).unwrap();
    assert_eq!(n.totalram_pages(), total);
    assert_eq!(
        n.online_memory_block(block),
        Err(HotplugError::BlockOnline { nr: block })
    );
    for (pfn, order) in t.blocks.lock().unwrap().drain(..) {
        n.free_pages(pfn, order).unwrap();
    }
    n.drain_all_pages();
    assert_eq!(n.nr_free_pages(), free0);
    settle(&n);
}

#[test]
#[cfg_attr(miri, ignore = "slow under Miri: see README")]
fn unmovable_page_fails_offline_and_changes_nothing() {
    let mut n = machine_with_dimm();
    let (t, owner) = table(&mut n);
    for _ in 0..8 {
        alloc_movable(&n, t, owner, 2, Gfp::KERNEL).unwrap();
    }
    // A plain allocation in the second block of the DIMM.
    let mut plain = Vec::new();
    let pin = loop {
        let p = n.alloc_pages(Gfp::KERNEL, 0).unwrap();
        if p >> 15 == BLOCK_4G + 1 {
            break p;
        }
        plain.push(p);
    };
    n.drain_all_pages();
    let before = hotplug_state(&n);
    let blocks = t.blocks.lock().unwrap().clone();
    let err = n.offline_memory_block(BLOCK_4G + 1).unwrap_err();
    let HotplugError::Offline(f) = err else {
        panic!("{err:?}")
    };
    assert_eq!(f.reason, "failure to isolate range");
    assert_eq!(f.page.unwrap().pfn, pin);
    let text = format!("{err}");
    assert!(
        text.ends_with(
            "page dumped because: unmovable page\nmemory offlining [mem 0x108000000-0x10fffffff] failed due to failure to isolate range"
        ),
        "{text}"
    );
    assert!(text.starts_with("page:ffffea"), "{text}");
    assert!(text.contains(&format!("refcount:1 mapcount:0 mapping:0000000000000000 index:0x0 pfn:{pin:#x}\nflags: 0x4(head)\n")), "{text}");
    assert_eq!(hotplug_state(&n), before);
    assert_eq!(*t.blocks.lock().unwrap(), blocks);
    settle(&n);
}

#[test]
#[cfg_attr(miri, ignore = "slow under Miri: see README")]
fn failed_migration_moves_everything_back() {
    for case in ["pinned", "refused", "no memory"] {
        let mut n = machine_with_dimm();
        let (t, owner) = table(&mut n);
        for i in 0..40 {
            alloc_movable(&n, t, owner, i % 3, Gfp::KERNEL).unwrap();
        }
        // The DIMM block the allocations went to (the allocator's placement decides), and
        // its last movable block is the one that cannot go.
        let blk = t
            .blocks
            .lock()
            .unwrap()
            .iter()
            .map(|b| b.0 >> 15)
            .find(|&b| b == BLOCK_4G || b == BLOCK_4G + 1)
            .expect("an allocation in the DIMM");
        let victim = t
            .blocks
            .lock()
            .unwrap()
            .iter()
            .filter(|b| b.0 >> 15 == blk)
            .map(|b| b.0)
            .max()
            .unwrap();
        let mut hog = Vec::new();
        match case {
            "pinned" => {
                n.get_page(victim).unwrap();
            }
            "refused" => t.refuse.store(true, Ordering::Relaxed),
            _ => {
                // Nothing free outside the block to migrate to.
                let mut inside = Vec::new();
                while let Some(p) = n.alloc_pages(Gfp::KERNEL | Gfp::NOWARN, 0) {
                    if p >> 15 == blk {
                        inside.push(p);
                    } else {
                        hog.push(p);
                    }
                }
                for p in inside {
                    n.free_page(p).unwrap();
                }
            }
        }
        n.drain_all_pages();
        let before = hotplug_state(&n);
        let blocks = t.blocks.lock().unwrap().clone();
        let frames = n.platform().frames.lock().clone();
        let err = n.offline_memory_block(blk).expect_err(case);
        let HotplugError::Offline(f) = err else {
            panic!("{case}: {err:?}")
        };
        assert_eq!(f.reason, "unmovable page", "{case}");
        let text = format!("{err}");
        let why = match case {
            "refused" => "isolation failed",
            _ => "migration failure",
        };
        assert!(
            text.contains(&format!("page dumped because: {why}\n")),
            "{case}: {text}"
        );
        // The first DIMM block starts with its own memmap: Linux offlines after it.
        let range = if blk == BLOCK_4G {
            "0x100200000-0x107ffffff"
        } else {
            "0x108000000-0x10fffffff"
        };
        assert!(
            text.ends_with(&format!(
                "memory offlining [mem {range}] failed due to unmovable page"
            )),
            "{case}: {text}"
        );
        assert_eq!(hotplug_state(&n), before, "{case}");
        assert_eq!(*t.blocks.lock().unwrap(), blocks, "{case}");
        if case == "pinned" {
            // Some moved before the victim and came back.
            assert!(!t.moves.lock().unwrap().is_empty(), "{case}");
        }
        // The owner's data is where the owner thinks it is.
        for &(pfn, order) in &blocks {
            for i in 0..1u64 << order {
                assert_eq!(
                    n.platform().read_frame(pfn + i),
                    frames.get(&(pfn + i)).copied()
                );
            }
        }
        settle(&n);
        for p in hog {
            n.free_page(p).unwrap();
        }
        if case == "pinned" {
            n.put_page(victim).unwrap();
        }
        t.refuse.store(false, Ordering::Relaxed);
        n.offline_memory_block(blk).unwrap();
        settle(&n);
    }
}

#[test]
#[cfg_attr(miri, ignore = "slow under Miri: see README")]
fn bad_blocks_and_boot_memory() {
    let mut n = pc_node(512);
    let before = hotplug_state(&n);
    assert_eq!(
        n.offline_memory_block(1000),
        Err(HotplugError::NoBlock { nr: 1000 })
    );
    assert_eq!(
        n.online_memory_block(1000),
        Err(HotplugError::NoBlock { nr: 1000 })
    );
    assert_eq!(
        n.offline_memory_block(u64::MAX),
        Err(HotplugError::NoBlock { nr: u64::MAX })
    );
    assert_eq!(
        n.online_memory_block(1),
        Err(HotplugError::BlockOnline { nr: 1 })
    );
    // Block 0: DMA and DMA32.
    let e = n.offline_memory_block(0).unwrap_err();
    assert_eq!(
        format!("{e}"),
        "memory offlining [mem 0x00000000-0x07ffffff] failed due to mixed zones"
    );
    assert_eq!(hotplug_state(&n), before);
    // Boot memory whose pages are all free can go offline and come back.
    let free = n.nr_free_pages();
    let taken = n.offline_memory_block(2).unwrap();
    assert_eq!(taken, 32768);
    assert_eq!(n.nr_free_pages(), free - 32768);
    settle(&n);
    n.online_memory_block(2).unwrap();
    assert_eq!(n.nr_free_pages(), free);
    n.drain_all_pages();
    assert_eq!(hotplug_state(&n), before);
    settle(&n);
}

#[test]
#[cfg_attr(miri, ignore = "slow under Miri: see README")]
fn device_pages_and_foreign_memmap_are_unmovable() {
    // A device range and hot-added RAM share the section at 4 GiB.
    let mut n = pc_node(64);
    n.memremap_pages(4 * GIB, 64 * MIB, MemremapOptions::new(0))
        .unwrap();
    n.add_and_online_memory(0, 4 * GIB + 64 * MIB, 64 * MIB)
        .unwrap();
    let before = hotplug_state(&n);
    let e = n.offline_memory_block(BLOCK_4G).unwrap_err();
    let HotplugError::Offline(f) = e else {
        panic!("{e:?}")
    };
    assert_eq!(
        f.page.unwrap().pfn,
        (4 * GIB) >> 12,
        "the first device page"
    );
    assert!(f.page.unwrap().flags.contains(mm::PageFlags::DEVICE));
    assert_eq!(hotplug_state(&n), before);
    settle(&n);

    // A DIMM whose block holds the memmap of a later device range (taken from the buddy
    // allocator, which only the DIMM can give).
    let mut n = machine_with_dimm();
    let mut hog = Vec::new();
    while let Some(p) = n.alloc_pages(Gfp::DMA32 | Gfp::NOWARN, 0) {
        hog.push(p);
    }
    n.memremap_pages(8 * GIB, 128 * MIB, MemremapOptions::new(128 * MIB))
        .unwrap();
    let head = mm::testing::memmap_block_head(&n).unwrap();
    let blk = head >> 15;
    assert!(blk == BLOCK_4G || blk == BLOCK_4G + 1);
    let before = hotplug_state(&n);
    let e = n.offline_memory_block(blk).unwrap_err();
    let HotplugError::Offline(f) = e else {
        panic!("{e:?}")
    };
    assert_eq!(f.page.unwrap().pfn, head);
    assert!(f.page.unwrap().flags.contains(mm::PageFlags::MEMMAP));
    assert_eq!(hotplug_state(&n), before);
    for p in hog {
        n.free_page(p).unwrap();
    }
    settle(&n);
}

#[test]
#[cfg_attr(miri, ignore = "slow under Miri: see README")]
fn blocks_online_to_movable_and_the_dimm_keeps_one_zone() {
    let mut n = pc_node(64);
    n.add_memory(0, 4 * GIB, 256 * MIB).unwrap();
    n.online_memory_block_type(BLOCK_4G + 1, OnlineType::Movable)
        .unwrap();
    let b = n.memory_block(BLOCK_4G).unwrap();
    assert_eq!(
        b.valid_zones().to_string(),
        "Movable",
        "joins its DIMM's zone"
    );
    let before = hotplug_state(&n);
    assert_eq!(
        n.online_memory_block_type(BLOCK_4G, OnlineType::Kernel),
        Err(HotplugError::ZoneConflict {
            nr: BLOCK_4G,
            zone: ZoneId::Movable
        })
    );
    assert_eq!(hotplug_state(&n), before);
    n.online_memory_block(BLOCK_4G).unwrap();
    let movable = n.nodes()[0].zone(ZoneId::Movable);
    assert_eq!(movable.present(), 65536);
    assert_eq!(movable.managed(), 65536 - 512);
    let (t, owner) = table(&mut n);
    for i in 0..40 {
        let pfn = alloc_movable(&n, t, owner, i % 4, Gfp::HIGHUSER_MOVABLE).unwrap();
        assert_eq!(n.page(pfn).unwrap().zone(), ZoneId::Movable);
    }
    let orig = t.blocks.lock().unwrap().clone();
    n.offline_memory_block(BLOCK_4G).unwrap();
    assert_contents_followed(&n, t, &orig);
    // Targets of Movable pages may be Movable (__GFP_HIGHMEM): the other block.
    for &(pfn, _) in t.blocks.lock().unwrap().iter() {
        assert_eq!(pfn >> 15, BLOCK_4G + 1);
    }
    settle(&n);
    n.offline_memory_block(BLOCK_4G + 1).unwrap();
    // No Movable memory is left: the blocks went to the kernel zones.
    for &(pfn, _) in t.blocks.lock().unwrap().iter() {
        assert_eq!(n.page(pfn).unwrap().zone(), ZoneId::Dma32);
    }
    assert_contents_followed(&n, t, &orig);
    assert!(!n.hotplug_ranges()[0].online);
    assert_eq!(n.nodes()[0].zone(ZoneId::Movable).present(), 0);
    settle(&n);
    // Offline as a whole, the DIMM may go to either zone again.
    // (Movable's span shrank away from it: the default is the kernel zone.)
    assert_eq!(
        n.memory_block(BLOCK_4G).unwrap().valid_zones().to_string(),
        "Normal Movable"
    );
    n.online_memory_block_type(BLOCK_4G, OnlineType::Kernel)
        .unwrap();
    assert_eq!(n.memory_block(BLOCK_4G).unwrap().zone, Some(ZoneId::Normal));
    settle(&n);
}

/// QEMU's 2 GiB PC with `movablecore=256M`, as Linux 6.1 booted it
/// (tests/data/linux-6.1-qemu-movablecore.*).
fn qemu_2g_movablecore_256m() -> Machine<FakePlatform> {
    let mb = mm::testing::memblock(&[(0x1000, 0x9f000), (0x10_0000, 0x7ffe_0000)], &[]);
    let opts = mm::mm_init::InitOptions {
        core: mm::movable::CoreParams {
            required_movablecore: 256 << 8,
            ..mm::movable::CoreParams::default()
        },
        ..mm::mm_init::InitOptions::default()
    };
    Machine::init_with(FakePlatform::new(), mb, mm::Topology::single(), &opts).unwrap()
}

#[test]
#[cfg_attr(miri, ignore = "slow under Miri: see README")]
fn memory_blocks_match_linux_on_the_movablecore_machine() {
    let mut n = qemu_2g_movablecore_256m();
    let linux = include_str!("../../../tests/data/linux-6.1-qemu-movablecore.memory");
    // `PATH STATE PHYS_INDEX VALID_ZONES REMOVABLE` per block, then the block size.
    let mut want: Vec<(u64, String)> = linux
        .lines()
        .filter_map(|l| {
            let (path, rest) = l.split_once(' ')?;
            let nr = path.strip_prefix("/sys/devices/system/memory/memory")?;
            Some((nr.parse().unwrap(), rest.to_string()))
        })
        .collect();
    want.sort();
    assert!(linux.lines().any(|l| l == "8000000"), "block size 128 MiB");
    assert_eq!(mm::memory_block::MEMORY_BLOCK_SIZE, 0x800_0000);
    let got: Vec<(u64, String)> = n
        .memory_blocks()
        .iter()
        .map(|b| {
            (
                b.nr,
                format!("{} {:08x} {} 1", b.state.name(), b.nr, b.valid_zones()),
            )
        })
        .collect();
    assert_eq!(got, want);
    // A block of boot ZONE_MOVABLE goes offline (nothing unmovable in it) and comes back
    // into Movable, its boot zone.
    let free = n.nr_free_pages();
    n.offline_memory_block(14).unwrap();
    assert_eq!(n.memory_block(14).unwrap().state, BlockState::Offline);
    assert_eq!(
        n.online_memory_block_type(14, OnlineType::Kernel),
        Err(HotplugError::ZoneConflict {
            nr: 14,
            zone: ZoneId::Movable
        })
    );
    n.online_memory_block(14).unwrap();
    assert_eq!(n.memory_block(14).unwrap().zone, Some(ZoneId::Movable));
    n.drain_all_pages();
    assert_eq!(n.nr_free_pages(), free);
    settle(&n);
}
