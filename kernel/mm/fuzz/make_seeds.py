#!/usr/bin/env python3
"""Writes the committed seed corpus of the buddy fuzz target (corpus/buddy/<name>).

Each seed is a sequence of operations in the target's encoding (see fuzz_targets/buddy.rs):
alloc (0, order, gfp), free (3, index), bogus free (5, sel, delta u16, order, [u16 | u32]),
get_page (6, sel, offset u32), put_page (7, sel, offset u32), memremap (8, slot, len),
hot-add (9, slot, len), drain (10), exhaust (11, order, gfp). Run it from anywhere:
`python3 kernel/mm/fuzz/make_seeds.py`.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
DMA, DMA32, ZERO, HIGH, MEMALLOC = 1, 2, 4, 8, 16


def alloc(order, gfp=0):
    return bytes([0, order, gfp])


def free(i):
    return bytes([3, i])


def bogus(sel, delta, order, extra=b""):
    return bytes([5, sel]) + struct.pack("<H", delta) + bytes([order]) + extra


def get(sel, off):
    return bytes([6, sel]) + struct.pack("<I", off)


def put(sel, off):
    return bytes([7, sel]) + struct.pack("<I", off)


def memremap(slot, length):
    return bytes([8, slot, length])


def hotadd(slot, length):
    return bytes([9, slot, length])


DRAIN = bytes([10])


def exhaust(order_sel, gfp):
    return bytes([11, order_sel, gfp])


seeds = {
    "mixed_orders": b"".join(
        [alloc(o, g) for o, g in [(0, 0), (1, DMA), (3, DMA32), (10, 0), (0, ZERO), (5, HIGH), (9, MEMALLOC), (2, DMA | ZERO)]]
        + [free(0), free(2), free(1), DRAIN, alloc(0), alloc(0), free(5)]
    ),
    "device_lifetime": b"".join(
        [get(0, 0), get(0, 0), get(0, 77), put(0, 0), put(0, 0), put(0, 0), put(0, 77), put(0, 77)]
        + [bogus(1, 0, 0, struct.pack("<H", 5)), bogus(1, 0, 3, struct.pack("<H", 8))]
    ),
    "memremap_below_and_above_ram": b"".join(
        [memremap(0, 1), memremap(4, 3 | 0x80), memremap(3 + 4 * 48, 7), memremap(1, 2), memremap(2, 31 | 0x80)]
        + [get(1, 100), get(2, 5), alloc(4), exhaust(0, MEMALLOC), put(1, 100), put(2, 5), memremap(0, 0x40)]
    ),
    "hotplug": b"".join(
        [hotadd(1, 3), alloc(10), alloc(0), hotadd(2, 63), alloc(10), hotadd(0, 1), alloc(0, DMA32), hotadd(4, 0x40)]
        + [memremap(1, 1), hotadd(1, 1), free(0), free(0), DRAIN]
    ),
    "exhaustion": b"".join(
        [exhaust(0, DMA), exhaust(5, DMA32), exhaust(5, 0), exhaust(0, MEMALLOC | DMA)]
        + [alloc(0, DMA), alloc(0, DMA | HIGH), alloc(0, DMA | MEMALLOC), free(3), free(7), DRAIN]
    ),
    "bogus_frees": b"".join(
        [alloc(3), alloc(0), bogus(0, 0, 2), bogus(0, 0, 11), bogus(0, 1, 0), free(0)]
        + [bogus(0, 0, 0), bogus(2, 0x100, 0, struct.pack("<I", 0x100)), bogus(2, 0, 0, struct.pack("<I", 0x9f))]
        + [bogus(2, 0, 0, struct.pack("<I", 0xFFFFFFFF)), get(0x80, 0), get(0x80, 0), put(0x80, 0), put(0x80, 0), put(0x80, 0)]
    ),
}
d = os.path.join(HERE, "corpus", "buddy")
os.makedirs(d, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)
