//! The CPU's own view of its topology (CPUID): which package an APIC id belongs
//! to, for Linux's `Max logical packages`, and the boot CPU's model line
//! (`smpboot: CPU0: ...`, Linux's `print_cpu_info`).
use alloc::format;
use alloc::string::String;
use core::arch::x86_64::{__cpuid, __cpuid_count};

/// Bits of the APIC id below the package id: from CPUID leaf 0xB (the shift of
/// its last level), else leaf 1's logical-processor count when HTT is set.
pub fn package_shift() -> u32 {
    let max = __cpuid(0).eax;
    if max >= 0xb {
        let mut shift = None;
        for level in 0..8 {
            let r = __cpuid_count(0xb, level);
            let kind = (r.ecx >> 8) & 0xff;
            if kind == 0 || r.ebx & 0xffff == 0 {
                break;
            }
            shift = Some(r.eax & 0x1f);
        }
        if let Some(s) = shift {
            return s;
        }
    }
    let r = __cpuid(1);
    if r.edx & (1 << 28) == 0 {
        return 0;
    }
    let logical = (r.ebx >> 16) & 0xff;
    if logical <= 1 {
        0
    } else {
        32 - (logical - 1).leading_zeros()
    }
}

/// The package (socket) of an APIC id.
pub fn package_of(apic_id: u32) -> u32 {
    apic_id.checked_shr(package_shift()).unwrap_or(0)
}

/// The CPU's vendor as Linux names it (`Intel`, `AMD`, `Hygon`, `Centaur`), if known.
pub fn vendor() -> Option<&'static str> {
    let v = __cpuid(0);
    let mut vendor_id = [0u8; 12];
    vendor_id[..4].copy_from_slice(&v.ebx.to_le_bytes());
    vendor_id[4..8].copy_from_slice(&v.edx.to_le_bytes());
    vendor_id[8..].copy_from_slice(&v.ecx.to_le_bytes());
    match &vendor_id {
        b"GenuineIntel" => Some("Intel"),
        b"AuthenticAMD" => Some("AMD"),
        b"HygonGenuine" => Some("Hygon"),
        b"CentaurHauls" => Some("Centaur"),
        _ => None,
    }
}

/// `(family, model, stepping)` from CPUID leaf 1, extended fields folded in as
/// Linux's `x86_family` / `x86_model` do.
pub fn signature() -> (u32, u32, u32) {
    let sig = __cpuid(1).eax;
    let mut family = (sig >> 8) & 0xf;
    if family == 0xf {
        family += (sig >> 20) & 0xff;
    }
    let mut model = (sig >> 4) & 0xf;
    if family >= 6 {
        model += ((sig >> 16) & 0xf) << 4;
    }
    (family, model, sig & 0xf)
}

/// Linux's `smpboot: CPU0: VENDOR MODEL (family: 0x.., model: 0x.., stepping: 0x..)`.
pub fn cpu0_line() -> String {
    let vendor = vendor();
    let mut brand = [0u8; 48];
    if __cpuid(0x8000_0000).eax >= 0x8000_0004 {
        for (i, leaf) in (0x8000_0002u32..=0x8000_0004).enumerate() {
            let r = __cpuid(leaf);
            for (j, w) in [r.eax, r.ebx, r.ecx, r.edx].iter().enumerate() {
                brand[i * 16 + j * 4..i * 16 + j * 4 + 4].copy_from_slice(&w.to_le_bytes());
            }
        }
    }
    let end = brand.iter().position(|&b| b == 0).unwrap_or(brand.len());
    let model_id = core::str::from_utf8(&brand[..end]).unwrap_or("").trim();
    let (family, model, stepping) = signature();
    let mut line = String::from("smpboot: CPU0: ");
    if let Some(v) = vendor
        && !model_id.contains(v)
    {
        line.push_str(v);
        line.push(' ');
    }
    if model_id.is_empty() {
        line.push_str(&format!("{family}86"));
    } else {
        line.push_str(model_id);
    }
    line.push_str(&format!(
        " (family: 0x{family:x}, model: 0x{model:x}, stepping: 0x{stepping:x})"
    ));
    line
}
