#!/usr/bin/env bash
# Shoal overlay vs an iproute2-built VXLAN on the same two lab hosts, same run (DESIGN.md §8).
# Usage: bench/net.sh [BUILD_DIR] [--runs N] [--seconds S]   (root)
set -euo pipefail
build=${1:-build}; shift || true
bin="$build/bench/net/shoal_net_bench"
if [[ ! -x "$bin" ]]; then
  echo "net.sh: $bin not built (configure with -DSHOAL_BUILD_BENCH=ON)" >&2
  exit 1
fi
if ! command -v iperf3 >/dev/null; then
  echo "net.sh: iperf3 missing (run scripts/setup)" >&2
  exit 1
fi
echo "command: $bin $*"
exec "$bin" "$@"
