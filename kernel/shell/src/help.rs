//! The command table: names, arguments and one-line descriptions.
//!
//! [`HELP`] is the single source for both the `help` output and the parser: the parser
//! finds a command by looking it up here, so the two cannot drift apart.

use core::fmt;

use crate::args::Args;
use crate::command::{self as cmd, Command};
use crate::error::ErrorKind;

/// Parses the arguments after a command's name.
pub(crate) type ParseFn = for<'a> fn(&mut Args<'a>) -> Result<Command, ErrorKind<'a>>;

/// One row of the command table.
#[derive(Debug)]
pub struct Spec {
    /// The command's words: `alloc`, or `pmem read` for a subcommand.
    pub name: &'static str,
    /// Its arguments, `UPPER` for values, `[...]` for optional ones.
    pub args: &'static str,
    /// What it does, short enough for one 80-column line.
    pub about: &'static str,
    pub(crate) parse: ParseFn,
}

/// Width of the usage column in [`Spec`]'s `Display`.
const USAGE_WIDTH: usize = 31;

impl Spec {
    /// `name args`, e.g. `alloc [ORDER [ZONE] [POLICY]]`.
    pub fn usage(&self) -> impl fmt::Display + '_ {
        Usage(self)
    }

    /// The first word of the name: the command a subcommand belongs to.
    pub fn command(&self) -> &'static str {
        self.name.split(' ').next().unwrap_or(self.name)
    }

    /// The second word of the name, for a subcommand (`read` of `pmem read`).
    pub fn subcommand(&self) -> Option<&'static str> {
        self.name.split(' ').nth(1)
    }
}

struct Usage<'s>(&'s Spec);

impl fmt::Display for Usage<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.name)?;
        if !self.0.args.is_empty() {
            write!(f, " {}", self.0.args)?;
        }
        Ok(())
    }
}

/// The help line: `name args  - description`, descriptions aligned.
impl fmt::Display for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self.name.len() + usize::from(!self.args.is_empty()) + self.args.len();
        let pad = USAGE_WIDTH.saturating_sub(width);
        write!(f, "{}{:pad$} - {}", self.usage(), "", self.about)
    }
}

/// Every command, in the order `help` lists them.
pub static HELP: &[Spec] = &[
    Spec {
        name: "help",
        args: "[COMMAND]",
        about: "list the commands, or the forms of one",
        parse: cmd::help,
    },
    Spec {
        name: "dmesg",
        args: "",
        about: "print the kernel log (boot messages)",
        parse: |_| Ok(Command::Dmesg),
    },
    Spec {
        name: "e820",
        args: "",
        about: "print the sanitized firmware memory map",
        parse: |_| Ok(Command::E820),
    },
    Spec {
        name: "iomem",
        args: "",
        about: "print the physical resource tree",
        parse: |_| Ok(Command::Iomem),
    },
    Spec {
        name: "zoneinfo",
        args: "",
        about: "print zone counters and watermarks",
        parse: |_| Ok(Command::Zoneinfo),
    },
    Spec {
        name: "buddyinfo",
        args: "",
        about: "print free blocks per zone and order",
        parse: |_| Ok(Command::Buddyinfo),
    },
    Spec {
        name: "pagetypeinfo",
        args: "",
        about: "free blocks and pageblocks per migratetype",
        parse: |_| Ok(Command::Pagetypeinfo),
    },
    Spec {
        name: "meminfo",
        args: "[NODE]",
        about: "print memory totals (of one node)",
        parse: cmd::meminfo,
    },
    Spec {
        name: "memmap",
        args: "",
        about: "draw the physical address space",
        parse: |_| Ok(Command::Memmap),
    },
    Spec {
        name: "page",
        args: "PFN",
        about: "show the struct page of frame PFN",
        parse: cmd::page,
    },
    Spec {
        name: "alloc",
        args: "[ORDER [ZONE] [POLICY]]",
        about: "allocate 2^ORDER pages (0-10); alone: list",
        parse: cmd::alloc,
    },
    Spec {
        name: "numa",
        args: "",
        about: "print the NUMA nodes, CPUs and distances",
        parse: |_| Ok(Command::Numa),
    },
    Spec {
        name: "cpus",
        args: "",
        about: "list the CPUs: APIC id, node, state",
        parse: |_| Ok(Command::Cpus),
    },
    Spec {
        name: "numastat",
        args: "[NODE]",
        about: "print NUMA allocation counters",
        parse: cmd::numastat,
    },
    Spec {
        name: "free",
        args: "PFN ORDER",
        about: "free a block from alloc",
        parse: cmd::free,
    },
    Spec {
        name: "hotplug scan",
        args: "",
        about: "find hot-added memory and online it",
        parse: |_| Ok(Command::HotplugScan),
    },
    Spec {
        name: "hotplug list",
        args: "",
        about: "list the memory blocks and hotplug slots",
        parse: |_| Ok(Command::HotplugList),
    },
    Spec {
        name: "hotplug offline",
        args: "N",
        about: "offline memory block N (moving movable pages)",
        parse: |a| {
            Ok(Command::HotplugOffline {
                block: cmd::memory_block(a)?,
            })
        },
    },
    Spec {
        name: "hotplug remove",
        args: "N",
        about: "remove block N's offline DIMM, eject it",
        parse: |a| {
            Ok(Command::HotplugRemove {
                block: cmd::memory_block(a)?,
            })
        },
    },
    Spec {
        name: "hotplug online",
        args: "N [ZONE]",
        about: "online block N (ZONE: movable, kernel)",
        parse: cmd::hotplug_online,
    },
    Spec {
        name: "devmem",
        args: "ADDR [WIDTH [VALUE]]",
        about: "read, or write, WIDTH bits at ADDR",
        parse: cmd::devmem,
    },
    Spec {
        name: "pmem list",
        args: "",
        about: "list the persistent memory devices",
        parse: |_| Ok(Command::PmemList),
    },
    Spec {
        name: "pmem read",
        args: "DEV OFFSET LEN",
        about: "hex dump LEN (1-4096) bytes",
        parse: cmd::pmem_read,
    },
    Spec {
        name: "pmem write",
        args: "DEV OFFSET BYTES...",
        about: "write hex bytes or a \"string\"",
        parse: cmd::pmem_write,
    },
    Spec {
        name: "pmem pin",
        args: "DEV OFFSET",
        about: "pin the page at OFFSET (get_page)",
        parse: cmd::pmem_pin,
    },
    Spec {
        name: "pmem unpin",
        args: "DEV OFFSET",
        about: "release a page pmem pin pinned",
        parse: cmd::pmem_unpin,
    },
    Spec {
        name: "pmem disable",
        args: "DEV",
        about: "unmap the device (waits for pins)",
        parse: cmd::pmem_disable,
    },
    Spec {
        name: "pmem enable",
        args: "DEV",
        about: "map a disabled device again",
        parse: cmd::pmem_enable,
    },
    Spec {
        name: "stress",
        args: "N",
        about: "N random ops on every CPU, then check",
        parse: cmd::stress,
    },
    Spec {
        name: "bench",
        args: "",
        about: "time the allocator's fast paths",
        parse: |_| Ok(Command::Bench),
    },
    Spec {
        name: "poweroff",
        args: "",
        about: "power off (QEMU exits with success)",
        parse: |_| Ok(Command::Poweroff),
    },
    Spec {
        name: "reboot",
        args: "",
        about: "reset the machine",
        parse: |_| Ok(Command::Reboot),
    },
];

/// Lines the kernel prints after the [`HELP`] table (for `help` without a topic).
pub static HELP_NOTES: &[&str] = &[
    "Numbers are decimal or 0x hex; ADDR, OFFSET, LEN also take K, M, G, T (x1024).",
    "PFN < 2^40. WIDTH is 8, 16, 32 (default) or 64 bits, or b, h, w; ADDR aligned.",
    "DEV is a pmem number (0 or pmem0). BYTES: hex bytes (de ad 0f) or \"any text\".",
    "N is 0-10000000. Keys: Backspace, Ctrl-C drops the line, Up/Down for history.",
    "ZONE: dma, dma32, normal. POLICY: node N (or node=N) [thisnode], or interleave.",
    "alloc ... movable: the block may be migrated (hotplug offline moves it).",
];

/// The rows `help` prints: all of them, or those of one command (`help pmem`).
pub fn help_lines(topic: Option<&str>) -> impl Iterator<Item = &'static Spec> {
    HELP.iter()
        .filter(move |spec| topic.is_none_or(|t| spec.command() == t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::{format, vec::Vec};

    #[test]
    fn lines_fit_in_80_columns_and_align() {
        let lines: Vec<_> = HELP.iter().map(|s| format!("{s}")).collect();
        for line in lines
            .iter()
            .map(|l| l.as_str())
            .chain(HELP_NOTES.iter().copied())
        {
            assert!(line.len() < 80, "{line:?} is {} long", line.len());
            assert!(line.bytes().all(|b| (0x20..0x7f).contains(&b)));
        }
        for line in &lines {
            assert_eq!(line.find(" - "), Some(USAGE_WIDTH), "{line:?}");
        }
        assert_eq!(
            lines.iter().find(|l| l.starts_with("alloc ")).unwrap(),
            "alloc [ORDER [ZONE] [POLICY]]   - allocate 2^ORDER pages (0-10); alone: list"
        );
    }

    #[test]
    fn names_are_unique_and_single_or_all_subcommands() {
        for (i, a) in HELP.iter().enumerate() {
            assert!(HELP[i + 1..].iter().all(|b| b.name != a.name), "{}", a.name);
            // A command either has no subcommands or only subcommand rows.
            let group = HELP.iter().filter(|b| b.command() == a.command());
            assert!(group.clone().count() == 1 || group.clone().all(|b| b.subcommand().is_some()));
        }
    }

    #[test]
    fn help_topics() {
        let pmem: Vec<_> = help_lines(Some("pmem")).map(|s| s.name).collect();
        assert_eq!(
            pmem,
            [
                "pmem list",
                "pmem read",
                "pmem write",
                "pmem pin",
                "pmem unpin",
                "pmem disable",
                "pmem enable"
            ]
        );
        assert_eq!(help_lines(None).count(), HELP.len());
        assert_eq!(help_lines(Some("nope")).count(), 0);
        assert_eq!(format!("{}", HELP[0].usage()), "help [COMMAND]");
        assert_eq!(format!("{}", HELP[1].usage()), "dmesg");
    }
}
