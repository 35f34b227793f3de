#!/usr/bin/env bash
# Builds the DNS codec fuzzer with clang (libFuzzer + ASan + UBSan) in its own build dir and runs
# it for a bounded time. Usage: dns/fuzz/run.sh [seconds=60] [build-dir]
set -euo pipefail
secs=${1:-60}
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${2:-$root/build-fuzz-dns}
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DSHOAL_FUZZ=ON -DSHOAL_WERROR=ON >/dev/null
ninja -C "$build" -j2 dns_codec_fuzz
work=$(mktemp -d /tmp/snd-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
cp "$root"/dns/fuzz/corpus/* "$work"/
"$build"/dns/fuzz/dns_codec_fuzz -max_total_time="$secs" -max_len=1500 -print_final_stats=1 \
  "$work"
