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

/// Little-endian integers at `off` in `b`; None past its end.
fn read_u16(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(off..off.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn read_u32(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(off..off.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn read_u64(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(off..off.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// Bytes of the ELF header.
const EHDR_LEN: usize = 64;
/// The largest program header table read (offset + size), far more than a
/// kernel image has.
const MAX_HEADERS: usize = 0x10000 + 64 * 256;

/// The loaded segments, split into code, rodata, data and bss.
pub fn segments() -> Vec<Segment> {
    let base = &raw const __ehdr_start;
    // SAFETY: the linker defines __ehdr_start only when the ELF header is part of
    // the first loadable segment, which the bootloader loaded and mapped readable
    // for the kernel's lifetime; the header is 64 bytes and nothing writes it.
    let ehdr = unsafe { core::slice::from_raw_parts(base, EHDR_LEN) };
    let Some(len) = headers_len(ehdr) else {
        return Vec::new();
    };
    // SAFETY: the program header table follows the ELF header inside the first
    // loadable segment (PHDRS are loaded when __ehdr_start exists, and `len` is
    // bounded by `headers_len` to the table the header describes), mapped and
    // never written, as above.
    let headers = unsafe { core::slice::from_raw_parts(base, len) };
    parse_segments(headers, base as u64)
}

/// How many bytes from the ELF header's start to the end of its program header
/// table, or None when the header is not one this kernel's linker writes.
fn headers_len(ehdr: &[u8]) -> Option<usize> {
    // Check the ELF magic before trusting offsets.
    if read_u32(ehdr, 0)? != 0x464c_457f {
        return None;
    }
    let phoff = usize::try_from(read_u64(ehdr, 0x20)?).ok()?;
    let phentsize = usize::from(read_u16(ehdr, 0x36)?);
    let phnum = usize::from(read_u16(ehdr, 0x38)?);
    if !(56..=256).contains(&phentsize) || phnum > 64 || phoff > 0x10000 {
        return None;
    }
    let len = phoff + phentsize * phnum;
    (len <= MAX_HEADERS).then_some(len.max(EHDR_LEN))
}

/// The segments that the ELF header and program headers in `image` describe,
/// for an image whose header was loaded at `base` (position-independent: the
/// headers' addresses are relative to the load base). Nothing on a malformed
/// table (short, or a first PT_LOAD above `base`).
fn parse_segments(image: &[u8], base: u64) -> Vec<Segment> {
    parse(image, base).unwrap_or_default()
}

fn parse(image: &[u8], base: u64) -> Option<Vec<Segment>> {
    if image.len() < headers_len(image)? {
        return None; // the program header table is cut short
    }
    let phoff = read_u64(image, 0x20)? as usize;
    let phentsize = usize::from(read_u16(image, 0x36)?);
    let phnum = usize::from(read_u16(image, 0x38)?);
    let header = |i: usize| phoff + i * phentsize;
    let mut first_vaddr = None;
    for i in 0..phnum {
        let ph = header(i);
        if read_u32(image, ph)? != 1 {
            continue; // not PT_LOAD
        }
        first_vaddr.get_or_insert(read_u64(image, ph + 0x10)?);
    }
    let load_base = base.checked_sub(first_vaddr?)?;
    let mut out = Vec::new();
    for i in 0..phnum {
        let ph = header(i);
        if read_u32(image, ph)? != 1 {
            continue;
        }
        let flags = read_u32(image, ph + 4)?;
        let vaddr = load_base.checked_add(read_u64(image, ph + 0x10)?)?;
        let filesz = read_u64(image, ph + 0x20)?;
        let memsz = read_u64(image, ph + 0x28)?;
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
                    virt: vaddr.checked_add(filesz)?,
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
    Some(out)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// An ELF header and `loads` PT_LOAD headers (flags, vaddr, filesz, memsz).
    fn elf(loads: &[(u32, u64, u64, u64)]) -> Vec<u8> {
        let mut b = alloc::vec![0u8; 64];
        b[..4].copy_from_slice(&0x464c_457fu32.to_le_bytes());
        b[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        b[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        b[0x38..0x3a].copy_from_slice(&(loads.len() as u16).to_le_bytes());
        for &(flags, vaddr, filesz, memsz) in loads {
            let mut ph = [0u8; 56];
            ph[..4].copy_from_slice(&1u32.to_le_bytes());
            ph[4..8].copy_from_slice(&flags.to_le_bytes());
            ph[0x10..0x18].copy_from_slice(&vaddr.to_le_bytes());
            ph[0x20..0x28].copy_from_slice(&filesz.to_le_bytes());
            ph[0x28..0x30].copy_from_slice(&memsz.to_le_bytes());
            b.extend_from_slice(&ph);
        }
        b
    }

    #[test_case]
    fn segments_of_a_well_formed_image() {
        let img = elf(&[
            (4, 0, 0x100, 0x100),
            (5, 0x1000, 0x200, 0x200),
            (6, 0x2000, 0x10, 0x30),
        ]);
        let segs = parse_segments(&img, 0x40_0000);
        let kinds: Vec<_> = segs.iter().map(|s| (s.kind, s.virt, s.size)).collect();
        assert_eq!(
            kinds,
            [
                (SegmentKind::Rodata, 0x40_0000, 0x100),
                (SegmentKind::Code, 0x40_1000, 0x200),
                (SegmentKind::Data, 0x40_2000, 0x10),
                (SegmentKind::Bss, 0x40_2010, 0x20),
            ]
        );
    }

    /// A first PT_LOAD above the header's address (base - first would wrap) and
    /// tables cut short give nothing instead of wrapped addresses or reads past
    /// the end.
    #[test_case]
    fn malformed_images_give_nothing() {
        let img = elf(&[(5, 0x10_0000, 0x200, 0x200)]);
        assert!(parse_segments(&img, 0x1000).is_empty());
        let img = elf(&[(5, 0, 0x200, 0x200), (6, u64::MAX, 1, 2)]);
        assert!(parse_segments(&img, 0x1000).is_empty());
        let img = elf(&[(5, 0, 0x200, 0x200)]);
        for cut in [0, 4, 63, 64, 100, img.len() - 1] {
            assert!(parse_segments(&img[..cut], 0x1000).is_empty(), "cut {cut}");
        }
        let mut bad = img.clone();
        bad[0] = 0;
        assert!(parse_segments(&bad, 0x1000).is_empty());
    }

    #[test_case]
    fn the_running_kernel_has_code_and_data() {
        let segs = segments();
        assert!(
            segs.iter()
                .any(|s| s.kind == SegmentKind::Code && s.size > 0)
        );
        assert!(segs.iter().any(|s| s.kind == SegmentKind::Rodata));
    }
}
