//! Tier 2: the in-kernel tests. Builds every test kernel in kernel/ (the lib's
//! unit tests and each kernel/tests/*.rs), boots each in QEMU (two at a time),
//! prints their `name ... ok` lines, and ends with a plain `N passed, N failed`
//! line over all of them. Fails if any test failed, hung or crashed.
use std::sync::Mutex;

use boot::kbuild::build_test_kernels;
use boot::ktest::{KernelTestReport, run_test_kernel};

fn main() {
    let kernels = match build_test_kernels() {
        Ok(k) if !k.is_empty() => k,
        Ok(_) => {
            eprintln!("kernel tests: cargo built no test kernel");
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("kernel tests: {e}");
            std::process::exit(1);
        }
    };
    println!("running {} test kernels", kernels.len());
    let queue = Mutex::new(kernels.clone());
    let reports = Mutex::new(Vec::<KernelTestReport>::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                loop {
                    let Some(k) = queue.lock().unwrap().pop() else {
                        break;
                    };
                    let report = run_test_kernel(&k, false);
                    reports.lock().unwrap().push(report);
                }
            });
        }
    });
    let mut reports = reports.into_inner().unwrap();
    reports.sort_by(|a, b| a.name.cmp(&b.name));
    let (mut passed, mut failed) = (0, 0);
    for r in &reports {
        println!(
            "\n== test kernel {} ({} boot{}) ==",
            r.name,
            r.boots,
            if r.boots == 1 { "" } else { "s" }
        );
        for line in r.output.lines() {
            println!("  {}", line.trim_end());
        }
        passed += r.passed;
        failed += r.failed;
    }
    println!("\nkernel tests: {passed} passed, {failed} failed");
    if failed > 0 || passed == 0 {
        std::process::exit(1);
    }
}
