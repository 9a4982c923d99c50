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
swift build -c release --product byst >/dev/null
byst=$PWD/.build/release/byst

work=$(mktemp -d /tmp/byst-bench.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

port_base=$((20000 + RANDOM % 20000))
iperf_port=$port_base hub_port=$((port_base + 1))
"$byst" key gen branch --store "$work/hub.keys" >/dev/null
"$byst" key export branch --store "$work/hub.keys" | "$byst" key import hub --store "$work/branch.keys" >/dev/null

cat > "$work/hub.toml" <<TOML
[node]
name = "hub"
listen = ["127.0.0.1:$hub_port"]
control_socket = "$work/hub.sock"
key_store = "$work/hub.keys"
[[peer]]
name = "branch"
key = "branch"
allow_targets = ["127.0.0.1:$iperf_port"]
TOML

iperf3 -s -B 127.0.0.1 -p "$iperf_port" >/dev/null 2>&1 & pids+=($!)
"$byst" up -c "$work/hub.toml" --log-level warning & pids+=($!)
sleep 1

gbits() {  # gbits <port>: iperf3 client receiver throughput in Gbit/s
    iperf3 -c 127.0.0.1 -p "$1" -t "$seconds" -J | awk -F'[:,]' '/"sum_received"/ { f = 1 } f && /"bits_per_second"/ { printf "%.2f", $2 / 1e9; exit }'
}

plain=$(gbits "$iperf_port")
declare -A through
for links in 1 4; do
    forward_port=$((port_base + 10 + links))
    cat > "$work/branch-$links.toml" <<TOML
[node]
name = "branch-$links"
control_socket = "$work/branch-$links.sock"
key_store = "$work/branch.keys"
[[peer]]
name = "hub"
key = "hub"
endpoint = "byst://127.0.0.1:$hub_port"
links = $links
[[forward]]
listen = "127.0.0.1:$forward_port"
peer = "hub"
target = "127.0.0.1:$iperf_port"
TOML
    "$byst" up -c "$work/branch-$links.toml" --log-level warning & branch=$!
    pids+=($branch)
    sleep 1.5
    through[$links]=$(gbits "$forward_port")
    kill "$branch"; wait "$branch" 2>/dev/null || true
done

echo "iperf3, one TCP stream, $seconds s each, loopback; CPU: $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), $(nproc) cores"
echo
echo "| path | throughput | share of plain loopback TCP |"
echo "|---|---:|---:|"
echo "| plain loopback TCP | $plain Gbit/s | 1.00 |"
for links in 1 4; do
    echo "| BYST forward, $links link(s) | ${through[$links]} Gbit/s | $(awk -v a="${through[$links]}" -v b="$plain" 'BEGIN { printf "%.2f", a / b }') |"
done
