//! Good and bad forms of every command, with the exact error lines.

use shell::command::{Command, MAX_WRITE, NodePolicy, OnlineZone, Width, WriteData, Zone, parse};
use shell::error::ErrorKind;
use shell::help::HELP;

fn ok(line: &str) -> Command {
    match parse(line) {
        Ok(command) => command,
        Err(e) => panic!("{line:?} failed: {e}"),
    }
}

fn err(line: &str) -> String {
    match parse(line) {
        Ok(command) => panic!("{line:?} parsed as {command:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn empty_blank_and_comment_lines() {
    for line in ["", " ", "\t \t", "# a comment", "   #alloc 3"] {
        assert_eq!(ok(line), Command::Empty, "{line:?}");
    }
}

#[test]
fn commands_without_arguments() {
    let table = [
        ("dmesg", Command::Dmesg),
        ("e820", Command::E820),
        ("iomem", Command::Iomem),
        ("zoneinfo", Command::Zoneinfo),
        ("buddyinfo", Command::Buddyinfo),
        ("pagetypeinfo", Command::Pagetypeinfo),
        ("memmap", Command::Memmap),
        ("cpus", Command::Cpus),
        ("bench", Command::Bench),
        ("poweroff", Command::Poweroff),
        ("reboot", Command::Reboot),
        ("hotplug scan", Command::HotplugScan),
        ("hotplug list", Command::HotplugList),
        ("pmem list", Command::PmemList),
    ];
    for (line, command) in table {
        assert_eq!(ok(line), command);
        assert_eq!(ok(&format!("  {line}\t ")), command);
        let name = HELP.iter().find(|s| s.name == line).unwrap().name;
        assert_eq!(
            err(&format!("{line} x")),
            format!("{name}: too many arguments (usage: {name})")
        );
    }
}

#[test]
fn unknown_commands() {
    assert_eq!(err("foo"), "unknown command 'foo' (type 'help')");
    assert_eq!(err("HELP"), "unknown command 'HELP' (type 'help')");
    assert_eq!(err("alloc3"), "unknown command 'alloc3' (type 'help')");
    assert_eq!(
        err("abcdefghijklmnopqrstuvwxyz0123456789"),
        "unknown command 'abcdefghijklmnopqrstuvwx...' (type 'help')"
    );
    assert_eq!(
        err("h\u{e9}lp\u{1b}"),
        "unknown command 'h\\u{e9}lp\\u{1b}' (type 'help')"
    );
}

#[test]
fn help() {
    assert_eq!(ok("help"), Command::Help { topic: None });
    assert_eq!(
        ok("help alloc"),
        Command::Help {
            topic: Some("alloc")
        }
    );
    assert_eq!(
        ok("help pmem"),
        Command::Help {
            topic: Some("pmem")
        }
    );
    assert_eq!(
        err("help nope"),
        "help: unknown command 'nope' (type 'help' for the list)"
    );
    assert_eq!(
        err("help alloc b"),
        "help: too many arguments (usage: help [COMMAND])"
    );
}

#[test]
fn page() {
    assert_eq!(ok("page 0"), Command::Page { pfn: 0 });
    assert_eq!(ok("page 0x1000"), Command::Page { pfn: 0x1000 });
    assert_eq!(
        ok("page 0xffffffffff"),
        Command::Page { pfn: (1 << 40) - 1 }
    );
    assert_eq!(err("page"), "page: missing PFN (usage: page PFN)");
    assert_eq!(
        err("page 1 2"),
        "page: too many arguments (usage: page PFN)"
    );
    assert_eq!(err("page x"), "page: bad PFN 'x': invalid digit 'x'");
    assert_eq!(err("page 0x"), "page: bad PFN '0x': no hex digits after 0x");
    assert_eq!(
        err("page 0x10000000000"),
        "page: PFN 0x10000000000 out of range (0x0-0xffffffffff)"
    );
    assert_eq!(
        err("page 99999999999999999999"),
        "page: bad PFN '99999999999999999999': too large (max 0xffffffffffffffff)"
    );
    assert_eq!(err("page 4K"), "page: bad PFN '4K': invalid digit 'K'");
    assert_eq!(err("page -1"), "page: bad PFN '-1': invalid digit '-'");
}

#[test]
fn alloc() {
    assert_eq!(
        ok("alloc 0"),
        Command::Alloc {
            order: 0,
            zone: None,
            policy: LOCAL,
            movable: false,
        }
    );
    assert_eq!(
        ok("alloc 10"),
        Command::Alloc {
            order: 10,
            zone: None,
            policy: LOCAL,
            movable: false,
        }
    );
    assert_eq!(
        ok("alloc 0xa normal"),
        Command::Alloc {
            order: 10,
            zone: Some(Zone::Normal),
            policy: LOCAL,
            movable: false,
        }
    );
    assert_eq!(
        ok("alloc 3 dma"),
        Command::Alloc {
            order: 3,
            zone: Some(Zone::Dma),
            policy: LOCAL,
            movable: false,
        }
    );
    assert_eq!(
        ok("alloc 3 DMA32"),
        Command::Alloc {
            order: 3,
            zone: Some(Zone::Dma32),
            policy: LOCAL,
            movable: false,
        }
    );
    assert_eq!(
        ok("alloc 3 Normal"),
        Command::Alloc {
            order: 3,
            zone: Some(Zone::Normal),
            policy: LOCAL,
            movable: false,
        }
    );
    assert_eq!(err("alloc 11"), "alloc: order 11 out of range (0-10)");
    assert_eq!(
        err("alloc 18446744073709551615"),
        "alloc: order 18446744073709551615 out of range (0-10)"
    );
    assert_eq!(ok("alloc"), Command::AllocList);
    assert_eq!(
        ok("alloc 2 movable dma32"),
        Command::Alloc {
            order: 2,
            zone: Some(Zone::Dma32),
            policy: LOCAL,
            movable: true,
        }
    );
    assert_eq!(
        ok("alloc 0 node 1 MOVABLE"),
        Command::Alloc {
            order: 0,
            zone: None,
            policy: NodePolicy::Node {
                node: Some(1),
                thisnode: false
            },
            movable: true,
        }
    );
    assert_eq!(
        err("alloc 0 movable movable"),
        "alloc: unknown combination with 'movable' (the zone comes first; node, thisnode, interleave, movable once each; interleave with neither node nor thisnode)"
    );
    assert_eq!(
        err("alloc 1 dma extra"),
        "alloc: unknown alloc option 'extra' (node N, thisnode, interleave or movable)"
    );
    assert_eq!(
        err("alloc 1 device"),
        "alloc: unknown zone 'device' (dma, dma32, normal, node N, thisnode, interleave or movable)"
    );
    assert_eq!(
        ok("alloc 2 dma32 node 1 thisnode"),
        Command::Alloc {
            order: 2,
            zone: Some(Zone::Dma32),
            policy: NodePolicy::Node {
                node: Some(1),
                thisnode: true
            },
            movable: false,
        }
    );
    assert_eq!(
        ok("alloc 0 thisnode"),
        Command::Alloc {
            order: 0,
            zone: None,
            policy: NodePolicy::Node {
                node: None,
                thisnode: true
            },
            movable: false,
        }
    );
    assert_eq!(
        ok("alloc 0 INTERLEAVE"),
        Command::Alloc {
            order: 0,
            zone: None,
            policy: NodePolicy::Interleave,
            movable: false,
        }
    );
    assert_eq!(err("alloc 0 node 64"), "alloc: node 64 out of range (0-63)");
    assert_eq!(
        err("alloc 0 node"),
        "alloc: missing NODE (usage: alloc [ORDER [ZONE] [POLICY]])"
    );
    for bad in [
        "alloc 0 node 1 interleave",
        "alloc 0 interleave thisnode",
        "alloc 0 node 1 node 2",
        "alloc 0 node 1 dma",
    ] {
        assert!(
            err(bad).starts_with("alloc: unknown combination with '"),
            "{bad}: {}",
            err(bad)
        );
    }
    assert_eq!(
        err("alloc one"),
        "alloc: bad order 'one': invalid digit 'o'"
    );
}

#[test]
fn numa_views() {
    assert_eq!(ok("numa"), Command::Numa);
    assert_eq!(ok("numastat"), Command::Numastat { node: None });
    assert_eq!(ok("numastat 3"), Command::Numastat { node: Some(3) });
    assert_eq!(ok("meminfo"), Command::Meminfo { node: None });
    assert_eq!(ok("meminfo 1"), Command::Meminfo { node: Some(1) });
    assert!(err("meminfo 1 2").contains("too many arguments"));
    assert_eq!(err("meminfo 64"), "meminfo: node 64 out of range (0-63)");
    assert_eq!(
        ok("alloc 4 normal node=2 thisnode"),
        Command::Alloc {
            order: 4,
            zone: Some(Zone::Normal),
            policy: NodePolicy::Node {
                node: Some(2),
                thisnode: true
            },
            movable: false,
        }
    );
    assert_eq!(
        err("alloc 0 node=x"),
        "alloc: bad node 'x': invalid digit 'x'"
    );
    assert!(err("alloc 0 node=1 node 2").starts_with("alloc: unknown combination"));
    assert_eq!(err("numastat 99"), "numastat: node 99 out of range (0-63)");
    assert!(err("numastat 1 2").contains("too many arguments"));
}

/// `alloc` without node options: the local node, with fallback.
const LOCAL: NodePolicy = NodePolicy::Node {
    node: None,
    thisnode: false,
};

#[test]
fn free() {
    assert_eq!(
        ok("free 0x100 8"),
        Command::Free {
            pfn: 0x100,
            order: 8
        }
    );
    assert_eq!(ok("free 7 0"), Command::Free { pfn: 7, order: 0 });
    assert_eq!(
        ok("free 1024 10"),
        Command::Free {
            pfn: 1024,
            order: 10
        }
    );
    assert_eq!(err("free 3 1"), "free: PFN 0x3 is not a multiple of 0x2");
    assert_eq!(
        err("free 512 10"),
        "free: PFN 0x200 is not a multiple of 0x400"
    );
    assert_eq!(err("free"), "free: missing PFN (usage: free PFN ORDER)");
    assert_eq!(err("free 4"), "free: missing ORDER (usage: free PFN ORDER)");
    assert_eq!(
        err("free 4 2 1"),
        "free: too many arguments (usage: free PFN ORDER)"
    );
    assert_eq!(err("free 4 11"), "free: order 11 out of range (0-10)");
    assert_eq!(err("free z 1"), "free: bad PFN 'z': invalid digit 'z'");
}

#[test]
fn hotplug() {
    assert_eq!(
        err("hotplug"),
        "hotplug: missing subcommand (scan, list, offline, remove or online)"
    );
    assert_eq!(
        err("hotplug add"),
        "hotplug: unknown subcommand 'add' (scan, list, offline, remove or online)"
    );
    assert_eq!(
        ok("hotplug offline 33"),
        Command::HotplugOffline { block: 33 }
    );
    assert_eq!(
        ok("hotplug remove 33"),
        Command::HotplugRemove { block: 33 }
    );
    assert_eq!(
        err("hotplug remove"),
        "hotplug remove: missing N (usage: hotplug remove N)"
    );
    assert_eq!(
        ok("hotplug online 0x21"),
        Command::HotplugOnline {
            block: 33,
            zone: OnlineZone::Default
        }
    );
    assert_eq!(
        ok("hotplug online 33 Movable"),
        Command::HotplugOnline {
            block: 33,
            zone: OnlineZone::Movable
        }
    );
    assert_eq!(
        ok("hotplug online 33 kernel"),
        Command::HotplugOnline {
            block: 33,
            zone: OnlineZone::Kernel
        }
    );
    assert_eq!(
        err("hotplug online 33 dma"),
        "hotplug online: unknown zone 'dma' (movable or kernel)"
    );
    assert_eq!(
        err("hotplug online 33 movable x"),
        "hotplug online: too many arguments (usage: hotplug online N [ZONE])"
    );
    assert_eq!(
        err("hotplug offline"),
        "hotplug offline: missing N (usage: hotplug offline N)"
    );
    assert_eq!(
        err("hotplug online 33554432"),
        "hotplug online: block 33554432 out of range (0-33554431)"
    );
    assert_eq!(
        err("hotplug online x"),
        "hotplug online: bad block 'x': invalid digit 'x'"
    );
}

#[test]
fn devmem() {
    let read = |addr, width| Command::Devmem {
        addr,
        width,
        value: None,
    };
    assert_eq!(ok("devmem 0xb8000"), read(0xb8000, Width::W32));
    assert_eq!(ok("devmem 4G 64"), read(1 << 32, Width::W64));
    assert_eq!(ok("devmem 0x1001 8"), read(0x1001, Width::W8));
    assert_eq!(ok("devmem 0x1002 h"), read(0x1002, Width::W16));
    assert_eq!(ok("devmem 0x1004 W"), read(0x1004, Width::W32));
    assert_eq!(ok("devmem 0x1000 b"), read(0x1000, Width::W8));
    assert_eq!(
        ok("devmem 0x1000 8 0xff"),
        Command::Devmem {
            addr: 0x1000,
            width: Width::W8,
            value: Some(0xff)
        }
    );
    assert_eq!(
        ok("devmem 0x1000 64 18446744073709551615"),
        Command::Devmem {
            addr: 0x1000,
            width: Width::W64,
            value: Some(u64::MAX)
        }
    );
    assert_eq!(
        ok("devmem 0xffffffffffffc"),
        read(0xf_ffff_ffff_fffc, Width::W32)
    );
    assert_eq!(
        err("devmem 0x1000 8 0x100"),
        "devmem: value 0x100 does not fit in 8 bits"
    );
    assert_eq!(
        err("devmem 0 16 65536"),
        "devmem: value 0x10000 does not fit in 16 bits"
    );
    assert_eq!(
        err("devmem 0 32 0x100000000"),
        "devmem: value 0x100000000 does not fit in 32 bits"
    );
    assert_eq!(
        err("devmem 0x1002"),
        "devmem: ADDR 0x1002 is not a multiple of 0x4"
    );
    assert_eq!(
        err("devmem 0x1004 64"),
        "devmem: ADDR 0x1004 is not a multiple of 0x8"
    );
    assert_eq!(
        err("devmem 0x10000000000000"),
        "devmem: ADDR 0x10000000000000 out of range (0x0-0xffffffffffffc)"
    );
    assert_eq!(
        err("devmem 0x1000 12"),
        "devmem: unknown WIDTH '12' (8, 16, 32 or 64 bits, or b, h, w)"
    );
    assert_eq!(
        err("devmem"),
        "devmem: missing ADDR (usage: devmem ADDR [WIDTH [VALUE]])"
    );
    assert_eq!(
        err("devmem 0 8 1 2"),
        "devmem: too many arguments (usage: devmem ADDR [WIDTH [VALUE]])"
    );
    assert_eq!(
        err("devmem 0 8 0x"),
        "devmem: bad VALUE '0x': no hex digits after 0x"
    );
    assert_eq!(
        err("devmem 16777216T"),
        "devmem: bad ADDR '16777216T': too large (max 0xffffffffffffffff)"
    );
}

#[test]
fn pmem_list_and_subcommands() {
    assert_eq!(
        err("pmem"),
        "pmem: missing subcommand (list, read, write, pin, unpin, disable or enable)"
    );
    assert_eq!(
        err("pmem erase"),
        "pmem: unknown subcommand 'erase' (list, read, write, pin, unpin, disable or enable)"
    );
}

#[test]
fn pmem_pin_unpin_disable_enable() {
    assert_eq!(
        ok("pmem pin 0 4K"),
        Command::PmemPin {
            dev: 0,
            offset: 4096
        }
    );
    assert_eq!(
        ok("pmem unpin pmem1 0x2000"),
        Command::PmemUnpin {
            dev: 1,
            offset: 0x2000
        }
    );
    assert_eq!(ok("pmem disable pmem0"), Command::PmemDisable { dev: 0 });
    assert_eq!(ok("pmem enable 3"), Command::PmemEnable { dev: 3 });
    assert_eq!(
        err("pmem pin 0"),
        "pmem pin: missing OFFSET (usage: pmem pin DEV OFFSET)"
    );
    assert_eq!(
        err("pmem unpin"),
        "pmem unpin: missing DEV (usage: pmem unpin DEV OFFSET)"
    );
    assert_eq!(
        err("pmem disable"),
        "pmem disable: missing DEV (usage: pmem disable DEV)"
    );
    assert_eq!(
        err("pmem enable 0 1"),
        "pmem enable: too many arguments (usage: pmem enable DEV)"
    );
    assert_eq!(
        err("pmem disable 256"),
        "pmem disable: device 256 out of range (0-255)"
    );
    assert_eq!(
        err("pmem pin x 0"),
        "pmem pin: bad DEV 'x': invalid digit 'x'"
    );
}

#[test]
fn pmem_read() {
    assert_eq!(
        ok("pmem read 0 0 16"),
        Command::PmemRead {
            dev: 0,
            offset: 0,
            len: 16
        }
    );
    assert_eq!(
        ok("pmem read pmem1 1M 4K"),
        Command::PmemRead {
            dev: 1,
            offset: 1 << 20,
            len: 4096
        }
    );
    assert_eq!(
        ok("pmem read 255 0xffffffffffffefff 4096"),
        Command::PmemRead {
            dev: 255,
            offset: 0xffff_ffff_ffff_efff,
            len: 4096
        }
    );
    let usage = "(usage: pmem read DEV OFFSET LEN)";
    assert_eq!(err("pmem read"), format!("pmem read: missing DEV {usage}"));
    assert_eq!(
        err("pmem read 0"),
        format!("pmem read: missing OFFSET {usage}")
    );
    assert_eq!(
        err("pmem read 0 0"),
        format!("pmem read: missing LEN {usage}")
    );
    assert_eq!(
        err("pmem read 0 0 1 1"),
        format!("pmem read: too many arguments {usage}")
    );
    assert_eq!(
        err("pmem read 0 0 0"),
        "pmem read: LEN 0 out of range (1-4096)"
    );
    assert_eq!(
        err("pmem read 0 0 4097"),
        "pmem read: LEN 4097 out of range (1-4096)"
    );
    assert_eq!(
        err("pmem read 256 0 1"),
        "pmem read: device 256 out of range (0-255)"
    );
    assert_eq!(
        err("pmem read nvdimm 0 1"),
        "pmem read: bad DEV 'nvdimm': invalid digit 'n'"
    );
    assert_eq!(
        err("pmem read pmem 0 1"),
        "pmem read: bad DEV 'pmem': no digits"
    );
    assert_eq!(
        err("pmem read 0 -1 1"),
        "pmem read: bad OFFSET '-1': invalid digit '-'"
    );
    assert_eq!(
        err("pmem read 0 0xffffffffffffffff 2"),
        "pmem read: OFFSET + LEN is past 2^64"
    );
}

#[test]
fn pmem_write() {
    let write = |offset, bytes: &[u8]| Command::PmemWrite {
        dev: 0,
        offset,
        data: WriteData::new(bytes).unwrap(),
    };
    assert_eq!(
        ok("pmem write 0 0 de ad 0xbe 0XeF 7"),
        write(0, &[0xde, 0xad, 0xbe, 0xef, 7])
    );
    assert_eq!(
        ok("pmem write 0 4K \"hello, pmem\""),
        write(4096, b"hello, pmem")
    );
    assert_eq!(
        ok("pmem write 0 0   \"  two  spaces \"\"  "),
        write(0, b"  two  spaces \"")
    );
    assert_eq!(ok("pmem write pmem0 0 \"\"\""), write(0, b"\""));
    let usage = "(usage: pmem write DEV OFFSET BYTES...)";
    assert_eq!(
        err("pmem write 0 0"),
        format!("pmem write: missing BYTES {usage}")
    );
    assert_eq!(
        err("pmem write 0 0 \"abc"),
        "pmem write: missing closing '\"'"
    );
    assert_eq!(err("pmem write 0 0 \""), "pmem write: missing closing '\"'");
    assert_eq!(
        err("pmem write 0 0 \"\""),
        "pmem write: empty string, nothing to write"
    );
    for bad in ["100", "0x", "g", "+f", "0x1ff", "-1", "\"x\""] {
        assert_eq!(
            err(&format!("pmem write 0 0 01 {bad}")),
            format!("pmem write: bad byte '{bad}' (hex bytes like 0f or 0xff, or \"text\")")
        );
    }
    let many = " ff".repeat(MAX_WRITE);
    assert!(
        matches!(ok(&format!("pmem write 0 0{many}")), Command::PmemWrite { data, .. } if data.as_bytes().len() == MAX_WRITE)
    );
    assert_eq!(
        err(&format!("pmem write 0 0{many} 00")),
        "pmem write: too much data (max 256 bytes)"
    );
    let text = "x".repeat(MAX_WRITE + 1);
    assert_eq!(
        err(&format!("pmem write 0 0 \"{text}\"")),
        "pmem write: too much data (max 256 bytes)"
    );
    assert_eq!(
        err("pmem write 0 0xffffffffffffffff 1"),
        "pmem write: OFFSET + LEN is past 2^64"
    );
    assert_eq!(
        ok("pmem write 0 0xfffffffffffffffe 1"),
        write(u64::MAX - 1, &[1])
    );
}

#[test]
fn stress() {
    assert_eq!(ok("stress 100000"), Command::Stress { n: 100_000 });
    assert_eq!(ok("stress 0"), Command::Stress { n: 0 });
    assert_eq!(ok("stress 10000000"), Command::Stress { n: 10_000_000 });
    assert_eq!(
        err("stress 10000001"),
        "stress: N 10000001 out of range (0-10000000)"
    );
    assert_eq!(err("stress"), "stress: missing N (usage: stress N)");
    assert_eq!(err("stress 1K"), "stress: bad N '1K': invalid digit 'K'");
}

#[test]
fn error_kinds_are_inspectable() {
    let e = parse("alloc 12").unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::OutOfRange { value: 12, .. }));
    assert_eq!(e.spec().map(|s| s.name), Some("alloc"));
    assert_eq!(parse("nope").unwrap_err().spec(), None);
}
