#!/usr/bin/env bash
# HTTP duplex links straight to the hub, through haproxy (reverse proxy, default settings) and
# through haproxy with `option http-no-delay`, and WebSocket links straight to the hub and through
# haproxy with its defaults, in the same run, on loopback: throughput of one forwarded iperf3
# stream over 1 link, upload (branch → hub) and download (-R), interleaved round by round, median.
#
#   bash scripts/bench-http-proxies.sh [seconds] [rounds]   (defaults: 5 s per run, 3 rounds)
#   BYST=.build/debug/byst bash scripts/bench-http-proxies.sh 5 1   (a debug build: say so with its figures)
#
# haproxy sends a message body's bytes with MSG_MORE until the message ends; a small write
# then waits in the kernel for an ACK or the ~200 ms probe timer (docs/perf-log/
# 2026-12-06-http-proxies-issue-22.md). Loopback only; every process is stopped by PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-5}
rounds=${2:-3}
for tool in iperf3 haproxy; do command -v "$tool" >/dev/null || { echo "bench-http-proxies: $tool missing (scripts/setup.sh)" >&2; exit 1; }; done
source scripts/lib/bench.sh
source Tests/E2E/lib/proxies.sh
bench_start http-proxies
trap 'proxies_cleanup; bench_cleanup' EXIT INT TERM

base=$(loopback_port_base 5)
iperf_port=$base http_port=$((base + 1)) haproxy_port=$((base + 2)) forward_port=$((base + 3)) nodelay_port=$((base + 4))
iperf3 -s -B 127.0.0.1 -p "$iperf_port" >/dev/null 2>&1 & pids+=($!)
bench_hub "http_listen = [\"127.0.0.1:$http_port\"]" "$iperf_port"
start_haproxy_reverse "$haproxy_port" "$http_port"
start_haproxy_reverse "$nodelay_port" "$http_port" no-delay

routes="direct haproxy haproxy-no-delay websocket-direct websocket-haproxy"
endpoint() {
    case $1 in
        direct|websocket-direct) echo "http://127.0.0.1:$http_port/byst" ;;
        haproxy|websocket-haproxy) echo "http://127.0.0.1:$haproxy_port/byst" ;;
        haproxy-no-delay) echo "http://127.0.0.1:$nodelay_port/byst" ;;
    esac
}
mode() { case $1 in websocket-*) echo websocket ;; *) echo duplex ;; esac; }
# Gbit/s received by the far end of one iperf3 run (extra arguments: -R for download).
measure() {
    iperf3 -c 127.0.0.1 -p "$forward_port" -t "$seconds" -J "$@" |
        awk -F'[:,]' '/"sum_received"/ { f = 1 } f && /"bits_per_second"/ { printf "%.3f", $2 / 1e9; exit }'
}

declare -A runs
for round in $(seq 1 "$rounds"); do
    for route in $routes; do
        bench_branch "$(endpoint "$route")" "$forward_port" "$iperf_port" "" "links = 1
http_mode = \"$(mode "$route")\""
        runs[$route-up]="${runs[$route-up]:-} $(measure)"
        runs[$route-down]="${runs[$route-down]:-} $(measure -R)"
        bench_branch_stop
    done
done

echo "iperf3 through a forward, 1 HTTP link (duplex, or websocket where named), loopback, $(basename "$(dirname "$(dirname "$byst")")")/$(basename "$(dirname "$byst")") build; haproxy $(haproxy -v | awk 'NR == 1 { print $3 }') with defaults"
echo
echo "| route | upload (median of $rounds × ${seconds} s) | runs | download | runs | upload ÷ direct | download ÷ direct |"
echo "|---|---:|---|---:|---|---:|---:|"
du=$(bench_median "${runs[direct-up]}") dd=$(bench_median "${runs[direct-down]}")
for route in $routes; do
    u=$(bench_median "${runs[$route-up]}") d=$(bench_median "${runs[$route-down]}")
    echo "| $route | $u Gbit/s | ${runs[$route-up]# } | $d Gbit/s | ${runs[$route-down]# } |" \
        "$(bench_ratio "$u" "$du") | $(bench_ratio "$d" "$dd") |"
done
