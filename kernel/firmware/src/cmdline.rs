//! The kernel command line: Linux's tokenizer (`next_arg`/`parse_args`: space separated
//! `name[=value]` words, double quotes group spaces, `--` ends the kernel's part), Linux's
//! `memparse` number syntax, and the early parameters that edit the E820 map: `memmap=` (all of
//! Linux's forms: `SIZE@START` usable, `SIZE#START` ACPI data, `SIZE$START` reserved,
//! `SIZE!START` persistent legacy (type 12), `SIZE%START-OLD+NEW` retype, plain `SIZE` limit,
//! `exactmap`; comma lists; several `memmap=` words) and `mem=SIZE`.
//!
//! Unlike Linux, a malformed item changes nothing (Linux may apply half of it): it yields a
//! [`MemmapError`] naming the item and the reason, and the rest of the line still applies.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use crate::e820::{E820Table, E820Type};

/// One command-line word: `name` or `name=value`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Param<'a> {
    /// The part before the first `=` (quotes removed as Linux removes them).
    pub name: &'a str,
    /// The part after the first `=`, if there is one.
    pub value: Option<&'a str>,
}

impl Param<'_> {
    /// True when the name equals `name`, treating `-` and `_` as the same (Linux's `parameq`).
    pub fn is(&self, name: &str) -> bool {
        let norm = |c: u8| if c == b'-' { b'_' } else { c };
        self.name.len() == name.len()
            && self
                .name
                .bytes()
                .zip(name.bytes())
                .all(|(a, b)| norm(a) == norm(b))
    }
}

/// Iterator over the words of a command line; see [`params`].
#[derive(Clone, Debug)]
pub struct Params<'a> {
    rest: &'a str,
}

/// The kernel's whitespace (`isspace` on ASCII).
const fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn skip_spaces(s: &str) -> &str {
    s.trim_start_matches(|c: char| c.is_ascii() && is_space(c as u8))
}

/// Splits a command line into words exactly like Linux's `parse_args`/`next_arg`, stopping at a
/// bare `--` (what follows belongs to init).
pub fn params(cmdline: &str) -> Params<'_> {
    Params {
        rest: skip_spaces(cmdline),
    }
}

impl<'a> Iterator for Params<'a> {
    type Item = Param<'a>;

    fn next(&mut self) -> Option<Param<'a>> {
        if self.rest.is_empty() {
            return None;
        }
        let (param, rest) = next_arg(self.rest);
        self.rest = rest;
        if param.value.is_none() && param.name == "--" {
            self.rest = "";
            return None;
        }
        Some(param)
    }
}

/// One step of Linux's `next_arg` on a string that does not start with a space.
fn next_arg(args: &str) -> (Param<'_>, &str) {
    let quoted = args.starts_with('"');
    let tok = if quoted {
        args.get(1..).unwrap_or("")
    } else {
        args
    };
    let b = tok.as_bytes();
    let mut in_quote = quoted;
    let mut equals = 0usize;
    let mut i = 0usize;
    while let Some(&c) = b.get(i) {
        if is_space(c) && !in_quote {
            break;
        }
        if equals == 0 && c == b'=' {
            equals = i;
        }
        if c == b'"' {
            in_quote = !in_quote;
        }
        i += 1;
    }
    // Linux overwrites a closing quote at i - 1 with NUL.
    let ends_with_quote = i > 0 && b.get(i - 1) == Some(&b'"');
    let param = if equals == 0 {
        let end = if quoted && ends_with_quote { i - 1 } else { i };
        Param {
            name: tok.get(..end).unwrap_or(""),
            value: None,
        }
    } else {
        let mut v_start = equals + 1;
        let mut v_end = i;
        if b.get(v_start) == Some(&b'"') {
            v_start += 1;
            if ends_with_quote {
                v_end = i - 1;
            }
        }
        if quoted && ends_with_quote {
            v_end = v_end.min(i - 1);
        }
        let v_end = v_end.max(v_start);
        Param {
            name: tok.get(..equals).unwrap_or(""),
            value: Some(tok.get(v_start..v_end).unwrap_or("")),
        }
    };
    // Skip the separating space (one byte, ASCII) and the spaces after it.
    let rest = tok.get(i..).unwrap_or("");
    let rest = rest.get(1..).unwrap_or("");
    (param, skip_spaces(rest))
}

/// Why a number could not be read by [`memparse`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemparseError {
    /// The text does not start with a digit.
    NoDigits,
    /// The number (after its K/M/G/T/P/E suffix) does not fit in 64 bits.
    Overflow,
}

impl fmt::Display for MemparseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NoDigits => "expected a number",
            Self::Overflow => "number does not fit in 64 bits",
        })
    }
}

/// Linux's `simple_strtoull(s, &end, 0)`: `0x` hex (when a hex digit follows), a leading `0`
/// octal, otherwise decimal. Returns the value and the unparsed rest; overflow is an error.
pub fn strtoull(s: &str) -> Result<(u64, &str), MemparseError> {
    let b = s.as_bytes();
    let (base, skip) = match (b.first(), b.get(1), b.get(2)) {
        (Some(b'0'), Some(x), Some(d))
            if x.eq_ignore_ascii_case(&b'x') && d.is_ascii_hexdigit() =>
        {
            (16u64, 2usize)
        }
        (Some(b'0'), _, _) => (8, 0),
        _ => (10, 0),
    };
    let digits = s.get(skip..).unwrap_or("");
    let mut value: u64 = 0;
    let mut n = 0usize;
    for c in digits.bytes() {
        let Some(d) = (c as char).to_digit(16).map(u64::from) else {
            break;
        };
        if d >= base {
            break;
        }
        value = value
            .checked_mul(base)
            .and_then(|v| v.checked_add(d))
            .ok_or(MemparseError::Overflow)?;
        n += 1;
    }
    if n == 0 {
        return Err(MemparseError::NoDigits);
    }
    Ok((value, digits.get(n..).unwrap_or("")))
}

/// Linux's `memparse`: a [`strtoull`] number optionally followed by one of `K M G T P E`
/// (either case, powers of 1024). Returns the value and the unparsed rest.
pub fn memparse(s: &str) -> Result<(u64, &str), MemparseError> {
    let (value, rest) = strtoull(s)?;
    let shift = match rest.as_bytes().first().map(u8::to_ascii_uppercase) {
        Some(b'K') => 10,
        Some(b'M') => 20,
        Some(b'G') => 30,
        Some(b'T') => 40,
        Some(b'P') => 50,
        Some(b'E') => 60,
        _ => return Ok((value, rest)),
    };
    if value.leading_zeros() < shift {
        return Err(MemparseError::Overflow);
    }
    Ok((value << shift, rest.get(1..).unwrap_or("")))
}

/// One E820 edit requested on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemmapOp {
    /// `memmap=exactmap`: forget the firmware map.
    ExactMap,
    /// `SIZE@START` (usable), `SIZE#START` (ACPI data), `SIZE$START` (reserved) or `SIZE!START`
    /// (persistent legacy, type 12): add the range with that type.
    Add {
        /// First address.
        start: u64,
        /// Length in bytes.
        size: u64,
        /// Type given to the range.
        typ: E820Type,
    },
    /// `memmap=SIZE` or `mem=SIZE`: remove all usable RAM at and above `SIZE`.
    Limit {
        /// The new end of usable RAM.
        size: u64,
    },
    /// `SIZE%START-OLD+NEW`: retype the `OLD` parts of the range as `NEW`.
    Update {
        /// First address.
        start: u64,
        /// Length in bytes.
        size: u64,
        /// Type to change.
        from: E820Type,
        /// Type it becomes.
        to: E820Type,
    },
    /// `SIZE%START-OLD` (only type `OLD`) or `SIZE%START` (any type): remove the range.
    Remove {
        /// First address.
        start: u64,
        /// Length in bytes.
        size: u64,
        /// Only entries of this type lose the range, or all when `None`.
        typ: Option<E820Type>,
    },
}

impl MemmapOp {
    /// Applies the edit to `table` as Linux does (`e820__range_add` / `_update` / `_remove`);
    /// the caller sanitizes afterwards.
    pub fn apply(&self, table: &mut E820Table) {
        match *self {
            Self::ExactMap => table.clear(),
            Self::Add { start, size, typ } => table.add_range(start, size, typ),
            Self::Limit { size } => {
                table.remove_range(size, u64::MAX - size, Some(E820Type::Usable));
            }
            Self::Update {
                start,
                size,
                from,
                to,
            } => {
                table.update_range(start, size, from, to);
            }
            Self::Remove { start, size, typ } => {
                table.remove_range(start, size, typ);
            }
        }
    }
}

/// A `memmap=` or `mem=` item that was not applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemmapError {
    /// The item as written, with its parameter name (e.g. `memmap=64M?256M`).
    pub item: String,
    /// Why it was refused.
    pub reason: String,
}

impl fmt::Display for MemmapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}; parameter ignored", self.item, self.reason)
    }
}

/// Parses one `memmap=` item (the text between commas) like Linux's `parse_memmap_one`, but
/// refusing the whole item when anything is wrong.
pub fn parse_memmap_item(item: &str) -> Result<MemmapOp, String> {
    if item == "exactmap" {
        return Ok(MemmapOp::ExactMap);
    }
    let (size, rest) = memparse(item).map_err(|e| alloc::format!("size: {e}"))?;
    let Some(&sep) = rest.as_bytes().first() else {
        if size == 0 {
            return Err("a limit of 0 would remove all RAM".to_string());
        }
        return Ok(MemmapOp::Limit { size });
    };
    let typ = match sep {
        b'@' => E820Type::Usable,
        b'#' => E820Type::Acpi,
        b'$' => E820Type::Reserved,
        b'!' => E820Type::Pram,
        b'%' => E820Type::Reserved, // placeholder, handled below
        _ => {
            return Err(alloc::format!(
                "unexpected {:?} after the size (expected a K/M/G/T/P/E suffix, or one of \
                 @ # $ ! % followed by a start address)",
                rest.chars().next().unwrap_or(' ')
            ));
        }
    };
    let (start, rest) =
        memparse(rest.get(1..).unwrap_or("")).map_err(|e| alloc::format!("start address: {e}"))?;
    if size == 0 {
        return Err("size is zero".to_string());
    }
    if start.checked_add(size).is_none() {
        return Err("range runs past the end of the 64-bit address space".to_string());
    }
    if sep != b'%' {
        if !rest.is_empty() {
            return Err(alloc::format!(
                "unexpected {rest:?} after the start address"
            ));
        }
        return Ok(MemmapOp::Add { start, size, typ });
    }
    let mut rest = rest;
    let mut from = None;
    let mut to = None;
    if let Some(r) = rest.strip_prefix('-') {
        let (v, r) = strtoull(r).map_err(|e| alloc::format!("old type: {e}"))?;
        from = Some(v);
        rest = r;
    }
    if let Some(r) = rest.strip_prefix('+') {
        let (v, r) = strtoull(r).map_err(|e| alloc::format!("new type: {e}"))?;
        to = Some(v);
        rest = r;
    }
    if !rest.is_empty() {
        return Err(alloc::format!(
            "unexpected {rest:?} (expected SIZE%START[-OLDTYPE][+NEWTYPE])"
        ));
    }
    let to_type = |v: Option<u64>| -> Result<Option<E820Type>, String> {
        match v {
            None | Some(0) => Ok(None),
            Some(v) => u32::try_from(v)
                .map(|v| Some(E820Type::from_raw(v)))
                .map_err(|_| alloc::format!("type {v} does not fit in 32 bits")),
        }
    };
    let (from, to) = (to_type(from)?, to_type(to)?);
    Ok(match (from, to) {
        (Some(from), Some(to)) if from == to => {
            return Err("old and new type are the same".to_string());
        }
        (Some(from), Some(to)) => MemmapOp::Update {
            start,
            size,
            from,
            to,
        },
        (None, Some(to)) => MemmapOp::Add {
            start,
            size,
            typ: to,
        },
        (from, None) => MemmapOp::Remove {
            start,
            size,
            typ: from,
        },
    })
}

/// What [`apply_memmap`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemmapReport {
    /// The edits applied, in command-line order.
    pub applied: Vec<MemmapOp>,
    /// The items refused, in command-line order.
    pub errors: Vec<MemmapError>,
}

impl MemmapReport {
    /// True when the map was changed, so the kernel prints `user-defined physical RAM map:` and
    /// the table with the `user` prefix (see [`E820Table::log_user_map`]).
    pub fn user_defined(&self) -> bool {
        !self.applied.is_empty()
    }

    /// Logs each refused item (warn) and, when the map changed, the user map (info), as the
    /// kernel's boot log shows them.
    pub fn log(&self, table: &E820Table) {
        for e in &self.errors {
            log::warn!("{e}");
        }
        if self.user_defined() {
            table.log_user_map();
        }
    }
}

/// Applies every `memmap=` and `mem=` parameter of `cmdline` to `table` in order, then
/// sanitizes it if anything changed (Linux's `parse_memmap_opt`, `parse_memopt` and
/// `e820__finish_early_params`).
pub fn apply_memmap(cmdline: &str, table: &mut E820Table) -> MemmapReport {
    let mut report = MemmapReport::default();
    for p in params(cmdline) {
        let is_memmap = p.is("memmap");
        if !is_memmap && !p.is("mem") {
            continue;
        }
        let Some(value) = p.value else {
            report.errors.push(MemmapError {
                item: p.name.to_string(),
                reason: "missing value".to_string(),
            });
            continue;
        };
        if is_memmap {
            for item in value.split(',') {
                match parse_memmap_item(item) {
                    Ok(op) => {
                        op.apply(table);
                        report.applied.push(op);
                    }
                    Err(reason) => report.errors.push(MemmapError {
                        item: alloc::format!("{}={item}", p.name),
                        reason,
                    }),
                }
            }
        } else {
            match parse_mem(value) {
                Ok(op) => {
                    op.apply(table);
                    report.applied.push(op);
                }
                Err(reason) => report.errors.push(MemmapError {
                    item: alloc::format!("{}={value}", p.name),
                    reason,
                }),
            }
        }
    }
    if report.user_defined() {
        table.sanitize();
    }
    report
}

/// `mem=SIZE` (Linux's `parse_memopt`; `nopentium` is 32-bit only).
fn parse_mem(value: &str) -> Result<MemmapOp, String> {
    if value == "nopentium" {
        return Err("mem=nopentium is only supported on 32-bit x86".to_string());
    }
    let (size, rest) = memparse(value).map_err(|e| alloc::format!("size: {e}"))?;
    if !rest.is_empty() {
        return Err(alloc::format!("unexpected {rest:?} after the size"));
    }
    if size == 0 {
        return Err("a limit of 0 would remove all RAM".to_string());
    }
    Ok(MemmapOp::Limit { size })
}
