#!/usr/bin/env bash
# One forwarded TCP stream through BYST (release build) on loopback, next to plain loopback
# TCP measured in the same run, with iperf3: over 1 and 4 links between nodes without a TUN,
# then over 1 link between nodes that also run a TUN (their links belong to the data planes,
# so stream frames cross between the event loop and a plane), alternating with the same
# forward without a TUN. A benchmark, not a test.
#
#   bash scripts/bench-forward.sh [seconds] [rounds]   (default 5 s per measurement, 3 rounds; as root)
#
# Runs in a network namespace of its own (created here, removed on exit): its loopback and
# the nodes' TUNs are the only interfaces involved. Every process is stopped by PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-5} rounds=${2:-3}
command -v iperf3 >/dev/null || { echo "bench-forward: iperf3 missing (apt-get install iperf3)" >&2; exit 1; }
source scripts/lib/bench.sh
bench_in_netns forward "$0" "$@"
bench_start forward

port_base=$(loopback_port_base 20)
iperf_port=$port_base hub_port=$((port_base + 1))
iperf3 -s -B 127.0.0.1 -p "$iperf_port" >/dev/null 2>&1 & pids+=($!)
sleep 0.5  # the server listens before the first client connects

# hub_start [SECTIONS] / hub_stop: the hub, by PID.
hub_start() { bench_hub "listen = [\"127.0.0.1:$hub_port\"]" "$iperf_port" "${1:-}"; hub_pid=${pids[-1]}; }
hub_stop() { kill "$hub_pid"; wait "$hub_pid" 2>/dev/null || true; }

plain=$(bench_iperf "$iperf_port" "$seconds" gbit)
hub_start
declare -A through
for links in 1 4; do bench_forward "$hub_port" "$links" gbit; through[$links]=$result; done

# The same 1-link forward, alternately between nodes without and with a TUN.
tun_hub="[tun]
name = \"bystfh0\"
address = [\"10.97.0.1/32\"]"
tun_branch="[tun]
name = \"bystfb0\"
address = [\"10.97.0.2/32\"]"
without=() with=()
for round in $(seq 1 "$rounds"); do
    hub_stop
    hub_start
    bench_forward "$hub_port" 1 gbit
    without+=("$result")
    hub_stop
    hub_start "$tun_hub"
    bench_forward "$hub_port" 1 gbit "$tun_branch"
    with+=("$result")
done
median_without=$(bench_median "${without[*]}") median_with=$(bench_median "${with[*]}")

echo "iperf3, one TCP stream, $seconds s each, loopback; CPU: $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), $(nproc) cores"
echo
echo "| path | throughput | share of plain loopback TCP |"
echo "|---|---:|---:|"
echo "| plain loopback TCP | $plain Gbit/s | 1.00 |"
for links in 1 4; do
    echo "| BYST forward, $links link(s) | ${through[$links]} Gbit/s | $(bench_ratio "${through[$links]}" "$plain") |"
done
echo
echo "1 link, $rounds alternating rounds: nodes without a TUN ${without[*]} Gbit/s (median $median_without);"
echo "nodes with a TUN (links on the data planes) ${with[*]} Gbit/s (median $median_with): $(bench_ratio "$median_with" "$median_without")× "
