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
  # The package would start a system etcd; the tests start their own on free ports, so ask
  # Debian not to start services during this install (and never kill anything afterwards).
  policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null && $SUDO chmod 755 "$policy"
    trap '$SUDO rm -f "$policy"' EXIT
  fi
  $SUDO apt-get install -y -qq --no-install-recommends etcd-server >/dev/null \
    || { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends etcd-server >/dev/null; }
  if [ -n "$policy" ]; then $SUDO rm -f "$policy"; fi
fi
# The tus tests drive a stock tus client, tuspy (PyPI), pinned.
if ! python3 -c "import tusclient" >/dev/null 2>&1; then
  echo "relay: installing tuspy for the tus client test (pip)" >&2
  for attempt in 1 2 3; do
    python3 -m pip install --quiet --disable-pip-version-check "tuspy==1.1.0" && break
    echo "relay: pip failed (attempt $attempt); retrying" >&2
    sleep 5
  done
fi
# The witness cross-check verifies Relay's notes and proofs with Go's golang.org/x/mod/sumdb
# (Debian's golang-go and golang-golang-x-mod-dev): code nobody here wrote.
if ! command -v go >/dev/null 2>&1 || [ ! -d /usr/share/gocode/src/golang.org/x/mod/sumdb/tlog ]; then
  echo "relay: installing Go and golang.org/x/mod for the witness cross-check (apt-get)" >&2
  SUDO=""; if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get install -y -qq --no-install-recommends golang-go golang-golang-x-mod-dev >/dev/null \
    || { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends golang-go golang-golang-x-mod-dev >/dev/null; }
fi
export RELAY_REQUIRE_GO=1
# The deploy/ files are checked by their own tools: systemd-analyze, docker-compose (Debian's, for
# `config` only: no daemon), promtool (Debian's prometheus) and kubernetes-validate (PyPI, pinned).
missing=""
command -v systemd-analyze >/dev/null 2>&1 || missing="$missing systemd"
command -v docker-compose >/dev/null 2>&1 || missing="$missing docker-compose"
command -v promtool >/dev/null 2>&1 || missing="$missing prometheus"
if [ -n "$missing" ]; then
  echo "relay: installing$missing for the deploy/ checks (apt-get)" >&2
  SUDO=""; if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  # As for etcd: no service may start during the install.
  policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null && $SUDO chmod 755 "$policy"
    trap '$SUDO rm -f "$policy"' EXIT
  fi
  # shellcheck disable=SC2086
  $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null \
    || { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null; }
  if [ -n "$policy" ]; then $SUDO rm -f "$policy"; fi
fi
if ! command -v kubernetes-validate >/dev/null 2>&1; then
  echo "relay: installing kubernetes-validate for the deploy/ checks (pip)" >&2
  for attempt in 1 2 3; do
    python3 -m pip install --quiet --disable-pip-version-check "kubernetes-validate==1.37.0" && break
    echo "relay: pip failed (attempt $attempt); retrying" >&2
    sleep 5
  done
fi
export RELAY_REQUIRE_DEPLOY_TOOLS=1
source scripts/env.sh
cargo test --locked --workspace
