#!/usr/bin/env bash
# A branch with two uplinks of different rates (two ISPs, say) reaches the hub over both at
# once (`[[peer]] uplinks`): one forwarded stream gets most of their sum; cutting one uplink
# under a verified stream loses nothing, the stream goes on over the other within two
# dead-link timeouts, and both uplinks carry it again once the cut one is back.
#
#   ┌─────────── ns b (branch) ───────────┐            ┌──────────── ns h (hub) ────────────┐
#   │ uplink "fast": bind 10.201.1.2 ─────┼─ u-fast ───┼─ 10.201.1.1   100 Mbit/s each way  │
#   │ uplink "slow": interface u-slow ────┼─ u-slow ───┼─ 10.201.2.1    30 Mbit/s each way  │
#   │ (2 links each)                      │            │ hub listens on 10.200.0.1:7000 (lo)│
#   └─────────────────────────────────────┘            └────────────────────────────────────┘
#
# Rates are tbf qdiscs on both ends of each veth. The hub's address is routed over both
# veths; the fast uplink is chosen by source address (policy routing), the slow one by
# SO_BINDTODEVICE. A cut is an nftables drop on the branch's slow veth (silent, as a dead
# modem is), so the links there die by the dead-link timeout.
set -euo pipefail
cd "$(dirname "$0")/../.."
BYST=${BYST_BINARY:-$PWD/.build/debug/byst}
source deploy/netns/lib.sh
netns_require iperf3 tc nft ss python3 jq ethtool
trap netns_cleanup EXIT INT TERM
fail() { echo "FAIL: $*" >&2; for log in "$BYST_NS_WORK"/*.log; do echo "--- $log" >&2; tail -15 "$log" >&2; done; exit 1; }

fast_mbit=100 slow_mbit=30 dead_link=2
netns_add b
netns_add h
B=$(ns b) H=$(ns h)
ip link add u-fast netns "$B" type veth peer name u-fast netns "$H"
ip link add u-slow netns "$B" type veth peer name u-slow netns "$H"
ip -n "$B" addr add 10.201.1.2/24 dev u-fast
ip -n "$H" addr add 10.201.1.1/24 dev u-fast
ip -n "$B" addr add 10.201.2.2/24 dev u-slow
ip -n "$H" addr add 10.201.2.1/24 dev u-slow
for n in "$B" "$H"; do
    for dev in u-fast u-slow; do
        ip -n "$n" link set "$dev" up
        # veth offloads would let TCP segments of 64 KiB past tbf's size checks.
        ip netns exec "$n" ethtool -K "$dev" tso off gso off gro off >/dev/null
    done
    ip netns exec "$n" tc qdisc add dev u-fast root tbf rate ${fast_mbit}mbit burst 64kb latency 50ms
    ip netns exec "$n" tc qdisc add dev u-slow root tbf rate ${slow_mbit}mbit burst 32kb latency 100ms
done
ip -n "$H" addr add 10.200.0.1/32 dev lo
# Both ways out lead to the hub; by destination the fast one is preferred. Traffic from the
# fast uplink's address is routed out of it (the multi-WAN policy rule the docs describe);
# a socket bound to u-slow uses the route on u-slow.
ip -n "$B" route add 10.200.0.1/32 via 10.201.1.1 dev u-fast metric 10
ip -n "$B" route add 10.200.0.1/32 via 10.201.2.1 dev u-slow metric 20
ip -n "$B" rule add from 10.201.1.2 table 101
ip -n "$B" route add 10.200.0.1/32 via 10.201.1.1 dev u-fast table 101
byst_keys h b

cat >"$BYST_NS_WORK/h.toml" <<TOML
[node]
name = "hub"
listen = ["10.200.0.1:7000"]
control_socket = "$BYST_NS_WORK/h.sock"
key_store = "$BYST_NS_WORK/h.keys"
keepalive_interval = "500ms"
dead_link_timeout = "${dead_link}s"
[limits]
stream_buffer = "4MiB"
[[peer]]
name = "b"
key = "b"
allow_targets = ["127.0.0.1:9201", "127.0.0.1:9202"]
TOML
cat >"$BYST_NS_WORK/b.toml" <<TOML
[node]
name = "branch"
control_socket = "$BYST_NS_WORK/b.sock"
key_store = "$BYST_NS_WORK/b.keys"
keepalive_interval = "500ms"
dead_link_timeout = "${dead_link}s"
[limits]
stream_buffer = "4MiB"
[[peer]]
name = "h"
key = "h"
endpoint = "byst://10.200.0.1:7000"
uplinks = [
  { name = "fast", bind = "10.201.1.2", links = 2 },
  { name = "slow", interface = "u-slow", links = 2 },
]
[[forward]]
listen = "127.0.0.1:9101"
peer = "h"
target = "127.0.0.1:9201"
[[forward]]
listen = "127.0.0.1:9102"
peer = "h"
target = "127.0.0.1:9202"
TOML

netns_run h "$BYST_NS_WORK/iperf.log" timeout 300 iperf3 -s -B 127.0.0.1 -p 9201 >/dev/null
netns_run h "$BYST_NS_WORK/h.log" timeout 300 "$BYST" up -c "$BYST_NS_WORK/h.toml" >/dev/null
wait_for 10 test -S "$BYST_NS_WORK/h.sock" || fail "hub did not start"
netns_run b "$BYST_NS_WORK/b.log" timeout 300 "$BYST" up -c "$BYST_NS_WORK/b.toml" >/dev/null

status() { ip netns exec "$B" "$BYST" status --json --socket "$BYST_NS_WORK/b.sock"; }
# uplink_links NAME: the branch's links up through that uplink.
uplink_links() { status | jq --arg u "$1" '[.peers[0].sessions[].links[] | select(.uplink == $u)] | length'; }
# uplink_bytes NAME: bytes the branch sent on that uplink's links.
uplink_bytes() { status | jq --arg u "$1" '[.peers[0].sessions[].links[] | select(.uplink == $u) | .bytes_out] | add // 0'; }
both_up() { [ "$(uplink_links fast)" = 2 ] && [ "$(uplink_links slow)" = 2 ]; }
wait_for 15 both_up || fail "links did not come up over both uplinks (fast $(uplink_links fast), slow $(uplink_links slow))"
# The hub sees the links from each uplink's address.
hub_remotes=$(ip netns exec "$H" "$BYST" status --json --socket "$BYST_NS_WORK/h.sock" \
    | jq -r '[.peers[0].sessions[].links[].remote | split(":")[0]] | sort | join(" ")')
[ "$hub_remotes" = "10.201.1.2 10.201.1.2 10.201.2.2 10.201.2.2" ] || fail "hub sees links from: $hub_remotes"
echo "ok: 2 links up over each uplink; the hub sees them from 10.201.1.2 and 10.201.2.2"

# 1. One stream adds the two uplinks up.
sum=$((fast_mbit + slow_mbit))
fast_start=$(uplink_bytes fast) slow_start=$(uplink_bytes slow)
ip netns exec "$B" timeout 60 iperf3 -c 127.0.0.1 -p 9101 -t 8 -O 2 -J >"$BYST_NS_WORK/iperf-client.json" \
    || fail "iperf3 through the forward failed"
mbit=$(jq '.end.sum_received.bits_per_second / 1e6 | floor' "$BYST_NS_WORK/iperf-client.json")
ratio=$(awk -v m="$mbit" -v s="$sum" 'BEGIN { printf "%.2f", m / s }')
echo "one stream over both uplinks: $mbit Mbit/s = $ratio × ($fast_mbit + $slow_mbit Mbit/s);" \
    "sent $((($(uplink_bytes fast) - fast_start) >> 20)) MiB on fast, $((($(uplink_bytes slow) - slow_start) >> 20)) MiB on slow"
awk -v r="$ratio" 'BEGIN { exit !(r >= 0.85) }' || fail "one stream got $ratio × the uplinks' sum (want ≥ 0.85)"

# 2. Cut the slow uplink under a verified stream, then bring it back.
total=$((48 << 20)) rate=$((6 << 20))  # 8 s at 48 Mbit/s: more than the fast uplink alone would need to pace
netns_run h "$BYST_NS_WORK/sink.log" timeout 120 python3 Tests/E2E/lib/stream-check.py sink 9202 "$BYST_NS_WORK/progress" >/dev/null
sink_pid=$BYST_NS_LAST_PID
sink_listening() { ip netns exec "$H" ss -Hltn 'sport = :9202' | grep -q .; }
wait_for 5 sink_listening || fail "the sink did not listen"
netns_run b "$BYST_NS_WORK/send.log" timeout 120 python3 Tests/E2E/lib/stream-check.py send 9102 "$total" "$rate" >/dev/null
send_pid=$BYST_NS_LAST_PID
sleep 2
slow_before=$(uplink_bytes slow)
ip netns exec "$B" nft -f - <<'NFT'
table inet uplinkcut {
    chain out { type filter hook output priority 0; oifname "u-slow" drop; }
    chain in { type filter hook input priority 0; iifname "u-slow" drop; }
}
NFT
cut_at=$(awk 'END { print $1 }' "$BYST_NS_WORK/progress")
echo "cut the slow uplink at ${cut_at}s of the stream (slow uplink had carried $slow_before bytes)"
sleep 5
ip netns exec "$B" nft delete table inet uplinkcut
echo "slow uplink back"
wait "$send_pid" || fail "the sender failed: $(cat "$BYST_NS_WORK/send.log")"
wait "$sink_pid" || fail "the sink failed: $(cat "$BYST_NS_WORK/sink.log")"
sent=$(cat "$BYST_NS_WORK/send.log") received=$(cat "$BYST_NS_WORK/sink.log")
[ "${sent#sent=}" != "$sent" ] && [ "${sent#*sha=}" = "${received#*sha=}" ] && [ "${received%% *}" = "received=$total" ] \
    || fail "stream differs: $sent / $received"
echo "ok: $total bytes across the cut, SHA-256 equal"
# The longest time without progress after the cut: the stream moved to the fast uplink.
# (Gaps between two increases of the byte count that end after the cut; 0.1 s is the sampling.)
stall=$(awk -v c="$cut_at" '$2 > last { if (seen && $1 >= c && $1 - at > worst) worst = $1 - at; at = $1; seen = 1; last = $2 }
    END { printf "%.1f", worst }' "$BYST_NS_WORK/progress")
echo "longest stall after the cut: ${stall}s (limit $((2 * dead_link))s)"
awk -v s="$stall" -v l="$((2 * dead_link))" 'BEGIN { exit !(s <= l) }' || fail "the stream stalled ${stall}s after the cut"

# 3. Both uplinks carry traffic again.
wait_for 25 both_up || fail "the slow uplink's links did not come back (slow $(uplink_links slow))"
slow_back=$(uplink_bytes slow)
ip netns exec "$B" timeout 30 iperf3 -c 127.0.0.1 -p 9101 -t 3 >/dev/null || fail "iperf3 after the recovery failed"
slow_after=$(uplink_bytes slow)
[ "$slow_after" -gt $((slow_back + (1 << 20))) ] || fail "the slow uplink carried nothing after it came back ($slow_back → $slow_after bytes)"
echo "ok: both uplinks up again; the slow one carried $(((slow_after - slow_back) >> 20)) MiB of the next stream"
echo "PASS two-uplinks"
