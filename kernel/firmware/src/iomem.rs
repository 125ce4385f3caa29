//! The `/proc/iomem` resource tree (Linux's `kernel/resource.c`): nodes `{start, end inclusive,
//! name, children}` under a root spanning all of physical memory, inserted with Linux's
//! `insert_resource` (a node nests inside an enclosing one and adopts the nodes it encloses) or
//! `request_resource` (top level only) semantics, a partial overlap being a [`Conflict`]. It is
//! built from the E820 table and the persistent ranges the way `e820__reserve_resources` builds
//! it, printed as `/proc/iomem` prints it, and decides the `/dev/mem` policy
//! ([`devmem_is_allowed`]).

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::e820::{E820Table, E820Type};
use crate::pmem::PmemRange;
use crate::range::{PAGE_SIZE, PhysRange, align_down};

/// What a resource is, for the `/dev/mem` policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    /// `System RAM` (E820 usable).
    SystemRam,
    /// `Reserved` (E820 reserved).
    Reserved,
    /// `ACPI Tables` (E820 ACPI data).
    Acpi,
    /// `ACPI Non-volatile Storage` (E820 NVS).
    AcpiNvs,
    /// `Unusable memory` (E820 unusable).
    Unusable,
    /// `Persistent Memory` (NFIT or E820 type 7).
    Pmem,
    /// `Persistent Memory (legacy)` (E820 type 12).
    PmemLegacy,
    /// `Soft Reserved` (specific-purpose memory, owned by a driver).
    SoftReserved,
    /// `Unknown E820 type`.
    Unknown,
    /// Part of the kernel image (`Kernel code`, `Kernel data`, ...).
    Kernel,
    /// Anything else the kernel registers (devices, ...).
    Other,
}

impl ResourceKind {
    /// The kind of an E820 entry's resource.
    pub const fn from_e820(typ: E820Type) -> Self {
        match typ.raw() {
            1 => Self::SystemRam,
            2 => Self::Reserved,
            3 => Self::Acpi,
            4 => Self::AcpiNvs,
            5 => Self::Unusable,
            7 => Self::Pmem,
            12 => Self::PmemLegacy,
            0xefff_ffff => Self::SoftReserved,
            _ => Self::Unknown,
        }
    }
}

/// One node of the resource tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resource {
    /// First address.
    pub start: u64,
    /// Last address (inclusive), as in Linux's `struct resource`.
    pub end: u64,
    /// Name shown in `/proc/iomem`.
    pub name: String,
    /// Kind, for policy decisions.
    pub kind: ResourceKind,
    /// Nested resources, sorted and non-overlapping.
    pub children: Vec<Resource>,
}

impl Resource {
    /// A childless resource covering `range`. An empty range gives a resource with
    /// `end < start`, which [`IomemTree::insert`] and [`IomemTree::request`] refuse.
    pub fn new(range: PhysRange, name: &str, kind: ResourceKind) -> Self {
        let (start, end) = if range.is_empty() {
            let start = range.start.max(1);
            (start, start - 1)
        } else {
            (range.start, range.last())
        };
        Self {
            start,
            end,
            name: String::from(name),
            kind,
            children: Vec::new(),
        }
    }

    /// The resource's range as a half-open range (clipped at `u64::MAX`).
    pub fn range(&self) -> PhysRange {
        PhysRange::new(self.start, self.end.saturating_add(1))
    }

    fn overlaps(&self, start: u64, end: u64) -> bool {
        self.start <= end && start <= self.end
    }
}

/// A resource that could not be inserted because it partially overlaps another one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// The resource that was refused.
    pub new: (u64, u64, String),
    /// The resource in the way (`start`, `end` inclusive, `name`).
    pub existing: (u64, u64, String),
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (ns, ne, nn) = &self.new;
        let (es, ee, en) = &self.existing;
        write!(
            f,
            "iomem: cannot insert {ns:08x}-{ne:08x} \"{nn}\": it conflicts with \
             {es:08x}-{ee:08x} \"{en}\""
        )
    }
}

fn conflict(new: &Resource, existing: &Resource) -> Conflict {
    Conflict {
        new: (new.start, new.end, new.name.clone()),
        existing: (existing.start, existing.end, existing.name.clone()),
    }
}

/// The resource tree of physical memory (Linux's `iomem_resource`, root `[0, u64::MAX]`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IomemTree {
    /// Top-level resources, sorted and non-overlapping.
    pub children: Vec<Resource>,
}

impl IomemTree {
    /// An empty tree.
    pub const fn new() -> Self {
        Self {
            children: Vec::new(),
        }
    }

    /// Linux's `request_resource(&iomem_resource, res)`: inserts at the top level if nothing
    /// there overlaps it; otherwise returns the first overlapping resource as a conflict.
    pub fn request(&mut self, res: Resource) -> Result<(), Conflict> {
        if res.end < res.start {
            return Err(conflict(&res, &res));
        }
        if let Some(c) = self
            .children
            .iter()
            .find(|c| c.overlaps(res.start, res.end))
        {
            return Err(conflict(&res, c));
        }
        let pos = self.children.partition_point(|c| c.end < res.start);
        self.children.insert(pos, res);
        Ok(())
    }

    /// Linux's `insert_resource(&iomem_resource, res)`: descends into a resource that encloses
    /// `res` (not an equal one), and at that level makes `res` the parent of the resources it
    /// encloses (an equal one included). A partial overlap is a conflict, as is `end < start`.
    pub fn insert(&mut self, res: Resource) -> Result<(), Conflict> {
        if res.end < res.start {
            return Err(conflict(&res, &res));
        }
        insert_into(&mut self.children, res)
    }

    /// Linux's `remove_resource`: take the resource `[start, end]` (inclusive) named `name`
    /// out of the tree, wherever it sits; its children move up to its parent, in its place.
    /// Returns it (without its children), or None when there is no such resource.
    pub fn remove(&mut self, start: u64, end: u64, name: &str) -> Option<Resource> {
        remove_from(&mut self.children, start, end, name)
    }

    /// The tree Linux builds from the E820 table (`e820__reserve_resources`, one resource per
    /// entry, named by [`E820Type::iomem_name`]) plus the persistent ranges not already
    /// described by an identical E820 entry (`Persistent Memory`, or `(legacy)` for type 12
    /// only). Returns the conflicts met (none for a sanitized table).
    pub fn from_e820(e820: &E820Table, pmem: &[PmemRange]) -> (Self, Vec<Conflict>) {
        let mut tree = Self::new();
        let mut conflicts = Vec::new();
        for e in e820.entries() {
            let range = e.range();
            if range.is_empty() {
                continue;
            }
            let res = Resource::new(range, e.typ.iomem_name(), ResourceKind::from_e820(e.typ));
            if let Err(c) = tree.insert(res) {
                conflicts.push(c);
            }
        }
        for p in pmem {
            if p.range.is_empty() {
                continue;
            }
            let already = e820
                .entries()
                .iter()
                .any(|e| e.typ.is_persistent() && e.range() == p.range);
            if already {
                continue;
            }
            let kind = if p.is_legacy() {
                ResourceKind::PmemLegacy
            } else {
                ResourceKind::Pmem
            };
            if let Err(c) = tree.insert(Resource::new(p.range, p.iomem_name(), kind)) {
                conflicts.push(c);
            }
        }
        (tree, conflicts)
    }

    /// Visits every resource depth-first in address order with its depth (0 = top level).
    pub fn walk(&self, mut f: impl FnMut(&Resource, usize)) {
        fn go(list: &[Resource], depth: usize, f: &mut impl FnMut(&Resource, usize)) {
            for r in list {
                f(r, depth);
                go(&r.children, depth + 1, f);
            }
        }
        go(&self.children, 0, &mut f);
    }

    /// The first resource (in address order, at any depth) of a kind accepted by `kind` that
    /// shares a byte with `range`: Linux's `region_intersects`, e.g. for `memremap_pages`
    /// refusing a range over System RAM, or hotplug refusing a slot over persistent memory.
    pub fn region_intersects(
        &self,
        range: PhysRange,
        kind: impl Fn(ResourceKind) -> bool,
    ) -> Option<&Resource> {
        fn go<'a>(
            list: &'a [Resource],
            range: PhysRange,
            kind: &impl Fn(ResourceKind) -> bool,
        ) -> Option<&'a Resource> {
            list.iter()
                .filter(|r| r.overlaps(range.start, range.last()))
                .find_map(|r| {
                    if kind(r.kind) {
                        Some(r)
                    } else {
                        go(&r.children, range, kind)
                    }
                })
        }
        if range.is_empty() {
            return None;
        }
        go(&self.children, range, &kind)
    }

    /// The chain of resources holding `addr`, outermost first (empty in a hole).
    pub fn lookup(&self, addr: u64) -> Vec<&Resource> {
        let mut chain = Vec::new();
        let mut list = &self.children;
        while let Some(r) = list.iter().find(|r| r.start <= addr && addr <= r.end) {
            chain.push(r);
            list = &r.children;
        }
        chain
    }
}

fn insert_into(list: &mut Vec<Resource>, new: Resource) -> Result<(), Conflict> {
    let first = list.partition_point(|c| c.end < new.start);
    let last = list.partition_point(|c| c.start <= new.end);
    if first >= last {
        list.insert(first, new);
        return Ok(());
    }
    if last - first == 1
        && let Some(c) = list.get_mut(first)
        && c.start <= new.start
        && new.end <= c.end
        && !(c.start == new.start && c.end == new.end)
    {
        return insert_into(&mut c.children, new);
    }
    if let Some(c) = list
        .get(first..last)
        .unwrap_or(&[])
        .iter()
        .find(|c| c.start < new.start || c.end > new.end)
    {
        return Err(conflict(&new, c));
    }
    let mut new = new;
    new.children = list.drain(first..last).collect();
    list.insert(first, new);
    Ok(())
}

fn remove_from(list: &mut Vec<Resource>, start: u64, end: u64, name: &str) -> Option<Resource> {
    let i = list.partition_point(|c| c.end < start);
    let c = list
        .get_mut(i)
        .filter(|c| c.start <= start && end <= c.end)?;
    if c.start == start && c.end == end && c.name == name {
        let mut r = list.remove(i);
        let children = core::mem::take(&mut r.children);
        for (k, child) in children.into_iter().enumerate() {
            list.insert(i + k, child);
        }
        return Some(r);
    }
    remove_from(&mut c.children, start, end, name)
}

/// Linux's `MAX_IORES_LEVEL`: `/proc/iomem` indents at most this many levels.
const MAX_IORES_LEVEL: usize = 5;

impl fmt::Display for IomemTree {
    /// `/proc/iomem`: `%08llx-%08llx : name` per resource, two spaces of indent per level.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut result = Ok(());
        self.walk(|r, depth| {
            if result.is_ok() {
                let indent = depth.min(MAX_IORES_LEVEL) * 2;
                result = writeln!(
                    f,
                    "{:indent$}{:08x}-{:08x} : {}",
                    "", r.start, r.end, r.name
                );
            }
        });
        result
    }
}

/// End of the low memory that `/dev/mem` may always read (the BIOS area, first 1 MiB).
pub const DEVMEM_LOW_END: u64 = 0x100000;

/// Why `/dev/mem` refuses an access.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DevmemRefusal {
    /// `addr + len` overflows.
    Overflow {
        /// Requested address.
        addr: u64,
        /// Requested length.
        len: u64,
    },
    /// A page of the access holds System RAM (outside the first 1 MiB).
    SystemRam {
        /// The RAM resource (`start`, `end` inclusive, `name`).
        resource: (u64, u64, String),
    },
    /// A page of the access holds persistent memory, which belongs to the pmem driver.
    Persistent {
        /// The persistent memory resource.
        resource: (u64, u64, String),
    },
    /// A page of the access holds soft reserved (specific-purpose) memory owned by a driver.
    DriverOwned {
        /// The resource.
        resource: (u64, u64, String),
    },
    /// The access touches an address no resource describes.
    Hole {
        /// First such address.
        addr: u64,
    },
}

impl fmt::Display for DevmemRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Overflow { addr, len } => write!(
                f,
                "devmem: {addr:#x} + {len:#x} runs past the end of the physical address space"
            ),
            Self::SystemRam {
                resource: (s, e, n),
            } => write!(
                f,
                "devmem: refused: {s:08x}-{e:08x} is {n}; only RAM in the first 1 MiB may be read"
            ),
            Self::Persistent {
                resource: (s, e, n),
            } => write!(
                f,
                "devmem: refused: {s:08x}-{e:08x} is {n}; use the pmem driver for persistent memory"
            ),
            Self::DriverOwned {
                resource: (s, e, n),
            } => write!(
                f,
                "devmem: refused: {s:08x}-{e:08x} is {n}, memory owned by a driver"
            ),
            Self::Hole { addr } => write!(
                f,
                "devmem: refused: {addr:#x} is in no iomem resource (a hole in the physical map)"
            ),
        }
    }
}

/// The `/dev/mem` policy (x86 strict devmem, decided by the resource tree rather than by
/// `max_pfn`), for an access of `len` bytes at `addr` (`len` 0 counts as 1):
/// - anything below 1 MiB is allowed;
/// - above it, the access is refused when one of its pages (as Linux checks whole pages)
///   intersects System RAM, persistent memory (`Persistent Memory`, legacy or not: it has its
///   own driver) or soft reserved memory, at any depth of the tree;
/// - it is refused when one of its bytes lies in no resource (a hole);
/// - otherwise (reserved, ACPI tables, ACPI NVS, unusable, unknown types) it is allowed.
pub fn devmem_is_allowed(tree: &IomemTree, addr: u64, len: u64) -> Result<(), DevmemRefusal> {
    let end = addr
        .checked_add(len.max(1))
        .ok_or(DevmemRefusal::Overflow { addr, len })?;
    let start = addr.max(DEVMEM_LOW_END);
    if start >= end {
        return Ok(());
    }
    // Whole pages, as devmem_is_allowed checks them.
    let page_start = align_down(start, PAGE_SIZE);
    let page_last = align_down(end - 1, PAGE_SIZE).saturating_add(PAGE_SIZE - 1);

    let mut refusal: Option<(u64, DevmemRefusal)> = None;
    tree.walk(|r, _| {
        if !r.overlaps(page_start, page_last) {
            return;
        }
        let resource = || (r.start, r.end, r.name.clone());
        let why = match r.kind {
            ResourceKind::SystemRam | ResourceKind::Kernel => DevmemRefusal::SystemRam {
                resource: resource(),
            },
            ResourceKind::Pmem | ResourceKind::PmemLegacy => DevmemRefusal::Persistent {
                resource: resource(),
            },
            ResourceKind::SoftReserved => DevmemRefusal::DriverOwned {
                resource: resource(),
            },
            _ => return,
        };
        let at = r.start.max(page_start);
        if refusal.as_ref().is_none_or(|(a, _)| at < *a) {
            refusal = Some((at, why));
        }
    });
    if let Some((_, why)) = refusal {
        return Err(why);
    }

    // Every byte of [start, end) must lie in some top-level resource.
    let mut cur = start;
    for r in &tree.children {
        if r.end < cur {
            continue;
        }
        if r.start > cur {
            break;
        }
        match r.end.checked_add(1) {
            Some(next) => cur = next,
            None => return Ok(()),
        }
        if cur >= end {
            return Ok(());
        }
    }
    if cur < end {
        return Err(DevmemRefusal::Hole { addr: cur });
    }
    Ok(())
}
