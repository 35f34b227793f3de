# VXLAN between two separate kernels: each VM builds vxlan42 (VNI 42, UDP 4789) over its virtio
# NIC with the other VM as the remote, puts 10.42.0.(1+node)/24 on it, then
#   1. pings the peer's overlay address (the ICMP travels inside VXLAN across the qemu network),
#   2. sends a token over TCP through the overlay to the peer, and waits for the peer's token;
# the token exchange is also the barrier that keeps both VMs up until both are done.
fail() {
  echo "FAIL: $*"
  ip -d link show vxlan42
  ip -s link
  exit 1
}

me=$SHOAL_VM_NODE
[ "$SHOAL_VM_NODES" -eq 2 ] || fail "needs exactly 2 VMs, got $SHOAL_VM_NODES"
peer=$((1 - me))
set -- $SHOAL_VM_PEERS
[ "$peer" -eq 0 ] && underlay_peer=$1 || underlay_peer=$2
overlay_me=10.42.0.$((1 + me))
overlay_peer=10.42.0.$((1 + peer))

ip link add vxlan42 type vxlan id 42 remote "$underlay_peer" dstport 4789 dev eth0
ip addr add "$overlay_me/24" dev vxlan42
ip link set vxlan42 up
ip -d link show vxlan42

# Receive the peer's token over the overlay (in the background, from now on).
nc -l -p 7042 >received &
listener=$!

i=0
until ping -c 1 -W 1 "$overlay_peer" >/dev/null 2>&1; do
  i=$((i + 1)); [ "$i" -lt 90 ] || fail "no ping reply from $overlay_peer over vxlan42"
done
ping -c 3 "$overlay_peer"

token="token-from-vm$me"
i=0
until echo "$token" | nc -w 5 "$overlay_peer" 7042 2>/dev/null; do
  i=$((i + 1)); [ "$i" -lt 100 ] || fail "could not send over TCP to $overlay_peer:7042"; sleep 0.2
done
i=0
while kill -0 "$listener" 2>/dev/null; do
  i=$((i + 1)); [ "$i" -lt 600 ] || fail "peer's token never arrived"; sleep 0.1
done
grep -qx "token-from-vm$peer" received || fail "received '$(cat received)', want token-from-vm$peer"
echo "received $(cat received) over the overlay"

# The traffic really went through the VXLAN device and the underlay NIC.
rx=$(cat /sys/class/net/vxlan42/statistics/rx_packets)
[ "$rx" -gt 0 ] || fail "vxlan42 received no packets"
ip -s link show vxlan42
echo "vxlan ok"
