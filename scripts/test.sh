#!/usr/bin/env bash
# Builds everything and runs the whole test suite: unit, property, storage-suite and multi-process
# integration tests. The same command runs in CI (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
source scripts/env.sh
cargo test --locked --workspace
