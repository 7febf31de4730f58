#!/usr/bin/env bash
# Failover time of a three-node cluster on loopback (BENCHMARKS.md): leader SIGKILL -> first
# successful write through a survivor, over N kills; or, with --rolling, a rolling restart (SIGTERM,
# start, one node at a time, the leader last) under steady writes.
# Usage: scripts/bench-failover.sh [rounds] | scripts/bench-failover.sh --rolling
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
source scripts/env.sh
cargo build --locked --bin relay --example failoverbench
if [ "${1:-}" = "--rolling" ]; then
  "$CARGO_TARGET_DIR/debug/examples/failoverbench" --relay-bin "$CARGO_TARGET_DIR/debug/relay" --rolling
else
  "$CARGO_TARGET_DIR/debug/examples/failoverbench" --relay-bin "$CARGO_TARGET_DIR/debug/relay" --rounds "${1:-10}"
fi
