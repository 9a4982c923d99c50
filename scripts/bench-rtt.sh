#!/usr/bin/env bash
# Ping RTT through BYST (1 link, offloads on; release build) and OpenVPN over TCP, in
# alternating runs: the harness's own RTT row (scripts/bench/harness, 20 pings) is too short to
# settle a difference of a few tens of microseconds. Each run brings one tunnel up with the
# harness's peer functions, warms it with 5 pings, then pings at each rate in RATES
# ("hertz:count", default 50 Hz × 300, 500 Hz × 1000, 5 Hz × 20), and tears it down.
# TUNNELS may add the two reference relays of Benchmarks/LeanRelay (a TUN ⇄ TCP relay with
# BYST's AEAD calls and nothing else): `lean` (its own epoll loop) and `lean-nio` (NIO
# channels read the TUN and the socket, as in BYST). `byst-alt` runs the binary in ALT_BYST
# with the same configuration, for A/B runs of two builds in one alternation.
# BYST_OFFLOAD=false turns BYST's TUN offloads off.
# A benchmark, not a test: figures go to docs/PERFORMANCE.md.
#
#   bash scripts/bench-rtt.sh [pairs]      (default 3; as root)
#   TUNNELS="openvpn-tcp byst lean lean-nio" bash scripts/bench-rtt.sh 5
#   TUNNELS="byst byst-alt" ALT_BYST=/tmp/other/release/byst bash scripts/bench-rtt.sh 5
#
# Traffic stays between the harness's own namespaces (10.99.0.0/24, 10.98.0.0/24).
set -euo pipefail
cd "$(dirname "$0")/.."
bench=${BYST_BENCH_DIR:-$PWD/scripts/bench/harness}
[ -f "$bench/peers.sh" ] || { echo "bench-rtt: $bench/peers.sh not found (set BYST_BENCH_DIR)" >&2; exit 1; }
pairs=${1:-3}
rates=${RATES:-50:300 500:1000 5:20}
tunnels=${TUNNELS:-openvpn-tcp byst}
apt-get install -y -qq jq openvpn python3 >/dev/null
swift build -c release --product byst >/dev/null
byst=$PWD/.build/release/byst
case " $tunnels " in *" lean"*) swift build -c release --product byst-lean-relay >/dev/null ;; esac
relay=$PWD/.build/release/byst-lean-relay

# shellcheck source=/dev/null
. "$bench/lib.sh"
# shellcheck source=/dev/null
. "$bench/peers.sh"
. scripts/lib/lean-relay.sh
WORK=$(mktemp -d /tmp/byst-bench-rtt.XXXX)
OUT=$WORK/unused.jsonl   # the harness's record() is not used here
made_ns=0
[ -e "/run/netns/$NS_A" ] && [ -e "/run/netns/$NS_B" ] || made_ns=1
run_pid=''
cleanup() {
    set +e
    [ -z "$run_pid" ] || kill "$run_pid" 2>/dev/null
    stop_spawned
    wait 2>/dev/null
    [ "$made_ns" = 0 ] || NS_A=$NS_A NS_B=$NS_B "$bench/netns.sh" down
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
NS_A=$NS_A NS_B=$NS_B "$bench/netns.sh" up
BYST_BIN=$byst deploy/bench-conf.sh "$WORK/byst-conf" 1 "${BYST_OFFLOAD:-true}" 1 >/dev/null
export BYST_BIN=$byst BYST_CONF=$WORK/byst-conf BYST_NAME=byst
export BYST_CMD_A="$byst up -c $WORK/byst-conf/a.conf" BYST_CMD_B="$byst up -c $WORK/byst-conf/b.conf"

# one_run TUNNEL : "TUNNEL HZ MIN AVG" per rate, in a subshell that tears the tunnel down.
one_run() {
    local tunnel=$1
    PDIR=$WORK/run-$tunnel-$RANDOM
    mkdir -p "$PDIR"
    (
        trap stop_spawned EXIT
        trap 'exit 130' INT TERM
        case $tunnel in
            byst) peer_byst ;;
            byst-alt) [ -x "${ALT_BYST:-}" ] || { echo "bench-rtt: byst-alt needs ALT_BYST (a byst binary)" >&2; exit 1; }
                      export BYST_CMD_A="$ALT_BYST up -c $WORK/byst-conf/a.conf" BYST_CMD_B="$ALT_BYST up -c $WORK/byst-conf/b.conf"; peer_byst ;;
            openvpn-tcp) peer_openvpn_tcp ;;
            lean) peer_lean ;;
            lean-nio) peer_lean --nio ;;
            *) echo "bench-rtt: unknown tunnel $tunnel" >&2; exit 1 ;;
        esac
        wait_ping "$INNER_B" "$UP_TIMEOUT" || { echo "bench-rtt: no ping through $tunnel" >&2; exit 1; }
        ip netns exec "$NS_A" ping -q -c 5 -i 0.05 -W 1 "$INNER_B" >/dev/null
        for rate in $rates; do
            hz=${rate%%:*} count=${rate##*:}
            interval=$(python3 -c "print(1 / $hz)")
            line=$(timeout $((count / hz + 30)) ip netns exec "$NS_A" ping -q -c "$count" -i "$interval" -W 1 "$INNER_B" | tail -n 1)
            # "rtt min/avg/max/mdev = 0.087/0.233/0.412/0.060 ms"
            IFS=/ read -r min avg _ <<<"${line#*= }"
            echo "$tunnel $hz $min $avg"
        done
    ) &
    run_pid=$!
    wait "$run_pid"
    run_pid=''
}

results=$WORK/results
for pair in $(seq 1 "$pairs"); do
    for tunnel in $tunnels; do
        one_run "$tunnel" | tee -a "$results" | sed "s/^/pair $pair: /"
    done
done
echo "mean over $pairs runs each (ms): tunnel, rate, min, avg"
python3 - "$results" <<'EOF'
import sys, collections
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    tunnel, hz, low, avg = line.split()
    runs[(tunnel, int(hz))].append((float(low), float(avg)))
for (tunnel, hz), values in sorted(runs.items(), key=lambda item: (item[0][1], item[0][0])):
    low = sum(v[0] for v in values) / len(values)
    avg = sum(v[1] for v in values) / len(values)
    print(f"{tunnel:12} {hz:4} Hz  min {low:.3f}  avg {avg:.3f}  (avgs: {' '.join(f'{v[1]:.3f}' for v in values)})")
EOF
