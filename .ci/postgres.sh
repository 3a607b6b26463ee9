#!/usr/bin/env bash
# Installs PostgreSQL from Debian's packages if needed, starts a throwaway
# cluster on 127.0.0.1:55432 and writes its DSN to /tmp/dynoai-ci-postgres.env.
set -euo pipefail
PORT="${DYNOAI_PG_PORT:-55432}"
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
DATA=/tmp/dynoai-ci-pgdata
SOCK=/tmp/dynoai-ci-pgsock
if [ -f "$DATA/postmaster.pid" ]; then
  su postgres -s /bin/sh -c "$PGBIN/pg_ctl -D $DATA -m fast stop" >/dev/null 2>&1 || true
fi
rm -rf "$DATA" "$SOCK"
mkdir -p "$DATA" "$SOCK"
chown postgres:postgres "$DATA" "$SOCK"
su postgres -s /bin/sh -c "$PGBIN/initdb -D $DATA -A trust -U postgres -E UTF8" >/dev/null
su postgres -s /bin/sh -c "$PGBIN/pg_ctl -D $DATA -w -l $DATA/server.log -o \"-p $PORT -k $SOCK -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200\" start" >/dev/null
su postgres -s /bin/sh -c "$PGBIN/psql -h 127.0.0.1 -p $PORT -U postgres -qc 'CREATE DATABASE dynoai_test'" >/dev/null
echo "export DYNOAI_TEST_POSTGRES_DSN='postgres://postgres@127.0.0.1:$PORT/dynoai_test?sslmode=disable'" > /tmp/dynoai-ci-postgres.env
echo "PostgreSQL $($PGBIN/postgres --version | awk '{print $3}') on 127.0.0.1:$PORT"
