#!/usr/bin/env bash
# Side-by-side: 3 shoal-raft-server members vs a 3-member etcd (Debian etcd-server), both on
# loopback with fsync, driven by the same load tool (shoal-raft-load; etcd through its public
# gRPC KV API): 256-byte Puts with 1, 16 and 256 clients (throughput, p50, p99), then leader
# failover: kill -9 the leader N times, time until the next write commits.
#
# Each load point runs RAFT_BENCH_ROUNDS times, alternating shoal and etcd runs so both see the
# same background load; the RESULT lines give the median of the rounds (every round is printed).
#
# Usage: bench/raft/compare.sh [BUILD_DIR]
#   env: RAFT_BENCH_SECS (10), RAFT_BENCH_ROUNDS (3), RAFT_BENCH_CLIENTS ("1 16 256"),
#        RAFT_BENCH_KILLS (20; 0 skips the failover part),
#        RAFT_BENCH_SHOAL_ARGS (extra shoal-raft-server flags, e.g. timing experiments)
#   Short forms for re-measuring one point cheaply: ROUNDS, CLIENTS, SECS, KILLS. Setting
#   CLIENTS (or RAFT_BENCH_CLIENTS) skips the failover part unless KILLS is given, e.g.
#     ROUNDS=5 CLIENTS=1 bench/raft.sh build     # the 1-client point only, 5 rounds per side
set -euo pipefail
build=${1:-build}
secs=${SECS:-${RAFT_BENCH_SECS:-10}}
rounds=${ROUNDS:-${RAFT_BENCH_ROUNDS:-3}}
if [[ -n ${CLIENTS:-}${RAFT_BENCH_CLIENTS:-} ]]; then default_kills=0; else default_kills=20; fi
clients=${CLIENTS:-${RAFT_BENCH_CLIENTS:-1 16 256}}
kills=${KILLS:-${RAFT_BENCH_KILLS:-$default_kills}}
srv=$build/manager/raft/tools/shoal-raft-server
load=$build/manager/raft/tools/shoal-raft-load
for b in "$srv" "$load"; do
  [[ -x $b ]] || { echo "raft bench: $b not built (ninja shoal-raft-server shoal-raft-load)" >&2; exit 1; }
done
command -v etcd >/dev/null || { echo "raft bench: etcd not installed (scripts/setup)" >&2; exit 1; }

work=$(mktemp -d /tmp/shoal-bench-raft.XXXXXX)
declare -A spid epid
cleanup() {
  for p in "${spid[@]}" "${epid[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

sp() { echo $((27200 + $1)); }  # shoal member ports
ecp() { echo $((27210 + $1)); } # etcd client ports
epp() { echo $((27220 + $1)); } # etcd peer ports
shoal_cluster="1=127.0.0.1:$(sp 1),2=127.0.0.1:$(sp 2),3=127.0.0.1:$(sp 3)"
shoal_eps="127.0.0.1:$(sp 1),127.0.0.1:$(sp 2),127.0.0.1:$(sp 3)"
etcd_cluster="e1=http://127.0.0.1:$(epp 1),e2=http://127.0.0.1:$(epp 2),e3=http://127.0.0.1:$(epp 3)"
etcd_eps="127.0.0.1:$(ecp 1),127.0.0.1:$(ecp 2),127.0.0.1:$(ecp 3)"

start_shoal() {
  "$srv" --id "$1" --listen "127.0.0.1:$(sp "$1")" --dir "$work/shoal$1" \
    --cluster "$shoal_cluster" --snapshot-interval 100000 --log-level warn ${RAFT_BENCH_SHOAL_ARGS:-} \
    >>"$work/shoal$1.log" 2>&1 &
  spid[$1]=$!
}
start_etcd() {
  etcd --name "e$1" --data-dir "$work/etcd$1" \
    --listen-client-urls "http://127.0.0.1:$(ecp "$1")" \
    --advertise-client-urls "http://127.0.0.1:$(ecp "$1")" \
    --listen-peer-urls "http://127.0.0.1:$(epp "$1")" \
    --initial-advertise-peer-urls "http://127.0.0.1:$(epp "$1")" \
    --initial-cluster "$etcd_cluster" --initial-cluster-state new \
    --initial-cluster-token shoal-bench --heartbeat-interval 100 --election-timeout 1000 \
    --log-level error >>"$work/etcd$1.log" 2>&1 &
  epid[$1]=$!
}
wait_leader() {  # mode endpoints
  for _ in $(seq 1 200); do
    "$load" leader --mode "$1" --endpoints "$2" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "raft bench: no $1 leader" >&2
  return 1
}
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" <<<"$2"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "inf"; else printf "%.2f", a / b }'; }

echo "machine: nproc=$(nproc) kernel=$(uname -r) disk=$(df -T "$work" | awk 'NR==2 {print $2}')"
echo "peer: $(etcd --version | head -1), 3 members, heartbeat 100 ms, election 1000 ms"
echo "shoal: 3 members, tick 100 ms, election 10 ticks, heartbeat 1 tick, fdatasync per Ready,"
echo "       snapshot every 100000 entries (= etcd 3.4's default --snapshot-count)"
for i in 1 2 3; do start_shoal "$i"; start_etcd "$i"; done
wait_leader shoal "$shoal_eps" >/dev/null
wait_leader etcd "$etcd_eps" >/dev/null

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
for c in $clients; do
  cmd_s="$load run --mode shoal --endpoints $shoal_eps --clients $c --duration $secs --value-size 256"
  cmd_e="$load run --mode etcd --endpoints $etcd_eps --clients $c --duration $secs --value-size 256"
  echo "command: $cmd_s --prefix s$c-<round>-"
  echo "command: $cmd_e --prefix e$c-<round>-"
  : >"$work/c$c-shoal"; : >"$work/c$c-etcd"
  for r in $(seq 1 "$rounds"); do
    out_s=$($cmd_s --prefix "s$c-$r-")
    echo "  round $r shoal: $out_s"
    echo "$out_s" >>"$work/c$c-shoal"
    out_e=$($cmd_e --prefix "e$c-$r-")
    echo "  round $r etcd:  $out_e"
    if [[ -z $(field ops_per_s "$out_e") ]]; then echo "raft bench: etcd run failed: $out_e" >&2; exit 1; fi
    echo "  round $r throughput ratio: $(ratio "$(field ops_per_s "$out_s")" "$(field ops_per_s "$out_e")")"
    echo "$out_e" >>"$work/c$c-etcd"
  done
  for m in ops_per_s p50_ms p99_ms; do
    a=$(while read -r l; do field "$m" "$l"; done <"$work/c$c-shoal" | median)
    b=$(while read -r l; do field "$m" "$l"; done <"$work/c$c-etcd" | median)
    case $m in
      ops_per_s) echo "RESULT raft_put_256B_c${c}_throughput shoal=${a}ops/s etcd=${b}ops/s ratio=$(ratio "$a" "$b")" ;;
      *) echo "RESULT raft_put_256B_c${c}_${m%_ms} shoal=${a}ms etcd=${b}ms ratio=$(ratio "$a" "$b")" ;;
    esac
  done
done

# Failover: kill -9 the leader, time until a write commits, restart it, let it rejoin.
failover() {  # mode endpoints -> prints one ms value per kill
  local mode=$1 eps=$2 i leader id t0 out
  for i in $(seq 1 "$kills"); do
    leader=$(wait_leader "$mode" "$eps")
    id=$(( ${leader##*:} % 10 ))
    t0=$(date +%s%N)
    if [[ $mode == shoal ]]; then kill -9 "${spid[$id]}"; else kill -9 "${epid[$id]}"; fi
    out=$("$load" first-write --mode "$mode" --endpoints "$eps" --since-ns "$t0" --timeout-ms 300 --prefix "f$i-")
    field failover_ms "$out"
    if [[ $mode == shoal ]]; then wait "${spid[$id]}" 2>/dev/null || true; else wait "${epid[$id]}" 2>/dev/null || true; fi
    if [[ $mode == shoal ]]; then start_shoal "$id"; else start_etcd "$id"; fi
    sleep 2  # let the restarted member catch up before the next kill
  done
}
maxv() { sort -n | tail -1; }
[[ $kills -gt 0 ]] || exit 0
# (Not in $(...): the restarted members must stay children of this shell for cleanup.)
failover shoal "$shoal_eps" >"$work/failover-shoal"
failover etcd "$etcd_eps" >"$work/failover-etcd"
fs=$(cat "$work/failover-shoal")
fe=$(cat "$work/failover-etcd")
echo "failover shoal ms: $(tr '\n' ' ' <<<"$fs")"
echo "failover etcd ms:  $(tr '\n' ' ' <<<"$fe")"
ms=$(median <<<"$fs"); me=$(median <<<"$fe")
echo "RESULT raft_failover_median shoal=${ms}ms etcd=${me}ms ratio=$(ratio "$ms" "$me")"
xs=$(maxv <<<"$fs"); xe=$(maxv <<<"$fe")
echo "RESULT raft_failover_max shoal=${xs}ms etcd=${xe}ms ratio=$(ratio "$xs" "$xe")"
