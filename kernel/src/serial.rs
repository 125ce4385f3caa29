//! COM1, the kernel console: a 16550 UART at I/O port 0x3f8 driven by the
//! `uart_16550` crate. Output converts `\n` to `\r\n` (QEMU puts the host
//! terminal in raw mode, as a real serial line would be); input is read when
//! the shell wakes on the UART's receive interrupt (IRQ 4).
//!
//! The console has two more ends: every write also goes to the framebuffer console
//! (fbcon.rs; lock order COM1 then fbcon), and [`try_read_byte`] takes keys from
//! the PS/2 keyboard (keyboard.rs) after COM1's bytes, so either can type. When no
//! byte is waiting, the framebuffer is drawn before the shell sleeps. Without a
//! UART the framebuffer still shows everything.
//!
//! While the kernel boots with more than one CPU, the log's COM1 output goes
//! through a queue that an idle CPU prints (console_printer.rs); every direct write
//! prints the queue first, so COM1 shows everything in the order it was written.
use core::fmt::{self, Write};
use spin::Mutex;
use uart_16550::backend::PioBackend;
use uart_16550::{Config, Uart16550};

use crate::console_printer;
use crate::fbcon::{self, Colour};

/// The console UART; `None` until [`init`] found and configured it.
static COM1: Mutex<Option<Uart16550<PioBackend>>> = Mutex::new(None);

const COM1_PORT: u16 = 0x3f8;

/// Bytes that arrived before the UART was configured (configuring resets its
/// FIFO): QEMU hands piped input to the UART as soon as it can take it, one byte
/// after another as we read them.
const EARLY_MAX: usize = 4096;
static EARLY_INPUT: Mutex<([u8; EARLY_MAX], usize, usize)> = Mutex::new(([0; EARLY_MAX], 0, 0));

/// Configure COM1 (115200 8N1 as the crate's default config says). Without a UART
/// the kernel runs on silently.
pub fn init() {
    {
        let mut early = EARLY_INPUT.lock();
        let mut lsr = x86_64::instructions::port::Port::<u8>::new(COM1_PORT + 5);
        let mut data = x86_64::instructions::port::Port::<u8>::new(COM1_PORT);
        // Keep reading until no byte has come for a while (~1 ms), so the reset
        // below does not drop one that was on its way.
        let mut quiet_since = crate::tsc::rdtsc();
        while early.2 < EARLY_MAX && crate::tsc::rdtsc() - quiet_since < 3_000_000 {
            // SAFETY: reading COM1's line status register has no side effect; the
            // port belongs to this driver.
            if unsafe { lsr.read() } & 1 == 1 {
                let n = early.2;
                // SAFETY: the line status said a byte is waiting; reading the
                // receive register only takes it (before the UART is configured).
                early.0[n] = unsafe { data.read() };
                early.2 += 1;
                quiet_since = crate::tsc::rdtsc();
            }
        }
    }
    // SAFETY: 0x3f8-0x3ff are COM1's eight registers on every PC (and in QEMU's pc
    // machine); nothing else in the kernel touches those ports.
    let Ok(mut uart) = (unsafe { Uart16550::new_port(COM1_PORT) }) else {
        return;
    };
    if uart.init(Config::default()).is_ok() {
        // Received data raises IRQ 4 (masked at the PIC until the shell waits).
        uart.enable_interrupts(uart_16550::spec::registers::IER::DATA_READY);
        *COM1.lock() = Some(uart);
    }
}

/// Both ends of a console write: the UART (if any) and the framebuffer console (if
/// its lock could be had), text in `colour` there.
struct Writer<'a> {
    uart: Option<&'a mut Uart16550<PioBackend>>,
    /// Whether to wait for the printer queue's lock (not in handlers).
    wait: bool,
    fb: Option<&'a mut fbcon::Console>,
    colour: Colour,
}

/// Send `bytes` to the UART, `\n` as `\r\n`.
fn send_text(uart: &mut Uart16550<PioBackend>, bytes: &[u8]) {
    for chunk in bytes.split_inclusive(|&b| b == b'\n') {
        match chunk.strip_suffix(b"\n") {
            Some(line) => {
                uart.send_bytes_exact(line);
                uart.send_bytes_exact(b"\r\n");
            }
            None => uart.send_bytes_exact(chunk),
        }
    }
}

/// Print the log text queued for COM1 (console_printer.rs), oldest first, until
/// none is left or `stop` says so (checked after each piece of 64 bytes). With
/// `wait` false the queue is only tried (see `console_printer::take`).
fn print_queued(uart: &mut Uart16550<PioBackend>, wait: bool, stop: impl Fn() -> bool) {
    let mut piece = [0u8; 64];
    while console_printer::waiting() {
        let n = console_printer::take(&mut piece, wait);
        if n == 0 {
            return;
        }
        send_text(uart, &piece[..n]);
        if stop() {
            return;
        }
    }
}

impl Write for Writer<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if let Some(uart) = self.uart.as_deref_mut() {
            // Whatever the log queued goes first: the line keeps its order.
            print_queued(uart, self.wait, || false);
            send_text(uart, s.as_bytes());
        }
        if let Some(fb) = self.fb.as_deref_mut() {
            fb.write_coloured(self.colour, s.as_bytes());
        }
        Ok(())
    }
}

/// Write formatted text to the console.
pub fn write_fmt(args: fmt::Arguments) {
    write_fmt_coloured(Colour::Normal, args);
}

/// Write formatted text to the console, in `colour` on the framebuffer (the log's
/// warnings and errors).
pub fn write_fmt_coloured(colour: Colour, args: fmt::Arguments) {
    let mut com1 = COM1.lock();
    let mut fb = fbcon::lock();
    let _ = Writer {
        uart: com1.as_mut(),
        wait: true,
        fb: Some(&mut fb),
        colour,
    }
    .write_fmt(args);
    fbcon::flush_if_due(&mut fb);
}

/// A log line: to the framebuffer now, to COM1 through the printer queue while an
/// idle CPU prints it (console_printer.rs), else now.
pub fn write_log(colour: Colour, args: fmt::Arguments) {
    if !console_printer::queue_fmt(args) {
        write_fmt_coloured(colour, args);
        return;
    }
    let mut fb = fbcon::lock();
    let _ = Writer {
        uart: None,
        wait: true,
        fb: Some(&mut fb),
        colour,
    }
    .write_fmt(args);
    fbcon::flush_if_due(&mut fb);
}

/// From now on the log's COM1 output is queued for an idle CPU to print
/// ([`print_queued_when_idle`]): smp's bring-up, once an AP polls for work. Not
/// without a UART (nothing would print the queue).
pub fn start_printer() {
    if COM1.lock().is_some() {
        console_printer::start();
    }
}

/// The boot is over: the log writes to COM1 itself again, after what is queued
/// (printed here, if no idle CPU has).
pub fn stop_printer() {
    console_printer::stop();
    flush();
}

/// Print what the log queued for COM1 (and wait for a CPU printing it to finish).
pub fn flush() {
    if let Some(uart) = COM1.lock().as_mut() {
        print_queued(uart, true, || false);
    }
}

/// An idle CPU's share of the console: print the queued log text unless another
/// CPU holds COM1 (it prints the queue too), stopping early when `stop` says a call
/// waits for this CPU.
pub fn print_queued_when_idle(stop: impl Fn() -> bool) {
    if !console_printer::waiting() {
        return;
    }
    if let Some(mut com1) = COM1.try_lock()
        && let Some(uart) = com1.as_mut()
    {
        print_queued(uart, true, stop);
    }
}

/// Write formatted text to the console unless its lock is held, in which case the
/// text is dropped: for handlers that may have interrupted a console write (the
/// breakpoint handler), which must not wait for a lock the interrupted code holds.
/// The framebuffer's lock is only tried too.
pub fn try_write_fmt(args: fmt::Arguments) {
    if let Some(mut com1) = COM1.try_lock() {
        let mut fb = fbcon::try_lock();
        let _ = Writer {
            uart: com1.as_mut(),
            wait: false,
            fb: fb.as_deref_mut(),
            colour: Colour::Normal,
        }
        .write_fmt(args);
    }
}

/// Run `f` with the console lock held (tests of handlers that must not take it).
#[cfg(test)]
pub(crate) fn with_console_locked<R>(f: impl FnOnce() -> R) -> R {
    let _guard = COM1.lock();
    f()
}

/// Write raw bytes (the shell's echo and control sequences) without conversion.
pub fn write_bytes(bytes: &[u8]) {
    let mut com1 = COM1.lock();
    if let Some(uart) = com1.as_mut() {
        print_queued(uart, true, || false);
        uart.send_bytes_exact(bytes);
    }
    let mut fb = fbcon::lock();
    fb.write_bytes(bytes);
    fbcon::flush_if_due(&mut fb);
}

/// One received byte: piped early input first, then the UART's, then the
/// keyboard's. When there is none the framebuffer console is brought up to date,
/// since the caller (the shell) is about to sleep until the next interrupt.
pub fn try_read_byte() -> Option<u8> {
    {
        let mut early = EARLY_INPUT.lock();
        if early.1 < early.2 {
            early.1 += 1;
            return Some(early.0[early.1 - 1]);
        }
    }
    let uart = COM1.lock().as_mut().and_then(|u| u.try_receive_byte().ok());
    let byte = uart.or_else(crate::keyboard::try_read_byte);
    if byte.is_none() {
        fbcon::flush();
    }
    byte
}

/// Release the console locks (COM1's and the framebuffer's) whatever holds them,
/// so a panic or fault report can be printed even when it interrupted a write.
pub fn force_unlock() {
    // SAFETY: called only on the way to halting the machine (panic, fatal fault):
    // the interrupted holder never runs again, and the kernel runs on one CPU
    // with interrupts disabled, so no other holder exists.
    unsafe { COM1.force_unlock() };
    console_printer::force_unlock();
    fbcon::force_unlock();
}

/// `print!` to the serial console.
#[macro_export]
macro_rules! serial_print {
    ($($arg:tt)*) => { $crate::serial::write_fmt(format_args!($($arg)*)) };
}

/// `println!` to the serial console.
#[macro_export]
macro_rules! serial_println {
    () => { $crate::serial_print!("\n") };
    ($($arg:tt)*) => { $crate::serial::write_fmt(format_args!("{}\n", format_args!($($arg)*))) };
}
