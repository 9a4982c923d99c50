#!/usr/bin/env bash
# Work per echo on each node: Swift runtime calls (retains, releases and dynamic
# exclusivity checks, uprobes on libswiftCore) and system calls over a 2,000-ping flood,
# then user and system CPU time (from /proc/PID/stat) and the RTT over a 20,000-ping flood
# without probes. Through BYST (1 link, offloads on unless BYST_OFFLOAD=false; release
# build) and through the reference relay of Benchmarks/LeanRelay with NIO reads — what
# NIO's read path costs by itself. TUNNELS chooses (default "byst lean-nio"); `byst-alt`
# runs the binary in ALT_BYST, for A/B runs of two builds. A benchmark, not a test: figures
# go to docs/PERFORMANCE.md.
#
#   bash scripts/bench-arc.sh [rounds]        (as root; installs linux-perf; default 1)
#   TUNNELS="byst byst-alt" ALT_BYST=/tmp/other/byst bash scripts/bench-arc.sh 3
#
# Traffic stays between the harness's own namespaces (10.99.0.0/24, 10.98.0.0/24).
set -euo pipefail
cd "$(dirname "$0")/.."
bench=${BYST_BENCH_DIR:-$PWD/scripts/bench/harness}
[ -f "$bench/peers.sh" ] || { echo "bench-arc: $bench/peers.sh not found (set BYST_BENCH_DIR)" >&2; exit 1; }
apt-get install -y -qq linux-perf jq >/dev/null
swift build -c release --product byst >/dev/null
swift build -c release --product byst-lean-relay >/dev/null
byst=$PWD/.build/release/byst relay=$PWD/.build/release/byst-lean-relay
core=$(ldd "$byst" | awk '$1 == "libswiftCore.so" { print $3 }')
probes=(swift_retain swift_release swift_beginAccess)
rounds=${1:-1}
tunnels=${TUNNELS:-byst lean-nio}
ticks=$(getconf CLK_TCK)

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
events=${events}raw_syscalls:sys_enter
NS_A=$NS_A NS_B=$NS_B "$bench/netns.sh" up
BYST_BIN=$byst deploy/bench-conf.sh "$WORK/byst-conf" 1 "${BYST_OFFLOAD:-true}" 1 >/dev/null
export BYST_BIN=$byst BYST_CONF=$WORK/byst-conf
export BYST_CMD_A="$byst up -c $WORK/byst-conf/a.conf" BYST_CMD_B="$byst up -c $WORK/byst-conf/b.conf"

# cpu_ticks PID : user and system clock ticks of the process so far.
cpu_ticks() { awk '{ print $14 + 0, $15 + 0 }' "/proc/$1/stat"; }
flood_cpu=20000

echo "| round | tunnel | node | retains per echo | releases per echo | exclusivity checks per echo | system calls per echo | user / system µs per echo | flood RTT avg, ms |"
echo "|---|---|---|---:|---:|---:|---:|---:|---:|"
for round in $(seq 1 "$rounds"); do
for tunnel in $tunnels; do
    PDIR=$WORK/$tunnel-$round
    mkdir -p "$PDIR"
    case $tunnel in
        byst) peer_byst ;;
        byst-alt) [ -x "${ALT_BYST:-}" ] || { echo "bench-arc: byst-alt needs ALT_BYST (a byst binary)" >&2; exit 1; }
                  BYST_CMD_A="$ALT_BYST up -c $WORK/byst-conf/a.conf" BYST_CMD_B="$ALT_BYST up -c $WORK/byst-conf/b.conf" peer_byst ;;
        lean-nio) peer_lean --nio ;;
        *) echo "bench-arc: unknown tunnel $tunnel" >&2; exit 1 ;;
    esac
    wait_ping "$INNER_B" "$UP_TIMEOUT" || { echo "bench-arc: no ping through $tunnel" >&2; exit 1; }
    ip netns exec "$NS_A" ping -q -c 20 -i 0.01 "$INNER_B" >/dev/null
    declare -A pids=() perfs=()
    for side in A B; do
        ns=$NS_A; [ "$side" = A ] || ns=$NS_B
        pids[$side]=$(ip netns pids "$ns" | head -n 1)
        perf stat -x, -e "$events" -p "${pids[$side]}" -o "$PDIR/perf-$side.csv" -- sleep 4 &
        perfs[$side]=$!
    done
    sleep 0.5
    ip netns exec "$NS_A" ping -q -f -c 2000 "$INNER_B" >/dev/null
    wait "${perfs[A]}" "${perfs[B]}"
    # CPU time in a longer flood of its own: the probes above slow every runtime call down.
    read -r userA0 sysA0 < <(cpu_ticks "${pids[A]}")
    read -r userB0 sysB0 < <(cpu_ticks "${pids[B]}")
    rtt=$(ip netns exec "$NS_A" ping -q -f -c "$flood_cpu" "$INNER_B" | awk -F/ '/^rtt/ { print $5 }')
    read -r userA1 sysA1 < <(cpu_ticks "${pids[A]}")
    read -r userB1 sysB1 < <(cpu_ticks "${pids[B]}")
    for side in A B; do
        if [ "$side" = A ]; then cpu="$((userA1 - userA0)) $((sysA1 - sysA0))"; else cpu="$((userB1 - userB0)) $((sysB1 - sysB0))"; fi
        awk -F, -v r="$round" -v t="$tunnel" -v s="$side" -v cpu="$cpu" -v hz="$ticks" -v n="$flood_cpu" -v rtt="$rtt" '
            /probe_libswiftCore/ { split($3, e, ":"); calls[e[2]] = $1 / 2000 }
            /raw_syscalls/ { syscalls = $1 / 2000 }
            END { split(cpu, c, " "); us = 1e6 / hz / n
                  printf "| %s | %s | %s | %.1f | %.1f | %.1f | %.1f | %.1f / %.1f | %s |\n", r, t, s, calls["swift_retain"],
                         calls["swift_release"], calls["swift_beginAccess"], syscalls, c[1] * us, c[2] * us, rtt }' "$PDIR/perf-$side.csv"
    done
    stop_spawned
done
done
