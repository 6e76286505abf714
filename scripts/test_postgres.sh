#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests (tests/integration/test_postgres.py).
#
#   eval "$(bash scripts/test_postgres.sh start)"   # prints the exports below; .ci/run does this
#   bash scripts/test_postgres.sh stop "$WEBUI_TEST_POSTGRES_DIR"
#
# `start` creates a cluster with Debian's server binaries (apt-get install postgresql) in a new temp
# dir, listening on 127.0.0.1 at a free port (and on a unix socket inside that dir only), so it never
# touches a system cluster. It creates the role webui (password webui, CREATEDB: each test makes its
# own database) and the database webui_test, and prints
#   export WEBUI_TEST_POSTGRES_URL=postgresql+psycopg://webui:webui@127.0.0.1:PORT/webui_test
#   export WEBUI_TEST_POSTGRES_DIR=/tmp/...
# PostgreSQL refuses to run as root: started as root, the server runs as the postgres user.
# fsync is off: the data is thrown away, and CREATE DATABASE per test gets much faster.
set -euo pipefail

bindir() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$dir" ] || [ ! -x "$dir/initdb" ]; then
    echo "PostgreSQL server binaries not found under /usr/lib/postgresql: apt-get install postgresql" >&2
    exit 1
  fi
  echo "$dir"
}

# Run a command as the server's owner: postgres when we are root, else ourselves.
as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

start() {
  local bin dir port
  bin=$(bindir)
  dir=$(mktemp -d "${TMPDIR:-/tmp}/webui-pg.XXXXXX")
  if [ "$(id -u)" = 0 ]; then
    chown postgres: "$dir"
  fi
  # A start that fails part-way stops what it started and removes its dir (nothing was printed yet).
  trap 'stop "$dir" >/dev/null 2>&1 || true' ERR
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  as_owner "$bin/initdb" -D "$dir/data" -U postgres -E UTF8 --no-locale \
    --auth-local=trust --auth-host=scram-sha-256 >"$dir/initdb.log"
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    >/dev/null
  as_owner "$bin/psql" -h "$dir" -p "$port" -U postgres -d postgres -q -v ON_ERROR_STOP=1 \
    -c "CREATE ROLE webui LOGIN PASSWORD 'webui' CREATEDB" \
    -c "CREATE DATABASE webui_test OWNER webui" >/dev/null
  trap - ERR
  echo "export WEBUI_TEST_POSTGRES_URL=postgresql+psycopg://webui:webui@127.0.0.1:$port/webui_test"
  echo "export WEBUI_TEST_POSTGRES_DIR=$dir"
}

stop() {
  local dir=${1:?usage: test_postgres.sh stop DIR}
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_owner "$(bindir)/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
  fi
  case "$dir" in
    */webui-pg.*) rm -rf "$dir" ;;
  esac
}

case "${1:-}" in
  start) start ;;
  stop) stop "${2:-}" ;;
  *) echo "usage: $0 start | stop DIR" >&2; exit 2 ;;
esac
