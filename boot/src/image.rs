//! Disk images made with the `bootloader` crate (BIOS: MBR + stages; UEFI: GPT +
//! FAT). Images are cached under target/images/ by a hash of the kernel ELF, so an
//! unchanged kernel boots without rebuilding its image.
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use bootloader::{BiosBoot, BootConfig, UefiBoot};

use crate::kbuild::repo_root;

/// The bootloader's own log is turned off: the kernel's boot log starts the console.
fn boot_config() -> BootConfig {
    let mut config = BootConfig::default();
    config.serial_logging = false;
    config.frame_buffer_logging = false;
    config
}

/// Make (or reuse) the disk image of `kernel`.
pub fn disk_image(kernel: &Path, uefi: bool) -> Result<PathBuf, String> {
    // One image at a time per process (parallel tests share images).
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let elf =
        std::fs::read(kernel).map_err(|e| format!("cannot read {}: {e}", kernel.display()))?;
    let mut h = std::hash::DefaultHasher::new();
    elf.hash(&mut h);
    uefi.hash(&mut h);
    "bootloader-0.11.17".hash(&mut h);
    let stem = kernel
        .file_name()
        .map_or("kernel".into(), |s| s.to_string_lossy().into_owned());
    let kind = if uefi { "uefi" } else { "bios" };
    let dir = repo_root().join("target").join("images");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let image = dir.join(format!("{stem}-{:016x}.{kind}.img", h.finish()));
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
    let res = if uefi {
        UefiBoot::new(kernel)
            .set_boot_config(&boot_config())
            .create_disk_image(&tmp)
    } else {
        BiosBoot::new(kernel)
            .set_boot_config(&boot_config())
            .create_disk_image(&tmp)
    };
    res.map_err(|e| format!("cannot create the disk image: {e:#}"))?;
    std::fs::rename(&tmp, &image).map_err(|e| format!("cannot move the disk image: {e}"))?;
    Ok(image)
}
