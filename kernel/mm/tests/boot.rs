//! Boot: memmap, zones and the Linux boot lines, from plain RAM layouts.

use mm::testing::{FakePlatform, memblock, node, pc_node};
use mm::{KernelSizes, Machine, PageFlags, ZoneId, ZoneRanges};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

#[test]
fn pc_64m_zones_and_counters() {
    let n = pc_node(64);
    n.check().unwrap();
    let dma = n.nodes()[0].zone(ZoneId::Dma);
    assert_eq!((dma.start_pfn(), dma.spanned()), (1, 4095));
    // 0x1000-0x9f000 and 1 MiB-16 MiB.
    assert_eq!(dma.present(), (0x9f - 1) + (0x1000 - 0x100));
    let dma32 = n.nodes()[0].zone(ZoneId::Dma32);
    assert_eq!((dma32.start_pfn(), dma32.end_pfn()), (0x1000, 0x4000));
    assert_eq!(dma32.present(), 0x3000);
    assert!(!n.nodes()[0].zone(ZoneId::Normal).is_populated());
    assert!(!n.nodes()[0].zone(ZoneId::Device).is_populated());
    assert_eq!(n.max_pfn(), 0x4000);
    // NODE_DATA, the memmap (one section, 1 MiB) and the 2 MiB "kernel" are reserved.
    assert_eq!(n.memmap_ram_bytes(), MIB);
    let (nd_pa, nd_size) = n.node_data()[0];
    assert_eq!(
        nd_size, 4096,
        "a pg_data of one page (the per-CPU lists live on the heap)"
    );
    assert_eq!(
        nd_pa,
        64 * MIB - nd_size,
        "at the top of the node's RAM, as Linux's"
    );
    let reserved = n.physpages() - n.totalram_pages();
    assert_eq!(reserved, 256 + 512 + nd_size / 4096);
    let mut log = String::new();
    n.write_node_data(&mut log).unwrap();
    assert_eq!(log, "NODE_DATA(0) allocated [mem 0x03fff000-0x03ffffff]\n");
    assert_eq!(n.nr_free_pages(), n.totalram_pages());
    for z in ZoneId::RAM {
        let z = n.nodes()[0].zone(z);
        assert!(z.managed() <= z.present() && z.present() <= z.spanned());
    }
}

#[test]
#[cfg_attr(miri, ignore = "slow under Miri: see README")]
fn memmap_is_reserved_and_flagged() {
    let n = pc_node(64);
    let (pa, count) = n.platform().storage[0];
    assert_eq!(count, 32768);
    // memblock allocates top-down, the memmap 2 MiB aligned (Linux's section_map_size()):
    // the highest aligned MiB below NODE_DATA.
    assert_eq!(pa, (63 * MIB - n.node_data()[0].1) & !(2 * MIB - 1));
    assert_eq!(pa, 62 * MIB);
    for pfn in [pa >> 12, (pa >> 12) + 255] {
        let p = n.page(pfn).unwrap();
        assert!(
            p.flags()
                .contains(PageFlags::RESERVED.union(PageFlags::MEMMAP))
        );
    }
    assert!(!n.page(0).unwrap().flags().contains(PageFlags::MEMMAP));
    // Page 0 and the legacy hole are holes, not RAM.
    assert!(n.page(0).unwrap().flags().contains(PageFlags::HOLE));
    assert!(n.page(0xa0).unwrap().flags().contains(PageFlags::HOLE));
    assert!(n.pfn_valid(0x7fff) && !n.pfn_valid(0x8000));
}

#[test]
#[cfg_attr(miri, ignore = "slow under Miri: see README")]
fn zone_ranges_lines_match_linux() {
    let n = pc_node(512);
    let mut s = String::new();
    n.write_zone_ranges(&mut s).unwrap();
    assert_eq!(
        s,
        "Zone ranges:\n\
         \x20 DMA      [mem 0x0000000000001000-0x0000000000ffffff]\n\
         \x20 DMA32    [mem 0x0000000001000000-0x000000001fffffff]\n\
         \x20 Normal   empty\n\
         \x20 Device   empty\n\
         Movable zone start for each node\n\
         Early memory node ranges\n\
         \x20 node   0: [mem 0x0000000000001000-0x000000000009efff]\n\
         \x20 node   0: [mem 0x0000000000100000-0x000000001fffffff]\n\
         Initmem setup node 0 [mem 0x0000000000001000-0x000000001fffffff]\n\
         On node 0, zone DMA: 1 pages in unavailable ranges\n\
         On node 0, zone DMA: 97 pages in unavailable ranges\n"
    );
    // The free-standing computation gives the same lines without a memmap (all but the
    // unavailable ranges, which need one).
    let mb = memblock(&[(0x1000, 0x9f000), (0x10_0000, 512 * MIB)], &[]);
    let mut t = String::new();
    let none = mm::movable::ZoneMovable::none(&mm::movable::ArchZoneRanges::x86_64(
        mb.start_pfn(),
        mb.end_pfn(),
    ));
    mm::views::write_boot_ranges(&mut t, &ZoneRanges::from_memblock(&mb), &none, &mb, 1).unwrap();
    assert!(s.starts_with(&t));
}

#[test]
fn zone_ranges_above_4g() {
    let r = ZoneRanges::compute(
        1,
        (6 * GIB) >> 12,
        Some((0x10_0000_0000 >> 12, 0x10_0800_0000 >> 12)),
    );
    let mut s = String::new();
    r.write(&mut s).unwrap();
    assert!(s.contains("  DMA32    [mem 0x0000000001000000-0x00000000ffffffff]\n"));
    assert!(s.contains("  Normal   [mem 0x0000000100000000-0x000000017fffffff]\n"));
    assert!(s.contains("  Device   [mem 0x0000001000000000-0x0000001007ffffff]\n"));
}

#[test]
#[cfg_attr(miri, ignore = "slow under Miri: see README")]
fn boot_summary_line() {
    let n = pc_node(512);
    let mut s = String::new();
    let k = KernelSizes {
        code: 1024 * 1024,
        rwdata: 64 * 1024,
        rodata: 256 * 1024,
        init: 0,
        bss: 128 * 1024,
    };
    n.write_boot_summary(&mut s, &k).unwrap();
    let total = n.physpages() * 4;
    let free = n.nr_free_pages() * 4;
    let reserved = total - n.totalram_pages() * 4;
    assert_eq!(
        s,
        format!(
            "Memory: {free}K/{total}K available (1024K kernel code, 64K rwdata, 256K rodata, \
             0K init, 128K bss, {reserved}K reserved, 0K cma-reserved)\n"
        )
    );
    // 158 pages below 640 KiB and 512 MiB - 1 MiB above.
    assert_eq!(total, (158 + 130_816) * 4);
}

#[test]
fn buddyinfo_zoneinfo_meminfo_formats() {
    let n = pc_node(64);
    let mut b = String::new();
    n.write_buddyinfo(&mut b).unwrap();
    let lines: Vec<&str> = b.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0].starts_with("Node 0, zone      DMA "));
    assert!(lines[1].starts_with("Node 0, zone    DMA32 "));
    // Free blocks per order, as worked out for this layout: DMA32 is 12288 pages less the
    // top 1 MiB + 4 KiB (memmap and NODE_DATA), so one free block of each order 0-7 and 9
    // below the last eleven 4 MiB blocks.
    assert_eq!(
        lines[1],
        "Node 0, zone    DMA32      1      1      1      1      1      1      1      1      0      1     11 "
    );

    let mut z = String::new();
    n.write_zoneinfo(&mut z).unwrap();
    // Linux 6.1's zoneinfo_show_print, field for field (the counters this kernel keeps), with
    // Linux's arithmetic worked by hand: lowmem 3486 + 12031 = 15517 pages, min_free_kbytes
    // isqrt(15517 * 4 * 16) = 996 (249 pages); DMA32 min 249 * 12031 / 15517 = 193, steps of
    // 193 / 4 = 48; DMA min 55, steps of 13; DMA's protection 12031 / 256 = 46.
    assert!(z.contains(
        "Node 0, zone    DMA32\n  pages free     12031\n        boost    0\n        min      193\n        low      241\n        high     289\n        spanned  12288\n        present  12288\n        managed  12031\n        cma      0\n        protection: (0, 0, 0, 0, 0)\n      nr_free_pages 12031\n      numa_hit     0\n"
    ), "{z}");
    assert!(z.contains(
        "Node 0, zone      DMA\n  pages free     3486\n        boost    0\n        min      55\n        low      68\n        high     81\n        spanned  4095\n        present  3998\n        managed  3486\n        cma      0\n        protection: (0, 46, 46, 46, 46)\n"
    ), "{z}");
    // One CPU: Linux's zone_batchsize(12031) = rounddown_pow_of_two(2 + 1) - 1 = 1, and
    // zone_highsize = the low watermark 241 over the node's one CPU; the vm stats threshold
    // is 2 * fls(1) * (1 + fls(12031 >> 15)) = 2.
    assert!(z.contains("  pagesets\n    cpu: 0\n              count: 0\n              high:  241\n              batch: 1\n  vm stats threshold: 2\n  node_unreclaimable:  0\n  start_pfn:           4096\n"), "{z}");
    // Unpopulated zones stop after the protection line, Device included.
    assert!(z.contains(
        "Node 0, zone   Device\n  pages free     0\n        boost    0\n        min      0\n        low      0\n        high     0\n        spanned  0\n        present  0\n        managed  0\n        cma      0\n        protection: (0, 0, 0, 0, 0)\n"
    ), "{z}");
    assert!(z.ends_with("protection: (0, 0, 0, 0, 0)\n"));
    assert!(z.contains("Node 0, zone   Normal\n"));

    let mut m = String::new();
    n.write_meminfo(&mut m).unwrap();
    assert!(m.starts_with(&format!(
        "MemTotal:       {:>8} kB\n",
        n.totalram_pages() * 4
    )));
    assert!(m.contains(&format!(
        "MemFree:        {:>8} kB\n",
        n.nr_free_pages() * 4
    )));
    assert!(m.contains("Memmap:             1024 kB\n"));
    assert!(m.contains("StructPage:           32 B\n"));
}

#[test]
fn page_description() {
    let n = pc_node(64);
    let pfn = n.alloc_pages(mm::Gfp::KERNEL, 2).unwrap();
    let mut s = String::new();
    n.write_page(&mut s, pfn).unwrap();
    assert_eq!(
        s,
        format!(
            "page: pfn:{pfn:#x} phys:{:#x} node:0 zone:DMA32 refcount:1 order:2\nflags: 0x4(head)\n",
            pfn << 12
        )
    );
    let mut s = String::new();
    n.write_page(&mut s, 1 << 30).unwrap();
    assert!(s.contains("no struct page"));
}

#[test]
fn init_errors() {
    assert!(matches!(
        Machine::init(FakePlatform::new(), mm::Memblock::new()),
        Err(mm::InitError::NoMemory)
    ));
    let mut p = FakePlatform::new();
    p.fail_storage = true;
    assert!(matches!(
        Machine::init(p, memblock(&[(0, 64 * MIB)], &[])),
        Err(mm::InitError::Map(_))
    ));
    // RAM so small the memmap cannot fit.
    assert!(matches!(
        Machine::init(FakePlatform::new(), memblock(&[(0, 512 * 1024)], &[])),
        Err(mm::InitError::MemmapAlloc { section: 0 })
    ));
}

#[test]
#[cfg_attr(miri, ignore = "slow under Miri: see README")]
fn ram_far_apart_gets_memmap_only_where_present() {
    // 32 MiB low and 32 MiB at 1 TiB: two sections of memmap, nothing for the gap.
    let n = node(&[(MIB, 33 * MIB), (1 << 40, (1 << 40) + 32 * MIB)], &[]);
    n.check().unwrap();
    assert_eq!(n.sparse().present_sections(), 2);
    assert_eq!(n.memmap_ram_bytes(), 2 * MIB);
    let normal = n.nodes()[0].zone(ZoneId::Normal);
    assert_eq!(normal.start_pfn(), (4 * GIB) >> 12);
    assert_eq!(normal.end_pfn(), ((1u64 << 40) + 32 * MIB) >> 12);
    assert_eq!(normal.present(), (32 * MIB) >> 12);
}
