#!/usr/bin/env bash
# Large objects through Relay on an S3-protocol store (s3s-fs on loopback): throughput vs direct,
# and the node's peak RSS (BENCHMARKS.md).
# Usage: scripts/bench-s3.sh [size_mib] [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
source scripts/env.sh
cargo build --locked --bin relay --example s3server --example objbench
size="${1:-256}" rounds="${2:-3}"
source scripts/s3-node.sh
echo "relay RSS before: $(grep VmRSS /proc/$pid/status | awk '{print $2, $3}')"
"$CARGO_TARGET_DIR/debug/examples/objbench" --relay "$url" --key "$key" --endpoint "$endpoint" \
  --bucket bench --size-mib "$size" --rounds "$rounds"
echo "relay peak RSS: $(grep VmHWM /proc/$pid/status | awk '{print $2, $3}')"
