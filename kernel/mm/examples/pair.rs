//! 10 million order-0 alloc/free pairs and 200 000 mixed-order operations on a 1 GiB node:
//! a fixed workload for instruction counts (`valgrind --tool=callgrind` or `perf stat`),
//! which, unlike times, repeat exactly.
use std::hint::black_box;

use mm::Gfp;
use mm::testing::node;

const GIB: u64 = 1 << 30;

fn main() {
    let n = node(&[(4 * GIB, 5 * GIB + (16 << 20))], &[]);
    for _ in 0..10_000_000 {
        let p = n.alloc_pages(black_box(Gfp::KERNEL), 0).unwrap();
        n.free_pages(black_box(p), 0).unwrap();
    }
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut live: Vec<(u64, u32)> = Vec::new();
    for _ in 0..200_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if x % 2 == 0 || live.is_empty() {
            let order = (x >> 8) as u32 % 11;
            if let Some(p) = n.alloc_pages(Gfp::KERNEL | Gfp::NOWARN, order) {
                live.push((p, order));
            }
        } else {
            let (p, o) = live.swap_remove((x >> 16) as usize % live.len());
            n.free_pages(p, o).unwrap();
        }
    }
    println!("{} blocks held", live.len());
}
