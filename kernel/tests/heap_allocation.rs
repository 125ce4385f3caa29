//! The heap: boxes, vectors, reuse of freed memory, and growth well past the
//! initial mapping (a large Vec needs no static array).
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(kernel::testing::test_runner)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

use alloc::boxed::Box;
use alloc::vec::Vec;

kernel::test_kernel!();

#[test_case]
fn simple_box() {
    let a = Box::new(41);
    let b = Box::new(1);
    assert_eq!(*a + *b, 42);
}

#[test_case]
fn freed_memory_is_reused() {
    let (size_before, _) = kernel::heap::stats();
    for i in 0..10_000u64 {
        let x = Box::new([i; 32]);
        assert_eq!(x[31], i);
    }
    let (size_after, _) = kernel::heap::stats();
    assert_eq!(
        size_before, size_after,
        "the heap grew although every box was freed"
    );
}

#[test_case]
fn large_vec_grows_the_heap() {
    let (size_before, _) = kernel::heap::stats();
    let n = 4 << 20; // 32 MiB of u64
    let mut v: Vec<u64> = Vec::with_capacity(n);
    for i in 0..n as u64 {
        v.push(i);
    }
    assert_eq!(v.iter().sum::<u64>(), (n as u64 - 1) * n as u64 / 2);
    let (size_after, _) = kernel::heap::stats();
    assert!(
        size_after >= size_before + 32 * (1 << 20),
        "heap did not grow: {size_after}"
    );
}
