//! Number parsing for command arguments.
//!
//! Numbers are unsigned 64-bit, written in decimal (`4096`, leading zeros allowed and
//! still decimal) or in hex after `0x`/`0X` (`0x1000`, digits of either case). Sizes are
//! numbers followed by an optional binary unit: `K`, `M`, `G` or `T` (2^10, 2^20, 2^30,
//! 2^40), any case, optionally followed by `B` or `iB` (`4K`, `4KB`, `4KiB`, `0x10M`).
//! A bare `B` is not a unit, since it is also a hex digit. Every overflow is reported.

use core::fmt;

/// Why a string is not a valid number or size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumError {
    /// The string has no digits at all.
    Empty,
    /// `0x` is not followed by any hex digit.
    NoHexDigits,
    /// A character that is not a digit of the number's base.
    InvalidDigit(char),
    /// The value does not fit in 64 bits (also after applying a size unit).
    Overflow,
    /// Letters after the digits that are not a size unit.
    BadSuffix,
}

impl fmt::Display for NumError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("no digits"),
            Self::NoHexDigits => f.write_str("no hex digits after 0x"),
            Self::InvalidDigit(c) => write!(f, "invalid digit '{}'", c.escape_default()),
            Self::Overflow => write!(f, "too large (max {:#x})", u64::MAX),
            Self::BadSuffix => f.write_str("unknown size unit (use K, M, G or T)"),
        }
    }
}

/// Splits an optional `0x`/`0X` prefix off: returns the digits and the radix.
fn radix(s: &str) -> (&str, u32) {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => (hex, 16),
        None => (s, 10),
    }
}

/// Accumulates `digits` in `radix`, checking every digit and every step for overflow.
fn digits(digits: &str, radix: u32) -> Result<u64, NumError> {
    if digits.is_empty() {
        return Err(if radix == 16 {
            NumError::NoHexDigits
        } else {
            NumError::Empty
        });
    }
    digits.chars().try_fold(0u64, |acc, c| {
        let d = c.to_digit(radix).ok_or(NumError::InvalidDigit(c))?;
        acc.checked_mul(u64::from(radix))
            .and_then(|v| v.checked_add(u64::from(d)))
            .ok_or(NumError::Overflow)
    })
}

/// Parses a decimal or `0x`-hex number.
///
/// ```
/// use shell::num::{parse_u64, NumError};
/// assert_eq!(parse_u64("0x1f"), Ok(31));
/// assert_eq!(parse_u64("18446744073709551616"), Err(NumError::Overflow));
/// ```
pub fn parse_u64(s: &str) -> Result<u64, NumError> {
    let (body, radix) = radix(s);
    digits(body, radix)
}

/// Parses a size: a number with an optional `K`/`M`/`G`/`T` binary unit (see the module
/// documentation).
///
/// ```
/// use shell::num::parse_size;
/// assert_eq!(parse_size("4K"), Ok(4096));
/// assert_eq!(parse_size("0x2MiB"), Ok(2 << 20));
/// ```
pub fn parse_size(s: &str) -> Result<u64, NumError> {
    let (body, radix) = radix(s);
    let split = body
        .char_indices()
        .find(|&(_, c)| !c.is_digit(radix))
        .map_or(body.len(), |(i, _)| i);
    let (number, unit) = body.split_at_checked(split).unwrap_or((body, ""));
    let mut unit_chars = unit.chars();
    let shift = match unit_chars.next() {
        None => return digits(number, radix),
        Some('k' | 'K') => 10,
        Some('m' | 'M') => 20,
        Some('g' | 'G') => 30,
        Some('t' | 'T') => 40,
        Some(c) if c.is_ascii_alphabetic() => return Err(NumError::BadSuffix),
        Some(c) => return Err(NumError::InvalidDigit(c)),
    };
    let tail = unit_chars.as_str();
    if !(tail.is_empty() || tail.eq_ignore_ascii_case("b") || tail.eq_ignore_ascii_case("ib")) {
        return Err(NumError::BadSuffix);
    }
    digits(number, radix)?
        .checked_mul(1u64 << shift)
        .ok_or(NumError::Overflow)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_and_hex() {
        assert_eq!(parse_u64("0"), Ok(0));
        assert_eq!(parse_u64("007"), Ok(7));
        assert_eq!(parse_u64("0x0"), Ok(0));
        assert_eq!(parse_u64("0XaBc"), Ok(0xabc));
        assert_eq!(parse_u64("18446744073709551615"), Ok(u64::MAX));
        assert_eq!(parse_u64("0xffffffffffffffff"), Ok(u64::MAX));
        assert_eq!(parse_u64("0x00000000000000000001"), Ok(1));
    }

    #[test]
    fn bad_numbers() {
        assert_eq!(parse_u64(""), Err(NumError::Empty));
        assert_eq!(parse_u64("0x"), Err(NumError::NoHexDigits));
        assert_eq!(parse_u64("0X"), Err(NumError::NoHexDigits));
        assert_eq!(parse_u64("18446744073709551616"), Err(NumError::Overflow));
        assert_eq!(parse_u64("0x10000000000000000"), Err(NumError::Overflow));
        assert_eq!(
            parse_u64("99999999999999999999999"),
            Err(NumError::Overflow)
        );
        assert_eq!(parse_u64("12a"), Err(NumError::InvalidDigit('a')));
        assert_eq!(parse_u64("0xg"), Err(NumError::InvalidDigit('g')));
        assert_eq!(parse_u64("-1"), Err(NumError::InvalidDigit('-')));
        assert_eq!(parse_u64("+1"), Err(NumError::InvalidDigit('+')));
        assert_eq!(parse_u64("1_000"), Err(NumError::InvalidDigit('_')));
        assert_eq!(parse_u64("0x0x1"), Err(NumError::InvalidDigit('x')));
        assert_eq!(parse_u64("٣"), Err(NumError::InvalidDigit('٣')));
        assert_eq!(parse_u64("4K"), Err(NumError::InvalidDigit('K')));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("4k"), Ok(4096));
        assert_eq!(parse_size("4K"), Ok(4096));
        assert_eq!(parse_size("4KB"), Ok(4096));
        assert_eq!(parse_size("4KiB"), Ok(4096));
        assert_eq!(parse_size("4kib"), Ok(4096));
        assert_eq!(parse_size("2M"), Ok(2 << 20));
        assert_eq!(parse_size("3G"), Ok(3 << 30));
        assert_eq!(parse_size("1T"), Ok(1 << 40));
        assert_eq!(parse_size("0x10M"), Ok(16 << 20));
        assert_eq!(parse_size("0x1B"), Ok(0x1b));
        assert_eq!(parse_size("0K"), Ok(0));
        assert_eq!(parse_size("16777215T"), Ok(16_777_215 << 40));
        assert_eq!(parse_size("18446744073709551615"), Ok(u64::MAX));
    }

    #[test]
    fn bad_sizes() {
        assert_eq!(parse_size(""), Err(NumError::Empty));
        assert_eq!(parse_size("K"), Err(NumError::Empty));
        assert_eq!(parse_size("0x"), Err(NumError::NoHexDigits));
        assert_eq!(parse_size("0xK"), Err(NumError::NoHexDigits));
        assert_eq!(parse_size("16777216T"), Err(NumError::Overflow));
        assert_eq!(parse_size("0x400000000000G"), Err(NumError::Overflow));
        assert_eq!(parse_size("18446744073709551615K"), Err(NumError::Overflow));
        assert_eq!(parse_size("99999999999999999999K"), Err(NumError::Overflow));
        assert_eq!(parse_size("4Q"), Err(NumError::BadSuffix));
        assert_eq!(parse_size("4B"), Err(NumError::BadSuffix));
        assert_eq!(parse_size("4KK"), Err(NumError::BadSuffix));
        assert_eq!(parse_size("4KiBs"), Err(NumError::BadSuffix));
        assert_eq!(parse_size("4 K"), Err(NumError::InvalidDigit(' ')));
        assert_eq!(parse_size("4.5M"), Err(NumError::InvalidDigit('.')));
        assert_eq!(parse_size("4Mé"), Err(NumError::BadSuffix));
        assert_eq!(parse_size("4é"), Err(NumError::InvalidDigit('é')));
    }

    #[test]
    fn messages_are_one_ascii_line() {
        for e in [
            NumError::Empty,
            NumError::NoHexDigits,
            NumError::InvalidDigit('\n'),
            NumError::InvalidDigit('é'),
            NumError::Overflow,
            NumError::BadSuffix,
        ] {
            let s = std::format!("{e}");
            assert!(s.bytes().all(|b| (0x20..0x7f).contains(&b)), "{s:?}");
        }
        assert_eq!(
            std::format!("{}", NumError::InvalidDigit('z')),
            "invalid digit 'z'"
        );
    }
}
