#!/usr/bin/env bash
# Packet striping through the TUN (issue 24.2): one iperf3 TCP flow from site a's LAN to
# site h's LAN over 4 byst:// links, with `packet_striping` off (the flow keeps to one link)
# and on, (1) through a relay that caps every TCP connection at C, and (2) straight over the
# veth (equal uncapped links), reporting throughput and the inner flow's TCP retransmits. A
# benchmark, not a test.
#
#   bash scripts/bench-tun-striping.sh [seconds] [cap_mbit] [rounds]   (default 8 s, 40 Mbit/s, 3; as root)
#
# $BYST picks the binary (default: the release build, built here if missing). Traffic stays
# inside two namespaces made here (192.168.243.0/24, 10.1.0.0/24, 10.2.0.0/24, loopback);
# every process is stopped by PID and the namespaces removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-8} cap=${2:-40} rounds=${3:-3}
if [ -z "${BYST:-}" ]; then
    [ -x .build/release/byst ] || swift build -c release --product byst >/dev/null
    BYST=$PWD/.build/release/byst
fi
source deploy/netns/lib.sh
netns_require iperf3 python3
trap netns_cleanup EXIT INT TERM

netns_add a
netns_add h
netns_veth a 192.168.243.1/24 h 192.168.243.2/24
netns_lan a 10.1.0.1/24
netns_lan h 10.2.0.1/24
byst_keys h a
relay_port=7100
netns_run a "$BYST_NS_WORK/relay.log" python3 scripts/lib/rate-relay.py "$relay_port" 7000 "$cap" 192.168.243.2 >/dev/null

# run ENDPOINT STRIPING: both nodes up, one iperf3 flow; "Mbit/s retransmits rtt_ms" in $result.
run() {
    local endpoint=$1 striping=$2 h_pid a_pid
    cat >"$BYST_NS_WORK/h.toml" <<TOML
[node]
name = "hub"
listen = ["192.168.243.2:7000"]
control_socket = "$BYST_NS_WORK/h.sock"
key_store = "$BYST_NS_WORK/h.keys"
[tun]
name = "byst0"
address = ["10.0.0.1/24"]
[[peer]]
name = "a"
key = "a"
allowed_ips = ["10.0.0.2/32", "10.1.0.0/24"]
packet_striping = $striping
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
endpoint = "$endpoint"
links = 4
allowed_ips = ["10.0.0.1/32", "10.2.0.0/24"]
packet_striping = $striping
TOML
    netns_run h "$BYST_NS_WORK/h.log" "$BYST" up -c "$BYST_NS_WORK/h.toml" --log-level warning >/dev/null; h_pid=$BYST_NS_LAST_PID
    netns_run a "$BYST_NS_WORK/a.log" "$BYST" up -c "$BYST_NS_WORK/a.toml" --log-level warning >/dev/null; a_pid=$BYST_NS_LAST_PID
    four() { [ "$("$BYST" status --json --socket "$BYST_NS_WORK/a.sock" 2>/dev/null | grep -c '"remote"')" = 4 ]; }
    wait_for 15 four || { echo "bench: no 4 links" >&2; tail -5 "$BYST_NS_WORK"/*.log >&2; exit 1; }
    sleep 1
    netns_run h "$BYST_NS_WORK/iperf-s.log" iperf3 -s -1 -B 10.2.0.1 >/dev/null
    sleep 0.5
    ip netns exec "$(ns a)" timeout $((seconds + 20)) iperf3 -c 10.2.0.1 -B 10.1.0.1 -t "$seconds" -J >"$BYST_NS_WORK/iperf.json" || true
    result=$(python3 -c "import json; e = json.load(open('$BYST_NS_WORK/iperf.json'))['end']
print('%.1f %d %.1f' % (e['sum_received']['bits_per_second'] / 1e6, e['sum_sent'].get('retransmits', 0),
                       e['streams'][0]['sender'].get('mean_rtt', 0) / 1000))" 2>/dev/null) ||
        { echo "bench: iperf3 gave no result: $(head -c 300 "$BYST_NS_WORK/iperf.json")" >&2; exit 1; }
    # The receiver's reordering: packets held, late, numbers given up (0 without striping).
    reorder=$("$BYST" status --json --socket "$BYST_NS_WORK/h.sock" | python3 -c "import json, sys
c = json.load(sys.stdin)['tun']['counters']
print('held %d, late %d, gaps given up %d' % (c['packets_reordered'], c['packets_late'], c['sequence_gaps_skipped']))")
    kill "$a_pid" "$h_pid"; wait "$a_pid" "$h_pid" 2>/dev/null || true
}

declare -A rates retrans
cases=("capped off" "capped on" "open off" "open on")
for round in $(seq 1 "$rounds"); do
    for case in "${cases[@]}"; do
        read -r path striping <<<"$case"
        endpoint="byst://192.168.243.2:7000"
        [ "$path" = capped ] && endpoint="byst://127.0.0.1:$relay_port"
        [ "$striping" = on ] && flag=true || flag=false
        run "$endpoint" "$flag"
        read -r rate retransmits rtt <<<"$result"
        rates[$case]+="$rate " retrans[$case]+="$retransmits "
        echo "round $round, $case: $rate Mbit/s, $retransmits retransmits, inner mean RTT $rtt ms; hub: $reorder" >&2
    done
done
median() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

echo "iperf3, one TCP flow through the TUN over 4 byst:// links, $seconds s each, $rounds rounds (median); $(basename "$(dirname "$(dirname "$BYST")")")/$(basename "$(dirname "$BYST")") build; CPU: $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), $(nproc) cores"
echo
echo "| path | packet_striping | rounds (Mbit/s) | median | vs | retransmits (median) |"
echo "|---|---|---|---:|---:|---:|"
base_open=$(median "${rates[open off]}")
for case in "${cases[@]}"; do
    read -r path striping <<<"$case"
    m=$(median "${rates[$case]}")
    if [ "$path" = capped ]; then
        label="relay capped at C = $cap Mbit/s per connection" vs=$(awk -v a="$m" -v b="$cap" 'BEGIN { printf "%.2f × C", a / b }')
    else
        label="uncapped (veth)" vs=$(awk -v a="$m" -v b="$base_open" 'BEGIN { printf "%.2f × off", a / b }')
    fi
    echo "| $label | $striping | ${rates[$case]}| $m | $vs | $(median "${retrans[$case]}") |"
done
