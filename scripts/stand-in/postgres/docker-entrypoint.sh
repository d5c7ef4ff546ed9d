#!/bin/bash
# Entrypoint of the postgres stand-in (see Dockerfile): the official image's contract, shortly.
# First start with an empty PGDATA: initdb with POSTGRES_USER as superuser and POSTGRES_PASSWORD,
# create POSTGRES_DB, run /docker-entrypoint-initdb.d, listen on all addresses with password
# (scram-sha-256) auth from other hosts and trust on the local socket. Then run the server as
# the postgres user. The set-up server listens on a private socket only, so that pg_isready
# (the health check) answers only once the real server is up.
set -Eeuo pipefail

if [ "${1:0:1}" = '-' ]; then
  set -- postgres "$@"
fi

if [ "$1" = postgres ] && [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  find "$PGDATA" \! -user postgres -exec chown postgres:postgres '{}' +
  chmod 700 "$PGDATA"
  chown postgres:postgres /var/run/postgresql
  chmod 2777 /var/run/postgresql
  exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
fi

if [ "$1" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
  : "${POSTGRES_USER:=postgres}"
  : "${POSTGRES_DB:=$POSTGRES_USER}"
  auth="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"
  if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$auth" != trust ]; then
    echo "Error: POSTGRES_PASSWORD is not set (or set POSTGRES_HOST_AUTH_METHOD=trust)." >&2
    exit 1
  fi
  # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of arguments, as upstream.
  initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "${POSTGRES_PASSWORD:-}") \
    --encoding=UTF8 --locale=C.UTF-8 --auth-local=trust --auth-host="$auth" \
    -D "$PGDATA" ${POSTGRES_INITDB_ARGS:-}
  printf '\nhost all all all %s\n' "$auth" >> "$PGDATA/pg_hba.conf"
  printf "\nlisten_addresses = '*'\n" >> "$PGDATA/postgresql.conf"

  init_socket="$(mktemp -d)"
  pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -k $init_socket" -w start >/dev/null
  psql=(psql -v ON_ERROR_STOP=1 -X -q -h "$init_socket" --username "$POSTGRES_USER" --no-password)
  if [ "$POSTGRES_DB" != postgres ]; then
    echo 'CREATE DATABASE :"db";' | "${psql[@]}" --dbname postgres -v db="$POSTGRES_DB"
  fi
  for f in /docker-entrypoint-initdb.d/*; do
    case "$f" in
      *.sh)
        echo "running $f"
        export PGHOST="$init_socket"
        # shellcheck disable=SC1090 # the user's init scripts
        . "$f"
        unset PGHOST
        ;;
      *.sql) echo "running $f"; "${psql[@]}" --dbname "$POSTGRES_DB" -f "$f" ;;
      *.sql.gz) echo "running $f"; gunzip -c "$f" | "${psql[@]}" --dbname "$POSTGRES_DB" ;;
      *) if [ -e "$f" ]; then echo "ignoring $f"; fi ;;
    esac
  done
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  rmdir "$init_socket" 2>/dev/null || true
  echo "PostgreSQL init process complete; ready for start up."
fi

exec "$@"
