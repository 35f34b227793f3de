# IPVS carrying real traffic: a virtual service 10.77.0.100:80 (round robin, NAT) in front of two
# HTTP backends, each in its own network namespace behind a veth pair. A client in the root
# namespace fetches the VIP repeatedly and must be answered by both backends in turn.
fail() { echo "FAIL: $*"; ipvsadm -Ln; exit 1; }

for b in 1 2; do
  ip netns add "be$b"
  ip link add "vbe$b" type veth peer name eth0 netns "be$b"
  ip addr add "10.77.$b.1/24" dev "vbe$b"
  ip link set "vbe$b" up
  ip -n "be$b" addr add "10.77.$b.2/24" dev eth0
  ip -n "be$b" link set eth0 up
  ip -n "be$b" link set lo up
  ip -n "be$b" route add default via "10.77.$b.1"
  mkdir -p "www$b"
  echo "backend-$b" >"www$b/index.html"
  ip netns exec "be$b" httpd -p 80 -h "$PWD/www$b"
done
echo 1 >/proc/sys/net/ipv4/ip_forward
ip addr add 10.77.0.100/32 dev lo

ipvsadm -A -t 10.77.0.100:80 -s rr
ipvsadm -a -t 10.77.0.100:80 -r 10.77.1.2:80 -m
ipvsadm -a -t 10.77.0.100:80 -r 10.77.2.2:80 -m

# Backends answer directly first (poll until httpd listens).
for b in 1 2; do
  i=0
  until timeout 5 wget -O - "http://10.77.$b.2/" >direct.out 2>&1; do
    i=$((i + 1))
    [ "$i" -lt 50 ] || fail "backend $b does not answer directly: $(cat direct.out)"
    sleep 0.1
  done
done

: >answers
for i in 1 2 3 4; do
  timeout 10 wget -q -O - http://10.77.0.100/ >>answers || fail "request $i to the VIP failed"
done
cat answers
[ "$(grep -c backend-1 answers)" -eq 2 ] || fail "backend-1 should answer 2 of 4 (round robin)"
[ "$(grep -c backend-2 answers)" -eq 2 ] || fail "backend-2 should answer 2 of 4 (round robin)"
# IPVS itself tracked the 4 balanced connections (its connection table, not the lagging
# --stats counters, which the estimator updates every 2 s).
ipvsadm -Lnc | tee conns.txt
conns=$(grep -c ' 10.77.0.100:80 ' conns.txt || true)
[ "$conns" -ge 4 ] || fail "ipvsadm -Lnc lists $conns connections to the VIP, want >= 4"
echo "ipvs traffic ok"
