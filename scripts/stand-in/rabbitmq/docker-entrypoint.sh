#!/bin/bash
# Entrypoint of the rabbitmq stand-in (see Dockerfile): writes rabbitmq.conf from the
# environment, then runs the server in the foreground as the rabbitmq user (SIGTERM stops it
# cleanly). RABBITMQ_NODENAME (over rabbitmq-env.conf's rabbit@localhost) and
# RABBITMQ_ERLANG_COOKIE reach the server and the CLI tools as they are; the cookie also goes to
# $HOME/.erlang.cookie, for a CLI started without it in its environment.
set -Eeuo pipefail

if [ "$1" = rabbitmq-server ] && [ "$(id -u)" = 0 ]; then
  {
    echo 'loopback_users = none'
    echo 'listeners.tcp.default = 5672'
    echo 'management.tcp.port = 15672'
    echo 'log.console = true'
    echo 'log.console.level = info'
    echo 'log.console.use_colors = off'
    echo 'log.file = false'
    if [ -n "${RABBITMQ_DEFAULT_USER:-}" ]; then echo "default_user = $RABBITMQ_DEFAULT_USER"; fi
    if [ -n "${RABBITMQ_DEFAULT_PASS:-}" ]; then echo "default_pass = $RABBITMQ_DEFAULT_PASS"; fi
    if [ -n "${RABBITMQ_DEFAULT_VHOST:-}" ]; then echo "default_vhost = $RABBITMQ_DEFAULT_VHOST"; fi
  } > /etc/rabbitmq/rabbitmq.conf
  mkdir -p /var/lib/rabbitmq /var/log/rabbitmq
  if [ -n "${RABBITMQ_ERLANG_COOKIE:-}" ]; then
    rm -f /var/lib/rabbitmq/.erlang.cookie
    (umask 077 && printf '%s' "$RABBITMQ_ERLANG_COOKIE" > /var/lib/rabbitmq/.erlang.cookie)
  fi
  chown -R rabbitmq:rabbitmq /var/lib/rabbitmq /var/log/rabbitmq
  shift
  exec setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups \
    env HOME=/var/lib/rabbitmq /usr/lib/rabbitmq/bin/rabbitmq-server "$@"
fi

exec "$@"
