#!/usr/bin/env bash
# Key rotation without downtime, with the operator's commands: while a ping flood runs
# through the tunnel and a 128 MiB file crosses a port forward, both ends rotate their key
# (`byst key rotate`, `byst key import`, `byst reload`, then `--finish` and `byst reload`).
# Zero pings lost, the file's SHA-256 equal, the links end on the new key id; then a
# reload that adds a peer leaves the running links alone.
#
#   ns a (branch) 192.168.242.1 ══ 2 links ══ ns h (hub) 192.168.242.2
#   10.0.0.2 ── ping ──▶ 10.0.0.1           forward a:F ──▶ h:T (socat)
set -euo pipefail
cd "$(dirname "$0")/../.."
BYST=${BYST_BINARY:-$PWD/.build/debug/byst}
source deploy/netns/lib.sh
netns_require ping socat sha256sum
trap netns_cleanup EXIT INT TERM
fail() { echo "FAIL: $*" >&2; for log in "$BYST_NS_WORK"/*.log; do echo "--- $log" >&2; tail -15 "$log" >&2; done; exit 1; }

netns_add a
netns_add h
netns_veth a 192.168.242.1/24 h 192.168.242.2/24
byst_keys h a   # the hub's key "a" is the branch's key "h"

cat >"$BYST_NS_WORK/h.toml" <<TOML
[node]
name = "hub"
listen = ["192.168.242.2:7000"]
control_socket = "$BYST_NS_WORK/h.sock"
key_store = "$BYST_NS_WORK/h.keys"
[tun]
address = ["10.0.0.1/24"]
[[peer]]
name = "a"
key = "a"
allow_targets = ["10.0.0.1:9000"]
allowed_ips = ["10.0.0.2/32"]
TOML
cat >"$BYST_NS_WORK/a.toml" <<TOML
[node]
name = "branch"
control_socket = "$BYST_NS_WORK/a.sock"
key_store = "$BYST_NS_WORK/a.keys"
[tun]
address = ["10.0.0.2/24"]
[[peer]]
name = "hub"
key = "h"
endpoint = "byst://192.168.242.2:7000"
links = 2
allowed_ips = ["10.0.0.1/32"]
[[forward]]
listen = "127.0.0.1:9100"
peer = "hub"
target = "10.0.0.1:9000"
TOML

netns_run h "$BYST_NS_WORK/h.log" "$BYST" up -c "$BYST_NS_WORK/h.toml" >/dev/null
netns_run a "$BYST_NS_WORK/a.log" "$BYST" up -c "$BYST_NS_WORK/a.toml" >/dev/null
status_a() { "$BYST" status --json --socket "$BYST_NS_WORK/a.sock"; }
two_links() { [ "$(status_a | grep -c '"remote"')" = 2 ]; }
wait_for 10 two_links || fail "the branch did not get 2 links"
reconnects() { status_a | awk -F'[:,]' '/"reconnects"/ { gsub(/ /, "", $2); print $2; exit }'; }
reconnects_before=$(reconnects)
old_id=$(status_a | grep -oE '"key_id" *: *"[0-9a-f]+"' | head -1 | grep -oE '[0-9a-f]{16}')

head -c $((128 << 20)) /dev/urandom >"$BYST_NS_WORK/payload"
want=$(sha256sum <"$BYST_NS_WORK/payload" | cut -d' ' -f1)
netns_run h "$BYST_NS_WORK/sink.log" socat -u TCP-LISTEN:9000,bind=10.0.0.1,reuseaddr OPEN:"$BYST_NS_WORK/received",creat,trunc >/dev/null
sleep 0.3
ip netns exec "$(ns a)" ping -c 200 -i 0.03 -W 2 10.0.0.1 >"$BYST_NS_WORK/ping.out" 2>&1 & pinger=$!
ip netns exec "$(ns a)" socat -u FILE:"$BYST_NS_WORK/payload" TCP:127.0.0.1:9100 & sender=$!
sleep 0.5

# The rotation, as an operator does it.
"$BYST" key rotate a --store "$BYST_NS_WORK/h.keys" >"$BYST_NS_WORK/rotate.out"
exported=$(grep -oE 'bystk1_[A-Za-z0-9_-]+' "$BYST_NS_WORK/rotate.out")
"$BYST" reload --socket "$BYST_NS_WORK/h.sock" | grep -q "new keys for a" || fail "hub reload did not take the new key"
echo "$exported" | "$BYST" key import h.next --store "$BYST_NS_WORK/a.keys" >/dev/null
"$BYST" reload --socket "$BYST_NS_WORK/a.sock" | grep -q "new keys for hub" || fail "branch reload did not take the new key"
new_id=$("$BYST" key list --store "$BYST_NS_WORK/a.keys" | awk '$1 == "h.next" { print $2 }')
on_new_key() { [ "$(status_a | grep -c "\"key_id\" : \"$new_id\"")" = 2 ]; }
wait_for 10 on_new_key || fail "links did not move to the new key $new_id"
"$BYST" key rotate a --finish --store "$BYST_NS_WORK/h.keys" >/dev/null
"$BYST" key rotate h --finish --store "$BYST_NS_WORK/a.keys" >/dev/null
"$BYST" reload --socket "$BYST_NS_WORK/h.sock" >/dev/null
"$BYST" reload --socket "$BYST_NS_WORK/a.sock" >/dev/null
echo "rotated: key id $old_id → $new_id"

wait "$sender" || fail "the file transfer failed"
wait "$pinger" || true
for _ in $(seq 1 50); do [ "$(stat -c %s "$BYST_NS_WORK/received" 2>/dev/null || echo 0)" = $((128 << 20)) ] && break; sleep 0.1; done
[ "$(sha256sum <"$BYST_NS_WORK/received" | cut -d' ' -f1)" = "$want" ] || fail "file SHA-256 differs after the rotation"
grep -q " 0% packet loss" "$BYST_NS_WORK/ping.out" || fail "pings lost during the rotation: $(grep 'packet loss' "$BYST_NS_WORK/ping.out")"
status_a | grep -q "\"key_id\" : \"$old_id\"" && fail "a link still uses the old key"
[ "$(reconnects)" = "$reconnects_before" ] || fail "links were dropped, not replaced"
echo "ok: rotation under load: $(grep -oE '[0-9]+ packets transmitted, [0-9]+ received' "$BYST_NS_WORK/ping.out"), 128 MiB SHA-256 equal, no reconnect"

# A reload that adds a peer leaves the running links alone.
links_before=$(status_a | grep -oE '"id" : [0-9]+' | sort | tr '\n' ' ')
"$BYST" key gen extra --store "$BYST_NS_WORK/a.keys" >/dev/null
cp "$BYST_NS_WORK/a.toml" "$BYST_NS_WORK/a.before-extra"
printf '\n[[peer]]\nname = "extra"\nkey = "extra"\nallowed_ips = ["10.9.0.0/24"]\n' >>"$BYST_NS_WORK/a.toml"
"$BYST" reload --socket "$BYST_NS_WORK/a.sock" | grep -q "added extra" || fail "reload did not add the peer"
[ "$(status_a | grep -oE '"id" : [0-9]+' | sort | tr '\n' ' ')" = "$links_before" ] || fail "adding a peer touched the running links"
ip -n "$(ns a)" route show 10.9.0.0/24 | grep -q byst0 || fail "the added peer's allowed_ips route is missing"
cp "$BYST_NS_WORK/a.before-extra" "$BYST_NS_WORK/a.toml"
"$BYST" reload --socket "$BYST_NS_WORK/a.sock" | grep -q "removed extra" || fail "reload did not remove the peer"
[ -z "$(ip -n "$(ns a)" route show 10.9.0.0/24)" ] || fail "the removed peer's route is still there"
printf '[node]\nname = "branch"\nlinks = 3\n' >"$BYST_NS_WORK/bad.toml"
cp "$BYST_NS_WORK/a.toml" "$BYST_NS_WORK/a.good"
cp "$BYST_NS_WORK/bad.toml" "$BYST_NS_WORK/a.toml"
if "$BYST" reload --socket "$BYST_NS_WORK/a.sock" 2>"$BYST_NS_WORK/reload.err"; then fail "a bad config was accepted"; fi
grep -q "a.toml:3" "$BYST_NS_WORK/reload.err" || fail "reload error lacks the line: $(cat "$BYST_NS_WORK/reload.err")"
two_links || fail "a refused reload disturbed the links"
echo "ok: reload added and removed a peer (and its route) without touching links; a bad config was refused with its line"
