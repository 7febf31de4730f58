#!/usr/bin/env bash
# Where a write's time goes: starts a 3-node cluster on loopback from target/debug/relay, runs one
# relay-loadtest scenario against it, and prints CPU per process, fsync and write calls (perf stat)
# and, with PERF_RECORD=1, a perf profile of the leader. Only the processes it started are stopped.
#
#   scripts/profile-writes.sh [SCENARIO] [CLIENTS] [SECONDS]     # default checkpoint-put 16 6
set -euo pipefail
SCEN=${1:-checkpoint-put}; C=${2:-16}; SECS=${3:-6}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/scripts/env.sh"
BIN="$CARGO_TARGET_DIR/debug"
DIR=$(mktemp -d /tmp/relay-profile.XXXXXX)
KEY=rs_live_prof0123456789abcdef0123456789
SECRET=profiling-cluster-secret-0123456789
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
HTTP=(); URLS=()
for i in 1 2 3; do
  h=$(port); r=$(port); HTTP+=("$h"); URLS+=("http://127.0.0.1:$h")
  join=(); [ "$i" -gt 1 ] && join=(--join "http://127.0.0.1:${HTTP[0]}")
  RUST_LOG=warn "$BIN/relay" serve --node-id "$i" --http "127.0.0.1:$h" --raft "127.0.0.1:$r" \
    --data-dir "$DIR/n$i" --objects "file://$DIR/objects" --cluster-secret "$SECRET" \
    --bootstrap-api-key "$KEY" --bootstrap-balance-usdc 1000000 --max-requests-per-ip 4096 \
    --max-requests-per-account 4096 --max-requests-in-flight 4096 "${join[@]}" > "$DIR/n$i.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 300); do grep -q "listening on" "$DIR/n$i.log" && break; sleep 0.2; done
  grep -q "listening on" "$DIR/n$i.log" || { echo "node $i did not start:"; tail -5 "$DIR/n$i.log"; exit 1; }
done
cpu() { for p in "${PIDS[@]}"; do awk '{print $14+$15}' "/proc/$p/stat"; done | paste -sd' '; }
before=$(cpu)
perf stat -e 'syscalls:sys_enter_fdatasync,syscalls:sys_enter_fsync,syscalls:sys_enter_write,syscalls:sys_enter_writev' \
  -p "$(IFS=,; echo "${PIDS[*]}")" -o "$DIR/perfstat.txt" -- sleep "$((SECS + 1))" &
STAT=$!
if [ "${PERF_RECORD:-}" = 1 ]; then perf record -F 999 -g -p "${PIDS[0]}" -o "$DIR/leader.data" -- sleep "$SECS" 2>/dev/null & fi
"$BIN/relay-loadtest" run --targets "$(IFS=,; echo "${URLS[*]}")" --api-key "$KEY" --scenario "$SCEN" \
  --concurrency "$C" --duration-seconds "$SECS" --warmup-seconds 0 | tail -1
wait "$STAT"
echo "CPU ticks (10 ms) per node, before: $before  after: $(cpu)"
grep -E "sys_enter" "$DIR/perfstat.txt"
if [ "${PERF_RECORD:-}" = 1 ]; then wait; perf report -i "$DIR/leader.data" --no-children --sort dso --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -5; fi
