//! Building the kernel crate from the host: a nested `cargo` in kernel/, where the
//! kernel's own .cargo/config.toml (custom target, build-std) applies. Host-only
//! environment that the outer cargo may have set is removed first.
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The repository root (this package's manifest directory).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn cargo_in_kernel() -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(repo_root().join("kernel"));
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        let host_only = key == "RUSTFLAGS"
            || key == "RUSTDOCFLAGS"
            || key == "CARGO_TARGET_DIR"
            || key == "CARGO_BUILD_TARGET"
            || key == "CARGO_ENCODED_RUSTFLAGS"
            || key == "CARGO_MAKEFLAGS"
            || key == "CARGO_PRIMARY_PACKAGE"
            || key.starts_with("__CARGO")
            || key.starts_with("CARGO_PKG_")
            || key.starts_with("CARGO_BIN_")
            || key == "CARGO_MANIFEST_DIR"
            || key == "CARGO_MANIFEST_PATH"
            || key == "CARGO_CRATE_NAME";
        if host_only {
            cmd.env_remove(&key);
        }
    }
    cmd
}

/// One compiled kernel (the real one or a test kernel).
#[derive(Debug, Clone)]
pub struct KernelArtifact {
    /// Target name (`kernel` for the lib's unit tests, else the test file's name).
    pub name: String,
    /// The ELF.
    pub path: PathBuf,
}

fn artifacts(cmd: &mut Command, want_tests: bool) -> Result<Vec<KernelArtifact>, String> {
    cmd.arg("--message-format=json-render-diagnostics")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let out = cmd.output().map_err(|e| format!("cannot run cargo: {e}"))?;
    if !out.status.success() {
        return Err(format!("building the kernel failed ({})", out.status));
    }
    let mut found = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] != "compiler-artifact" {
            continue;
        }
        let Some(exe) = msg["executable"].as_str() else {
            continue;
        };
        if msg["profile"]["test"].as_bool() != Some(want_tests) {
            continue;
        }
        let name = msg["target"]["name"]
            .as_str()
            .unwrap_or("kernel")
            .to_string();
        found.push(KernelArtifact {
            name,
            path: PathBuf::from(exe),
        });
    }
    Ok(found)
}

/// Build the kernel binary; returns its ELF.
pub fn build_kernel(release: bool) -> Result<PathBuf, String> {
    let mut cmd = cargo_in_kernel();
    cmd.args(["build", "--quiet", "--bin", "kernel"]);
    if release {
        cmd.arg("--release");
    }
    artifacts(&mut cmd, false)?
        .into_iter()
        .find(|a| a.name == "kernel")
        .map(|a| a.path)
        .ok_or_else(|| "cargo built no kernel executable".to_string())
}

/// Build every test kernel (the lib's unit tests and each kernel/tests/*.rs).
pub fn build_test_kernels() -> Result<Vec<KernelArtifact>, String> {
    let mut cmd = cargo_in_kernel();
    cmd.args(["test", "--quiet", "--no-run"]);
    let mut found = artifacts(&mut cmd, true)?;
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}
