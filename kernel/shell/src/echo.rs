//! The bytes the kernel writes back to the terminal for one editor event.
//!
//! An [`Echo`] is a short chain of byte slices (never allocated); iterate it for the
//! bytes, or take [`Echo::slices`] to write whole slices to the UART.

use crate::line::MAX_LINE;

/// `MAX_LINE` backspaces, for moving the cursor back over a redrawn line.
static BACKSPACES: [u8; MAX_LINE] = [0x08; MAX_LINE];
/// `MAX_LINE` spaces, for blanking the tail of a longer old line.
static SPACES: [u8; MAX_LINE] = [b' '; MAX_LINE];

/// Bytes to echo: up to four slices, written in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Echo<'a> {
    parts: [&'a [u8]; 4],
}

impl<'a> Echo<'a> {
    /// Nothing to echo.
    pub const EMPTY: Echo<'static> = Echo::fixed(b"");

    /// Echo of one fixed byte string.
    pub const fn fixed(bytes: &'a [u8]) -> Self {
        Self {
            parts: [bytes, b"", b"", b""],
        }
    }

    /// Replaces a line of `erase` characters just before the cursor by `line`: moves
    /// back over the old line, writes the new one, and blanks what is left of the old
    /// one. Uses only backspaces and spaces, so it works on any terminal. Counts above
    /// [`MAX_LINE`] are clamped.
    pub fn redraw(erase: usize, line: &'a str) -> Self {
        let clear = erase.saturating_sub(line.len());
        let back = |n: usize| BACKSPACES.get(..n).unwrap_or(&BACKSPACES);
        Self {
            parts: [
                back(erase),
                line.as_bytes(),
                SPACES.get(..clear).unwrap_or(&SPACES),
                back(clear),
            ],
        }
    }

    /// The slices to write, in order (some may be empty).
    pub fn slices(&self) -> [&'a [u8]; 4] {
        self.parts
    }

    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.parts.iter().all(|p| p.is_empty())
    }
}

impl Iterator for Echo<'_> {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        for part in &mut self.parts {
            if let Some((&first, rest)) = part.split_first() {
                *part = rest;
                return Some(first);
            }
        }
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.parts.iter().map(|p| p.len()).sum();
        (n, Some(n))
    }
}

impl ExactSizeIterator for Echo<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[test]
    fn redraw_shorter_longer_and_clamped() {
        let bytes: Vec<u8> = Echo::redraw(5, "ab").collect();
        assert_eq!(bytes, b"\x08\x08\x08\x08\x08ab   \x08\x08\x08");
        let bytes: Vec<u8> = Echo::redraw(1, "abc").collect();
        assert_eq!(bytes, b"\x08abc");
        assert_eq!(Echo::redraw(usize::MAX, "").len(), 3 * MAX_LINE);
        assert!(Echo::EMPTY.is_empty());
        assert_eq!(Echo::fixed(b"xy").slices()[0], b"xy");
    }
}
