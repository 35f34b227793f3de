#!/usr/bin/env bash
# Side-by-side: the same busybox bundle running /bin/true, N times sequentially, with
# `shoal-runtime run` and Debian's `runc run` (median wall time per run), plus the runtime
# library path (bench_runtime: create->exec and a full run, same rootfs) against the same runc
# median. Needs root. Usage: bench/runtime.sh [BUILD_DIR] [N]
set -euo pipefail
build=$(realpath "${1:-build}")
n=${2:-50}
src=$(cd "$(dirname "$0")/.." && pwd)
shoal="$build/runtime/oci/shoal-runtime"
probe="$build/runtime/probe/shoal-probe"
bench="$build/bench/runtime/bench_runtime"
[[ $(id -u) -eq 0 ]] || { echo "runtime.sh: needs root" >&2; exit 1; }
command -v runc >/dev/null || { echo "runtime.sh: runc not installed (scripts/setup)" >&2; exit 1; }
for b in "$shoal" "$probe" "$bench"; do
  [[ -x $b ]] || { echo "runtime.sh: $b missing (build shoal-runtime shoal-probe bench_runtime)" >&2; exit 1; }
done
work=$(mktemp -d /tmp/shoal-bench-runtime.XXXXXX)
trap 'rm -rf "$work"' EXIT
"$src/scripts/mkimage" "$work/bundle/rootfs" "$probe" >/dev/null
(cd "$work/bundle" && runc spec)
# runc's default spec, made non-interactive and pointed at /bin/true, without ambient
# capabilities (shoal-runtime rejects them; they do not change the work either runtime does);
# both runtimes get the same file.
python3 - "$work/bundle/config.json" <<'PY'
import json, sys
path = sys.argv[1]
c = json.load(open(path))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
c["process"].get("capabilities", {}).pop("ambient", None)
json.dump(c, open(path, "w"), indent=2)
PY

median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
time_runs() {  # $1 = label; rest = command with ID placeholder
  local label=$1; shift
  local i t0 t1
  for ((i = 0; i < n; i++)); do
    local cmd=("${@//ID/$label-$i}")
    t0=$(date +%s%N)
    "${cmd[@]}" >/dev/null 2>"$work/err" || { echo "runtime.sh: $label run $i failed: $(cat "$work/err")" >&2; return 1; }
    t1=$(date +%s%N)
    echo $(( (t1 - t0) / 1000 ))
  done | median
}

shoal_cmd=("$shoal" --root "$work/shoal-state" --cgroup-parent "shoal-bench-$$" run --bundle "$work/bundle" ID)
runc_cmd=(runc --root "$work/runc-state" run --bundle "$work/bundle" ID)
echo "machine: nproc=$(nproc) kernel=$(uname -r) runc=$(runc --version | head -1 | awk '{print $3}') n=$n"
echo "shoal: ${shoal_cmd[*]}"
echo "runc:  ${runc_cmd[*]}"
# Warm up both (page cache, first-run costs), then measure.
time_runs warm-shoal "${shoal_cmd[@]}" >/dev/null
time_runs warm-runc "${runc_cmd[@]}" >/dev/null
shoal_us=$(time_runs shoal "${shoal_cmd[@]}")
runc_us=$(time_runs runc "${runc_cmd[@]}")
for c in $(ls /sys/fs/cgroup); do rmdir "/sys/fs/cgroup/$c/shoal-bench-$$" 2>/dev/null || true; done
ms() { awk -v us="$1" 'BEGIN {printf "%.2f", us / 1000}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
echo "RESULT runtime_run_true shoal=$(ms "$shoal_us")ms runc=$(ms "$runc_us")ms ratio=$(ratio "$shoal_us" "$runc_us")"

# Library path (no CLI process, no config.json parsing): Google Benchmark medians.
# CreateToExec = Create + Start; RunToExec = Runtime::Run (one round trip, vfork-style clone,
# netns pool of 2 as the agent runs it); RunToExec_nopool = the same without the pool; RunTrue = Run,
# wait, delete, with cpu_ms = CPU time of the caller and the container per run.
json=$(SHOAL_BENCH_ROOTFS="$work/bundle/rootfs" "$bench" --benchmark_repetitions=5 \
  --benchmark_min_time=0.5 --benchmark_format=json 2>/dev/null)
runc_ms=$(ms "$runc_us")
script='
import json, sys
runc = float(sys.argv[1])
runs = {b["name"]: b for b in json.load(sys.stdin)["benchmarks"]}
for name, key in [("CreateToExec", "CreateToExec"), ("RunToExec", "RunToExec/1"),
                  ("RunToExec_nopool", "RunToExec/0"), ("RunTrue", "RunTrue")]:
    b = runs["BM_%s/real_time_median" % key]
    print("RESULT runtime_library_%s shoal=%.2fms runc=%.2fms ratio=%.2f"
          % (name, b["real_time"], runc, b["real_time"] / runc))
    if "cpu_ms" in b:
        print("runtime_library_%s: CPU time per run (caller + container) %.2f ms"
              % (name, b["cpu_ms"]))
for key, label in [("1", "with pools"), ("0", "without pools")]:
    b = runs["BM_RunCriticalPath/%s/real_time_median" % key]
    print("runtime_library_RunToExec critical path %s (median of 5): caller CPU %.2f ms +"
          " setup child CPU %.2f ms (incl. ~0.1 ms exec of cat) = %.2f ms on CPU; waiting for a"
          " CPU: caller %.2f ms, child %.2f ms; wall %.2f ms"
          % (label, b["caller_cpu_ms"], b["child_cpu_ms"], b["caller_cpu_ms"] + b["child_cpu_ms"],
             b["caller_wait_ms"], b["child_wait_ms"], b["real_time"]))
'
python3 -c "$script" "$runc_ms" <<<"$json" ||
  { echo "runtime.sh: bench_runtime produced no medians" >&2; exit 1; }
