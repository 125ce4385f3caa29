//! Hardware-free serial shell: a line editor with history, number parsing and the
//! command parser of the kernel's serial console.
//!
//! The kernel owns the UART and the memory manager; this crate only turns bytes into
//! echo output and complete lines ([`line::Editor`]), and lines into commands
//! ([`command::parse`]). Nothing here allocates, and no input can make it panic.
//!
//! # Driving it from the kernel
//!
//! ```
//! use shell::command::{self, Command};
//! use shell::line::{Editor, Event};
//!
//! let mut editor = Editor::new();
//! let mut out = Vec::new(); // stands for the UART
//! for &byte in b"alloc 3 dma32\r\n" {
//!     let event = editor.feed(byte);
//!     out.extend(event.echo()); // always write the echo first
//!     match event {
//!         Event::Line(line) => match command::parse(line) {
//!             Ok(Command::Alloc { order, zone, .. }) => {
//!                 assert_eq!((order, zone), (3, Some(command::Zone::Dma32)));
//!             }
//!             Ok(_) => unreachable!(),
//!             Err(error) => println!("{error}"), // one line, then the prompt
//!         },
//!         Event::TooLong => println!("{}", shell::line::TOO_LONG),
//!         Event::Cancel => {} // print the prompt again
//!         _ => {}
//!     }
//! }
//! assert_eq!(out, b"alloc 3 dma32\r\n");
//! ```
//!
//! Keep one [`line::Editor`] for the console (it is `const`-constructible, about 5 KiB,
//! for a `static`). For [`command::Command::Help`] print
//! [`help::help_lines`]`(topic)` one [`help::Spec`] per line, then
//! [`help::HELP_NOTES`] when there is no topic. To print a log message while a line
//! is being typed, start a new line, print the message, then the prompt and
//! [`line::Editor::line`] again, so output never lands in the middle of the input.
//!
//! # Testing
//!
//! `cargo test -p shell` and `cargo miri test -p shell` from the repository root;
//! `kernel/shell/fuzz/fuzz.sh run line_parser -- -max_total_time=60` runs the
//! libFuzzer target (cargo-fuzz must not start inside `kernel/`, see that script).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// The console's prompt; the host runner waits for it, so both use this one constant.
pub const PROMPT: &str = "zoned> ";

mod args;
pub mod command;
pub mod echo;
pub mod error;
pub mod help;
pub mod history;
pub mod line;
pub mod num;
