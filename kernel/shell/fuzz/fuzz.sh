#!/usr/bin/env bash
# Runs cargo-fuzz on the shell's fuzz targets: `kernel/shell/fuzz/fuzz.sh run line_parser
# -- -max_total_time=120` (any cargo-fuzz subcommand and arguments work).
#
# cargo must not start inside kernel/: kernel/.cargo/config.toml applies there and turns
# on build-std and the kernel's target dir, which break host builds (E0152). So this
# runs cargo-fuzz from the repository root and points it at this directory.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
sub="${1:?usage: fuzz.sh SUBCOMMAND [ARGS...], e.g. fuzz.sh run line_parser}"
shift
cd "$root"
exec cargo fuzz "$sub" --fuzz-dir "$here" "$@"
