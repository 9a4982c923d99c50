#!/usr/bin/env bash
# HA failover with the embedded registry (`byst registry serve`): two hubs serve port "hq",
# a branch follows it (topology: Tests/E2E/lib/ha.sh).
#   1. hub A active, hub B standby; the branch LAN reaches the hub LAN through A.
#   2. kill -9 hub A during a ping: traffic resumes through hub B within 2 × lease
#      (the measured failover time is printed).
#   3. hub A comes back as standby: no flap back.
#   4. SIGTERM hub B: it releases the port and hub A takes over well within one lease.
#   5. kill -9 the registry and restart it: hub A relets its port, nobody flaps.
#   6. 5 × kill -9 of the active hub (20 ms pings from the branch LAN): the registry sees the
#      connection close and releases the port after its close grace (300 ms), not the lease:
#      median gap < 1 s, max < 1.5 s.
# Throughout: the pings go to a server on the hub LAN whose only route out is the virtual
# address 10.2.0.1 ([ha] address), which follows the active hub (announced by gratuitous
# ARP; fd00:2::1 beside it by unsolicited neighbour advertisement: the server's neighbour
# entries must switch to hub B at the first failover); a killed hub's is removed by `byst ha release` as systemd's ExecStopPost would. From
# the first kill to the end both hubs are polled every 20 ms: never do both hold it. Each
# transition runs on_active / on_standby (checked through the lines they write).
set -euo pipefail
cd "$(dirname "$0")/../.."
BYST=${BYST_BINARY:-$PWD/.build/debug/byst}
source deploy/netns/lib.sh
source Tests/E2E/lib/ha.sh
netns_require ping python3
trap netns_cleanup EXIT INT TERM
fail() { echo "FAIL: $*" >&2; for log in "$BYST_NS_WORK"/*.log; do echo "--- $log" >&2; tail -12 "$log" >&2; done; exit 1; }
lease_ms=3000

ha_setup embedded 3s
ha_start_registry
ha_start_topology
a=$HA_PID_A b=$HA_PID_B
ha_holds_vip ha && ! ha_holds_vip hb || fail "the virtual address is not on hub A alone"
wait_for 5 grep -q '^hq active registered the port' "$BYST_NS_WORK/ha.notify" || fail "hub A's on_active did not run"
wait_for 5 grep -q "^hq standby port owned by 'hub-ha'" "$BYST_NS_WORK/hb.notify" || fail "hub B's on_standby did not run"
echo "ok: hub A active with 10.2.0.1, hub B standby; branch LAN ↔ hub LAN server through A (its default route the virtual address)"

# The server learns the IPv6 virtual address's MAC (hub A's), to see the advertisement change it.
ip netns exec "$(ns sv)" ping -6 -c 1 -W 1 fd00:2::1 >/dev/null || fail "the server does not reach fd00:2::1 on hub A"
ha_vip_watch_start 170

ha_expect_failover "$a" "$lease_ms"
ha_holds_vip hb && ! ha_holds_vip ha || fail "the virtual address did not move to hub B alone"
mac_b=$(ip -n "$(ns hb)" -o link show dev lan0 | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2)
[ "$(ha_server_gateway_mac)" = "$mac_b" ] || fail "the server's neighbour entry for 10.2.0.1 is $(ha_server_gateway_mac), not hub B's $mac_b (no gratuitous ARP?)"
[ "$(ha_server_gateway_mac fd00:2::1)" = "$mac_b" ] || fail "the server's neighbour entry for fd00:2::1 is $(ha_server_gateway_mac fd00:2::1), not hub B's $mac_b (no neighbour advertisement?)"
echo "ok: the server's neighbour entries for 10.2.0.1 and fd00:2::1 name hub B's MAC (gratuitous ARP, unsolicited NA)"
echo "ok: traffic resumed through hub B, which holds 10.2.0.1"

transitions_b=$(ha_transitions hb)
wait "$a" 2>/dev/null || true
ha_start ha; a=$HA_PID
wait_for 10 ha_is ha standby || fail "hub A did not come back as standby"
sleep $((2 * lease_ms / 1000))
ha_is hb active || fail "hub B lost the port after hub A came back"
ha_is ha standby || fail "hub A took the port back (flap)"
[ "$(ha_transitions hb)" = "$transitions_b" ] || fail "hub B changed role after hub A came back"
ha_branch_reaches || fail "the branch lost the hub LAN after hub A came back"
echo "ok: hub A came back as standby, no flap"

start=$(date +%s%N)
kill -TERM "$b"
wait_for 5 ha_is ha active || fail "hub A did not take over after hub B stopped"
took=$(( ($(date +%s%N) - start) / 1000000 ))
wait_for 10 ha_branch_reaches || fail "the branch does not reach the hub LAN through hub A"
echo "ok: graceful stop of hub B released the port; hub A active after ${took} ms"
[ "$took" -lt "$lease_ms" ] || fail "graceful handover took ${took} ms (≥ one lease: the port was not released)"
# Its shutdown waited for the registry's answer to the release, not for the time limit.
wait_for 5 grep -q "our ports released in" "$BYST_NS_WORK/hb.log" \
    || fail "hub B's shutdown did not see the registry answer its release: $(grep -o '"message":"registry[^"]*"' "$BYST_NS_WORK/hb.log" | tail -3)"

# Hub B returns as standby (once the old process is gone with its TUN); the registry
# restart must not move the port from hub A.
wait "$b" 2>/dev/null || true
ha_start hb; b=$HA_PID
wait_for 10 ha_is hb standby || fail "hub B did not come back as standby"
transitions_a=$(ha_transitions ha)

kill -9 "$HA_REGISTRY_PID"
ha_start_registry
sleep $((2 * lease_ms / 1000 + 1))
wait_for 10 ha_branch_reaches || fail "the branch lost the hub LAN after the registry restart"
ha_is ha active || fail "hub A is not active after the registry restart"
ha_is hb standby || fail "hub B is not standby after the registry restart"
[ "$(ha_transitions ha)" = "$transitions_a" ] || fail "hub A flapped during the registry restart ($(ha_transitions ha) transitions, was $transitions_a)"
echo "ok: registry restarted (kill -9): hub A relet its port, no role changed"


# The hubs' PIDs for the series (it restarts each killed hub and updates them).
HA_PID_A=$a HA_PID_B=$b
ha_kill_series 5
eval "$(ha_gap_summary vars)"
echo "crash failover with the embedded registry (close grace 300 ms, lease $lease_ms ms): $(ha_gap_summary)"
[ "$gap_median" -lt 1000 ] || fail "median crash failover ${gap_median} ms (≥ 1 s): the close grace did not release the port"
[ "$gap_max" -lt 1500 ] || fail "slowest crash failover ${gap_max} ms (≥ 1.5 s)"
echo "ok: 5 × kill -9 of the active hub: median ${gap_median} ms, max ${gap_max} ms"
ha_vip_watch_stop
if ha_is ha active; then holder=ha; else holder=hb; fi
ha_holds_vip "$holder" || fail "the active hub $holder does not hold 10.2.0.1"

# 8 activations (A; B after the kill; A after B's stop; 5 kills) and 8 starts as standby,
# each hub's lines in its own file; each run's ending logged.
sleep 1
actives=$(cat "$BYST_NS_WORK"/h[ab].notify | grep -c '^hq active ') standbys=$(cat "$BYST_NS_WORK"/h[ab].notify | grep -c '^hq standby ')
[ "$actives/$standbys" = 8/8 ] || fail "on_active ran $actives times, on_standby $standbys times (expected 8/8): $(cat "$BYST_NS_WORK"/h[ab].notify)"
grep -q 'on_active .*notify.sh exited with status 0' "$BYST_NS_WORK/$holder.log" || fail "no on_active exit status in $holder's log"
echo "ok: on_active ran 8 times, on_standby 8 times, exit status logged"
