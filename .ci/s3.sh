#!/usr/bin/env bash
# Starts a throwaway S3-compatible server (versitygw, posix backend) on
# 127.0.0.1:57070 with a fixed access key, creates a bucket, and writes the
# URL and credentials the blob store tests read to /tmp/dynoai-ci-s3.env.
# versitygw is built with `go install` (about a minute on 2 cores) unless
# GOPATH/bin already holds v1.8.0.
set -euo pipefail
VERSION=v1.8.0
PORT="${DYNOAI_S3_PORT:-57070}"
ACCESS=dynoai-ci
SECRET=dynoai-ci-secret-key
BUCKET=dynoai-test
REGION=us-east-1
STATE=/tmp/dynoai-ci-s3
PIDFILE="$STATE.pid"
LOG="$STATE.log"

BIN="$(go env GOPATH)/bin/versitygw"
if [ ! -x "$BIN" ] || ! go version -m "$BIN" 2>/dev/null | grep -q "mod[[:space:]]*github.com/versity/versitygw[[:space:]]*$VERSION"; then
  echo "building versitygw $VERSION"
  GOFLAGS= go install "github.com/versity/versitygw/cmd/versitygw@$VERSION"
fi

need() { command -v "$1" >/dev/null || {
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}; }
need curl curl
need setfattr attr

# A previous run's server.
if [ -f "$PIDFILE" ]; then
  kill "$(cat "$PIDFILE")" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$(cat "$PIDFILE")" 2>/dev/null || break; sleep 0.1; done
  rm -f "$PIDFILE"
fi
if mountpoint -q "$STATE/mnt" 2>/dev/null; then umount "$STATE/mnt"; fi
rm -rf "$STATE"
mkdir -p "$STATE"

# The posix backend keeps object metadata in user extended attributes.
xattrs() { touch "$1/.xattr-probe" && setfattr -n user.dynoai -v 1 "$1/.xattr-probe" 2>/dev/null; local ok=$?; rm -f "$1/.xattr-probe"; return $ok; }
DATA="$STATE/root"
mkdir -p "$DATA"
if ! xattrs "$DATA"; then
  echo "no user xattrs on $(df --output=target "$STATE" | tail -1); using a small ext4 image"
  need mkfs.ext4 e2fsprogs
  truncate -s 1G "$STATE/fs.img"
  mkfs.ext4 -q -F "$STATE/fs.img"
  mkdir -p "$STATE/mnt"
  mount -o loop "$STATE/fs.img" "$STATE/mnt"
  DATA="$STATE/mnt/root"
  mkdir -p "$DATA"
  xattrs "$DATA" || { echo "the ext4 image has no user xattrs either"; exit 1; }
fi

ROOT_ACCESS_KEY_ID="$ACCESS" ROOT_SECRET_ACCESS_KEY="$SECRET" \
  setsid "$BIN" --port "127.0.0.1:$PORT" --region "$REGION" --quiet posix "$DATA" >"$LOG" 2>&1 </dev/null &
echo $! >"$PIDFILE"

s3() { # method path: a signed request with an empty body
  curl -sS -o /dev/null -w '%{http_code}' --aws-sigv4 "aws:amz:$REGION:s3" --user "$ACCESS:$SECRET" \
    -H 'x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' \
    -X "$1" "http://127.0.0.1:$PORT$2" 2>/dev/null || true
}
for i in $(seq 100); do
  [ "$(s3 GET /)" = 200 ] && break
  if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then echo "versitygw exited:"; cat "$LOG"; exit 1; fi
  [ "$i" = 100 ] && { echo "versitygw did not answer on 127.0.0.1:$PORT"; cat "$LOG"; exit 1; }
  sleep 0.1
done
code=$(s3 PUT "/$BUCKET")
[ "$code" = 200 ] || { echo "creating bucket $BUCKET: HTTP $code"; cat "$LOG"; exit 1; }

cat >/tmp/dynoai-ci-s3.env <<EOF
export DYNOAI_TEST_S3_URL='s3://$BUCKET?endpoint=http://127.0.0.1:$PORT&region=$REGION&use_path_style=true'
export AWS_ACCESS_KEY_ID='$ACCESS'
export AWS_SECRET_ACCESS_KEY='$SECRET'
EOF
echo "versitygw $VERSION (posix backend on $DATA) on 127.0.0.1:$PORT, bucket $BUCKET"
