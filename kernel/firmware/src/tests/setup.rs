use alloc::string::ToString;
use alloc::vec::Vec;

use super::QEMU_SEABIOS_512M;
use crate::e820::{E820Type, parse_dmesg};
use crate::nfit::{Guid, SpaRange};
use crate::range::PhysRange;
use crate::setup::memory_setup;

#[test]
fn qemu_with_memmap_and_nvdimm() {
    let mut firmware = parse_dmesg(QEMU_SEABIOS_512M).unwrap();
    firmware.sanitize();
    let nvdimm = SpaRange {
        range_index: 2,
        flags: 3,
        proximity_domain: 0,
        guid: Guid::PERSISTENT_MEMORY,
        base: 0x1_0000_0000,
        length: 0x800_0000,
        attributes: 0x8008,
        location_cookie: None,
    };
    let s = memory_setup(firmware.clone(), "console=ttyS0 memmap=64M!256M", &[nvdimm]);
    assert_eq!(s.firmware, firmware);
    assert!(s.memmap.user_defined());
    assert_eq!(s.e820.type_at(0x1000_0000), Some(E820Type::Pram));
    assert_eq!(s.e820.type_at(0), Some(E820Type::Usable));
    assert_eq!(s.zone_map.type_at(0), Some(E820Type::Reserved));
    let pmem: Vec<_> = s.pmem.iter().map(|p| p.range).collect();
    assert_eq!(
        pmem,
        [
            PhysRange::new(0x1000_0000, 0x1400_0000),
            PhysRange::new(0x1_0000_0000, 0x1_0800_0000)
        ]
    );
    assert!(s.rejected.is_empty() && s.conflicts.is_empty());
    let nodes: Vec<_> = s.zone_map.usable_pages().collect();
    assert_eq!(
        nodes,
        [
            PhysRange::new(0x1000, 0x9f000),
            PhysRange::new(0x100000, 0x1000_0000),
            PhysRange::new(0x1400_0000, 0x1ffe_0000)
        ]
    );
    assert_eq!(s.zone_map.end_of_ram_pfn(), 0x1ffe0);
    let iomem = s.iomem.to_string();
    assert!(iomem.starts_with("00000000-00000fff : Reserved\n00001000-0009fbff : System RAM\n"));
    assert!(iomem.contains("\n10000000-13ffffff : Persistent Memory (legacy)\n"));
    assert!(iomem.contains("\n100000000-107ffffff : Persistent Memory\n"));
    s.log();

    // Without a command line or NFIT nothing changes.
    let plain = memory_setup(firmware.clone(), "", &[]);
    assert_eq!(plain.e820, firmware);
    assert!(!plain.memmap.user_defined() && plain.pmem.is_empty());
    assert!(!plain.iomem.to_string().is_empty());
}
