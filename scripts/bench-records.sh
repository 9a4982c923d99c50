#!/usr/bin/env bash
# Record-layer seal/open throughput (release build) next to `openssl speed` measured in
# the same run, as ratios. A benchmark, not a test: figures go to docs/PERFORMANCE.md.
#
#   bash scripts/bench-records.sh [seconds-per-measurement] [rounds]   (default 2 s, 3 rounds)
#
# Each round measures openssl and BYST back to back for every size; the table keeps the
# best figure of each over the rounds, so a passing slowdown of the machine hits neither
# side alone.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-2}
rounds=${2:-3}
sizes=(1420 16384 65536)

command -v openssl >/dev/null || { echo "bench-records: openssl not found (apt-get install openssl)" >&2; exit 1; }
swift build -c release --product byst-record-bench >/dev/null
bench=.build/release/byst-record-bench

# openssl speed, machine-readable, wall clock (as our benchmark uses): bytes/s.
ossl() {  # ossl <size> [extra flags…]
    local size=$1; shift
    openssl speed -mr -elapsed -seconds "$seconds" -bytes "$size" "$@" -evp aes-256-gcm 2>/dev/null \
        | awk -F: '/^\+F:/ { printf "%.0f\n", $4 }'
}

max() { if [ -z "$1" ] || [ "$2" -gt "$1" ]; then echo "$2"; else echo "$1"; fi; }

declare -A enc dec aead seal open both
for ((round = 1; round <= rounds; round++)); do
    for size in "${sizes[@]}"; do
        enc[$size]=$(max "${enc[$size]:-}" "$(ossl "$size")")
        dec[$size]=$(max "${dec[$size]:-}" "$(ossl "$size" -decrypt)")
        aead[$size]=$(max "${aead[$size]:-}" "$(ossl "$size" -aead)")
        read -r _ _ _ s o b < <("$bench" --seconds "$seconds" --sizes "$size" --aes-only)
        seal[$size]=$(max "${seal[$size]:-}" "$s")
        open[$size]=$(max "${open[$size]:-}" "$o")
        both[$size]=$(max "${both[$size]:-}" "$b")
    done
done

echo "best of $rounds rounds, $seconds s per measurement"
echo "CPU: $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), $(nproc) cores; $(openssl version)"
echo
echo "| record payload | BYST seal | openssl -evp (encrypt) | ratio | BYST open | openssl -evp -decrypt | ratio | openssl -aead | BYST seal+open round trip | vs openssl enc+dec | ratio |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for size in "${sizes[@]}"; do
    awk -v size="$size" -v e="${enc[$size]}" -v d="${dec[$size]}" -v a="${aead[$size]}" \
        -v seal="${seal[$size]}" -v open="${open[$size]}" -v both="${both[$size]}" 'BEGIN {
            ref = 1 / (1 / e + 1 / d)
            printf "| %d B | %.2f GB/s | %.2f GB/s | **%.2f** | %.2f GB/s | %.2f GB/s | **%.2f** | %.2f GB/s | %.2f GB/s | %.2f GB/s | **%.2f** |\n",
                size, seal / 1e9, e / 1e9, seal / e, open / 1e9, d / 1e9, open / d, a / 1e9, both / 1e9, ref / 1e9, both / ref
        }'
done
