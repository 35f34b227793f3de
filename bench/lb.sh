#!/bin/bash
# Side-by-side LB benchmarks (DESIGN.md §8), in throwaway namespaces "snd-lbb*".
#  1. Time to add one service (10 backends) to a table already holding 1k / 10k services x 10
#     backends: Shoal's lb::NftBackend (chain-free map layout, one libnftnl batch) vs nft(8)
#     with kube-proxy's nftables layout (vmap element -> service chain with numgen vmap ->
#     10 endpoint chains with DNAT), the peer Shoal's layout replaces.
#  2. New TCP connections per second (ab, one request per connection) through a VIP (Shoal's
#     nft DNAT in an LB namespace that routes) vs straight to the backend over the same path.
# Usage: bench/lb.sh [build-dir]   (needs root, apache2-utils)
set -euo pipefail
BUILD=${1:-build}
TOOL=$BUILD/bench/lb/lb_bench_tool
[ -x "$TOOL" ] || { echo "missing $TOOL (build target lb_bench_tool)"; exit 1; }
[ "$(id -u)" = 0 ] || { echo "needs root"; exit 1; }
command -v ab >/dev/null || { echo "needs ab (apache2-utils)"; exit 1; }
echo "machine: nproc=$(nproc) kernel=$(uname -r) $(nft --version) $(ab -V | head -1)"
P=snd-lbb$$
TMP=$(mktemp -d)
SERVER=
cleanup() {
  [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null || true
  for ns in $P $P-c $P-l $P-b; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT

# ---- 1. add one service at 1k and 10k ----
ip netns add "$P"
echo "cmd: ip netns exec $P $TOOL scale 1000 10000 10 20"
ip netns exec "$P" "$TOOL" scale 1000 10000 10 20 | tee "$TMP/scale"
ip netns del "$P"
shoal_1k=$(awk '$1=="ADD" && $2==1000 {print $3}' "$TMP/scale")
shoal_10k=$(awk '$1=="ADD" && $2==10000 {print $3}' "$TMP/scale")

peer_add() {  # $1 = existing services; prints median ms of `nft -f add.nft` (minus exec cost)
  local n=$1
  ip netns add "$P"
  {
    echo "table ip snd-kp {"
    echo "  map service-ips { type ipv4_addr . inet_proto . inet_service : verdict; }"
    echo "  chain nat-prerouting { type nat hook prerouting priority dstnat; ip daddr . meta l4proto . th dport vmap @service-ips; }"
    for ((i = 0; i < n; i++)); do
      for ((b = 0; b < 10; b++)); do echo "  chain ep-$i-$b { meta l4proto tcp dnat to 10.200.$b.$((1 + i % 250)):8080; }"; done
      printf '  chain svc-%d { numgen random mod 10 vmap { ' "$i"
      for ((b = 0; b < 10; b++)); do printf '%d : goto ep-%d-%d, ' "$b" "$i" "$b"; done
      echo "}; }"
    done
    echo "}"
    for ((i = 0; i < n; i++)); do
      echo "add element ip snd-kp service-ips { 10.$((100 + i / 65536)).$(((i / 256) % 256)).$((i % 256)) . tcp . 80 : goto svc-$i }"
    done
  } > "$TMP/base.nft"
  ip netns exec "$P" nft -f "$TMP/base.nft"
  {
    for ((b = 0; b < 10; b++)); do echo "add chain ip snd-kp ep-p-$b"; echo "add rule ip snd-kp ep-p-$b meta l4proto tcp dnat to 10.201.$b.1:8080"; done
    echo "add chain ip snd-kp svc-p"
    printf 'add rule ip snd-kp svc-p numgen random mod 10 vmap { '
    for ((b = 0; b < 10; b++)); do printf '%d : goto ep-p-%d, ' "$b" "$b"; done
    echo "}"
    echo "add element ip snd-kp service-ips { 10.250.0.1 . tcp . 80 : goto svc-p }"
  } > "$TMP/add.nft"
  {
    echo "delete element ip snd-kp service-ips { 10.250.0.1 . tcp . 80 }"
    echo "flush chain ip snd-kp svc-p"; echo "delete chain ip snd-kp svc-p"
    for ((b = 0; b < 10; b++)); do echo "flush chain ip snd-kp ep-p-$b"; echo "delete chain ip snd-kp ep-p-$b"; done
  } > "$TMP/del.nft"
  local times=() base=()
  for ((r = 0; r < 15; r++)); do
    local t0 t1 t2
    t0=$(date +%s%N); ip netns exec "$P" true; t1=$(date +%s%N)
    ip netns exec "$P" nft -f "$TMP/add.nft"; t2=$(date +%s%N)
    ip netns exec "$P" nft -f "$TMP/del.nft"
    times+=($(( (t2 - t1) - (t1 - t0) )))
  done
  ip netns del "$P"
  printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.3f\n", a[int((NR+1)/2)]/1e6}'
}
echo "cmd: nft -f add.nft (kube-proxy layout, 1 service x 10 endpoints) into a table of N x 10"
peer_1k=$(peer_add 1000)
peer_10k=$(peer_add 10000)
echo "peer nft: 1000 -> ${peer_1k}ms, 10000 -> ${peer_10k}ms"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.4g", a / b}'; }
echo "RESULT lb_add_service_1k shoal=${shoal_1k}ms nft-kube-proxy-layout=${peer_1k}ms ratio=$(ratio "$shoal_1k" "$peer_1k")"
echo "RESULT lb_add_service_10k shoal=${shoal_10k}ms nft-kube-proxy-layout=${peer_10k}ms ratio=$(ratio "$shoal_10k" "$peer_10k")"
echo "RESULT lb_add_service_growth_10k_vs_1k shoal=${shoal_10k}ms shoal-at-1k=${shoal_1k}ms ratio=$(ratio "$shoal_10k" "$shoal_1k")"

# ---- 2. new connections per second: VIP vs direct ----
C=$P-c L=$P-l B=$P-b
for ns in $C $L $B; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
ip -n "$L" link add snd-lbbc type veth peer name eth0 netns "$C"
ip -n "$L" link add snd-lbbb type veth peer name eth0 netns "$B"
ip -n "$L" addr add 10.124.1.1/24 dev snd-lbbc; ip -n "$L" link set snd-lbbc up
ip -n "$L" addr add 10.124.2.1/24 dev snd-lbbb; ip -n "$L" link set snd-lbbb up
ip -n "$C" addr add 10.124.1.2/24 dev eth0; ip -n "$C" link set eth0 up; ip -n "$C" route add default via 10.124.1.1
ip -n "$B" addr add 10.124.2.2/24 dev eth0; ip -n "$B" link set eth0 up; ip -n "$B" route add default via 10.124.2.1
ip netns exec "$L" sysctl -qw net.ipv4.ip_forward=1
for ns in $C $B; do ip netns exec "$ns" sysctl -qw net.ipv4.tcp_tw_reuse=1 net.ipv4.ip_local_port_range="1024 65000"; done
ip netns exec "$B" "$TOOL" serve 10.124.2.2 8080 &
SERVER=$!
for _ in $(seq 100); do ip netns exec "$C" ab -q -n 1 http://10.124.2.2:8080/ >/dev/null 2>&1 && break; sleep 0.05; done
ip netns exec "$L" "$TOOL" vip 10.124.100.1 80 10.124.2.2:8080
N=${LB_CONNS:-10000}
run_ab() { ip netns exec "$C" ab -q -n "$N" -c 16 "$1" 2>&1 | awk '/Requests per second/ {print $4} /Failed requests/ {f=$3} END {if (f > 0) print "FAILED " f > "/dev/stderr"}'; }
echo "cmd: ip netns exec $C ab -q -n $N -c 16 http://10.124.100.1/  vs  http://10.124.2.2:8080/"
vip=0 direct=0
for round in 1 2 3; do  # alternate to spread machine noise over both
  d=$(run_ab http://10.124.2.2:8080/); v=$(run_ab http://10.124.100.1/)
  echo "round $round: direct=${d}/s vip=${v}/s"
  direct=$(awk -v a="$direct" -v b="$d" 'BEGIN {print (b > a) ? b : a}')
  vip=$(awk -v a="$vip" -v b="$v" 'BEGIN {print (b > a) ? b : a}')
done
echo "RESULT lb_new_connections_per_s shoal-vip=${vip}ops/s direct=${direct}ops/s ratio=$(ratio "$vip" "$direct")"
