#!/usr/bin/env bash
# HA failover time distribution (docs/PERFORMANCE.md, "HA failover"): in the namespaces of
# Tests/E2E/lib/ha.sh, kill -9 the active hub KILLS times (alternating hubs, each restarted
# as standby) while the branch pings the hub LAN every 20 ms; each failover is the longest
# stretch without replies, from the last reply before the kill to the first through the other
# hub (ha_measure_failover). Release build. SIGNAL TERM measures clean stops instead.
#
#   bash scripts/bench-failover.sh embedded|etcd|etcds [KILLS] [LEASE] [SIGNAL]
#   (etcds: TLS to the etcd members and etcd users, as Tests/E2E/lib/ha.sh sets them up)
set -euo pipefail
cd "$(dirname "$0")/.."
backend=${1:?usage: bench-failover.sh embedded|etcd|etcds [KILLS] [LEASE] [SIGNAL]}
kills=${2:-10}
lease=${3:-3s}
signal=${4:-KILL}
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
ha_start_topology
ha_kill_series "$kills" "$signal"
echo "failover ($backend, lease $lease, kill -$signal): $(ha_gap_summary)"
