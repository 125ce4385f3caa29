use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use super::{QEMU_SEABIOS_512M, table};
use crate::cmdline::apply_memmap;
use crate::e820::{E820Table, parse_dmesg};
use crate::iomem::*;
use crate::nfit::{Guid, SpaRange};
use crate::pmem::collect_persistent;
use crate::range::PhysRange;

fn res(start: u64, end_excl: u64, name: &str, kind: ResourceKind) -> Resource {
    Resource::new(PhysRange::new(start, end_excl), name, kind)
}

fn nvdimm() -> SpaRange {
    SpaRange {
        range_index: 2,
        flags: 3,
        proximity_domain: 0,
        guid: Guid::PERSISTENT_MEMORY,
        base: 0x1_0000_0000,
        length: 0x800_0000,
        attributes: 0x8008,
        location_cookie: None,
    }
}

/// QEMU with `memmap=64M!256M` and an NVDIMM, after the zone-setup trim, with the kernel image.
fn qemu_tree() -> (E820Table, IomemTree) {
    let mut t = parse_dmesg(QEMU_SEABIOS_512M).unwrap();
    t.sanitize();
    apply_memmap("memmap=64M!256M", &mut t);
    t.trim_for_zones();
    let (pmem, rejected) = collect_persistent(&t, &[nvdimm()]);
    assert!(rejected.is_empty());
    let (mut tree, conflicts) = IomemTree::from_e820(&t, &pmem);
    assert!(conflicts.is_empty());
    tree.insert(res(0x200000, 0x400000, "Kernel code", ResourceKind::Kernel))
        .unwrap();
    tree.insert(res(0x400000, 0x500000, "Kernel data", ResourceKind::Kernel))
        .unwrap();
    (t, tree)
}

#[test]
fn qemu_iomem_prints_like_linux() {
    let (_, tree) = qemu_tree();
    assert_eq!(
        tree.to_string(),
        "\
00000000-00000fff : Reserved
00001000-0009fbff : System RAM
0009fc00-0009ffff : Reserved
000f0000-000fffff : Reserved
00100000-0fffffff : System RAM
  00200000-003fffff : Kernel code
  00400000-004fffff : Kernel data
10000000-13ffffff : Persistent Memory (legacy)
14000000-1ffdffff : System RAM
1ffe0000-1fffffff : Reserved
feffc000-feffffff : Reserved
fffc0000-ffffffff : Reserved
100000000-107ffffff : Persistent Memory
fd00000000-ffffffffff : Reserved
"
    );
}

#[test]
fn every_e820_type_has_its_linux_name() {
    let t = table(&[
        (0x1000, 0x2000, 1),
        (0x2000, 0x3000, 2),
        (0x3000, 0x4000, 3),
        (0x4000, 0x5000, 4),
        (0x5000, 0x6000, 5),
        (0x6000, 0x7000, 7),
        (0x7000, 0x8000, 12),
        (0x8000, 0x9000, 0xefff_ffff),
        (0x9000, 0xa000, 20),
    ]);
    let (pmem, _) = collect_persistent(&t, &[]);
    let (tree, conflicts) = IomemTree::from_e820(&t, &pmem);
    assert!(conflicts.is_empty());
    let names: Vec<String> = tree.children.iter().map(|r| r.name.clone()).collect();
    assert_eq!(
        names,
        [
            "System RAM",
            "Reserved",
            "ACPI Tables",
            "ACPI Non-volatile Storage",
            "Unusable memory",
            "Persistent Memory",
            "Persistent Memory (legacy)",
            "Soft Reserved",
            "Unknown E820 type"
        ]
    );
}

#[test]
fn insert_nests_adopts_and_conflicts() {
    let mut tree = IomemTree::new();
    // Children first: the parent inserted later adopts them (Linux inserts the kernel image
    // before System RAM).
    tree.insert(res(0x200000, 0x300000, "Kernel code", ResourceKind::Kernel))
        .unwrap();
    tree.insert(res(0x300000, 0x380000, "Kernel data", ResourceKind::Kernel))
        .unwrap();
    tree.insert(res(
        0x100000,
        0x1000000,
        "System RAM",
        ResourceKind::SystemRam,
    ))
    .unwrap();
    // Nested two levels down.
    tree.insert(res(0x210000, 0x211000, "inner", ResourceKind::Other))
        .unwrap();
    // An equal range becomes the parent of the existing one.
    tree.insert(res(0x300000, 0x380000, "wrapper", ResourceKind::Other))
        .unwrap();
    assert_eq!(
        tree.to_string(),
        "\
00100000-00ffffff : System RAM
  00200000-002fffff : Kernel code
    00210000-00210fff : inner
  00300000-0037ffff : wrapper
    00300000-0037ffff : Kernel data
"
    );
    // Partial overlap.
    let c = tree
        .insert(res(0x0f0000, 0x200000, "bad", ResourceKind::Other))
        .unwrap_err();
    assert_eq!(
        c.to_string(),
        "iomem: cannot insert 000f0000-001fffff \"bad\": it conflicts with 00100000-00ffffff \
         \"System RAM\""
    );
    // Partial overlap one level down.
    assert!(
        tree.insert(res(0x2f0000, 0x310000, "bad", ResourceKind::Other))
            .is_err()
    );
    // Enclosing several top-level resources, and one partly.
    let mut t2 = tree.clone();
    t2.insert(res(0x2000000, 0x3000000, "b", ResourceKind::Other))
        .unwrap();
    t2.insert(res(0, 0x4000000, "all", ResourceKind::Other))
        .unwrap();
    assert_eq!(t2.children.len(), 1);
    assert_eq!(t2.children[0].children.len(), 2);
    assert!(
        t2.insert(res(0x3000000, 0x5000000, "x", ResourceKind::Other))
            .is_err()
    );
    // request: top level only, any overlap is a conflict.
    assert!(
        tree.request(res(0x200000, 0x201000, "k", ResourceKind::Other))
            .is_err()
    );
    tree.request(res(0x1000000, 0x2000000, "next", ResourceKind::Other))
        .unwrap();
    assert_eq!(tree.children.len(), 2);
    // An inverted resource is refused.
    let inverted = Resource {
        start: 5,
        end: 4,
        name: "inv".to_string(),
        kind: ResourceKind::Other,
        children: vec![],
    };
    assert!(tree.insert(inverted.clone()).is_err());
    assert!(tree.request(inverted).is_err());
    for empty in [
        PhysRange::new(0, 0),
        PhysRange::new(0x5000, 0x5000),
        PhysRange::new(9, 3),
    ] {
        let r = Resource::new(empty, "empty", ResourceKind::Other);
        assert!(r.end < r.start);
        assert!(tree.insert(r).is_err());
    }
}

#[test]
fn lookup_returns_the_chain() {
    let (_, tree) = qemu_tree();
    let chain: Vec<&str> = tree
        .lookup(0x200010)
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(chain, ["System RAM", "Kernel code"]);
    assert!(tree.lookup(0x2000_0000).is_empty());
}

#[test]
fn region_intersects_finds_nested_kinds() {
    let (_, tree) = qemu_tree();
    let ram = |k| k == ResourceKind::SystemRam;
    let pmem = |k| matches!(k, ResourceKind::Pmem | ResourceKind::PmemLegacy);
    let hit = tree
        .region_intersects(PhysRange::new(0xffff_0000, 0x1_0800_0000), pmem)
        .unwrap();
    assert_eq!((hit.start, hit.end), (0x1_0000_0000, 0x1_07ff_ffff));
    assert!(
        tree.region_intersects(PhysRange::new(0x1_0000_0000, 0x1_0800_0000), ram)
            .is_none()
    );
    let hit = tree
        .region_intersects(PhysRange::new(0xfff_f000, 0x1000_1000), ram)
        .unwrap();
    assert_eq!(hit.start, 0x100000);
    let kernel = tree
        .region_intersects(PhysRange::new(0x3f_f000, 0x40_1000), |k| {
            k == ResourceKind::Kernel
        })
        .unwrap();
    assert_eq!(kernel.name, "Kernel code");
    assert!(
        tree.region_intersects(PhysRange::new(0x5000, 0x5000), |_| true)
            .is_none()
    );
}

#[test]
fn indentation_stops_at_five_levels() {
    let mut tree = IomemTree::new();
    for depth in 0..7u64 {
        tree.insert(res(
            depth * 0x10,
            0x1000 - depth * 0x10,
            "n",
            ResourceKind::Other,
        ))
        .unwrap();
    }
    let lines: Vec<String> = tree.to_string().lines().map(String::from).collect();
    assert_eq!(lines[0], "00000000-00000fff : n");
    assert_eq!(lines[5], "          00000050-00000faf : n");
    assert_eq!(lines[6], "          00000060-00000f9f : n");
}

#[test]
fn devmem_policy_with_pmem_below_ram() {
    let (_, tree) = qemu_tree();
    let allowed = |addr, len| devmem_is_allowed(&tree, addr, len);
    // First 1 MiB: RAM, reserved and holes alike.
    assert_eq!(allowed(0, 4096), Ok(()));
    assert_eq!(allowed(0x1000, 8), Ok(()));
    assert_eq!(allowed(0xa0000, 0x10000), Ok(()));
    assert_eq!(allowed(0xffff0, 0x10), Ok(()));
    // RAM above 1 MiB, also the kernel image, also the RAM above the pmem.
    for addr in [0x100000, 0x200000, 0x1400_0000, 0x1ffd_ffff] {
        let e = allowed(addr, 1).unwrap_err();
        assert!(
            matches!(e, DevmemRefusal::SystemRam { .. }),
            "{addr:#x}: {e}"
        );
    }
    assert_eq!(
        allowed(0x100000, 1).unwrap_err().to_string(),
        "devmem: refused: 00100000-0fffffff is System RAM; only RAM in the first 1 MiB may be read"
    );
    // Spanning from the first MiB into RAM.
    assert!(allowed(0xff000, 0x2000).is_err());
    // Persistent memory below RAM (memmap=64M!256M) and the NVDIMM.
    let e = allowed(0x1000_0000, 8).unwrap_err();
    assert_eq!(
        e.to_string(),
        "devmem: refused: 10000000-13ffffff is Persistent Memory (legacy); use the pmem driver \
         for persistent memory"
    );
    assert!(matches!(
        allowed(0x1_0000_0000, 4096),
        Err(DevmemRefusal::Persistent { .. })
    ));
    // Reserved ranges may be read.
    assert_eq!(allowed(0x1ffe_0000, 0x20000), Ok(()));
    assert_eq!(allowed(0xfffc_0000, 0x40000), Ok(()));
    assert_eq!(allowed(0xfd_0000_0000, 8), Ok(()));
    // Holes may not.
    let e = allowed(0x2000_0000, 4).unwrap_err();
    assert_eq!(e, DevmemRefusal::Hole { addr: 0x2000_0000 });
    assert!(e.to_string().contains("in no iomem resource"));
    assert_eq!(
        allowed(0x1fff_f000, 0x2000),
        Err(DevmemRefusal::Hole { addr: 0x2000_0000 })
    );
    // Reserved running into the NVDIMM.
    assert!(matches!(
        allowed(0xffff_f000, 0x2000),
        Err(DevmemRefusal::Persistent { .. })
    ));
    // Overflow and zero length.
    assert!(matches!(
        allowed(u64::MAX, 2),
        Err(DevmemRefusal::Overflow { .. })
    ));
    assert_eq!(allowed(0x1ffe_0000, 0), Ok(()));
}

#[test]
fn devmem_checks_whole_pages_and_nested_pmem() {
    let mut tree = IomemTree::new();
    tree.insert(res(
        0x100000,
        0x100800,
        "System RAM",
        ResourceKind::SystemRam,
    ))
    .unwrap();
    tree.insert(res(0x100800, 0x400000, "Reserved", ResourceKind::Reserved))
        .unwrap();
    tree.insert(res(
        0x300000,
        0x380000,
        "Persistent Memory",
        ResourceKind::Pmem,
    ))
    .unwrap();
    tree.insert(res(
        0x400000,
        0x500000,
        "Soft Reserved",
        ResourceKind::SoftReserved,
    ))
    .unwrap();
    tree.insert(res(0x500000, 0x600000, "ACPI Tables", ResourceKind::Acpi))
        .unwrap();
    // A reserved byte on a page that also holds RAM: refused, as Linux checks pages.
    assert!(matches!(
        devmem_is_allowed(&tree, 0x100900, 4),
        Err(DevmemRefusal::SystemRam { .. })
    ));
    assert_eq!(devmem_is_allowed(&tree, 0x101000, 4), Ok(()));
    // Persistent memory nested in a reserved range is still refused.
    assert!(matches!(
        devmem_is_allowed(&tree, 0x2ff000, 0x2000),
        Err(DevmemRefusal::Persistent { .. })
    ));
    let e = devmem_is_allowed(&tree, 0x400000, 1).unwrap_err();
    assert!(matches!(e, DevmemRefusal::DriverOwned { .. }));
    assert!(e.to_string().contains("owned by a driver"));
    assert_eq!(devmem_is_allowed(&tree, 0x500000, 0x100000), Ok(()));
    assert_eq!(
        devmem_is_allowed(&tree, 0x5ff000, 0x2000),
        Err(DevmemRefusal::Hole { addr: 0x600000 })
    );
}

#[test]
fn from_e820_skips_pmem_already_in_e820_and_reports_conflicts() {
    let t = table(&[(0, 0x1000_0000, 1), (0x1000_0000, 0x2000_0000, 7)]);
    let (pmem, _) = collect_persistent(&t, &[]);
    let (tree, conflicts) = IomemTree::from_e820(&t, &pmem);
    assert!(conflicts.is_empty());
    assert_eq!(tree.children.len(), 2);
    // Unsanitized overlapping entries: the partial overlap is reported, not a panic.
    let t = table(&[(0, 0x2000, 1), (0x1000, 0x3000, 2)]);
    let (_, conflicts) = IomemTree::from_e820(&t, &[]);
    assert_eq!(conflicts.len(), 1);
}

#[test]
fn remove_resource_takes_out_one_resource_and_lifts_its_children() {
    let (_, mut tree) = qemu_tree();
    let before = tree.to_string();
    let ram = ResourceKind::from_e820(crate::e820::E820Type::Usable);
    let dimm = res(0x1_0000_0000, 0x1_1000_0000, "System RAM", ram);
    tree.insert(dimm.clone()).unwrap();
    let child = res(0x1_0000_0000, 0x1_0010_0000, "memmap", ram);
    tree.insert(child.clone()).unwrap();
    assert_ne!(tree.to_string(), before);
    // Wrong name or range: nothing.
    assert_eq!(tree.remove(0x1_0000_0000, 0x1_0fff_ffff, "reserved"), None);
    assert_eq!(
        tree.remove(0x1_0000_0000, 0x1_0000_0fff, "System RAM"),
        None
    );
    let got = tree
        .remove(0x1_0000_0000, 0x1_0fff_ffff, "System RAM")
        .unwrap();
    assert_eq!(
        (got.start, got.end, got.children.len()),
        (dimm.start, dimm.end, 0)
    );
    assert!(tree.to_string().contains("100000000-1000fffff : memmap\n"));
    assert_eq!(
        tree.remove(0x1_0000_0000, 0x1_000f_ffff, "memmap")
            .unwrap()
            .name,
        "memmap"
    );
    assert_eq!(tree.to_string(), before);
    assert_eq!(
        tree.remove(0x1_0000_0000, 0x1_0fff_ffff, "System RAM"),
        None
    );
}
