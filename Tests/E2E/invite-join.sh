#!/usr/bin/env bash
# Invitations (issue 25 point 4): a hub with a TUN invites two branches with `byst invite`;
# each branch is set up by piping the line into `byst join` in its own directory, then
# started. Pings cross the TUNs both ways and `byst status` shows each peer's links up. The
# second branch is invited while the hub runs, and `byst reload` applies it. A line cut short
# is refused by `byst join` and writes nothing.
#
#   ┌───── ns a (branch1) ─────┐          ┌──────── ns h (hub) ────────┐
#   │ byst0 10.0.0.2/24        │  2 links │ byst0 10.0.0.1/24          │
#   │ v-a-h 192.168.245.1/24 ──┼── veth ──┼─ v-h-a 192.168.245.2/24    │
#   └──────────────────────────┘          │                            │
#   ┌───── ns b (branch2) ─────┐  4 links │                            │
#   │ byst0 10.0.0.3/24        │          │                            │
#   │ v-b-h 192.168.246.1/24 ──┼── veth ──┼─ v-h-b 192.168.246.2/24    │
#   └──────────────────────────┘          └────────────────────────────┘
set -euo pipefail
cd "$(dirname "$0")/../.."
BYST=${BYST_BINARY:-$PWD/.build/debug/byst}
source deploy/netns/lib.sh
netns_require ping timeout jq
trap netns_cleanup EXIT INT TERM
fail() { echo "FAIL: $*" >&2; for log in "$BYST_NS_WORK"/*.log; do echo "--- $log" >&2; tail -15 "$log" >&2; done; exit 1; }

netns_add h
netns_add a
netns_add b
netns_veth a 192.168.245.1/24 h 192.168.245.2/24
netns_veth b 192.168.246.1/24 h 192.168.246.2/24
mkdir -p "$BYST_NS_WORK/hub" "$BYST_NS_WORK/branch1" "$BYST_NS_WORK/branch2"
hub_config=$BYST_NS_WORK/hub/hub.toml
cat >"$hub_config" <<TOML
[node]
name = "hub"
listen = ["192.168.245.2:7000", "192.168.246.2:7000"]
control_socket = "$BYST_NS_WORK/hub/hub.sock"
key_store = "$BYST_NS_WORK/hub/keys"
[tun]
address = ["10.0.0.1/24"]
TOML
chmod 600 "$hub_config"

# join_branch NAME: the invitation on standard input, joined in the branch's own directory
# (relative paths, written absolute into its config).
join_branch() {
    (cd "$BYST_NS_WORK/$1" && "$BYST" join -c "$1.toml" --store keys --control-socket "$1.sock")
}

# A line cut short: refused, nothing written.
"$BYST" invite branch1 --endpoint byst://192.168.245.2:7000 --address 10.0.0.2 --links 2 -c "$hub_config" \
    2>"$BYST_NS_WORK/invite1.log" >"$BYST_NS_WORK/line1" || fail "byst invite branch1: $(cat "$BYST_NS_WORK/invite1.log")"
[ "$(wc -l <"$BYST_NS_WORK/line1")" = 1 ] && grep -q '^bystinv1_' "$BYST_NS_WORK/line1" || fail "byst invite did not print one bystinv1_ line"
if head -c 60 "$BYST_NS_WORK/line1" | join_branch branch1 2>"$BYST_NS_WORK/join-cut.log"; then fail "a cut line was accepted"; fi
grep -q "checksum does not match" "$BYST_NS_WORK/join-cut.log" || fail "cut line: $(cat "$BYST_NS_WORK/join-cut.log")"
[ -z "$(ls -A "$BYST_NS_WORK/branch1")" ] || fail "a refused line left files: $(ls "$BYST_NS_WORK/branch1")"
echo "ok: a cut invitation is refused and writes nothing"

join_branch branch1 <"$BYST_NS_WORK/line1" >"$BYST_NS_WORK/join1.log" 2>&1 || fail "byst join branch1: $(cat "$BYST_NS_WORK/join1.log")"
grep -q "byst up -c $BYST_NS_WORK/branch1/branch1.toml" "$BYST_NS_WORK/join1.log" || fail "join did not say how to start: $(cat "$BYST_NS_WORK/join1.log")"
[ "$(stat -c %a "$BYST_NS_WORK/branch1/branch1.toml")" = 600 ] && [ "$(stat -c %a "$BYST_NS_WORK/branch1/keys")" = 600 ] ||
    fail "join wrote files others can read"
"$BYST" check -c "$BYST_NS_WORK/branch1/branch1.toml" >"$BYST_NS_WORK/check1.log" 2>&1 || fail "byst check of the joined config: $(cat "$BYST_NS_WORK/check1.log")"
echo "ok: byst invite | byst join wrote the branch's key and config (0600), byst check passes"

# Each daemon bounded in time; netns_cleanup stops them by PID.
netns_run h "$BYST_NS_WORK/hub.log" timeout 120 "$BYST" up -c "$hub_config" >/dev/null
netns_run a "$BYST_NS_WORK/branch1.log" timeout 120 "$BYST" up -c "$BYST_NS_WORK/branch1/branch1.toml" >/dev/null
links() { "$BYST" status --json -c "$BYST_NS_WORK/$1/$1.toml" 2>/dev/null | grep -c '"remote"'; }
two_links() { [ "$(links "$1")" = 2 ]; }
wait_for 15 two_links branch1 || fail "branch1 did not get its 2 links"
ip netns exec "$(ns a)" ping -c 3 -i 0.2 -W 2 10.0.0.1 >/dev/null || fail "ping branch1 → hub"
ip netns exec "$(ns h)" ping -c 3 -i 0.2 -W 2 10.0.0.2 >/dev/null || fail "ping hub → branch1"
echo "ok: pings between hub and branch1 over the TUNs"

# The second branch while the hub runs: invite, reload, join, start.
"$BYST" invite branch2 --endpoint byst://192.168.246.2:7000 --address 10.0.0.3 -c "$hub_config" 2>"$BYST_NS_WORK/invite2.log" |
    join_branch branch2 >"$BYST_NS_WORK/join2.log" 2>&1 || fail "byst invite branch2 | byst join: $(cat "$BYST_NS_WORK/invite2.log" "$BYST_NS_WORK/join2.log")"
"$BYST" reload -c "$hub_config" >/dev/null || fail "byst reload of the hub"
netns_run b "$BYST_NS_WORK/branch2.log" timeout 120 "$BYST" up -c "$BYST_NS_WORK/branch2/branch2.toml" >/dev/null
four_links() { [ "$(links "$1")" = 4 ]; }
wait_for 15 four_links branch2 || fail "branch2 did not get its 4 links"
ip netns exec "$(ns b)" ping -c 3 -i 0.2 -W 2 10.0.0.1 >/dev/null || fail "ping branch2 → hub"
ip netns exec "$(ns h)" ping -c 3 -i 0.2 -W 2 10.0.0.3 >/dev/null || fail "ping hub → branch2"
echo "ok: branch2 invited while the hub runs (byst reload), pings over the TUNs"

# byst status: on the hub, each branch with an active session and its links; on a branch, the hub.
"$BYST" status --json -c "$hub_config" >"$BYST_NS_WORK/status-hub.json" || fail "byst status on the hub"
"$BYST" status --json -c "$BYST_NS_WORK/branch1/branch1.toml" >"$BYST_NS_WORK/status-branch1.json" || fail "byst status on branch1"
# peer_links FILE NAME: the links of the peer's active sessions.
peer_links() { jq --arg n "$2" '[.peers[] | select(.name == $n) | .sessions[] | select(.state == "active") | .links[]] | length' "$1"; }
[ "$(peer_links "$BYST_NS_WORK/status-hub.json" branch1)" = 2 ] || fail "hub status does not show branch1 up: $(cat "$BYST_NS_WORK/status-hub.json")"
[ "$(peer_links "$BYST_NS_WORK/status-hub.json" branch2)" = 4 ] || fail "hub status does not show branch2 up: $(cat "$BYST_NS_WORK/status-hub.json")"
[ "$(peer_links "$BYST_NS_WORK/status-branch1.json" hub)" = 2 ] || fail "branch1 status does not show the hub up: $(cat "$BYST_NS_WORK/status-branch1.json")"
# The human view names each peer with its links.
"$BYST" status -c "$hub_config" | grep -q "^peer branch2$" || fail "byst status (text) does not list branch2"
echo "ok: byst status shows each peer with an active session and its links"
