//! An interactive QEMU session for boot scenarios that must act while the kernel
//! runs (QEMU monitor commands between shell commands): start, wait for text on
//! the console, send lines, and finish.
use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::options::RunOptions;
use crate::qemu;

/// A running kernel.
pub struct Session {
    child: Child,
    stdin: Option<ChildStdin>,
    output: Arc<Mutex<Vec<u8>>>,
    _slot: crate::Slot,
}

impl Session {
    /// Build (once per process) and boot the kernel with `opts`.
    pub fn start(opts: &RunOptions) -> Result<Session, String> {
        let elf = match &opts.kernel {
            Some(k) => k.clone(),
            None => crate::kernel_elf()?,
        };
        let image = crate::image::disk_image(&elf, opts.uefi)?;
        let mut cmd = qemu::command(&image, opts)?;
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let slot = crate::Slot::take();
        let mut child = cmd.spawn().map_err(|e| format!("cannot start QEMU: {e}"))?;
        let stdin = child.stdin.take();
        let mut stdout = child.stdout.take().ok_or("no QEMU stdout")?;
        let output = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&output);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Ok(Session {
            child,
            stdin,
            output,
            _slot: slot,
        })
    }

    /// Everything printed so far (`\r` removed).
    pub fn output(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap()).replace('\r', "")
    }

    /// Wait until the console shows `needle` `count` times in all; Err with the
    /// console on timeout or if QEMU exited.
    pub fn wait_for_count(
        &mut self,
        needle: &str,
        count: usize,
        timeout: Duration,
    ) -> Result<String, String> {
        let until = Instant::now() + timeout;
        loop {
            let out = self.output();
            if out.matches(needle).count() >= count {
                return Ok(out);
            }
            if Instant::now() > until {
                return Err(format!("timeout waiting for {needle:?}; console:\n{out}"));
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "QEMU exited ({status}) before {needle:?}; console:\n{out}"
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Send one line to the shell.
    pub fn send(&mut self, line: &str) -> Result<(), String> {
        let stdin = self.stdin.as_mut().ok_or("stdin closed")?;
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .and_then(|_| stdin.flush())
            .map_err(|e| format!("cannot write to QEMU: {e}"))
    }

    /// Send `text` as typed, without a newline (a line left unfinished at the prompt).
    pub fn type_text(&mut self, text: &str) -> Result<(), String> {
        let stdin = self.stdin.as_mut().ok_or("stdin closed")?;
        stdin
            .write_all(text.as_bytes())
            .and_then(|_| stdin.flush())
            .map_err(|e| format!("cannot write to QEMU: {e}"))
    }

    /// Send `line` and wait for the next prompt; returns the output of the command.
    pub fn command(&mut self, line: &str, timeout: Duration) -> Result<String, String> {
        let prompts = self.output().matches(qemu::PROMPT).count();
        self.send(line)?;
        let out = self.wait_for_count(qemu::PROMPT, prompts + 1, timeout)?;
        let after: Vec<&str> = out.split(qemu::PROMPT).collect();
        Ok(after.get(prompts).copied().unwrap_or("").to_string())
    }

    /// Wait for QEMU to exit (killing it after `timeout`), returning the outcome.
    pub fn finish(mut self, timeout: Duration) -> (qemu::Outcome, String) {
        drop(self.stdin.take());
        let outcome = qemu::wait(
            &mut self.child,
            Some(timeout.as_secs().max(1)),
            Instant::now(),
        );
        (outcome, self.output())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
