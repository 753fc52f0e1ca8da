#!/bin/sh
# The network side of a tiny container runtime, for bridgeward's VM test (installed in the VM as
# /usr/local/sbin/bw-runtime). Like a real runtime it owns rt0 and assigns the gateway itself
# (racing the agent, which assigns it too), gets each sandbox's address from the agent (as a CNI
# plugin would), records its sandboxes, and restores them from that record after a reboot.
#
#   bw-runtime up               wait for the agent, create rt0, restore every recorded sandbox
#   bw-runtime add NAME [PORT]  lease an address for a new sandbox, create it, record it; with
#                               PORT, its workload answers its name on that TCP port
#
# A sandbox is a network namespace NAME with eth0 (one end of a veth pair, the other end on rt0),
# its MAC, address and default route via the gateway; it announces itself with a gratuitous ARP.
set -eu
BRIDGE=rt0
GATEWAY=10.8.64.1
PREFIX=24
STATE=/var/lib/bw-runtime/sandboxes # one line per sandbox: NAME MAC IP PORT ('-': no workload)
SOCKET=/run/bridgeward/api.sock
mkdir -p "${STATE%/*}"
touch "$STATE"

bridge_up() {
  ip link add "$BRIDGE" type bridge
  # The agent may have put the gateway there first (EEXIST): that is the race, not an error.
  ip addr add "$GATEWAY/$PREFIX" dev "$BRIDGE" 2>/dev/null ||
    ip -4 -o addr show dev "$BRIDGE" | grep -q " $GATEWAY/$PREFIX "
  ip link set "$BRIDGE" up
}

sandbox_up() { # NAME MAC IP PORT
  ip netns add "$1"
  ip -n "$1" link set lo up
  ip link add "v-$1" type veth peer name eth0 netns "$1"
  ip link set "v-$1" master "$BRIDGE" up
  ip -n "$1" link set eth0 address "$2" up
  ip -n "$1" addr add "$3/$PREFIX" dev eth0
  ip -n "$1" route add default via "$GATEWAY"
  ip netns exec "$1" arping -q -U -c 1 -I eth0 "$3" || true
  if [ "$4" != - ]; then
    ip netns exec "$1" setsid node -e \
      'require("net").createServer((s) => s.end(process.argv[1])).listen(Number(process.argv[2]))' \
      "$1" "$4" </dev/null >/dev/null 2>&1 &
  fi
}

case "${1:-}" in
up)
  tries=300
  until curl -sf --unix-socket "$SOCKET" http://agent/v1/status >/dev/null; do
    tries=$((tries - 1)) && [ "$tries" -gt 0 ] || { echo "bw-runtime: the agent does not answer" >&2; exit 1; }
    sleep 1
  done
  sysctl -qw net.ipv4.ip_forward=1 # egress for the sandboxes, as runtimes set it
  bridge_up
  while read -r name mac ip port; do sandbox_up "$name" "$mac" "$ip" "$port"; done <"$STATE"
  ;;
add)
  name=${2:?usage: bw-runtime add NAME [PORT]}
  n=$(($(wc -l <"$STATE") + 1))
  mac=$(printf '02:42:0a:08:%02x:%02x' $((n / 256)) $((n % 256)))
  ip=$(bridgeward lease allocate --sandbox "$name" --mac "$mac" -o json | jq -r .ip)
  sandbox_up "$name" "$mac" "$ip" "${3:--}"
  echo "$name $mac $ip ${3:--}" >>"$STATE"
  echo "$ip"
  ;;
*)
  echo "usage: bw-runtime up | add NAME [PORT]" >&2
  exit 2
  ;;
esac
