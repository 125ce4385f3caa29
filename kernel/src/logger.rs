//! The kernel log: the `log` facade printed the way Linux's dmesg reads
//! (`[    0.123456] message`, seconds since boot from the TSC), and kept in a ring
//! buffer for the shell's `dmesg` command. Warnings and errors carry a level tag
//! (and are yellow and red on the framebuffer console).
use core::fmt::{self, Write};
use log::{Level, LevelFilter, Metadata, Record};
use spin::Mutex;

/// Bytes of log text kept for `dmesg` (Linux's default is 128 KiB; a hobby kernel
/// needs less). Oldest lines are dropped first.
const LOG_BUF_LEN: usize = 64 * 1024;

struct Ring {
    buf: [u8; LOG_BUF_LEN],
    /// Next write position.
    head: usize,
    /// Whether the buffer has wrapped at least once.
    wrapped: bool,
}

impl Ring {
    fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.buf[self.head] = b;
            self.head += 1;
            if self.head == LOG_BUF_LEN {
                self.head = 0;
                self.wrapped = true;
            }
        }
    }
}

impl Write for Ring {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push(s.as_bytes());
        Ok(())
    }
}

static RING: Mutex<Ring> = Mutex::new(Ring {
    buf: [0; LOG_BUF_LEN],
    head: 0,
    wrapped: false,
});

struct KernelLogger;

static LOGGER: KernelLogger = KernelLogger;

impl log::Log for KernelLogger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let ns = crate::tsc::uptime_ns();
        let (secs, usecs) = (ns / 1_000_000_000, (ns / 1000) % 1_000_000);
        let (tag, colour) = match record.level() {
            Level::Error => ("error: ", crate::fbcon::Colour::Error),
            Level::Warn => ("warning: ", crate::fbcon::Colour::Warning),
            _ => ("", crate::fbcon::Colour::Normal),
        };
        let mut ring = RING.lock();
        let _ = writeln!(ring, "[{secs:5}.{usecs:06}] {tag}{}", record.args());
        drop(ring);
        crate::serial::write_log(
            colour,
            format_args!("[{secs:5}.{usecs:06}] {tag}{}\n", record.args()),
        );
    }

    fn flush(&self) {}
}

/// Log `args` at info level from a handler that may have interrupted the logger
/// or the console (the breakpoint handler): each lock is only tried, and the ring
/// or the console whose lock is held misses the line instead of deadlocking.
pub fn try_log(args: fmt::Arguments) {
    let ns = crate::tsc::uptime_ns();
    let (secs, usecs) = (ns / 1_000_000_000, (ns / 1000) % 1_000_000);
    if let Some(mut ring) = RING.try_lock() {
        let _ = writeln!(ring, "[{secs:5}.{usecs:06}] {args}");
    }
    crate::serial::try_write_fmt(format_args!("[{secs:5}.{usecs:06}] {args}\n"));
}

/// Run `f` with the log lock held (tests of handlers that must not take it).
#[cfg(test)]
pub(crate) fn with_log_locked<R>(f: impl FnOnce() -> R) -> R {
    let _guard = RING.lock();
    f()
}

/// Install the logger. Info and above by default, as a quiet Linux console.
pub fn init() {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(LevelFilter::Info);
    }
}

/// Replay the kept log (the shell's `dmesg`), oldest line first.
pub fn dump(mut out: impl FnMut(&[u8])) {
    let ring = RING.lock();
    if ring.wrapped {
        let tail = &ring.buf[ring.head..];
        // Skip the partial first line that the wrap cut.
        let start = tail
            .iter()
            .position(|&b| b == b'\n')
            .map_or(tail.len(), |p| p + 1);
        out(&tail[start..]);
    }
    out(&ring.buf[..ring.head]);
}

/// Release the log lock on the way to halting (see `serial::force_unlock`).
pub fn force_unlock() {
    // SAFETY: only called when the machine is about to stop; single CPU, interrupts
    // disabled: the interrupted holder never resumes.
    unsafe { RING.force_unlock() };
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test_case]
    fn log_lines_are_kept_for_dmesg() {
        log::info!("dmesg ring test marker 4242");
        let mut all = Vec::new();
        dump(|b| all.extend_from_slice(b));
        let text = core::str::from_utf8(&all).unwrap_or("");
        let line = text
            .lines()
            .rev()
            .find(|l| l.contains("marker 4242"))
            .expect("line kept");
        assert!(
            line.starts_with('[') && line.as_bytes().get(13) == Some(&b']'),
            "{line}"
        );
    }
}
