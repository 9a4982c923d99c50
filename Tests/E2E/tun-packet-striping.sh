#!/usr/bin/env bash
# Packet striping (`[[peer]] packet_striping`, PROTOCOL.md §5.4): two sites over 4 byst://
# links with packet_striping on both sides. One iperf3 TCP flow through the TUN is spread
# over all 4 links (each carries at least a sixth of the bytes; without striping the flow
# would keep to one), its packets are numbered (`packets_striped`) and put back in order at
# the receiver; pings pass both ways; each side holds the peer's 4 links on one plane; a link
# cut mid-flow costs the flow nothing but what the link had queued, and comes back.
#
#   ┌──────── ns a (branch) ────────┐            ┌──────── ns h (hub) ─────────┐
#   │ lan0 10.1.0.1/24              │            │ lan0 10.2.0.1/24            │
#   │ byst0 10.0.0.2/24             │            │ byst0 10.0.0.1/24           │
#   │ v-a-h 192.168.242.1/24 ───────┼── veth ────┼─ v-h-a 192.168.242.2/24     │
#   └───────────────────────────────┘  4 links   └─────────────────────────────┘
set -euo pipefail
cd "$(dirname "$0")/../.."
BYST=${BYST_BINARY:-$PWD/.build/debug/byst}
source deploy/netns/lib.sh
netns_require ping iperf3 python3
trap netns_cleanup EXIT INT TERM
fail() { echo "FAIL: $*" >&2; for log in "$BYST_NS_WORK"/*.log; do echo "--- $log" >&2; tail -15 "$log" >&2; done; exit 1; }

netns_add a
netns_add h
netns_veth a 192.168.242.1/24 h 192.168.242.2/24
netns_lan a 10.1.0.1/24
netns_lan h 10.2.0.1/24
byst_keys h a

cat >"$BYST_NS_WORK/h.toml" <<TOML
[node]
name = "hub"
listen = ["192.168.242.2:7000"]
control_socket = "$BYST_NS_WORK/h.sock"
key_store = "$BYST_NS_WORK/h.keys"
[tun]
name = "byst0"
address = ["10.0.0.1/24"]
queues = 2
[[peer]]
name = "a"
key = "a"
allowed_ips = ["10.0.0.2/32", "10.1.0.0/24"]
packet_striping = true
TOML
cat >"$BYST_NS_WORK/a.toml" <<TOML
[node]
name = "branch-a"
control_socket = "$BYST_NS_WORK/a.sock"
key_store = "$BYST_NS_WORK/a.keys"
[tun]
name = "byst0"
address = ["10.0.0.2/24"]
queues = 2
[[peer]]
name = "hub"
key = "h"
endpoint = "byst://192.168.242.2:7000"
links = 4
allowed_ips = ["10.0.0.1/32", "10.2.0.0/24"]
packet_striping = true
TOML

netns_run h "$BYST_NS_WORK/h.log" "$BYST" up -c "$BYST_NS_WORK/h.toml" >/dev/null
netns_run a "$BYST_NS_WORK/a.log" "$BYST" up -c "$BYST_NS_WORK/a.toml" >/dev/null
status() { "$BYST" status --json --socket "$BYST_NS_WORK/$1.sock"; }
# status_py SITE EXPRESSION: EXPRESSION over the status JSON `s` and its links `links`.
status_py() {
    status "$1" | python3 -c "import json, sys
s = json.load(sys.stdin)
links = [l for p in s['peers'] for x in p['sessions'] for l in x['links']]
print($2)"
}
four_sequenced() { [ "$(status_py a "sum(1 for l in links if l.get('sequenced_packets'))")" = 4 ] &&
                   [ "$(status_py a "s['tun']['data_plane_links']")" = 4 ]; }
wait_for 10 four_sequenced || fail "the branch did not get 4 plane links with sequenced packets: $(status a)"
for site in a h; do
    planes=$(status_py "$site" "s['tun']['plane_links']")
    [ "$planes" = "[4, 0]" ] || [ "$planes" = "[0, 4]" ] || fail "$site: the peer's links are spread over planes as $planes, not on one"
done
echo "ok: 4 links negotiated sequenced packets, all on one plane at each side"

ip netns exec "$(ns a)" ping -c 5 -i 0.2 -W 2 -I 10.1.0.1 10.2.0.1 >/dev/null || fail "a→h ping"
ip netns exec "$(ns h)" ping -c 5 -i 0.2 -W 2 -I 10.2.0.1 10.1.0.1 >/dev/null || fail "h→a ping"
echo "ok: pings both ways"

before=$(status_py a "' '.join(str(l['bytes_out']) for l in sorted(links, key=lambda l: l['id']))")
netns_run h "$BYST_NS_WORK/iperf-s.log" iperf3 -s -1 -B 10.2.0.1 >/dev/null
sleep 0.5
ip netns exec "$(ns a)" timeout 30 iperf3 -c 10.2.0.1 -B 10.1.0.1 -t 4 -J >"$BYST_NS_WORK/iperf.json" || fail "iperf3 through the tunnel"
after=$(status_py a "' '.join(str(l['bytes_out']) for l in sorted(links, key=lambda l: l['id']))")
read -r bps retransmits < <(python3 -c "import json; j = json.load(open('$BYST_NS_WORK/iperf.json'))['end']
print(int(j['sum_received']['bits_per_second']), j['sum_sent'].get('retransmits', 0))")
shares=$(python3 -c "b = [int(x) for x in '$before'.split()]; a = [int(x) for x in '$after'.split()]
d = [y - x for x, y in zip(b, a)]; t = sum(d) or 1
print(' '.join('%.2f' % (x / t) for x in d))")
echo "iperf3: one flow, $((bps / 1000000)) Mbit/s, $retransmits retransmits; shares of the bytes per link: $shares"
python3 -c "import sys; s = [float(x) for x in '$shares'.split()]; sys.exit(0 if len(s) == 4 and min(s) > 1 / 6 else 1)" ||
    fail "the flow was not spread over the 4 links: shares $shares"
striped=$(status_py a "s['tun']['counters']['packets_striped']")
reordered=$(status_py h "s['tun']['counters']['packets_reordered']")
skipped=$(status_py h "s['tun']['counters']['sequence_gaps_skipped']")
late=$(status_py h "s['tun']['counters']['packets_late']")
overflows=$(status_py h "s['tun']['counters']['reorder_overflows']")
[ "$striped" -gt 1000 ] || fail "only $striped packets striped"
echo "ok: one TCP flow spread over 4 links ($striped packets striped; the hub held $reordered for order, gave up $skipped numbers ($overflows times full), saw $late late)"

# A link cut mid-flow: what it had queued is lost (its numbers are given up after the hold
# time), the flow goes on over the other 3 and the 4th comes back.
netns_run h "$BYST_NS_WORK/iperf-s2.log" iperf3 -s -1 -B 10.2.0.1 >/dev/null
sleep 0.5
ip netns exec "$(ns a)" timeout 30 iperf3 -c 10.2.0.1 -B 10.1.0.1 -t 4 -J >"$BYST_NS_WORK/iperf2.json" &
client=$!
sleep 1.5
port=$(ip netns exec "$(ns a)" ss -tnH state established dst 192.168.242.2:7000 | awk 'NR == 1 { split($3, a, ":"); print a[2] }')
[ -n "$port" ] || fail "no link socket found to cut"
ip netns exec "$(ns a)" ss -K dst 192.168.242.2 sport = :"$port" >/dev/null 2>&1 || true
wait "$client" || fail "iperf3 did not complete after a link cut"
bps=$(python3 -c "import json; print(int(json.load(open('$BYST_NS_WORK/iperf2.json'))['end']['sum_received']['bits_per_second']))")
[ "$bps" -gt 1000000 ] || fail "iperf3 moved only $bps bit/s with a link cut"
wait_for 10 four_sequenced || fail "the cut link did not come back with sequenced packets"
echo "ok: a link cut mid-flow (local port $port): $((bps / 1000000)) Mbit/s, $(status_py h "s['tun']['counters']['sequence_gaps_skipped']") numbers given up in all; the link came back"
