#!/usr/bin/env bash
# One forwarded TCP stream through BYST (release build) over 1 and 4 links on loopback,
# next to plain loopback TCP measured in the same run, with iperf3. A benchmark, not a test.
#
#   bash scripts/bench-forward.sh [seconds]     (default 5 s per measurement)
#
# Loopback only; every process is started here and stopped by PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-5}
command -v iperf3 >/dev/null || { echo "bench-forward: iperf3 missing (apt-get install iperf3)" >&2; exit 1; }
source scripts/lib/bench.sh
bench_start forward

port_base=$(loopback_port_base 20)
iperf_port=$port_base hub_port=$((port_base + 1))
iperf3 -s -B 127.0.0.1 -p "$iperf_port" >/dev/null 2>&1 & pids+=($!)
bench_hub "listen = [\"127.0.0.1:$hub_port\"]" "$iperf_port"

gbits() {  # gbits <port>: iperf3 client receiver throughput in Gbit/s
    iperf3 -c 127.0.0.1 -p "$1" -t "$seconds" -J | awk -F'[:,]' '/"sum_received"/ { f = 1 } f && /"bits_per_second"/ { printf "%.2f", $2 / 1e9; exit }'
}

plain=$(gbits "$iperf_port")
declare -A through
for links in 1 4; do
    forward_port=$((port_base + 10 + links))
    bench_branch "byst://127.0.0.1:$hub_port" "$forward_port" "$iperf_port" "" "links = $links"
    sleep 0.5
    through[$links]=$(gbits "$forward_port")
    bench_branch_stop
done

echo "iperf3, one TCP stream, $seconds s each, loopback; CPU: $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), $(nproc) cores"
echo
echo "| path | throughput | share of plain loopback TCP |"
echo "|---|---:|---:|"
echo "| plain loopback TCP | $plain Gbit/s | 1.00 |"
for links in 1 4; do
    echo "| BYST forward, $links link(s) | ${through[$links]} Gbit/s | $(awk -v a="${through[$links]}" -v b="$plain" 'BEGIN { printf "%.2f", a / b }') |"
done
