//! Helpers shared by the boot scenarios.
#![allow(dead_code)]

use boot::{Outcome, RunOptions, RunResult};

/// Runner options from runner-style flags.
pub fn opts(flags: &str) -> RunOptions {
    let args: Vec<String> = shell_words(flags);
    let mut o =
        boot::options::parse(&args).unwrap_or_else(|e| panic!("bad options {flags:?}: {e}"));
    o.timeout = Some(o.timeout.unwrap_or(240));
    o
}

fn shell_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Boot with `flags`, run `script` (lines), expect a clean poweroff.
pub fn boot(flags: &str, script: &str) -> RunResult {
    let res =
        boot::boot_with_script(&opts(flags), script).unwrap_or_else(|e| panic!("boot failed: {e}"));
    assert_eq!(
        res.outcome,
        Outcome::Success,
        "{}\n--- console ---\n{}",
        res.outcome.reason(),
        res.output
    );
    res
}

/// The output of the command `cmd` in a transcript (between its prompt line and the
/// next prompt).
pub fn section<'a>(out: &'a str, cmd: &str) -> &'a str {
    let marker = format!("{}{cmd}\n", boot::qemu::PROMPT);
    let start = out
        .find(&marker)
        .map(|i| i + marker.len())
        .unwrap_or_else(|| panic!("no `{cmd}` in:\n{out}"));
    let rest = &out[start..];
    let end = rest.find(boot::qemu::PROMPT).unwrap_or(rest.len());
    &rest[..end]
}

/// The number after `key` on node 0's zone's line block of /proc/zoneinfo output.
pub fn zone_field(zoneinfo: &str, zone: &str, key: &str) -> u64 {
    node_zone_field(zoneinfo, 0, zone, key)
}

/// The number after `key` on the block of `zone` of node `nid` in /proc/zoneinfo output.
pub fn node_zone_field(zoneinfo: &str, nid: usize, zone: &str, key: &str) -> u64 {
    let head = format!("Node {nid}, zone {zone:>8}\n");
    let block = zoneinfo
        .find(&head)
        .map(|i| &zoneinfo[i + head.len()..])
        .map(|rest| rest.find("Node ").map_or(rest, |j| &rest[..j]));
    let block = block.unwrap_or_else(|| panic!("no node {nid} zone {zone} in:\n{zoneinfo}"));
    block
        .lines()
        .find_map(|l| {
            let mut w = l.split_whitespace();
            let first = w.next()?;
            if first == key {
                return w.next()?.parse().ok();
            }
            if first == "pages" && key == "free" && w.next()? == "free" {
                return w.next()?.parse().ok();
            }
            None
        })
        .unwrap_or_else(|| panic!("no {key} for zone {zone} in:\n{zoneinfo}"))
}

/// A meminfo field in kB.
pub fn meminfo_kb(meminfo: &str, key: &str) -> u64 {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in:\n{meminfo}"))
}

/// An NFIT with the given subtables (QEMU fixes the checksum and length).
pub fn nfit(subtables: &[Vec<u8>]) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(b"NFIT");
    t.extend_from_slice(&0u32.to_le_bytes());
    t.push(1);
    t.push(0);
    t.extend_from_slice(b"ZONED ");
    t.extend_from_slice(b"ZONEDTST");
    t.extend_from_slice(&1u32.to_le_bytes());
    t.extend_from_slice(b"ZOND");
    t.extend_from_slice(&1u32.to_le_bytes());
    t.extend_from_slice(&[0; 4]);
    for s in subtables {
        t.extend_from_slice(s);
    }
    let len = t.len() as u32;
    t[4..8].copy_from_slice(&len.to_le_bytes());
    let sum = t.iter().fold(0u8, |a, &b| a.wrapping_add(b));
    t[9] = 0u8.wrapping_sub(sum);
    t
}

/// The persistent-memory GUID in table byte order.
pub const PMEM_GUID: [u8; 16] = [
    0x79, 0xD3, 0xF0, 0x66, 0xF3, 0xB4, 0x74, 0x40, 0xAC, 0x43, 0x0D, 0x33, 0x18, 0xB7, 0x8C, 0xDB,
];

/// A 56-byte SPA range structure.
pub fn spa(index: u16, base: u64, len: u64, declared_len: u16) -> Vec<u8> {
    let mut s = Vec::new();
    s.extend_from_slice(&0u16.to_le_bytes());
    s.extend_from_slice(&declared_len.to_le_bytes());
    s.extend_from_slice(&index.to_le_bytes());
    s.extend_from_slice(&3u16.to_le_bytes());
    s.extend_from_slice(&0u32.to_le_bytes());
    s.extend_from_slice(&0u32.to_le_bytes());
    s.extend_from_slice(&PMEM_GUID);
    s.extend_from_slice(&base.to_le_bytes());
    s.extend_from_slice(&len.to_le_bytes());
    s.extend_from_slice(&0x8008u64.to_le_bytes());
    s
}

/// Write `bytes` to a fresh file under target/ and return its path.
pub fn temp_file(name: &str, bytes: &[u8]) -> String {
    let dir = boot::kbuild::repo_root()
        .join("target")
        .join("scenario-files");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_string_lossy().into_owned()
}

/// Send `cmds` to the QEMU monitor listening on `sock`, half a second apart.
pub fn monitor(sock: &std::path::Path, cmds: &[&str]) {
    monitor_output(sock, cmds);
}

/// Send QEMU monitor commands and return what the monitor answered to them (the
/// greeting left out).
pub fn monitor_output(sock: &std::path::Path, cmds: &[&str]) -> String {
    use std::io::{Read, Write};
    let mut stream = std::os::unix::net::UnixStream::connect(sock).expect("monitor socket");
    stream
        .set_read_timeout(Some(std::time::Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 8192];
    let _ = stream.read(&mut buf);
    let mut out = String::new();
    for c in cmds {
        stream.write_all(format!("{c}\n").as_bytes()).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(500));
        while let Ok(n) = stream.read(&mut buf) {
            if n == 0 {
                break;
            }
            out.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    }
    out
}

/// A fresh path for a monitor socket under target/scenario-files.
pub fn monitor_socket(name: &str) -> std::path::PathBuf {
    let sock = boot::kbuild::repo_root()
        .join("target")
        .join("scenario-files")
        .join(name);
    let _ = std::fs::create_dir_all(sock.parent().unwrap());
    let _ = std::fs::remove_file(&sock);
    sock
}
