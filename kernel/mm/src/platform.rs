//! The only door to the hardware: a trait the kernel implements and host tests fake.

use alloc::sync::Arc;
use core::fmt;
use core::mem::MaybeUninit;

use crate::memmap_work::MemmapWork;
use crate::node::PgData;
use crate::page::Page;

/// Why the platform could not map memory or provide memmap storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// No memory for page tables.
    OutOfMemory,
    /// The address cannot be mapped (beyond the supported physical address width, ...).
    BadAddress,
    /// Anything else, with a short reason.
    Other(&'static str),
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OutOfMemory => f.write_str("out of memory for page tables"),
            Self::BadAddress => f.write_str("address cannot be mapped"),
            Self::Other(why) => f.write_str(why),
        }
    }
}

/// What the memory manager needs from the machine. Ten calls; on the allocation and free
/// paths only [`this_cpu`](Self::this_cpu), and [`zero_pages`](Self::zero_pages) for
/// `Gfp::ZERO`.
pub trait Platform {
    /// Give access to `count` struct pages stored at physical address `pa` (page-aligned;
    /// `count * 32` bytes). The memory is RAM handed out by memblock or the buddy allocator, the
    /// first pages of a device range (altmap) or of a hot-added RAM range (memmap on memory);
    /// for the last two the range has already been mapped with [`map_device`](Self::map_device)
    /// or [`map_ram`](Self::map_ram). It may hold anything (every bit pattern is a valid
    /// [`Page`]; the memory manager writes every struct page before reading it), so the
    /// platform need not clear it; it must never hand out the same storage twice.
    fn memmap_storage(&mut self, pa: u64, count: usize) -> Result<&'static mut [Page], MapError>;

    /// Give access to the storage of one node's [`PgData`] at physical address `pa`
    /// (page-aligned, `size_of::<PgData>()` rounded up to a page), RAM that memblock handed
    /// out on that node (Linux's `NODE_DATA`). It may hold anything: the memory manager
    /// writes the value before using it. Like memmap storage, never handed out twice.
    fn node_data_storage(&mut self, pa: u64) -> Result<&'static mut MaybeUninit<PgData>, MapError>;

    /// Map the device range `[start, start + len)` into the kernel's address space
    /// (memremap_pages). Called before any memmap storage is taken from the range.
    fn map_device(&mut self, start: u64, len: u64) -> Result<(), MapError>;

    /// Make hot-added RAM `[start, start + len)` accessible through the kernel's physical
    /// memory mapping (add_memory). Called before any memmap storage is taken from the range.
    fn map_ram(&mut self, start: u64, len: u64) -> Result<(), MapError>;

    /// Undo [`map_device`](Self::map_device) / [`map_ram`](Self::map_ram) for the range
    /// `[start, start + len)` exactly as it was mapped (memunmap_pages, remove_memory): remove
    /// its page-table entries and flush them from every CPU's TLB before returning. Called
    /// only once the memory manager has given back every struct page stored in the range
    /// ([`release_memmap_storage`](Self::release_memmap_storage)). A failure must leave the
    /// mapping as it was.
    fn unmap_range(&mut self, start: u64, len: u64) -> Result<(), MapError>;

    /// Take back struct pages handed out by [`memmap_storage`](Self::memmap_storage), all of a
    /// handout or a part of one, stored at physical address `pa` (sections removed). The
    /// memory manager holds no other reference to them; the storage may be handed out again.
    fn release_memmap_storage(&mut self, pa: u64, pages: &'static mut [Page]);

    /// Fill `count` page frames starting at `pfn` with zeroes (`__GFP_ZERO`). Called on the
    /// allocation path, by any CPU: the frames belong to the caller alone.
    fn zero_pages(&self, pfn: u64, count: u64);

    /// Copy the contents of `count` page frames from `src_pfn` to `dst_pfn` (migration's
    /// `copy_highpage`, page by page). Both are RAM blocks the memory manager holds while it
    /// moves one into the other: the source still owned by its movable owner, the
    /// destination just allocated for it; they never overlap. Called with the memory manager
    /// held exclusively (offline_pages).
    fn copy_pages(&self, src_pfn: u64, dst_pfn: u64, count: u64);

    /// `smp_processor_id()`: the number of the CPU running the call, `0..nr_cpus` as the
    /// topology numbers CPUs. The allocation and free paths use it to pick the CPU's page
    /// lists and counters; a number used by two callers at once costs lost NUMA events, never
    /// memory safety.
    fn this_cpu(&self) -> usize;

    /// Run `work(cpu)` on every online CPU at once (this one too) and return when every
    /// call has returned (the kernel's `on_each_cpu`): boot work the memory manager spreads
    /// over the CPUs, the deferred struct page init. `work` shares out the work itself, so a
    /// platform may run it on any number of CPUs; the default runs it once, here.
    fn parallel(&self, work: &(dyn Fn(usize) + Sync)) {
        work(self.this_cpu());
    }

    /// Struct pages to write, made at boot: the platform may have idle CPUs
    /// [`run`](MemmapWork::run) each work while the boot goes on (each as its own CPU
    /// number, with a `stop` that says when it has something else to do), the works in the
    /// order given. The boot sections' come first, taken back soon after; the deferred ones
    /// next, until [`Machine::deferred_init_memmap`](crate::Machine::deferred_init_memmap)
    /// does the rest on every CPU and takes them back. The default leaves it all to the
    /// memory manager.
    fn start_background(&mut self, work: Arc<MemmapWork>) {
        drop(work);
    }
}
