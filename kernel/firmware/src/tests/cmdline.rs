use alloc::string::ToString;
use alloc::vec;
use alloc::vec::Vec;

use super::{QEMU_SEABIOS_512M, triples};
use crate::cmdline::*;
use crate::e820::{E820Table, E820Type, parse_dmesg};

const M: u64 = 1 << 20;
const G: u64 = 1 << 30;

fn words(s: &str) -> Vec<(&str, Option<&str>)> {
    params(s).map(|p| (p.name, p.value)).collect()
}

fn qemu() -> E820Table {
    let mut t = parse_dmesg(QEMU_SEABIOS_512M).unwrap();
    t.sanitize();
    t
}

#[test]
fn tokenizer_like_linux_next_arg() {
    assert_eq!(
        words("  console=ttyS0,115200   quiet\tfoo=\"a b\" \"bar baz\" \"x=y z\" end "),
        vec![
            ("console", Some("ttyS0,115200")),
            ("quiet", None),
            ("foo", Some("a b")),
            ("bar baz", None),
            ("x", Some("y z")),
            ("end", None),
        ]
    );
    // `--` ends the kernel's parameters.
    assert_eq!(words("a -- b=c"), vec![("a", None)]);
    // A value may contain `=`; an `=` at position 0 does not split (Linux's equals == 0 test).
    assert_eq!(
        words("a=b=c =x =y=z"),
        vec![("a", Some("b=c")), ("=x", None), ("=y", Some("z"))]
    );
    // Unterminated and degenerate quotes.
    assert_eq!(words("a=\"b c"), vec![("a", Some("b c"))]);
    assert_eq!(words("a=\""), vec![("a", Some(""))]);
    assert_eq!(words("\""), vec![("", None)]);
    assert_eq!(words("\"\" x"), vec![("", None), ("x", None)]);
    assert_eq!(words(""), vec![]);
    assert_eq!(words("   "), vec![]);
    assert_eq!(words("é=ü ñ"), vec![("é", Some("ü")), ("ñ", None)]);
}

#[test]
fn param_names_treat_dash_and_underscore_alike() {
    let p = params("mem-map=1").next().unwrap();
    assert!(p.is("mem_map"));
    assert!(!p.is("memmap"));
}

#[test]
fn memparse_like_linux() {
    assert_eq!(memparse("64M!"), Ok((64 * M, "!")));
    assert_eq!(memparse("64m"), Ok((64 * M, "")));
    assert_eq!(memparse("0x10000000"), Ok((0x1000_0000, "")));
    assert_eq!(memparse("0X10k"), Ok((0x10 << 10, "")));
    assert_eq!(memparse("1G"), Ok((G, "")));
    assert_eq!(memparse("2T"), Ok((2 << 40, "")));
    assert_eq!(memparse("1P"), Ok((1 << 50, "")));
    assert_eq!(memparse("15E"), Ok((15 << 60, "")));
    assert_eq!(memparse("4096"), Ok((4096, "")));
    assert_eq!(memparse("010"), Ok((8, "")), "leading 0 is octal");
    assert_eq!(memparse("08"), Ok((0, "8")), "8 is not an octal digit");
    assert_eq!(
        memparse("0x"),
        Ok((0, "x")),
        "0x without hex digit is octal 0"
    );
    assert_eq!(memparse("0xg"), Ok((0, "xg")));
    assert_eq!(memparse("16E"), Err(MemparseError::Overflow));
    assert_eq!(
        memparse("18446744073709551616"),
        Err(MemparseError::Overflow)
    );
    assert_eq!(memparse("18446744073709551615"), Ok((u64::MAX, "")));
    assert_eq!(memparse("M"), Err(MemparseError::NoDigits));
    assert_eq!(memparse(""), Err(MemparseError::NoDigits));
    assert_eq!(memparse("-1"), Err(MemparseError::NoDigits));
}

#[test]
fn memmap_items() {
    use MemmapOp::*;
    let ok = |s| parse_memmap_item(s).unwrap();
    assert_eq!(
        ok("64M!256M"),
        Add {
            start: 256 * M,
            size: 64 * M,
            typ: E820Type::Pram
        }
    );
    assert_eq!(
        ok("1G@4G"),
        Add {
            start: 4 * G,
            size: G,
            typ: E820Type::Usable
        }
    );
    assert_eq!(
        ok("16K#0x9000"),
        Add {
            start: 0x9000,
            size: 16 << 10,
            typ: E820Type::Acpi
        }
    );
    assert_eq!(
        ok("64M$0x20000000"),
        Add {
            start: 0x2000_0000,
            size: 64 * M,
            typ: E820Type::Reserved
        }
    );
    assert_eq!(ok("4G"), Limit { size: 4 * G });
    assert_eq!(ok("exactmap"), ExactMap);
    assert_eq!(
        ok("64M%256M-1+12"),
        Update {
            start: 256 * M,
            size: 64 * M,
            from: E820Type::Usable,
            to: E820Type::Pram
        }
    );
    assert_eq!(
        ok("64M%256M+0xc"),
        Add {
            start: 256 * M,
            size: 64 * M,
            typ: E820Type::Pram
        }
    );
    assert_eq!(
        ok("64M%256M-2"),
        Remove {
            start: 256 * M,
            size: 64 * M,
            typ: Some(E820Type::Reserved)
        }
    );
    assert_eq!(
        ok("64M%256M"),
        Remove {
            start: 256 * M,
            size: 64 * M,
            typ: None
        }
    );
    for bad in [
        "",
        "!256M",
        "64Q!256M",
        "64M!",
        "64M!x",
        "64M!256MX",
        "64M!256M!",
        "0!256M",
        "0",
        "16E!0",
        "1!16E",
        "18446744073709551615@1",
        "64M%256M-1+1",
        "64M%256M-1+",
        "64M%256M*",
        "64M%256M+4294967296",
        "exactmapx",
        "64 M!256M",
    ] {
        assert!(parse_memmap_item(bad).is_err(), "{bad:?} should be refused");
    }
    let e = parse_memmap_item("64Q!256M").unwrap_err();
    assert!(e.contains("unexpected 'Q' after the size"), "{e}");
}

#[test]
fn memmap_pmem_on_qemu_map_prints_user_map() {
    let mut t = qemu();
    let report = apply_memmap("console=ttyS0 memmap=64M!256M", &mut t);
    assert!(report.errors.is_empty());
    assert!(report.user_defined());
    assert_eq!(
        t.lines("user").to_string(),
        "\
user: [mem 0x0000000000000000-0x000000000009fbff] usable
user: [mem 0x000000000009fc00-0x000000000009ffff] reserved
user: [mem 0x00000000000f0000-0x00000000000fffff] reserved
user: [mem 0x0000000000100000-0x000000000fffffff] usable
user: [mem 0x0000000010000000-0x0000000013ffffff] persistent (type 12)
user: [mem 0x0000000014000000-0x000000001ffdffff] usable
user: [mem 0x000000001ffe0000-0x000000001fffffff] reserved
user: [mem 0x00000000feffc000-0x00000000feffffff] reserved
user: [mem 0x00000000fffc0000-0x00000000ffffffff] reserved
user: [mem 0x000000fd00000000-0x000000ffffffffff] reserved
"
    );
}

#[test]
fn quoted_memmap_parameter() {
    let mut t = qemu();
    let report = apply_memmap("\"memmap=64M!256M\" memmap=\"16M!512M\"", &mut t);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.applied.len(), 2);
    assert_eq!(t.type_at(256 * M), Some(E820Type::Pram));
    assert_eq!(t.type_at(512 * M), Some(E820Type::Pram));
}

#[test]
fn several_memmap_params_comma_lists_and_bad_items() {
    let mut t = qemu();
    let report = apply_memmap(
        "memmap=16M!256M,bogus,16M!272M memmap=64Q!0 memmap=8M!384M mem memmap",
        &mut t,
    );
    assert_eq!(report.applied.len(), 3);
    let errors: Vec<_> = report.errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(errors.len(), 4, "{errors:?}");
    assert!(errors[0].starts_with("memmap=bogus: size: expected a number; parameter ignored"));
    assert!(errors[1].starts_with("memmap=64Q!0: unexpected 'Q'"));
    assert_eq!(errors[2], "mem: missing value; parameter ignored");
    assert_eq!(errors[3], "memmap: missing value; parameter ignored");
    let pram: Vec<_> = triples(&t).into_iter().filter(|e| e.2 == 12).collect();
    assert_eq!(
        pram,
        vec![
            (256 * M, 272 * M, 12),
            (272 * M, 288 * M, 12),
            (384 * M, 392 * M, 12)
        ]
    );
}

#[test]
fn malformed_memmap_changes_nothing() {
    let before = qemu();
    let mut t = before.clone();
    let report = apply_memmap("memmap=64M!256MB memmap=0 mem=0 mem=nopentium", &mut t);
    assert!(!report.user_defined());
    assert_eq!(report.errors.len(), 4);
    assert_eq!(t, before);
}

#[test]
fn no_memmap_is_not_user_defined() {
    let before = qemu();
    let mut t = before.clone();
    let report = apply_memmap("console=ttyS0 quiet memmapx=1 -- memmap=64M!256M", &mut t);
    assert_eq!(report, MemmapReport::default());
    assert_eq!(t, before);
}

#[test]
fn mem_limit_and_exactmap() {
    let mut t = qemu();
    apply_memmap("mem=256M", &mut t);
    assert_eq!(
        triples(&t)
            .into_iter()
            .filter(|e| e.2 == 1)
            .collect::<Vec<_>>(),
        vec![(0, 0x9fc00, 1), (0x100000, 256 * M, 1)]
    );
    let mut t = qemu();
    let r = apply_memmap(
        "memmap=exactmap memmap=640K@0,255M@1M memmap=1M$0xf0000",
        &mut t,
    );
    assert_eq!(r.applied.len(), 4);
    assert_eq!(
        triples(&t),
        vec![
            (0, 640 << 10, 1),
            (0xf0000, 0x1f0000, 2),
            (0x1f0000, 256 * M, 1)
        ]
    );
    let mut t = qemu();
    apply_memmap("memmap=1M%0x100000-1+2", &mut t);
    assert_eq!(t.type_at(0x100000), Some(E820Type::Reserved));
    assert_eq!(t.type_at(0x200000), Some(E820Type::Usable));
}
