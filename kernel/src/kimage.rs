//! The kernel image as loaded: its segments read from our own ELF program
//! headers (at `__ehdr_start`, which the linker places at the start of the first
//! loadable segment), for the boot summary's sizes and /proc/iomem's
//! `Kernel code` / `Kernel rodata` / `Kernel data` / `Kernel bss` entries.
use alloc::vec::Vec;

unsafe extern "C" {
    /// The ELF header of the running kernel (defined by the linker).
    static __ehdr_start: u8;
}

/// What a loaded segment holds, by its permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentKind {
    /// Executable.
    Code,
    /// Read-only data.
    Rodata,
    /// Initialised writable data.
    Data,
    /// Zero-initialised writable data.
    Bss,
}

impl SegmentKind {
    /// The /proc/iomem name.
    pub fn iomem_name(self) -> &'static str {
        match self {
            SegmentKind::Code => "Kernel code",
            SegmentKind::Rodata => "Kernel rodata",
            SegmentKind::Data => "Kernel data",
            SegmentKind::Bss => "Kernel bss",
        }
    }
}

/// A part of the loaded image: virtual start and size.
#[derive(Debug, Clone, Copy)]
pub struct Segment {
    /// What it holds.
    pub kind: SegmentKind,
    /// Virtual start.
    pub virt: u64,
    /// Bytes.
    pub size: u64,
}

fn read_u16(p: *const u8) -> u16 {
    // SAFETY: callers pass addresses inside the ELF header or program header table,
    // which the bootloader loaded with the first segment; unaligned reads are allowed.
    unsafe { core::ptr::read_unaligned(p as *const u16) }
}

fn read_u32(p: *const u8) -> u32 {
    // SAFETY: as read_u16.
    unsafe { core::ptr::read_unaligned(p as *const u32) }
}

fn read_u64(p: *const u8) -> u64 {
    // SAFETY: as read_u16.
    unsafe { core::ptr::read_unaligned(p as *const u64) }
}

/// The loaded segments, split into code, rodata, data and bss.
pub fn segments() -> Vec<Segment> {
    let base = &raw const __ehdr_start;
    let mut out = Vec::new();
    // Check the ELF magic before trusting offsets.
    if read_u32(base) != 0x464c_457f {
        return out;
    }
    let phoff = read_u64(base.wrapping_add(0x20));
    let phentsize = u64::from(read_u16(base.wrapping_add(0x36)));
    let phnum = u64::from(read_u16(base.wrapping_add(0x38)));
    if phentsize < 56 || phnum > 64 || phoff > 0x10000 {
        return out;
    }
    // Position-independent: the headers' addresses are relative to the load base.
    let mut first_vaddr = None;
    for i in 0..phnum {
        let ph = base.wrapping_add((phoff + i * phentsize) as usize);
        if read_u32(ph) != 1 {
            continue; // not PT_LOAD
        }
        let vaddr = read_u64(ph.wrapping_add(0x10));
        first_vaddr.get_or_insert(vaddr);
    }
    let Some(first) = first_vaddr else { return out };
    let load_base = base as u64 - first;
    for i in 0..phnum {
        let ph = base.wrapping_add((phoff + i * phentsize) as usize);
        if read_u32(ph) != 1 {
            continue;
        }
        let flags = read_u32(ph.wrapping_add(4));
        let vaddr = load_base + read_u64(ph.wrapping_add(0x10));
        let filesz = read_u64(ph.wrapping_add(0x20));
        let memsz = read_u64(ph.wrapping_add(0x28));
        if flags & 1 != 0 {
            out.push(Segment {
                kind: SegmentKind::Code,
                virt: vaddr,
                size: memsz,
            });
        } else if flags & 2 != 0 {
            if filesz > 0 {
                out.push(Segment {
                    kind: SegmentKind::Data,
                    virt: vaddr,
                    size: filesz,
                });
            }
            if memsz > filesz {
                out.push(Segment {
                    kind: SegmentKind::Bss,
                    virt: vaddr + filesz,
                    size: memsz - filesz,
                });
            }
        } else {
            out.push(Segment {
                kind: SegmentKind::Rodata,
                virt: vaddr,
                size: memsz,
            });
        }
    }
    out
}

/// Sizes for the boot summary line.
pub fn sizes() -> mm::KernelSizes {
    let mut k = mm::KernelSizes::default();
    for s in segments() {
        match s.kind {
            SegmentKind::Code => k.code += s.size,
            SegmentKind::Rodata => k.rodata += s.size,
            SegmentKind::Data => k.rwdata += s.size,
            SegmentKind::Bss => k.bss += s.size,
        }
    }
    k
}
