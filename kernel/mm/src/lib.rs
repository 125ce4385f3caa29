//! Hardware-free memory manager in the spirit of Linux's `mm/`.
//!
//! The crate owns the whole physical-page bookkeeping of the kernel and nothing that touches
//! hardware. One [`Machine`] ([`machine`]) holds the machine-wide part: an early boot allocator
//! with node ids ([`memblock`]), a sparse memmap of [`Page`] descriptors ([`sparse`]), device
//! pagemaps ([`memremap`], torn down by [`memunmap`]), section removal ([`section_remove`],
//! [`span`]), memory hotplug ([`memory_hotplug`], [`memory_block`], [`memory_hotremove`],
//! [`migrate`]), pageblocks and isolation ([`pageblock`], [`page_isolation`]) and the NUMA
//! topology ([`numa`]). Each
//! NUMA node is a [`PgData`] ([`node`]) with zones DMA / DMA32 / Normal / Device ([`zone`]),
//! each zone a buddy allocator with a small order-0 page cache in front of it ([`buddy`],
//! [`pcp`]). Boot is [`mm_init`], allocation [`page_alloc`]; an invariant checker ([`check`])
//! and the Linux-format views ([`views`]) complete it.
//!
//! Everything the crate needs from the machine goes through the small [`Platform`] trait, which
//! the kernel implements and host tests fake (module `testing`, behind the `testing` feature).
//!
//! # Boot sequence (what the kernel calls)
//!
//! ```text
//! let mut mb = Memblock::new();
//! for each usable RAM range:  mb.add(start, size)?;     // page 0 and 0xa0000-0xfffff removed
//! for each range in use:      mb.reserve(start, size)?; // kernel image, bootloader, page tables
//! mb.set_current_limit(end_of_the_physical_mapping);    // the memmap must be reachable
//! for each NUMA memory block:  mb.set_node(start, size, nid)?;
//! let topo = Topology::new(nr_nodes, distances, cpus_per_node)?; // or Topology::single()
//! let mut m = Machine::init_numa(platform, mb, topo)?;  // memmap + nodes + zones + buddy
//! m.write_zone_ranges(&mut out)?;                       // "Zone ranges:" ... "Initmem setup ..."
//! m.write_boot_summary(&mut out, &kernel_sizes)?;       // "Memory: ...K/...K available (...)"
//! for each persistent range:
//!     m.memremap_pages(start, size, MemremapOptions::new(size).node(nid))?;
//! m.alloc_pages(Gfp::KERNEL, order) -> Option<pfn>;     // the local node first
//! m.alloc_pages_node(nid, Gfp::KERNEL | Gfp::THISNODE, order); m.free_pages(pfn, order)?;
//! m.add_memory(nid, start, size)?; m.online_pages(pfn, nr_pages)?;  // hotplug
//! m.check()?;                                           // invariant checker
//! ```
//!
//! `alloc` is used only at setup time (section tables, the pagemap and hotplug lists), never on
//! the allocation or free path.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod buddy;
pub mod check;
pub mod gfp;
pub mod machine;
pub mod memblock;
pub mod memmap_work;
pub mod memory_block;
pub mod memory_hotplug;
pub mod memory_hotremove;
pub mod memremap;
pub mod memunmap;
pub mod migrate;
pub mod mm_init;
pub mod movable;
pub mod node;
pub mod numa;
pub mod page;
pub mod page_alloc;
pub mod page_isolation;
pub mod page_ref;
pub mod pageblock;
pub mod pcp;
pub mod platform;
pub mod section_remove;
pub mod span;
pub mod sparse;
mod sync;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod views;
pub mod watermark;
pub mod zone;

pub use check::CheckError;
pub use gfp::Gfp;
pub use machine::{BadPage, BadPageReason, InitError, Machine, PageRefError};
pub use memblock::{Memblock, MemblockError};
pub use memory_hotplug::{
    HotRange, HotplugError, OnlineCallbackToken, OnlinePageCallback, OnlineType,
};
pub use memremap::{MemremapError, MemremapOptions, PageFreeFn, Pagemap};
pub use memunmap::{Memunmap, MemunmapError, PagemapRef};
pub use node::{PgData, ZoneRef};
pub use numa::{Topology, TopologyError};
pub use page::{Page, PageFlags};
pub use platform::{MapError, Platform};
pub use section_remove::{HoleRuns, RemoveError};
pub use views::{KernelSizes, ZoneRanges};
pub use zone::{NumaStat, Zone, ZoneId};

/// log2 of the page size.
pub const PAGE_SHIFT: u32 = 12;
/// Size of a page frame in bytes.
pub const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;
/// Highest buddy order (Linux's `MAX_PAGE_ORDER`): blocks of up to 1024 pages (4 MiB).
pub const MAX_ORDER: u32 = 10;
/// Order of a pageblock (2 MiB on x86_64, Linux's `pageblock_order` = `HUGETLB_PAGE_ORDER`).
pub const PAGEBLOCK_ORDER: u32 = 9;
/// Number of buddy orders (0..=[`MAX_ORDER`]).
pub const NR_ORDERS: usize = MAX_ORDER as usize + 1;
/// Physical addresses are limited to 52 bits (x86_64's architectural maximum).
pub const MAX_PHYSMEM_BITS: u32 = 52;
/// First pfn that cannot exist.
pub const MAX_PFN_LIMIT: u64 = 1 << (MAX_PHYSMEM_BITS - PAGE_SHIFT);

/// Page frame number of a physical address (rounded down, Linux's `PFN_DOWN`).
pub const fn pfn_down(addr: u64) -> u64 {
    addr >> PAGE_SHIFT
}

/// Page frame number of a physical address rounded up (Linux's `PFN_UP`).
pub const fn pfn_up(addr: u64) -> u64 {
    addr.div_ceil(PAGE_SIZE)
}

/// Physical address of a page frame number (Linux's `PFN_PHYS`).
pub const fn pfn_phys(pfn: u64) -> u64 {
    pfn << PAGE_SHIFT
}
