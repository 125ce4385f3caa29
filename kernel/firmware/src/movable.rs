//! The command-line parameters that size ZONE_MOVABLE: Linux's `kernelcore=` and
//! `movablecore=` (`cmdline_parse_kernelcore`, `cmdline_parse_movablecore` and their common
//! `cmdline_parse_core` in mm/page_alloc.c of Linux 6.1, mm/mm_init.c later) and
//! `movable_node` (`cmdline_parse_movable_node`, mm/memory_hotplug.c).
//!
//! This module owns the parsing only: the result, [`MovableParams`], holds the same six
//! variables Linux keeps (`required_kernelcore`, `required_kernelcore_percent`,
//! `required_movablecore`, `required_movablecore_percent`, `mirrored_kernelcore`,
//! `movable_node_enabled`), updated word by word in command-line order as Linux's early
//! parameters update them. The zone arithmetic (`find_zone_movable_pfns_for_nodes`) lives in
//! the memory manager.
//!
//! Values: `kernelcore=SIZE`, `kernelcore=NN%`, `kernelcore=mirror`; `movablecore=SIZE`,
//! `movablecore=NN%`; `movable_node` (any value is ignored, as in Linux). SIZE is Linux's
//! `memparse` (`512M`, `2G`, `0x40000000`) and is kept in 4 KiB pages (rounded down);
//! NN is `simple_strtoull` with base 0 and must be followed directly by `%`.
//!
//! # Where this differs from Linux
//!
//! Linux accepts every value: a word with no digits reads as 0 (`movablecore=abc` silently
//! turns an earlier `movablecore=` off), text after the size is ignored, and a percentage above
//! 100 only triggers a `WARN_ON` splat. Here such a word is refused with a
//! [`MovableParamError`] (one log line, `… ; parameter ignored`) and changes nothing; earlier
//! and later words still apply. A bare `kernelcore` or `movablecore` without `=` is refused
//! too, as Linux refuses it (`Malformed early option`). `kernelcore=mirror` is parsed and
//! recorded; this kernel knows no mirrored memory (the bootloader passes no EFI memory
//! attributes), so the memory manager then does what Linux 6.1 does on a machine without
//! mirrored memory: all RAM from 4 GiB up becomes Movable, with the warning `This
//! configuration results in unmirrored kernel memory.` (later kernels ignore the parameter
//! there instead). A bare `kernelcore` makes Linux 6.1 itself crash at boot
//! (`parse_option_str` on a NULL value, tests/data/linux-6.1-qemu-kernelcore-bare.dmesg).

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use crate::cmdline::{MemparseError, memparse, params, strtoull};

/// log2 of the page size the parameters are counted in (Linux's `PAGE_SHIFT`).
pub const PAGE_SHIFT: u32 = 12;

/// One `kernelcore=`/`movablecore=` amount as Linux's `cmdline_parse_core` reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoreValue {
    /// A size, already in pages (`coremem >> PAGE_SHIFT`).
    Pages(u64),
    /// `NN%` of the total pages of memory, 0..=100.
    Percent(u64),
}

/// What one `kernelcore=` word asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelcoreValue {
    /// A size or a percentage.
    Core(CoreValue),
    /// `kernelcore=mirror`: kernel memory from mirrored ranges only (Linux's
    /// `mirrored_kernelcore`).
    Mirror,
}

/// Why a `kernelcore=`/`movablecore=` value was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoreValueError {
    /// The word has no `=value` (Linux: `Malformed early option`).
    MissingValue,
    /// The value is empty.
    Empty,
    /// The number could not be read.
    Number(MemparseError),
    /// A percentage above 100 (Linux only warns, with a stack trace).
    PercentOver100(u64),
    /// Text after the size or the `%` (Linux ignores it).
    Trailing,
}

impl fmt::Display for CoreValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingValue => f.write_str("missing value"),
            Self::Empty => f.write_str("empty value"),
            Self::Number(e) => write!(f, "{e}"),
            Self::PercentOver100(p) => write!(f, "{p}% is more than 100%"),
            Self::Trailing => f.write_str("unexpected text after the value"),
        }
    }
}

/// A `kernelcore=`, `movablecore=` word that was not applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MovableParamError {
    /// The word as written (e.g. `movablecore=12Q`).
    pub item: String,
    /// Why it was refused.
    pub reason: CoreValueError,
}

impl fmt::Display for MovableParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}; parameter ignored", self.item, self.reason)
    }
}

/// Linux's ZONE_MOVABLE parameters after the whole command line (all zero / false when none
/// was given). Sizes are in pages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MovableParams {
    /// `kernelcore=SIZE` in pages (`required_kernelcore`).
    pub required_kernelcore: u64,
    /// `kernelcore=NN%` (`required_kernelcore_percent`), 0 when not given.
    pub required_kernelcore_percent: u64,
    /// `movablecore=SIZE` in pages (`required_movablecore`).
    pub required_movablecore: u64,
    /// `movablecore=NN%` (`required_movablecore_percent`), 0 when not given.
    pub required_movablecore_percent: u64,
    /// `kernelcore=mirror` was given (`mirrored_kernelcore`).
    pub mirrored_kernelcore: bool,
    /// `movable_node` was given (`movable_node_enabled`): hot-pluggable SRAT memory becomes
    /// Movable and kernelcore/movablecore are ignored.
    pub movable_node: bool,
}

impl MovableParams {
    /// True when no parameter asks for a Movable zone.
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// Applies one value as Linux's `cmdline_parse_core` stores it: a size sets the pages and
    /// clears the percentage; a percentage sets only the percentage (which wins later).
    fn store(pages: &mut u64, percent: &mut u64, v: CoreValue) {
        match v {
            CoreValue::Pages(p) => {
                *pages = p;
                *percent = 0;
            }
            CoreValue::Percent(p) => *percent = p,
        }
    }

    /// Applies a parsed `kernelcore=` value.
    pub fn apply_kernelcore(&mut self, v: KernelcoreValue) {
        match v {
            KernelcoreValue::Mirror => self.mirrored_kernelcore = true,
            KernelcoreValue::Core(c) => Self::store(
                &mut self.required_kernelcore,
                &mut self.required_kernelcore_percent,
                c,
            ),
        }
    }

    /// Applies a parsed `movablecore=` value.
    pub fn apply_movablecore(&mut self, v: CoreValue) {
        Self::store(
            &mut self.required_movablecore,
            &mut self.required_movablecore_percent,
            v,
        );
    }
}

/// Linux's `cmdline_parse_core` on one value, strictly: `NN%` (0..=100) or a `memparse` size
/// (kept in pages), nothing after it.
pub fn parse_core(value: &str) -> Result<CoreValue, CoreValueError> {
    if value.is_empty() {
        return Err(CoreValueError::Empty);
    }
    // Linux tries simple_strtoull first and looks for '%' right after the digits.
    if let Ok((n, rest)) = strtoull(value)
        && let Some(after) = rest.strip_prefix('%')
    {
        if !after.is_empty() {
            return Err(CoreValueError::Trailing);
        }
        if n > 100 {
            return Err(CoreValueError::PercentOver100(n));
        }
        return Ok(CoreValue::Percent(n));
    }
    let (bytes, rest) = memparse(value).map_err(CoreValueError::Number)?;
    if !rest.is_empty() {
        return Err(CoreValueError::Trailing);
    }
    Ok(CoreValue::Pages(bytes >> PAGE_SHIFT))
}

/// Linux's `cmdline_parse_kernelcore`: `mirror` (as an item of a comma list, Linux's
/// `parse_option_str`) or a [`parse_core`] value.
pub fn parse_kernelcore(value: &str) -> Result<KernelcoreValue, CoreValueError> {
    if value.split(',').any(|item| item == "mirror") {
        return Ok(KernelcoreValue::Mirror);
    }
    parse_core(value).map(KernelcoreValue::Core)
}

/// What [`parse_movable_params`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MovableReport {
    /// The parameters after every accepted word.
    pub params: MovableParams,
    /// The refused words, in command-line order.
    pub errors: Vec<MovableParamError>,
}

impl MovableReport {
    /// Logs each refused word (warn), one line each.
    pub fn log(&self) {
        for e in &self.errors {
            log::warn!("{e}");
        }
    }
}

/// Reads every `kernelcore=`, `movablecore=` and `movable_node` word of `cmdline` in order
/// (names compared as Linux's `parameq`, `-` equal to `_`; words after a bare `--` belong to
/// init and are not read).
pub fn parse_movable_params(cmdline: &str) -> MovableReport {
    let mut report = MovableReport::default();
    for p in params(cmdline) {
        let is_kernelcore = p.is("kernelcore");
        if p.is("movable_node") {
            report.params.movable_node = true;
            continue;
        }
        if !is_kernelcore && !p.is("movablecore") {
            continue;
        }
        let result = match p.value {
            None => Err(CoreValueError::MissingValue),
            Some(v) if is_kernelcore => parse_kernelcore(v).map(|k| {
                report.params.apply_kernelcore(k);
            }),
            Some(v) => parse_core(v).map(|c| report.params.apply_movablecore(c)),
        };
        if let Err(reason) = result {
            let item = match p.value {
                Some(v) => alloc::format!("{}={v}", p.name),
                None => p.name.to_string(),
            };
            report.errors.push(MovableParamError { item, reason });
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: u64 = 1 << (30 - PAGE_SHIFT);
    const M: u64 = 1 << (20 - PAGE_SHIFT);

    #[test]
    fn movable_sizes_and_percentages() {
        assert_eq!(parse_core("256M"), Ok(CoreValue::Pages(256 * M)));
        assert_eq!(parse_core("2G"), Ok(CoreValue::Pages(2 * G)));
        assert_eq!(parse_core("0x40000000"), Ok(CoreValue::Pages(G)));
        assert_eq!(parse_core("4097"), Ok(CoreValue::Pages(1)));
        assert_eq!(parse_core("0"), Ok(CoreValue::Pages(0)));
        assert_eq!(parse_core("25%"), Ok(CoreValue::Percent(25)));
        assert_eq!(parse_core("100%"), Ok(CoreValue::Percent(100)));
        assert_eq!(parse_core("0%"), Ok(CoreValue::Percent(0)));
        // simple_strtoull base 0: 025 is octal, as in Linux.
        assert_eq!(parse_core("025%"), Ok(CoreValue::Percent(21)));
        assert_eq!(parse_core("0x19%"), Ok(CoreValue::Percent(25)));
    }

    #[test]
    fn movable_bad_values_are_errors() {
        assert_eq!(parse_core(""), Err(CoreValueError::Empty));
        assert_eq!(
            parse_core("abc"),
            Err(CoreValueError::Number(MemparseError::NoDigits))
        );
        assert_eq!(
            parse_core("%"),
            Err(CoreValueError::Number(MemparseError::NoDigits))
        );
        assert_eq!(parse_core("150%"), Err(CoreValueError::PercentOver100(150)));
        assert_eq!(parse_core("25%x"), Err(CoreValueError::Trailing));
        assert_eq!(parse_core("256Mfoo"), Err(CoreValueError::Trailing));
        assert_eq!(parse_core("1G,mirror"), Err(CoreValueError::Trailing));
        assert_eq!(
            parse_core("20E"),
            Err(CoreValueError::Number(MemparseError::Overflow))
        );
        assert_eq!(
            parse_core("99999999999999999999%"),
            Err(CoreValueError::Number(MemparseError::Overflow))
        );
        assert_eq!(
            parse_core("16E"),
            Err(CoreValueError::Number(MemparseError::Overflow))
        );
        assert_eq!(
            parse_core("15E"),
            Ok(CoreValue::Pages(15 << (60 - PAGE_SHIFT)))
        );
    }

    #[test]
    fn movable_kernelcore_mirror() {
        assert_eq!(parse_kernelcore("mirror"), Ok(KernelcoreValue::Mirror));
        assert_eq!(parse_kernelcore("1G,mirror"), Ok(KernelcoreValue::Mirror));
        assert_eq!(
            parse_kernelcore("1G"),
            Ok(KernelcoreValue::Core(CoreValue::Pages(G)))
        );
        assert_eq!(
            parse_kernelcore("mirrorx"),
            Err(CoreValueError::Number(MemparseError::NoDigits))
        );
    }

    #[test]
    fn movable_command_lines() {
        let r = parse_movable_params("console=ttyS0 movablecore=256M");
        assert!(r.errors.is_empty());
        assert_eq!(r.params.required_movablecore, 256 * M);
        assert_eq!(r.params.required_movablecore_percent, 0);
        assert!(!r.params.is_default());

        let r = parse_movable_params("kernelcore=1500M movablecore=1G movable-node=1");
        assert_eq!(
            r.params,
            MovableParams {
                required_kernelcore: 1500 * M,
                required_movablecore: G,
                movable_node: true,
                ..MovableParams::default()
            }
        );

        // A percentage keeps the earlier size (Linux does not clear it) and wins later; a
        // size clears an earlier percentage.
        let r = parse_movable_params("movablecore=256M movablecore=10%");
        assert_eq!(r.params.required_movablecore, 256 * M);
        assert_eq!(r.params.required_movablecore_percent, 10);
        let r = parse_movable_params("kernelcore=10% kernelcore=1G");
        assert_eq!(r.params.required_kernelcore, G);
        assert_eq!(r.params.required_kernelcore_percent, 0);

        let r = parse_movable_params("kernelcore=mirror kernelcore=1G");
        assert!(r.params.mirrored_kernelcore);
        assert_eq!(r.params.required_kernelcore, G);

        assert!(
            parse_movable_params("root=/dev/vda quiet")
                .params
                .is_default()
        );
        // After `--` the words are init's.
        assert!(
            parse_movable_params("quiet -- movablecore=1G")
                .params
                .is_default()
        );
        // Quoted, as Linux's tokenizer unquotes.
        let r = parse_movable_params("\"movablecore=1G\"");
        assert_eq!(r.params.required_movablecore, G);
    }

    /// The command lines of the saved Linux boots (tests/data) give the parameters the
    /// memory manager's tests feed in.
    #[test]
    fn movable_command_lines_of_the_linux_boots() {
        let cases: [(&str, MovableParams); 8] = [
            (
                include_str!("../../../tests/data/linux-6.1-qemu-movablecore.dmesg"),
                MovableParams {
                    required_movablecore: 256 * M,
                    ..Default::default()
                },
            ),
            (
                include_str!("../../../tests/data/linux-6.1-qemu-kernelcore.dmesg"),
                MovableParams {
                    required_kernelcore: G,
                    ..Default::default()
                },
            ),
            (
                include_str!("../../../tests/data/linux-6.1-qemu-movablecore-percent.dmesg"),
                MovableParams {
                    required_movablecore_percent: 25,
                    ..Default::default()
                },
            ),
            (
                include_str!("../../../tests/data/linux-6.1-qemu-movablecore-numa.dmesg"),
                MovableParams {
                    required_movablecore: 512 * M,
                    ..Default::default()
                },
            ),
            (
                include_str!("../../../tests/data/linux-6.1-qemu-kernelcore-movablecore.dmesg"),
                MovableParams {
                    required_kernelcore: 1500 * M,
                    required_movablecore: G,
                    ..Default::default()
                },
            ),
            (
                include_str!("../../../tests/data/linux-6.1-qemu-kernelcore-mirror-4g.dmesg"),
                MovableParams {
                    mirrored_kernelcore: true,
                    ..Default::default()
                },
            ),
            (
                include_str!("../../../tests/data/linux-6.1-qemu-movable-node.dmesg"),
                MovableParams {
                    movable_node: true,
                    ..Default::default()
                },
            ),
            (
                include_str!("../../../tests/data/linux-6.1-qemu-movablecore-abc.dmesg"),
                MovableParams::default(),
            ),
        ];
        for (dmesg, want) in cases {
            let line = dmesg
                .lines()
                .find_map(|l| l.split_once("] Command line: ").map(|(_, c)| c))
                .unwrap();
            let r = parse_movable_params(line);
            assert_eq!(r.params, want, "{line}");
        }
        // The word Linux reads as 0 is refused here; a bare kernelcore crashes Linux 6.1.
        let abc = parse_movable_params("console=ttyS0 loglevel=8 movablecore=abc");
        assert_eq!(abc.errors.len(), 1);
        let bare = include_str!("../../../tests/data/linux-6.1-qemu-kernelcore-bare.dmesg");
        assert!(bare.contains("RIP: 0010:parse_option_str"));
        assert_eq!(parse_movable_params("kernelcore").errors.len(), 1);
    }

    #[test]
    fn movable_refused_words_change_nothing() {
        let r = parse_movable_params(
            "movablecore=256M movablecore=abc kernelcore movablecore= kernelcore=150% movablecore=1Gx",
        );
        assert_eq!(r.params.required_movablecore, 256 * M);
        assert_eq!(r.params.required_kernelcore, 0);
        assert_eq!(r.params.required_kernelcore_percent, 0);
        let lines: Vec<String> = r.errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            lines,
            [
                "movablecore=abc: expected a number; parameter ignored",
                "kernelcore: missing value; parameter ignored",
                "movablecore=: empty value; parameter ignored",
                "kernelcore=150%: 150% is more than 100%; parameter ignored",
                "movablecore=1Gx: unexpected text after the value; parameter ignored",
            ]
        );
    }
}
