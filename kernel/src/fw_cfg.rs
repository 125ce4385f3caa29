//! QEMU's fw_cfg device through its legacy I/O ports (selector 0x510, data 0x511):
//! the way the host passes the kernel command line
//! (`-fw_cfg name=opt/zoned/cmdline,string=...`) without a bootloader option.
use alloc::string::String;
use alloc::vec::Vec;
use x86_64::instructions::port::Port;

const SELECTOR: u16 = 0x510;
const DATA: u16 = 0x511;
const KEY_SIGNATURE: u16 = 0x0000;
const KEY_FILE_DIR: u16 = 0x0019;
/// Largest file we read (a command line is a few hundred bytes).
const MAX_FILE: u32 = 64 * 1024;

/// fw_cfg file holding the kernel command line.
pub const CMDLINE_FILE: &str = "opt/zoned/cmdline";

fn select(key: u16) {
    // SAFETY: 0x510 is the fw_cfg selector on QEMU's pc machine; on other machines
    // the signature check below fails first and nothing else is read.
    unsafe { Port::<u16>::new(SELECTOR).write(key) };
}

fn read_bytes(buf: &mut [u8]) {
    let mut port = Port::<u8>::new(DATA);
    for b in buf {
        // SAFETY: reading fw_cfg's data port only advances the selected item.
        *b = unsafe { port.read() };
    }
}

/// Whether a QEMU fw_cfg device answers.
pub fn present() -> bool {
    select(KEY_SIGNATURE);
    let mut sig = [0u8; 4];
    read_bytes(&mut sig);
    &sig == b"QEMU"
}

/// Read the fw_cfg file `name`, if the device and the file exist.
pub fn read_file(name: &str) -> Option<Vec<u8>> {
    if !present() {
        return None;
    }
    select(KEY_FILE_DIR);
    let mut count = [0u8; 4];
    read_bytes(&mut count);
    let count = u32::from_be_bytes(count).min(4096);
    for _ in 0..count {
        // struct FWCfgFile { be32 size; be16 select; u16 reserved; char name[56]; }
        let mut entry = [0u8; 64];
        read_bytes(&mut entry);
        let size = u32::from_be_bytes([entry[0], entry[1], entry[2], entry[3]]);
        let key = u16::from_be_bytes([entry[4], entry[5]]);
        let raw_name = &entry[8..];
        let len = raw_name
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(raw_name.len());
        if &raw_name[..len] == name.as_bytes() {
            let mut data = alloc::vec![0u8; size.min(MAX_FILE) as usize];
            select(key);
            read_bytes(&mut data);
            return Some(data);
        }
    }
    None
}

/// The kernel command line, empty when none was given.
pub fn cmdline() -> String {
    read_file(CMDLINE_FILE)
        .map(|bytes| {
            let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
            String::from_utf8_lossy(&bytes[..end]).into_owned()
        })
        .unwrap_or_default()
}
