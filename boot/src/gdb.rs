//! `--gdb [PORT]`: QEMU's gdb stub, reached through a small relay on
//! localhost:PORT that tells gdb where the kernel was loaded.
//!
//! The kernel is a position-independent ELF: the bootloader puts it at the first
//! free level-4 page-table slot (512 GiB each) above the identity-mapped physical
//! address space, not at the addresses in the ELF. gdb asks a remote stub for such
//! an offset with `qOffsets`, which QEMU answers only in user mode; the relay
//! answers it (and forwards every other packet unchanged), so that `gdb ELF` then
//! `target remote localhost:PORT` puts breakpoints and backtraces at the right
//! addresses with no `-o OFFSET`.
//!
//! The relay also reserves PORT before QEMU starts: a port in use is a clear error.
//! QEMU's own stub listens on another localhost port, picked free.
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::options::RunOptions;

/// The size of the address range one level-4 page-table entry maps.
const L4_SPAN: u64 = 1 << 39;
/// The end of the HyperTransport hole that QEMU (7.1 and later) reserves in the
/// E820 map below 1 TiB for AMD-vendor CPUs such as the default `qemu64`.
const AMD_HT_END: u64 = 1 << 40;

/// Where the bootloader (0.11, ASLR off) loads the kernel for these options: the
/// first level-4 slot above the highest memory-map entry. QEMU's default CPU is
/// AMD-vendor, so SeaBIOS's E820 map reaches up to 1 TiB (the reserved
/// HyperTransport hole) and the kernel lands at 0x100_0000_0000. OVMF's UEFI map
/// leaves that hole out, and so does E820 with another `-cpu` (an Intel model):
/// the map ends at the top of RAM, and the kernel lands at 0x80_0000_0000.
/// (Checked with gdb: the kernel's ELF header is at that address.)
pub fn kernel_load_offset(opts: &RunOptions) -> u64 {
    let other_cpu = opts.uefi || opts.qemu_args.iter().any(|a| a == "-cpu");
    let ram_top = if opts.mem >= 0xe000_0000 {
        // pc: 3 GiB below the PCI hole, the rest from 4 GiB.
        (4 << 30) + opts.mem - (3 << 30)
    } else {
        opts.mem
    };
    let top = if other_cpu {
        ram_top
    } else {
        ram_top.max(AMD_HT_END)
    };
    top.div_ceil(L4_SPAN).max(1) * L4_SPAN
}

/// The `qOffsets` reply: every section moved by `offset`.
pub fn offsets_reply(offset: u64) -> String {
    format!("Text={offset:x};Data={offset:x};Bss={offset:x}")
}

/// A gdb remote-protocol packet: `$payload#checksum`.
pub fn packet(payload: &str) -> Vec<u8> {
    let sum = payload.bytes().fold(0u8, |a, b| a.wrapping_add(b));
    format!("${payload}#{sum:02x}").into_bytes()
}

/// The relay: listening on localhost:PORT for gdb, QEMU's stub on another port.
pub struct Relay {
    listener: TcpListener,
    port: u16,
    qemu_port: u16,
}

impl Relay {
    /// Reserve localhost:`port`; Err with a one-line reason if it is in use.
    pub fn bind(port: u16) -> Result<Relay, String> {
        let listener = TcpListener::bind(("127.0.0.1", port)).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AddrInUse {
                format!(
                    "--gdb: port {port} is already in use (another QEMU or gdb stub?); \
                     pick a free one with --gdb PORT"
                )
            } else {
                format!("--gdb: cannot listen on localhost:{port}: {e}")
            }
        })?;
        // A free port for QEMU's stub: the kernel hands out ephemeral ports in
        // turn, so it stays free until QEMU takes it a moment later.
        let qemu_port = TcpListener::bind(("127.0.0.1", 0))
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("--gdb: no free port for QEMU's stub: {e}"))?
            .port();
        Ok(Relay {
            listener,
            port,
            qemu_port,
        })
    }

    /// The port gdb connects to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Where QEMU's own stub listens (`RunOptions::gdb_stub`).
    pub fn qemu_port(&self) -> u16 {
        self.qemu_port
    }

    /// Serve gdb connections from a thread for the rest of the process, one at a
    /// time, each relayed to QEMU's stub with `qOffsets` answered as `offset`.
    pub fn serve(&self, offset: u64) -> Result<(), String> {
        let listener = self
            .listener
            .try_clone()
            .map_err(|e| format!("--gdb: {e}"))?;
        let qemu_port = self.qemu_port;
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(gdb) = conn else { continue };
                let _ = relay(gdb, qemu_port, offset);
            }
        });
        Ok(())
    }
}

/// Connect to QEMU's stub (it may still be starting).
fn connect_qemu(port: u16) -> std::io::Result<TcpStream> {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => return Ok(s),
            Err(e) if Instant::now() > until => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// One gdb session: QEMU's bytes go to gdb unchanged; gdb's packets go to QEMU
/// except `qOffsets`, answered here, and `QStartNoAckMode`, refused here so that
/// both sides stay in acknowledged mode (the relay's own replies are then always
/// preceded by the `+` gdb waits for).
fn relay(gdb: TcpStream, qemu_port: u16, offset: u64) -> std::io::Result<()> {
    let _ = gdb.set_nodelay(true);
    let qemu = connect_qemu(qemu_port)?;
    let _ = qemu.set_nodelay(true);
    let to_gdb = Arc::new(Mutex::new(gdb.try_clone()?));
    let mut from_qemu = qemu.try_clone()?;
    let sink = Arc::clone(&to_gdb);
    let back = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = from_qemu.read(&mut buf) {
            if n == 0 {
                break;
            }
            let mut g = sink.lock().unwrap_or_else(|e| e.into_inner());
            if g.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let g = sink.lock().unwrap_or_else(|e| e.into_inner());
        let _ = g.shutdown(std::net::Shutdown::Both);
    });
    let mut from_gdb = gdb;
    let mut to_qemu = qemu;
    let mut parser = PacketSplitter::default();
    let mut buf = [0u8; 4096];
    loop {
        let n = match from_gdb.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for piece in parser.feed(&buf[..n]) {
            let reply = match &piece {
                Piece::Packet { payload, .. } if payload == b"qOffsets" => {
                    Some(offsets_reply(offset))
                }
                Piece::Packet { payload, .. } if payload == b"QStartNoAckMode" => {
                    Some(String::new())
                }
                _ => None,
            };
            match (reply, piece) {
                (Some(r), _) => {
                    let mut g = to_gdb.lock().unwrap_or_else(|e| e.into_inner());
                    g.write_all(b"+")?;
                    g.write_all(&packet(&r))?;
                }
                (None, Piece::Packet { raw, .. }) | (None, Piece::Bytes(raw)) => {
                    to_qemu.write_all(&raw)?
                }
            }
        }
    }
    let _ = to_qemu.shutdown(std::net::Shutdown::Both);
    let _ = back.join();
    Ok(())
}

/// A piece of the gdb-to-stub byte stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece {
    /// A whole packet: its bytes as sent and its payload.
    Packet { raw: Vec<u8>, payload: Vec<u8> },
    /// Bytes outside packets (`+`, `-`, the 0x03 interrupt).
    Bytes(Vec<u8>),
}

/// Splits the stream into packets, however the reads cut it.
#[derive(Debug, Default)]
pub struct PacketSplitter {
    /// The packet being read (from its `$`), and how many checksum digits are
    /// still due once its `#` was seen.
    partial: Option<(Vec<u8>, Option<u8>)>,
}

impl PacketSplitter {
    /// The pieces that `bytes` completes.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Piece> {
        let mut out = Vec::new();
        let mut loose = Vec::new();
        for &b in bytes {
            match &mut self.partial {
                None if b == b'$' => {
                    if !loose.is_empty() {
                        out.push(Piece::Bytes(std::mem::take(&mut loose)));
                    }
                    self.partial = Some((vec![b], None));
                }
                None => loose.push(b),
                Some((raw, due)) => {
                    raw.push(b);
                    match due {
                        None if b == b'#' => *due = Some(2),
                        None => {}
                        Some(n) => {
                            *n -= 1;
                            if *n == 0 {
                                let raw = std::mem::take(raw);
                                // Between the `$` and the `#`.
                                let payload = raw[1..raw.len() - 3].to_vec();
                                out.push(Piece::Packet { raw, payload });
                                self.partial = None;
                            }
                        }
                    }
                }
            }
        }
        if !loose.is_empty() {
            out.push(Piece::Bytes(loose));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_have_gdb_checksums() {
        assert_eq!(packet("OK"), b"$OK#9a");
        assert_eq!(packet(""), b"$#00");
        assert_eq!(
            offsets_reply(0x100_0000_0000),
            "Text=10000000000;Data=10000000000;Bss=10000000000"
        );
    }

    #[test]
    fn splitter_finds_packets_across_reads() {
        let stream = b"+$qSupported:xmlRegisters=i386#6a+\x03$qOffsets#4b+";
        for cut in 0..=stream.len() {
            let mut s = PacketSplitter::default();
            let mut pieces = s.feed(&stream[..cut]);
            pieces.extend(s.feed(&stream[cut..]));
            let payloads: Vec<&[u8]> = pieces
                .iter()
                .filter_map(|p| match p {
                    Piece::Packet { payload, .. } => Some(payload.as_slice()),
                    Piece::Bytes(_) => None,
                })
                .collect();
            assert_eq!(
                payloads,
                [&b"qSupported:xmlRegisters=i386"[..], b"qOffsets"],
                "cut at {cut}"
            );
            // Nothing is lost or reordered.
            let all: Vec<u8> = pieces
                .into_iter()
                .flat_map(|p| match p {
                    Piece::Packet { raw, .. } | Piece::Bytes(raw) => raw,
                })
                .collect();
            assert_eq!(all, stream, "cut at {cut}");
        }
    }

    #[test]
    fn load_offset_follows_the_memory_map_top() {
        let mut o = RunOptions::default();
        assert_eq!(kernel_load_offset(&o), 0x100_0000_0000);
        o.mem = 64 << 30;
        assert_eq!(kernel_load_offset(&o), 0x100_0000_0000);
        o.uefi = true;
        assert_eq!(kernel_load_offset(&o), 0x80_0000_0000);
        o.uefi = false;
        o.qemu_args = vec!["-cpu".into(), "Skylake-Client".into()];
        assert_eq!(kernel_load_offset(&o), 0x80_0000_0000);
        o.mem = 512 << 30;
        assert_eq!(kernel_load_offset(&o), 0x100_0000_0000);
    }

    #[test]
    fn a_port_in_use_is_refused() {
        let taken = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = taken.local_addr().unwrap().port();
        let e = Relay::bind(port).err().unwrap();
        assert!(e.contains(&format!("port {port} is already in use")), "{e}");
    }
}
