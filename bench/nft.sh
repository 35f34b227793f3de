#!/bin/bash
# Side-by-side: time to add one service (chain + service-map element + DNAT rule) to an
# nftables table that already holds N services, Shoal's kernel/nft (one libnftnl batch over
# netlink) vs nft(8) reading the same change from a file (`nft -f`, what text-based
# implementations such as kube-proxy/knftables or moby do). Runs in throwaway netns "sni-*".
# Usage: bench/nft.sh [build-dir]   (needs root)
set -euo pipefail
BUILD=${1:-build}
BIN=$BUILD/bench/nft/bench_nft
[ -x "$BIN" ] || { echo "missing $BIN (build target bench_nft)"; exit 1; }
[ "$(id -u)" = 0 ] || { echo "needs root"; exit 1; }
echo "machine: nproc=$(nproc) kernel=$(uname -r) nft=$(nft --version)"
NS=sni-nftb-$$
TMP=$(mktemp -d)
cleanup() { ip netns del "$NS" 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT

for N in 1000 10000; do
  ip netns add "$NS"
  {
    echo "table ip sni-bench {"
    echo "  map service-ips { type ipv4_addr . inet_proto . inet_service : verdict; }"
    echo "  chain prerouting { type nat hook prerouting priority dstnat; ip daddr . meta l4proto . th dport vmap @service-ips; }"
    for ((i = 0; i < N; i++)); do
      echo "  chain svc-$i { meta l4proto tcp dnat to 10.0.0.2:8080; }"
    done
    echo "}"
    for ((i = 0; i < N; i++)); do
      echo "add element ip sni-bench service-ips { 10.100.$((i / 256)).$((i % 256)) . tcp . 80 : goto svc-$i }"
    done
  } > "$TMP/base.nft"
  ip netns exec "$NS" nft -f "$TMP/base.nft"
  j=$N
  printf 'add chain ip sni-bench svc-%d\nadd element ip sni-bench service-ips { 10.100.%d.%d . tcp . 80 : goto svc-%d }\nadd rule ip sni-bench svc-%d meta l4proto tcp dnat to 10.0.0.2:8080\n' \
    "$j" $((j / 256)) $((j % 256)) "$j" "$j" > "$TMP/add.nft"
  printf 'delete element ip sni-bench service-ips { 10.100.%d.%d . tcp . 80 }\nflush chain ip sni-bench svc-%d\ndelete chain ip sni-bench svc-%d\n' \
    $((j / 256)) $((j % 256)) "$j" "$j" > "$TMP/del.nft"
  REPS=50
  total=0
  for ((r = 0; r < REPS; r++)); do
    t0=$(date +%s%N)
    ip netns exec "$NS" nft -f "$TMP/add.nft"
    t1=$(date +%s%N)
    ip netns exec "$NS" nft -f "$TMP/del.nft"
    total=$((total + t1 - t0))
  done
  # `ip netns exec` adds a fork+setns+exec; measure it alone and subtract, to be fair to nft.
  t0=$(date +%s%N)
  for ((r = 0; r < REPS; r++)); do ip netns exec "$NS" true; done
  t1=$(date +%s%N)
  base=$(((t1 - t0) / REPS))
  nft_us=$(((total / REPS - base) / 1000))
  ip netns del "$NS"
  shoal_us=$("$BIN" --benchmark_filter="BM_KernelAddOneService/$N/0/" --benchmark_format=json 2>/dev/null |
    python3 -c 'import json,sys; b=json.load(sys.stdin)["benchmarks"][0]; print(int(b["real_time"]))')
  ratio=$(python3 -c "print(f'{$shoal_us/$nft_us:.2f}')")
  echo "commands: shoal=$BIN --benchmark_filter=BM_KernelAddOneService/$N/0/  nft=nft -f add.nft ($REPS runs, minus ip-netns-exec overhead ${base}ns)"
  echo "RESULT nft_add_one_service_${N} shoal=$(python3 -c "print(f'{$shoal_us/1000:.3f}')")ms nft=$(python3 -c "print($nft_us/1000)")ms ratio=$ratio"

  # Chain-free layout (RuleBuilder::DnatMap): a service is 4 slots of one typed map.
  ip netns add "$NS"
  {
    echo "table ip sni-bench-map {"
    echo "  map backends { typeof ip daddr . meta l4proto . th dport . numgen random mod 4 : ip daddr . th dport; }"
    echo "  chain prerouting { type nat hook prerouting priority dstnat; dnat ip to ip daddr . meta l4proto . th dport . numgen random mod 4 map @backends; }"
    echo "}"
    for ((i = 0; i < N; i++)); do
      echo "add element ip sni-bench-map backends { $(for k in 0 1 2 3; do printf '10.100.%d.%d . tcp . 80 . %d : 10.0.0.%d . 8080, ' $((i / 256)) $((i % 256)) $k $((k + 2)); done) }"
    done
  } > "$TMP/map.nft"
  ip netns exec "$NS" nft -f "$TMP/map.nft"
  elems=$(for k in 0 1 2 3; do printf '10.100.%d.%d . tcp . 80 . %d : 10.0.0.%d . 8080, ' $((j / 256)) $((j % 256)) $k $((k + 2)); done)
  keys=$(for k in 0 1 2 3; do printf '10.100.%d.%d . tcp . 80 . %d, ' $((j / 256)) $((j % 256)) $k; done)
  echo "add element ip sni-bench-map backends { $elems }" > "$TMP/madd.nft"
  echo "delete element ip sni-bench-map backends { $keys }" > "$TMP/mdel.nft"
  total=0
  for ((r = 0; r < REPS; r++)); do
    t0=$(date +%s%N)
    ip netns exec "$NS" nft -f "$TMP/madd.nft"
    t1=$(date +%s%N)
    ip netns exec "$NS" nft -f "$TMP/mdel.nft"
    total=$((total + t1 - t0))
  done
  nft_us=$(((total / REPS - base) / 1000))
  ip netns del "$NS"
  shoal_us=$("$BIN" --benchmark_filter="BM_KernelAddOneServiceDnatMap/$N/" --benchmark_format=json 2>/dev/null |
    python3 -c 'import json,sys; b=json.load(sys.stdin)["benchmarks"][0]; print(b["real_time"])')
  ratio=$(python3 -c "print(f'{$shoal_us/max($nft_us,1):.3f}')")
  echo "commands: shoal=$BIN --benchmark_filter=BM_KernelAddOneServiceDnatMap/$N/  nft=nft -f madd.nft ($REPS runs)"
  echo "RESULT nft_add_one_service_dnatmap_${N} shoal=$(python3 -c "print(f'{$shoal_us/1000:.3f}')")ms nft=$(python3 -c "print($nft_us/1000)")ms ratio=$ratio"
done
