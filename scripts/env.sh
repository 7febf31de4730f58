# Sourced by the scripts: one target directory, outside the clone, shared by builds, tests and
# benchmarks so RocksDB's C++ (most of a clean build) is compiled once per machine.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/relay/target}"
