#!/bin/bash
# Side-by-side DNS queries per second (DESIGN.md §8): dnsperf against the Shoal resolver vs
# dnsmasq serving the same 10,000 names (A records) from a hosts file, both on loopback inside
# one throwaway namespace "snd-dnsb*", one after the other (same machine, same load).
# Usage: bench/dns.sh [build-dir]   (needs root, dnsperf, dnsmasq)
set -euo pipefail
BUILD=${1:-build}
SERVER=$BUILD/bench/dns/dns_bench_server
[ -x "$SERVER" ] || { echo "missing $SERVER (build target dns_bench_server)"; exit 1; }
[ "$(id -u)" = 0 ] || { echo "needs root"; exit 1; }
for t in dnsperf dnsmasq; do command -v $t >/dev/null || { echo "needs $t (scripts/setup)"; exit 1; }; done
echo "machine: nproc=$(nproc) kernel=$(uname -r) $(dnsmasq --version | head -1) $(dnsperf -h 2>&1 | grep -m1 -i version || true)"
NS=snd-dnsb$$
TMP=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
ip netns add "$NS"
ip -n "$NS" link set lo up
N=10000
SECS=${DNS_SECS:-10}
ip netns exec "$NS" "$SERVER" $N 127.0.0.1 5300 "$TMP/hosts" > "$TMP/shoal.out" &
PIDS+=($!)
for _ in $(seq 100); do grep -q READY "$TMP/shoal.out" 2>/dev/null && break; sleep 0.05; done
grep -q READY "$TMP/shoal.out" || { echo "shoal resolver did not start"; exit 1; }
ip netns exec "$NS" dnsmasq --keep-in-foreground --no-resolv --no-hosts --addn-hosts="$TMP/hosts" \
  --listen-address=127.0.0.2 --bind-interfaces --port=5301 --cache-size=10000 --pid-file= \
  --user=root --local-ttl=60 &
PIDS+=($!)
for _ in $(seq 100); do
  ip netns exec "$NS" dig +short +time=1 +tries=1 -p 5301 @127.0.0.2 svc-1 2>/dev/null | grep -q 10.100 && break
  sleep 0.05
done
for port_ip in "5300 127.0.0.1" "5301 127.0.0.2"; do
  set -- $port_ip
  got=$(ip netns exec "$NS" dig +short -p "$1" @"$2" svc-4242)
  [ "$got" = "10.100.16.146" ] || { echo "server $2:$1 answered '$got' for svc-4242"; exit 1; }
done
awk -v n=$N 'BEGIN {srand(1); for (i = 0; i < 100000; i++) printf "svc-%d A\n", int(rand() * n)}' > "$TMP/queries"
perf() {  # $1 ip $2 port -> qps
  ip netns exec "$NS" dnsperf -s "$1" -p "$2" -d "$TMP/queries" -l "$SECS" -c 4 -q 200 2>&1 |
    tee -a "$TMP/dnsperf.log" | awk '/Queries per second/ {printf "%.0f\n", $4}
      /Queries lost/ {lost=$3} END {if (lost + 0 > 0) print "lost " lost > "/dev/stderr"}'
}
echo "cmd: ip netns exec $NS dnsperf -s <ip> -p <port> -d queries(100k random of $N names) -l $SECS -c 4 -q 200"
best_s=0 best_d=0
for round in 1 2; do  # alternate so machine noise hits both
  s=$(perf 127.0.0.1 5300); d=$(perf 127.0.0.2 5301)
  echo "round $round: shoal=${s}qps dnsmasq=${d}qps"
  [ -n "$s" ] && [ -n "$d" ] || { echo "a dnsperf run failed; log:"; cat "$TMP/dnsperf.log"; exit 1; }
  best_s=$(awk -v a="$best_s" -v b="$s" 'BEGIN {print (b > a) ? b : a}')
  best_d=$(awk -v a="$best_d" -v b="$d" 'BEGIN {print (b > a) ? b : a}')
done
echo "RESULT dns_qps shoal=${best_s}qps dnsmasq=${best_d}qps ratio=$(awk -v a="$best_s" -v b="$best_d" 'BEGIN {printf "%.3f", a / b}')"
