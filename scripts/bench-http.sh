#!/usr/bin/env bash
# HTTP transport vs raw TCP links (release build), same run, on loopback:
#   * throughput of one forwarded iperf3 stream over 1 link: raw byst://, HTTP duplex, HTTP split
#     (runs interleaved round by round, median);
#   * bytes on the wire per payload byte: iperf3 -n sends an exact byte count upstream; the
#     branch's link sockets' bytes_sent (from `ss -ti`: TCP payload incl. HTTP heads, chunk
#     framing, record headers, AEAD tags, frame headers, acks and pings) is compared with it
#     (HTTP links' recycling is pushed beyond the run: it would replace the counted sockets).
#
#   bash scripts/bench-http.sh [seconds] [MiB] [rounds]   (defaults: 5 s per throughput run, 1024 MiB, 5 rounds)
#
# Loopback only; every process is started here and stopped by PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-5}
mib=${2:-1024}
rounds=${3:-5}
for tool in iperf3 ss; do command -v "$tool" >/dev/null || { echo "bench-http: $tool missing" >&2; exit 1; }; done
source scripts/lib/bench.sh
bench_start http

base=$(loopback_port_base 4)
iperf_port=$base raw_port=$((base + 1)) http_port=$((base + 2)) forward_port=$((base + 3))
iperf3 -s -B 127.0.0.1 -p "$iperf_port" >/dev/null 2>&1 & pids+=($!)
bench_hub "listen = [\"127.0.0.1:$raw_port\"]
http_listen = [\"127.0.0.1:$http_port\"]" "$iperf_port"

start_branch() { bench_branch "$1" "$forward_port" "$iperf_port" "" "links = 1
${2:-}"; }

# Record-layer bytes the branch's links wrote (byst status: before HTTP framing).
record_sent() { "$byst" status --json --socket "$work/branch.sock" | grep -oE '"bytes_out" *: *[0-9]+' | grep -oE '[0-9]+$' | awk '{ s += $1 } END { printf "%.0f", s }'; }
link_sockets() { ss -tnH state established "( dport = :$1 )" | awk '{ print $3 }' | sort | tr '\n' ' '; }
# Sum of bytes_sent over the branch's sockets towards the hub port.
wire_sent() { ss -tinH state established "( dport = :$1 )" | grep -oE 'bytes_sent:[0-9]+' | awk -F: '{ s += $2 } END { printf "%.0f", s }'; }

modes=(raw duplex split)
endpoint() { case $1 in raw) echo "byst://127.0.0.1:$raw_port" ;; *) echo "http://127.0.0.1:$http_port/byst" ;; esac; }
port_of() { case $1 in raw) echo "$raw_port" ;; *) echo "$http_port" ;; esac; }
# Recycling replaces sockets (and their counters): keep it beyond the measurement.
extra() { case $1 in raw) echo "" ;; *) printf 'http_mode = "%s"\nrecycle_bytes = "1TiB"\nrecycle_after = "1h"\n' "$1" ;; esac; }

declare -A runs overhead_pct wire_bytes payload_bytes framing_bytes record_overhead
for round in $(seq 1 "$rounds"); do
    for mode in "${modes[@]}"; do
        start_branch "$(endpoint "$mode")" "$(extra "$mode")"
        gbit=$(iperf3 -c 127.0.0.1 -p "$forward_port" -t "$seconds" -J |
            awk -F'[:,]' '/"sum_received"/ { f = 1 } f && /"bits_per_second"/ { printf "%.2f", $2 / 1e9; exit }')
        runs[$mode]="${runs[$mode]:-} $gbit"
        bench_branch_stop
    done
done

# Bytes on the wire: a fresh branch per mode, nothing else flowing.
for mode in "${modes[@]}"; do
    start_branch "$(endpoint "$mode")" "$(extra "$mode")"
    sleep 1
    before=$(wire_sent "$(port_of "$mode")")
    records_before=$(record_sent)
    sockets_before=$(link_sockets "$(port_of "$mode")")
    payload=$(iperf3 -c 127.0.0.1 -p "$forward_port" -n "${mib}M" -J |
        awk -F'[:,]' '/"sum_sent"/ { f = 1 } f && /"bytes"/ { gsub(/ /, "", $2); print $2; exit }')
    sleep 1
    after=$(wire_sent "$(port_of "$mode")")
    records=$(( $(record_sent) - records_before ))
    wire=$((after - before))
    # A connection replaced mid-measurement would reset its counters: refuse the figure.
    if [ "$(link_sockets "$(port_of "$mode")")" != "$sockets_before" ] || [ "$wire" -lt "$payload" ] || [ "$records" -lt "$payload" ]; then
        echo "bench-http: $mode: inconsistent counters (wire $wire, records $records, payload $payload); run again" >&2
        exit 1
    fi
    framing_bytes[$mode]=$((wire - records))
    record_overhead[$mode]=$((records - payload))
    overhead_pct[$mode]=$(awk -v w="$wire" -v p="$payload" 'BEGIN { printf "%.4f", (w - p) * 100 / p }')
    wire_bytes[$mode]=$wire
    payload_bytes[$mode]=$payload
    bench_branch_stop
done

echo "iperf3 through a forward, 1 link, loopback, release build; CPU: $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), $(nproc) cores"
echo
echo "| link transport | throughput (median of $rounds × ${seconds} s) | runs | vs raw | wire bytes for ${mib} MiB payload | records + frames | HTTP framing | total overhead |"
echo "|---|---:|---|---:|---:|---:|---:|---:|"
raw_median=$(bench_median "${runs[raw]}")
pct() { awk -v b="$1" -v p="$2" 'BEGIN { printf "%.4f %%", b * 100 / p }'; }
for mode in "${modes[@]}"; do
    m=$(bench_median "${runs[$mode]}")
    ratio=$(awk -v a="$m" -v b="$raw_median" 'BEGIN { printf "%.2f", a / b }')
    p=${payload_bytes[$mode]}
    echo "| $mode | $m Gbit/s | ${runs[$mode]# } | $ratio | ${wire_bytes[$mode]} | $(pct "${record_overhead[$mode]}" "$p") | $(pct "${framing_bytes[$mode]}" "$p") | ${overhead_pct[$mode]} % |"
done
