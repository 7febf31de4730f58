#!/usr/bin/env bash
# Single-node create+download benchmark of small Storage leases (BENCHMARKS.md).
# Usage: scripts/bench-store.sh [concurrency] [seconds] [size_bytes]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
source scripts/env.sh
cargo build --locked --bin relay --example storebench
concurrency="${1:-16}" seconds="${2:-20}" size="${3:-1024}"
dir="$(mktemp -d)"
key="rs_live_bench$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
"$CARGO_TARGET_DIR/debug/relay" serve --http 127.0.0.1:0 --data-dir "$dir" --bootstrap-api-key "$key" \
  --bootstrap-balance-usdc 1000000 >"$dir/stdout" 2>"$dir/relay.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 1 600); do
  grep -q "listening on" "$dir/stdout" 2>/dev/null && break
  kill -0 $pid 2>/dev/null || { cat "$dir/relay.log" >&2; exit 1; }
  sleep 0.1
done
url="$(sed -n 's/^relay: listening on //p' "$dir/stdout")"
"$CARGO_TARGET_DIR/debug/examples/storebench" --url "$url" --key "$key" \
  --concurrency "$concurrency" --seconds "$seconds" --size "$size"
echo "relay peak RSS: $(grep VmHWM /proc/$pid/status | awk '{print $2, $3}')"
