#!/usr/bin/env bash
# The soak of `producer sync --watch`: builds the release binaries, then runs `soak` (an hour by
# default; flags go to it, e.g. --minutes 10) and prints its figures. See bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sfsync-target}"
cargo build --release -q -p producer -p worker -p fake-salesforce -p bench
exec "$CARGO_TARGET_DIR/release/soak" "$@"
