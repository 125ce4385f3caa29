#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod acpi;
pub mod cmdline;
pub mod e820;
pub mod nfit;
pub mod range;
