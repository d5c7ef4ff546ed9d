#!/usr/bin/env bash
# The benchmark series behind the figures in bench/README.md. Each command's full output
# (table and last line) goes to stdout; run it on a quiet host, it takes 15-25 minutes.
# Usage: readme-figures.sh [BIN_DIR]   (default target/release; build with --release first)
set -uo pipefail
bin=${1:-target/release}
run() { echo "### bench $*"; "$bin/bench" --bin-dir "$bin" "$@" 2>&1; echo; }
run --records 300000 --workers 4 --runs 3
run --records 300000 --workers 4 --runs 3 --api rest
for w in 1 2 4 8; do run --records 300000 --workers "$w" --runs 2 --no-baselines; done
run --records 30000 --workers 4 --runs 3
run --records 1000000 --workers 4 --runs 1 --naive-fraction 0.01
# CPU per 1,000 records at both sizes side by side (each 30,000 run followed by a 1,000,000 one).
run --records 30000 --compare-records 1000000 --workers 4 --runs 5 --no-baselines
run --records 30000 --compare-records 1000000 --workers 1 --runs 5 --no-baselines
