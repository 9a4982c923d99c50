#!/usr/bin/env bash
# Heap allocations per packet on BYST's TUN data path, in the steady state (release build):
# two nodes in the namespaces of scripts/bench/harness (A dials B, 1 link), iperf3 TCP A→B,
# then a 100 Hz ping; uprobes on libc's malloc, calloc, realloc and posix_memalign count every
# allocation in each node (Swift objects, arrays and NIO buffers all come from there) while
# the status counters say how many packets (TUN reads/writes) went through. A benchmark,
# not a test: figures go to docs/PERFORMANCE.md. Plain links with offloads on (the default)
# and forced off; links over HTTP in duplex, WebSocket and split mode (offloads on).
#
#   bash scripts/bench-allocations.sh [seconds]       (default 5; as root; installs linux-perf)
#   BYST_BIN=path/to/byst bash scripts/bench-allocations.sh     (that binary, no build)
#
# Traffic stays between the harness's own namespaces (10.99.0.0/24, 10.98.0.0/24).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-5}
bench=${BYST_BENCH_DIR:-$PWD/scripts/bench/harness}
[ -x "$bench/netns.sh" ] || { echo "bench-allocations: $bench/netns.sh not found (set BYST_BENCH_DIR)" >&2; exit 1; }
apt-get install -y -qq iperf3 python3 linux-perf >/dev/null
if [ -z "${BYST_BIN:-}" ]; then swift build -c release --product byst >/dev/null; fi
byst=${BYST_BIN:-$PWD/.build/release/byst}
libc=$(ldd "$byst" | awk '$1 == "libc.so.6" { print $3 }')
work=$(mktemp -d /tmp/byst-bench-alloc.XXXX)
pids=()
probes=(malloc calloc realloc posix_memalign)
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    for probe in "${probes[@]}"; do perf probe -q -d "probe_libc:$probe" 2>/dev/null || true; done
    "$bench/netns.sh" down
    rm -rf "$work"
}
trap cleanup EXIT INT TERM
for probe in "${probes[@]}"; do perf probe -q -x "$libc" --add "$probe" 2>/dev/null || true; done
events=$(printf 'probe_libc:%s,' "${probes[@]}")
events=${events%,}

# counter NODE FIELD...: the sum of those TUN counters in the node's status.
counter() {
    local node=$1; shift
    "$byst" status --socket "$work/$node/$node.sock" --json |
        python3 -c "import json,sys; c = json.load(sys.stdin)['tun']['counters']; print(sum(c[f] for f in sys.argv[1:]))" "$@"
}

# allocations SIDE: total allocations in that node's process during the last perf run.
allocations() {
    grep -qE "^[0-9]+,,probe_libc:malloc" "$work/perf-$1.csv" || {
        echo "bench-allocations: perf counted nothing for node $1:" >&2; cat "$work/perf-$1.csv" >&2; exit 1
    }
    awk -F, '/probe_libc/ { sum += $1 } END { printf "%.0f\n", sum }' "$work/perf-$1.csv"
}

# measure NAME LOAD...: runs LOAD in namespace A while perf counts each node's allocations.
measure() {
    local name=$1 a b fromA toB; shift
    a=$(counter a packets_from_tun) b=$(counter b packets_to_tun super_packets_received)
    perf stat -x, -e "$events" -p "${pids[0]}" -o "$work/perf-a.csv" -- sleep "$seconds" &
    local perfA=$!
    perf stat -x, -e "$events" -p "${pids[1]}" -o "$work/perf-b.csv" -- sleep "$seconds" &
    local perfB=$!
    timeout $((seconds + 5)) ip netns exec byst-a "$@" >/dev/null 2>&1 || true
    wait "$perfA" "$perfB"
    fromA=$(( $(counter a packets_from_tun) - a )) toB=$(( $(counter b packets_to_tun super_packets_received) - b ))
    python3 - "$name" "$fromA" "$(allocations a)" "$toB" "$(allocations b)" <<'PY'
import sys
name, sent, sentAllocs, received, receivedAllocs = sys.argv[1], *map(int, sys.argv[2:])
per = lambda allocs, packets: f"{allocs / packets:.3f}" if packets else "n/a"
print(f"| {name} | {sent} | {sentAllocs} | {per(sentAllocs, sent)} | {received} | {receivedAllocs} | {per(receivedAllocs, received)} |")
PY
}

"$bench/netns.sh" up
echo "| run | TUN reads at A | allocations at A | per read | TUN writes at B | allocations at B | per write |"
echo "|---|---:|---:|---:|---:|---:|---:|"
# Plain links (on the data planes) with offloads on and off, then links over HTTP (duplex,
# WebSocket, split: on the event loop, their packets handed between the loop and the planes in batches).
for variant in "offload=true true" "offload=false false" "HTTP_duplex true duplex" "HTTP_websocket true websocket" "HTTP_split true split"; do
    read -r name offload http_mode <<<"$variant"
    name=${name/_/ }
    BYST_BIN=$byst deploy/bench-conf.sh "$work/conf" 1 "$offload" 1 "$http_mode"
    mkdir -p "$work/a" "$work/b"
    sed "s|$work/conf/a.sock|$work/a/a.sock|" "$work/conf/a.conf" >"$work/a/a.conf"
    sed "s|$work/conf/b.sock|$work/b/b.sock|" "$work/conf/b.conf" >"$work/b/b.conf"
    ip netns exec byst-b "$byst" up -c "$work/b/b.conf" >"$work/b.log" 2>&1 &
    pids=($!)
    ip netns exec byst-a "$byst" up -c "$work/a/a.conf" >"$work/a.log" 2>&1 &
    pids=($! "${pids[0]}")   # [0] = A, [1] = B (`ip netns exec` execs the node: these are its PIDs)
    for _ in $(seq 100); do ip netns exec byst-a ping -c 1 -W 1 10.98.0.2 >/dev/null 2>&1 && break; sleep 0.1; done
    ip netns exec byst-b timeout $((seconds * 4 + 20)) iperf3 -s -1 >/dev/null 2>&1 &
    pids+=($!)
    sleep 0.3
    measure "$name, iperf3 TCP" iperf3 -c 10.98.0.2 -t "$((seconds + 1))"
    measure "$name, ping 100 Hz" ping -q -i 0.01 -c $((seconds * 100)) 10.98.0.2
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    pids=()
done
