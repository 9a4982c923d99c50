#!/usr/bin/env bash
# Striping one stream over several links (issue 24): one forwarded iperf3 stream (release
# build) through a hub reached via a relay that caps every TCP connection at C, with
# `links = 1` and `links = 4`; then the same forward without the relay (uncapped, equal
# links), 1 link against 4, for the no-regression check. A benchmark, not a test.
#
#   bash scripts/bench-striping.sh [seconds] [cap_mbit] [rounds]   (default 5 s, 40 Mbit/s, 3 rounds; as root)
#
# Runs in a network namespace of its own (created here, removed on exit); loopback only.
# Every process (nodes, relay, iperf3 server) is stopped by PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-5} cap=${2:-40} rounds=${3:-3}
command -v iperf3 >/dev/null || { echo "bench-striping: iperf3 missing (apt-get install iperf3)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "bench-striping: python3 missing" >&2; exit 1; }
source scripts/lib/bench.sh
bench_in_netns stripe "$0" "$@"
bench_start striping

port_base=$(loopback_port_base 20)
iperf_port=$port_base hub_port=$((port_base + 1)) relay_port=$((port_base + 2))
iperf3 -s -B 127.0.0.1 -p "$iperf_port" >/dev/null 2>&1 & pids+=($!)
sleep 0.5  # the server listens before the first client connects
python3 scripts/lib/rate-relay.py "$relay_port" "$hub_port" "$cap" & pids+=($!)
bench_hub "listen = [\"127.0.0.1:$hub_port\"]" "$iperf_port"

capped1=() capped4=() open1=() open4=()
for round in $(seq 1 "$rounds"); do
    bench_forward "$relay_port" 1 mbit; capped1+=("$result")
    bench_forward "$relay_port" 4 mbit; capped4+=("$result")
    bench_forward "$hub_port" 1 mbit; open1+=("$result")
    bench_forward "$hub_port" 4 mbit; open4+=("$result")
done
m_c1=$(bench_median "${capped1[*]}") m_c4=$(bench_median "${capped4[*]}")
m_o1=$(bench_median "${open1[*]}") m_o4=$(bench_median "${open4[*]}")

echo "iperf3, one TCP stream through a forward, $seconds s each, $rounds rounds (median); CPU: $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), $(nproc) cores"
echo
echo "| path | rounds (Mbit/s) | median | vs |"
echo "|---|---|---:|---:|"
echo "| relay capped at C = $cap Mbit/s per connection, 1 link | ${capped1[*]} | $m_c1 | $(bench_ratio "$m_c1" "$cap") × C |"
echo "| relay capped at C = $cap Mbit/s per connection, 4 links | ${capped4[*]} | $m_c4 | $(bench_ratio "$m_c4" "$cap") × C |"
echo "| uncapped, 1 link (pinned) | ${open1[*]} | $m_o1 | 1.00 |"
echo "| uncapped, 4 links | ${open4[*]} | $m_o4 | $(bench_ratio "$m_o4" "$m_o1") × 1 link |"
