#!/usr/bin/env bash
# Installs what a fresh machine lacks to build Relay: libclang (RocksDB's bindgen needs it, with
# clang's own headers such as stdarg.h). Safe to run again: it does nothing when all is present.
set -euo pipefail

have_libclang() {
  compgen -G "/usr/lib/llvm-*/lib/libclang*.so*" >/dev/null || compgen -G "/usr/lib/*/libclang*.so*" >/dev/null
}
have_clang_headers() {
  compgen -G "/usr/lib/llvm-*/lib/clang/*/include/stdarg.h" >/dev/null
}

if ! command -v cargo >/dev/null 2>&1; then
  echo "relay: cargo is required (https://rustup.rs); this machine has none" >&2
  exit 1
fi

if have_libclang && have_clang_headers; then
  exit 0
fi

echo "relay: installing libclang for RocksDB's bindings (apt-get)" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends libclang1-14 libclang-common-14-dev >/dev/null \
  || $SUDO apt-get install -y -qq --no-install-recommends libclang-dev >/dev/null
have_libclang && have_clang_headers || { echo "relay: libclang still missing after install" >&2; exit 1; }
