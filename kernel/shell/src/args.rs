//! Splitting a command line into whitespace-separated arguments.

/// The arguments not consumed yet. Separators are ASCII whitespace; any other
/// character (also non-ASCII) belongs to an argument.
#[derive(Debug, Clone)]
pub(crate) struct Args<'a> {
    rest: &'a str,
}

impl<'a> Args<'a> {
    /// The arguments of `line`.
    pub(crate) fn new(line: &'a str) -> Self {
        Self { rest: line }
    }

    /// The next argument, or `None` at the end of the line.
    pub(crate) fn next(&mut self) -> Option<&'a str> {
        let s = self.rest.trim_ascii_start();
        let end = s.find(|c: char| c.is_ascii_whitespace()).unwrap_or(s.len());
        let (arg, rest) = s.split_at_checked(end).unwrap_or((s, ""));
        self.rest = rest;
        (!arg.is_empty()).then_some(arg)
    }

    /// Everything left, with outer whitespace trimmed; consumes it.
    pub(crate) fn rest(&mut self) -> &'a str {
        core::mem::take(&mut self.rest).trim_ascii()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_ascii_whitespace_only() {
        let mut a = Args::new(" \tpmem  write\u{a0}x 0 \"a b\"  ");
        assert_eq!(a.next(), Some("pmem"));
        assert_eq!(a.next(), Some("write\u{a0}x"));
        assert_eq!(a.next(), Some("0"));
        assert_eq!(a.rest(), "\"a b\"");
        assert_eq!(a.next(), None);
        assert_eq!(Args::new("   ").next(), None);
        assert_eq!(Args::new("").rest(), "");
    }
}
