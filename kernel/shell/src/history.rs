//! Command history: a fixed ring of the last [`HISTORY_LEN`] lines.
//!
//! Lines are stored in place (no allocation), at most [`MAX_LINE`] bytes each. Blank
//! lines and a repeat of the newest line are not stored.

use crate::line::MAX_LINE;

/// How many lines the history keeps; the oldest is dropped first.
pub const HISTORY_LEN: usize = 16;

/// A ring buffer of the most recent distinct command lines.
#[derive(Clone)]
pub struct History {
    entries: [[u8; MAX_LINE]; HISTORY_LEN],
    lens: [usize; HISTORY_LEN],
    /// Slot the next line is written to.
    next: usize,
    /// Number of stored lines, at most `HISTORY_LEN`.
    count: usize,
}

impl Default for History {
    fn default() -> Self {
        Self::new()
    }
}

impl History {
    /// An empty history; `const` so that it can live in a `static`.
    pub const fn new() -> Self {
        Self {
            entries: [[0; MAX_LINE]; HISTORY_LEN],
            lens: [0; HISTORY_LEN],
            next: 0,
            count: 0,
        }
    }

    /// Number of stored lines.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether no line is stored.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The line stored `age` lines ago: 0 is the newest. `None` past the oldest.
    pub fn get(&self, age: usize) -> Option<&str> {
        if age >= self.count {
            return None;
        }
        let slot = (self.next + HISTORY_LEN - 1 - age) % HISTORY_LEN;
        let bytes = self.entries.get(slot)?.get(..*self.lens.get(slot)?)?;
        core::str::from_utf8(bytes).ok()
    }

    /// The stored lines, newest first.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        (0..self.count).filter_map(|age| self.get(age))
    }

    /// Stores `line` unless it is blank or equal to the newest line. A line longer
    /// than [`MAX_LINE`] bytes is cut at the last character boundary that fits.
    pub fn push(&mut self, line: &str) {
        if line.trim_ascii().is_empty() || self.get(0) == Some(line) {
            return;
        }
        let mut len = line.len().min(MAX_LINE);
        while !line.is_char_boundary(len) {
            len -= 1;
        }
        let (Some(entry), Some(slot_len), Some(bytes)) = (
            self.entries.get_mut(self.next),
            self.lens.get_mut(self.next),
            line.as_bytes().get(..len),
        ) else {
            return;
        };
        if let Some(dst) = entry.get_mut(..len) {
            dst.copy_from_slice(bytes);
            *slot_len = len;
            self.next = (self.next + 1) % HISTORY_LEN;
            self.count = (self.count + 1).min(HISTORY_LEN);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::{format, string::String, vec::Vec};

    #[test]
    fn newest_first_without_repeats_or_blanks() {
        let mut h = History::new();
        assert!(h.is_empty());
        assert_eq!(h.get(0), None);
        h.push("meminfo");
        h.push("meminfo");
        h.push("   ");
        h.push("");
        h.push("buddyinfo");
        h.push("meminfo");
        assert_eq!(
            h.iter().collect::<Vec<_>>(),
            ["meminfo", "buddyinfo", "meminfo"]
        );
        assert_eq!(h.len(), 3);
        assert_eq!(h.get(3), None);
    }

    #[test]
    fn ring_drops_the_oldest() {
        let mut h = History::new();
        for i in 0..HISTORY_LEN + 5 {
            h.push(&format!("page {i}"));
        }
        assert_eq!(h.len(), HISTORY_LEN);
        assert_eq!(h.get(0), Some(format!("page {}", HISTORY_LEN + 4).as_str()));
        assert_eq!(h.get(HISTORY_LEN - 1), Some("page 5"));
        assert_eq!(h.get(HISTORY_LEN), None);
        assert_eq!(h.get(usize::MAX), None);
    }

    #[test]
    fn long_lines_are_cut_at_a_char_boundary() {
        let mut h = History::new();
        let mut long = String::from("x");
        long.extend(core::iter::repeat_n('é', MAX_LINE));
        h.push(&long);
        let stored = h.get(0).unwrap();
        assert!(stored.len() <= MAX_LINE && long.starts_with(stored));
        assert_eq!(stored.len(), MAX_LINE - 1);
    }
}
