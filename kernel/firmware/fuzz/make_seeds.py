#!/usr/bin/env python3
"""Writes the committed seed corpora of the firmware fuzz targets (corpus/<target>/<name>).

Realistic inputs: QEMU's SeaBIOS and OVMF memory maps, a laptop map, the NFIT QEMU builds
for an NVDIMM (REFERENCE.md section 4: SPA range, region mapping, control region, platform
capabilities), RSDP/RSDT/XSDT layouts as SeaBIOS and OVMF place them, and Linux command
lines with memmap=/mem=. Run it from anywhere: `python3 kernel/firmware/fuzz/make_seeds.py`.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
PM_GUID = bytes.fromhex("79d3f066f3b47440ac430d3318b78cdb")
VOLATILE_GUID = bytes.fromhex("4f940573dafde344b16c3f22d252e5d0")


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- e820: u16 cmdline length, cmdline, regions (start u64, end u64, kind u8, type u32) ----
USABLE, BOOTLOADER, BIOS, UEFI = 0, 1, 2, 3


def regions(rs):
    return b"".join(struct.pack("<QQBI", s, e, k, t) for s, e, k, t in rs)


def e820_seed(cmdline, rs):
    c = cmdline.encode()
    return struct.pack("<H", len(c)) + c + regions(rs)


SEABIOS_512M = [
    (0x0, 0x9FC00, USABLE, 0),
    (0x9FC00, 0xA0000, BIOS, 2),
    (0xF0000, 0x100000, BIOS, 2),
    (0x100000, 0x400000, USABLE, 0),
    (0x400000, 0x800000, BOOTLOADER, 0),
    (0x800000, 0x1FFE0000, USABLE, 0),
    (0x1FFE0000, 0x20000000, BIOS, 2),
    (0xFEFFC000, 0xFF000000, BIOS, 2),
    (0xFFFC0000, 0x100000000, BIOS, 2),
    (0xFD00000000, 0x10000000000, BIOS, 2),
]
write("e820", "qemu_seabios_512m", e820_seed("", SEABIOS_512M))
write("e820", "qemu_seabios_memmap_pmem", e820_seed("console=ttyS0 memmap=64M!256M", SEABIOS_512M))
write(
    "e820",
    "qemu_seabios_6g_pmem_e820_7",
    e820_seed(
        "mem=5G",
        [
            (0x0, 0x9FC00, USABLE, 0),
            (0x9FC00, 0xA0000, BIOS, 2),
            (0xF0000, 0x100000, BIOS, 2),
            (0x100000, 0xBFFE0000, USABLE, 0),
            (0xBFFE0000, 0xC0000000, BIOS, 2),
            (0xFEFFC000, 0xFF000000, BIOS, 2),
            (0xFFFC0000, 0x100000000, BIOS, 2),
            (0x100000000, 0x1C0000000, USABLE, 0),
            (0x1C0000000, 0x1C8000000, BIOS, 7),
        ],
    ),
)
# OVMF: the bootloader hands UEFI memory types (conventional 7, boot services 3/4, ACPI 9/10,
# reserved 0, MMIO 11, persistent 14).
write(
    "e820",
    "qemu_ovmf_uefi",
    e820_seed(
        "memmap=exactmap,640K@0,510M@1M",
        [
            (0x0, 0xA0000, USABLE, 0),
            (0x100000, 0x800000, USABLE, 0),
            (0x800000, 0x808000, UEFI, 10),
            (0x808000, 0x810000, USABLE, 0),
            (0x810000, 0x900000, UEFI, 10),
            (0x900000, 0x1E000000, USABLE, 0),
            (0x1E000000, 0x1E800000, UEFI, 4),
            (0x1E800000, 0x1F000000, UEFI, 3),
            (0x1F000000, 0x1F800000, BOOTLOADER, 0),
            (0x1F800000, 0x1FB00000, UEFI, 9),
            (0x1FB00000, 0x1FF78000, UEFI, 0),
            (0x1FF78000, 0x20000000, UEFI, 10),
            (0xFFC00000, 0x100000000, UEFI, 11),
            (0x100000000, 0x108000000, UEFI, 14),
        ],
    ),
)
write(
    "e820",
    "laptop_overlaps",
    e820_seed(
        "memmap=4G%0x100000000-1+12 memmap=1M$0x9f000",
        [
            (0x0, 0x9F000, USABLE, 0),
            (0x9F000, 0x100000, BIOS, 2),
            (0x100000, 0x9B00000, USABLE, 0),
            (0x9B00000, 0x9E00000, BIOS, 2),
            (0x9F00000, 0x9F3D000, BIOS, 4),
            (0x9F3D000, 0xC9CD0000, USABLE, 0),
            (0xC9000000, 0xCBE30000, BIOS, 2),  # overlaps the usable range before it
            (0xCBE30000, 0xCBE9D000, BIOS, 3),
            (0xCBE9D000, 0xCBF9D000, BIOS, 4),
            (0x100000000, 0x42F340000, USABLE, 0),
            (0x42F340000, 0x470200000, BIOS, 0xEFFFFFFF),
            (0x470200000, 0x470300000, BIOS, 12),
            (0x470300000, 0x470400000, BIOS, 12),
            (0xFFFFFFFFFFFFF000, 0xFFFFFFFFFFFFFFFF, BIOS, 5),
        ],
    ),
)


# ---- nfit: mode byte (bit 0 fix length, bit 1 fix checksum), then the table ----
def checksum_fix(t):
    t = bytearray(t)
    t[9] = 0
    t[9] = (-sum(t)) & 0xFF
    return bytes(t)


def sdt(sig, revision, body, oem=b"BOCHS ", table_id=b"BXPC    "):
    h = sig + struct.pack("<IBB", 36 + len(body), revision, 0) + oem + table_id
    h += struct.pack("<I", 1) + b"BXPC" + struct.pack("<I", 1)
    return checksum_fix(h + body)


def spa(index, guid, base, length, cookie=None, flags=3):
    s = struct.pack("<HHHHII", 0, 64 if cookie is not None else 56, index, flags, 0, 0)
    s += guid + struct.pack("<QQQ", base, length, 0x8008)
    if cookie is not None:
        s += struct.pack("<Q", cookie)
    return s


def memdev(handle, spa_index, dcr_index, size):
    # Memory device to SPA range map (type 1, 48 bytes), as QEMU fills it.
    return struct.pack(
        "<HHIHHHHQQQHHH",
        1, 48, handle, 0, 0, spa_index, dcr_index, size, 0, 0, 0, 1, 0,
    ) + b"\0\0"


def dcr(index, serial):
    # NVDIMM control region (type 4, 80 bytes): vendor 0x8086, device 1, revision 1.
    s = struct.pack("<HHHHHHBB", 4, 80, index, 0x8086, 0x0001, 0x0001, 0, 0)
    s += struct.pack("<HH", 0, 0) + b"\0" * 2 + struct.pack("<I", serial)
    s += struct.pack("<HH", 0x0201, 0)  # format interface code, windows
    s += b"\0" * (80 - len(s))
    return s


def platform_caps():
    # Platform capabilities (type 7, 16 bytes): CPU cache flush on power loss.
    return struct.pack("<HHB3sI4s", 7, 16, 1, b"\0\0\0", 3, b"\0\0\0\0")


def nfit(subtables):
    return sdt(b"NFIT", 1, b"\0" * 4 + b"".join(subtables))


QEMU_NFIT = nfit([spa(2, PM_GUID, 0x100000000, 128 << 20), memdev(1, 2, 3, 128 << 20), dcr(3, 0x123456)])
QEMU_NFIT_2 = nfit(
    [
        spa(2, PM_GUID, 0x100000000, 128 << 20),
        memdev(1, 2, 3, 128 << 20),
        dcr(3, 0x123456),
        spa(4, PM_GUID, 0x108000000, 256 << 20),
        memdev(2, 4, 5, 256 << 20),
        dcr(5, 0x123457),
        platform_caps(),
    ]
)
write("nfit", "qemu_nvdimm_128m", b"\0" + QEMU_NFIT)
write("nfit", "qemu_two_nvdimms_caps", b"\0" + QEMU_NFIT_2)
write(
    "nfit",
    "acpi64_cookie_volatile",
    b"\0" + nfit([spa(1, PM_GUID, 0x200000000, 1 << 30, cookie=0x1234), spa(2, VOLATILE_GUID, 0x240000000, 1 << 30)]),
)
bad_sum = bytearray(QEMU_NFIT)
bad_sum[9] ^= 0x55
write("nfit", "bad_checksum", b"\0" + bytes(bad_sum))
write("nfit", "truncated_fixups", b"\3" + QEMU_NFIT[:100])
write("nfit", "zero_length_subtable", b"\0" + nfit([spa(2, PM_GUID, 0x100000000, 1 << 27), struct.pack("<HH", 4, 0) + b"\0" * 12]))
write("nfit", "above_2_52", b"\0" + nfit([spa(2, PM_GUID, 1 << 52, 1 << 27), spa(3, PM_GUID, 0xFFFFFFFFFFFFF000, 0x2000)]))
write("nfit", "over_ram", b"\0" + nfit([spa(2, PM_GUID, 0x10000000, 64 << 20)]))
# What fwts's nfit test flags (warnings only): reserved fields and bits, range index 0,
# attributes outside EFI_MEMORY_*, wrong lengths, an interleave table with no lines and line
# size 0, a flush hint array shorter than its count, an unknown type, table revision 2.
FWTS_WARNINGS = bytearray(
    sdt(
        b"NFIT",
        2,
        b"\1\0\0\0"
        + b"".join(
            [
                spa(0, PM_GUID, 0x100000000, 128 << 20, flags=0x8003)[:48]
                + struct.pack("<Q", 0x8008 | (1 << 40)),
                memdev(1, 2, 3, 128 << 20)[:44] + struct.pack("<HH", 0x80, 1),
                struct.pack("<HHHHII", 2, 16, 1, 0, 0, 0),
                struct.pack("<HHIH6s", 6, 16, 1, 3, b"\0" * 6),
                struct.pack("<HH", 9, 8) + b"\0" * 4,
            ]
        ),
    )
)
write("nfit", "fwts_warnings", b"\0" + bytes(FWTS_WARNINGS))


# ---- acpi: chunks (addr u64, fix u8, len u16, bytes) ----
def chunk(addr, data, fix=0):
    return struct.pack("<QBH", addr, fix, len(data)) + data


def rsdp(revision, rsdt, xsdt=0, oem=b"BOCHS "):
    r = bytearray(b"RSD PTR " + b"\0" + oem + bytes([revision]) + struct.pack("<I", rsdt))
    r[8] = (-sum(r[:20])) & 0xFF
    if revision >= 2:
        r += struct.pack("<IQB3s", 36, xsdt, 0, b"\0\0\0")
        r[32] = (-sum(r[:36])) & 0xFF
    return bytes(r)


FACP = sdt(b"FACP", 1, b"\0" * 80)
APIC = sdt(b"APIC", 1, struct.pack("<II", 0xFEE00000, 1) + bytes([0, 8, 0, 0, 1, 0, 0, 0]))
# SeaBIOS: RSDP v0 at 0xf5a40, RSDT near the top of RAM listing FACP, APIC, NFIT.
seabios_rsdt = sdt(b"RSDT", 1, struct.pack("<III", 0x1FFE1000, 0x1FFE2000, 0x1FFE3000))
write(
    "acpi",
    "seabios_rsdt_nfit",
    chunk(0xF5A40, rsdp(0, 0x1FFE0000))
    + chunk(0x1FFE0000, seabios_rsdt)
    + chunk(0x1FFE1000, FACP)
    + chunk(0x1FFE2000, APIC)
    + chunk(0x1FFE3000, QEMU_NFIT),
)
# The same found by scanning the BIOS area (fix bit 3: addr % 0x2000 * 16 + 0xe0000).
write(
    "acpi",
    "seabios_scan",
    chunk((0xF5A40 - 0xE0000) // 16, rsdp(0, 0x1FFE0000), fix=8)
    + chunk(0x1FFE0000, seabios_rsdt)
    + chunk(0x1FFE3000, QEMU_NFIT_2),
)
# OVMF: RSDP v2 (address passed by UEFI), XSDT with 64-bit entries, RSDT too.
ovmf_xsdt = sdt(b"XSDT", 1, struct.pack("<QQQ", 0x1FB7D000, 0x1FB7C000, 0x1FB7B000))
ovmf_rsdt = sdt(b"RSDT", 1, struct.pack("<III", 0x1FB7D000, 0x1FB7C000, 0x1FB7B000))
write(
    "acpi",
    "ovmf_xsdt_nfit",
    chunk(0x1FB7E014, rsdp(2, 0x1FB7F000, 0x1FB7E0E8, oem=b"INTEL "))
    + chunk(0x1FB7E0E8, ovmf_xsdt)
    + chunk(0x1FB7F000, ovmf_rsdt)
    + chunk(0x1FB7D000, FACP)
    + chunk(0x1FB7C000, APIC)
    + chunk(0x1FB7B000, QEMU_NFIT),
)
# A broken XSDT (bad checksum) falls back to the RSDT; a pointer loop; fix-up bits in use.
broken_xsdt = bytearray(ovmf_xsdt)
broken_xsdt[9] ^= 1
loop_rsdt = sdt(b"RSDT", 1, struct.pack("<IIII", 0x2000, 0x3000, 0x3000, 0x1000))
write(
    "acpi",
    "broken_xsdt_loop",
    chunk(0x40000, rsdp(2, 0x1000, 0x5000))
    + chunk(0x5000, bytes(broken_xsdt))
    + chunk(0x1000, loop_rsdt)
    + chunk(0x2000, FACP)
    + chunk(0x3000, bytes(QEMU_NFIT[:60]) + b"\xff" * 8, fix=3),
)
# EBDA pointer at 0x40e, RSDP in the EBDA.
write(
    "acpi",
    "ebda_rsdp",
    chunk(0x40E, struct.pack("<H", 0x9FC0))
    + chunk(0x9FC00, b"\0" * 0x40 + rsdp(0, 0x7000) + b"\0" * (1024 - 0x40 - 20))
    + chunk(0x7000, sdt(b"RSDT", 1, struct.pack("<I", 0x8000)))
    + chunk(0x8000, QEMU_NFIT),
)

# ---- cmdline: the string itself ----
for name, line in [
    ("memmap_pmem", "memmap=64M!256M"),
    ("qemu_default", "console=ttyS0 earlyprintk=serial loglevel=8"),
    ("memmap_forms", "memmap=exactmap,640K@0,511M@1M memmap=4K#0x9f000 memmap=1M$0xf00000 mem=256M"),
    ("memmap_retype", "memmap=4G%0x100000000-1+12 memmap=16M%0x1000000-1 memmap=1M%0x2000000+2"),
    ("memmap_limit_hex", "memmap=0x20000000 mem=0x1fffffff memparse=1E"),
    ("quotes_and_init", 'root=/dev/vda "memmap=1G!4G" dyndbg="file e820.c +p" -- memmap=1G!5G'),
    ("errors", "memmap=64M?256M memmap=0!1G mem= mem=nopentium memmap=18446744073709551615@1 memmap"),
    ("dashes", "mem-map=1 memmap=128M!0x100000000,128M!0x108000000 mem=6G"),
    ("movable", "movablecore=256M kernelcore=1G movablecore=25% kernelcore=10% movable_node"),
    ("movable_errors", "kernelcore=mirror kernelcore=1G,mirror movablecore=150% movablecore=abc kernelcore movable-core=0x40000000 movablecore=20E"),
]:
    write("cmdline", name, line.encode())


# ---- srat / slit: mode byte (bit 0 fix length, bit 1 fix checksum, srat bit 2 numa=off),
# then the table, as QEMU emits them (REFERENCE.md 2b) ----
def srat_cpu(pxm, apic, flags=1):
    return struct.pack("<BBBBIB3sI", 0, 16, pxm & 0xFF, apic, flags, 0,
                       struct.pack("<I", pxm >> 8)[:3], 0)


def srat_x2apic(pxm, apic, flags=1):
    return struct.pack("<BBHIIIII", 2, 24, 0, pxm, apic, flags, 0, 0)


def srat_mem(pxm, base, length, flags=1):
    return struct.pack("<BBIHQQIIQ", 1, 40, pxm, 0, base, length, 0, flags, 0)


def srat(revision, subs):
    return sdt(b"SRAT", revision, struct.pack("<IQ", 1, 0) + b"".join(subs))


def slit(n, d):
    return sdt(b"SLIT", 1, struct.pack("<Q", n) + bytes(d))


G = 1 << 30
M = 1 << 20
two_nodes = [srat_cpu(0, 0), srat_cpu(1, 1), srat_mem(0, 0, 0xA0000),
             srat_mem(0, 0x100000, 0x1FF00000), srat_mem(1, 0x20000000, 0x20000000)]
write("srat", "qemu_two_nodes", b"\0" + srat(1, two_nodes))
write("srat", "qemu_nvdimm_one_node", b"\0" + srat(1, [
    srat_cpu(0, 0), srat_mem(0, 0, 0xA0000), srat_mem(0, 0x100000, 0x1FF00000),
    srat_mem(0, 0x100000000, 128 * M, 1 | 4), srat_mem(0, 0x100000000, 2 * G, 1 | 2)]))
write("srat", "four_nodes_memoryless_pci_hole", b"\0" + srat(3, [
    srat_x2apic(0, 0), srat_x2apic(1, 1), srat_x2apic(2, 2), srat_x2apic(3, 3),
    srat_mem(0, 0, 0xA0000), srat_mem(0, 0x100000, 0xBFF00000),
    srat_mem(1, 0x100000000, G), srat_mem(2, 0x140000000, 2 * G),
    srat_mem(2, 0x200000000, 128 * M, 1 | 4), srat_mem(3, 0x300000000, 4 * G, 0)]))
write("srat", "overlap_and_disabled", b"\0" + srat(2, [
    srat_cpu(5, 0), srat_cpu(6, 1, 0), srat_mem(5, 0, 2 * G), srat_mem(6, G, 2 * G),
    bytes([5, 32]) + bytes(30)]))
write("srat", "numa_off", b"\4" + srat(1, two_nodes))
write("srat", "numa_fake_4", b"\x38" + srat(1, two_nodes))
write("srat", "truncated_fix_length", b"\3" + srat(1, two_nodes)[:-7])
write("slit", "two_nodes_21", b"\0" + slit(2, [10, 21, 21, 10]))
write("slit", "four_nodes", b"\0" + slit(4, [10, 20, 30, 40, 20, 10, 20, 30,
                                           30, 20, 10, 20, 40, 30, 20, 10]))
write("slit", "bad_diagonal", b"\0" + slit(2, [10, 21, 21, 11]))
write("slit", "wrong_size_fixed", b"\3" + slit(3, [10, 21, 21, 10]))

# The tables QEMU built for Linux reference runs (dumped in the guest from
# /sys/firmware/acpi/tables; the host tests compare against that Linux's dmesg).
DATA = os.path.join(HERE, "..", "src", "tests", "data")
for target, name in [("srat", "qemu_two_nodes_SRAT"), ("srat", "qemu_four_nodes_nvdimm_SRAT"),
                     ("slit", "qemu_two_nodes_SLIT")]:
    with open(os.path.join(DATA, name + ".bin"), "rb") as f:
        write(target, "linux_ref_" + name, b"\0" + f.read())


# ---- madt: mode byte (bit 0 fix length, bit 1 fix checksum, bit 2 x2APIC mode, bits 3-4
# online-capable rule, bits 5-7 NR_CPUS and boot APIC id), then the table, as QEMU's
# acpi_build_madt emits it ----
def madt_lapic(acpi_id, apic_id, flags=1):
    return struct.pack("<BBBBI", 0, 8, acpi_id, apic_id, flags)


def madt_ioapic(ioapic_id, address, gsi_base):
    return struct.pack("<BBBBII", 1, 12, ioapic_id, 0, address, gsi_base)


def madt_iso(irq, gsi, flags):
    return struct.pack("<BBBBIH", 2, 10, 0, irq, gsi, flags)


def madt_lapic_nmi(acpi_id, flags, lint):
    return struct.pack("<BBBHB", 4, 6, acpi_id, flags, lint)


def madt_x2apic(apic_id, flags, uid):
    return struct.pack("<BBHIII", 9, 16, 0, apic_id, flags, uid)


def madt_x2apic_nmi(uid, flags, lint):
    return struct.pack("<BBHIB3s", 0xA, 12, flags, uid, lint, b"\0\0\0")


def madt(revision, subs, lapic_addr=0xFEE00000, flags=1):
    return sdt(b"APIC", revision, struct.pack("<II", lapic_addr, flags) + b"".join(subs))


def qemu_madt_subs(n, present):
    # One local APIC per possible CPU (acpi_id = apic_id), the I/O APIC, IRQ0 -> GSI 2,
    # IRQs 5, 9, 10, 11 active high level (flags 0xd), LINT1 NMI for all processors.
    subs = [madt_lapic(i, i, 1 if i < present else 0) for i in range(n)]
    subs.append(madt_ioapic(0, 0xFEC00000, 0))
    subs.append(madt_iso(0, 2, 0))
    subs += [madt_iso(irq, irq, 0xD) for irq in (5, 9, 10, 11)]
    subs.append(madt_lapic_nmi(0xFF, 0, 1))
    return subs


QEMU_SMP4 = madt(1, qemu_madt_subs(4, 4))
write("madt", "qemu_smp4", b"\x20" + QEMU_SMP4)
write("madt", "qemu_smp2_maxcpus4", b"\x40" + madt(1, qemu_madt_subs(4, 2)))
write("madt", "x2apic_ids_rev5", b"\x64" + madt(5, [
    madt_x2apic(0, 1, 0), madt_x2apic(0x100, 1, 1), madt_x2apic(0x101, 2, 2),
    madt_x2apic(0xFFFFFFFF, 1, 3), madt_x2apic_nmi(0xFFFFFFFF, 0, 1),
    madt_ioapic(0, 0xFEC00000, 0)]))
write("madt", "all_types", b"\xe0" + madt(4, [
    madt_lapic(0, 0), madt_lapic(1, 1, 0), madt_lapic(2, 2, 2), madt_lapic(3, 0xFF),
    madt_ioapic(2, 0xFEC00000, 24), madt_iso(9, 9, 0x10D),
    struct.pack("<BBHI", 3, 8, 0xF, 7), madt_lapic_nmi(0, 0xF, 0),
    struct.pack("<BBHQ", 5, 12, 0, 0xFEE01000), madt_x2apic(7, 1, 7),
    bytes([0xB, 80]) + bytes(78)]))
write("madt", "duplicates_and_limit", b"\x20" + madt(1, [madt_lapic(i, i % 5, 1) for i in range(12)]
                                                   + [madt_ioapic(0, 0xFEC00000, 0)]))
write("madt", "short_lapic", b"\0" + madt(1, [madt_lapic(0, 0), madt_lapic(1, 1)[:6].replace(b"\0\x08", b"\0\x06", 1)]))
write("madt", "zero_length", b"\0" + madt(1, [madt_lapic(0, 0), b"\x11\0\0\0"]))
write("madt", "truncated_fix_length", b"\3" + QEMU_SMP4[:-3])
bad_madt = bytearray(QEMU_SMP4)
bad_madt[40] ^= 1
write("madt", "bad_checksum", b"\0" + bytes(bad_madt))

# The QEMU -smp 4 layout above as a host-test fixture (hand-built to QEMU's documented
# layout: no captured dump was available).
with open(os.path.join(DATA, "qemu_smp4_APIC_handbuilt.bin"), "wb") as f:
    f.write(QEMU_SMP4)
