//! Parse errors: each displays as one clear line of printable ASCII.

use core::fmt;

use crate::help::{HELP, Spec};
use crate::num::NumError;

/// Longest piece of user input quoted in a message, in characters.
const QUOTE_MAX: usize = 24;

/// What is wrong with a command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind<'a> {
    /// The first word is no command.
    UnknownCommand(&'a str),
    /// A command with subcommands was given none.
    MissingSubcommand,
    /// A command with subcommands was given an unknown one.
    UnknownSubcommand(&'a str),
    /// A required argument is missing; names it.
    Missing(&'static str),
    /// More arguments than the command takes.
    TooMany,
    /// An argument is not a valid number.
    BadNumber {
        /// The argument's name.
        what: &'static str,
        /// The argument as typed.
        token: &'a str,
        /// Why it is not a number.
        error: NumError,
    },
    /// A number outside the allowed range.
    OutOfRange {
        /// The argument's name.
        what: &'static str,
        /// The value given.
        value: u64,
        /// The smallest allowed value.
        min: u64,
        /// The largest allowed value.
        max: u64,
        /// Show the numbers in hex (addresses, frame numbers).
        hex: bool,
    },
    /// A word that is not one of the allowed choices.
    BadChoice {
        /// The argument's name.
        what: &'static str,
        /// The argument as typed.
        token: &'a str,
        /// The allowed words, for the message.
        choices: &'static str,
    },
    /// A value that must be a multiple of `align` is not.
    Misaligned {
        /// The argument's name.
        what: &'static str,
        /// The value given.
        value: u64,
        /// The required alignment.
        align: u64,
    },
    /// A devmem value wider than the access width.
    TooWide {
        /// The value given.
        value: u64,
        /// The access width in bits.
        bits: u32,
    },
    /// OFFSET + LEN is past the end of the 64-bit range.
    EndOverflow,
    /// A `pmem write` byte that is not 1-2 hex digits.
    BadByte(&'a str),
    /// A `pmem write` string without its closing quote.
    Unterminated,
    /// A `pmem write` string with nothing between the quotes.
    EmptyString,
    /// More `pmem write` data than one command may write.
    TooMuchData {
        /// The limit in bytes.
        max: usize,
    },
}

/// A rejected command line: the error and the command it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseError<'a> {
    /// The command (or subcommand) row, once known.
    spec: Option<&'static Spec>,
    /// The command word, once known (also when the subcommand is not).
    word: &'static str,
    kind: ErrorKind<'a>,
}

impl PartialEq for Spec {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Spec {}

impl<'a> ParseError<'a> {
    /// An error in a line whose command word is not known.
    pub(crate) fn bare(kind: ErrorKind<'a>) -> Self {
        Self {
            spec: None,
            word: "",
            kind,
        }
    }

    /// An error about the subcommand of command `word`.
    pub(crate) fn in_command(word: &'static str, kind: ErrorKind<'a>) -> Self {
        Self {
            spec: None,
            word,
            kind,
        }
    }

    /// An error in the arguments of `spec`.
    pub(crate) fn in_spec(spec: &'static Spec, kind: ErrorKind<'a>) -> Self {
        Self {
            spec: Some(spec),
            word: spec.command(),
            kind,
        }
    }

    /// What is wrong.
    pub fn kind(&self) -> ErrorKind<'a> {
        self.kind
    }

    /// The command row the error is about, if the line got that far.
    pub fn spec(&self) -> Option<&'static Spec> {
        self.spec
    }
}

/// User input quoted safely: at most [`QUOTE_MAX`] characters, non-printable and
/// non-ASCII characters escaped, `...` when cut.
struct Quoted<'a>(&'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars().take(QUOTE_MAX) {
            if c == ' ' || c.is_ascii_graphic() {
                write!(f, "{c}")?;
            } else {
                write!(f, "{}", c.escape_default())?;
            }
        }
        if self.0.chars().nth(QUOTE_MAX).is_some() {
            f.write_str("...")?;
        }
        Ok(())
    }
}

/// The subcommands of `word`, as `a, b or c`.
struct Choices(&'static str);

impl fmt::Display for Choices {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let subs = || {
            HELP.iter()
                .filter(|s| s.command() == self.0)
                .filter_map(Spec::subcommand)
        };
        let n = subs().count();
        for (i, sub) in subs().enumerate() {
            let sep = match i {
                0 => "",
                _ if i + 1 == n => " or ",
                _ => ", ",
            };
            write!(f, "{sep}{sub}")?;
        }
        Ok(())
    }
}

impl fmt::Display for ParseError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.spec, self.word) {
            (Some(spec), _) => write!(f, "{}: ", spec.name)?,
            (None, "") => {}
            (None, word) => write!(f, "{word}: ")?,
        }
        match self.kind {
            ErrorKind::UnknownCommand(t) => {
                write!(f, "unknown command '{}' (type 'help')", Quoted(t))
            }
            ErrorKind::MissingSubcommand => {
                write!(f, "missing subcommand ({})", Choices(self.word))
            }
            ErrorKind::UnknownSubcommand(t) => write!(
                f,
                "unknown subcommand '{}' ({})",
                Quoted(t),
                Choices(self.word)
            ),
            ErrorKind::Missing(what) => {
                write!(f, "missing {what}")?;
                self.usage(f)
            }
            ErrorKind::TooMany => {
                f.write_str("too many arguments")?;
                self.usage(f)
            }
            ErrorKind::BadNumber { what, token, error } => {
                write!(f, "bad {what} '{}': {error}", Quoted(token))
            }
            ErrorKind::OutOfRange {
                what,
                value,
                min,
                max,
                hex: true,
            } => write!(f, "{what} {value:#x} out of range ({min:#x}-{max:#x})"),
            ErrorKind::OutOfRange {
                what,
                value,
                min,
                max,
                hex: false,
            } => write!(f, "{what} {value} out of range ({min}-{max})"),
            ErrorKind::BadChoice {
                what,
                token,
                choices,
            } => write!(f, "unknown {what} '{}' ({choices})", Quoted(token)),
            ErrorKind::Misaligned { what, value, align } => {
                write!(f, "{what} {value:#x} is not a multiple of {align:#x}")
            }
            ErrorKind::TooWide { value, bits } => {
                write!(f, "value {value:#x} does not fit in {bits} bits")
            }
            ErrorKind::EndOverflow => f.write_str("OFFSET + LEN is past 2^64"),
            ErrorKind::BadByte(t) => write!(
                f,
                "bad byte '{}' (hex bytes like 0f or 0xff, or \"text\")",
                Quoted(t)
            ),
            ErrorKind::Unterminated => f.write_str("missing closing '\"'"),
            ErrorKind::EmptyString => f.write_str("empty string, nothing to write"),
            ErrorKind::TooMuchData { max } => write!(f, "too much data (max {max} bytes)"),
        }
    }
}

impl ParseError<'_> {
    /// Appends ` (usage: ...)` when the command is known.
    fn usage(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.spec {
            Some(spec) => write!(f, " (usage: {})", spec.usage()),
            None => Ok(()),
        }
    }
}
