//! The line editor: a byte-at-a-time state machine between the UART and the parser.
//!
//! [`Editor::feed`] takes each received byte and returns an [`Event`]: what to echo
//! ([`Event::echo`]) and whether a line is complete. It understands
//!
//! - printable ASCII (0x20-0x7e): appended and echoed, up to [`MAX_LINE`] characters;
//!   the first byte past the limit rings the bell, later ones are dropped silently, and
//!   Enter then reports [`Event::TooLong`] instead of running a cut-off line (erasing a
//!   character first makes the line exactly what the terminal shows, and it runs);
//! - Backspace (0x08) and Delete (0x7f): erase the last character (`\x08 \x08`);
//!   nothing at the start of a line;
//! - Ctrl-C (0x03): drop the line ([`Event::Cancel`], echo `^C` and a new line);
//! - Enter as `\r`, `\n` or `\r\n` (one line, not two), so that lines piped from a
//!   host without a terminal work like typed ones;
//! - Up/Down arrows (`ESC [ A`/`B` or `ESC O A`/`B`): recall older/newer lines from the
//!   [`History`]; going down past the newest restores the line being typed. Every other
//!   escape sequence (CSI with parameters, Alt-key pairs, ...) is swallowed whole; a
//!   control byte inside a sequence ends it and is handled normally;
//! - every other control byte and every non-ASCII byte: ignored.
//!
//! The cursor always stays at the end of the line; there is no mid-line editing.

use crate::echo::Echo;
use crate::history::History;

/// Longest line, in characters (bytes: lines are ASCII).
pub const MAX_LINE: usize = 256;

/// The message the kernel should print for [`Event::TooLong`].
pub const TOO_LONG: &str = "line too long (max 256 characters), ignored";

/// What a byte fed to the [`Editor`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// Nothing visible: an ignored byte, part of an escape sequence, the `\n` of a
    /// `\r\n`, or Backspace on an empty line.
    Nothing,
    /// A printable character was appended: echo it.
    Char(u8),
    /// The last character was erased: echo `\x08 \x08`.
    Erase,
    /// Ring the bell (`\x07`): line full, or no older/newer history line.
    Bell,
    /// The line was replaced by a history line: move back over the `erase` characters
    /// on screen and show `line` (see [`Echo::redraw`]).
    Redraw {
        /// Characters of the old line to move back over.
        erase: usize,
        /// The new line.
        line: &'a str,
    },
    /// Enter: echo `\r\n`, then run the line. It is printable ASCII, at most
    /// [`MAX_LINE`] bytes, possibly empty or blank.
    Line(&'a str),
    /// Enter on a line that overflowed [`MAX_LINE`]: echo `\r\n`, print [`TOO_LONG`].
    TooLong,
    /// Ctrl-C: the line was dropped; echo `^C\r\n`, then print the prompt.
    Cancel,
}

impl<'a> Event<'a> {
    /// The bytes to write to the terminal for this event (possibly none).
    pub fn echo(&self) -> Echo<'_> {
        match self {
            Self::Nothing => Echo::EMPTY,
            Self::Char(c) => Echo::fixed(core::slice::from_ref(c)),
            Self::Erase => Echo::fixed(b"\x08 \x08"),
            Self::Bell => Echo::fixed(b"\x07"),
            Self::Redraw { erase, line } => Echo::redraw(*erase, line),
            Self::Line(_) | Self::TooLong => Echo::fixed(b"\r\n"),
            Self::Cancel => Echo::fixed(b"^C\r\n"),
        }
    }
}

/// Where the editor is inside an escape sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escape {
    /// Not in a sequence.
    None,
    /// After ESC.
    Start,
    /// After `ESC [`; `params` once a parameter or intermediate byte was seen.
    Csi { params: bool },
    /// After `ESC O`.
    Ss3,
}

/// What a byte means once escape sequences are decoded.
enum Key {
    Byte(u8),
    Up,
    Down,
    Swallowed,
}

/// The line editor with its history. About 5 KiB, no allocation; `const`-constructible
/// so that the kernel can keep it in a `static`.
#[derive(Clone)]
pub struct Editor {
    buf: [u8; MAX_LINE],
    len: usize,
    /// Bytes were dropped because the line was full.
    overflow: bool,
    /// `buf` holds a line already returned; clear it before the next byte.
    done: bool,
    /// The previous byte was `\r`: a `\n` now ends nothing.
    after_cr: bool,
    escape: Escape,
    history: History,
    /// Age of the history line shown, while browsing.
    browsing: Option<usize>,
    /// The line being typed when browsing started.
    draft: [u8; MAX_LINE],
    draft_len: usize,
}

impl Default for Editor {
    fn default() -> Self {
        Self::new()
    }
}

/// `bytes` as `&str`; the editor only ever stores ASCII, so this never fails.
fn ascii(bytes: &[u8]) -> &str {
    core::str::from_utf8(bytes).unwrap_or_default()
}

impl Editor {
    /// An editor with an empty line and an empty history.
    pub const fn new() -> Self {
        Self {
            buf: [0; MAX_LINE],
            len: 0,
            overflow: false,
            done: false,
            after_cr: false,
            escape: Escape::None,
            history: History::new(),
            browsing: None,
            draft: [0; MAX_LINE],
            draft_len: 0,
        }
    }

    /// The line typed so far, for redrawing it after other output (print a new line,
    /// the prompt, then this). Empty right after a line was returned.
    pub fn line(&self) -> &str {
        if self.done {
            ""
        } else {
            ascii(self.buf.get(..self.len).unwrap_or_default())
        }
    }

    /// The history of entered lines.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// Handles one byte received from the terminal.
    pub fn feed(&mut self, byte: u8) -> Event<'_> {
        if self.done {
            self.done = false;
            self.len = 0;
            self.overflow = false;
        }
        let after_cr = core::mem::replace(&mut self.after_cr, false);
        match self.decode(byte) {
            Key::Swallowed => Event::Nothing,
            Key::Up => self.older(),
            Key::Down => self.newer(),
            Key::Byte(b'\n') if after_cr => Event::Nothing,
            Key::Byte(b @ (b'\r' | b'\n')) => {
                self.after_cr = b == b'\r';
                self.enter()
            }
            Key::Byte(0x08 | 0x7f) => self.erase(),
            Key::Byte(0x03) => {
                self.len = 0;
                self.overflow = false;
                self.browsing = None;
                Event::Cancel
            }
            Key::Byte(0x1b) => {
                self.escape = Escape::Start;
                Event::Nothing
            }
            Key::Byte(c @ 0x20..=0x7e) => self.insert(c),
            Key::Byte(_) => Event::Nothing,
        }
    }

    /// Runs the escape-sequence state machine on `byte`.
    fn decode(&mut self, byte: u8) -> Key {
        let state = core::mem::replace(&mut self.escape, Escape::None);
        let in_sequence = (0x20..=0x7e).contains(&byte);
        match state {
            Escape::None => Key::Byte(byte),
            Escape::Start => match byte {
                b'[' => {
                    self.escape = Escape::Csi { params: false };
                    Key::Swallowed
                }
                b'O' => {
                    self.escape = Escape::Ss3;
                    Key::Swallowed
                }
                _ if in_sequence => Key::Swallowed,
                _ => Key::Byte(byte),
            },
            Escape::Csi { params } => match byte {
                0x20..=0x3f => {
                    self.escape = Escape::Csi { params: true };
                    Key::Swallowed
                }
                b'A' if !params => Key::Up,
                b'B' if !params => Key::Down,
                _ if in_sequence => Key::Swallowed,
                _ => Key::Byte(byte),
            },
            Escape::Ss3 => match byte {
                b'A' => Key::Up,
                b'B' => Key::Down,
                _ if in_sequence => Key::Swallowed,
                _ => Key::Byte(byte),
            },
        }
    }

    fn insert(&mut self, c: u8) -> Event<'_> {
        match self.buf.get_mut(self.len) {
            Some(slot) => {
                *slot = c;
                self.len += 1;
                Event::Char(c)
            }
            None if !self.overflow => {
                self.overflow = true;
                Event::Bell
            }
            None => Event::Nothing,
        }
    }

    fn erase(&mut self) -> Event<'_> {
        self.overflow = false;
        if self.len == 0 {
            return Event::Nothing;
        }
        self.len -= 1;
        Event::Erase
    }

    fn enter(&mut self) -> Event<'_> {
        self.done = true;
        self.browsing = None;
        if self.overflow {
            return Event::TooLong;
        }
        let line = ascii(self.buf.get(..self.len).unwrap_or_default());
        self.history.push(line);
        Event::Line(line)
    }

    /// Shows history line `age` (or the draft for `None`) in place of the current line.
    fn show(&mut self, age: Option<usize>) -> Event<'_> {
        let source = match age {
            Some(age) => self.history.get(age).unwrap_or_default().as_bytes(),
            None => self.draft.get(..self.draft_len).unwrap_or_default(),
        };
        let erase = self.len;
        let len = source.len().min(MAX_LINE);
        if let (Some(dst), Some(src)) = (self.buf.get_mut(..len), source.get(..len)) {
            dst.copy_from_slice(src);
            self.len = len;
        }
        self.overflow = false;
        self.browsing = age;
        Event::Redraw {
            erase,
            line: ascii(self.buf.get(..self.len).unwrap_or_default()),
        }
    }

    fn older(&mut self) -> Event<'_> {
        let age = self.browsing.map_or(0, |age| age + 1);
        if age >= self.history.len() {
            return Event::Bell;
        }
        if self.browsing.is_none() {
            let len = self.len;
            if let (Some(dst), Some(src)) = (self.draft.get_mut(..len), self.buf.get(..len)) {
                dst.copy_from_slice(src);
                self.draft_len = len;
            }
        }
        self.show(Some(age))
    }

    fn newer(&mut self) -> Event<'_> {
        match self.browsing {
            None => Event::Bell,
            Some(age) => self.show(age.checked_sub(1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::{string::String, vec::Vec};

    /// What a run of bytes produced: the echo and the completed lines (`!TooLong`
    /// and `!Cancel` stand for those events).
    fn run(editor: &mut Editor, bytes: &[u8]) -> (Vec<u8>, Vec<String>) {
        let mut echo = Vec::new();
        let mut lines = Vec::new();
        for &b in bytes {
            let event = editor.feed(b);
            echo.extend(event.echo());
            match event {
                Event::Line(l) => lines.push(String::from(l)),
                Event::TooLong => lines.push("!TooLong".into()),
                Event::Cancel => lines.push("!Cancel".into()),
                _ => {}
            }
        }
        (echo, lines)
    }

    fn lines_of(bytes: &[u8]) -> Vec<String> {
        run(&mut Editor::new(), bytes).1
    }

    #[test]
    fn typing_echoes_and_enter_completes() {
        let mut e = Editor::new();
        let (echo, lines) = run(&mut e, b"meminfo\r");
        assert_eq!(echo, b"meminfo\r\n");
        assert_eq!(lines, ["meminfo"]);
        assert_eq!(e.line(), "");
        assert_eq!(run(&mut e, b"pa").0, b"pa");
        assert_eq!(e.line(), "pa");
    }

    #[test]
    fn every_line_ending_gives_one_line() {
        assert_eq!(
            lines_of(b"a\rb\nc\r\nd\n\re\r\r"),
            ["a", "b", "c", "d", "", "e", ""]
        );
        assert_eq!(lines_of(b"\r\n\r\n"), ["", ""]);
        assert_eq!(lines_of(b"x\n\n"), ["x", ""]);
        // The \n of a \r\n produces no echo either.
        assert_eq!(run(&mut Editor::new(), b"a\r\n").0, b"a\r\n");
    }

    #[test]
    fn backspace_and_delete() {
        let mut e = Editor::new();
        let (echo, lines) = run(&mut e, b"\x08\x7fab\x08c\x7f\x7f\x7fd\r");
        assert_eq!(echo, b"ab\x08 \x08c\x08 \x08\x08 \x08d\r\n");
        assert_eq!(lines, ["d"]);
        let (echo, _) = run(&mut Editor::new(), b"\x08ab\x08");
        assert_eq!(echo, b"ab\x08 \x08");
    }

    #[test]
    fn ctrl_c_drops_the_line() {
        let mut e = Editor::new();
        let (echo, lines) = run(&mut e, b"free 1 0\x03page 1\r");
        assert_eq!(echo, b"free 1 0^C\r\npage 1\r\n");
        assert_eq!(lines, ["!Cancel", "page 1"]);
        // Not stored in the history.
        assert_eq!(e.history().iter().collect::<Vec<_>>(), ["page 1"]);
        assert_eq!(lines_of(b"\x03\x03"), ["!Cancel", "!Cancel"]);
    }

    #[test]
    fn control_and_non_ascii_bytes_are_ignored() {
        let (echo, lines) = run(
            &mut Editor::new(),
            b"a\x00\x01\t\x07\x7f\x80\xff\xc3\xa9b\x04\r",
        );
        assert_eq!(lines, ["b"]);
        assert_eq!(echo, b"a\x08 \x08b\r\n");
    }

    #[test]
    fn overlong_lines_ring_once_and_are_refused() {
        let mut e = Editor::new();
        let mut input = std::vec![b'x'; MAX_LINE + 10];
        input.push(b'\n');
        let (echo, lines) = run(&mut e, &input);
        assert_eq!(lines, ["!TooLong"]);
        assert_eq!(echo.iter().filter(|&&b| b == 0x07).count(), 1);
        assert_eq!(echo.len(), MAX_LINE + 1 + 2);
        assert!(e.history().is_empty());
        // The editor recovers: the next line is fine.
        assert_eq!(run(&mut e, b"bench\n").1, ["bench"]);
        // Exactly MAX_LINE characters is fine.
        let mut exact = std::vec![b'y'; MAX_LINE];
        exact.push(b'\r');
        assert_eq!(lines_of(&exact)[0].len(), MAX_LINE);
        // Erasing after the overflow makes the line what the terminal shows.
        let mut fixed = std::vec![b'z'; MAX_LINE + 3];
        fixed.extend_from_slice(b"\x08\r");
        assert_eq!(lines_of(&fixed)[0].len(), MAX_LINE - 1);
    }

    #[test]
    fn too_long_message_names_the_limit() {
        assert!(TOO_LONG.contains(&std::format!("max {MAX_LINE} ")));
    }

    #[test]
    fn arrows_with_empty_history_ring_the_bell() {
        let mut e = Editor::new();
        let (echo, lines) = run(&mut e, b"ab\x1b[A\x1b[B\x1bOA\r");
        assert_eq!(echo, b"ab\x07\x07\x07\r\n");
        assert_eq!(lines, ["ab"]);
    }

    #[test]
    fn arrows_recall_history_and_restore_the_draft() {
        let mut e = Editor::new();
        run(&mut e, b"meminfo\rpage 5\r");
        let (echo, _) = run(&mut e, b"xy\x1b[A");
        assert_eq!(echo, b"xy\x08\x08page 5");
        let (echo, _) = run(&mut e, b"\x1b[A");
        assert_eq!(echo, b"\x08\x08\x08\x08\x08\x08meminfo");
        assert_eq!(run(&mut e, b"\x1b[A").0, b"\x07");
        let (echo, _) = run(&mut e, b"\x1b[B");
        assert_eq!(echo, b"\x08\x08\x08\x08\x08\x08\x08page 5 \x08");
        let (echo, _) = run(&mut e, b"\x1b[B");
        assert_eq!(echo, b"\x08\x08\x08\x08\x08\x08xy    \x08\x08\x08\x08");
        assert_eq!(run(&mut e, b"\x1b[B").0, b"\x07");
        assert_eq!(e.line(), "xy");
        // A recalled line can be edited and entered; SS3 arrows work too.
        let (_, lines) = run(&mut e, b"\x03\x1bOA\x7f9\r");
        assert_eq!(lines, ["!Cancel", "page 9"]);
        assert_eq!(e.history().get(0), Some("page 9"));
    }

    #[test]
    fn other_escape_sequences_are_swallowed() {
        // Right/left arrows, Delete (CSI 3 ~), Ctrl-Up (CSI 1;5A), F1 (SS3 P), Alt-x.
        let (echo, lines) = run(
            &mut Editor::new(),
            b"a\x1b[C\x1b[D\x1b[3~\x1b[1;5A\x1bOP\x1bxb\r",
        );
        assert_eq!(lines, ["ab"]);
        assert_eq!(echo, b"ab\r\n");
        // A control byte ends a sequence and still works.
        assert_eq!(lines_of(b"a\x1b\rb\x1b[\nc\x1bO\r"), ["a", "b", "c"]);
        assert_eq!(lines_of(b"a\x1b[12\x03"), ["!Cancel"]);
        // ESC ESC [ A is still an arrow (the first ESC is dropped).
        let mut e = Editor::new();
        run(&mut e, b"dmesg\r");
        assert_eq!(run(&mut e, b"\x1b\x1b[A").0, b"dmesg");
    }
}
