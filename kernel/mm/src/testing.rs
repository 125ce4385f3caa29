//! A host fake of the [`Platform`] (feature `testing`), for this crate's tests and benches and
//! for other crates' host tests, plus helpers to build a [`Machine`] from a RAM layout.
//!
//! Memmap storage is leaked heap memory (`Box::leak`), because the trait hands out
//! `&'static mut [Page]`: under Miri run with `MIRIFLAGS=-Zmiri-ignore-leaks`.

extern crate std;

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;

use crate::machine::Machine;
use crate::memblock::Memblock;
use crate::page::{Page, PageFlags};
use crate::platform::{MapError, Platform};

/// Records every call; can be told to fail. Hands out memmap storage full of garbage
/// (every byte 0xa5), as the [`Platform`] contract allows.
///
/// Fault injection: every fallible call (`memmap_storage`, `node_data_storage`,
/// `map_device`, `map_ram`, `unmap_range`) counts in [`calls`](Self::calls); with
/// [`fail_call`](Self::fail_call) set to `Some(k)` the k-th of them (1-based) fails, so a test
/// can run an operation for k = 1, 2, ... until it succeeds and compare the state after each
/// failure with the state before ([`FakeState`]).
#[derive(Debug, Default)]
pub struct FakePlatform {
    /// `(pa, count)` of every memmap storage handed out.
    pub storage: Vec<(u64, usize)>,
    /// Physical address of every node's data (`NODE_DATA`) handed out.
    pub node_data: Vec<u64>,
    /// Device ranges mapped.
    pub device_maps: Vec<(u64, u64)>,
    /// Hot-added RAM ranges mapped.
    pub ram_maps: Vec<(u64, u64)>,
    /// `(pfn, count)` of every zero-fill.
    pub zeroed: spin::Mutex<Vec<(u64, u64)>>,
    /// Make `map_device` / `map_ram` fail.
    pub fail_map: bool,
    /// Make `memmap_storage` fail.
    pub fail_storage: bool,
    /// Fallible calls made so far.
    pub calls: u64,
    /// Make the fallible call with this number (1-based, counted in `calls`) fail.
    pub fail_call: Option<u64>,
    /// `(start, len)` of every range unmapped.
    pub unmaps: Vec<(u64, u64)>,
    /// Storage given back, handed out again (refilled with garbage) for a request of the
    /// same size, so remove/add cycles do not leak.
    pub pool: StoragePool,
    /// What each page frame holds, one word per frame standing for its contents (frames
    /// never written are absent): [`Platform::copy_pages`] moves words, so tests see data
    /// follow a migration.
    pub frames: spin::Mutex<alloc::collections::BTreeMap<u64, u64>>,
    /// `(src, dst, count)` of every copy.
    pub copies: spin::Mutex<Vec<(u64, u64, u64)>>,
    /// Threads [`Platform::parallel`] runs its work on, each playing a CPU `0..n` (0 or 1:
    /// once, on the calling thread).
    pub parallel_cpus: usize,
    /// Threads [`Platform::start_background`] starts on each work (the boot sections'
    /// struct pages, then the deferred ones), playing CPUs `1..=n` (0: none, the memory
    /// manager does it all).
    pub background_cpus: usize,
    /// Those threads (for a test to join).
    pub background: spin::Mutex<Vec<std::thread::JoinHandle<()>>>,
    /// The works [`Platform::start_background`] was given, in order (for a test to look
    /// at them or run some of one).
    pub handed_out: Vec<alloc::sync::Arc<crate::memmap_work::MemmapWork>>,
}

/// Struct pages given back to the fake platform, to hand out again.
#[derive(Default)]
pub struct StoragePool(Vec<&'static mut [Page]>);

impl core::fmt::Debug for StoragePool {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "StoragePool({} slices)", self.0.len())
    }
}

/// What a [`FakePlatform`] holds on behalf of the memory manager (storage handed out, ranges
/// mapped), sorted, for comparing before and after an operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeState {
    /// Memmap storage handed out, `(pa, count)`.
    pub storage: Vec<(u64, usize)>,
    /// Node data handed out.
    pub node_data: Vec<u64>,
    /// Device ranges mapped.
    pub device_maps: Vec<(u64, u64)>,
    /// Hot-added RAM ranges mapped.
    pub ram_maps: Vec<(u64, u64)>,
}

impl FakePlatform {
    /// A platform that succeeds at everything.
    pub fn new() -> Self {
        Self::default()
    }

    /// Count a fallible call; whether it is the one to fail.
    fn inject(&mut self) -> bool {
        self.calls += 1;
        self.fail_call == Some(self.calls)
    }

    /// Fail the `k`-th fallible call from now on (1-based), or none.
    pub fn fail_nth_call_from_now(&mut self, k: Option<u64>) {
        self.fail_call = k.map(|k| self.calls + k);
    }

    /// Take `[pa, pa + count struct pages)` off the record of storage handed out (all of a
    /// handout or a part of one, after a split), as `release_memmap_storage` does.
    pub fn forget_storage(&mut self, pa: u64, count: usize) {
        let end = pa + count as u64 * 32;
        let mut kept = Vec::with_capacity(self.storage.len() + 1);
        for &(p, c) in &self.storage {
            let e = p + c as u64 * 32;
            if e <= pa || end <= p {
                kept.push((p, c));
                continue;
            }
            if p < pa {
                kept.push((p, ((pa - p) / 32) as usize));
            }
            if end < e {
                kept.push((end, ((e - end) / 32) as usize));
            }
        }
        self.storage = kept;
    }

    /// What the platform holds for the memory manager now (sorted).
    pub fn state(&self) -> FakeState {
        let mut st = FakeState {
            storage: self.storage.clone(),
            node_data: self.node_data.clone(),
            device_maps: self.device_maps.clone(),
            ram_maps: self.ram_maps.clone(),
        };
        st.storage.sort_unstable();
        st.node_data.sort_unstable();
        st.device_maps.sort_unstable();
        st.ram_maps.sort_unstable();
        st
    }
}

/// Remove `[start, start + len)`, which must be one recorded mapping, from `maps`.
fn take_mapping(maps: &mut Vec<(u64, u64)>, start: u64, len: u64) -> Result<(), MapError> {
    let i = maps
        .iter()
        .position(|&m| m == (start, len))
        .ok_or(MapError::Other("range not mapped"))?;
    maps.remove(i);
    Ok(())
}

impl FakePlatform {
    /// Put `word` in frame `pfn` (what a user of the frame would write there).
    pub fn write_frame(&self, pfn: u64, word: u64) {
        self.frames.lock().insert(pfn, word);
    }

    /// What frame `pfn` holds (None: never written).
    pub fn read_frame(&self, pfn: u64) -> Option<u64> {
        self.frames.lock().get(&pfn).copied()
    }
}

impl Platform for FakePlatform {
    fn memmap_storage(&mut self, pa: u64, count: usize) -> Result<&'static mut [Page], MapError> {
        if self.inject() || self.fail_storage {
            return Err(MapError::OutOfMemory);
        }
        if self
            .storage
            .iter()
            .any(|&(p, c)| pa < p + (c as u64) * 32 && p < pa + (count as u64) * 32)
        {
            return Err(MapError::Other("memmap storage handed out twice"));
        }
        self.storage.push((pa, count));
        // Garbage, as RAM may hold: the memory manager must write every struct page.
        if let Some(i) = self.pool.0.iter().position(|p| p.len() == count) {
            let pages = self.pool.0.swap_remove(i);
            Page::fill(pages, &Page::garbage());
            return Ok(pages);
        }
        Ok(Box::leak(vec![Page::garbage(); count].into_boxed_slice()))
    }

    fn node_data_storage(
        &mut self,
        pa: u64,
    ) -> Result<&'static mut core::mem::MaybeUninit<crate::PgData>, MapError> {
        if self.inject() || self.fail_storage {
            return Err(MapError::OutOfMemory);
        }
        if self.node_data.contains(&pa) {
            return Err(MapError::Other("node data storage handed out twice"));
        }
        self.node_data.push(pa);
        Ok(Box::leak(Box::new(core::mem::MaybeUninit::uninit())))
    }

    fn map_device(&mut self, start: u64, len: u64) -> Result<(), MapError> {
        if self.inject() || self.fail_map {
            return Err(MapError::OutOfMemory);
        }
        self.device_maps.push((start, len));
        Ok(())
    }

    fn map_ram(&mut self, start: u64, len: u64) -> Result<(), MapError> {
        if self.inject() || self.fail_map {
            return Err(MapError::OutOfMemory);
        }
        self.ram_maps.push((start, len));
        Ok(())
    }

    fn unmap_range(&mut self, start: u64, len: u64) -> Result<(), MapError> {
        if self.inject() {
            return Err(MapError::OutOfMemory);
        }
        take_mapping(&mut self.device_maps, start, len)
            .or_else(|_| take_mapping(&mut self.ram_maps, start, len))?;
        self.unmaps.push((start, len));
        Ok(())
    }

    fn release_memmap_storage(&mut self, pa: u64, pages: &'static mut [Page]) {
        self.forget_storage(pa, pages.len());
        self.pool.0.push(pages);
    }

    fn zero_pages(&self, pfn: u64, count: u64) {
        self.zeroed.lock().push((pfn, count));
    }

    fn copy_pages(&self, src_pfn: u64, dst_pfn: u64, count: u64) {
        let mut frames = self.frames.lock();
        for i in 0..count {
            match frames.get(&(src_pfn + i)).copied() {
                Some(w) => frames.insert(dst_pfn + i, w),
                None => frames.remove(&(dst_pfn + i)),
            };
        }
        self.copies.lock().push((src_pfn, dst_pfn, count));
    }

    fn this_cpu(&self) -> usize {
        this_cpu()
    }

    fn start_background(&mut self, work: alloc::sync::Arc<crate::memmap_work::MemmapWork>) {
        for cpu in 1..=self.background_cpus {
            let work = work.clone();
            self.background.lock().push(std::thread::spawn(move || {
                set_this_cpu(cpu);
                work.run(cpu, &|| false);
            }));
        }
        self.handed_out.push(work);
    }

    fn parallel(&self, work: &(dyn Fn(usize) + Sync)) {
        if self.parallel_cpus <= 1 {
            return work(this_cpu());
        }
        std::thread::scope(|s| {
            for cpu in 0..self.parallel_cpus {
                s.spawn(move || {
                    set_this_cpu(cpu);
                    work(cpu);
                });
            }
        });
    }
}

std::thread_local! {
    static THIS_CPU: core::cell::Cell<usize> = const { core::cell::Cell::new(0) };
}

/// The CPU number the calling thread plays (0 until [`set_this_cpu`]).
pub fn this_cpu() -> usize {
    THIS_CPU.with(|c| c.get())
}

/// Make the calling thread play CPU `cpu` for every [`FakePlatform`] (threads playing CPUs
/// in concurrency tests and benches; give each thread its own number).
pub fn set_this_cpu(cpu: usize) {
    THIS_CPU.with(|c| c.set(cpu));
}

/// A memblock with RAM `ram` (`(start, end)` byte ranges) and `reserved` ranges.
pub fn memblock(ram: &[(u64, u64)], reserved: &[(u64, u64)]) -> Memblock {
    let mut mb = Memblock::new();
    for &(s, e) in ram {
        mb.add(s, e - s).expect("memblock add");
    }
    for &(s, e) in reserved {
        mb.reserve(s, e - s).expect("memblock reserve");
    }
    mb
}

/// A node over RAM `ram` with `reserved` ranges, on a [`FakePlatform`].
pub fn node(ram: &[(u64, u64)], reserved: &[(u64, u64)]) -> Machine<FakePlatform> {
    Machine::init(FakePlatform::new(), memblock(ram, reserved)).expect("Machine::init")
}

/// A QEMU-like PC with `mib` MiB of RAM: usable 4 KiB-0x9f000 and 1 MiB to the end (split at
/// 3 GiB with the rest above 4 GiB for large sizes), page 0 and the first 2 MiB above 1 MiB
/// (the "kernel") reserved.
pub fn pc_node(mib: u64) -> Machine<FakePlatform> {
    let mib_b = mib << 20;
    let mut ram = vec![(0x1000, 0x9f000)];
    if mib_b <= 3 << 30 {
        ram.push((0x10_0000, mib_b));
    } else {
        ram.push((0x10_0000, 3 << 30));
        ram.push((4 << 30, (4 << 30) + mib_b - (3 << 30)));
    }
    node(&ram, &[(0x10_0000, 0x30_0000)])
}

/// The head pfn of the first allocated block below `max_pfn` that holds memmap (a device's
/// struct pages taken from the buddy allocator), if any.
pub fn memmap_block_head<P: Platform>(n: &Machine<P>) -> Option<u64> {
    (0..n.max_pfn()).find(|&p| {
        n.page(p).is_some_and(|pg| {
            pg.flags()
                .contains(PageFlags::MEMMAP.union(PageFlags::HEAD))
        })
    })
}

/// Assert that no free list or page cache holds a device pfn and that the invariant checker
/// passes: how every device and hotplug scenario ends.
pub fn settle<P: Platform>(n: &Machine<P>) {
    assert_eq!(n.device_pfns_in_free_lists(), 0);
    n.check().unwrap();
}

/// What a failed hotplug operation must leave as it was, as text to compare: every zone's
/// span and counters and watermarks, the memory blocks, the hot-added ranges, memmap bytes,
/// memblock's RAM, the present sections, and the fake platform's state (not `max_pfn`,
/// which hot-remove leaves where it is).
pub fn hotplug_state(n: &Machine<FakePlatform>) -> alloc::string::String {
    use core::fmt::Write;
    let mut s = alloc::string::String::new();
    for z in n.zones() {
        let _ = writeln!(
            s,
            "{} {} {} {} {} {} {:?}",
            z.name(),
            z.start_pfn(),
            z.spanned(),
            z.present(),
            z.managed(),
            z.free_pages(),
            z.watermarks()
        );
    }
    let _ = writeln!(
        s,
        "{:?}\n{:?}\n{}\n{:?}\n{}\n{:?}",
        n.memory_blocks(),
        n.hotplug_ranges(),
        n.memmap_ram_bytes(),
        n.memblock().memory().regions(),
        n.sparse().present_sections(),
        n.platform().state()
    );
    s
}
