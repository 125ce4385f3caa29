//! Disk images made with the `bootloader` crate (BIOS: MBR + stages; UEFI: GPT +
//! FAT). Images are cached under target/images/ by a hash of the kernel ELF, so an
//! unchanged kernel boots without rebuilding its image.
//!
//! The kernel is built with symbols and full debuginfo (for gdb, see
//! [`debug_elf`]); the image gets a stripped copy (`llvm-objcopy --strip-all`
//! from the toolchain's llvm-tools), since BIOS boot reads the whole ELF through
//! INT 13h and a large one boots seconds slower.
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use bootloader::{BiosBoot, BootConfig, UefiBoot};

use crate::kbuild::repo_root;

/// The bootloader's own log is turned off: the kernel's boot log starts the console.
fn boot_config() -> BootConfig {
    let mut config = BootConfig::default();
    config.serial_logging = false;
    config.frame_buffer_logging = false;
    config
}

/// The toolchain's llvm-objcopy (component llvm-tools-preview, which the
/// bootloader's build needs too).
fn llvm_objcopy() -> Result<PathBuf, String> {
    static TOOL: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    TOOL.get_or_init(|| {
        let out = Command::new(std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()))
            .args(["--print", "sysroot"])
            .current_dir(repo_root())
            .output()
            .map_err(|e| format!("cannot run rustc: {e}"))?;
        let sysroot = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        let rustlib = sysroot.join("lib").join("rustlib");
        std::fs::read_dir(&rustlib)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join("bin").join("llvm-objcopy"))
            .find(|p| p.is_file())
            .ok_or_else(|| {
                format!(
                    "llvm-objcopy not found under {}: rustup component add llvm-tools-preview",
                    rustlib.display()
                )
            })
    })
    .clone()
}

/// A hash of `bytes` for cache file names.
fn hash_of(bytes: &[u8], extra: impl Hash) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    bytes.hash(&mut h);
    extra.hash(&mut h);
    h.finish()
}

fn images_dir() -> Result<PathBuf, String> {
    let dir = repo_root().join("target").join("images");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}

fn file_stem(kernel: &Path) -> String {
    kernel
        .file_name()
        .map_or("kernel".into(), |s| s.to_string_lossy().into_owned())
}

/// The kernel ELF with its symbols and debuginfo, kept for gdb next to the images
/// as target/images/NAME-HASH.elf (so a rebuild of the kernel while gdb runs does
/// not change it). Absolute path.
pub fn debug_elf(kernel: &Path) -> Result<PathBuf, String> {
    let elf =
        std::fs::read(kernel).map_err(|e| format!("cannot read {}: {e}", kernel.display()))?;
    let path = images_dir()?.join(format!(
        "{}-{:016x}.elf",
        file_stem(kernel),
        hash_of(&elf, "debug")
    ));
    if !path.is_file() {
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, &elf)
            .and_then(|_| std::fs::rename(&tmp, &path))
            .map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                format!("cannot write {}: {e}", path.display())
            })?;
    }
    Ok(path)
}

/// Make (or reuse) the disk image of `kernel`.
pub fn disk_image(kernel: &Path, uefi: bool) -> Result<PathBuf, String> {
    // One image at a time per process (parallel tests share images).
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let elf =
        std::fs::read(kernel).map_err(|e| format!("cannot read {}: {e}", kernel.display()))?;
    let stem = file_stem(kernel);
    let kind = if uefi { "uefi" } else { "bios" };
    let dir = images_dir()?;
    let hash = hash_of(&elf, (uefi, "bootloader-0.11.17", "strip-all"));
    let image = dir.join(format!("{stem}-{hash:016x}.{kind}.img"));
    if image.is_file() {
        return Ok(image);
    }
    // Drop stale images of the same kernel and kind.
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(&format!("{stem}-")) && name.ends_with(&format!(".{kind}.img")) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    let tmp = image.with_extension(format!("tmp{}", std::process::id()));
    let stripped = image.with_extension(format!("stripped{}.elf", std::process::id()));
    let out = Command::new(llvm_objcopy()?)
        .arg("--strip-all")
        .arg(kernel)
        .arg(&stripped)
        .output()
        .map_err(|e| format!("cannot run llvm-objcopy: {e}"))?;
    if !out.status.success() {
        let _ = std::fs::remove_file(&stripped);
        return Err(format!(
            "llvm-objcopy --strip-all {} failed: {}",
            kernel.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let res = if uefi {
        UefiBoot::new(&stripped)
            .set_boot_config(&boot_config())
            .create_disk_image(&tmp)
    } else {
        BiosBoot::new(&stripped)
            .set_boot_config(&boot_config())
            .create_disk_image(&tmp)
    };
    let _ = std::fs::remove_file(&stripped);
    res.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot create the disk image: {e:#}")
    })?;
    std::fs::rename(&tmp, &image).map_err(|e| format!("cannot move the disk image: {e}"))?;
    Ok(image)
}

/// The file names `--image DIR` writes.
pub const USB_IMAGES: [(&str, bool); 2] = [("zoned-bios.img", false), ("zoned-uefi.img", true)];

/// Why `--image` failed: the directory could not be written (bad usage, exit
/// 64) or the images could not be made (exit 3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteError {
    /// DIR cannot be created or written.
    Dir(String),
    /// Building an image failed.
    Build(String),
}

/// `--image DIR`: the BIOS and UEFI images of `kernel` copied into `dir` (created
/// if missing), each written under a temporary name first and renamed, so that a
/// failure leaves no partial file (and no directory it created). Returns the
/// absolute paths of the BIOS and the UEFI image.
pub fn write_images(kernel: &Path, dir: &Path) -> Result<[PathBuf; 2], WriteError> {
    let sources = [
        disk_image(kernel, USB_IMAGES[0].1).map_err(WriteError::Build)?,
        disk_image(kernel, USB_IMAGES[1].1).map_err(WriteError::Build)?,
    ];
    let created = !dir.exists();
    std::fs::create_dir_all(dir)
        .map_err(|e| WriteError::Dir(format!("cannot create {}: {e}", dir.display())))?;
    let dir = std::fs::canonicalize(dir)
        .map_err(|e| WriteError::Dir(format!("cannot use {}: {e}", dir.display())))?;
    let finals = USB_IMAGES.map(|(name, _)| dir.join(name));
    let temps =
        USB_IMAGES.map(|(name, _)| dir.join(format!(".{name}.partial{}", std::process::id())));
    let cleanup = |msg: String| {
        for t in &temps {
            let _ = std::fs::remove_file(t);
        }
        if created {
            let _ = std::fs::remove_dir(&dir);
        }
        WriteError::Dir(msg)
    };
    for (src, tmp) in sources.iter().zip(&temps) {
        std::fs::copy(src, tmp)
            .and_then(|_| std::fs::File::open(tmp)?.sync_all())
            .map_err(|e| cleanup(format!("cannot write {}: {e}", tmp.display())))?;
    }
    for (tmp, fin) in temps.iter().zip(&finals) {
        std::fs::rename(tmp, fin)
            .map_err(|e| cleanup(format!("cannot write {}: {e}", fin.display())))?;
    }
    Ok(finals)
}
