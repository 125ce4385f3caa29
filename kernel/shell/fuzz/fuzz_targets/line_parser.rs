//! Feeds arbitrary bytes to the line editor, as if typed or piped over the UART, and
//! parses every completed line; also parses the whole input as one line when it is
//! UTF-8. Checks the editor's promises on the way: echo is ASCII, completed lines are
//! printable ASCII within `MAX_LINE`, error messages are one printable line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shell::command::parse;
use shell::line::{Editor, Event, MAX_LINE};

fn printable(s: &str) -> bool {
    s.bytes().all(|b| (0x20..0x7f).contains(&b))
}

fn check_parse(line: &str) {
    if let Err(e) = parse(line) {
        let message = e.to_string();
        assert!(!message.is_empty() && printable(&message), "{message:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let mut editor = Editor::new();
    for &byte in data {
        let event = editor.feed(byte);
        assert!(event.echo().all(|b| b < 0x80));
        if let Event::Line(line) = event {
            assert!(line.len() <= MAX_LINE && printable(line), "{line:?}");
            check_parse(line);
        }
    }
    assert!(editor.line().len() <= MAX_LINE && printable(editor.line()));
    if let Ok(text) = core::str::from_utf8(data) {
        check_parse(text);
    }
});
