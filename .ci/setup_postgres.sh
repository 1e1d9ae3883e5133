#!/usr/bin/env bash
# Start a throwaway PostgreSQL server for the distributed-optimizer tests.
#
#   eval "$(bash .ci/setup_postgres.sh)"   # sets HERMES_PG_URL (and HERMES_PG_DATA, HERMES_PG_CTL)
#   "$HERMES_PG_CTL" -D "$HERMES_PG_DATA/data" stop   # when done (as the server's user)
#
# On a fresh Debian machine as root it installs PostgreSQL if missing, initialises a cluster in
# a temporary directory owned by a non-root user (postgres refuses to run as root), starts it on a
# free local port (TCP on 127.0.0.1 only, trust auth: a test database, never for real data),
# creates a database and prints `export ...` lines on stdout. Everything else goes to stderr.
set -euo pipefail
log() { echo "setup_postgres: $*" >&2; }

find_bin() {
  local dir
  for dir in /usr/local/bin /usr/lib/postgresql/*/bin; do
    if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then echo "$dir"; return 0; fi
  done
  return 1
}

if ! BIN=$(find_bin); then
  if [ "$(id -u)" -ne 0 ]; then log "PostgreSQL is not installed and we are not root"; exit 1; fi
  log "installing PostgreSQL (apt-get)"
  apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >&2
  BIN=$(find_bin) || { log "initdb not found after installing postgresql"; exit 1; }
fi

# Run the server as a non-root user.
if [ "$(id -u)" -eq 0 ]; then
  PGUSER_OS=postgres
  if ! id "$PGUSER_OS" >/dev/null 2>&1; then
    PGUSER_OS=hermespg
    id "$PGUSER_OS" >/dev/null 2>&1 || useradd --system --no-create-home "$PGUSER_OS"
  fi
  as_user() { runuser -u "$PGUSER_OS" -- "$@"; }
else
  PGUSER_OS=$(id -un)
  as_user() { "$@"; }
fi

DATA=$(mktemp -d /tmp/hermes-pg.XXXXXX)
chmod 700 "$DATA"
[ "$(id -u)" -eq 0 ] && chown "$PGUSER_OS" "$DATA"

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
log "initialising a cluster in $DATA/data (user $PGUSER_OS, port $PORT)"
as_user "$BIN/initdb" -D "$DATA/data" -U hermes --auth=trust -E UTF8 --no-instructions >&2
# fsync off: a throwaway test server; durability across power loss is not what tests check.
as_user "$BIN/pg_ctl" -D "$DATA/data" -l "$DATA/server.log" -w -t 60 \
  -o "-p $PORT -k $DATA -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" \
  start >&2 || { log "server did not start:"; cat "$DATA/server.log" >&2; exit 1; }
# If anything below fails, do not leave a server running.
trap 'as_user "$BIN/pg_ctl" -D "$DATA/data" stop -m fast >&2 || true' ERR
CREATEDB=""
for candidate in "$BIN/createdb" /usr/lib/postgresql/*/bin/createdb "$(command -v createdb || true)"; do
  if [ -n "$candidate" ] && [ -x "$candidate" ]; then CREATEDB=$candidate; break; fi
done
[ -n "$CREATEDB" ] || { log "createdb not found"; false; }
as_user "$CREATEDB" -h 127.0.0.1 -p "$PORT" -U hermes hermes_test >&2
trap - ERR
log "ready: postgresql://hermes@127.0.0.1:$PORT/hermes_test"

echo "export HERMES_PG_URL=postgresql://hermes@127.0.0.1:$PORT/hermes_test"
echo "export HERMES_PG_DATA=$DATA"
echo "export HERMES_PG_CTL=$BIN/pg_ctl"
echo "export HERMES_PG_OS_USER=$PGUSER_OS"
