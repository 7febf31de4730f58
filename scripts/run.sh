#!/usr/bin/env bash
# Builds Relay and runs one node on the embedded default (RocksDB and objects in ./relay-data).
# Extra arguments go to `relay serve`, e.g. scripts/run.sh --http 127.0.0.1:9000
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
source scripts/env.sh
cargo build --locked --bin relay
exec "$CARGO_TARGET_DIR/debug/relay" serve "$@"
