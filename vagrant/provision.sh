#!/usr/bin/env bash
# Provisions one Vagrant VM of the Shoal cluster (run as root by the Vagrantfile):
#   1. installs the Debian packages (scripts/setup), builds Shoal, installs the binaries and the
#      systemd unit (packaging/systemd/shoald.service), starts shoald;
#   2. forms the cluster with the Docker-swarm-style CLI: manager1 runs `shoal swarm init` and
#      serves the join tokens on the private network until the others have joined; every other
#      node fetches its token and runs `shoal swarm join`. The token server stops after an hour.
#
# STATUS: step 2 is written against the INTENDED CLI (`shoal swarm init/join/join-token`,
# DESIGN.md §1). Until shoald/shoal integration lands, provisioning stops after step 1 with an
# error that says the cluster was not formed.
#
# Usage: provision.sh NAME ROLE(manager|worker) ADDRESS LEADER_ADDRESS
set -euo pipefail

name=${1:?name} role=${2:?role} addr=${3:?address} leader=${4:?leader address}
src=/shoal
build=/var/cache/shoal-build
token_port=8377
state=/var/lib/shoal-vagrant
log() { echo "provision[$name]: $*"; }
die() { echo "provision[$name]: ERROR: $*" >&2; exit 1; }
[[ "$role" == manager || "$role" == worker ]] || die "role must be manager or worker, got '$role'"
mkdir -p "$state"

# --- 1. packages, build, install ------------------------------------------------------------
log "installing packages (scripts/setup)"
"$src/scripts/setup"

log "building in $build"
cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSHOAL_BUILD_TESTS=OFF \
  -DSHOAL_BUILD_BENCH=OFF >/dev/null
targets=()
for t in shoald shoal shoal-monitor shoal-runtime; do
  ninja -C "$build" -t query "$t" >/dev/null 2>&1 && targets+=("$t")
done
# About 1.5 GB per compiler job (gRPC/protobuf translation units are big).
jobs=$(awk -v cpus="$(nproc)" '/MemTotal/ {
  j = int($2 / 1500000); print (j < 1 ? 1 : (j > cpus ? cpus : j)) }' /proc/meminfo)
ninja -C "$build" -j "$jobs" "${targets[@]}"

log "installing ${targets[*]} to /usr/local/bin and the shoald unit"
for t in "${targets[@]}"; do
  install -m 755 "$(find "$build" -type f -name "$t" -perm -u+x | head -1)" "/usr/local/bin/$t"
done
install -m 644 "$src/packaging/systemd/shoald.service" /etc/systemd/system/shoald.service
[[ -f /etc/default/shoald ]] || echo 'SHOALD_OPTS=""' >/etc/default/shoald
systemctl daemon-reload
systemctl enable shoald.service
systemctl restart shoald.service

# --- 2. cluster -----------------------------------------------------------------------------
if [[ -f "$state/joined" ]]; then
  log "already part of the cluster ($(cat "$state/joined"))"
  exit 0
fi
if ! shoal swarm --help >/dev/null 2>&1; then
  die "cluster NOT formed: this checkout's shoal has no 'swarm' command yet (shoald/shoal" \
      "integration is pending). shoald is installed as a systemd unit; re-run" \
      "'vagrant provision' once 'shoal swarm init/join' exist."
fi
sock=/run/shoal/shoald.sock
for _ in $(seq 300); do [[ -S "$sock" ]] && break; sleep 0.2; done
[[ -S "$sock" ]] ||
  die "shoald did not create $sock: $(systemctl status --no-pager shoald | tail -5)"

if [[ "$addr" == "$leader" ]]; then
  log "initializing the cluster on $addr"
  shoal swarm init --advertise-addr "$addr"
  # Publish the join tokens on the private network only, for at most an hour.
  mkdir -p /run/shoal-join
  shoal swarm join-token -q manager >/run/shoal-join/manager
  shoal swarm join-token -q worker >/run/shoal-join/worker
  systemctl stop shoal-join-tokens.service 2>/dev/null || true
  systemd-run --unit shoal-join-tokens --property RuntimeMaxSec=3600 \
    busybox httpd -f -p "$addr:$token_port" -h /run/shoal-join
else
  # manager1 may still be building: wait up to an hour for its token server.
  log "waiting for the $role join token from $leader:$token_port"
  token=""
  for _ in $(seq 720); do
    token=$(curl -fsS --max-time 3 "http://$leader:$token_port/$role" 2>/dev/null || true)
    [[ -n "$token" ]] && break
    sleep 5
  done
  [[ -n "$token" ]] || die "no join token from $leader:$token_port after an hour"
  log "joining $leader:2377 as a $role"
  shoal swarm join --token "$token" --advertise-addr "$addr" "$leader:2377"
fi
echo "$role via $leader at $(date -u +%FT%TZ)" >"$state/joined"
if [[ "$role" == manager ]]; then
  shoal node ls
fi
log "done"
