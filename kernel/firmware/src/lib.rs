//! Hardware-free firmware parsing for the kernel and the host planner: physical memory
//! discovery from the bootloader's memory map (E820/UEFI), the kernel command line's `memmap=`,
//! ACPI tables (RSDP/RSDT/XSDT) and the NFIT, the resulting persistent memory ranges, and the
//! `/proc/iomem` resource tree with the `/dev/mem` policy. Byte slices and ranges in, typed
//! results out; no `unsafe`, no panics on any input, every rejection a `Display`able value that
//! makes one log line. Those lines carry their own subsystem prefix (`ACPI: `, `NFIT: `,
//! `pmem: `, `iomem: `, `devmem: `, `e820 dmesg`) and say what was ignored, so log them as they
//! are.
//!
//! Modules, named after the Linux code they mirror:
//! - [`range`]: `[start, end)` physical ranges, printed `[mem 0x…-0x…]`.
//! - [`e820`]: the E820 table, Linux's sanitizer (`e820__update_table`), add/update/remove,
//!   the zone-setup trim, `BIOS-e820` printing, bootloader region and dmesg conversion.
//! - [`cmdline`]: Linux's command-line tokenizer, `memparse`, `memmap=` and `mem=`.
//! - [`acpi`]: RSDP and root table walk through a [`acpi::PhysRead`] trait, table copy-out.
//! - [`nfit`]: the NFIT parser (SPA ranges, persistent-memory GUID).
//! - [`srat`], [`slit`]: the SRAT (CPU and memory affinity) and SLIT (node distances).
//! - [`madt`]: the MADT (local APICs, x2APICs, I/O APICs, overrides, NMIs) and the CPU list
//!   Linux brings up from it (`smpboot: Allowing N CPUs, M hotplug CPUs`).
//! - [`numa`]: Linux's `x86_numa_init`: nodes, their memory blocks, distances, fallbacks;
//!   [`numa_emulation`]: `numa=fake=N`.
//! - [`pmem`]: the union of E820 and NFIT persistent ranges, refusing those over RAM.
//! - [`iomem`]: the resource tree, `/proc/iomem` printing, `devmem_is_allowed`.
//! - [`setup`]: steps 2, 4, 5 and 6 below in one call, for the kernel and the host planner.
//!
//! # Where this differs from Linux
//!
//! - [`e820::E820Table::sanitize`] clips an entry running past `u64::MAX` and also sanitizes a
//!   one-entry table (Linux leaves such tables untouched), so its output is always sorted and
//!   non-overlapping.
//! - A malformed `memmap=` item changes nothing (Linux may apply part of it) and `memmap=0` is
//!   refused like `mem=0`.
//! - `/proc/iomem` names follow current Linux (`Reserved` with a capital R, `Unusable memory`);
//!   the `RAM buffer` entries Linux adds late in boot are not made.
//! - `/dev/mem` lets RAM in the first 1 MiB be read (Linux returns zeros for it).
//! - UEFI memory attributes are not passed by the bootloader, so every conventional/loader/boot
//!   services range is usable RAM (Linux makes non-write-back ones reserved and `EFI_MEMORY_SP`
//!   ones soft reserved).
//!
//! # Boot flow
//!
//! ```
//! use firmware::{acpi, cmdline, e820, iomem, nfit, pmem, range::PhysRange};
//!
//! // 1. Bootloader regions (start, end exclusive, kind) -> sanitized E820 table.
//! let regions = [
//!     (0x0, 0x9fc00, e820::RegionKind::Usable),
//!     (0x9fc00, 0xa0000, e820::RegionKind::UnknownBios(2)),
//!     (0xf0000, 0x100000, e820::RegionKind::UnknownBios(2)),
//!     (0x100000, 0x400000, e820::RegionKind::Usable),
//!     (0x400000, 0x800000, e820::RegionKind::Bootloader),
//!     (0x800000, 0x1ffe0000, e820::RegionKind::Usable),
//!     (0x1ffe0000, 0x20000000, e820::RegionKind::UnknownBios(2)),
//! ];
//! let boot = e820::e820_from_regions(regions);
//! let mut map = boot.e820;
//! map.log("BIOS-e820"); // the kernel logs `BIOS-e820: [mem …] usable` lines
//! // boot.bootloader: RAM in use, to keep reserved in the page allocator.
//!
//! // 2. memmap= from the command line (Linux's early parameters), then the user map.
//! let report = cmdline::apply_memmap("console=ttyS0 memmap=64M!256M", &mut map);
//! report.log(&map); // refused items, then `user-defined physical RAM map:` + `user:` lines
//! assert!(report.user_defined());
//!
//! // 3. ACPI: RSDP -> RSDT/XSDT -> NFIT (the kernel implements PhysRead over its mapping).
//! let mem = acpi::MemImage::new(); // nothing readable here
//! let mut spa_ranges = Vec::new();
//! match acpi::read_root(&mem, 0xf5a40) {
//!     Ok(root) => {
//!         root.problems.iter().for_each(|p| log::warn!("{p}"));
//!         match root.find(&mem, acpi::Signature::NFIT) {
//!             Ok(Some((_pa, bytes))) => match nfit::parse_nfit(&bytes) {
//!                 Ok(table) => {
//!                     table.problems.iter().for_each(|p| log::warn!("{p}"));
//!                     spa_ranges = table.spa_ranges;
//!                 }
//!                 Err(e) => log::warn!("{e}"),
//!             },
//!             Ok(None) => {}
//!             Err(e) => log::warn!("{e}"),
//!         }
//!     }
//!     Err(e) => log::warn!("{e}"),
//! }
//!
//! // 4. Persistent ranges: E820 7/12 + NFIT, refusing any over RAM.
//! let (pmem, rejected) = pmem::collect_persistent(&map, &spa_ranges);
//! rejected.iter().for_each(|r| log::warn!("{r}"));
//! assert_eq!(pmem[0].range, PhysRange::new(0x1000_0000, 0x1400_0000));
//!
//! // 5. Zone setup: reserve page 0, drop the BIOS hole; zones come from usable_pages().
//! map.trim_for_zones();
//! let first = map.usable_pages().next().unwrap();
//! assert_eq!(first, PhysRange::new(0x1000, 0x9f000));
//!
//! // 6. The /proc/iomem tree, the kernel image under System RAM, and the /dev/mem policy.
//! let (mut tree, conflicts) = iomem::IomemTree::from_e820(&map, &pmem);
//! assert!(conflicts.is_empty());
//! let code = iomem::Resource::new(
//!     PhysRange::new(0x400000, 0x500000),
//!     "Kernel code",
//!     iomem::ResourceKind::Kernel,
//! );
//! tree.insert(code).unwrap();
//! assert!(tree.to_string().contains("10000000-13ffffff : Persistent Memory (legacy)"));
//! assert!(iomem::devmem_is_allowed(&tree, 0x1000_0000, 8).is_err()); // pmem below RAM
//! assert!(iomem::devmem_is_allowed(&tree, 0xf0000, 16).is_ok()); // first 1 MiB
//! ```
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod acpi;
pub mod cmdline;
pub mod e820;
pub mod iomem;
pub mod madt;
pub mod movable;
pub mod nfit;
pub mod numa;
pub mod numa_emulation;
pub mod pmem;
pub mod range;
pub mod setup;
pub mod slit;
pub mod srat;

#[cfg(test)]
mod tests;
