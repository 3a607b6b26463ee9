#!/usr/bin/env bash
# Installs headless Chromium from Debian's packages if it is missing, for the
# web UI's browser tests (httpapi/webui, driven by chromedp), and writes its
# path to /tmp/dynoai-ci-chromium.env as DYNOAI_CHROMIUM.
set -euo pipefail
bin=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$bin" ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
  bin=$(command -v chromium)
fi
echo "export DYNOAI_CHROMIUM='$bin'" > /tmp/dynoai-ci-chromium.env
"$bin" --version
