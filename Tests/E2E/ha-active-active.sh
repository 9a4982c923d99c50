#!/usr/bin/env bash
# Active/active HA with the embedded registry: two hubs, two ports, each hub preferring one
# (topology: Tests/E2E/lib/ha.sh, plus a second branch "br2" following port hq-2):
#   hub-a: [ha] ports = ["hq-1", "hq-2"]     branch  (ns br)  follows port:hq-1
#   hub-b: [ha] ports = ["hq-2", "hq-1"]     branch2 (ns br2) follows port:hq-2
# The hubs tell their branches apart by [[peer]] ha_port.
#   1. each hub serves its preferred port; both branch LANs reach the hub LAN.
#   2. deny by default: branch2's key dialing hub-a (not active for hq-2) gets no link.
#   3. kill -9 hub-a during a ping: hub-b takes hq-1 and serves both branches.
#   4. hub-a comes back: hq-1 moves back exactly once (after the 3 s hold), hq-2 never moves,
#      and nothing moves in the 6 s after.
set -euo pipefail
cd "$(dirname "$0")/../.."
BYST=${BYST_BINARY:-$PWD/.build/debug/byst}
source deploy/netns/lib.sh
source Tests/E2E/lib/ha.sh
netns_require ping python3
trap netns_cleanup EXIT INT TERM
fail() { echo "FAIL: $*" >&2; for log in "$BYST_NS_WORK"/*.log; do echo "--- $log" >&2; tail -12 "$log" >&2; done; exit 1; }
lease_ms=3000
W=$BYST_NS_WORK

ha_setup embedded 3s
# The second branch: its own registry-side subnet and a veth to each hub; it reaches the
# hubs' advertised addresses (192.168.50.1, 192.168.51.1) through those veths.
netns_add br2
netns_veth r 10.9.4.1/24 br2 10.9.4.2/24
netns_veth ha 192.168.52.1/24 br2 192.168.52.2/24
netns_veth hb 192.168.53.1/24 br2 192.168.53.2/24
netns_lan br2 10.3.0.1/24
ip -n "$(ns br2)" route add 192.168.50.1/32 via 192.168.52.1
ip -n "$(ns br2)" route add 192.168.51.1/32 via 192.168.53.1
byst_keys ha br2
"$BYST" key export br2 --store "$W/ha.keys" | "$BYST" key import br2 --store "$W/hb.keys" >/dev/null
byst_keys r br2

# Two ports: hub-a prefers hq-1, hub-b hq-2; each hub knows which port each branch is on.
for hub in ha hb; do
    case $hub in ha) ports='["hq-1", "hq-2"]' ;; hb) ports='["hq-2", "hq-1"]' ;; esac
    # Each port's LAN address follows the gateway active for it (hq-2's: 10.2.0.4).
    sed -i -e "s/^port = \"hq\"$/ports = $ports/" -e 's/^name = "branch"$/name = "branch"\nha_port = "hq-1"/' \
        -e 's#^address = \["10.2.0.1/24 dev lan0", "fd00:2::1/64 dev lan0"\]$#address = ["10.2.0.1/24 dev lan0 port hq-1", "fd00:2::1/64 dev lan0 port hq-1", "10.2.0.4/24 dev lan0 port hq-2", "fd00:2::4/64 dev lan0 port hq-2"]#' \
        "$W/$hub.toml"
    cat >>"$W/$hub.toml" <<TOML
[[peer]]
name = "branch2"
key = "br2"
ha_port = "hq-2"
allowed_ips = ["10.0.0.3/32", "10.3.0.0/24"]
TOML
done
sed -i 's/^name = "hub-hb"$/name = "hub-hb"\nmetrics_listen = ["127.0.0.1:9100"]/' "$W/hb.toml"
sed -i 's/^ports = \["hq"\]$/ports = ["hq-1", "hq-2"]/' "$W/r.toml"
printf '[[peer]]\nname = "branch2"\nkey = "br2"\n' >>"$W/r.toml"
sed -i 's/^endpoint = "port:hq"$/endpoint = "port:hq-1"/' "$W/br.toml"
sed -e 's/^name = "branch"$/name = "branch2"/' -e "s#$W/br\.#$W/br2.#g" -e 's#10\.0\.0\.2/24#10.0.0.3/24#' \
    -e 's/^endpoint = "port:hq-1"$/endpoint = "port:hq-2"/' -e 's#byst://10\.9\.3\.1:7100#byst://10.9.4.1:7100#' \
    "$W/br.toml" >"$W/br2.toml"
grep -q 'port:hq-2' "$W/br2.toml" && grep -q 'ha_port = "hq-1"' "$W/ha.toml" && grep -q '10.2.0.4/24 dev lan0 port hq-2' "$W/hb.toml" ||
    fail "the active/active configs were not written"
ip -n "$(ns sv)" route add 10.3.0.0/24 via 10.2.0.4

reaches() {  # reaches NS LAN-ADDRESS PORT-ADDRESS: the hub LAN address of the branch's port answers from that branch LAN
    ip netns exec "$(ns "$1")" ping -c 1 -W 1 -I "$2" "$3" >/dev/null 2>&1
}
settled() {  # each hub active for its preferred port only
    ha_is ha active hq-1 && ha_is ha standby hq-2 && ha_is hb active hq-2 && ha_is hb standby hq-1
}
# active_count NODE PORT: how often NODE's current process became active for PORT.
# metric NAME LABELS: hub-b's sample of NAME{LABELS} (e.g. port="hq-1",role="active").
metric() {
    ip netns exec "$(ns hb)" curl -s -m 2 http://127.0.0.1:9100/metrics | python3 -c '
import re, sys
name, labels = sys.argv[1], sorted(sys.argv[2].split(","))
for line in sys.stdin:
    m = re.match(r"(\w+)\{(.*)\} (\S+)$", line.strip())
    if m and m.group(1) == name and sorted(m.group(2).split(",")) == labels: print(int(float(m.group(3))))' "$1" "$2"
}
active_count() {
    ha_port_field "$1" recent "$2" | python3 -c 'import json,sys; print(sum(t["role"] == "active" for t in json.load(sys.stdin)))'
}

ha_start_registry
ha_start ha; a=$HA_PID
ha_start hb; b=$HA_PID
ha_start br
ha_start br2
wait_for 20 settled || fail "the hubs did not settle on their preferred ports (a: $(ha_role ha hq-1)/$(ha_role ha hq-2), b: $(ha_role hb hq-1)/$(ha_role hb hq-2))"
wait_for 15 reaches br 10.1.0.1 10.2.0.1 || fail "branch (hq-1) does not reach the hub LAN"
wait_for 15 reaches br2 10.3.0.1 10.2.0.4 || fail "branch2 (hq-2) does not reach the hub LAN"
echo "ok: hub-a serves hq-1, hub-b serves hq-2; both branch LANs reach the hub LAN"

# Deny by default: branch2's key, dialing hub-a directly, is refused there after its
# handshake (hub-a is not active for hq-2), and it never gets a link up.
cat >"$W/rogue.toml" <<TOML
[node]
name = "rogue"
control_socket = "$W/rogue.sock"
key_store = "$W/br2.keys"
[[peer]]
name = "hq"
key = "ha"
endpoint = "byst://192.168.50.1:7000"
links = 1
TOML
netns_run br2 "$W/rogue.log" "$BYST" up -c "$W/rogue.toml" >/dev/null
rogue=$BYST_NS_LAST_PID
denied() { grep -q "peer 'branch2' is served by HA port 'hq-2', which this gateway is not active for" "$W/ha.log"; }
wait_for 10 denied || fail "hub-a did not refuse branch2's link (it is not active for hq-2)"
# The refused link may show as up at the dialer for a moment before hub-a closes it.
rogue_links() { "$BYST" status --json --socket "$W/rogue.sock" | python3 -c 'import json,sys; print(json.load(sys.stdin)["peers"][0]["links_up"])'; }
rogue_down() { [ "$(rogue_links)" = 0 ]; }
wait_for 5 rogue_down || fail "branch2's key kept $(rogue_links) link(s) up at hub-a, which is not active for hq-2"
kill "$rogue"; wait "$rogue" 2>/dev/null || true
echo "ok: hub-a refused a link for branch2 (port hq-2 is hub-b's)"

b_hq1=$(ha_transitions hb hq-1) b_hq2=$(ha_transitions hb hq-2)
# (A hub that starts a moment before the other may hold both ports until the hand-back.)
b_hq1_active=$(metric byst_ha_transitions_total 'port="hq-1",role="active"') b_hq2_active=$(metric byst_ha_transitions_total 'port="hq-2",role="active"')
[ -n "$b_hq2_active" ] || fail "hub-b exports no byst_ha_transitions_total for hq-2"

# 3. kill -9 hub-a: hub-b takes hq-1 too.
ms=$(ha_measure_failover "$a")
[ -n "$ms" ] || fail "no traffic from the hq-1 branch through hub-b within 11 s of killing hub-a"
echo "failover of hq-1 after kill -9 of hub-a: ${ms} ms without replies"
[ "$ms" -lt 1500 ] || fail "failover took ${ms} ms (≥ 1.5 s: the close grace did not release hq-1)"
wait "$a" 2>/dev/null || true
ha_is hb active hq-1 && ha_is hb active hq-2 || fail "hub-b is not active for both ports after hub-a died"
wait_for 10 reaches br2 10.3.0.1 10.2.0.4 || fail "branch2 lost the hub LAN when hub-a died"
[ "$(ha_transitions hb hq-1)" = $((b_hq1 + 1)) ] || fail "hub-b hq-1: $(ha_transitions hb hq-1) transitions, expected $((b_hq1 + 1))"
[ "$(metric byst_ha_active 'port="hq-1"')" = 1 ] && [ "$(metric byst_ha_active 'port="hq-2"')" = 1 ] ||
    fail "hub-b's byst_ha_active is not 1 for both ports"
[ "$(metric byst_ha_transitions_total 'port="hq-1",role="active"')" = $((${b_hq1_active:-0} + 1)) ] || fail "hub-b's hq-1 activations metric did not grow by one"
echo "ok: all branches on hub-b (metrics: byst_ha_active 1 for hq-1 and hq-2)"

# 4. hub-a returns: within the 3 s hold nothing moves; then hq-1 moves back once.
ping_log="$W/handback.ping"
ip netns exec "$(ns br)" ping -D -n -i 0.02 -W 1 -w 12 -I 10.1.0.1 10.2.0.1 >"$ping_log" 2>&1 &
pinger=$!
ha_start ha; a=$HA_PID
wait_for 5 ha_is ha standby hq-1 || fail "hub-a did not come back as standby for hq-1"
returned=$(date +%s%N)
wait_for 10 ha_is ha active hq-1 || fail "hub-a did not get hq-1 back"
took=$(( ($(date +%s%N) - returned) / 1000000 ))
echo "hq-1 moved back ${took} ms after hub-a was standby again (hold 3 s)"
[ "$took" -ge 2000 ] || fail "hq-1 moved back after ${took} ms: the 3 s hold was not kept"
wait "$pinger" || true
gap=$(python3 - "$ping_log" <<'PY'
import re, sys
t = [float(m.group(1)) for m in (re.match(r"\[(\d+\.\d+)\].*bytes from", l) for l in open(sys.argv[1])) if m]
print(int(max(b - a for a, b in zip(t, t[1:])) * 1000) if len(t) > 1 else "")
PY
)
echo "hand-back of hq-1: longest gap between replies on the hq-1 branch ${gap:-?} ms"
wait_for 10 reaches br 10.1.0.1 10.2.0.1 || fail "branch (hq-1) does not reach the hub LAN after the hand-back"
reaches br2 10.3.0.1 10.2.0.4 || fail "branch2 (hq-2) lost the hub LAN during the hand-back"
sleep 6  # twice the hold: nothing may move again
ha_is ha active hq-1 && ha_is ha standby hq-2 && ha_is hb active hq-2 && ha_is hb standby hq-1 ||
    fail "roles changed after the hand-back (a: $(ha_role ha hq-1)/$(ha_role ha hq-2), b: $(ha_role hb hq-1)/$(ha_role hb hq-2))"
[ "$(ha_transitions hb hq-1)" = $((b_hq1 + 2)) ] || fail "hub-b hq-1: $(ha_transitions hb hq-1) transitions, expected $((b_hq1 + 2)) (one hand-back)"
[ "$(active_count ha hq-1)" = 1 ] || fail "hub-a became active for hq-1 $(active_count ha hq-1) times, expected once"
[ "$(metric byst_ha_active 'port="hq-1"')" = 0 ] || fail "hub-b's byst_ha_active for hq-1 is not 0 after the hand-back"
[ "$(metric byst_ha_transitions_total 'port="hq-2",role="active"')" = "$b_hq2_active" ] || fail "hub-b's hq-2 activations metric changed"
[ "$(ha_transitions hb hq-2)" = "$b_hq2" ] || fail "hq-2 moved: hub-b had $b_hq2 transitions for it, now $(ha_transitions hb hq-2)"
[ "$(active_count ha hq-2)" = 0 ] || fail "the restarted hub-a became active for hq-2"
grep -q "handing the port back to its preferred gateway" "$W/hb.log" || fail "hub-b's log does not say it handed hq-1 back"
for field in "ha hq-1 hub-ha" "ha hq-2 hub-hb" "hb hq-1 hub-ha" "hb hq-2 hub-hb"; do
    set -- $field
    [ "$(ha_port_field "$1" owner "$2")" = "$3" ] || fail "$1 says $2 is owned by '$(ha_port_field "$1" owner "$2")', not $3"
done
"$BYST" status --socket "$W/hb.sock" | grep -A3 "ha port" || fail "byst status on hub-b shows no HA ports"
echo "ok: hq-1 moved back to hub-a exactly once, hq-2 never moved, both branches reach the hub LAN"
