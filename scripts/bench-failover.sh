#!/usr/bin/env bash
# HA failover time distributions (docs/PERFORMANCE.md, "HA failover"), in the namespaces of
# Tests/E2E/lib/ha.sh: the branch pings the server on the hub LAN every 20 ms (its replies go
# through the virtual address [ha] address moves); each failover is the longest stretch
# without replies, from the last reply before the event to the first through the other hub.
# Scenarios, each repeated COUNT times, alternating hubs (the victim comes back as standby):
#   kill       kill -9 of the active hub, then `byst ha release` as systemd's ExecStopPost
#   kill-bare  kill -9 only (no systemd: etcd waits for the TTL)
#   term       SIGTERM: a clean stop
#   partition  the active hub's link to the registry namespace down (up again after)
#   election   etcd only: kill -9 of the raft leader; time to the first write accepted
# Release build (.build/release/byst, built if missing; BYST=… for another binary). Root.
#
#   bash scripts/bench-failover.sh embedded|etcd|etcds [COUNT] [LEASE] [SCENARIO]
set -euo pipefail
cd "$(dirname "$0")/.."
backend=${1:?usage: bench-failover.sh embedded|etcd|etcds [COUNT] [LEASE] [kill|kill-bare|term|partition|election]}
count=${2:-10}
lease=${3:-3s}
scenario=${4:-kill}
case $scenario in kill|kill-bare|term|partition|election) ;; *) echo "unknown scenario '$scenario'" >&2; exit 64 ;; esac
[ "$scenario" != election ] || [ "$backend" != embedded ] || { echo "election: etcd only" >&2; exit 64; }
[ "$count" -ge 1 ] && [ "$count" -le 100 ] || { echo "COUNT must be 1…100" >&2; exit 64; }
if [ -z "${BYST:-}" ]; then
    [ -x .build/release/byst ] || swift build -c release --product byst >/dev/null
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
case $scenario in
    kill) ha_kill_series "$count" KILL ;;
    kill-bare) HA_NO_RELEASE=1 ha_kill_series "$count" KILL ;;
    term) ha_kill_series "$count" TERM ;;
    partition) ha_partition_series "$count" ;;
    election) ha_etcd_election_series "$count" ;;
esac
echo "failover ($backend, lease $lease, $scenario): $(ha_gap_summary)"
