//! The runner's `--gdb` and `--image` (issue 15 items 4 and 5), through the runner
//! binary as a user runs it: gdb in batch mode (Debian's gdb package) against a
//! kernel halted at reset, a port in use, and disk images for a USB stick.
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The runner started with `args`; its stdout and stderr collected.
struct Runner {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

fn collect(mut from: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&text);
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    text
}

impl Runner {
    /// Start the runner; `input` is piped to it (one line per shell prompt).
    fn start(args: &[&str], input: &str) -> Runner {
        let mut child = Command::new(env!("CARGO_BIN_EXE_boot"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start the runner");
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input.as_bytes()).unwrap();
        drop(stdin);
        let stdout = collect(child.stdout.take().unwrap());
        let stderr = collect(child.stderr.take().unwrap());
        Runner {
            child,
            stdout,
            stderr,
        }
    }

    fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The first stdout line starting with `prefix`, waiting up to `timeout`.
    fn line(&mut self, prefix: &str, timeout: Duration) -> String {
        let until = Instant::now() + timeout;
        loop {
            if let Some(l) = self.stdout().lines().find(|l| l.starts_with(prefix)) {
                return l.to_string();
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!(
                    "runner exited ({st}) before a {prefix:?} line\n--- stdout ---\n{}\n--- stderr ---\n{}",
                    self.stdout(),
                    self.stderr()
                );
            }
            assert!(
                Instant::now() < until,
                "no {prefix:?} line\n{}",
                self.stdout()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Wait for the runner to exit (killed after `timeout`).
    fn wait(mut self, timeout: Duration) -> (ExitStatus, String, String) {
        let status = wait_child(&mut self.child, timeout);
        // Let the reader threads drain the pipes.
        std::thread::sleep(Duration::from_millis(200));
        (status, self.stdout(), self.stderr())
    }
}

fn wait_child(child: &mut Child, timeout: Duration) -> ExitStatus {
    let until = Instant::now() + timeout;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if Instant::now() > until {
            let _ = child.kill();
            let st = child.wait().unwrap();
            panic!("killed after {timeout:?} ({st})");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("gdb_image")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The first build of the kernel and the bootloader's stages takes minutes.
const BUILD: Duration = Duration::from_secs(1200);

#[test]
fn gdb_breaks_in_the_kernel_then_lets_it_run_to_poweroff() {
    let port = free_port();
    let port_s = port.to_string();
    let mut runner = Runner::start(&["--gdb", &port_s, "--timeout", "900"], "poweroff\n");
    let line = runner.line("gdb:", BUILD);
    let head = format!("gdb: target remote localhost:{port}, symbols in ");
    let path = line
        .strip_prefix(&head)
        .unwrap_or_else(|| panic!("bad gdb line {line:?}"));
    let elf = Path::new(path);
    assert!(elf.is_absolute(), "{line}");
    let bytes = std::fs::read(elf).unwrap();
    assert_eq!(&bytes[..4], b"\x7fELF");
    // Symbols and full debuginfo (the image itself gets a stripped copy).
    assert!(contains(&bytes, b".debug_info") && contains(&bytes, b".symtab"));
    assert!(contains(&bytes, b"kernel_main"));
    assert_eq!(
        runner.stdout().matches("gdb:").count(),
        1,
        "{}",
        runner.stdout()
    );

    let mut gdb = Command::new("gdb")
        .args(["-batch", "-nx"])
        .args(["-ex", "set pagination off"])
        .args(["-ex", &format!("target remote localhost:{port}")])
        .args(["-ex", "break kernel_main"])
        .args(["-ex", "continue"])
        .args(["-ex", "bt"])
        .args(["-ex", "delete"])
        .args(["-ex", "detach"])
        .arg(elf)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run gdb (apt-get install gdb)");
    let out = collect(gdb.stdout.take().unwrap());
    let err = collect(gdb.stderr.take().unwrap());
    let status = wait_child(&mut gdb, Duration::from_secs(600));
    std::thread::sleep(Duration::from_millis(200));
    let transcript = format!("{}{}", out.lock().unwrap(), err.lock().unwrap());
    assert!(status.success(), "gdb: {status}\n{transcript}");
    assert!(
        transcript.contains("Breakpoint 1, kernel::kernel_main"),
        "{transcript}"
    );
    // The backtrace names the kernel's functions: kernel_main, called from the
    // entry point the bootloader_api macro makes.
    let frames: Vec<&str> = transcript.lines().filter(|l| l.starts_with('#')).collect();
    assert!(
        frames
            .first()
            .is_some_and(|f| f.contains("kernel::kernel_main")),
        "{transcript}"
    );
    assert!(
        frames.iter().any(|f| f.contains("__impl_start")),
        "{transcript}"
    );
    assert!(transcript.contains("detached"), "{transcript}");

    // Detached, the kernel runs on to its prompt and powers off.
    let (status, stdout, stderr) = runner.wait(Duration::from_secs(600));
    assert_eq!(status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains(boot::qemu::PROMPT), "{stdout}");
    assert!(stdout.contains("poweroff"), "{stdout}");
}

#[test]
fn gdb_on_a_port_in_use_is_a_clear_error() {
    let taken = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let (status, stdout, stderr) =
        Runner::start(&["--gdb", &port], "").wait(Duration::from_secs(120));
    assert_eq!(status.code(), Some(3), "{stdout}\n{stderr}");
    let msg = format!("port {port} is already in use");
    assert!(stderr.contains(&msg), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(!stdout.contains("gdb:"), "{stdout}");
}

#[test]
fn image_writes_both_disk_images_and_fails_cleanly() {
    let base = scratch("image");
    let dir = base.join("usb").join("new");
    let (status, stdout, stderr) =
        Runner::start(&["--image", dir.to_str().unwrap()], "").wait(BUILD);
    assert_eq!(status.code(), Some(0), "{stdout}\n{stderr}");
    let bios = std::fs::read(dir.join("zoned-bios.img")).unwrap();
    let uefi = std::fs::read(dir.join("zoned-uefi.img")).unwrap();
    assert!(bios.len() > 512 && uefi.len() > 1024);
    // MBR boot signature; the UEFI image's protective MBR and GPT header.
    assert_eq!(&bios[510..512], &[0x55, 0xaa]);
    assert_eq!(&uefi[510..512], &[0x55, 0xaa]);
    assert_eq!(&uefi[512..520], b"EFI PART");
    let abs = std::fs::canonicalize(&dir).unwrap();
    for name in ["zoned-bios.img", "zoned-uefi.img"] {
        assert!(
            stdout.contains(&abs.join(name).display().to_string()),
            "{stdout}"
        );
    }
    assert!(
        stdout.contains("dd if=") && stdout.contains("of=/dev/sdX"),
        "{stdout}"
    );
    assert!(stdout.contains("WARNING"), "{stdout}");
    // Only the two images: no temporary files left.
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2);

    // A path below a regular file cannot be created (even as root).
    let blocker = base.join("blocker");
    std::fs::write(&blocker, b"not a directory").unwrap();
    let bad = blocker.join("usb");
    let (status, stdout, stderr) =
        Runner::start(&["--image", bad.to_str().unwrap()], "").wait(BUILD);
    assert_eq!(status.code(), Some(64), "{stdout}\n{stderr}");
    assert!(stderr.contains("--image: cannot create"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert_eq!(std::fs::read(&blocker).unwrap(), b"not a directory");

    // An image name taken by a directory: the rename fails, and neither image
    // nor any temporary file is left behind.
    let taken = base.join("taken");
    std::fs::create_dir_all(taken.join("zoned-bios.img").join("x")).unwrap();
    let (status, stdout, stderr) =
        Runner::start(&["--image", taken.to_str().unwrap()], "").wait(BUILD);
    assert_eq!(status.code(), Some(64), "{stdout}\n{stderr}");
    assert!(stderr.contains("cannot write"), "{stderr}");
    let left: Vec<String> = std::fs::read_dir(&taken)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["zoned-bios.img"], "{left:?}");
    let _ = std::fs::remove_dir_all(&base);
}
