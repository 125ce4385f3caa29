//! The PS/2 keyboard: the i8042 controller's first port, IRQ 1, scancode set 1 (the
//! controller translates), decoded with the `pc-keyboard` crate on a US 104-key
//! layout into the bytes a serial terminal would send, which serial.rs hands to the
//! shell's line editor after COM1's: printable ASCII as itself, Enter as `\r`,
//! Backspace as 0x08, Ctrl-C as 0x03 (Ctrl+letter as its control byte), the Up and
//! Down arrows as `ESC [ A` / `ESC [ B` (history). Keys the layout does not know,
//! key releases, Escape, Delete, function keys and non-ASCII characters give
//! nothing.
//!
//! The interrupt handler (interrupts.rs) only reads the scancode from port 0x60 and
//! pushes it into a lock-free single-producer ring; decoding runs in the shell's
//! context under [`DECODER`]'s lock, which no interrupt handler takes.
use core::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use pc_keyboard::{
    DecodedKey, HandleControl, KeyCode, PS2Keyboard, ScancodeSet1, layouts::Us104Key,
};
use spin::Mutex;
use x86_64::instructions::port::Port;

/// The i8042's data and status/command ports.
const DATA: u16 = 0x60;
const STATUS: u16 = 0x64;
/// Status bits: output buffer full (a byte to read), input buffer full (busy),
/// the byte is from the second (mouse) port.
const OUTPUT_FULL: u8 = 0x01;
const INPUT_FULL: u8 = 0x02;
const AUX_DATA: u8 = 0x20;
/// Controller configuration byte: first-port interrupt, first-port clock disabled,
/// scancode translation to set 1.
const CONFIG_IRQ1: u8 = 0x01;
const CONFIG_CLOCK_OFF: u8 = 0x10;
const CONFIG_TRANSLATE: u8 = 0x40;

const RING_LEN: usize = 64;
static RING: [AtomicU8; RING_LEN] = [const { AtomicU8::new(0) }; RING_LEN];
/// Scancodes pushed (the handler) and taken (the decoder), counted for ever.
static HEAD: AtomicUsize = AtomicUsize::new(0);
static TAIL: AtomicUsize = AtomicUsize::new(0);
/// Scancodes dropped because the ring was full.
pub static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Queue a scancode (the IRQ 1 handler; the only producer). Never blocks.
pub fn push_scancode(code: u8) {
    let head = HEAD.load(Ordering::Relaxed);
    if head.wrapping_sub(TAIL.load(Ordering::Acquire)) >= RING_LEN {
        DROPPED.fetch_add(1, Ordering::Relaxed);
        return;
    }
    RING[head % RING_LEN].store(code, Ordering::Relaxed);
    HEAD.store(head.wrapping_add(1), Ordering::Release);
}

/// Take the oldest queued scancode (the only consumer, under [`DECODER`]'s lock).
fn pop_scancode() -> Option<u8> {
    let tail = TAIL.load(Ordering::Relaxed);
    if tail == HEAD.load(Ordering::Acquire) {
        return None;
    }
    let code = RING[tail % RING_LEN].load(Ordering::Relaxed);
    TAIL.store(tail.wrapping_add(1), Ordering::Release);
    Some(code)
}

/// The scancode decoder and the bytes of a key not yet handed out.
struct Decoder {
    keyboard: PS2Keyboard<Us104Key, ScancodeSet1>,
    pending: [u8; 3],
    len: usize,
    pos: usize,
}

static DECODER: Mutex<Decoder> = Mutex::new(Decoder {
    keyboard: PS2Keyboard::new(
        ScancodeSet1::new(),
        Us104Key,
        HandleControl::MapLettersToUnicode,
    ),
    pending: [0; 3],
    len: 0,
    pos: 0,
});

/// The terminal bytes for a decoded key (up to three), or none.
fn key_bytes(key: DecodedKey) -> Option<([u8; 3], usize)> {
    match key {
        DecodedKey::Unicode('\n') => Some(([b'\r', 0, 0], 1)),
        // Escape would start an escape sequence in the line editor and swallow the
        // next key; Delete would erase backwards (the cursor is always at the end).
        DecodedKey::Unicode('\u{1b}' | '\u{7f}') => None,
        DecodedKey::Unicode(c) if c.is_ascii() => Some(([c as u8, 0, 0], 1)),
        DecodedKey::RawKey(KeyCode::ArrowUp) => Some((*b"\x1b[A", 3)),
        DecodedKey::RawKey(KeyCode::ArrowDown) => Some((*b"\x1b[B", 3)),
        _ => None,
    }
}

/// The next byte typed on the keyboard, if any.
pub fn try_read_byte() -> Option<u8> {
    let mut d = DECODER.lock();
    loop {
        if d.pos < d.len {
            let b = d.pending[d.pos];
            d.pos += 1;
            return Some(b);
        }
        let code = pop_scancode()?;
        // A scancode the set does not know is an error here: ignored, as are key
        // releases and the first bytes of multi-byte codes (Ok(None)).
        let Ok(Some(event)) = d.keyboard.add_byte(code) else {
            continue;
        };
        if let Some((bytes, len)) = d.keyboard.process_keyevent(event).and_then(key_bytes) {
            d.pending = bytes;
            d.len = len;
            d.pos = 0;
        }
    }
}

/// Wait (bounded) until the controller's `bit` in the status register is `set`.
fn wait_status(bit: u8, set: bool) -> bool {
    let mut status = Port::<u8>::new(STATUS);
    for _ in 0..100_000 {
        // SAFETY: reading the i8042 status register has no side effect.
        if (unsafe { status.read() } & bit != 0) == set {
            return true;
        }
        core::hint::spin_loop();
    }
    false
}

fn write_command(cmd: u8) -> bool {
    if !wait_status(INPUT_FULL, false) {
        return false;
    }
    // SAFETY: 0x64 is the i8042's command port; the commands sent here (read and
    // write the configuration byte, enable the first port) change only how the
    // controller reports keys.
    unsafe { Port::<u8>::new(STATUS).write(cmd) };
    true
}

/// Drop whatever the controller holds (bounded).
fn drain() {
    for _ in 0..32 {
        // SAFETY: reading the status register has no side effect.
        if unsafe { Port::<u8>::new(STATUS).read() } & OUTPUT_FULL == 0 {
            return;
        }
        // SAFETY: a byte is waiting; reading the data port only takes it.
        let _ = unsafe { Port::<u8>::new(DATA).read() };
    }
}

/// Make sure the controller raises IRQ 1 for keys, in scancode set 1, whatever the
/// firmware left (a UEFI driver may have polled with interrupts off). Without a
/// controller (the status port reads 0xff) nothing is done. Interrupts are off.
pub fn init() {
    // SAFETY: reading the status register has no side effect.
    if unsafe { Port::<u8>::new(STATUS).read() } == 0xff {
        log::info!("i8042: no PS/2 controller");
        return;
    }
    drain();
    if !write_command(0x20) || !wait_status(OUTPUT_FULL, true) {
        log::warn!("i8042: controller does not answer, keyboard not set up");
        return;
    }
    // SAFETY: the controller answered command 0x20 with its configuration byte.
    let config = unsafe { Port::<u8>::new(DATA).read() };
    let new = (config | CONFIG_IRQ1 | CONFIG_TRANSLATE) & !CONFIG_CLOCK_OFF;
    if new != config && write_command(0x60) && wait_status(INPUT_FULL, false) {
        // SAFETY: after command 0x60 the next data byte is the new configuration.
        unsafe { Port::<u8>::new(DATA).write(new) };
    }
    // Enable the first port.
    write_command(0xae);
    drain();
    log::info!("serio: i8042 KBD port at 0x60,0x64 irq 1");
}

/// Read the scancode the controller signalled (called by the IRQ 1 handler):
/// only a byte from the keyboard port is taken; mouse bytes stay for nobody.
pub fn on_interrupt() {
    // SAFETY: reading the status register has no side effect.
    let status = unsafe { Port::<u8>::new(STATUS).read() };
    if status & OUTPUT_FULL != 0 && status & AUX_DATA == 0 {
        // SAFETY: the controller holds a keyboard byte; reading the data port takes it.
        push_scancode(unsafe { Port::<u8>::new(DATA).read() });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(codes: &[u8]) -> alloc::vec::Vec<u8> {
        for &c in codes {
            push_scancode(c);
        }
        let mut out = alloc::vec::Vec::new();
        while let Some(b) = try_read_byte() {
            out.push(b);
        }
        out
    }

    #[test_case]
    fn scancodes_become_terminal_bytes() {
        // m e (press, release each), Enter.
        assert_eq!(typed(&[0x32, 0xb2, 0x12, 0x92, 0x1c, 0x9c]), b"me\r");
        // Shift+a, Backspace, Ctrl+C.
        assert_eq!(
            typed(&[0x2a, 0x1e, 0x9e, 0xaa, 0x0e, 0x8e, 0x1d, 0x2e, 0xae, 0x9d]),
            b"A\x08\x03"
        );
        // Up, Down (extended codes), F1, Escape, Delete and an unknown code: only the arrows.
        assert_eq!(
            typed(&[
                0xe0, 0x48, 0xe0, 0xc8, 0xe0, 0x50, 0xe0, 0xd0, 0x3b, 0xbb, 0x01, 0x81, 0xe0, 0x53,
                0xe0, 0xd3, 0x7f, 0x31, 0xb1
            ]),
            b"\x1b[A\x1b[Bn"
        );
    }

    #[test_case]
    fn a_full_ring_drops_instead_of_blocking() {
        let dropped = DROPPED.load(Ordering::Relaxed);
        for _ in 0..RING_LEN + 5 {
            push_scancode(0x39); // space pressed
        }
        assert_eq!(DROPPED.load(Ordering::Relaxed), dropped + 5);
        let out = typed(&[0xb9]);
        assert_eq!(out.len(), RING_LEN);
        assert!(out.iter().all(|&b| b == b' '));
    }
}
