#!/usr/bin/env bash
# Builds everything and runs the whole test suite: unit, property, storage-suite and multi-process
# integration tests. The same command runs in CI (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
SUDO=""; if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
# Installs Debian packages with no service started during the install: the tests start their own
# processes on free ports (and never kill anything they did not start).
apt_install() {
  local policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null && $SUDO chmod 755 "$policy"
    trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null \
    || { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null; }
  if [ -n "$policy" ]; then $SUDO rm -f "$policy"; fi
}
# Installs one pinned PyPI package, retrying a flaky index.
pip_install() {
  for attempt in 1 2 3; do
    python3 -m pip install --quiet --disable-pip-version-check "$1" && return 0
    echo "relay: pip failed (attempt $attempt); retrying" >&2
    sleep 5
  done
  echo "relay: could not install $1; the tests that need it will say so" >&2
}
# The loadtest suite compares Relay with etcd (Debian's etcd-server 3.4).
if ! command -v etcd >/dev/null 2>&1 && [ ! -x /usr/bin/etcd ]; then
  echo "relay: installing etcd-server for the benchmark test (apt-get)" >&2
  apt_install etcd-server
fi
# The tus tests drive a stock tus client, tuspy (PyPI), pinned.
if ! python3 -c "import tusclient" >/dev/null 2>&1; then
  echo "relay: installing tuspy for the tus client test (pip)" >&2
  pip_install "tuspy==1.1.0"
fi
# The witness cross-check verifies Relay's notes and proofs with Go's golang.org/x/mod/sumdb
# (Debian's golang-go and golang-golang-x-mod-dev): code nobody here wrote. Go also renders the
# Helm chart for the deploy/ checks.
if ! command -v go >/dev/null 2>&1 || [ ! -d /usr/share/gocode/src/golang.org/x/mod/sumdb/tlog ]; then
  echo "relay: installing Go and golang.org/x/mod for the witness cross-check (apt-get)" >&2
  apt_install golang-go golang-golang-x-mod-dev
fi
export RELAY_REQUIRE_GO=1
# The deploy/ files are checked by their own tools: systemd-analyze, docker-compose (Debian's, for
# `config` only: no daemon), promtool (Debian's prometheus) and kubernetes-validate (PyPI, pinned).
missing=()
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
if [ ${#missing[@]} -gt 0 ]; then
  echo "relay: installing ${missing[*]} for the deploy/ checks (apt-get)" >&2
  apt_install "${missing[@]}"
fi
if ! command -v kubernetes-validate >/dev/null 2>&1; then
  echo "relay: installing kubernetes-validate for the deploy/ checks (pip)" >&2
  pip_install "kubernetes-validate==1.37.0"
fi
export RELAY_REQUIRE_DEPLOY_TOOLS=1
# The OpenAPI document is checked by a real validator and fuzzed against a live node by
# schemathesis (both PyPI, pinned).
if ! python3 -c "import openapi_spec_validator" >/dev/null 2>&1; then
  echo "relay: installing openapi-spec-validator for the OpenAPI checks (pip)" >&2
  pip_install "openapi-spec-validator==0.7.2"
fi
if ! python3 -c "import schemathesis" >/dev/null 2>&1; then
  echo "relay: installing schemathesis for the OpenAPI checks (pip)" >&2
  pip_install "schemathesis==4.32.5"
fi
export RELAY_REQUIRE_OPENAPI_TOOLS=1
# The dashboard is tested in a real browser: Debian's chromium and chromedriver, driven through
# WebDriver by Selenium (PyPI, pinned; given the driver's path, it downloads nothing).
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  echo "relay: installing chromium and chromium-driver for the dashboard test (apt-get)" >&2
  apt_install chromium chromium-driver
fi
if ! python3 -c "import selenium" >/dev/null 2>&1; then
  echo "relay: installing selenium for the dashboard test (pip)" >&2
  pip_install "selenium==4.38.0"
fi
export RELAY_REQUIRE_BROWSER=1
source scripts/env.sh
cargo test --locked --workspace
