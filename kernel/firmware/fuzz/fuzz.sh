#!/usr/bin/env bash
# Runs cargo-fuzz on the firmware crate's fuzz targets (e820, nfit, acpi, cmdline, srat, slit, madt):
# `kernel/firmware/fuzz/fuzz.sh run nfit -- -max_total_time=120` (any cargo-fuzz subcommand
# and arguments work). Long runs (10 million executions, or a time limit) go like
#   kernel/firmware/fuzz/fuzz.sh run -s none --no-trace-compares nfit /tmp/nfit-corpus \
#       kernel/firmware/fuzz/corpus/nfit -- -runs=10000000
# with a scratch corpus directory first, so that only the committed seeds stay in corpus/
# (make_seeds.py writes them). No sanitizer: the crate forbids unsafe code; no comparison
# tracing: it made the checksum loops and memmap walks 5 to 15 times slower.
#
# cargo must not start inside kernel/: kernel/.cargo/config.toml applies there and turns
# on build-std and the kernel's target dir, which break host builds (E0152). So this
# runs cargo-fuzz from the repository root and points it at this directory.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
sub="${1:?usage: fuzz.sh SUBCOMMAND [ARGS...], e.g. fuzz.sh run nfit}"
shift
cd "$root"
exec cargo fuzz "$sub" --fuzz-dir "$here" "$@"
