#!/usr/bin/env bash
# Creates the virtualenv the script baseline runs in (bench/script-baseline/sf_to_pg.py) and
# installs its pinned dependencies from PyPI. Idempotent: a venv that already holds exactly
# these pins is left alone. Prints the venv's python on the last line.
# Usage: script-baseline-setup.sh [VENV_DIR]   (default: $SFSYNC_BENCH_VENV, else
# ~/.cache/sfsync-bench-venv); $PYTHON is the interpreter the venv is made from (python3).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
requirements="$here/../script-baseline/requirements.txt"
venv=${1:-${SFSYNC_BENCH_VENV:-$HOME/.cache/sfsync-bench-venv}}
python=${PYTHON:-python3}
stamp="$venv/.requirements"
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && cmp -s "$stamp" "$requirements"; then
  echo "$venv/bin/python"
  exit 0
fi
"$python" -m venv "$venv" >&2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements" >&2
"$venv/bin/python" -c 'import simple_salesforce, psycopg' >&2
cp "$requirements" "$stamp"
echo "$venv/bin/python"
