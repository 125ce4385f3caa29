//! Running in-kernel test kernels: boot one under a timeout, collect its
//! `name ... ok` / `FAILED` lines, and, when a test panics (the kernel cannot
//! unwind), boot it again with `ktest.resume=NEXT,PASSED,FAILED` so the remaining
//! tests run too. A hung kernel is killed by the timeout and counts as failed.
//!
//! A test file may ask for machine options on a line of its own near the top:
//! `//! runner: --mem 6G --nvdimm 128M` (the runner's own flags).
use std::path::Path;

use crate::image::disk_image;
use crate::kbuild::{KernelArtifact, repo_root};
use crate::options::{self, RunOptions};
use crate::qemu::{Console, Outcome, run};

/// Seconds one boot of a test kernel may take.
pub const TEST_TIMEOUT: u64 = 300;
/// Most boots of one test kernel (one per failed test, plus the first).
const MAX_BOOTS: usize = 64;

/// What one test kernel did.
#[derive(Debug, Clone)]
pub struct KernelTestReport {
    /// The test kernel's name.
    pub name: String,
    /// Tests that passed.
    pub passed: usize,
    /// Tests that failed (a hang or a crash outside a test counts as one).
    pub failed: usize,
    /// Console output of every boot.
    pub output: String,
    /// How many times it was booted.
    pub boots: usize,
}

/// Runner options a test file asks for (`//! runner: ...`).
pub fn options_for(name: &str) -> Result<RunOptions, String> {
    let file = repo_root()
        .join("kernel")
        .join("tests")
        .join(format!("{name}.rs"));
    let text = std::fs::read_to_string(&file).unwrap_or_default();
    let args: Vec<String> = text
        .lines()
        .take(30)
        .filter_map(|l| l.trim().strip_prefix("//! runner:"))
        .flat_map(|l| l.split_whitespace().map(String::from).collect::<Vec<_>>())
        .collect();
    options::parse(&args)
}

fn summary(line: &str) -> Option<(usize, usize)> {
    let rest = line.trim();
    let (p, rest) = rest.split_once(" passed, ")?;
    let f = rest.strip_suffix(" failed")?;
    Some((p.trim().parse().ok()?, f.trim().parse().ok()?))
}

fn resume(line: &str) -> Option<String> {
    let rest = line.trim().strip_prefix("ktest: resume ")?;
    let nums: Vec<usize> = rest
        .split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect();
    (nums.len() == 3).then(|| format!("ktest.resume={},{},{}", nums[0], nums[1], nums[2]))
}

/// Boot `kernel` until all its tests ran.
pub fn run_test_kernel(kernel: &KernelArtifact, echo: bool) -> KernelTestReport {
    let mut report = KernelTestReport {
        name: kernel.name.clone(),
        passed: 0,
        failed: 0,
        output: String::new(),
        boots: 0,
    };
    let mut opts = match options_for(&kernel.name) {
        Ok(o) => o,
        Err(e) => {
            report.failed = 1;
            report.output = format!("bad `//! runner:` options: {e}\n");
            return report;
        }
    };
    opts.timeout = Some(opts.timeout.unwrap_or(TEST_TIMEOUT));
    let base_cmdline = opts.cmdline.clone();
    let image = match disk_image(Path::new(&kernel.path), opts.uefi) {
        Ok(i) => i,
        Err(e) => {
            report.failed = 1;
            report.output = e;
            return report;
        }
    };
    loop {
        report.boots += 1;
        let res = match run(
            &image,
            &opts,
            &Console::Script {
                input: Vec::new(),
                echo,
            },
        ) {
            Ok(r) => r,
            Err(e) => {
                report.failed += 1;
                report.output.push_str(&e);
                return report;
            }
        };
        report.output.push_str(&res.output);
        let last_summary = res.output.lines().filter_map(summary).next_back();
        let next = res.output.lines().filter_map(resume).next_back();
        match (res.outcome, next) {
            (Outcome::KernelFailure, Some(resume_arg)) if report.boots < MAX_BOOTS => {
                opts.cmdline = format!("{base_cmdline} {resume_arg}").trim().to_string();
                continue;
            }
            (Outcome::Success | Outcome::KernelFailure, _) if last_summary.is_some() => {
                let (p, f) = last_summary.unwrap_or((0, 1));
                report.passed = p;
                report.failed = f;
                if res.outcome == Outcome::KernelFailure && f == 0 {
                    report.failed = 1;
                }
            }
            (outcome, _) => {
                report
                    .output
                    .push_str(&format!("\n{}: {}\n", kernel.name, outcome.reason()));
                // Tests that printed `ok` before the hang or crash still count.
                report.passed = res
                    .output
                    .lines()
                    .filter(|l| l.trim_end().ends_with(" ... ok"))
                    .count();
                report.failed = 1;
            }
        }
        return report;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_summary_and_resume() {
        assert_eq!(summary("12 passed, 0 failed"), Some((12, 0)));
        assert_eq!(summary("3 passed, 2 failed\n"), Some((3, 2)));
        assert_eq!(summary("running 3 tests"), None);
        assert_eq!(
            resume("ktest: resume 4 3 1"),
            Some("ktest.resume=4,3,1".into())
        );
        assert_eq!(resume("ktest: resume x"), None);
    }
}
