#!/usr/bin/env bash
# One large object four ways on an S3-protocol store (s3s-fs on loopback): straight to the store,
# through the node, presigned, and tus; throughput, node CPU and node peak RSS (BENCHMARKS.md).
# Usage: scripts/bench-uploads.sh [size_mib] [rounds] [tus_chunk_mib]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
source scripts/env.sh
cargo build --locked --bin relay --bin relay-loadtest --example s3server
size="${1:-1024}" rounds="${2:-2}" chunk="${3:-8}"
source scripts/s3-node.sh
"$CARGO_TARGET_DIR/debug/relay-loadtest" uploads --relay "$url" --key "$key" --node-pid "$pid" \
  --endpoint "$endpoint" --bucket bench --size-mib "$size" --rounds "$rounds" --tus-chunk-mib "$chunk"
