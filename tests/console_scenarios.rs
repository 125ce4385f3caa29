//! Boot scenarios for the framebuffer console and the PS/2 keyboard (issue 15 items
//! 1 and 2): what the serial console shows must be on the screen, pixel for pixel,
//! and keys typed on the emulated keyboard (QEMU's `sendkey`) reach the shell.
mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use boot::qemu::PROMPT;
use boot::session::Session;
use common::*;
use noto_sans_mono_bitmap::{FontWeight, RasterHeight, get_raster, get_raster_width};

/// The kernel console's layout and colours (kernel/src/fbcon.rs's module doc): 9x16
/// cells of Noto Sans Mono regular 16 px, the grid centred, black background, each
/// glyph pixel `colour * intensity / 255`, the cursor as the bottom two pixel rows
/// of its cell; log warnings yellow, errors red, the rest light grey.
const GREY: [u8; 3] = [0xc0, 0xc0, 0xc0];
const YELLOW: [u8; 3] = [0xff, 0xd7, 0x00];
const RED: [u8; 3] = [0xff, 0x55, 0x55];
const CELL_H: usize = 16;

/// An RGB image (what a PPM holds).
#[derive(Clone, PartialEq, Eq)]
struct Image {
    w: usize,
    h: usize,
    rgb: Vec<u8>,
}

impl Image {
    fn parse_ppm(bytes: &[u8]) -> Image {
        // "P6 <w> <h> <max>" then one whitespace byte and the pixels.
        let mut fields = Vec::new();
        let mut i = 0;
        while fields.len() < 4 {
            while bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            let start = i;
            while !bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            fields.push(String::from_utf8_lossy(&bytes[start..i]).into_owned());
        }
        assert_eq!(fields[0], "P6", "not a binary PPM");
        assert_eq!(fields[3], "255");
        let (w, h): (usize, usize) = (fields[1].parse().unwrap(), fields[2].parse().unwrap());
        let rgb = bytes[i + 1..].to_vec();
        assert_eq!(rgb.len(), w * h * 3, "PPM size");
        Image { w, h, rgb }
    }

    fn ppm(&self) -> Vec<u8> {
        let mut out = format!("P6\n{} {}\n255\n", self.w, self.h).into_bytes();
        out.extend_from_slice(&self.rgb);
        out
    }

    fn set(&mut self, x: usize, y: usize, rgb: [u8; 3]) {
        let o = (y * self.w + x) * 3;
        self.rgb[o..o + 3].copy_from_slice(&rgb);
    }
}

/// One text row of the expected screen.
struct Row {
    text: String,
    colour: [u8; 3],
}

/// The screen a terminal of `cols` x `rows` shows after printing `transcript`
/// (the serial console's text, `\r` removed): each line wrapped at `cols`, the last
/// `rows` rows at the top, the cursor after the last character. Returns the rows
/// and the cursor (column, row).
fn expected_rows(transcript: &str, cols: usize, rows: usize) -> (Vec<Row>, (usize, usize)) {
    let mut all = Vec::new();
    let lines: Vec<&str> = transcript.split('\n').collect();
    for line in &lines {
        assert!(
            line.bytes().all(|b| (0x20..0x7f).contains(&b)),
            "only printable ASCII expected: {line:?}"
        );
        let colour = if line.starts_with('[') && line.contains("] error: ") {
            RED
        } else if line.starts_with('[') && line.contains("] warning: ") {
            YELLOW
        } else {
            GREY
        };
        let chars: Vec<char> = line.chars().collect();
        if chars.is_empty() {
            all.push(Row {
                text: String::new(),
                colour,
            });
        }
        for chunk in chars.chunks(cols) {
            all.push(Row {
                text: chunk.iter().collect(),
                colour,
            });
        }
    }
    let skip = all.len().saturating_sub(rows);
    let shown: Vec<Row> = all.into_iter().skip(skip).collect();
    let last = shown.last().map_or(0, |r| r.text.len());
    let cursor = (last.min(cols - 1), shown.len() - 1);
    (shown, cursor)
}

/// Render what the console should show on a `w` x `h` screen after `transcript`,
/// with the font crate itself (the kernel's drawing code is not used). Also returns
/// the text rows, for messages.
fn render(transcript: &str, w: usize, h: usize) -> (Image, Vec<String>) {
    let cell_w = get_raster_width(FontWeight::Regular, RasterHeight::Size16);
    let (cols, rows) = (w / cell_w, h / CELL_H);
    let (x0, y0) = ((w - cols * cell_w) / 2, (h - rows * CELL_H) / 2);
    let (text, cursor) = expected_rows(transcript, cols, rows);
    let mut img = Image {
        w,
        h,
        rgb: vec![0; w * h * 3],
    };
    for (r, row) in text.iter().enumerate() {
        for (c, ch) in row.text.chars().enumerate() {
            let glyph =
                get_raster(ch, FontWeight::Regular, RasterHeight::Size16).expect("ASCII glyph");
            for (gy, line) in glyph.raster().iter().enumerate() {
                for (gx, &i) in line.iter().enumerate() {
                    let px = row.colour.map(|v| (v as u32 * i as u32 / 255) as u8);
                    img.set(x0 + c * cell_w + gx, y0 + r * CELL_H + gy, px);
                }
            }
        }
    }
    let (cc, cr) = cursor;
    for gy in CELL_H - 2..CELL_H {
        for gx in 0..cell_w {
            img.set(x0 + cc * cell_w + gx, y0 + cr * CELL_H + gy, GREY);
        }
    }
    (img, text.into_iter().map(|r| r.text).collect())
}

/// The console text from the kernel's banner on (what the kernel itself printed;
/// under UEFI the firmware writes to the serial port first).
fn kernel_text(out: &str) -> String {
    let start = out
        .find(" (x86_64, zoned physical memory")
        .and_then(|i| out[..i].rfind("zoned "))
        .unwrap_or_else(|| panic!("no banner in:\n{out}"));
    out[start..].to_string()
}

/// Take screendumps until one equals the rendering of the serial transcript (the
/// console is drawn when the shell goes idle, a moment after the serial side).
/// Panics with the first differing text row, saving both images under
/// target/scenario-files.
fn assert_screen_shows(s: &Session, sock: &Path, name: &str) {
    let dir = sock.parent().unwrap();
    let dump = dir.join(format!("{name}.ppm"));
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let _ = std::fs::remove_file(&dump);
        monitor(sock, &[&format!("screendump {}", dump.display())]);
        let transcript = kernel_text(&s.output());
        let Ok(bytes) = std::fs::read(&dump) else {
            assert!(Instant::now() < until, "no screendump written");
            continue;
        };
        let shot = Image::parse_ppm(&bytes);
        let (want, rows) = render(&transcript, shot.w, shot.h);
        if shot == want {
            return;
        }
        if Instant::now() > until {
            std::fs::write(dir.join(format!("{name}-expected.ppm")), want.ppm()).unwrap();
            let row_bytes = shot.w * 3 * CELL_H;
            let bad = (0..shot.h / CELL_H)
                .find(|&r| {
                    let range = r * row_bytes..(r + 1) * row_bytes;
                    shot.rgb.get(range.clone()) != want.rgb.get(range)
                })
                .unwrap_or(0);
            let differing = shot
                .rgb
                .iter()
                .zip(&want.rgb)
                .filter(|(a, b)| a != b)
                .count();
            panic!(
                "screen ({}x{}) differs from the serial console in {differing} bytes; first at text row {bad}, \
                 expected {:?}; images in {}",
                shot.w,
                shot.h,
                rows.get(bad).map_or("", |r| r.as_str()),
                dir.display()
            );
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// The screendump check: `zoneinfo` typed on the serial side. Two screendumps are
/// compared pixel for pixel, the whole screen, with an image rendered on the host
/// from the serial transcript in the same font (noto-sans-mono-bitmap 0.2.0, regular,
/// 16 px) and the console's layout and colours:
/// 1. with `zoneinfo` typed but Enter not yet pressed: the boot log, then the prompt
///    and the echoed command line with the cursor after it;
/// 2. after Enter and the next prompt: zoneinfo's output is longer than the screen
///    (45 rows at BIOS's 1280x720), so this shows its last lines scrolled up
///    (`Node 0, zone   Normal` ... `protection: (0, 0, 0, 0, 0)`) and the new prompt.
///
/// Every pixel must match, margins and background included: glyph shapes, their
/// positions (cell grid, wrapping of lines longer than 142 columns such as the
/// `Memory:` line, scrolling), colours and the cursor.
fn screen_shows_serial_console(flags: &str, name: &str) {
    let sock = monitor_socket(&format!("{name}.sock"));
    let mut o = opts(flags);
    o.monitor = Some(sock.clone());
    let mut s = Session::start(&o).unwrap();
    s.wait_for_count(PROMPT, 1, Duration::from_secs(120))
        .unwrap();
    s.type_text("zoneinfo").unwrap();
    s.wait_for_count(&format!("{PROMPT}zoneinfo"), 1, Duration::from_secs(30))
        .unwrap();
    assert_screen_shows(&s, &sock, &format!("{name}-typed"));
    s.type_text("\r").unwrap();
    let out = s
        .wait_for_count(PROMPT, 2, Duration::from_secs(60))
        .unwrap();
    assert!(section(&out, "zoneinfo").contains("Node 0, zone    DMA32"));
    assert_screen_shows(&s, &sock, &format!("{name}-output"));
    s.send("poweroff").unwrap();
    let (outcome, out) = s.finish(Duration::from_secs(60));
    assert_eq!(outcome, boot::Outcome::Success, "{out}");
}

#[test]
fn bios_screen_shows_the_serial_console() {
    screen_shows_serial_console("", "fbcon-bios");
}

#[test]
fn uefi_screen_shows_the_serial_console() {
    screen_shows_serial_console("--uefi", "fbcon-uefi");
}

/// The expected-screen model itself: wrapping, scrolling, colours and the cursor.
#[test]
fn expected_rows_wrap_and_scroll() {
    let (rows, cursor) = expected_rows("abcdefg\n\n[ 1.0] warning: x\nzoned> ", 5, 4);
    let text: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
    assert_eq!(text, ["ning:", " x", "zoned", "> "]);
    let colours: Vec<[u8; 3]> = rows.iter().map(|r| r.colour).collect();
    assert_eq!(colours, [YELLOW, YELLOW, GREY, GREY]);
    assert_eq!(cursor, (2, 3));
    let (rows, cursor) = expected_rows("abcde", 5, 4);
    assert_eq!(rows.len(), 1);
    assert_eq!(
        cursor,
        (4, 0),
        "a full row: the cursor stays on its last cell"
    );
}

/// Keys typed on the PS/2 keyboard (QEMU `sendkey`, one key each, `ret` for Enter)
/// run a command whose answer comes out on serial; keys the shell does not use (F1,
/// Escape) are ignored; the keyboard and the serial port type into the same line.
#[test]
fn keyboard_types_into_the_shell() {
    let sock = monitor_socket("keyboard.sock");
    let mut o = opts("");
    o.monitor = Some(sock.clone());
    let mut s = Session::start(&o).unwrap();
    s.wait_for_count(PROMPT, 1, Duration::from_secs(120))
        .unwrap();
    let keys = ["m", "e", "f1", "m", "esc", "i", "n", "f", "o", "ret"];
    let cmds: Vec<String> = keys.iter().map(|k| format!("sendkey {k}")).collect();
    monitor(&sock, &cmds.iter().map(String::as_str).collect::<Vec<_>>());
    let out = s
        .wait_for_count(PROMPT, 2, Duration::from_secs(60))
        .unwrap();
    let meminfo = section(&out, "meminfo");
    assert!(meminfo.contains("MemTotal:"), "{out}");
    assert!(meminfo_kb(meminfo, "MemTotal") > 400_000, "{meminfo}");
    // Half a line on the keyboard, the rest on serial.
    monitor(&sock, &["sendkey b", "sendkey u", "sendkey d"]);
    s.wait_for_count(&format!("{PROMPT}bud"), 1, Duration::from_secs(30))
        .unwrap();
    let buddy = s.command("dyinfo", Duration::from_secs(60)).unwrap();
    assert!(buddy.contains("Node 0, zone      DMA"), "{buddy}");
    s.send("poweroff").unwrap();
    let (outcome, out) = s.finish(Duration::from_secs(60));
    assert_eq!(outcome, boot::Outcome::Success, "{out}");
}
