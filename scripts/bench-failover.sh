#!/usr/bin/env bash
# HA failover time distribution (docs/PERFORMANCE.md, "HA failover"): in the namespaces of
# Tests/E2E/lib/ha.sh, kill -9 the active hub KILLS times (alternating hubs, each restarted
# as standby) while the branch pings the hub LAN every 50 ms; each failover is the time from
# the kill to the first reply through the other hub. Release build.
#
#   bash scripts/bench-failover.sh embedded|etcd|etcds [KILLS] [LEASE]
#   (etcds: TLS to the etcd members and etcd users, as Tests/E2E/lib/ha.sh sets them up)
set -euo pipefail
cd "$(dirname "$0")/.."
backend=${1:?usage: bench-failover.sh embedded|etcd|etcds [KILLS] [LEASE]}
kills=${2:-10}
lease=${3:-3s}
if [ -z "${BYST:-}" ]; then
    swift build -c release --product byst >/dev/null
    BYST=$PWD/.build/release/byst
fi
source deploy/netns/lib.sh
source Tests/E2E/lib/ha.sh
netns_require ping python3
trap netns_cleanup EXIT INT TERM
fail() { echo "FAIL: $*" >&2; exit 1; }

ha_setup "$backend" "$lease"
[ "$backend" = embedded ] && ha_start_registry
declare -A pid
ha_start_topology
pid[ha]=$HA_PID_A pid[hb]=$HA_PID_B

results=()
active=ha standby=hb
for i in $(seq 1 "$kills"); do
    ms=$(ha_measure_failover "${pid[$active]}")
    [ -n "$ms" ] || fail "kill $i: no failover within 11 s"
    results+=("$ms")
    echo "kill $i ($active): ${ms} ms"
    wait "${pid[$active]}" 2>/dev/null || true
    ha_start "$active"; pid[$active]=$HA_PID
    wait_for 10 ha_is "$active" standby || fail "kill $i: $active did not come back as standby"
    tmp=$active active=$standby standby=$tmp
done
printf '%s\n' "${results[@]}" | python3 -c '
import sys, statistics
v = sorted(int(x) for x in sys.stdin)
q = lambda p: v[min(len(v) - 1, int(round(p * (len(v) - 1))))]
print(f"failover over {len(v)} kills ('"$backend"', lease '"$lease"'): min {v[0]} ms, median {statistics.median(v):.0f} ms, p90 {q(0.9)} ms, max {v[-1]} ms")'
