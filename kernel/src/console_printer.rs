//! The log's serial output printed by an idle CPU while the kernel boots, as
//! Linux's consoles are printed by their own threads (`pr/ttyS0`, nbcon consoles
//! since 6.12): a log line goes to the `dmesg` ring and the screen at once, and
//! into this queue for COM1, which an AP polling for work drains (serial.rs).
//!
//! Why: under QEMU every byte the UART takes costs the writing CPU about 4 us (one
//! port write, one host `write`), so the boot CPU spent some 10 ms of the boot on
//! the lines it logs after the APs start. The queue is on from the moment an AP
//! polls (smp's bring-up) until `smp::boot_done`; with one CPU, before the APs
//! start and after the boot, the log writes to COM1 itself as before.
//!
//! Order: anything that writes to COM1 directly (the shell, the test runner, a
//! panic) first prints what is queued, under COM1's lock, so the serial line shows
//! text in the order it was written. A line that does not fit in the queue is
//! written directly, after the queue. Nothing is dropped.
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use spin::Mutex;

/// Bytes the queue holds (a boot logs about 4 KiB).
const QUEUE_LEN: usize = 16 * 1024;

struct Queue {
    buf: [u8; QUEUE_LEN],
    /// First byte waiting.
    head: usize,
    /// Bytes waiting.
    len: usize,
}

impl Write for Queue {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if s.len() > QUEUE_LEN - self.len {
            return Err(fmt::Error);
        }
        for &b in s.as_bytes() {
            self.buf[(self.head + self.len) % QUEUE_LEN] = b;
            self.len += 1;
        }
        Ok(())
    }
}

static QUEUE: Mutex<Queue> = Mutex::new(Queue {
    buf: [0; QUEUE_LEN],
    head: 0,
    len: 0,
});

/// Whether log lines are queued.
static ON: AtomicBool = AtomicBool::new(false);
/// Bytes waiting (read without the lock by the polling CPUs).
static WAITING: AtomicUsize = AtomicUsize::new(0);

/// Queue the log's serial output from now on (an AP polls for work and prints it).
pub(crate) fn start() {
    ON.store(true, Ordering::Release);
}

/// Stop queueing (what is queued stays until someone prints it: `serial::flush`).
pub(crate) fn stop() {
    ON.store(false, Ordering::Release);
}

/// Whether text waits to be printed.
pub fn waiting() -> bool {
    WAITING.load(Ordering::Acquire) != 0
}

/// Queue `args`, unless queueing is off or the text does not fit (then nothing is
/// queued and the caller writes it itself). Returns whether it was queued.
pub(crate) fn queue_fmt(args: fmt::Arguments) -> bool {
    if !ON.load(Ordering::Acquire) {
        return false;
    }
    let mut q = QUEUE.lock();
    let before = q.len;
    if q.write_fmt(args).is_err() {
        q.len = before;
        return false;
    }
    WAITING.store(q.len, Ordering::Release);
    true
}

/// Move up to `out.len()` waiting bytes into `out`, oldest first; how many. With
/// `wait` false the queue's lock is only tried (handlers that may have interrupted
/// the logger): 0 when it is held.
pub(crate) fn take(out: &mut [u8], wait: bool) -> usize {
    let mut q = if wait {
        QUEUE.lock()
    } else {
        match QUEUE.try_lock() {
            Some(q) => q,
            None => return 0,
        }
    };
    let n = out.len().min(q.len);
    for (i, b) in out[..n].iter_mut().enumerate() {
        *b = q.buf[(q.head + i) % QUEUE_LEN];
    }
    q.head = (q.head + n) % QUEUE_LEN;
    q.len -= n;
    WAITING.store(q.len, Ordering::Release);
    n
}

/// Release the queue's lock whatever holds it (a panic report, see
/// `serial::force_unlock`).
pub(crate) fn force_unlock() {
    // SAFETY: called only on the way to halting the machine, as serial's
    // force_unlock: the queue's holder never runs again, and a torn queue only
    // garbles text that is printed once more.
    unsafe { QUEUE.force_unlock() };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Text comes out whole and in order, across the end of the buffer; text that
    /// does not fit is refused without a trace; off means nothing is queued.
    #[test_case]
    fn queue_keeps_order_and_refuses_what_does_not_fit() {
        // The boot is over in test kernels by now (boot_done): nobody drains.
        assert!(!ON.load(Ordering::Acquire));
        assert!(!queue_fmt(format_args!("off")));
        let mut q = Queue {
            buf: [0; QUEUE_LEN],
            head: QUEUE_LEN - 3,
            len: 0,
        };
        q.write_str("abcdef").unwrap();
        assert_eq!(q.len, 6);
        assert_eq!(&q.buf[QUEUE_LEN - 3..], b"abc");
        assert_eq!(&q.buf[..3], b"def");
        let big = [b'x'; QUEUE_LEN];
        let big = core::str::from_utf8(&big).unwrap();
        assert!(q.write_str(big).is_err());
        assert_eq!(q.len, 6, "a refused write leaves the queue as it was");
    }
}
