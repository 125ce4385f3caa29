//! Reading an E820 map back from a Linux boot log: the `BIOS-e820: [mem 0x…-0x…] <label>` lines
//! that `e820__print_table` writes, with or without the `[    0.000000] ` timestamp or a syslog
//! prefix, and the older `BIOS-e820: 0000000000000000 - 000000000009fc00 (usable)` form (end
//! exclusive) of kernels before 3.7. Used by the host planner to replay a real machine's map.

use alloc::string::{String, ToString};
use core::fmt;

use super::{E820Table, E820Type};

const MARKER: &str = "BIOS-e820: ";

/// A `BIOS-e820:` line that could not be read, or a log without any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DmesgError {
    /// 1-based line number (0 when the whole text is at fault).
    pub line: usize,
    /// The offending line (trimmed), empty when the whole text is at fault.
    pub text: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl fmt::Display for DmesgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "e820 dmesg: {}", self.reason)
        } else {
            write!(
                f,
                "e820 dmesg line {}: {}: {:?}",
                self.line, self.reason, self.text
            )
        }
    }
}

/// Parses the `BIOS-e820:` lines of a Linux boot log into an E820 table, in log order (not
/// sanitized). Other lines are ignored. The first malformed `BIOS-e820:` line is an error, and
/// so is a text without any.
pub fn parse_dmesg(text: &str) -> Result<E820Table, DmesgError> {
    let mut table = E820Table::new();
    for (idx, raw_line) in text.lines().enumerate() {
        let Some(pos) = raw_line.find(MARKER) else {
            continue;
        };
        let err = |reason| DmesgError {
            line: idx + 1,
            text: raw_line.trim().to_string(),
            reason,
        };
        let rest = raw_line.get(pos + MARKER.len()..).unwrap_or("").trim();
        if rest.starts_with(|c: char| c.is_ascii_hexdigit()) {
            let (addr, end, typ) = parse_old_entry(rest).map_err(err)?;
            if end < addr {
                return Err(err("range ends before it starts"));
            }
            table.add_range(addr, end - addr, typ);
            continue;
        }
        let (addr, last, label) = parse_entry(rest).map_err(err)?;
        let typ = parse_label(label).ok_or_else(|| err("unknown memory type label"))?;
        if last < addr {
            return Err(err("range ends before it starts"));
        }
        // last - addr + 1 overflows only for the whole 64-bit space: clip by one byte.
        let size = (last - addr).saturating_add(1);
        table.add_range(addr, size, typ);
    }
    if table.is_empty() {
        return Err(DmesgError {
            line: 0,
            text: String::new(),
            reason: "no `BIOS-e820: [mem 0x...-0x...] <type>` line found",
        });
    }
    Ok(table)
}

/// Parses the pre-3.7 form `START - END (label)` (hex without `0x`, end exclusive; unknown
/// types print as `type N` without parentheses).
fn parse_old_entry(s: &str) -> Result<(u64, u64, E820Type), &'static str> {
    let (a, rest) = s
        .split_once(" - ")
        .ok_or("expected `START - END (type)` after `BIOS-e820:`")?;
    let rest = rest.trim_start();
    let split = rest
        .find(' ')
        .ok_or("missing memory type after the range")?;
    let (b, label) = (
        rest.get(..split).unwrap_or(""),
        rest.get(split..).unwrap_or("").trim(),
    );
    let hex = |t: &str| {
        (!t.is_empty() && t.len() <= 16)
            .then(|| u64::from_str_radix(t, 16).ok())
            .flatten()
    };
    let addr = hex(a.trim()).ok_or("bad start address (expected hex)")?;
    let end = hex(b).ok_or("bad end address (expected hex)")?;
    let label = label
        .strip_prefix('(')
        .and_then(|l| l.strip_suffix(')'))
        .unwrap_or(label);
    let typ = parse_label(label).ok_or("unknown memory type label")?;
    Ok((addr, end, typ))
}

/// Splits `[mem 0xSTART-0xEND] label` into its parts.
fn parse_entry(s: &str) -> Result<(u64, u64, &str), &'static str> {
    let s = s
        .strip_prefix("[mem ")
        .ok_or("expected `[mem 0x...-0x...]` after `BIOS-e820:`")?;
    let close = s.find(']').ok_or("missing `]` after the range")?;
    let (range, label) = (
        s.get(..close).unwrap_or(""),
        s.get(close + 1..).unwrap_or(""),
    );
    let (a, b) = range
        .split_once('-')
        .ok_or("range must be `0xSTART-0xEND`")?;
    let addr = parse_hex(a.trim()).ok_or("bad start address (expected 0x followed by hex)")?;
    let last = parse_hex(b.trim()).ok_or("bad end address (expected 0x followed by hex)")?;
    Ok((addr, last, label.trim()))
}

fn parse_hex(s: &str) -> Option<u64> {
    let digits = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))?;
    if digits.is_empty() || digits.len() > 16 {
        return None;
    }
    u64::from_str_radix(digits, 16).ok()
}

/// The inverse of [`E820Type::label`].
fn parse_label(label: &str) -> Option<E820Type> {
    let typ = match label {
        "usable" => E820Type::Usable,
        "reserved" => E820Type::Reserved,
        "soft reserved" => E820Type::SoftReserved,
        "ACPI data" => E820Type::Acpi,
        "ACPI NVS" => E820Type::Nvs,
        "unusable" => E820Type::Unusable,
        _ => {
            let num = label
                .strip_prefix("persistent (type ")
                .and_then(|n| n.strip_suffix(')'))
                .or_else(|| label.strip_prefix("type "))?;
            if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            E820Type::from_raw(num.parse().ok()?)
        }
    };
    Some(typ)
}
