#!/bin/sh
# cargo's runner for kernel ELFs when cargo runs inside kernel/ (see
# kernel/.cargo/config.toml): boot the ELF with the host runner, which must be
# built outside kernel/ (the kernel's build-std settings break host builds).
elf=$(realpath "$1"); shift
cd "$(dirname "$0")/.." && exec cargo run -q --bin boot -- --kernel "$elf" "$@"
