#!/usr/bin/env bash
# Hub and spoke: branch A reaches branch B's subnet through the hub; a packet whose
# source is outside the sending peer's allowed_ips is dropped and counted at the hub, and
# so is one whose source lies in A's wide prefix (10.0.0.0/8) but in B's narrower one
# (10.3.0.0/24): the longest-prefix owner of a source must be the sender. Both TUN paths
# (the data planes, then the event loop with data_plane = false) are checked. The hub
# first runs three TUN queues, so three data planes, and each branch's two links sit on
# two of them: packets read on the third plane's queue cross to a plane with the branch's link.
#
#            ┌──────────── ns h (hub) ────────────┐
#            │ byst0 10.0.0.1/24   lan0 10.2.0.1  │
#            │ v-h-a 192.168.242.1  v-h-b 192.168.243.1
#            └──────┬───────────────────────┬─────┘
#       veth, 2 links                   veth, 2 links
#   ┌───────── ns a ─────────┐      ┌───────── ns b ─────────┐
#   │ byst0 10.0.0.2/24      │      │ byst0 10.0.0.3/24      │
#   │ lan0 10.1.0.1/24       │      │ lan0 10.3.0.1/24       │
#   └────────────────────────┘      └────────────────────────┘
set -euo pipefail
cd "$(dirname "$0")/../.."
BYST=${BYST_BINARY:-$PWD/.build/debug/byst}
source deploy/netns/lib.sh
netns_require ping
trap netns_cleanup EXIT INT TERM
fail() { echo "FAIL: $*" >&2; for log in "$BYST_NS_WORK"/*.log; do echo "--- $log" >&2; tail -15 "$log" >&2; done; exit 1; }

netns_add h
netns_add a
netns_add b
netns_veth h 192.168.242.1/24 a 192.168.242.2/24
netns_veth h 192.168.243.1/24 b 192.168.243.2/24
netns_lan h 10.2.0.1/24
netns_lan a 10.1.0.1/24 172.31.9.9/32 10.3.0.99/32
netns_lan b 10.3.0.1/24
byst_keys h a
byst_keys h b

hub_config() {
    cat >"$BYST_NS_WORK/h.toml" <<TOML
[node]
name = "hub"
listen = ["192.168.242.1:7000", "192.168.243.1:7000"]
control_socket = "$BYST_NS_WORK/h.sock"
key_store = "$BYST_NS_WORK/h.keys"
[tun]
address = ["10.0.0.1/24"]
data_plane = $1
queues = $2
[[peer]]
name = "a"
key = "a"
allowed_ips = ["10.0.0.2/32", "10.1.0.0/24", "10.0.0.0/8"]
[[peer]]
name = "b"
key = "b"
allowed_ips = ["10.0.0.3/32", "10.3.0.0/24"]
TOML
}
hub_config true 3
for site in a b; do
    # Each branch routes the hub's subnets and the *other* branch's LAN into the tunnel.
    case $site in
        a) tun=10.0.0.2 hub=192.168.242.1 other=10.3.0.0/24 ;;
        b) tun=10.0.0.3 hub=192.168.243.1 other=10.1.0.0/24 ;;
    esac
    cat >"$BYST_NS_WORK/$site.toml" <<TOML
[node]
name = "branch-$site"
control_socket = "$BYST_NS_WORK/$site.sock"
key_store = "$BYST_NS_WORK/$site.keys"
[tun]
address = ["$tun/24"]
[[peer]]
name = "hub"
key = "h"
endpoint = "byst://$hub:7000"
links = 2
allowed_ips = ["10.0.0.0/24", "10.2.0.0/24", "$other"]
TOML
done

netns_run h "$BYST_NS_WORK/h.log" "$BYST" up -c "$BYST_NS_WORK/h.toml" >/dev/null
hub_pid=$BYST_NS_LAST_PID
netns_run a "$BYST_NS_WORK/a.log" "$BYST" up -c "$BYST_NS_WORK/a.toml" >/dev/null
netns_run b "$BYST_NS_WORK/b.log" "$BYST" up -c "$BYST_NS_WORK/b.toml" >/dev/null
hub_links() { [ "$("$BYST" status --json --socket "$BYST_NS_WORK/h.sock" 2>/dev/null | grep -c '"remote"')" = 4 ]; }
wait_for 10 hub_links || fail "the hub did not get 2 links from each branch"
counter() { "$BYST" status --json --socket "$BYST_NS_WORK/$1.sock" | awk -F'[:,]' -v key="\"$2\"" '$0 ~ key { gsub(/ /, "", $2); print $2; exit }'; }

ip netns exec "$(ns a)" ping -c 3 -i 0.2 -W 2 -I 10.1.0.1 10.3.0.1 >/dev/null || fail "A → B subnet through the hub"
ip netns exec "$(ns b)" ping -c 3 -i 0.2 -W 2 -I 10.3.0.1 10.1.0.1 >/dev/null || fail "B → A subnet through the hub"
ip netns exec "$(ns a)" ping -c 2 -i 0.2 -W 2 -I 10.1.0.1 10.2.0.1 >/dev/null || fail "A → hub subnet"
echo "ok: branch A and branch B reach each other's subnets through the hub"

# Three planes for four links: one has two (of different branches), the others one each.
plane_links=$("$BYST" status --json --socket "$BYST_NS_WORK/h.sock" | python3 -c 'import json,sys; print(sorted(json.load(sys.stdin)["tun"]["plane_links"]))')
[ "$plane_links" = "[1, 1, 2]" ] || fail "the hub's links per plane are $plane_links, not spread as [1, 1, 2]"
for round in 1 2 3; do
    ip netns exec "$(ns h)" ping -c 2 -i 0.2 -W 2 -I 10.2.0.1 10.1.0.1 >/dev/null || fail "hub → A subnet (3 planes, round $round)"
    ip netns exec "$(ns h)" ping -c 2 -i 0.2 -W 2 -I 10.2.0.1 10.3.0.1 >/dev/null || fail "hub → B subnet (3 planes, round $round)"
done
echo "ok: the hub's 3 planes hold its links as $plane_links; $(counter h packets_to_other_planes) packets crossed to the plane with the peer's link"

# TUN noise: A → B leaves the hub through the interface it came in by, so the hub's kernel
# sends ICMP redirects into the tunnel; with IPv6 it also sent router solicitations and
# MLD reports from the TUN's link-local address, which branches counted as spoofed. None
# may reach a branch: the TUN has no link-local address, and link-scoped traffic is
# dropped as such (not as a routing miss) before it is sent.
for n in h a b; do
    [ -z "$(ip -n "$(ns "$n")" -6 addr show dev byst0 scope link)" ] || fail "byst0 in ns $n has an IPv6 link-local address"
done
for site in a b; do
    [ "$(counter "$site" dropped_spoofed_source)" = 0 ] || fail "branch $site counted $(counter "$site" dropped_spoofed_source) spoofed packets (noise from the hub's TUN)"
done
[ "$(counter h dropped_link_scoped)" -gt 0 ] || fail "the hub's redirects for A → B were not dropped as link-scoped"
echo "ok: no link-local address on the TUNs; the hub's $(counter h dropped_link_scoped) redirects stayed out of the tunnel; branches counted no spoofed packet"

# A's node sends whatever its routes cover (the hub's subnets, B's LAN); the hub must drop
# packets whose source is not A's:
# - 172.31.9.9 lies in none of A's prefixes at the hub;
# - 10.3.0.99 lies in A's 10.0.0.0/8 but in B's 10.3.0.0/24, and the longest prefix wins.
spoofed() { counter h dropped_spoofed_source; }
check_spoofing() {
    local path=$1 source before after
    for source in 172.31.9.9 10.3.0.99; do
        before=$(spoofed)
        if ip netns exec "$(ns a)" ping -c 3 -i 0.2 -W 1 -I "$source" 10.2.0.1 >/dev/null 2>&1; then
            fail "$path: a spoofed source $source got through the hub"
        fi
        after=$(spoofed)
        [ "${after:-0}" -ge $((before + 3)) ] || fail "$path: packets from $source not dropped as spoofed (before $before, after $after)"
        echo "ok ($path): spoofed source $source dropped and counted ($((after - before)) packets)"
    done
}
check_spoofing "data plane"

# The same on the event loop's path.
kill "$hub_pid"; wait "$hub_pid" 2>/dev/null || true
hub_config false 1
netns_run h "$BYST_NS_WORK/h2.log" "$BYST" up -c "$BYST_NS_WORK/h.toml" >/dev/null
wait_for 15 hub_links || fail "the restarted hub (data_plane = false) did not get its links back"
ip netns exec "$(ns a)" ping -c 2 -i 0.2 -W 2 -I 10.1.0.1 10.2.0.1 >/dev/null || fail "A → hub subnet without the data plane"
check_spoofing "event loop"
