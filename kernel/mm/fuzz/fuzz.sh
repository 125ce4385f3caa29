#!/usr/bin/env bash
# Runs cargo-fuzz on the mm crate's fuzz target (buddy):
# `kernel/mm/fuzz/fuzz.sh run buddy -- -max_total_time=120` (any cargo-fuzz subcommand
# and arguments work). Long runs (10 million executions, or a time limit) go like
#   kernel/mm/fuzz/fuzz.sh run -s none --no-trace-compares buddy /tmp/buddy-corpus \
#       kernel/mm/fuzz/corpus/buddy -- -runs=10000000
# with a scratch corpus directory first, so that only the committed seeds stay in corpus/
# (make_seeds.py writes them). On two cores, `-- -jobs=2 -workers=2 -runs=5000000` runs two
# processes of 5 million each (logs in fuzz-0.log and fuzz-1.log). No sanitizer: the crate forbids unsafe code; no comparison
# tracing: it made the checksum loops and memmap walks 5 to 15 times slower.
#
# cargo must not start inside kernel/: kernel/.cargo/config.toml applies there and turns
# on build-std and the kernel's target dir, which break host builds (E0152). So this
# runs cargo-fuzz from the repository root and points it at this directory.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
sub="${1:?usage: fuzz.sh SUBCOMMAND [ARGS...], e.g. fuzz.sh run buddy}"
shift
cd "$root"
exec cargo fuzz "$sub" --fuzz-dir "$here" "$@"
