#!/usr/bin/env bash
# Builds everything and runs the whole test suite: unit, property, storage-suite and multi-process
# integration tests. The same command runs in CI (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
# The loadtest suite compares Relay with etcd (Debian's etcd-server 3.4).
if ! command -v etcd >/dev/null 2>&1 && [ ! -x /usr/bin/etcd ]; then
  echo "relay: installing etcd-server for the benchmark test (apt-get)" >&2
  SUDO=""; if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get install -y -qq --no-install-recommends etcd-server >/dev/null \
    || { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends etcd-server >/dev/null; }
  # The package may start a system etcd; the tests start their own.
  pkill -x etcd 2>/dev/null || true
fi
source scripts/env.sh
cargo test --locked --workspace
