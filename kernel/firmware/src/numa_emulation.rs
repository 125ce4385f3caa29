//! NUMA emulation, `numa=fake=N` (Linux's `arch/x86/mm/numa_emulation.c`,
//! `split_nodes_interleave`): the RAM of the physical nodes is cut into N fake nodes of equal
//! size, handed out round-robin over the physical nodes, each a multiple of 32 MiB
//! (`FAKE_NODE_MIN_SIZE`) with the remainder spread as extra 32 MiB over the first nodes.
//! Holes do not count towards a node's size; a node that would leave less than 32 MiB of
//! DMA32 memory for the next one takes the rest of DMA32, and one that would leave less than
//! a node's size takes the rest of its physical node. Each fake node prints
//! `Faking node N at [mem 0x...-0x...] (SIZEMB)`.
//!
//! [`crate::numa`] then cleans the fake blocks up like real ones, maps APIC ids and
//! distances from the physical nodes to the fake ones, and registers the fake nodes.
//! Only the node-count form is implemented; `numa=fake=SIZE[MG]` and the uniform `U` form
//! are refused with a log line and leave the layout as it was.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::numa::{Level, MAX_NUMNODES, Memblk, NR_NODE_MEMBLKS};
use crate::range::{PAGE_SIZE, PhysRange};

/// Smallest fake node, and the unit of their sizes.
pub const FAKE_NODE_MIN_SIZE: u64 = 32 << 20;
/// End of ZONE_DMA32.
const DMA32_END: u64 = 1 << 32;

/// What `numa=fake=` asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FakeSpec {
    /// `numa=fake=N`.
    Nodes(u64),
    /// A form this kernel does not implement (size or uniform).
    Unsupported,
}

/// Reads the value of `numa=fake=` as Linux does: a `U` anywhere is the uniform form, an `M`
/// or `G` the size form, otherwise `simple_strtoul` (decimal, `0x` hex, leading `0` octal,
/// digits up to the first non-digit; nothing parsable is 0).
pub fn parse_fake(value: &str) -> FakeSpec {
    if value.contains(['U', 'M', 'G']) {
        return FakeSpec::Unsupported;
    }
    let (radix, digits) = if let Some(h) = value
        .strip_prefix("0x")
        .or_else(|| value.strip_prefix("0X"))
    {
        (16, h)
    } else if value.len() > 1 && value.starts_with('0') {
        (8, &value[1..])
    } else {
        (10, value)
    };
    let mut n: u64 = 0;
    for c in digits.chars() {
        let Some(d) = c.to_digit(radix) else { break };
        n = n
            .saturating_mul(u64::from(radix))
            .saturating_add(u64::from(d));
    }
    FakeSpec::Nodes(n)
}

/// Bytes of `[start, end)` that are not RAM (`mem_hole_size`, page-granular).
fn mem_hole_size(memory: &[PhysRange], start: u64, end: u64) -> u64 {
    let (s, e) = (start / PAGE_SIZE, end / PAGE_SIZE);
    if e <= s {
        return 0;
    }
    let present: u64 = memory
        .iter()
        .map(|r| {
            let rs = r.start.div_ceil(PAGE_SIZE).max(s);
            let re = (r.end / PAGE_SIZE).min(e);
            re.saturating_sub(rs)
        })
        .sum();
    (e - s - present) * PAGE_SIZE
}

/// The result of a successful split.
pub(crate) struct Emulated {
    /// The fake nodes' blocks, in the order they were made.
    pub blks: Vec<Memblk>,
    /// Physical node of each fake node.
    pub emu_nid_to_phys: Vec<Option<usize>>,
}

/// `split_nodes_interleave` over the physical blocks `pi` (after clean-up) of the parsed
/// physical nodes `physnodes`, from 0 to `max_addr`. `None` (with the reason logged) leaves
/// the physical layout in place.
pub(crate) fn split_nodes_interleave(
    pi: &[Memblk],
    physnodes: &[usize],
    memory: &[PhysRange],
    max_addr: u64,
    nr_nodes: u64,
    say: &mut impl FnMut(Level, String),
) -> Option<Emulated> {
    if nr_nodes == 0 {
        return None;
    }
    let mut nr_nodes = nr_nodes as usize;
    if nr_nodes as u64 > MAX_NUMNODES as u64 {
        say(
            Level::Info,
            format!("numa=fake={nr_nodes} too large, reducing to {MAX_NUMNODES}"),
        );
        nr_nodes = MAX_NUMNODES;
    }
    let mut pi: Vec<Memblk> = pi.to_vec();
    let total = max_addr - mem_hole_size(memory, 0, max_addr);
    let mut size = (total / PAGE_SIZE / nr_nodes as u64) * PAGE_SIZE;
    let big = ((size & (FAKE_NODE_MIN_SIZE - 1)) * nr_nodes as u64) / FAKE_NODE_MIN_SIZE;
    size &= !(FAKE_NODE_MIN_SIZE - 1);
    if size == 0 {
        say(
            Level::Error,
            String::from("Not enough memory for each node.  NUMA emulation disabled."),
        );
        return None;
    }
    let mut out = Emulated {
        blks: Vec::new(),
        emu_nid_to_phys: alloc::vec![None; MAX_NUMNODES],
    };
    let mut physmask: Vec<usize> = physnodes.to_vec();
    let mut nid: u64 = 0;
    while !physmask.is_empty() {
        let mut i = 0;
        while i < physmask.len() {
            let phys = physmask[i];
            let Some(b) = pi.iter().position(|b| b.nid == phys) else {
                physmask.remove(i);
                continue;
            };
            let (start, limit) = (pi[b].range.start, pi[b].range.end);
            let mut end = start + size;
            if nid < big {
                end += FAKE_NODE_MIN_SIZE;
            }
            // Linux's u64 arithmetic: a block that is not page-aligned can have a page-granular
            // hole larger than its byte length, and the difference then wraps (and the test
            // is false), as in Linux. Fuzzing found the unaligned case.
            while end
                .wrapping_sub(start)
                .wrapping_sub(mem_hole_size(memory, start, end))
                < size
            {
                end += FAKE_NODE_MIN_SIZE;
                if end > limit {
                    end = limit;
                    break;
                }
            }
            if end < DMA32_END
                && (DMA32_END - end).wrapping_sub(mem_hole_size(memory, end, DMA32_END))
                    < FAKE_NODE_MIN_SIZE
            {
                end = DMA32_END;
            }
            if limit
                .wrapping_sub(end)
                .wrapping_sub(mem_hole_size(memory, end, limit))
                < size
            {
                end = limit;
            }
            // emu_setup_memblk.
            if out.blks.len() >= NR_NODE_MEMBLKS {
                say(
                    Level::Error,
                    String::from("Too many emulated memblks, failing emulation"),
                );
                return None;
            }
            let fake = (nid % nr_nodes as u64) as usize;
            nid += 1;
            let eb = PhysRange::new(start, end.min(limit));
            out.blks.push(Memblk {
                nid: fake,
                range: eb,
            });
            if out.emu_nid_to_phys[fake].is_none() {
                out.emu_nid_to_phys[fake] = Some(phys);
            }
            pi[b].range.start = eb.end;
            if pi[b].range.start >= pi[b].range.end {
                pi.remove(b);
            }
            say(
                Level::Info,
                format!(
                    "Faking node {fake} at [mem {:#018x}-{:#018x}] ({}MB)",
                    eb.start,
                    eb.end - 1,
                    eb.size() >> 20
                ),
            );
            i += 1;
        }
    }
    Some(out)
}
