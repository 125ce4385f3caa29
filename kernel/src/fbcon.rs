//! The framebuffer console: everything the serial console shows (log, shell prompt,
//! echo, command output), drawn on the framebuffer the bootloader hands over (BIOS
//! VESA or UEFI GOP) in the bootloader's own font, Noto Sans Mono 16 px regular
//! from the `noto-sans-mono-bitmap` crate (9x16-pixel cells).
//!
//! The text goes first into a character grid (a ring of rows, so scrolling is an
//! index change); the pixels are drawn by [`flush`], which repaints only the cells
//! that differ from what the screen shows. `serial.rs` feeds every console write
//! here and calls [`flush`] when the shell has no input and goes to sleep; a long
//! burst of output is also flushed every [`FLUSH_INTERVAL_NS`]. So the serial path
//! pays for a few array stores per byte, and a screenful of boot log is drawn once,
//! not once per line.
//!
//! Layout (the screendump test in tests/console_scenarios.rs renders the same):
//! `cols = width / 9`, `rows = height / 16`, the grid centred (left margin
//! `(width - cols * 9) / 2`, top margin `(height - rows * 16) / 2`), black
//! background, each glyph pixel `colour * intensity / 255` per channel; the cursor is
//! the bottom two pixel rows of its cell in the default colour. Colours: log
//! warnings yellow, errors red, everything else light grey.
//!
//! Control bytes: `\n` starts a new line (the serial side sends `\r\n`), `\r` goes to
//! the line's start, backspace moves one cell left, tab to the next multiple of 8,
//! the bell and other control bytes are ignored; a non-ASCII character shows as
//! U+FFFD. A line longer than the screen wraps; output past the last row scrolls.
//!
//! Until [`start`] has read the command line the console fills its grid but draws
//! nothing; `fbcon=off` then detaches it without touching the screen. Lock order:
//! COM1's lock (serial.rs) before this console's; nothing takes COM1 while holding
//! it, and interrupt handlers only try it.
use bootloader_api::info::{FrameBuffer, FrameBufferInfo, PixelFormat};
use noto_sans_mono_bitmap::{FontWeight, RasterHeight, get_raster, get_raster_width};
use spin::Mutex;

/// Glyph cell width in pixels (Noto Sans Mono regular, 16 px: 9 wide).
pub const CELL_W: usize = get_raster_width(FontWeight::Regular, RasterHeight::Size16);
/// Glyph cell height in pixels.
pub const CELL_H: usize = RasterHeight::Size16.val();
/// Largest grid kept (a 3840x2160 screen); a larger screen uses its top-left part.
const MAX_COLS: usize = 3840 / CELL_W;
const MAX_ROWS: usize = 2160 / CELL_H;
const MAX_CELLS: usize = MAX_COLS * MAX_ROWS;

/// A burst of output is drawn at least this often (else only when the shell waits).
pub const FLUSH_INTERVAL_NS: u64 = 500_000_000;

/// Colours as (red, green, blue); a cell stores the index.
pub const PALETTE: [[u8; 3]; 3] = [[0xc0, 0xc0, 0xc0], [0xff, 0xd7, 0x00], [0xff, 0x55, 0x55]];

/// The colour of a piece of text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Colour {
    /// Light grey: the shell and informational log lines.
    Normal = 0,
    /// Yellow: log warnings.
    Warning = 1,
    /// Red: log errors and panics.
    Error = 2,
}

/// A cell: character code in the low byte (ASCII 0x20-0x7e; [`REPLACEMENT`] for a
/// non-ASCII character), colour above it, [`CURSOR`] on the cell drawn with the cursor.
type Cell = u16;
const BLANK: Cell = b' ' as Cell;
/// Code of U+FFFD in a cell.
const REPLACEMENT: u8 = 0x7f;
const CURSOR: Cell = 0x8000;
/// What `shown` holds for a cell whose pixels are unknown (never equals a cell).
const UNKNOWN: Cell = 0xffff;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No framebuffer, or `fbcon=off`: writes are dropped.
    Off,
    /// Framebuffer attached, command line not read yet: the grid fills, nothing is drawn.
    Pending,
    /// Drawing.
    On,
}

/// The console: the framebuffer, the text grid and what the screen shows. All-zero
/// when constructed, so the static lives in .bss.
pub struct Console {
    fb: Option<&'static mut [u8]>,
    width: usize,
    height: usize,
    stride: usize,
    bpp: usize,
    format: PixelFormat,
    state: State,
    cols: usize,
    rows: usize,
    x0: usize,
    y0: usize,
    /// Rows of the text grid as a ring: screen row `r` is ring row `(top + r) % rows`.
    text: [Cell; MAX_CELLS],
    top: usize,
    /// What each screen cell shows (row-major, not a ring).
    shown: [Cell; MAX_CELLS],
    /// Cursor: column (`cols` means the next character wraps first) and screen row.
    cx: usize,
    cy: usize,
    colour: Colour,
    /// The grid changed since the last flush.
    dirty: bool,
    /// The margins around the grid still show what the firmware drew.
    margins_unknown: bool,
    /// Uptime of the last flush.
    last_flush_ns: u64,
    /// Pixel bytes per colour and glyph intensity ([`Console::build_lut`]).
    lut: [[[u8; 4]; 256]; PALETTE.len()],
}

static CONSOLE: Mutex<Console> = Mutex::new(Console::new());

impl Default for Console {
    fn default() -> Self {
        Self::new()
    }
}

impl Console {
    /// A console with no framebuffer.
    pub const fn new() -> Self {
        Self {
            fb: None,
            width: 0,
            height: 0,
            stride: 0,
            bpp: 0,
            format: PixelFormat::Rgb,
            state: State::Off,
            cols: 0,
            rows: 0,
            x0: 0,
            y0: 0,
            text: [0; MAX_CELLS],
            top: 0,
            shown: [0; MAX_CELLS],
            cx: 0,
            cy: 0,
            colour: Colour::Normal,
            dirty: false,
            margins_unknown: false,
            last_flush_ns: 0,
            lut: [[[0; 4]; 256]; PALETTE.len()],
        }
    }

    /// Take `buf` (described by `info`) as the screen; nothing is drawn until
    /// [`Console::enable`]. A framebuffer too small for one cell, or with a pixel
    /// size this console cannot write, is not used.
    pub fn attach(&mut self, buf: &'static mut [u8], info: FrameBufferInfo) {
        let bpp_ok = match info.pixel_format {
            PixelFormat::U8 => info.bytes_per_pixel >= 1,
            _ => (3..=4).contains(&info.bytes_per_pixel),
        };
        let needed = info
            .stride
            .checked_mul(info.height)
            .and_then(|n| n.checked_mul(info.bytes_per_pixel));
        let cols = (info.width / CELL_W).min(MAX_COLS);
        let rows = (info.height / CELL_H).min(MAX_ROWS);
        if !bpp_ok || needed.is_none_or(|n| n > buf.len()) || info.stride < info.width {
            return;
        }
        if cols == 0 || rows == 0 {
            return;
        }
        self.width = info.width;
        self.height = info.height;
        self.stride = info.stride;
        self.bpp = info.bytes_per_pixel;
        self.format = info.pixel_format;
        self.build_lut();
        self.cols = cols;
        self.rows = rows;
        self.x0 = (info.width - cols * CELL_W) / 2;
        self.y0 = (info.height - rows * CELL_H) / 2;
        self.fb = Some(buf);
        self.text[..cols * rows].fill(BLANK);
        self.top = 0;
        self.cx = 0;
        self.cy = 0;
        self.state = State::Pending;
    }

    /// Start drawing: the whole screen is redrawn at the next flush (every cell, and
    /// the margins cleared).
    pub fn enable(&mut self) {
        if self.state == State::Pending {
            self.state = State::On;
            self.shown[..self.cols * self.rows].fill(UNKNOWN);
            self.margins_unknown = true;
            self.dirty = true;
        }
    }

    /// Stop for good (`fbcon=off`): the screen keeps what the firmware left.
    pub fn disable(&mut self) {
        self.state = State::Off;
        self.fb = None;
    }

    /// Columns and rows of text, if a framebuffer is attached.
    pub fn size(&self) -> Option<(usize, usize)> {
        (self.state != State::Off).then_some((self.cols, self.rows))
    }

    fn cell_index(&self, row: usize, col: usize) -> usize {
        ((self.top + row) % self.rows) * self.cols + col
    }

    /// The character shown at (`row`, `col`) of the grid (tests).
    pub fn char_at(&self, row: usize, col: usize) -> char {
        match (self.text[self.cell_index(row, col)] & 0xff) as u8 {
            REPLACEMENT => '\u{fffd}',
            c => c as char,
        }
    }

    /// The cursor position (column, row).
    pub fn cursor(&self) -> (usize, usize) {
        (self.cx, self.cy)
    }

    fn newline(&mut self) {
        self.cx = 0;
        if self.cy + 1 < self.rows {
            self.cy += 1;
        } else {
            self.top = (self.top + 1) % self.rows;
            let start = self.cell_index(self.rows - 1, 0);
            self.text[start..start + self.cols].fill(BLANK);
        }
    }

    fn put(&mut self, code: u8) {
        if self.cx >= self.cols {
            self.newline();
        }
        let i = self.cell_index(self.cy, self.cx);
        self.text[i] = code as Cell | (self.colour as Cell) << 8;
        self.cx += 1;
    }

    /// Write bytes as a terminal would (see the module doc for control bytes).
    pub fn write_bytes(&mut self, bytes: &[u8]) {
        if self.state == State::Off {
            return;
        }
        for &b in bytes {
            match b {
                b'\n' => self.newline(),
                b'\r' => self.cx = 0,
                0x08 => self.cx = self.cx.min(self.cols).saturating_sub(1),
                b'\t' => {
                    let next = ((self.cx / 8) + 1) * 8;
                    while self.cx < next.min(self.cols) {
                        self.put(b' ');
                    }
                }
                0x20..=0x7e => self.put(b),
                // A UTF-8 lead byte stands for one character the font lacks;
                // continuation bytes add nothing.
                0xc0..=0xff => self.put(REPLACEMENT),
                _ => {}
            }
        }
        self.dirty = true;
    }

    /// Write in `colour`, then go back to the normal colour.
    pub fn write_coloured(&mut self, colour: Colour, bytes: &[u8]) {
        self.colour = colour;
        self.write_bytes(bytes);
        self.colour = Colour::Normal;
    }

    /// Whether a burst of output has gone undrawn for too long.
    fn flush_due(&self, now_ns: u64) -> bool {
        self.state == State::On
            && self.dirty
            && now_ns.saturating_sub(self.last_flush_ns) >= FLUSH_INTERVAL_NS
    }

    /// Draw every cell whose pixels differ from the grid (with the cursor).
    pub fn flush(&mut self, now_ns: u64) {
        if self.state != State::On || !self.dirty {
            return;
        }
        if self.margins_unknown {
            self.clear_margins();
            self.margins_unknown = false;
        }
        let cursor = (self.cy, self.cx.min(self.cols - 1));
        for row in 0..self.rows {
            for col in 0..self.cols {
                let mut cell = self.text[self.cell_index(row, col)];
                if (row, col) == cursor {
                    cell |= CURSOR;
                }
                let s = row * self.cols + col;
                if self.shown[s] != cell {
                    self.draw_cell(row, col, cell);
                    self.shown[s] = cell;
                }
            }
        }
        self.dirty = false;
        self.last_flush_ns = now_ns;
    }

    fn pixel(&self, rgb: [u8; 3]) -> [u8; 4] {
        let [r, g, b] = rgb;
        match self.format {
            PixelFormat::Bgr => [b, g, r, 0],
            PixelFormat::U8 => {
                let luma = (r as u32 * 77 + g as u32 * 150 + b as u32 * 29) >> 8;
                [luma as u8, 0, 0, 0]
            }
            PixelFormat::Unknown {
                red_position,
                green_position,
                blue_position,
            } => {
                let shift = |v: u8, pos: u8| (v as u32).checked_shl(pos as u32).unwrap_or(0);
                (shift(r, red_position) | shift(g, green_position) | shift(b, blue_position))
                    .to_le_bytes()
            }
            _ => [r, g, b, 0],
        }
    }

    fn draw_cell(&mut self, row: usize, col: usize, cell: Cell) {
        let ch = match (cell & 0xff) as u8 {
            REPLACEMENT => '\u{fffd}',
            c => c as char,
        };
        let raster = get_raster(ch, FontWeight::Regular, RasterHeight::Size16)
            .or_else(|| get_raster('\u{fffd}', FontWeight::Regular, RasterHeight::Size16));
        let colour = (((cell >> 8) & 0x7f) as usize).min(PALETTE.len() - 1);
        let cursor = cell & CURSOR != 0;
        let (x0, y0) = (self.x0 + col * CELL_W, self.y0 + row * CELL_H);
        let (bpp, stride) = (self.bpp, self.stride);
        let lut = &self.lut[colour];
        let Some(fb) = self.fb.as_deref_mut() else {
            return;
        };
        for gy in 0..CELL_H {
            let start = ((y0 + gy) * stride + x0) * bpp;
            let Some(dst) = fb.get_mut(start..start + CELL_W * bpp) else {
                return;
            };
            let glyph: &[u8] = raster
                .as_ref()
                .and_then(|r| r.raster().get(gy))
                .map_or(&[], |r| r);
            let bar = cursor && gy >= CELL_H - 2;
            let intensity = |gx: usize| {
                if bar {
                    255
                } else {
                    glyph.get(gx).copied().unwrap_or(0)
                }
            };
            if bpp == 4 {
                for (gx, px) in dst.as_chunks_mut::<4>().0.iter_mut().enumerate() {
                    *px = lut[intensity(gx) as usize];
                }
            } else {
                for (gx, px) in dst.chunks_exact_mut(bpp).enumerate() {
                    px.copy_from_slice(&lut[intensity(gx) as usize][..bpp]);
                }
            }
        }
    }

    /// Black the pixels outside the cell grid.
    fn clear_margins(&mut self) {
        let (bpp, stride, width) = (self.bpp, self.stride, self.width);
        let grid = self.y0..self.y0 + self.rows * CELL_H;
        let (left, right) = (self.x0, self.x0 + self.cols * CELL_W);
        let Some(fb) = self.fb.as_deref_mut() else {
            return;
        };
        for y in 0..self.height {
            let line = y * stride * bpp;
            let spans = if grid.contains(&y) {
                [(0, left), (right, width)]
            } else {
                [(0, width), (0, 0)]
            };
            for (a, b) in spans {
                if let Some(px) = fb.get_mut(line + a * bpp..line + b * bpp) {
                    px.fill(0);
                }
            }
        }
    }

    /// The pixel bytes of each palette colour at each glyph intensity (on black).
    fn build_lut(&mut self) {
        for (c, rgb) in PALETTE.iter().enumerate() {
            for i in 0..256u32 {
                let scale = |v: u8| (v as u32 * i / 255) as u8;
                self.lut[c][i as usize] = self.pixel([scale(rgb[0]), scale(rgb[1]), scale(rgb[2])]);
            }
        }
    }
}

/// Take the bootloader's framebuffer (called before the first console line).
pub fn attach(fb: Option<FrameBuffer>) {
    if let Some(fb) = fb {
        let info = fb.info();
        CONSOLE.lock().attach(fb.into_buffer(), info);
    }
}

/// Start drawing unless the command line says `fbcon=off`; logs the console size.
pub fn start(cmdline: &str) {
    let off = firmware::cmdline::params(cmdline).any(|p| p.is("fbcon") && p.value == Some("off"));
    let size = {
        let mut con = CONSOLE.lock();
        let size = con.size();
        if off {
            con.disable();
        } else {
            con.enable();
        }
        size
    };
    match size {
        Some(_) if off => log::info!("fbcon: off (fbcon=off)"),
        Some((cols, rows)) => {
            log::info!("Console: switching to colour frame buffer device {cols}x{rows}")
        }
        None => log::info!("fbcon: no framebuffer"),
    }
}

/// The console, for serial.rs's writers (which hold COM1's lock first).
pub(crate) fn lock() -> spin::MutexGuard<'static, Console> {
    CONSOLE.lock()
}

/// The console unless its lock is held (interrupt handlers).
pub(crate) fn try_lock() -> Option<spin::MutexGuard<'static, Console>> {
    CONSOLE.try_lock()
}

/// After a write: draw if a burst has gone undrawn for [`FLUSH_INTERVAL_NS`].
pub(crate) fn flush_if_due(con: &mut Console) {
    let now = crate::tsc::uptime_ns();
    if con.flush_due(now) {
        con.flush(now);
    }
}

/// Draw what changed (the shell calls this, through serial.rs, before it sleeps).
pub fn flush() {
    CONSOLE.lock().flush(crate::tsc::uptime_ns());
}

/// On the way to halting (panic, fatal fault): draw the grid, even when the command
/// line was never read. Call after `force_unlock`.
pub fn emergency_flush() {
    let mut con = CONSOLE.lock();
    con.enable();
    con.flush(crate::tsc::uptime_ns());
}

/// Release the console's lock whatever holds it (see `serial::force_unlock`).
pub fn force_unlock() {
    // SAFETY: called only on the way to halting the machine (panic, fatal fault):
    // the interrupted holder never runs again, and the kernel runs on one CPU with
    // interrupts disabled, so no other holder exists.
    unsafe { CONSOLE.force_unlock() };
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::boxed::Box;
    use alloc::vec;

    /// A console on the heap (it is too large for the stack), with no framebuffer.
    fn boxed() -> Box<Console> {
        let b = Box::<Console>::new_zeroed();
        // All-zero bytes are `Console::new()`: `None` for the framebuffer (null), zero
        // numbers, and `PixelFormat::Rgb`, `State::Off`, `Colour::Normal` (each the zero
        // discriminant; PixelFormat is repr(C)), zeroed cells and colour table.
        // SAFETY: so the zeroed allocation holds a valid `Console`.
        unsafe { b.assume_init() }
    }

    /// A console on a RAM framebuffer of `w`x`h` 32-bit pixels in `format`.
    fn on_ram(w: usize, h: usize, format: PixelFormat) -> Box<Console> {
        let buf: &'static mut [u8] = vec![0x55u8; w * h * 4].leak();
        let mut con = boxed();
        let info = FrameBufferInfo {
            byte_len: w * h * 4,
            width: w,
            height: h,
            pixel_format: format,
            bytes_per_pixel: 4,
            stride: w,
        };
        con.attach(buf, info);
        con
    }

    /// The same, drawing.
    fn console(w: usize, h: usize) -> Box<Console> {
        let mut con = on_ram(w, h, PixelFormat::Rgb);
        con.enable();
        con
    }

    /// The RGB of pixel (`x`, `y`) of a 32-bit RGB console.
    fn px(con: &Console, x: usize, y: usize) -> [u8; 3] {
        let fb = con.fb.as_deref().unwrap_or(&[]);
        let o = (y * con.stride + x) * 4;
        [fb[o], fb[o + 1], fb[o + 2]]
    }

    fn row(con: &Console, r: usize) -> alloc::string::String {
        (0..con.cols).map(|c| con.char_at(r, c)).collect()
    }

    #[test_case]
    fn text_wraps_scrolls_and_backspaces() {
        // 5 columns, 3 rows (2 pixels of margin right and bottom split in two).
        let mut con = console(5 * CELL_W + 2, 3 * CELL_H + 3);
        assert_eq!(con.size(), Some((5, 3)));
        assert_eq!((con.x0, con.y0), (1, 1));
        con.write_bytes(b"abcdefg\r\n");
        assert_eq!(row(&con, 0), "abcde");
        assert_eq!(row(&con, 1), "fg   ");
        con.write_bytes(b"12\x08\x08X\n");
        // The cursor was on the last row: the first one scrolled away.
        assert_eq!(row(&con, 0), "fg   ");
        assert_eq!(row(&con, 1), "X2   ");
        assert_eq!(row(&con, 2), "     ");
        con.write_bytes(b"z\xc3\xa9\x07\t");
        assert_eq!(row(&con, 0), "fg   ");
        assert_eq!(row(&con, 1), "X2   ");
        assert_eq!(row(&con, 2), "z\u{fffd}   ");
        assert_eq!(con.cursor(), (5, 2));
        // Exactly five characters leave the cursor waiting to wrap.
        con.write_bytes(b"\r12345");
        assert_eq!(row(&con, 2), "12345");
        con.write_bytes(b"\n");
        assert_eq!(row(&con, 1), "12345");
        assert_eq!(row(&con, 2), "     ");
        // Drawing blacks the margins the firmware's picture was left in.
        con.flush(0);
        for (x, y) in [
            (0, 0),
            (5 * CELL_W + 1, 3 * CELL_H + 2),
            (0, 3 * CELL_H + 1),
        ] {
            assert_eq!(px(&con, x, y), [0, 0, 0], "margin pixel {x},{y}");
        }
    }

    #[test_case]
    fn flush_draws_glyphs_cursor_and_colours() {
        let mut con = console(4 * CELL_W, 2 * CELL_H);
        con.write_bytes(b"|");
        con.write_coloured(Colour::Error, b"|");
        con.flush(0);
        let glyph = get_raster('|', FontWeight::Regular, RasterHeight::Size16).unwrap();
        let (gx, gy, i) = (0..CELL_H)
            .flat_map(|y| (0..CELL_W).map(move |x| (x, y)))
            .map(|(x, y)| (x, y, glyph.raster()[y][x]))
            .max_by_key(|&(_, _, i)| i)
            .unwrap();
        assert!(i > 100, "'|' has a bright pixel");
        let scaled = |c: u8| (c as u32 * i as u32 / 255) as u8;
        let grey = PALETTE[Colour::Normal as usize].map(scaled);
        let red = PALETTE[Colour::Error as usize].map(scaled);
        assert_eq!(px(&con, gx, gy), grey);
        assert_eq!(px(&con, CELL_W + gx, gy), red);
        // The background was cleared; the cursor underlines the third cell.
        assert_eq!(px(&con, 3 * CELL_W + 4, CELL_H + 5), [0, 0, 0]);
        assert_eq!(px(&con, 2 * CELL_W + 4, CELL_H - 1), PALETTE[0]);
        assert_eq!(px(&con, 2 * CELL_W + 4, CELL_H - 3), [0, 0, 0]);
        // Moving on redraws the old cursor cell without the bar.
        con.write_bytes(b"\n");
        con.flush(1);
        assert_eq!(px(&con, 2 * CELL_W + 4, CELL_H - 1), [0, 0, 0]);
        assert_eq!(px(&con, 4, 2 * CELL_H - 1), PALETTE[0]);
    }

    #[test_case]
    fn pending_console_draws_nothing_and_off_drops_text() {
        let mut con = on_ram(4 * CELL_W, CELL_H, PixelFormat::Bgr);
        con.write_bytes(b"ab");
        con.flush(0);
        let fb = con.fb.as_deref().unwrap_or(&[]);
        assert!(fb.iter().all(|&b| b == 0x55), "nothing drawn before enable");
        assert_eq!(con.char_at(0, 1), 'b');
        // Enabled, BGR: the cursor bar's grey is written blue byte first.
        con.enable();
        con.flush(0);
        let o = ((CELL_H - 1) * con.stride + 2 * CELL_W) * 4;
        let [r, g, b] = PALETTE[0];
        assert_eq!(con.fb.as_deref().unwrap_or(&[])[o..o + 4], [b, g, r, 0]);
        con.disable();
        con.write_bytes(b"cd");
        assert_eq!(con.size(), None);
        // A framebuffer smaller than its claimed size is refused.
        let small: &'static mut [u8] = vec![0u8; 16].leak();
        let mut other = boxed();
        let info = FrameBufferInfo {
            byte_len: 4 * CELL_W * CELL_H * 4,
            width: 4 * CELL_W,
            height: CELL_H,
            pixel_format: PixelFormat::Rgb,
            bytes_per_pixel: 4,
            stride: 4 * CELL_W,
        };
        other.attach(small, info);
        assert_eq!(other.size(), None);
    }

    /// The cost of drawing a whole 1280x720 screen (the BIOS mode the bootloader
    /// picks), printed for the README's figure.
    #[test_case]
    fn full_screen_redraw_cost() {
        let mut con = console(1280, 720);
        for _ in 0..45 {
            con.write_bytes(
                b"[    0.051461]   node   0: [mem 0x0000000000100000-0x000000001ffdffff]\n",
            );
        }
        let t0 = crate::tsc::uptime_ns();
        con.flush(t0);
        let t1 = crate::tsc::uptime_ns();
        crate::serial_print!("(full 142x45 redraw: {} us) ", (t1 - t0) / 1000);
        assert!(
            con.shown[..con.cols * con.rows]
                .iter()
                .all(|&c| c != UNKNOWN)
        );
    }
}
