#!/usr/bin/env bash
# Checks deploy/prometheus with promtool (from Debian's prometheus package,
# installed if missing, its service not started): the Prometheus
# configuration, the alert rules, and the rules' unit tests.
set -euo pipefail
cd "$(dirname "$0")/../deploy/prometheus"
if ! command -v promtool >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
promtool --version | head -1
promtool check config prometheus.yml
promtool check rules alerts.yml
promtool test rules alerts_test.yml
