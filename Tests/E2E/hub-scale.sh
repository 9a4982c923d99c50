#!/usr/bin/env bash
# A hub with thousands of configured branches, hundreds of them up, reloaded under traffic
# (docs/OPERATIONS.md "Reload"; docs/PERFORMANCE.md "A hub for many branches"):
#  - PEERS (3000) configured peers with a TUN and one /32 each; LIVE (300) of them up, one link
#    each from its own source address (the farm: one byst node playing them, scripts/lib/hub-farm.py);
#  - a probe branch with a TUN and 2 links pings the hub's TUN address every 50 ms throughout;
#  - `byst reload` adds a peer, then removes 10 live ones: the removed peers' links go (their
#    redials are refused) and nothing else moves — no other link dropped or redialled, no
#    ping lost — and `status --summary` / `--peer` answer on a hub this size.
#
#   ┌─ ns farm ─────────────────────┐          ┌─ ns hub ───────────────────────┐          ┌─ ns probe ───────────┐
#   │ byst up: LIVE peers, 1 link   │          │ byst up: PEERS peers           │          │ byst up, 2 links     │
#   │ each, from 10.252.0.1, .0.2 … ┼── veth ──┼ 10.250.0.1   TUN 100.64.0.1/10 ┼── veth ──┼ 10.251.0.2           │
#   └───────────────────────────────┘          │ 10.251.0.1                     │          │ TUN 100.64.x.y/32    │
#                                              └────────────────────────────────┘          └──────────────────────┘
# Everything runs inside namespaces created here; every process is stopped by PID on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
BYST=${BYST_BINARY:-$PWD/.build/debug/byst}
peers=${HUB_SCALE_PEERS:-3000} live=${HUB_SCALE_LIVE:-300}
source deploy/netns/lib.sh
netns_require ping curl python3 "$BYST"
trap netns_cleanup EXIT INT TERM
work=$BYST_NS_WORK
fail() { echo "FAIL: $*" >&2; for log in "$work"/*.log; do echo "--- $log" >&2; tail -8 "$log" >&2; done; exit 1; }

netns_hub_farm "$peers" "$live" 1 1 10
# The probe is configured peer number $live (not one of the farm's).
probe_key=b$live
netns_hub_probe "$probe_key" || fail "no probe"

hub_metric() { ip netns exec "$(ns hub)" curl -s http://127.0.0.1:9109/metrics | awk -v m="$1" '$0 ~ "^" m "\\{" { n += $2 } END { print n + 0 }'; }
farm_reconnects() { # PEER-REGEX: the farm's reconnects to the peers whose names match
    ip netns exec "$(ns farm)" curl -s http://127.0.0.1:9110/metrics \
        | awk -v re="$1" 'match($0, /^byst_peer_reconnects_total\{peer="[^"]*"/) { p = substr($0, 34, RLENGTH - 34); if (p ~ re) n += $2 } END { print n + 0 }'
}

netns_run hub "$work/hub.log" "$BYST" up -c "$work/hub.toml" >/dev/null
wait_for 30 test -S "$work/hub.sock" || fail "the hub did not start"
netns_run farm "$work/farm.log" "$BYST" up -c "$work/farm.toml" >/dev/null
netns_run probe "$work/probe.log" "$BYST" up -c "$work/probe.toml" >/dev/null
want=$((live + 2))
for _ in $(seq 1 300); do
    links=$(hub_metric byst_peer_links)
    [ "$links" -ge "$want" ] && break
    sleep 0.2
done
[ "$links" -eq "$want" ] || fail "$links links up at the hub, expected $want"
echo "hub: $peers peers configured, $links links up"
wait_for 10 ip netns exec "$(ns probe)" ping -c1 -W1 100.64.0.1 || fail "the probe cannot ping the hub through the tunnel"

# Traffic throughout: 400 pings 50 ms apart (20 s), from the probe through its links.
ip netns exec "$(ns probe)" ping -i 0.05 -c 400 -W 1 100.64.0.1 >"$work/ping.out" 2>&1 &
ping_pid=$!
BYST_NS_PIDS+=($ping_pid)
sleep 2
before_other=$(farm_reconnects '^b([1-9][0-9]+)$')

# Reload 1: one peer more. Nothing else changes.
cp "$work/hub-plus.toml" "$work/hub.toml"
start=$(date +%s%N)
ip netns exec "$(ns hub)" "$BYST" reload --socket "$work/hub.sock" >"$work/reload1.out" 2>&1 || fail "reload 1: $(cat "$work/reload1.out")"
echo "reload adding a peer: $(( ($(date +%s%N) - start) / 1000000 )) ms: $(cat "$work/reload1.out")"
grep -q "added b$peers" "$work/reload1.out" || fail "reload 1 did not add b$peers: $(cat "$work/reload1.out")"
sleep 3
[ "$(hub_metric byst_peer_links)" -eq "$want" ] || fail "links changed after adding a peer: $(hub_metric byst_peer_links), expected $want"

# Reload 2: the first 10 peers (live ones) removed: their links go, nobody else's.
cp "$work/hub-minus.toml" "$work/hub.toml"
start=$(date +%s%N)
ip netns exec "$(ns hub)" "$BYST" reload --socket "$work/hub.sock" >"$work/reload2.out" 2>&1 || fail "reload 2: $(cat "$work/reload2.out")"
echo "reload removing 10 live peers: $(( ($(date +%s%N) - start) / 1000000 )) ms: $(cat "$work/reload2.out")"
want=$((want - 10))
for _ in $(seq 1 50); do [ "$(hub_metric byst_peer_links)" -eq "$want" ] && break; sleep 0.2; done
[ "$(hub_metric byst_peer_links)" -eq "$want" ] || fail "$(hub_metric byst_peer_links) links after removing 10 peers, expected $want"

# The big hub's status views, while the pings go on.
summary=$(ip netns exec "$(ns hub)" "$BYST" status --summary --socket "$work/hub.sock") || fail "status --summary failed"
grep -q "peers: $((peers + 1 - 10)) configured, $((live - 10 + 1)) up, $want links" <<<"$summary" || fail "status --summary: $summary"
ip netns exec "$(ns hub)" "$BYST" status --peer "$probe_key" --socket "$work/hub.sock" | grep -q "links: 2 up" || fail "status --peer $probe_key"
ip netns exec "$(ns hub)" "$BYST" status --json --socket "$work/hub.sock" >"$work/status.json"
echo "status: summary, one peer, and the full JSON ($(wc -c <"$work/status.json") bytes)"

wait "$ping_pid" || true
loss=$(grep -oE '[0-9.]+% packet loss' "$work/ping.out" || echo "no ping summary")
echo "probe pings during the reloads: $loss, $(grep -oE 'rtt [^ ]+ = [^ ]+' "$work/ping.out" || true)"
[ "$loss" = "0% packet loss" ] || fail "pings lost during the reloads: $loss"
after_other=$(farm_reconnects '^b([1-9][0-9]+)$')
removed=$(farm_reconnects '^b[0-9]$')
[ "$after_other" -eq "$before_other" ] || fail "peers that stayed redialled during the reloads: $before_other → $after_other reconnects"
[ "$removed" -gt 0 ] || fail "the removed peers' links were not refused (no redials)"
! grep -q "dead link" "$work/hub.log" || fail "the hub declared links dead: $(grep -m3 "dead link" "$work/hub.log")"
echo "PASS: no link dropped but the removed peers' ($removed refused redials), no ping lost"
