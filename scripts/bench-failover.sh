#!/usr/bin/env bash
# Failover time of a three-node cluster on loopback (BENCHMARKS.md): leader SIGKILL -> first
# successful write through a survivor, over N kills. Usage: scripts/bench-failover.sh [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
source scripts/env.sh
cargo build --locked --bin relay --example failoverbench
"$CARGO_TARGET_DIR/debug/examples/failoverbench" --relay-bin "$CARGO_TARGET_DIR/debug/relay" --rounds "${1:-10}"
