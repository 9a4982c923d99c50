#!/usr/bin/env bash
# Helpers for BYST's network-namespace topologies (tests, demo, benchmarks), in the style
# of wireguard-go's tests/netns.sh: namespaces named with the caller's PID, every process
# started here is remembered by PID, and `netns_cleanup` (installed as a trap) removes it all.
#
# Only addresses inside namespaces created here are ever used.

BYST_NS_PREFIX=${BYST_NS_PREFIX:-byst$$}
BYST_NS_PIDS=()
BYST_NS_LIST=()
BYST_NS_WORK=${BYST_NS_WORK:-$(mktemp -d /tmp/byst-netns.$$.XXXX)}

netns_require() {
    for tool in ip "$@"; do
        command -v "$tool" >/dev/null || { echo "FAIL: required tool '$tool' not found" >&2; exit 1; }
    done
    [ "$(id -u)" -eq 0 ] || { echo "FAIL: needs root (network namespaces)" >&2; exit 1; }
}

# netns_add NAME: a namespace with loopback up and forwarding on (for hubs).
netns_add() {
    local ns="$BYST_NS_PREFIX-$1"
    ip netns add "$ns"
    BYST_NS_LIST+=("$ns")
    ip -n "$ns" link set lo up
    ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
}

ns() { echo "$BYST_NS_PREFIX-$1"; }

# netns_veth A ADDR_A B ADDR_B: a veth pair between namespaces A and B (underlay).
netns_veth() {
    local a=$(ns "$1") b=$(ns "$3") ifa="v-$1-$3" ifb="v-$3-$1"
    ip link add "${ifa:0:15}" netns "$a" type veth peer name "${ifb:0:15}" netns "$b"
    ip -n "$a" addr add "$2" dev "${ifa:0:15}"
    ip -n "$b" addr add "$4" dev "${ifb:0:15}"
    ip -n "$a" link set "${ifa:0:15}" up
    ip -n "$b" link set "${ifb:0:15}" up
}

# netns_lan NAME ADDR…: an interface standing for the site's LAN subnet (a veth pair
# inside the namespace: the kernel here has no dummy driver).
netns_lan() {
    local n=$(ns "$1"); shift
    ip -n "$n" link add lan0 type veth peer name lan0-peer
    for address in "$@"; do
        case "$address" in
            *:*) ip -n "$n" addr add "$address" dev lan0 nodad ;;
            *) ip -n "$n" addr add "$address" dev lan0 ;;
        esac
    done
    ip -n "$n" link set lan0-peer up
    ip -n "$n" link set lan0 up
}

# netns_hub_farm PEERS LIVE TUN [EXTRA REMOVED]: namespaces "hub" (10.250.0.1) and "farm"
# (10.250.0.2) on a veth, and the configs of scripts/lib/hub-farm.py in $BYST_NS_WORK: a hub
# with PEERS peers and one farm node playing LIVE of them from their own addresses in
# 10.252.0.0/16, which the hub reaches through the farm (as branches through a router: one
# neighbour entry, where 2,000 on one link would overflow the kernel's ARP table).
netns_hub_farm() {
    netns_add hub
    netns_add farm
    netns_veth hub 10.250.0.1/16 farm 10.250.0.2/16
    for n in hub farm; do ip netns exec "$(ns $n)" sysctl -qw net.ipv4.ip_local_port_range="1024 65535" net.core.somaxconn=8192; done
    python3 scripts/lib/hub-farm.py "$BYST_NS_WORK" "$@"
    ip -n "$(ns farm)" -batch "$BYST_NS_WORK/sources"
    ip -n "$(ns hub)" route add 10.252.0.0/16 via 10.250.0.2
}

# netns_hub_probe PEER: after netns_hub_farm, a namespace "probe" (10.251.0.2) on a veth to
# the hub (10.251.0.1), and in $BYST_NS_WORK probe.keys and probe.toml: a branch node with a
# TUN and 2 links to the hub, playing configured peer PEER (one the farm does not play) with
# its key and its /32 from the hub's config; the hub's TUN address 100.64.0.1 is its one
# route. The caller starts it (`netns_run probe … byst up -c $BYST_NS_WORK/probe.toml`).
netns_hub_probe() {
    local key=$1 work=$BYST_NS_WORK address
    address=$(awk -v key="$key" '$1 == "name" && $3 == "\"" key "\"" { found = 1 } found && $1 == "allowed_ips" { gsub(/[\[\]"]/, "", $3); sub(/\/32/, "", $3); print $3; exit }' "$work/hub.toml")
    [ -n "$address" ] || { echo "FAIL: no address for $key in the hub's config (a TUN hub, and $key configured?)" >&2; return 1; }
    netns_add probe
    netns_veth hub 10.251.0.1/24 probe 10.251.0.2/24
    { head -1 "$work/hub.keys"; grep "^$key " "$work/hub.keys"; } >"$work/probe.keys"
    chmod 600 "$work/probe.keys"
    cat >"$work/probe.toml" <<TOML
[node]
name = "probe"
control_socket = "$work/probe.sock"
key_store = "$work/probe.keys"
[tun]
name = "bystprobe"
address = ["$address/32"]
[[peer]]
name = "hub"
key = "$key"
endpoint = "byst://10.251.0.1:7000"
links = 2
allowed_ips = ["100.64.0.1/32"]
TOML
    chmod 600 "$work/probe.toml"
}

# netns_run NAME LOGFILE COMMAND…: start a background process in a namespace; its PID is in
# $BYST_NS_LAST_PID (also printed). Call it directly, never as $(netns_run …): in a
# subshell the PID would not be remembered for cleanup (nor could it be waited for).
netns_run() {
    local n=$(ns "$1") log=$2; shift 2
    ip netns exec "$n" "$@" >"$log" 2>&1 &
    BYST_NS_LAST_PID=$!
    BYST_NS_PIDS+=($!)
    echo $!
}

netns_cleanup() {
    local pid ns
    for pid in "${BYST_NS_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    # Up to 3 s for a graceful exit, then SIGKILL: cleanup must never hang.
    for _ in $(seq 1 30); do
        local alive=0
        for pid in "${BYST_NS_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for pid in "${BYST_NS_PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    for pid in "${BYST_NS_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    for ns in "${BYST_NS_LIST[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
    rm -rf "$BYST_NS_WORK"
}

# byst_keys A B: a shared PSK, stored as "B" in A's store and "A" in B's store.
byst_keys() {
    "$BYST" key gen "$2" --store "$BYST_NS_WORK/$1.keys" >/dev/null
    "$BYST" key export "$2" --store "$BYST_NS_WORK/$1.keys" | "$BYST" key import "$1" --store "$BYST_NS_WORK/$2.keys" >/dev/null
}

# wait_for SECONDS COMMAND…: retry COMMAND every 0.2 s until it succeeds (bounded).
wait_for() {
    local seconds=$1; shift
    local tries=$((seconds * 5))
    for _ in $(seq 1 "$tries"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
    return 1
}
