#!/usr/bin/env bash
# Installs Redis from Debian's packages if needed, starts a throwaway server
# on 127.0.0.1:56379 (no persistence, daemonized) and writes its URL to
# /tmp/dynoai-ci-redis.env as DYNOAI_TEST_REDIS_URL.
set -euo pipefail
PORT="${DYNOAI_REDIS_PORT:-56379}"
if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi
DIR=/tmp/dynoai-ci-redis
# A server left by an earlier run on the same port is stopped first.
redis-cli -h 127.0.0.1 -p "$PORT" shutdown nosave >/dev/null 2>&1 || true
rm -rf "$DIR"
mkdir -p "$DIR"
redis-server --bind 127.0.0.1 --port "$PORT" --protected-mode yes \
  --save '' --appendonly no --dir "$DIR" \
  --daemonize yes --pidfile "$DIR/redis.pid" --logfile "$DIR/redis.log" \
  --maxmemory 256mb --maxmemory-policy volatile-lru
for _ in $(seq 50); do
  if [ "$(redis-cli -h 127.0.0.1 -p "$PORT" ping 2>/dev/null)" = PONG ]; then break; fi
  sleep 0.1
done
if [ "$(redis-cli -h 127.0.0.1 -p "$PORT" ping 2>/dev/null)" != PONG ]; then
  echo "redis-server did not answer on 127.0.0.1:$PORT"; cat "$DIR/redis.log" || true; exit 1
fi
echo "export DYNOAI_TEST_REDIS_URL='redis://127.0.0.1:$PORT/0'" > /tmp/dynoai-ci-redis.env
echo "Redis $(redis-server --version | sed -E 's/.*v=([^ ]+).*/\1/') on 127.0.0.1:$PORT"
