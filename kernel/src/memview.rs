//! The shell's `memmap` view: a picture of the physical address space, one line
//! per run of one zone of one NUMA node, with a 20-column bar (`.` free, `#` used,
//! `r` reserved or memmap, `D` device, `-` hole inside a section) and counts, so a
//! person sees at a glance where RAM, ZONE_DEVICE and the holes are.
use alloc::string::String;
use core::fmt::Write;
use mm::{PageFlags, ZoneId};

const SECTION_PAGES: u64 = mm::sparse::PAGES_PER_SECTION;
const BAR: usize = 20;

#[derive(Default, Clone, Copy)]
struct Counts {
    free: u64,
    used: u64,
    reserved: u64,
    device: u64,
    hole: u64,
}

impl Counts {
    fn total(&self) -> u64 {
        self.free + self.used + self.reserved + self.device + self.hole
    }
}

struct Run {
    nid: usize,
    zone: ZoneId,
    start: u64,
    end: u64,
    c: Counts,
}

fn flush(out: &mut String, run: &Option<Run>) {
    let Some(r) = run else { return };
    let total = r.c.total().max(1);
    let mut bar = String::new();
    let mut acc = 0u64;
    let mut drawn = 0usize;
    for (n, ch) in [
        (r.c.free, '.'),
        (r.c.used, '#'),
        (r.c.reserved, 'r'),
        (r.c.device, 'D'),
        (r.c.hole, '-'),
    ] {
        acc += n;
        let upto = ((acc * BAR as u64).div_ceil(total)) as usize;
        while drawn < upto.min(BAR) {
            bar.push(ch);
            drawn += 1;
        }
    }
    let _ = writeln!(
        out,
        "{:#011x}-{:#011x} {:>4} {:<6} [{bar}] {:>8} free {:>8} used {:>8} rsvd{}",
        mm::pfn_phys(r.start),
        mm::pfn_phys(r.end) - 1,
        r.nid,
        r.zone.name(),
        r.c.free,
        r.c.used,
        r.c.reserved + r.c.hole,
        if r.c.device > 0 {
            alloc::format!(" {} dev", r.c.device)
        } else {
            String::new()
        }
    );
}

/// Write the picture.
pub fn write(out: &mut String) {
    let shared = crate::memory::Shared::take();
    let Some(node) = shared.get() else {
        out.push_str("memory manager not initialised\n");
        return;
    };
    let mut last = node.max_pfn();
    for p in node.pagemaps() {
        last = last.max(p.end_pfn());
    }
    for h in node.hotplug_ranges() {
        last = last.max(h.end_pfn);
    }
    let _ = writeln!(
        out,
        "physical address          node zone   [free . used # rsvd r dev D]   pages"
    );
    let mut run: Option<Run> = None;
    let mut gap_start: Option<u64> = None;
    let mut sec = 0;
    while sec * SECTION_PAGES < last {
        let first = sec * SECTION_PAGES;
        if !node.pfn_valid(first) {
            flush(out, &run);
            run = None;
            gap_start.get_or_insert(first);
            sec += 1;
            continue;
        }
        if let Some(g) = gap_start.take() {
            let _ = writeln!(
                out,
                "{:#011x}-{:#011x} (no memory)",
                mm::pfn_phys(g),
                mm::pfn_phys(first) - 1
            );
        }
        let mut pfn = first;
        while pfn < first + SECTION_PAGES {
            let Some(page) = node.page(pfn) else { break };
            let (zone, nid) = (page.zone(), page.nid());
            if run.as_ref().is_none_or(|r| r.zone != zone || r.nid != nid) {
                flush(out, &run);
                run = Some(Run {
                    nid,
                    zone,
                    start: pfn,
                    end: pfn,
                    c: Counts::default(),
                });
            }
            let flags = page.flags();
            let r = run.as_mut().unwrap_or_else(|| unreachable!());
            let mut step = 1;
            if flags.contains(PageFlags::DEVICE) {
                r.c.device += 1;
            } else if flags.contains(PageFlags::HOLE) {
                r.c.hole += 1;
            } else if flags.contains(PageFlags::BUDDY) {
                step = (1u64 << page.order()).min(first + SECTION_PAGES - pfn);
                r.c.free += step;
            } else if flags.contains(PageFlags::PCP) {
                r.c.free += 1;
            } else if flags.contains(PageFlags::RESERVED) {
                r.c.reserved += 1;
            } else {
                r.c.used += 1;
            }
            pfn += step;
            r.end = pfn;
        }
        sec += 1;
    }
    flush(out, &run);
}
