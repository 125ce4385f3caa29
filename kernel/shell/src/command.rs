//! The command set and the parser: one line in, one [`Command`] or one
//! [`ParseError`] out.
//!
//! Command names are case-sensitive; zone names and devmem widths are not. A blank line,
//! or one whose first non-blank character is `#` (a comment in a script), is
//! [`Command::Empty`]. Value limits are checked here, so that a command that parses
//! is one the kernel can try without further syntax checks (the kernel still checks
//! what only it knows: that a pfn exists, that a pmem device exists, ...).

use core::fmt;

use crate::args::Args;
use crate::error::{ErrorKind, ParseError};
use crate::help::HELP;
use crate::num::{self, NumError};

/// Highest buddy order: the memory manager's (blocks of 2^10 pages, 4 MiB).
pub const MAX_ORDER: u8 = mm::MAX_ORDER as u8;
/// Highest pfn accepted: physical addresses have at most 52 bits.
pub const MAX_PFN: u64 = mm::MAX_PFN_LIMIT - 1;
/// Highest physical address accepted (52 bits).
pub const MAX_PHYS_ADDR: u64 = (1 << mm::MAX_PHYSMEM_BITS) - 1;
/// Longest `pmem read`, in bytes.
pub const MAX_READ: u64 = 4096;
/// Most bytes one `pmem write` may carry.
pub const MAX_WRITE: usize = 256;
/// Highest pmem device number.
pub const MAX_PMEM_DEV: u64 = 255;
/// Largest `stress` operation count.
pub const MAX_STRESS: u64 = 10_000_000;

/// A zone that `alloc` may take pages from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    /// Below 16 MiB.
    Dma,
    /// Below 4 GiB.
    Dma32,
    /// Above 4 GiB.
    Normal,
}

/// The width of a `devmem` access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Width {
    /// 8 bits (`8` or `b`).
    W8,
    /// 16 bits (`16` or `h`).
    W16,
    /// 32 bits (`32` or `w`), the default.
    W32,
    /// 64 bits (`64`).
    W64,
}

impl Width {
    /// The width in bits.
    pub fn bits(self) -> u32 {
        match self {
            Self::W8 => 8,
            Self::W16 => 16,
            Self::W32 => 32,
            Self::W64 => 64,
        }
    }

    /// The width in bytes, also the alignment the address needs.
    pub fn bytes(self) -> u64 {
        u64::from(self.bits() / 8)
    }

    /// The largest value of this width.
    pub fn max(self) -> u64 {
        u64::MAX >> (64 - self.bits())
    }
}

/// The data of a `pmem write`: up to [`MAX_WRITE`] bytes, stored inline.
#[derive(Clone, PartialEq, Eq)]
pub struct WriteData {
    buf: [u8; MAX_WRITE],
    len: usize,
}

impl WriteData {
    /// The bytes to write.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }

    /// Builds the data from bytes; `None` if there are more than [`MAX_WRITE`].
    pub fn new(bytes: &[u8]) -> Option<Self> {
        let mut data = Self {
            buf: [0; MAX_WRITE],
            len: bytes.len(),
        };
        data.buf.get_mut(..bytes.len())?.copy_from_slice(bytes);
        Some(data)
    }
}

impl fmt::Debug for WriteData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WriteData({:02x?})", self.as_bytes())
    }
}

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(
    clippy::large_enum_variant,
    reason = "the pmem write data is kept inline (about 260 bytes) so that parsing never allocates"
)]
pub enum Command {
    /// A blank line or a comment: do nothing, print nothing.
    Empty,
    /// `help [COMMAND]`: print [`help_lines`](crate::help::help_lines)`(topic)`, and
    /// [`HELP_NOTES`](crate::help::HELP_NOTES) without a topic.
    Help {
        /// A valid command name, to show only its rows.
        topic: Option<&'static str>,
    },
    /// `dmesg`: the boot log.
    Dmesg,
    /// `e820`: the sanitized memory map in Linux's format.
    E820,
    /// `iomem`: the resource tree as in /proc/iomem.
    Iomem,
    /// `zoneinfo`: as /proc/zoneinfo.
    Zoneinfo,
    /// `buddyinfo`: as /proc/buddyinfo.
    Buddyinfo,
    /// `pagetypeinfo`: as /proc/pagetypeinfo.
    Pagetypeinfo,
    /// `meminfo [NODE]`: as /proc/meminfo, or as sysfs' nodeN/meminfo for one node.
    Meminfo {
        /// One node, or the whole machine.
        node: Option<u8>,
    },
    /// `memmap`: a picture of the physical address space.
    Memmap,
    /// `page PFN`: the struct page of a frame, `pfn <= MAX_PFN`.
    Page {
        /// The frame number.
        pfn: u64,
    },
    /// `alloc ORDER [ZONE] [node N | node=N] [thisnode | interleave]`: allocate a block, print
    /// its pfn.
    Alloc {
        /// 0..=[`MAX_ORDER`].
        order: u8,
        /// The zone to take from; `None` for the normal fallback order.
        zone: Option<Zone>,
        /// Where to allocate.
        policy: NodePolicy,
        /// `movable`: the shell's table owns the block and may move it (migration).
        movable: bool,
    },
    /// `alloc`: list the blocks `alloc` holds (their current pfns: migration moves them).
    AllocList,
    /// `numa`: the nodes, their CPUs, sizes and distances (as `numactl --hardware`).
    Numa,
    /// `cpus`: the CPUs the MADT lists, with APIC id, node and state.
    Cpus,
    /// `numastat [NODE]`: NUMA allocation counters: numastat's table for every online node,
    /// or sysfs' nodeN/numastat for one.
    Numastat {
        /// One node, or every node.
        node: Option<u8>,
    },
    /// `free PFN ORDER`: free a block; `pfn` is a multiple of `2^order`.
    Free {
        /// First frame of the block, at most [`MAX_PFN`].
        pfn: u64,
        /// 0..=[`MAX_ORDER`].
        order: u8,
    },
    /// `hotplug scan`: look for hot-added memory and online it.
    HotplugScan,
    /// `hotplug list`: list the memory blocks and the hotplug slots.
    HotplugList,
    /// `hotplug offline N`: offline memory block N.
    HotplugOffline {
        /// The block number (`memoryN`).
        block: u64,
    },
    /// `hotplug remove N`: remove the (offline) hot-added memory block N belongs to.
    HotplugRemove {
        /// The block number.
        block: u64,
    },
    /// `hotplug online N [movable|kernel]`: online memory block N.
    HotplugOnline {
        /// The block number.
        block: u64,
        /// `movable` (ZONE_MOVABLE), `kernel` (the kernel zone of its address), or neither
        /// (Linux's default online policy).
        zone: OnlineZone,
    },
    /// `devmem ADDR [WIDTH [VALUE]]`: read, or write if `value` is set. `addr` is a
    /// multiple of the width and `addr + width - 1 <= MAX_PHYS_ADDR`; the value fits.
    Devmem {
        /// Physical address.
        addr: u64,
        /// Access width (32 bits if not given).
        width: Width,
        /// The value to write.
        value: Option<u64>,
    },
    /// `pmem list`.
    PmemList,
    /// `pmem read DEV OFFSET LEN`: `1 <= len <= MAX_READ`, `offset + len` fits in u64.
    PmemRead {
        /// Device number, 0..=[`MAX_PMEM_DEV`].
        dev: u8,
        /// Byte offset in the device.
        offset: u64,
        /// Bytes to dump.
        len: u64,
    },
    /// `pmem write DEV OFFSET BYTES...`: 1..=[`MAX_WRITE`] bytes; `offset + len` fits.
    PmemWrite {
        /// Device number, 0..=[`MAX_PMEM_DEV`].
        dev: u8,
        /// Byte offset in the device.
        offset: u64,
        /// The bytes to write.
        data: WriteData,
    },
    /// `pmem pin DEV OFFSET`: take a reference on the device page holding byte OFFSET.
    PmemPin {
        /// Device number, 0..=[`MAX_PMEM_DEV`].
        dev: u8,
        /// Byte offset in the device (its page is pinned).
        offset: u64,
    },
    /// `pmem unpin DEV OFFSET`: drop a reference `pmem pin` took.
    PmemUnpin {
        /// Device number, 0..=[`MAX_PMEM_DEV`].
        dev: u8,
        /// Byte offset in the device.
        offset: u64,
    },
    /// `pmem disable DEV`: tear the device's pagemap down (memunmap_pages), at once or once
    /// its pinned pages are released.
    PmemDisable {
        /// Device number, 0..=[`MAX_PMEM_DEV`].
        dev: u8,
    },
    /// `pmem enable DEV`: map a disabled device again (memremap_pages).
    PmemEnable {
        /// Device number, 0..=[`MAX_PMEM_DEV`].
        dev: u8,
    },
    /// `stress N`: N random operations (0..=[`MAX_STRESS`]) on every online CPU at once, then
    /// a consistency check with the other CPUs stopped.
    Stress {
        /// Number of operations.
        n: u64,
    },
    /// `bench`: time the allocator.
    Bench,
    /// `poweroff`: QEMU exits with success.
    Poweroff,
    /// `reboot`.
    Reboot,
}

/// Parses one command line (see the module documentation).
///
/// ```
/// use shell::command::{parse, Command};
/// assert_eq!(parse("page 0x100"), Ok(Command::Page { pfn: 0x100 }));
/// let e = parse("alloc 11").unwrap_err();
/// assert_eq!(e.to_string(), "alloc: order 11 out of range (0-10)");
/// ```
pub fn parse(line: &str) -> Result<Command, ParseError<'_>> {
    let mut args = Args::new(line);
    let Some(word) = args.next() else {
        return Ok(Command::Empty);
    };
    if word.starts_with('#') {
        return Ok(Command::Empty);
    }
    let mut group = HELP.iter().filter(|s| s.command() == word).peekable();
    let Some(first) = group.peek().copied() else {
        return Err(ParseError::bare(ErrorKind::UnknownCommand(word)));
    };
    let spec = if first.subcommand().is_none() {
        first
    } else {
        let command = first.command();
        let Some(sub) = args.next() else {
            return Err(ParseError::in_command(
                command,
                ErrorKind::MissingSubcommand,
            ));
        };
        group
            .find(|s| s.subcommand() == Some(sub))
            .ok_or_else(|| ParseError::in_command(command, ErrorKind::UnknownSubcommand(sub)))?
    };
    let command = (spec.parse)(&mut args).map_err(|kind| ParseError::in_spec(spec, kind))?;
    match args.next() {
        Some(_) => Err(ParseError::in_spec(spec, ErrorKind::TooMany)),
        None => Ok(command),
    }
}

/// The next argument, which must be there.
fn required<'a>(args: &mut Args<'a>, what: &'static str) -> Result<&'a str, ErrorKind<'a>> {
    args.next().ok_or(ErrorKind::Missing(what))
}

/// Applies a number parser to `token`, naming the argument in the error.
fn number<'a>(
    token: &'a str,
    what: &'static str,
    parser: fn(&str) -> Result<u64, NumError>,
) -> Result<u64, ErrorKind<'a>> {
    parser(token).map_err(|error| ErrorKind::BadNumber { what, token, error })
}

/// Checks `min <= value <= max`.
fn in_range<'a>(
    value: u64,
    what: &'static str,
    (min, max): (u64, u64),
    hex: bool,
) -> Result<u64, ErrorKind<'a>> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(ErrorKind::OutOfRange {
            what,
            value,
            min,
            max,
            hex,
        })
    }
}

fn pfn<'a>(args: &mut Args<'a>) -> Result<u64, ErrorKind<'a>> {
    let value = number(required(args, "PFN")?, "PFN", num::parse_u64)?;
    in_range(value, "PFN", (0, MAX_PFN), true)
}

fn order<'a>(args: &mut Args<'a>) -> Result<u8, ErrorKind<'a>> {
    let value = number(required(args, "ORDER")?, "order", num::parse_u64)?;
    let value = in_range(value, "order", (0, MAX_ORDER.into()), false)?;
    Ok(u8::try_from(value).unwrap_or(MAX_ORDER))
}

pub(crate) fn help<'a>(args: &mut Args<'a>) -> Result<Command, ErrorKind<'a>> {
    let Some(token) = args.next() else {
        return Ok(Command::Help { topic: None });
    };
    let spec = HELP.iter().find(|s| s.command() == token);
    match spec {
        Some(spec) => Ok(Command::Help {
            topic: Some(spec.command()),
        }),
        None => Err(ErrorKind::BadChoice {
            what: "command",
            token,
            choices: "type 'help' for the list",
        }),
    }
}

pub(crate) fn page<'a>(args: &mut Args<'a>) -> Result<Command, ErrorKind<'a>> {
    Ok(Command::Page { pfn: pfn(args)? })
}

pub(crate) fn alloc<'a>(args: &mut Args<'a>) -> Result<Command, ErrorKind<'a>> {
    if args.clone().next().is_none() {
        return Ok(Command::AllocList);
    }
    let order = order(args)?;
    let (mut zone, mut node, mut thisnode, mut interleave) = (None, None, false, false);
    let mut movable = false;
    let mut first = true;
    while let Some(t) = args.next() {
        let is = |w: &str| t.eq_ignore_ascii_case(w);
        if is("movable") && !movable {
            movable = true;
            continue;
        }
        let z = [
            ("dma", Zone::Dma),
            ("dma32", Zone::Dma32),
            ("normal", Zone::Normal),
        ]
        .into_iter()
        .find(|(w, _)| is(w));
        if let (Some((_, z)), true) = (z, first) {
            zone = Some(z);
        } else if is("node") && node.is_none() && !interleave {
            node = Some(node_id(args)?);
        } else if let Some(value) = t
            .get(..5)
            .filter(|p| p.eq_ignore_ascii_case("node="))
            .and_then(|_| t.get(5..))
            .filter(|v| !v.is_empty() && node.is_none() && !interleave)
        {
            node = Some(node_token(value)?);
        } else if is("thisnode") && !thisnode && !interleave {
            thisnode = true;
        } else if is("interleave") && node.is_none() && !thisnode && !interleave {
            interleave = true;
        } else if z.is_some()
            || is("movable")
            || is("node")
            || t.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("node="))
            || is("thisnode")
            || is("interleave")
        {
            return Err(ErrorKind::BadChoice {
                what: "combination with",
                token: t,
                choices: "the zone comes first; node, thisnode, interleave, movable once \
                          each; interleave with neither node nor thisnode",
            });
        } else {
            return Err(ErrorKind::BadChoice {
                what: if first { "zone" } else { "alloc option" },
                token: t,
                choices: if first {
                    "dma, dma32, normal, node N, thisnode, interleave or movable"
                } else {
                    "node N, thisnode, interleave or movable"
                },
            });
        }
        first = false;
    }
    let policy = if interleave {
        NodePolicy::Interleave
    } else {
        NodePolicy::Node { node, thisnode }
    };
    Ok(Command::Alloc {
        order,
        zone,
        policy,
        movable,
    })
}

/// Where `alloc` takes its block from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodePolicy {
    /// From `node` (the local node if `None`), falling back by distance unless `thisnode`.
    Node {
        /// The preferred node.
        node: Option<u8>,
        /// `__GFP_THISNODE`: never another node.
        thisnode: bool,
    },
    /// Round-robin over the nodes with memory.
    Interleave,
}

/// Highest node id (the memory manager's MAX_NUMNODES - 1).
pub const MAX_NODE: u8 = (mm::numa::MAX_NUMNODES - 1) as u8;

fn node_id<'a>(args: &mut Args<'a>) -> Result<u8, ErrorKind<'a>> {
    node_token(required(args, "NODE")?)
}

fn node_token(token: &str) -> Result<u8, ErrorKind<'_>> {
    let value = number(token, "node", num::parse_u64)?;
    let value = in_range(value, "node", (0, MAX_NODE.into()), false)?;
    Ok(u8::try_from(value).unwrap_or(MAX_NODE))
}

pub(crate) fn numastat<'a>(args: &mut Args<'a>) -> Result<Command, ErrorKind<'a>> {
    let node = args.next().map(node_token).transpose()?;
    Ok(Command::Numastat { node })
}

pub(crate) fn meminfo<'a>(args: &mut Args<'a>) -> Result<Command, ErrorKind<'a>> {
    let node = args.next().map(node_token).transpose()?;
    Ok(Command::Meminfo { node })
}

/// `hotplug offline N` / `hotplug online N`: a memory block number.
pub(crate) fn memory_block<'a>(args: &mut Args<'a>) -> Result<u64, ErrorKind<'a>> {
    let value = number(required(args, "N")?, "block", num::parse_u64)?;
    in_range(value, "block", (0, MAX_BLOCK), false)
}

/// The zone `hotplug online` asks for (Linux's online / online_kernel / online_movable).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnlineZone {
    /// The default policy.
    Default,
    /// `kernel`.
    Kernel,
    /// `movable`.
    Movable,
}

/// `hotplug online N [movable|kernel]`.
pub(crate) fn hotplug_online<'a>(args: &mut Args<'a>) -> Result<Command, ErrorKind<'a>> {
    let block = memory_block(args)?;
    let zone = match args.next() {
        None => OnlineZone::Default,
        Some(t) if t.eq_ignore_ascii_case("movable") => OnlineZone::Movable,
        Some(t) if t.eq_ignore_ascii_case("kernel") => OnlineZone::Kernel,
        Some(token) => {
            return Err(ErrorKind::BadChoice {
                what: "zone",
                token,
                choices: "movable or kernel",
            });
        }
    };
    Ok(Command::HotplugOnline { block, zone })
}

/// Highest memory block number (128 MiB blocks of the 52-bit physical address space).
pub const MAX_BLOCK: u64 = (1 << (52 - 27)) - 1;

pub(crate) fn free<'a>(args: &mut Args<'a>) -> Result<Command, ErrorKind<'a>> {
    let pfn = pfn(args)?;
    let order = order(args)?;
    let align = 1u64 << order;
    if pfn % align != 0 {
        return Err(ErrorKind::Misaligned {
            what: "PFN",
            value: pfn,
            align,
        });
    }
    Ok(Command::Free { pfn, order })
}

pub(crate) fn devmem<'a>(args: &mut Args<'a>) -> Result<Command, ErrorKind<'a>> {
    let addr = number(required(args, "ADDR")?, "ADDR", num::parse_size)?;
    let width = match args.next() {
        None => Width::W32,
        Some(t) if t == "8" || t.eq_ignore_ascii_case("b") => Width::W8,
        Some(t) if t == "16" || t.eq_ignore_ascii_case("h") => Width::W16,
        Some(t) if t == "32" || t.eq_ignore_ascii_case("w") => Width::W32,
        Some("64") => Width::W64,
        Some(token) => {
            return Err(ErrorKind::BadChoice {
                what: "WIDTH",
                token,
                choices: "8, 16, 32 or 64 bits, or b, h, w",
            });
        }
    };
    let addr = in_range(addr, "ADDR", (0, MAX_PHYS_ADDR + 1 - width.bytes()), true)?;
    if addr % width.bytes() != 0 {
        return Err(ErrorKind::Misaligned {
            what: "ADDR",
            value: addr,
            align: width.bytes(),
        });
    }
    let value = match args.next() {
        None => None,
        Some(token) => {
            let value = number(token, "VALUE", num::parse_u64)?;
            if value > width.max() {
                return Err(ErrorKind::TooWide {
                    value,
                    bits: width.bits(),
                });
            }
            Some(value)
        }
    };
    Ok(Command::Devmem { addr, width, value })
}

/// `DEV` then `OFFSET`, shared by `pmem read`, `write`, `pin` and `unpin`.
fn dev_offset<'a>(args: &mut Args<'a>) -> Result<(u8, u64), ErrorKind<'a>> {
    let dev = pmem_dev(args)?;
    let offset = number(required(args, "OFFSET")?, "OFFSET", num::parse_size)?;
    Ok((dev, offset))
}

pub(crate) fn pmem_pin<'a>(args: &mut Args<'a>) -> Result<Command, ErrorKind<'a>> {
    let (dev, offset) = dev_offset(args)?;
    Ok(Command::PmemPin { dev, offset })
}

pub(crate) fn pmem_unpin<'a>(args: &mut Args<'a>) -> Result<Command, ErrorKind<'a>> {
    let (dev, offset) = dev_offset(args)?;
    Ok(Command::PmemUnpin { dev, offset })
}

pub(crate) fn pmem_disable<'a>(args: &mut Args<'a>) -> Result<Command, ErrorKind<'a>> {
    Ok(Command::PmemDisable {
        dev: pmem_dev(args)?,
    })
}

pub(crate) fn pmem_enable<'a>(args: &mut Args<'a>) -> Result<Command, ErrorKind<'a>> {
    Ok(Command::PmemEnable {
        dev: pmem_dev(args)?,
    })
}

/// `DEV`: a pmem number, `0` or `pmem0`.
fn pmem_dev<'a>(args: &mut Args<'a>) -> Result<u8, ErrorKind<'a>> {
    let token = required(args, "DEV")?;
    let digits = token.strip_prefix("pmem").unwrap_or(token);
    let dev = match num::parse_u64(digits) {
        Ok(dev) => in_range(dev, "device", (0, MAX_PMEM_DEV), false)?,
        Err(error) => {
            return Err(ErrorKind::BadNumber {
                what: "DEV",
                token,
                error,
            });
        }
    };
    Ok(u8::try_from(dev).unwrap_or(u8::MAX))
}

pub(crate) fn pmem_read<'a>(args: &mut Args<'a>) -> Result<Command, ErrorKind<'a>> {
    let (dev, offset) = dev_offset(args)?;
    let len = number(required(args, "LEN")?, "LEN", num::parse_size)?;
    let len = in_range(len, "LEN", (1, MAX_READ), false)?;
    offset.checked_add(len).ok_or(ErrorKind::EndOverflow)?;
    Ok(Command::PmemRead { dev, offset, len })
}

pub(crate) fn pmem_write<'a>(args: &mut Args<'a>) -> Result<Command, ErrorKind<'a>> {
    let (dev, offset) = dev_offset(args)?;
    let rest = args.rest();
    let data = if let Some(quoted) = rest.strip_prefix('"') {
        let text = quoted.strip_suffix('"').ok_or(ErrorKind::Unterminated)?;
        if text.is_empty() {
            return Err(ErrorKind::EmptyString);
        }
        WriteData::new(text.as_bytes()).ok_or(ErrorKind::TooMuchData { max: MAX_WRITE })?
    } else {
        hex_bytes(rest)?
    };
    let len = u64::try_from(data.as_bytes().len()).unwrap_or(u64::MAX);
    offset.checked_add(len).ok_or(ErrorKind::EndOverflow)?;
    Ok(Command::PmemWrite { dev, offset, data })
}

/// Bytes written as hex tokens: `0f`, `f` or `0xff`, separated by whitespace.
fn hex_bytes(text: &str) -> Result<WriteData, ErrorKind<'_>> {
    let mut data = WriteData {
        buf: [0; MAX_WRITE],
        len: 0,
    };
    let mut tokens = Args::new(text);
    while let Some(token) = tokens.next() {
        let digits = token
            .strip_prefix("0x")
            .or_else(|| token.strip_prefix("0X"))
            .unwrap_or(token);
        let valid =
            (1..=2).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_hexdigit());
        let byte = u8::from_str_radix(digits, 16)
            .ok()
            .filter(|_| valid)
            .ok_or(ErrorKind::BadByte(token))?;
        let slot = data
            .buf
            .get_mut(data.len)
            .ok_or(ErrorKind::TooMuchData { max: MAX_WRITE })?;
        *slot = byte;
        data.len += 1;
    }
    if data.len == 0 {
        return Err(ErrorKind::Missing("BYTES"));
    }
    Ok(data)
}

pub(crate) fn stress<'a>(args: &mut Args<'a>) -> Result<Command, ErrorKind<'a>> {
    let n = number(required(args, "N")?, "N", num::parse_u64)?;
    Ok(Command::Stress {
        n: in_range(n, "N", (0, MAX_STRESS), false)?,
    })
}
