#!/usr/bin/env bash
# Two sites joined by BYST over 4 links; each pings the other's LAN subnet, IPv4 and IPv6;
# a 32 MiB file crosses a port forward (a stream) on the same links while pings flow through
# the TUN, SHA-256 checked; `iperf3 -t 5` through the tunnel completes while one link is cut;
# a link whose branch-to-hub direction stops passing bytes is closed on the hub's word.
# Over byst:// links each node's data plane owns all 4 links (tun.data_plane_links), so the
# stream's frames go between the event loop and the plane; over HTTP it owns none.
#
#   ┌──────── ns a (branch) ────────┐            ┌──────── ns h (hub) ─────────┐
#   │ lan0 10.1.0.1/24 fd01::1/64   │            │ lan0 10.2.0.1/24 fd02::1/64 │
#   │ byst0 10.0.0.2/24 fd00::2/64  │            │ byst0 10.0.0.1/24 fd00::1/64│
#   │ v-a-h 192.168.241.1/24 ───────┼── veth ────┼─ v-h-a 192.168.241.2/24     │
#   └───────────────────────────────┘  4 links   └─────────────────────────────┘
#
# BYST_E2E_TRANSPORT=http runs the same over HTTP links (hub http_listen, http:// endpoint).
set -euo pipefail
cd "$(dirname "$0")/../.."
BYST=${BYST_BINARY:-$PWD/.build/debug/byst}
source deploy/netns/lib.sh
netns_require ping iperf3 ss socat sha256sum nft
trap netns_cleanup EXIT INT TERM
fail() { echo "FAIL: $*" >&2; for log in "$BYST_NS_WORK"/*.log; do echo "--- $log" >&2; tail -15 "$log" >&2; done; exit 1; }

netns_add a
netns_add h
netns_veth a 192.168.241.1/24 h 192.168.241.2/24
netns_lan a 10.1.0.1/24 fd01::1/64
netns_lan h 10.2.0.1/24 fd02::1/64
byst_keys h a
transport=${BYST_E2E_TRANSPORT:-byst}
case "$transport" in
    byst) listen_key=listen endpoint="byst://192.168.241.2:7000" ;;
    http) listen_key=http_listen endpoint="http://192.168.241.2:7000/byst" ;;
    *) fail "unknown BYST_E2E_TRANSPORT '$transport'" ;;
esac

cat >"$BYST_NS_WORK/h.toml" <<TOML
[node]
name = "hub"
$listen_key = ["192.168.241.2:7000"]
control_socket = "$BYST_NS_WORK/h.sock"
key_store = "$BYST_NS_WORK/h.keys"
dead_link_timeout = "5s"
[tun]
name = "byst0"
address = ["10.0.0.1/24", "fd00::1/64"]
[[peer]]
name = "a"
key = "a"
allowed_ips = ["10.0.0.2/32", "fd00::2/128", "10.1.0.0/24", "fd01::/64"]
allow_targets = ["127.0.0.1:9101"]
TOML
cat >"$BYST_NS_WORK/a.toml" <<TOML
[node]
name = "branch-a"
control_socket = "$BYST_NS_WORK/a.sock"
key_store = "$BYST_NS_WORK/a.keys"
# Longer than the hub's (5 s): the half-dead link below must die by the hub's timer.
dead_link_timeout = "8s"
[tun]
name = "byst0"
address = ["10.0.0.2/24", "fd00::2/64"]
[[peer]]
name = "hub"
key = "h"
endpoint = "$endpoint"
links = 4
allowed_ips = ["10.0.0.1/32", "fd00::1/128", "10.2.0.0/24", "fd02::/64"]
[[forward]]
listen = "127.0.0.1:9100"
peer = "hub"
target = "127.0.0.1:9101"
TOML

netns_run h "$BYST_NS_WORK/h.log" "$BYST" up -c "$BYST_NS_WORK/h.toml" >/dev/null
netns_run a "$BYST_NS_WORK/a.log" "$BYST" up -c "$BYST_NS_WORK/a.toml" >/dev/null
links() { "$BYST" status --json --socket "$BYST_NS_WORK/a.sock" 2>/dev/null | grep -c '"remote"'; }
four_links() { [ "$(links)" = 4 ]; }
wait_for 10 four_links || fail "the branch did not get 4 links"

# Subnet to subnet, both families, both directions (sources are the LAN addresses).
ip netns exec "$(ns a)" ping -c 3 -i 0.2 -W 2 -I 10.1.0.1 10.2.0.1 >/dev/null || fail "IPv4 a→h subnet ping"
ip netns exec "$(ns h)" ping -c 3 -i 0.2 -W 2 -I 10.2.0.1 10.1.0.1 >/dev/null || fail "IPv4 h→a subnet ping"
ip netns exec "$(ns a)" ping -6 -c 3 -i 0.2 -W 2 -I fd01::1 fd02::1 >/dev/null || fail "IPv6 a→h subnet ping"
ip netns exec "$(ns h)" ping -6 -c 3 -i 0.2 -W 2 -I fd02::1 fd01::1 >/dev/null || fail "IPv6 h→a subnet ping"
echo "ok: subnet pings IPv4 and IPv6 both ways over 4 $transport links"

plane_links() { "$BYST" status --json --socket "$BYST_NS_WORK/$1.sock" | python3 -c 'import json,sys; print(json.load(sys.stdin)["tun"]["data_plane_links"])'; }
want_plane=4
[ "$transport" = http ] && want_plane=0
[ "$(plane_links a)" = "$want_plane" ] && [ "$(plane_links h)" = "$want_plane" ] ||
    fail "data planes own $(plane_links a) / $(plane_links h) links, not $want_plane"
echo "ok: each data plane owns $want_plane links"

# A stream through a port forward while TUN packets share its links.
head -c $((32 * 1024 * 1024)) /dev/urandom >"$BYST_NS_WORK/file"
want=$(sha256sum <"$BYST_NS_WORK/file" | cut -d' ' -f1)
netns_run h "$BYST_NS_WORK/socat.log" socat -u TCP4-LISTEN:9101,bind=127.0.0.1,reuseaddr "OPEN:$BYST_NS_WORK/received,creat,trunc" >/dev/null
sleep 0.5
ip netns exec "$(ns a)" ping -q -i 0.01 -c 300 -I 10.1.0.1 10.2.0.1 >"$BYST_NS_WORK/ping-during.txt" 2>&1 &
pinger=$!
ip netns exec "$(ns a)" timeout 60 socat -u "OPEN:$BYST_NS_WORK/file" TCP4:127.0.0.1:9100 || fail "file transfer through the forward"
complete() { [ "$(stat -c %s "$BYST_NS_WORK/received" 2>/dev/null)" = $((32 * 1024 * 1024)) ]; }
wait_for 15 complete || fail "forwarded file incomplete: $(stat -c %s "$BYST_NS_WORK/received" 2>/dev/null) bytes"
[ "$(sha256sum <"$BYST_NS_WORK/received" | cut -d' ' -f1)" = "$want" ] || fail "forwarded file SHA-256 differs"
wait "$pinger" || fail "pings during the transfer failed: $(tail -2 "$BYST_NS_WORK/ping-during.txt")"
echo "ok: 32 MiB through a port forward, SHA-256 equal, with $(awk '/received/ { print $4 }' "$BYST_NS_WORK/ping-during.txt") of 300 pings answered meanwhile"

reconnects() { "$BYST" status --json --socket "$BYST_NS_WORK/a.sock" | awk -F'[:,]' '/"reconnects"/ { gsub(/ /, "", $2); print $2; exit }'; }
before=$(reconnects)

# iperf3 for 5 s through the tunnel; one link is cut after 2 s.
netns_run h "$BYST_NS_WORK/iperf-s.log" iperf3 -s -1 -B 10.2.0.1 >/dev/null
sleep 0.5
ip netns exec "$(ns a)" iperf3 -c 10.2.0.1 -B 10.1.0.1 -t 5 -J >"$BYST_NS_WORK/iperf.json" &
client=$!
sleep 2
port=$(ip netns exec "$(ns a)" ss -tnH state established dst 192.168.241.2:7000 | awk 'NR == 1 { split($3, a, ":"); print a[2] }')
[ -n "$port" ] || fail "no link socket found to cut"
ip netns exec "$(ns a)" ss -K dst 192.168.241.2 sport = :"$port" >/dev/null 2>&1 || true
echo "cut the link from local port $port"
wait "$client" || fail "iperf3 did not complete after a link cut"
bps=$(awk -F'[:,]' '/"sum_received"/ { f = 1 } f && /"bits_per_second"/ { printf "%.0f", $2; exit }' "$BYST_NS_WORK/iperf.json")
[ "${bps:-0}" -gt 1000000 ] || fail "iperf3 moved only ${bps:-0} bit/s"
echo "ok: iperf3 -t 5 through the tunnel with a link cut: $((bps / 1000000)) Mbit/s"
after=$(reconnects)
[ "${after:-0}" -gt "${before:-0}" ] || fail "no reconnect recorded: the link was not cut"
wait_for 10 four_links || fail "the cut link did not come back"
echo "ok: the cut link reconnected"

# Links go half-dead: what the branch writes to the hub stops getting through, what the hub
# writes still arrives (as behind a proxy that stopped passing one direction on): nftables
# drops the branch's packets to the hub that carry bytes and lets its bare ACKs through
# (≤ 64 bytes: IPv4, TCP with timestamps and one SACK block), so the hub's TCP still
# delivers. Pings from the hub's LAN keep one link busy (the branch drops their replies
# before its TUN, so that its side of the link carries little but ACKs): the hub
# hears nothing on it, closes it as dead after its dead-link timeout (5 s) and says why in
# the link's last record (PROTOCOL.md §5.5, close reasons); the branch, which still hears
# the hub and whose own timeout is longer, closes it on that word. Over byst:// both ends'
# data planes own the link: the frame leaves through the hub's plane and reaches the
# branch's loop through its plane.
# The kernel does not always keep the hub's direction alive: an ACK of the branch's that
# rides on a data segment is dropped with it, and if the hub's TCP hears none for long it
# stops sending too; then nothing of the hub's arrives and the branch's own dead-link timer
# (8 s) closes the link. Such an attempt set nothing up; it is made again (5 at most).
since_mark() { tail -n +$(($2 + 1)) "$BYST_NS_WORK/$1.log"; }
peer_said() { since_mark a "$a_mark" | grep -q "the peer closed it: nothing of ours reached it for its dead-link timeout"; }
said=0
for attempt in 1 2 3 4 5; do
    ip netns exec "$(ns a)" nft -f - <<'NFT'
table inet halfdead {
    chain out {
        type filter hook output priority 0;
        ip daddr 192.168.241.2 tcp dport 7000 ip length > 64 drop;
        oifname "byst0" icmp type echo-reply drop;
    }
}
NFT
    a_mark=$(wc -l <"$BYST_NS_WORK/a.log") h_mark=$(wc -l <"$BYST_NS_WORK/h.log")
    netns_run h "$BYST_NS_WORK/hub-ping.log" ping -q -i 0.05 -w 15 -I 10.2.0.1 10.1.0.1 >/dev/null
    hub_pinger=$BYST_NS_LAST_PID
    wait_for 12 peer_said && said=1
    kill "$hub_pinger" 2>/dev/null || true
    wait "$hub_pinger" 2>/dev/null || true
    ip netns exec "$(ns a)" nft delete table inet halfdead
    [ "$said" = 1 ] && break
    since_mark a "$a_mark" | grep -q "no traffic for 8.0 seconds: dead link" \
        || fail "the branch did not close a half-dead link on the hub's word, nor by its own timer"
    echo "   half-dead attempt $attempt: the hub's TCP stopped too (its ACKs lost); again"
    wait_for 20 four_links || fail "the links did not come back after half-dead attempt $attempt"
done
[ "$said" = 1 ] || fail "the branch did not close a half-dead link on the hub's word in 5 attempts"
since_mark h "$h_mark" | grep -q "no traffic for 5.0 seconds: dead link" || fail "the hub did not close the half-dead link as dead"
wait_for 20 four_links || fail "the half-dead links did not come back"
echo "ok: a half-dead $transport link: the hub closed it as dead and said so, the branch closed it on that word; 4 links again"
