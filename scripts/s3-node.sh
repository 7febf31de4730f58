# Sourced by the S3 benchmarks: starts a real S3-protocol server (s3s-fs on loopback, bucket
# `bench`) and one Relay node storing its objects there, both stopped (and their files removed)
# when the sourcing script exits. Sets `dir`, `key`, `endpoint`, `url` and `pid` (the node's).
dir="$(mktemp -d)"
mkdir -p "$dir/s3/bench" "$dir/relay"
key="rs_live_bench$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=benchsecret0123456789
"$CARGO_TARGET_DIR/debug/examples/s3server" "$dir/s3" >"$dir/s3.out" 2>"$dir/s3.log" &
s3pid=$!
trap 'kill $s3pid ${pid:-} 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 1 100); do grep -q "listening on" "$dir/s3.out" 2>/dev/null && break; sleep 0.1; done
endpoint="$(sed -n 's/^s3server: listening on //p' "$dir/s3.out")"
"$CARGO_TARGET_DIR/debug/relay" serve --http 127.0.0.1:0 --data-dir "$dir/relay" --bootstrap-api-key "$key" \
  --bootstrap-balance-usdc 1000000 --objects "s3://bench?endpoint=$endpoint" >"$dir/stdout" 2>"$dir/relay.log" &
pid=$!
for _ in $(seq 1 600); do
  grep -q "listening on" "$dir/stdout" 2>/dev/null && break
  kill -0 $pid 2>/dev/null || { cat "$dir/relay.log" >&2; exit 1; }
  sleep 0.1
done
url="$(sed -n 's/^relay: listening on //p' "$dir/stdout")"
