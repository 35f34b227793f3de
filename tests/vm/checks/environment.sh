# Proves the VM lab is the environment it claims to be: Shoal's own kernel probe (`shoal
# features`) sees pure cgroup v2 and IPVS, and both work when used the way a user would.
# Runs inside the VM (sh -e); any failing command fails the test.
fail() { echo "FAIL: $*"; exit 1; }

echo "== shoal features"
shoal features | tee features.txt
grep -Eq '^cgroups +v2$' features.txt || fail "shoal features does not report pure cgroup v2"
grep -Eq '^IPVS +yes$' features.txt || fail "shoal features does not report IPVS"
grep -Eq '^nftables +yes$' features.txt || fail "shoal features does not report nftables"
grep -Eq '^CLONE_INTO_CGROUP +yes$' features.txt || fail "CLONE_INTO_CGROUP should be usable"
grep -Eq '^cgroup.kill +yes$' features.txt || fail "cgroup.kill should be usable"

echo "== pure cgroup v2: one cgroup2 mount, no v1 hierarchy"
grep ' cgroup' /proc/mounts
[ "$(awk '$3 == "cgroup2"' /proc/mounts | wc -l)" -eq 1 ] || fail "want exactly one cgroup2 mount"
! awk '$3 == "cgroup"' /proc/mounts | grep -q . || fail "a cgroup v1 hierarchy is mounted"
# With cgroup_no_v1=all no controller can be bound to v1: mounting one must fail.
mkdir -p /tmp/v1
if mount -t cgroup -o memory cgroup /tmp/v1 2>/dev/null; then
  umount /tmp/v1
  fail "the memory controller could still be mounted as cgroup v1"
fi

echo "== cgroup v2 at work: limits, membership, kill"
cg=/sys/fs/cgroup/shoal-vm-check
mkdir "$cg"
for c in memory pids cpu io; do
  grep -qw "$c" "$cg/cgroup.controllers" || fail "controller $c not available to children"
done
echo 67108864 >"$cg/memory.max"
echo 16 >"$cg/pids.max"
echo "50000 100000" >"$cg/cpu.max"
[ "$(cat "$cg/memory.max")" = 67108864 ] || fail "memory.max did not take"
sleep 600 &
pid=$!
echo "$pid" >"$cg/cgroup.procs"
grep -qx "$pid" "$cg/cgroup.procs" || fail "pid $pid not in $cg/cgroup.procs"
grep -q '^0::/shoal-vm-check$' "/proc/$pid/cgroup" ||
  fail "/proc/$pid/cgroup says $(cat "/proc/$pid/cgroup")"
grep -qx 'populated 1' "$cg/cgroup.events" || fail "cgroup.events should say populated 1"
echo 1 >"$cg/cgroup.kill"
wait "$pid" 2>/dev/null || true
i=0
until grep -qx 'populated 0' "$cg/cgroup.events"; do
  i=$((i + 1)); [ "$i" -lt 100 ] || fail "cgroup.kill did not empty the cgroup"; sleep 0.05
done
rmdir "$cg"
echo "cgroup v2 ok"

echo "== IPVS: module loaded, a service can be created and listed"
grep -q '^ip_vs ' /proc/modules || fail "ip_vs module not loaded"
ipvsadm -A -t 10.77.0.100:80 -s rr
ipvsadm -a -t 10.77.0.100:80 -r 10.77.1.2:80 -m
ipvsadm -a -t 10.77.0.100:80 -r 10.77.2.2:80 -m
ipvsadm -Ln | tee ipvs.txt
grep -q 'TCP  10.77.0.100:80 rr' ipvs.txt || fail "service missing from ipvsadm -Ln"
[ "$(grep -c 'Masq' ipvs.txt)" -eq 2 ] || fail "expected 2 real servers"
ipvsadm -C
echo "environment ok"
