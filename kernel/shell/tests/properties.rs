//! Property tests: no input panics the editor or the parser, and what they produce
//! stays within the promised limits.

use proptest::prelude::*;
use shell::command::parse;
use shell::history::HISTORY_LEN;
use shell::line::{Editor, Event, MAX_LINE};
use shell::num::{NumError, parse_size, parse_u64};

/// Fewer and shorter cases under Miri, which is some thousand times slower.
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: if cfg!(miri) { 3 } else { 512 },
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// `n`, or a tenth of it under Miri.
const fn scaled(n: usize) -> usize {
    if cfg!(miri) { n / 10 } else { n }
}

fn printable(s: &str) -> bool {
    s.bytes().all(|b| (0x20..0x7f).contains(&b))
}

/// Bytes weighted towards the ones the editor treats specially.
fn byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        4 => 0x20u8..0x7f,
        1 => prop::sample::select(&b"\r\n\x08\x7f\x03\x1b[OAB0123;~"[..]),
        1 => any::<u8>(),
    ]
}

/// Words and numbers that reach deep into the parser.
fn token() -> impl Strategy<Value = String> {
    let words = prop::sample::select(
        &[
            "help",
            "page",
            "alloc",
            "free",
            "hotplug",
            "scan",
            "list",
            "devmem",
            "pmem",
            "read",
            "write",
            "stress",
            "dma",
            "dma32",
            "normal",
            "8",
            "16",
            "32",
            "64",
            "b",
            "0x",
            "\"",
            "\"ab\"",
            "#",
            "pmem0",
            "meminfo",
            "4K",
            "1M",
            "16777216T",
        ][..],
    );
    prop_oneof![
        words.prop_map(String::from),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| format!("{n:#x}")),
        (0u64..70).prop_map(|n| n.to_string()),
        "[ -~]{0,8}",
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn editor_never_panics_and_lines_stay_printable(
        bytes in prop::collection::vec(byte(), 0..scaled(2048)),
    ) {
        let mut editor = Editor::new();
        for b in bytes {
            let event = editor.feed(b);
            for e in event.echo() {
                prop_assert!(e < 0x80);
            }
            if let Event::Line(line) | Event::Redraw { line, .. } = event {
                prop_assert!(line.len() <= MAX_LINE);
                prop_assert!(printable(line), "{line:?}");
                // Parsing every completed line never panics either.
                if let Err(e) = parse(line) {
                    let message = e.to_string();
                    prop_assert!(!message.is_empty() && printable(&message));
                }
            }
            prop_assert!(editor.line().len() <= MAX_LINE && printable(editor.line()));
        }
        let history = editor.history();
        prop_assert!(history.len() <= HISTORY_LEN);
        let lines: Vec<&str> = history.iter().collect();
        prop_assert!(lines.windows(2).all(|w| w[0] != w[1]));
    }

    #[test]
    fn typed_lines_come_back_unchanged(
        line in prop::collection::vec(0x20u8..0x7f, 0..=scaled(MAX_LINE))
            .prop_map(|b| String::from_utf8(b).unwrap()),
        ending in prop::sample::select(&["\r", "\n", "\r\n"][..]),
    ) {
        let mut editor = Editor::new();
        let mut echo = Vec::new();
        let mut lines = Vec::new();
        for &b in line.as_bytes().iter().chain(ending.as_bytes()) {
            let event = editor.feed(b);
            echo.extend(event.echo());
            if let Event::Line(l) = event {
                lines.push(l.to_owned());
            }
        }
        prop_assert_eq!(lines, vec![line.clone()]);
        prop_assert_eq!(echo, format!("{line}\r\n").into_bytes());
    }

    #[test]
    fn editing_matches_a_simple_model(
        keys in prop::collection::vec(
            prop_oneof![
                4 => 0x20u8..0x7f,
                1 => Just(0x7fu8),
                1 => Just(0x08u8),
                1 => Just(0x03u8),
                1 => Just(b'\n'),
            ],
            0..scaled(600),
        ),
    ) {
        let mut editor = Editor::new();
        let mut model = String::new();
        let mut overflow = false;
        for b in keys {
            let event = editor.feed(b);
            match b {
                0x7f | 0x08 => {
                    overflow = false;
                    model.pop();
                }
                0x03 => {
                    prop_assert_eq!(event, Event::Cancel);
                    model.clear();
                    overflow = false;
                }
                b'\n' => {
                    if overflow {
                        prop_assert_eq!(event, Event::TooLong);
                    } else {
                        prop_assert_eq!(event, Event::Line(&model));
                    }
                    model.clear();
                    overflow = false;
                }
                c if model.len() < MAX_LINE => model.push(char::from(c)),
                _ => overflow = true,
            }
            prop_assert_eq!(editor.line(), model.as_str());
        }
    }

    #[test]
    fn parse_never_panics_on_any_string(line in any::<String>()) {
        if let Err(e) = parse(&line) {
            let message = e.to_string();
            prop_assert!(!message.is_empty() && printable(&message), "{message:?}");
        }
    }

    #[test]
    fn parse_never_panics_on_command_like_lines(
        tokens in prop::collection::vec(token(), 0..7),
    ) {
        let line = tokens.join(" ");
        if let Err(e) = parse(&line) {
            let message = e.to_string();
            prop_assert!(!message.is_empty() && printable(&message), "{message:?}");
        }
    }

    #[test]
    fn numbers_round_trip(n in any::<u64>(), shift in prop::sample::select(&[("K", 10u32), ("MiB", 20), ("g", 30), ("TB", 40)][..])) {
        prop_assert_eq!(parse_u64(&n.to_string()), Ok(n));
        prop_assert_eq!(parse_u64(&format!("{n:#x}")), Ok(n));
        prop_assert_eq!(parse_u64(&format!("{n:#X}").replacen("0X", "0x", 1)), Ok(n));
        prop_assert_eq!(parse_size(&n.to_string()), Ok(n));
        let (unit, bits) = shift;
        let expected = n.checked_mul(1 << bits).ok_or(NumError::Overflow);
        prop_assert_eq!(parse_size(&format!("{n}{unit}")), expected);
        prop_assert_eq!(parse_size(&format!("{n:#x}{unit}")), expected);
        let bigger = format!("{n}0");
        prop_assert_eq!(parse_u64(&bigger), n.checked_mul(10).ok_or(NumError::Overflow));
    }
}
