#!/usr/bin/env bash
# Flood resistance (docs/RELIABILITY.md, "Flood resistance"):
#  1. while a flooder opens ≥ 5,000 bogus connections a second for 20 s against the hub's link
#     listener from its address (bogus message 1s with a random or the real key id, junk bytes,
#     junk HTTP heads, silent connections), branch b, started meanwhile, brings its 4 links up
#     within 2 s, and branch a's iperf3 through the tunnel keeps ≥ 50 % of its unloaded throughput;
#  2. then junk from 64 addresses (so much of it passes the per-source rate) against the hub's
#     HTTP listener for 8 s: slowloris, oversized heads, garbage and silent connections fill the
#     pending-handshake table, while branch a keeps its links and pings through the tunnel pass;
#  and the hub's memory stays bounded (peak RSS printed).
#
#   ┌─ ns f (flooder) ────┐          ┌──────── ns h (hub) ─────────────┐          ┌─ ns a (branch a) ────┐
#   │ byst-bench flood    │          │ byst up: listen :7000,          │          │ byst up, 4 links     │
#   │ v-f-h 192.168.242.2 ┼── veth ──┼ v-h-f 192.168.242.1  http :8080 │          │ lan0 10.1.0.1/24     │
#   │  + .100 … .163      │          │ v-h-a 192.168.241.2 ────────────┼── veth ──┼ v-a-h 192.168.241.1  │
#   └─────────────────────┘          │ lan0 10.2.0.1/24, byst0 10.0.0.1│          │ byst0 10.0.0.2       │
#                                    │ v-h-b 192.168.243.2 ──┐         │          └──────────────────────┘
#                                    └───────────────────────┼─────────┘          ┌─ ns b (branch b) ────┐
#                                                            └───── veth ─────────┼ v-b-h 192.168.243.1  │
#                                                                                 │ byst up, 4 links     │
#                                                                                 └──────────────────────┘
#
# Everything runs inside namespaces created here; the floods are bounded (rate × seconds, a cap
# on open connections, each reset within its hold) and every process is stopped by PID on exit.
# Knobs: FLOOD_RATE (6000), FLOOD_SECONDS (20), FLOOD_THREADS (1), FLOOD_CONNECTIONS (1024),
# FLOOD_NICE (10: the flooders' niceness, see phase 1), FLOOD_HUB_LIMITS (lines for the hub's
# [limits], e.g. $'handshake_rate = 0\naccept_rate = 0' to see the flood reach the handshake code).
# The flooder is `byst-bench flood` (Benchmarks/BenchTool, not shipped): BYST_BENCH_BINARY, else
# the byst-bench next to the byst under test (`swift build` builds both).
set -euo pipefail
cd "$(dirname "$0")/../.."
BYST=${BYST_BINARY:-$PWD/.build/debug/byst}
BYST_BENCH=${BYST_BENCH_BINARY:-$(dirname "$BYST")/byst-bench}
source deploy/netns/lib.sh
netns_require iperf3 ping curl "$BYST" "$BYST_BENCH"
trap netns_cleanup EXIT INT TERM
fail() { echo "FAIL: $*" >&2; for log in "$BYST_NS_WORK"/*.log; do echo "--- $log" >&2; tail -15 "$log" >&2; done; exit 1; }

rate=${FLOOD_RATE:-6000} seconds=${FLOOD_SECONDS:-20} threads=${FLOOD_THREADS:-1} open=${FLOOD_CONNECTIONS:-1024}
niceness=${FLOOD_NICE:-10}

netns_add a
netns_add b
netns_add h
netns_add f
netns_veth a 192.168.241.1/24 h 192.168.241.2/24
netns_veth f 192.168.242.2/24 h 192.168.242.1/24
netns_veth b 192.168.243.1/24 h 192.168.243.2/24
netns_lan a 10.1.0.1/24
netns_lan h 10.2.0.1/24
# The flooder resets its connections (no TIME_WAIT), but give it the whole port range anyway.
ip netns exec "$(ns f)" sysctl -qw net.ipv4.ip_local_port_range="1024 65535"
sources=()
for i in $(seq 100 163); do ip -n "$(ns f)" addr add "192.168.242.$i/24" dev v-f-h; sources+=(--source "192.168.242.$i"); done
byst_keys h a
byst_keys h b
key_id=$("$BYST" key show a --store "$BYST_NS_WORK/h.keys" | awk '/key id/ { print $3 }')

cat >"$BYST_NS_WORK/h.toml" <<TOML
[node]
name = "hub"
listen = ["0.0.0.0:7000"]
http_listen = ["0.0.0.0:8080"]
control_socket = "$BYST_NS_WORK/h.sock"
key_store = "$BYST_NS_WORK/h.keys"
metrics_listen = ["127.0.0.1:9480"]
[limits]
${FLOOD_HUB_LIMITS:-}
[tun]
name = "byst0"
address = ["10.0.0.1/24"]
[[peer]]
name = "a"
key = "a"
allowed_ips = ["10.0.0.2/32", "10.1.0.0/24"]
[[peer]]
name = "b"
key = "b"
TOML
cat >"$BYST_NS_WORK/a.toml" <<TOML
[node]
name = "branch-a"
control_socket = "$BYST_NS_WORK/a.sock"
key_store = "$BYST_NS_WORK/a.keys"
[tun]
name = "byst0"
address = ["10.0.0.2/24"]
[[peer]]
name = "hub"
key = "h"
endpoint = "byst://192.168.241.2:7000"
links = 4
allowed_ips = ["10.0.0.1/32", "10.2.0.0/24"]
TOML
cat >"$BYST_NS_WORK/b.toml" <<TOML
[node]
name = "branch-b"
control_socket = "$BYST_NS_WORK/b.sock"
key_store = "$BYST_NS_WORK/b.keys"
[[peer]]
name = "hub"
key = "h"
endpoint = "byst://192.168.243.2:7000"
links = 4
TOML

links() { "$BYST" status --json --socket "$BYST_NS_WORK/$1.sock" 2>/dev/null | grep -c '"remote"' || true; }
four_links() { [ "$(links "$1")" = 4 ]; }
now() { date +%s.%N; }
# Starts branch b and sets $link_time: seconds until its 4 links are up (polled every 20 ms, at
# most 10 s), process start included. Not called as $(…): the PID must reach the cleanup list.
time_links() {
    local t0 t1
    t0=$(now)
    netns_run b "$BYST_NS_WORK/b-$1.log" "$BYST" up -c "$BYST_NS_WORK/b.toml" >/dev/null
    branch_b=$BYST_NS_LAST_PID
    for _ in $(seq 1 500); do four_links b && break; sleep 0.02; done
    t1=$(now)
    four_links b || fail "branch b did not get 4 links ($1)"
    link_time=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
}
stop_branch_b() {
    kill "$branch_b"
    for _ in $(seq 1 50); do kill -0 "$branch_b" 2>/dev/null || break; sleep 0.1; done
    wait "$branch_b" 2>/dev/null || true
}
# iperf3 -t 5 from branch a's LAN to the hub's LAN through the tunnel; prints bit/s.
transfer() {
    ip netns exec "$(ns a)" iperf3 -c 10.2.0.1 -B 10.1.0.1 -t 5 -J >"$BYST_NS_WORK/iperf-$1.json" || fail "iperf3 ($1) failed"
    awk -F'[:,]' '/"sum_received"/ { f = 1 } f && /"bits_per_second"/ { printf "%.0f", $2; exit }' "$BYST_NS_WORK/iperf-$1.json"
}
# The per-second rates of that transfer, in Mbit/s.
seconds_of() {
    awk -F'[:,]' '/"intervals"/ { i = 1 } /"end":[ \t]*\{/ { i = 0 } i && /"sum"/ { s = 1 } s && /"bits_per_second"/ { printf "%.0f ", $2 / 1e6; s = 0 }' \
        "$BYST_NS_WORK/iperf-$1.json"
}
metric() { # NAME{LABELS} from the hub's /metrics (empty if it does not answer)
    { ip netns exec "$(ns h)" curl -s --max-time 5 http://127.0.0.1:9480/metrics || true; } | awk -v m="$1" '$1 == m { print $2; exit }'
}
reconnects() { "$BYST" status --json --socket "$BYST_NS_WORK/a.sock" | awk -F'[:,]' '/"reconnects"/ { gsub(/ /, "", $2); print $2; exit }'; }

netns_run h "$BYST_NS_WORK/h.log" "$BYST" up -c "$BYST_NS_WORK/h.toml" >/dev/null
hub=$BYST_NS_LAST_PID
hub_up() { "$BYST" status --socket "$BYST_NS_WORK/h.sock"; }
wait_for 10 hub_up || fail "the hub did not start"
netns_run a "$BYST_NS_WORK/a.log" "$BYST" up -c "$BYST_NS_WORK/a.toml" >/dev/null
wait_for 10 four_links a || fail "branch a did not get 4 links"
netns_run h "$BYST_NS_WORK/iperf-s.log" iperf3 -s -B 10.2.0.1 >/dev/null
time_links quiet
quiet_links=$link_time
stop_branch_b
quiet_bps=$(transfer quiet)
[ "${quiet_bps:-0}" -gt 1000000 ] || fail "unloaded iperf3 moved only ${quiet_bps:-0} bit/s"
echo "unloaded: branch b's 4 links in ${quiet_links} s; branch a's iperf3 $((quiet_bps / 1000000)) Mbit/s (per second: $(seconds_of quiet))"

# Phase 1, from the flooder's own namespace and address. It runs niced: on a real network the
# attacker's CPU is not the node's, while here all share two cores; the rate it reaches is checked.
netns_run f "$BYST_NS_WORK/flood.log" nice -n "$niceness" "$BYST_BENCH" flood --target 192.168.242.1:7000 --rate "$rate" --seconds "$seconds" \
    --connections "$open" --threads "$threads" --key-id "$key_id" --json >/dev/null
flooder=$BYST_NS_LAST_PID
sleep 2
time_links flood
flood_links=$link_time
flood_bps=$(transfer flood)
echo "during the flood: branch b's 4 links in ${flood_links} s; branch a's iperf3 $((flood_bps / 1000000)) Mbit/s (per second: $(seconds_of flood))"
wait "$flooder" || fail "the flooder failed"
kill -0 "$hub" 2>/dev/null || fail "the hub died"
flood=$(cat "$BYST_NS_WORK/flood.log")
echo "flooder: $flood"
echo "hub: handshake failures rate_limited=$(metric 'byst_handshake_failures_total{reason="rate_limited"}')" \
    "unknown_key=$(metric 'byst_handshake_failures_total{reason="unknown_key"}')" \
    "authentication_failed=$(metric 'byst_handshake_failures_total{reason="authentication_failed"}')" \
    "malformed=$(metric 'byst_handshake_failures_total{reason="malformed"}') timeout=$(metric 'byst_handshake_failures_total{reason="timeout"}')" \
    "overloaded=$(metric 'byst_handshake_failures_total{reason="overloaded"}'); log lines: $(wc -l <"$BYST_NS_WORK/h.log")"

# Phase 2: junk from 64 addresses against the HTTP listener, held up to 8 s (silent ones and
# slowloris heads wait for the hub's deadline); pings through the tunnel meanwhile.
before=$(reconnects)
netns_run f "$BYST_NS_WORK/junk.log" nice -n "$niceness" "$BYST_BENCH" flood --target 192.168.242.1:8080 --rate 3000 --seconds 8 \
    --connections 4096 --hold 8s "${sources[@]}" --json >/dev/null
junker=$BYST_NS_LAST_PID
sleep 1
ip netns exec "$(ns a)" ping -c 30 -i 0.2 -W 1 -I 10.1.0.1 10.2.0.1 >"$BYST_NS_WORK/ping.txt" &
pinger=$!
sleep 4
pending=$(metric 'byst_pending_handshakes')
wait "$pinger" || true
wait "$junker" || fail "the junk flooder failed"
kill -0 "$hub" 2>/dev/null || fail "the hub died"
received=$(awk '/packets transmitted/ { print $4 }' "$BYST_NS_WORK/ping.txt")
after=$(reconnects)
echo "junk flood: $(cat "$BYST_NS_WORK/junk.log")"
echo "junk flood: pings ${received:-0}/30 through the tunnel, pending handshakes ${pending:-?} (cap 512), branch a reconnects ${before:-?} → ${after:-?}," \
    "refused as overloaded or evicted $(metric 'byst_handshake_failures_total{reason="overloaded"}'), HTTP heads over the cap $(metric 'byst_limit_hits_total{limit="http_max_head"}')"

achieved=$(echo "$flood" | sed -nE 's/.*"rate":([0-9]+).*/\1/p')
hwm=$(awk '/VmHWM/ { print $2 }' /proc/"$hub"/status)
rss=$(awk '/VmRSS/ { print $2 }' /proc/"$hub"/status)
ratio=$(awk -v a="$flood_bps" -v b="$quiet_bps" 'BEGIN { printf "%.2f", a / b }')
echo "figures: flood ${achieved:-?} connections/s for ${seconds} s (flooder nice ${niceness}); links in ${flood_links} s (unloaded ${quiet_links} s);" \
    "iperf3 ${ratio} of unloaded ($((flood_bps / 1000000)) / $((quiet_bps / 1000000)) Mbit/s); hub peak RSS $((hwm / 1024)) MiB (now $((rss / 1024)) MiB)"

[ "${achieved:-0}" -ge 5000 ] || fail "the flooder reached only ${achieved:-0} connections/s (need 5000)"
awk -v t="$flood_links" 'BEGIN { exit !(t <= 2.0) }' || fail "links took ${flood_links} s during the flood (limit 2 s)"
awk -v r="$ratio" 'BEGIN { exit !(r >= 0.5) }' || fail "throughput during the flood is ${ratio} of unloaded (need 0.5)"
[ "${received:-0}" -ge 27 ] || fail "only ${received:-0} of 30 pings passed during the junk flood"
[ "${after:-x}" = "${before:-y}" ] || fail "branch a reconnected during the junk flood"
four_links a || fail "branch a lost links"
[ "$hwm" -lt $((512 * 1024)) ] || fail "hub peak RSS $((hwm / 1024)) MiB"
echo "ok: flood resistance"
