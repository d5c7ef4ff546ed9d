#!/usr/bin/env bash
# Runs `producer sync --object Contact` alone (no workers) against a fresh fake org, database
# and vhost, and prints its peak RSS, CPU and wall time from /usr/bin/time, plus the API calls.
# Usage: producer-alone.sh RECORDS [BIN_DIR] [extra producer flags...]
# Example: producer-alone.sh 300000 target/release --api rest --confirm-window 4
set -euo pipefail
records=$1; bindir=${2:-target/release}; shift $(( $# >= 2 ? 2 : 1 ))
name=sfsync_palone_$$
port=$(( 20000 + $$ % 20000 ))
cleanup() {
  local rc=$?
  kill "${fake:-}" 2>/dev/null || true
  # The fake org's log is kept only when something failed, and then named.
  if [ "$rc" -eq 0 ]; then rm -f "/tmp/$name.fake.log"; else echo "fake-salesforce log: /tmp/$name.fake.log" >&2; fi
  psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $name" >/dev/null 2>&1 || true
  rabbitmqctl -q delete_vhost "$name" >/dev/null 2>&1 || true
}
trap cleanup EXIT
psql -q -h 127.0.0.1 -U postgres -d postgres -c "CREATE DATABASE $name" >/dev/null
rabbitmqctl -q add_vhost "$name" >/dev/null
rabbitmqctl -q set_permissions -p "$name" guest '.*' '.*' '.*' >/dev/null
"$bindir/fake-salesforce" --listen "127.0.0.1:$port" --accounts $(( records / 10 + 1 )) --contacts "$records" >/tmp/$name.fake.log 2>&1 &
fake=$!
for _ in $(seq 1 600); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
DATABASE_URL="postgres://postgres@127.0.0.1:5432/$name?sslmode=disable" \
AMQP_URL="amqp://guest:guest@127.0.0.1:5672/$name" \
SF_LOGIN_URL="http://127.0.0.1:$port" SF_CLIENT_ID=demo SF_CLIENT_SECRET=demo \
  /usr/bin/time -f "peak_rss_kib=%M user_s=%U sys_s=%S wall_s=%e" \
  "$bindir/producer" sync --object Contact --no-progress "$@" 2>&1 \
  | sed 's/\x1b\[[0-9;]*m//g' | grep -o 'peak_rss_kib=.*\|api_calls=[0-9]*' | tr '\n' ' '
echo
