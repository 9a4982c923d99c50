#!/usr/bin/env bash
# Swift runtime calls per echo on each node: retains, releases and dynamic exclusivity
# checks (uprobes on libswiftCore), over a 2,000-ping flood through BYST (1 link, offloads
# on; release build) and through the reference relay of Benchmarks/LeanRelay with NIO reads
# — what NIO's read path costs by itself. A benchmark, not a test: figures go to
# docs/PERFORMANCE.md.
#
#   bash scripts/bench-arc.sh        (as root; installs linux-perf)
#
# Traffic stays between the harness's own namespaces (10.99.0.0/24, 10.98.0.0/24).
set -euo pipefail
cd "$(dirname "$0")/.."
bench=${BYST_BENCH_DIR:-$PWD/../shared/bench}
[ -f "$bench/peers.sh" ] || { echo "bench-arc: $bench/peers.sh not found (set BYST_BENCH_DIR)" >&2; exit 1; }
apt-get install -y -qq linux-perf jq >/dev/null
swift build -c release --product byst >/dev/null
swift build -c release --product byst-lean-relay >/dev/null
byst=$PWD/.build/release/byst relay=$PWD/.build/release/byst-lean-relay
core=$(ldd "$byst" | awk '$1 == "libswiftCore.so" { print $3 }')
probes=(swift_retain swift_release swift_beginAccess)

# shellcheck source=/dev/null
. "$bench/lib.sh"
# shellcheck source=/dev/null
. "$bench/peers.sh"
. scripts/lib/lean-relay.sh
WORK=$(mktemp -d /tmp/byst-bench-arc.XXXX)
OUT=$WORK/unused.jsonl
cleanup() {
    set +e
    stop_spawned
    for probe in "${probes[@]}"; do perf probe -q -d "probe_libswiftCore:$probe" 2>/dev/null; done
    NS_A=$NS_A NS_B=$NS_B "$bench/netns.sh" down
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
for probe in "${probes[@]}"; do perf probe -q -x "$core" --add "$probe" 2>/dev/null || true; done
events=$(printf 'probe_libswiftCore:%s,' "${probes[@]}")
events=${events%,}
NS_A=$NS_A NS_B=$NS_B "$bench/netns.sh" up
BYST_BIN=$byst deploy/bench-conf.sh "$WORK/byst-conf" 1 true 1 >/dev/null
export BYST_BIN=$byst BYST_CONF=$WORK/byst-conf
export BYST_CMD_A="$byst up -c $WORK/byst-conf/a.conf" BYST_CMD_B="$byst up -c $WORK/byst-conf/b.conf"

echo "| tunnel | node | retains per echo | releases per echo | exclusivity checks per echo |"
echo "|---|---|---:|---:|---:|"
for tunnel in byst lean-nio; do
    PDIR=$WORK/$tunnel
    mkdir -p "$PDIR"
    if [ "$tunnel" = byst ]; then peer_byst; else peer_lean --nio; fi
    wait_ping "$INNER_B" "$UP_TIMEOUT" || { echo "bench-arc: no ping through $tunnel" >&2; exit 1; }
    ip netns exec "$NS_A" ping -q -c 20 -i 0.01 "$INNER_B" >/dev/null
    for side in A B; do
        ns=$NS_A; [ "$side" = A ] || ns=$NS_B
        pid=$(ip netns pids "$ns" | head -n 1)
        perf stat -x, -e "$events" -p "$pid" -o "$PDIR/perf-$side.csv" -- sleep 4 &
        eval "perf_$side=\$!"
    done
    sleep 0.5
    ip netns exec "$NS_A" ping -q -f -c 2000 "$INNER_B" >/dev/null
    # shellcheck disable=SC2154 # set by eval above
    wait "$perf_A" "$perf_B"
    for side in A B; do
        awk -F, -v t="$tunnel" -v s="$side" '/probe_libswiftCore/ { split($3, e, ":"); n[e[2]] = $1 / 2000 }
            END { printf "| %s | %s | %.1f | %.1f | %.1f |\n", t, s, n["swift_retain"], n["swift_release"], n["swift_beginAccess"] }' \
            "$PDIR/perf-$side.csv"
    done
    stop_spawned
done
