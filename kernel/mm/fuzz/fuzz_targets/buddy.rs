//! The buddy allocator driven by a byte stream of operations on a node that boots with 111 MiB
//! of fake RAM (DMA and DMA32) and an 8 MiB device range (ZONE_DEVICE) in one 128 MiB section:
//! allocations of any order and zone modifiers, frees of live blocks, frees of bogus pfn/order
//! pairs, get/put on device pages and on live blocks, new device ranges, hot-added RAM (which
//! above 4 GiB brings up ZONE_NORMAL, as on a small machine given a DIMM), page-cache drains
//! and zone exhaustion.
//!
//! After every operation: `node.check_free_areas()` passes (free lists, page caches, free
//! counts, no overlapping free blocks, no device pfn), the independent device audit finds
//! nothing, and the free page count plus the pages held by live blocks equals the boot count
//! plus what memremap and hot-add changed; the full `node.check()` (the memmap walk besides)
//! after the last operation. Then everything is freed, every device page is idle again, the
//! free count is back to that figure and the full check passes again.
//!
//! An execution is kept cheap so that libFuzzer gets millions of them: one 128 MiB section at
//! boot (32,768 struct pages to build and walk; the Normal zone at boot is covered by the
//! host tests), at most 32 operations, and the memmap walk (~0.1 ms per section
//! instrumented, against ~10 µs for the free-area check) twice per input rather than after
//! every operation, which held the target to 20-66 runs/s.
//!
//! The node runs on the `mm::testing::FakePlatform`, except that memmap storage comes from a
//! pool reused from one input to the next: the fake platform leaks its storage (its trait hands
//! out `&'static mut`), which at a few MiB per input would exhaust memory within seconds.
#![no_main]

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, Ordering};

use libfuzzer_sys::fuzz_target;
use mm::testing::{FakePlatform, memblock};
use mm::{
    BadPageReason, Gfp, MAX_ORDER, Machine, MapError, MemremapOptions, Page, PageRefError, PgData,
    Platform, ZoneId,
};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
/// RAM: the low 636 KiB and 1 MiB-112 MiB (DMA and DMA32).
const RAM: [(u64, u64); 2] = [(0x1000, 0x9f000), (MIB, 112 * MIB)];
/// In use at boot (the "kernel"), as on a PC.
const RESERVED: [(u64, u64); 1] = [(MIB, 3 * MIB)];
/// The device range registered at boot: an 8 MiB NVDIMM just above RAM in the same section
/// (as on machines where they share one), memmap in RAM; 120-128 MiB stays a hole.
const BOOT_DEVICE: (u64, u64) = (112 * MIB, 8 * MIB);
/// Operations per input.
const MAX_OPS: usize = 32;

/// Whether the boot state's memmap walk has run in this process.
static BOOT_CHECKED: AtomicBool = AtomicBool::new(false);

/// Memmap buffers: handed out (pointer, length), and free ones by length.
type Pool = (Vec<(*mut Page, usize)>, HashMap<usize, Vec<*mut Page>>);

thread_local! {
    static POOL: RefCell<Pool> = RefCell::new((Vec::new(), HashMap::new()));
    /// Node data buffers: handed out, and free ones.
    static NODE_POOL: RefCell<(Vec<*mut MaybeUninit<PgData>>, Vec<*mut MaybeUninit<PgData>>)> =
        const { RefCell::new((Vec::new(), Vec::new())) };
}

/// `FakePlatform` with memmap storage from [`POOL`].
struct PoolPlatform {
    fake: FakePlatform,
}

impl Platform for PoolPlatform {
    fn memmap_storage(&mut self, pa: u64, count: usize) -> Result<&'static mut [Page], MapError> {
        let size = count as u64 * 32;
        if self
            .fake
            .storage
            .iter()
            .any(|&(p, c)| pa < p + c as u64 * 32 && p < pa + size)
        {
            return Err(MapError::Other("memmap storage handed out twice"));
        }
        self.fake.storage.push((pa, count));
        POOL.with(|pool| {
            let (used, free) = &mut *pool.borrow_mut();
            let ptr = match free.get_mut(&count).and_then(Vec::pop) {
                Some(p) => p,
                None => Box::into_raw(vec![Page::default(); count].into_boxed_slice()).cast(),
            };
            used.push((ptr, count));
            // SAFETY: `ptr` is a live allocation of `count` pages that nothing else refers
            // to: it was just made, or it came back to the free list after the node that used
            // it was dropped (`release_pool`).
            let pages = unsafe { std::slice::from_raw_parts_mut(ptr, count) };
            pages.fill(Page::default());
            Ok(pages)
        })
    }

    fn node_data_storage(
        &mut self,
        _pa: u64,
    ) -> Result<&'static mut MaybeUninit<PgData>, MapError> {
        NODE_POOL.with(|pool| {
            let (used, free) = &mut *pool.borrow_mut();
            let ptr = free
                .pop()
                .unwrap_or_else(|| Box::into_raw(Box::new(MaybeUninit::uninit())));
            used.push(ptr);
            // SAFETY: `ptr` is a live allocation that nothing else refers to: it was just
            // made, or it came back to the free list after the machine that used it was
            // dropped (`release_pool`). MaybeUninit has no validity requirement.
            Ok(unsafe { &mut *ptr })
        })
    }

    fn map_device(&mut self, start: u64, len: u64) -> Result<(), MapError> {
        self.fake.map_device(start, len)
    }

    fn map_ram(&mut self, start: u64, len: u64) -> Result<(), MapError> {
        self.fake.map_ram(start, len)
    }

    fn unmap_range(&mut self, start: u64, len: u64) -> Result<(), MapError> {
        self.fake.unmap_range(start, len)
    }

    fn release_memmap_storage(&mut self, pa: u64, pages: &'static mut [Page]) {
        // The buffer stays on the used list until release_pool, like every other one;
        // only the record of what is handed out changes.
        self.fake.forget_storage(pa, pages.len());
    }

    fn copy_pages(&self, src_pfn: u64, dst_pfn: u64, count: u64) {
        // Migration only runs in offline_pages, which this target does not call.
        self.fake.copy_pages(src_pfn, dst_pfn, count)
    }

    fn this_cpu(&self) -> usize {
        0
    }

    fn zero_pages(&self, pfn: u64, count: u64) {
        // Recording every zero-fill would grow without bound under exhaustion; check the
        // request instead.
        assert!(count.is_power_of_two() && pfn.is_multiple_of(count));
    }
}

/// Puts every buffer handed out back on the free list. Call only once the node is dropped.
fn release_pool() {
    POOL.with(|pool| {
        let (used, free) = &mut *pool.borrow_mut();
        for (ptr, count) in used.drain(..) {
            free.entry(count).or_default().push(ptr);
        }
    });
    NODE_POOL.with(|pool| {
        let (used, free) = &mut *pool.borrow_mut();
        free.append(used);
    });
}

struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
}

/// The harness's model of what is allocated.
struct Model {
    /// Live blocks: head pfn → (order, extra references taken with get_page).
    live: BTreeMap<u64, (u32, u32)>,
    /// References taken on device pages: pfn → count above the idle 1.
    device_refs: BTreeMap<u64, u32>,
    /// Pages held by live blocks.
    live_pages: u64,
    /// Free pages expected with nothing allocated: the boot count, minus memmap taken from
    /// the buddy allocator by memremap, plus hot-added RAM handed to it.
    base_free: u64,
}

impl Model {
    fn add_block(&mut self, pfn: u64, order: u32) {
        let n = 1u64 << order;
        if let Some((&p, &(o, _))) = self.live.range(..pfn + n).next_back() {
            assert!(
                p + (1 << o) <= pfn,
                "block {pfn:#x}/{order} overlaps live block {p:#x}/{o}"
            );
        }
        self.live.insert(pfn, (order, 0));
        self.live_pages += n;
    }

    fn remove_block(&mut self, pfn: u64) {
        let (order, _) = self.live.remove(&pfn).expect("not a live block");
        self.live_pages -= 1 << order;
    }

    /// `free_pages` of a live block: it drops one reference (put_page_testzero); the block
    /// is gone only with the last one.
    fn free_block(&mut self, pfn: u64) {
        match self.live.get_mut(&pfn) {
            Some((_, refs)) if *refs > 0 => *refs -= 1,
            _ => self.remove_block(pfn),
        }
    }

    fn nth_live(&self, i: u8) -> Option<(u64, u32)> {
        if self.live.is_empty() {
            return None;
        }
        let k = usize::from(i) % self.live.len();
        self.live.iter().nth(k).map(|(&p, &(o, _))| (p, o))
    }
}

fn device_pfn<P: Platform>(node: &Machine<P>, sel: u8, off: u32) -> Option<u64> {
    let maps = node.pagemaps();
    if maps.is_empty() {
        return None;
    }
    let m = &maps[usize::from(sel) % maps.len()];
    let n = m.end_pfn() - m.start_pfn();
    Some(m.start_pfn() + u64::from(off) % n)
}

/// Size of a new device or RAM range: 1 to `units` times 2 MiB from `len`, plus half a page
/// (a misaligned size that must be refused) when bit 6 is set.
fn range_size(len: u8, units: u64) -> u64 {
    let size = (1 + u64::from(len) % units) * 2 * MIB;
    if len & 0x40 != 0 { size + 0x800 } else { size }
}

fn gfp_of(b: u8) -> Gfp {
    let mut g = Gfp::NOWARN;
    for (bit, flag) in [
        (1, Gfp::DMA),
        (2, Gfp::DMA32),
        (4, Gfp::ZERO),
        (8, Gfp::HIGH),
        (16, Gfp::MEMALLOC),
    ] {
        if b & bit != 0 {
            g = g | flag;
        }
    }
    g
}

fn check_alloc<P: Platform>(node: &Machine<P>, gfp: Gfp, pfn: u64, order: u32) {
    let n = 1u64 << order;
    assert!(
        pfn.is_multiple_of(n),
        "block {pfn:#x} not aligned to order {order}"
    );
    let limit = match gfp.high_zone() {
        ZoneId::Dma => mm::zone::MAX_DMA_PFN,
        ZoneId::Dma32 => mm::zone::MAX_DMA32_PFN,
        _ => u64::MAX,
    };
    assert!(
        pfn + n <= limit,
        "block {pfn:#x}/{order} above the zone asked for"
    );
    for p in [pfn, pfn + n - 1] {
        let page = node.page(p).expect("allocated pfn without struct page");
        assert!(
            !page.is_device() && page.zone() != ZoneId::Device,
            "device pfn {p:#x} allocated"
        );
        assert!(
            node.pagemaps()
                .iter()
                .all(|m| p < m.start_pfn() || p >= m.end_pfn())
        );
    }
    assert_eq!(node.page(pfn).map(|p| p.refcount()), Some(1));
}

/// The invariants after an operation: the free-area check (lists, page caches, free counts,
/// overlaps, device ranges: cost in free blocks) always, and the full memmap walk when `full`.
fn settle<P: Platform>(node: &Machine<P>, model: &Model, what: &str, full: bool) {
    if let Err(e) = node.check_free_areas() {
        panic!("after {what}: check_free_areas: {e}");
    }
    if full && let Err(e) = node.check() {
        panic!("after {what}: check: {e}");
    }
    assert_eq!(node.device_pfns_in_free_lists(), 0, "after {what}");
    assert_eq!(
        node.nr_free_pages() + model.live_pages,
        model.base_free,
        "after {what}: free pages + live pages"
    );
}

fuzz_target!(|data: &[u8]| {
    let platform = PoolPlatform {
        fake: FakePlatform::new(),
    };
    let mut node = Machine::init(platform, memblock(&RAM, &RESERVED)).expect("Machine::init");
    node.memremap_pages(
        BOOT_DEVICE.0,
        BOOT_DEVICE.1,
        MemremapOptions::new(BOOT_DEVICE.1),
    )
    .expect("boot device range");
    let mut model = Model {
        live: BTreeMap::new(),
        device_refs: BTreeMap::new(),
        live_pages: 0,
        base_free: node.nr_free_pages(),
    };
    // Boot is the same for every input: walk its memmap once per process.
    settle(
        &node,
        &model,
        "boot",
        !BOOT_CHECKED.swap(true, Ordering::Relaxed),
    );

    let mut input = Bytes(data);
    let mut ops = 0;
    while !input.0.is_empty() && ops < MAX_OPS {
        ops += 1;
        let op = input.u8();
        let what = match op % 12 {
            0..=2 => {
                let order = u32::from(input.u8()) % (MAX_ORDER + 1);
                let gfp = gfp_of(input.u8());
                if let Some(pfn) = node.alloc_pages(gfp, order) {
                    check_alloc(&node, gfp, pfn, order);
                    model.add_block(pfn, order);
                }
                "alloc"
            }
            3 | 4 => {
                if let Some((pfn, order)) = model.nth_live(input.u8()) {
                    node.free_pages(pfn, order).expect("free of a live block");
                    model.free_block(pfn);
                }
                "free"
            }
            5 => {
                // A bogus free: near a live block, a device page, or anywhere.
                let sel = input.u8();
                let delta = u64::from(input.u16());
                let order = u32::from(input.u8()) % 12;
                let pfn = match sel % 3 {
                    0 => model.nth_live(sel).map_or(delta, |(p, _)| p + (delta % 64)),
                    1 => device_pfn(&node, sel, u32::from(input.u16())).unwrap_or(delta),
                    _ => u64::from(input.u32()) << (sel % 8),
                };
                let live = model.live.get(&pfn).copied();
                match node.free_pages(pfn, order) {
                    Ok(()) => {
                        assert_eq!(
                            live.map(|l| l.0),
                            Some(order),
                            "bogus free {pfn:#x}/{order} accepted"
                        );
                        model.free_block(pfn);
                    }
                    Err(bad) => {
                        assert!(
                            live.is_none_or(|l| l.0 != order),
                            "free of live {pfn:#x}/{order} refused: {bad}"
                        );
                        if node.page(pfn).is_some_and(|p| p.is_device()) && order <= MAX_ORDER {
                            assert_eq!(bad.reason, BadPageReason::DevicePage);
                        }
                        let _ = bad.to_string();
                    }
                }
                "bogus free"
            }
            6 => {
                let sel = input.u8();
                let off = input.u32();
                if sel & 0x80 != 0 {
                    if let Some((pfn, _)) = model.nth_live(sel) {
                        node.get_page(pfn).expect("get_page on a live block");
                        model.live.get_mut(&pfn).expect("live").1 += 1;
                    }
                } else if let Some(pfn) = device_pfn(&node, sel, off) {
                    let count = node.get_page(pfn).expect("get_page on a device page");
                    let refs = model.device_refs.entry(pfn).or_insert(0);
                    *refs += 1;
                    assert_eq!(count, *refs + 1);
                }
                "get_page"
            }
            7 => {
                let sel = input.u8();
                let off = input.u32();
                if sel & 0x80 != 0 {
                    if let Some((pfn, _)) = model.nth_live(sel) {
                        let count = node.put_page(pfn).expect("put_page on a live block");
                        let refs = &mut model.live.get_mut(&pfn).expect("live").1;
                        if *refs == 0 {
                            assert_eq!(count, 0);
                            model.remove_block(pfn);
                        } else {
                            *refs -= 1;
                            assert_eq!(count, *refs + 1);
                        }
                    }
                } else if let Some(pfn) = device_pfn(&node, sel, off) {
                    let refs = model.device_refs.get(&pfn).copied().unwrap_or(0);
                    match node.put_page(pfn) {
                        Ok(count) => {
                            assert!(refs > 0, "put_page on idle device page {pfn:#x} accepted");
                            assert_eq!(count, refs);
                            if refs == 1 {
                                model.device_refs.remove(&pfn);
                            } else {
                                model.device_refs.insert(pfn, refs - 1);
                            }
                        }
                        Err(e) => {
                            assert_eq!((refs, e), (0, PageRefError::IdleDevicePage));
                        }
                    }
                }
                "put_page"
            }
            8 => {
                // A device range: in the hole below 4 GiB (in a section that has RAM or not),
                // at 4 GiB + 64 MiB (where hot-added RAM may share its section), or far up;
                // sometimes misaligned.
                let slot = input.u8();
                let len = input.u8();
                let base = match slot % 4 {
                    0 => 120 * MIB + u64::from(slot / 4) * 4 * MIB,
                    1 => 4 * GIB + 64 * MIB + u64::from(slot / 4) * 4 * MIB,
                    2 => 8 * GIB + u64::from(slot / 4) * 128 * MIB,
                    _ => u64::from(slot / 4) * 64 * MIB,
                };
                let size = range_size(len, 32);
                let before = node.nr_free_pages();
                match node.memremap_pages(
                    base,
                    size,
                    MemremapOptions::new(size).altmap(len & 0x80 != 0),
                ) {
                    Ok(idx) => {
                        let m = &node.pagemaps()[idx];
                        assert_eq!(m.range(), (base, base + size));
                        let taken = m.memmap_ram_bytes() / mm::PAGE_SIZE;
                        assert_eq!(node.nr_free_pages(), before - taken);
                        model.base_free -= taken;
                    }
                    Err(e) => {
                        assert_eq!(
                            node.nr_free_pages(),
                            before,
                            "failed memremap changed free pages: {e}"
                        );
                    }
                }
                "memremap"
            }
            9 => {
                // Hot-added RAM: in the hole below 4 GiB (DMA32), at 4 GiB (Normal, maybe in a
                // section with a device range), or in new sections; sometimes misaligned.
                let slot = input.u8();
                let len = input.u8();
                let base = match slot % 3 {
                    0 => 120 * MIB + u64::from(slot / 3) * 4 * MIB,
                    1 => 4 * GIB + u64::from(slot / 3) * 4 * MIB,
                    _ => 6 * GIB + u64::from(slot / 3) * 128 * MIB,
                };
                let size = range_size(len, 64);
                let before = node.nr_free_pages();
                match node.add_and_online_memory(0, base, size) {
                    Ok(handed) => {
                        // Less than handed when the memmap came from the buddy allocator.
                        let gained = node.nr_free_pages() as i64 - before as i64;
                        assert!(gained <= handed as i64 && handed <= size / mm::PAGE_SIZE);
                        model.base_free = (model.base_free as i64 + gained) as u64;
                    }
                    Err(e) => {
                        assert_eq!(
                            node.nr_free_pages(),
                            before,
                            "failed hot-add changed free pages: {e}"
                        );
                    }
                }
                "hot-add"
            }
            10 => {
                node.drain_pages();
                "drain"
            }
            _ => {
                // Exhaust a zone with large blocks, then give half of them back.
                let order = 5 + u32::from(input.u8()) % (MAX_ORDER - 4);
                let gfp = gfp_of(input.u8());
                let mut got = Vec::new();
                while let Some(pfn) = node.alloc_pages(gfp, order) {
                    check_alloc(&node, gfp, pfn, order);
                    model.add_block(pfn, order);
                    got.push(pfn);
                }
                for pfn in got.into_iter().step_by(2) {
                    node.free_pages(pfn, order).expect("free of a live block");
                    model.remove_block(pfn);
                }
                "exhaust"
            }
        };
        let last = input.0.is_empty() || ops == MAX_OPS;
        settle(&node, &model, what, last);
    }

    // Give everything back: extra references, live blocks, device references.
    let live: Vec<(u64, (u32, u32))> = model.live.iter().map(|(&p, &l)| (p, l)).collect();
    for (pfn, (order, refs)) in live {
        for _ in 0..refs {
            assert!(node.put_page(pfn).expect("put_page") > 0);
        }
        node.free_pages(pfn, order).expect("final free");
        model.remove_block(pfn);
    }
    let refs: Vec<(u64, u32)> = model.device_refs.iter().map(|(&p, &r)| (p, r)).collect();
    for (pfn, r) in refs {
        for _ in 0..r {
            node.put_page(pfn).expect("device put_page");
        }
        assert_eq!(
            node.page(pfn).map(|p| p.refcount()),
            Some(1),
            "device page not idle"
        );
    }
    model.device_refs.clear();
    node.drain_pages();
    settle(&node, &model, "freeing everything", true);
    assert_eq!(node.nr_free_pages(), model.base_free);
    drop(node);
    release_pool();
});
