//! Launching QEMU: the command line for the runner's options, and one run with a
//! timeout, the console copied to our stdout and/or kept, and the exit status
//! turned into an [`Outcome`] with a one-line reason.
use std::collections::VecDeque;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::kbuild::repo_root;
use crate::options::{RunOptions, Screen};

/// Debian's OVMF firmware for `--uefi`.
pub const OVMF: &str = "/usr/share/ovmf/OVMF.fd";
/// What the kernel prints before it resets for `reboot` (Linux's words).
pub const REBOOT_MARKER: &str = "reboot: Restarting system";

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// isa-debug-exit with 0x10: poweroff, or all tests passed.
    Success,
    /// isa-debug-exit with 0x11: panic or failed test.
    KernelFailure,
    /// The kernel asked for a reboot.
    Reboot,
    /// QEMU exited by itself: a triple fault (with -no-reboot) or an unexpected reset.
    Reset,
    /// Killed after the timeout.
    Timeout,
    /// QEMU could not run or died.
    QemuError(i32),
}

impl Outcome {
    /// The runner's exit code.
    pub fn exit_code(self) -> i32 {
        match self {
            Outcome::Success | Outcome::Reboot => 0,
            Outcome::KernelFailure => 1,
            Outcome::Reset => 2,
            Outcome::QemuError(_) => 3,
            Outcome::Timeout => 124,
        }
    }

    /// One line saying why the run ended.
    pub fn reason(self) -> String {
        match self {
            Outcome::Success => "kernel exited with success".into(),
            Outcome::KernelFailure => "kernel reported failure (panic or failed test)".into(),
            Outcome::Reboot => "kernel rebooted".into(),
            Outcome::Reset => {
                "triple fault or unexpected reset (QEMU exited without isa-debug-exit)".into()
            }
            Outcome::Timeout => "timeout: QEMU was killed".into(),
            Outcome::QemuError(c) => format!("QEMU failed (exit status {c})"),
        }
    }
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// How it ended.
    pub outcome: Outcome,
    /// Everything the serial console printed (`\r` removed), when captured.
    pub output: String,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// When the shell prompt first appeared, from QEMU's start.
    pub prompt_at: Option<Duration>,
}

/// The shell prompt the kernel prints (one constant, the shell crate's, for both sides).
pub use shell::PROMPT;

/// Where the console goes and where input comes from.
#[derive(Debug, Clone)]
pub enum Console {
    /// Our stdin/stdout: interactive, or `printf ... | cargo run`.
    Inherit,
    /// Feed these bytes as input; keep the output (and copy it to stdout if `echo`).
    Script { input: Vec<u8>, echo: bool },
}

fn nvdimm_file(index: usize, size: u64, chosen: &Option<PathBuf>) -> Result<PathBuf, String> {
    let path = match chosen {
        Some(p) => p.clone(),
        None => {
            let dir = repo_root().join("target").join("nvdimm");
            std::fs::create_dir_all(&dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            dir.join(format!("nvdimm{index}-{}M.img", size >> 20))
        }
    };
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| format!("cannot open NVDIMM file {}: {e}", path.display()))?;
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    if len != size {
        // A sparse file: costs no disk until the guest writes.
        f.set_len(size)
            .map_err(|e| format!("cannot size NVDIMM file {}: {e}", path.display()))?;
    }
    Ok(path)
}

/// Whether the host has a display a QEMU window could open on.
pub fn host_has_display() -> bool {
    ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
}

/// The window UIs this QEMU has (Debian ships them in qemu-system-gui).
fn window_ui() -> Option<&'static str> {
    let out = Command::new("qemu-system-x86_64")
        .args(["-display", "help"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let has = |ui: &str| text.lines().any(|l| l.trim() == ui);
    ["gtk", "sdl"].into_iter().find(|ui| has(ui))
}

/// The first VNC display (5900 + N) free on localhost, from `first`.
pub fn free_vnc_display(first: u16) -> Option<u16> {
    (first..100).find(|n| std::net::TcpListener::bind(("127.0.0.1", 5900 + n)).is_ok())
}

/// What `--display` becomes on this host: a window where there is a display and
/// a QEMU window UI, else VNC on a free localhost port. Also a line saying so.
pub fn resolve_screen() -> Result<(Screen, String), String> {
    let mut why = "";
    if host_has_display() {
        match window_ui() {
            Some(ui) => return Ok((Screen::Window(ui), format!("display: QEMU window ({ui})"))),
            None => why = " (no QEMU window UI installed: apt-get install qemu-system-gui)",
        }
    }
    let n = free_vnc_display(0).ok_or("--display: no free VNC port in 5900-5999")?;
    Ok((
        Screen::Vnc(n),
        format!("display: VNC on localhost:{} (display :{n}){why}", 5900 + n),
    ))
}

/// QEMU's arguments for a resolved screen.
pub fn screen_args(screen: Screen) -> Vec<String> {
    let args: Vec<String> = match screen {
        Screen::Headless | Screen::Auto => vec!["-display".into(), "none".into()],
        Screen::Window(ui) => vec!["-display".into(), ui.into()],
        Screen::Vnc(n) => vec![
            "-display".into(),
            "none".into(),
            "-vnc".into(),
            format!("localhost:{n}"),
        ],
    };
    args
}

/// QEMU's option syntax doubles commas inside a value.
fn escape_commas(s: &str) -> String {
    s.replace(',', ",,")
}

/// The QEMU command line for `image` booted with `opts`.
pub fn command(image: &Path, opts: &RunOptions) -> Result<Command, String> {
    let mut cmd = Command::new("qemu-system-x86_64");
    let nv_total: u64 = opts.nvdimms.iter().map(|n| n.size).sum();
    let mem_mib = opts.mem >> 20;
    // Guest RAM from backends with reserve=off (MAP_NORESERVE): QEMU touches only
    // what the guest uses, so `--mem 64G` boots on a smaller host instead of
    // failing with "cannot set up guest memory". One backend for the whole machine,
    // or one per --numa node.
    let topo = &opts.topology;
    let (ram, backend) = topo.ram_args(opts.mem);
    cmd.args(&ram);
    let nv = if opts.nvdimms.is_empty() {
        ""
    } else {
        ",nvdimm=on"
    };
    let backend = backend.map_or(String::new(), |b| format!(",memory-backend={b}"));
    cmd.args(["-machine", &format!("pc{backend}{nv}")]);
    let (dimm_slots, dimm_total) = topo.dimm_room();
    let slots = opts.slots.unwrap_or(0) + opts.nvdimms.len() as u32 + dimm_slots;
    if slots > 0 {
        let maxmem = opts.maxmem.unwrap_or(opts.mem) + nv_total + dimm_total;
        cmd.args([
            "-m",
            &format!("{mem_mib}M,slots={slots},maxmem={}M", maxmem >> 20),
        ]);
    } else {
        cmd.args(["-m", &format!("{mem_mib}M")]);
    }
    // snapshot=on: the image is opened read-only with a shared lock, so several
    // QEMUs (parallel tests) can boot the same cached image.
    cmd.args([
        "-drive",
        &format!(
            "format=raw,snapshot=on,file={}",
            escape_commas(&image.to_string_lossy())
        ),
    ]);
    // The serial console stays on stdio whatever the screen.
    let screen = match opts.screen {
        Screen::Auto => resolve_screen()?.0,
        s => s,
    };
    cmd.args(["-serial", "stdio", "-no-reboot"]);
    cmd.args(screen_args(screen));
    // No NIC: the kernel has no network driver, and SeaBIOS would spend ~0.1 s
    // running the NIC's iPXE option ROM (the VGA card stays: the bootloader's BIOS
    // stage sets a VESA mode).
    cmd.args(["-nic", "none"]);
    cmd.args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]);
    if opts.uefi {
        if !Path::new(OVMF).is_file() {
            return Err(format!(
                "{OVMF} not found: install Debian's ovmf package for --uefi"
            ));
        }
        cmd.args(["-bios", OVMF]);
    }
    match &opts.monitor {
        Some(sock) => cmd.args([
            "-monitor",
            &format!("unix:{},server=on,wait=off", sock.display()),
        ]),
        None => cmd.args(["-monitor", "none"]),
    };
    if !opts.cmdline.is_empty() {
        cmd.args([
            "-fw_cfg",
            &format!(
                "name=opt/zoned/cmdline,string={}",
                escape_commas(&opts.cmdline)
            ),
        ]);
    }
    for t in &opts.acpitables {
        if !t.is_file() {
            return Err(format!("ACPI table {} not found", t.display()));
        }
        cmd.args([
            "-acpitable",
            &format!("file={}", escape_commas(&t.to_string_lossy())),
        ]);
    }
    for (i, nv) in opts.nvdimms.iter().enumerate() {
        let file = nvdimm_file(i, nv.size, &nv.file)?;
        cmd.args([
            "-object",
            &format!(
                "memory-backend-file,id=nvmem{i},share=on,mem-path={},size={}M",
                escape_commas(&file.to_string_lossy()),
                nv.size >> 20
            ),
        ]);
        let node = if topo.nodes.is_empty() && nv.node == 0 {
            String::new()
        } else {
            format!(",node={}", nv.node)
        };
        cmd.args([
            "-device",
            &format!("nvdimm,id=nvdimm{i},memdev=nvmem{i}{node}"),
        ]);
    }
    // -S: halted at reset until gdb continues.
    if let Some(port) = opts.gdb_stub.or(opts.gdb) {
        cmd.args(["-gdb", &format!("tcp:127.0.0.1:{port}"), "-S"]);
    }
    cmd.args(topo.qemu_args());
    cmd.args(&opts.qemu_args);
    Ok(cmd)
}

/// Lines read from our (non-terminal) stdin, waiting to be typed into the
/// kernel's shell one per prompt. Shared by every boot of this process, so a
/// `reboot` does not lose the lines after it.
pub struct PipedInput {
    queue: Mutex<(VecDeque<Vec<u8>>, bool)>,
    ready: Condvar,
}

impl PipedInput {
    /// The next line (with its newline); None at end of input or when `done`.
    fn next_line(&self, done: &AtomicBool) -> Option<Vec<u8>> {
        let mut q = self.queue.lock().unwrap();
        loop {
            if let Some(line) = q.0.pop_front() {
                return Some(line);
            }
            if q.1 || done.load(Ordering::SeqCst) {
                return None;
            }
            q = self
                .ready
                .wait_timeout(q, Duration::from_millis(50))
                .unwrap()
                .0;
        }
    }

    /// Put back a line that could not be sent.
    fn unget(&self, line: Vec<u8>) {
        self.queue.lock().unwrap().0.push_front(line);
    }
}

/// The process's piped input, read by a thread started on first use.
fn piped_input() -> &'static PipedInput {
    static INPUT: OnceLock<&'static PipedInput> = OnceLock::new();
    INPUT.get_or_init(|| {
        let input: &'static PipedInput = Box::leak(Box::new(PipedInput {
            queue: Mutex::new((VecDeque::new(), false)),
            ready: Condvar::new(),
        }));
        std::thread::spawn(move || {
            let mut stdin = std::io::stdin().lock();
            loop {
                let mut line = Vec::new();
                match std::io::BufRead::read_until(&mut stdin, b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        input.queue.lock().unwrap().0.push_back(line);
                        input.ready.notify_all();
                    }
                }
            }
            input.queue.lock().unwrap().1 = true;
            input.ready.notify_all();
        });
        input
    })
}

/// How many prompts in `all` end after its first `old_len` bytes: the prompts that
/// a read which grew the console from `old_len` to `all.len()` bytes completed.
/// A prompt split across two reads is counted once, by the read that completes
/// it; a prompt that lay wholly in the earlier bytes is not counted again (it was
/// counted by the read that ended with it).
pub fn prompts_ending_after(all: &[u8], old_len: usize) -> usize {
    let p = PROMPT.as_bytes();
    // The earliest start of a prompt that ends at or after byte old_len + 1.
    let from = old_len.saturating_sub(p.len() - 1).min(all.len());
    all[from..].windows(p.len()).filter(|w| *w == p).count()
}

/// Wait until the kernel printed its prompt (at most 10 minutes: a kernel that
/// never prompts gets its input anyway and the timeout decides).
fn wait_for_prompt(seen: &Mutex<Option<Duration>>) {
    let start = Instant::now();
    while seen.lock().unwrap().is_none() && start.elapsed() < Duration::from_secs(600) {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Wait for QEMU to exit, killing it `timeout` seconds after `start`.
pub(crate) fn wait(child: &mut Child, timeout: Option<u64>, start: Instant) -> Outcome {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                return match status.code() {
                    Some(33) => Outcome::Success,
                    Some(35) => Outcome::KernelFailure,
                    Some(0) => Outcome::Reset,
                    Some(c) => Outcome::QemuError(c),
                    None => Outcome::QemuError(-1),
                };
            }
            Ok(None) => {}
            Err(_) => return Outcome::QemuError(-1),
        }
        if let Some(t) = timeout
            && start.elapsed() > Duration::from_secs(t)
        {
            let _ = child.kill();
            let _ = child.wait();
            return Outcome::Timeout;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Boot `image` once.
pub fn run(image: &Path, opts: &RunOptions, console: &Console) -> Result<RunResult, String> {
    let mut cmd = command(image, opts)?;
    let start = Instant::now();
    let output = Arc::new(Mutex::new(Vec::<u8>::new()));
    let (echo, input) = match console {
        Console::Inherit => (true, None),
        Console::Script { input, echo } => (*echo, Some(input.clone())),
    };
    // Piped input (`printf ... | cargo run`) is forwarded once the prompt is up, like
    // a script; a terminal goes straight to QEMU, which puts it in raw mode.
    let forward_stdin = input.is_none() && !std::io::stdin().is_terminal();
    cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
    cmd.stdin(if input.is_some() || forward_stdin {
        Stdio::piped()
    } else {
        Stdio::inherit()
    });
    let mut child = cmd.spawn().map_err(|e| {
        format!("cannot start qemu-system-x86_64: {e} (apt-get install qemu-system-x86)")
    })?;
    let mut stdout = child.stdout.take().ok_or("no QEMU stdout")?;
    let sink = Arc::clone(&output);
    let prompt_seen = Arc::new(Mutex::new(None::<Duration>));
    let prompt_sink = Arc::clone(&prompt_seen);
    let prompt_count = Arc::new(AtomicUsize::new(0));
    let prompt_counter = Arc::clone(&prompt_count);
    let finished = Arc::new(AtomicBool::new(false));
    match (input, child.stdin.take()) {
        (Some(bytes), Some(mut stdin)) => {
            // Written from a thread once the shell prompt is up (input typed while
            // the kernel boots could meet an unconfigured UART), and only as fast as
            // QEMU takes it.
            let seen = Arc::clone(&prompt_seen);
            std::thread::spawn(move || {
                wait_for_prompt(&seen);
                let _ = stdin.write_all(&bytes);
            });
        }
        (None, Some(mut stdin)) if forward_stdin => {
            // One line per prompt, from a queue that outlives this QEMU: lines not
            // yet sent when the kernel reboots go to the next boot.
            let prompts = Arc::clone(&prompt_count);
            let done = Arc::clone(&finished);
            std::thread::spawn(move || {
                let mut sent = 0;
                loop {
                    while prompts.load(Ordering::SeqCst) <= sent {
                        if done.load(Ordering::SeqCst) {
                            return;
                        }
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    let Some(line) = piped_input().next_line(&done) else {
                        return;
                    };
                    if stdin.write_all(&line).and_then(|_| stdin.flush()).is_err() {
                        piped_input().unget(line);
                        return;
                    }
                    sent += 1;
                }
            });
        }
        _ => {}
    }
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let mut out = std::io::stdout();
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            if echo {
                let _ = out.write_all(&buf[..n]);
                let _ = out.flush();
            }
            let mut all = sink.lock().unwrap();
            let old_len = all.len();
            all.extend_from_slice(&buf[..n]);
            let new_prompts = prompts_ending_after(&all, old_len);
            if new_prompts > 0 {
                prompt_counter.fetch_add(new_prompts, Ordering::SeqCst);
                let mut seen = prompt_sink.lock().unwrap();
                if seen.is_none() {
                    *seen = Some(start.elapsed());
                }
            }
            drop(all);
            // QEMU's serial port writes the pipe a byte at a time; reading each byte as
            // it comes wakes this thread thousands of times a boot, and on a host with
            // as many cores as busy vCPUs each wake-up takes a vCPU's core. A pause
            // once the pipe is drained lets the bytes gather (the pipe holds 64 KiB);
            // 1 ms is below what a person at the console notices.
            if n < buf.len() {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    });
    let mut outcome = wait(&mut child, opts.timeout, start);
    finished.store(true, Ordering::SeqCst);
    let _ = reader.join();
    let text = String::from_utf8_lossy(&output.lock().unwrap()).replace('\r', "");
    if outcome == Outcome::Reset && text.trim_end().ends_with(REBOOT_MARKER) {
        outcome = Outcome::Reboot;
    }
    let prompt_at = *prompt_seen.lock().unwrap();
    Ok(RunResult {
        outcome,
        output: text,
        elapsed: start.elapsed(),
        prompt_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feed `out` in the given chunk sizes; the prompts counted read by read.
    fn count_in_chunks(out: &[u8], chunks: &[usize]) -> usize {
        let mut all = Vec::new();
        let mut rest = out;
        let mut total = 0;
        for &n in chunks.iter().chain(std::iter::repeat(&usize::MAX)) {
            if rest.is_empty() {
                break;
            }
            let n = n.min(rest.len());
            let old = all.len();
            all.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            total += prompts_ending_after(&all, old);
        }
        total
    }

    #[test]
    fn a_prompt_that_ends_a_read_is_counted_once() {
        // The bug behind issue 14 item 1: the next read re-scanned the previous
        // read's last PROMPT.len() bytes, which were the whole prompt.
        let out = b"banner\nzoned> ";
        assert_eq!(count_in_chunks(out, &[out.len(), 5]), 1);
        let mut all = out.to_vec();
        all.extend_from_slice(b"meminfo\n");
        assert_eq!(prompts_ending_after(&all, out.len()), 0);
    }

    #[test]
    fn prompts_split_anywhere_are_counted_once_each() {
        let out = b"boot\nzoned> meminfo\nMemTotal: 1 kB\nzoned> reboot\nzoned> ";
        for split in 0..=out.len() {
            assert_eq!(count_in_chunks(out, &[split]), 3, "split at {split}");
        }
        for size in 1..=out.len() {
            assert_eq!(count_in_chunks(out, &[size; 64]), 3, "chunks of {size}");
        }
    }

    fn args_of(opts: &RunOptions) -> Vec<String> {
        let cmd = command(Path::new("/x.img"), opts).unwrap();
        cmd.get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn headless_by_default_serial_on_stdio() {
        let a = args_of(&RunOptions::default()).join(" ");
        assert!(a.contains("-serial stdio"), "{a}");
        assert!(a.contains("-display none"), "{a}");
        assert!(
            !a.contains("-vnc") && !a.contains("-gdb") && !a.contains(" -S"),
            "{a}"
        );
    }

    #[test]
    fn screens_and_gdb_stub() {
        let mut o = RunOptions {
            screen: Screen::Vnc(3),
            ..Default::default()
        };
        let a = args_of(&o).join(" ");
        assert!(a.contains("-display none -vnc localhost:3"), "{a}");
        assert!(a.contains("-serial stdio"), "{a}");
        o.screen = Screen::Window("gtk");
        assert!(args_of(&o).join(" ").contains("-display gtk"));
        o.gdb = Some(4444);
        let a = args_of(&o).join(" ");
        assert!(a.contains("-gdb tcp:127.0.0.1:4444 -S"), "{a}");
        // Behind the runner's relay, QEMU's stub is on the port the relay picked.
        o.gdb_stub = Some(4445);
        let a = args_of(&o).join(" ");
        assert!(a.contains("-gdb tcp:127.0.0.1:4445 -S"), "{a}");
        assert!(!a.contains("4444"), "{a}");
    }

    #[test]
    fn no_prompt_no_count() {
        assert_eq!(prompts_ending_after(b"", 0), 0);
        assert_eq!(prompts_ending_after(b"zoned>", 0), 0);
        assert_eq!(prompts_ending_after(b"zoned> ", 7), 0);
    }
}
