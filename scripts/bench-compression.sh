#!/usr/bin/env bash
# Record compression (issue 8), release build, same run, on loopback: one forwarded stream
# over 1 link carries a file — compressible text (generated access-log lines) or random
# bytes — with the branch's `compression = "off"` and `"streams"`:
#   * throughput: socat sends the file through the forward to a socat sink; the time runs
#     until the sink has read everything and closed (socat waits for the far end's EOF);
#     rounds are interleaved, the median is reported;
#   * bytes on the wire: the branch link's record bytes (byst status bytes_out: headers,
#     tags, frames, compressed payloads) per file byte, and the link's compression counters.
# A reference row sends the same file straight to the sink (no tunnel).
#
#   bash scripts/bench-compression.sh [MiB] [rounds]      (defaults: 512 MiB, 3 rounds)
#   BYST=/path/to/byst bash scripts/bench-compression.sh  (skip the build, use that binary)
#   LEVEL=1 bash scripts/bench-compression.sh             (the branch's compression_level, default 3)
#
# Loopback only; every process is started here and stopped by PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
mib=${1:-512}
rounds=${2:-3}
level=${LEVEL:-3}
for tool in socat awk; do command -v "$tool" >/dev/null || { echo "bench-compression: $tool missing" >&2; exit 1; }; done
source scripts/lib/bench.sh
bench_start compression

# The data: realistic access-log lines (timestamps, addresses, paths, sizes, agents vary line
# by line) and random bytes, $mib MiB each, generated once and read from the page cache.
bytes=$((mib << 20))
awk -v n="$bytes" 'BEGIN {
    srand(8); split("GET GET GET POST PUT DELETE", m); split("200 200 200 200 304 404 500 201", s)
    split("Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0|curl/8.5.0|Go-http-client/2.0|python-requests/2.31|okhttp/4.12.0", ua, "|")
    split("orders customers invoices products sessions metrics", r)
    t = 1764237600; total = 0
    while (total < n) {
        t += int(rand() * 3)
        line = sprintf("10.%d.%d.%d - - [%s] \"%s /api/v2/%s/%d?page=%d HTTP/1.1\" %s %d %.3f \"%s\" req=%08x\n",
            int(rand() * 4), int(rand() * 256), int(rand() * 256), strftime("%d/%b/%Y:%H:%M:%S +0000", t, 1),
            m[1 + int(rand() * 6)], r[1 + int(rand() * 6)], int(rand() * 100000), int(rand() * 20),
            s[1 + int(rand() * 8)], int(rand() * 65536), rand() * 2, ua[1 + int(rand() * 5)], int(rand() * 4294967295))
        if (total + length(line) > n) line = substr(line, 1, n - total)
        printf "%s", line; total += length(line)
    }
}' >"$work/text.bin"
head -c "$bytes" /dev/urandom >"$work/random.bin"

base=$(loopback_port_base 3)
sink_port=$base hub_port=$((base + 1)) forward_port=$((base + 2))
# The sink reads each connection to its end, then closes it.
socat -u -b 262144 TCP-LISTEN:"$sink_port",bind=127.0.0.1,reuseaddr,fork OPEN:/dev/null & pids+=($!)
bench_hub "listen = [\"127.0.0.1:$hub_port\"]" "$sink_port"

# start_branch off|streams
start_branch() {
    bench_branch "byst://127.0.0.1:$hub_port" "$forward_port" "$sink_port" "compression_level = $level" "links = 1
compression = \"$1\""
}
field() { "$byst" status --json --socket "$work/branch.sock" | grep -oE "\"$1\" *: *[0-9.]+" | grep -oE '[0-9.]+$' | head -1; }

# send FILE PORT: seconds until the far end has read the whole file and closed.
send() {
    local start end
    start=$(date +%s%N)
    socat -b 262144 -t 600 -T 600 FILE:"$1" TCP:127.0.0.1:"$2" >/dev/null
    end=$(date +%s%N)
    awk -v s="$start" -v e="$end" 'BEGIN { printf "%.3f", (e - s) / 1e9 }'
}

datas=(text random)
modes=(direct off streams)
declare -A runs wire_ratio compressed uncompressed attempts payload_ratio
for round in $(seq 1 "$rounds"); do
    for data in "${datas[@]}"; do
        for mode in "${modes[@]}"; do
            if [ "$mode" = direct ]; then
                secs=$(send "$work/$data.bin" "$sink_port")
            else
                start_branch "$mode"
                before=$(field bytes_out)
                secs=$(send "$work/$data.bin" "$forward_port")
                sleep 0.3
                wire=$(( $(field bytes_out) - before ))
                wire_ratio[$data-$mode]=$(awk -v w="$wire" -v p="$bytes" 'BEGIN { printf "%.4f", w / p }')
                compressed[$data-$mode]=$(field records_compressed)
                uncompressed[$data-$mode]=$(field records_uncompressed)
                attempts[$data-$mode]=$(field compression_attempts)
                payload_ratio[$data-$mode]=$(field compression_ratio)
                bench_branch_stop
            fi
            mbs=$(awk -v b="$bytes" -v s="$secs" 'BEGIN { printf "%.0f", b / s / 1e6 }')
            runs[$data-$mode]="${runs[$data-$mode]:-} $mbs"
        done
    done
done

echo "one forwarded stream, 1 link, ${mib} MiB file per run, loopback, release build, zstd level $level;"
echo "CPU: $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), $(nproc) cores; $(zstd --version 2>/dev/null | grep -oE 'v[0-9.]+' | head -1 | sed 's/^/libzstd /')"
echo "text: $(zstd -3 -c "$work/text.bin" 2>/dev/null | wc -c | awk -v p="$bytes" '{ printf "zstd -3 on the whole file: %.3f", $1 / p }')"
echo
echo "| data | compression | throughput (median of $rounds) | runs (MB/s) | vs off | wire bytes / file byte | records compressed / sent as is | attempts | payload ratio |"
echo "|---|---|---:|---|---:|---:|---:|---:|---:|"
for data in "${datas[@]}"; do
    off=$(bench_median "${runs[$data-off]}")
    for mode in "${modes[@]}"; do
        m=$(bench_median "${runs[$data-$mode]}")
        vs=$(awk -v a="$m" -v b="$off" 'BEGIN { printf "%.2f", a / b }')
        if [ "$mode" = direct ]; then
            echo "| $data | (no tunnel) | $m MB/s | ${runs[$data-$mode]# } | $vs | - | - | - | - |"
        else
            echo "| $data | $mode | $m MB/s | ${runs[$data-$mode]# } | $vs | ${wire_ratio[$data-$mode]} | ${compressed[$data-$mode]} / ${uncompressed[$data-$mode]} | ${attempts[$data-$mode]} | ${payload_ratio[$data-$mode]} |"
        fi
    done
done
