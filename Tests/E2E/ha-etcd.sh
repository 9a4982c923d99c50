#!/usr/bin/env bash
# HA failover with a 3-member etcd cluster as the registry (Debian's etcd-server, in its own
# namespace; topology: Tests/E2E/lib/ha.sh), secured as docs/OPERATIONS.md "etcd security"
# advises: TLS with client certificates (etcds://) and a user per node.
#   1. hub A active, hub B standby; the branch reaches the hub LAN through A.
#   1b. etcd refuses the branch's user writing or deleting the port key, and a client without
#      a token or without a certificate; the key still names hub A.
#   2. kill -9 hub A during a ping, then `byst ha release` as systemd's ExecStopPost runs it:
#      it revokes the dead process's lease, traffic resumes through hub B within 1 s.
#   3. hub A comes back as standby (no flap back).
#   3b. SIGTERM hub B (a clean stop revokes its lease): traffic through hub A within 1 s.
#   3c. kill -9 hub A with nothing after it (no systemd): etcd deletes the key when the TTL
#      runs out: traffic through hub B within lease + 1 s.
#   4. kill -9 the etcd *leader* (the hard case: writes stop until a new leader is elected,
#      ≈2.3 s with etcd's defaults): nothing changes (roles, transitions, traffic). The
#      lease (6 s) is chosen longer than an election plus a keepalive interval, as
#      docs/OPERATIONS.md advises for etcd.
#   5. cut hub B from etcd (not from the branch): B steps down *before* A becomes active
#      (the two transition timestamps are compared; any overlap fails), and traffic
#      resumes through A.
set -euo pipefail
cd "$(dirname "$0")/../.."
BYST=${BYST_BINARY:-$PWD/.build/debug/byst}
source deploy/netns/lib.sh
source Tests/E2E/lib/ha.sh
netns_require ping python3 curl etcd etcdctl openssl
trap netns_cleanup EXIT INT TERM
fail() { echo "FAIL: $*" >&2; for log in "$BYST_NS_WORK"/*.log; do echo "--- $log" >&2; tail -12 "$log" >&2; done; exit 1; }
lease_ms=6000

ha_setup etcds 6s
ha_start_topology
a=$HA_PID_A b=$HA_PID_B
echo "ok: hub A active, hub B standby (etcd over TLS, with users), branch LAN ↔ hub LAN through A"

# From the branch's namespace, as an attacker holding the branch's credentials would be.
key=$(printf /byst/ports/hq | base64) forged=$(printf 'branch\nbyst://10.9.3.2:7000' | base64 -w0)
url=$(ha_etcd_url 10.9.3.1 1)
branch_token=$(ha_etcd_token br branch) || fail "the branch's user cannot authenticate"
refusal() {  # refusal TOKEN PATH BODY: "<HTTP status> <etcd's message>"
    local auth=(); [ -z "$1" ] || auth=(-H "Authorization: $1")
    ha_etcd_curl br branch -m 5 -X POST "${auth[@]}" -w ' %{http_code}' "$url$2" -d "$3" |
        python3 -c 'import json,sys; body, _, status = sys.stdin.read().rpartition(" "); print(status, json.loads(body).get("message", body))'
}
put="{\"key\":\"$key\",\"value\":\"$forged\"}"
for attempt in "/v3/kv/put $put" "/v3/kv/deleterange {\"key\":\"$key\"}"; do
    answer=$(refusal "$branch_token" ${attempt%% *} "${attempt#* }")
    [ "$answer" = "403 etcdserver: permission denied" ] || fail "the branch's user was not refused ${attempt%% *}: $answer"
done
answer=$(refusal "" /v3/kv/put "$put")
[ "$answer" = "400 etcdserver: user name is empty" ] || fail "a write without a token was not refused: $answer"
ha_etcd_curl br "" -m 5 -X POST "$url/v3/kv/put" -d "$put" >/dev/null && fail "a client without a certificate was let in"
owner=$(ha_etcd_curl r root -m 5 -X POST -H "Authorization: $(ha_etcd_token r root)" "$(ha_etcd_url 127.0.0.1 1)/v3/kv/range" -d "{\"key\":\"$key\"}" |
    python3 -c 'import base64,json,sys; print(base64.b64decode(json.load(sys.stdin)["kvs"][0]["value"]).decode().split("\n")[0])')
[ "$owner" = hub-ha ] || fail "the port key names '$owner', not hub-ha"
echo "ok: etcd refused the branch's user (put, delete: 403), no token (400), no certificate; hq still names hub-ha"

ms=$(ha_measure_failover "$a" KILL ha)
echo "kill -9 of hub A + byst ha release (ExecStopPost): ${ms:-no} ms without replies"
[ -n "$ms" ] && [ "$ms" -lt 1000 ] || fail "failover after kill -9 + byst ha release took ${ms:-over 11 s} ms (≥ 1 s: the lease was not revoked)"
ha_is hb active || fail "hub B is not active after the failover"
grep -q "port 'hq' at etcd: ours: revoked lease" "$BYST_NS_WORK/ha.release" || fail "byst ha release did not revoke hub A's lease: $(cat "$BYST_NS_WORK/ha.release")"

wait "$a" 2>/dev/null || true
ha_start ha; a=$HA_PID
wait_for 10 ha_is ha standby || fail "hub A did not come back as standby"
transitions_a=$(ha_transitions ha) transitions_b=$(ha_transitions hb)
sleep $((2 * lease_ms / 1000))
ha_is hb active && ha_is ha standby || fail "roles changed after hub A came back"
echo "ok: traffic resumed through hub B; hub A came back as standby"

ms=$(ha_measure_failover "$b" TERM)
echo "SIGTERM of hub B (clean stop): ${ms:-no} ms without replies"
[ -n "$ms" ] && [ "$ms" -lt 1000 ] || fail "failover after a clean stop took ${ms:-over 11 s} ms (≥ 1 s: the lease was not revoked)"
ha_is ha active || fail "hub A is not active after hub B stopped"
wait "$b" 2>/dev/null || true
ha_start hb; b=$HA_PID
wait_for 10 ha_is hb standby || fail "hub B did not come back as standby"

ms=$(ha_measure_failover "$a" KILL)
echo "kill -9 of hub A, no ExecStopPost: ${ms:-no} ms without replies (lease $lease_ms ms)"
[ -n "$ms" ] && [ "$ms" -le $((lease_ms + 1000)) ] || fail "failover after kill -9 took ${ms:-over 11 s} ms (> lease + 1 s)"
ha_is hb active || fail "hub B is not active after hub A was killed"
wait "$a" 2>/dev/null || true
ha_start ha; a=$HA_PID
wait_for 10 ha_is ha standby || fail "hub A did not come back as standby"
ha_holds_vip hb && ! ha_holds_vip ha || fail "the virtual address is not on hub B alone"
transitions_a=$(ha_transitions ha) transitions_b=$(ha_transitions hb)
echo "ok: clean stop and kill -9 + release fail over within 1 s, a bare kill -9 within lease + 1 s"

leader=$(ha_etcd_leader) || fail "no etcd leader found"
kill -9 "${HA_ETCD_PIDS[$leader]}"
sleep $((2 * lease_ms / 1000))
ha_is hb active && ha_is ha standby || fail "roles changed after losing one etcd member"
[ "$(ha_transitions ha)/$(ha_transitions hb)" = "$transitions_a/$transitions_b" ] || fail "a hub changed role after losing one etcd member"
ha_branch_reaches || fail "the branch lost the hub LAN after losing one etcd member"
echo "ok: etcd leader (member $leader) killed: nothing changed"

ip -n "$(ns hb)" link set v-hb-r down
wait_for $((3 * lease_ms / 1000 + 5)) ha_is ha active || fail "hub A did not take over after hub B was cut from etcd"
ha_is hb standby || fail "hub B is still active although cut from etcd"
down=$(ha_transition_time hb standby) up=$(ha_transition_time ha active)
python3 -c "import sys; d, u = float(sys.argv[1]), float(sys.argv[2]); print(f'hub B stepped down {int((u - d) * 1000)} ms before hub A became active'); sys.exit(0 if d < u else 1)" "$down" "$up" \
    || fail "overlap: hub A became active at $up, before hub B stepped down at $down"
wait_for 10 ha_branch_reaches || fail "the branch does not reach the hub LAN through hub A"
echo "ok: hub B cut from etcd stepped down before hub A took over; traffic through hub A"
