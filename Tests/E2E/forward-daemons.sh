#!/usr/bin/env bash
# Two `byst up` daemons on loopback, a port forward between them, real iperf3 traffic,
# `byst status --json`, SIGHUP reload, graceful SIGTERM, systemd's readiness notifications
# (READY / RELOADING / STOPPING to $NOTIFY_SOCKET), and a bad config refused with its line number.
#
#   iperf3 -c ──▶ branch [[forward]] 127.0.0.1:F ══ 4 links ══▶ hub 127.0.0.1:H ──▶ iperf3 -s 127.0.0.1:T
#
# Loopback only; processes are stopped by PID; the work directory is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
byst=${BYST_BINARY:-$PWD/.build/debug/byst}
source scripts/lib/ports.sh
for tool in iperf3 "$byst"; do command -v "$tool" >/dev/null || { echo "FAIL: $tool not found" >&2; exit 1; }; done

work=$(mktemp -d /tmp/byst-e2e-fwd.$$.XXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT INT TERM
fail() { echo "FAIL: $*" >&2; for log in "$work"/*.log; do echo "--- $log" >&2; tail -20 "$log" >&2; done; exit 1; }

base=$(loopback_port_base 3)
target=$base hub_port=$((base + 1)) forward=$((base + 2))
"$byst" key gen branch --store "$work/hub.keys" >/dev/null
"$byst" key export branch --store "$work/hub.keys" | "$byst" key import hub --store "$work/branch.keys" >/dev/null

cat > "$work/hub.toml" <<TOML
[node]
name = "hub"
listen = ["127.0.0.1:$hub_port"]
control_socket = "$work/hub.sock"
key_store = "$work/hub.keys"

[[peer]]
name = "branch"
key = "branch"
allow_targets = ["127.0.0.1:$target"]
TOML
cat > "$work/branch.toml" <<TOML
[node]
name = "branch"
control_socket = "$work/branch.sock"
key_store = "$work/branch.keys"

[[peer]]
name = "hub"
key = "hub"
endpoint = "byst://127.0.0.1:$hub_port"
links = 4

[[forward]]
listen = "127.0.0.1:$forward"
peer = "hub"
target = "127.0.0.1:$target"
TOML

iperf3 -s -B 127.0.0.1 -p "$target" >"$work/iperf-server.log" 2>&1 & pids+=($!)
# The hub reports its states as under systemd's Type=notify: to a socket that plays systemd's
# part, one line per datagram (newlines inside a datagram shown as "|").
python3 -u -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("listening", flush=True)
while True:
    print(s.recv(4096).decode().replace("\n", "|"), flush=True)
' "$work/notify" >"$work/notify.log" 2>&1 & pids+=($!)
for _ in $(seq 1 50); do grep -q listening "$work/notify.log" && break; sleep 0.1; done
NOTIFY_SOCKET=$work/notify "$byst" up -c "$work/hub.toml" >"$work/hub.log" 2>&1 & hub=$!; pids+=($hub)
# The branch's NOTIFY_SOCKET names no socket: it warns and runs on.
NOTIFY_SOCKET=$work/nobody "$byst" up -c "$work/branch.toml" >"$work/branch.log" 2>&1 & branch=$!; pids+=($branch)

# Up to 10 s for the 4 links.
for _ in $(seq 1 100); do
    links=$("$byst" status --json --socket "$work/branch.sock" 2>/dev/null | grep -c '"remote"' || true)
    [ "$links" = 4 ] && break
    sleep 0.1
done
[ "$links" = 4 ] || fail "branch has $links links, expected 4"
grep -qx "READY=1|STATUS=node hub up" "$work/notify.log" || fail "the hub did not report READY=1: $(cat "$work/notify.log")"
grep -q "systemd: cannot send READY=1 to NOTIFY_SOCKET" "$work/branch.log" || fail "the branch did not warn that READY=1 could not be sent"

# Real traffic through the forward.
iperf3 -c 127.0.0.1 -p "$forward" -t 2 -J >"$work/iperf.json" || fail "iperf3 through the forward failed"
bps=$(awk -F'[:,]' '/"sum_received"/ { f = 1 } f && /"bits_per_second"/ { printf "%.0f", $2; exit }' "$work/iperf.json")
[ "${bps:-0}" -gt 10000000 ] || fail "iperf3 moved only ${bps:-0} bit/s"
echo "iperf3 through the forward: $((bps / 1000000)) Mbit/s"

# The RTT comes from the keepalive's ping frames (one interval, 1 s, after the link came up):
# up to 5 s for the first sample, as the loop is busy with the forward's traffic until now.
for _ in $(seq 1 50); do
    status=$("$byst" status --json --socket "$work/branch.sock")
    echo "$status" | grep -q '"rtt_ms"' && break
    sleep 0.1
done
echo "$status" | grep -q '"rtt_ms"' || fail "status has no RTT 5 s after the transfer: $status"
"$byst" status --socket "$work/hub.sock" | grep -q "session" || fail "human status shows no session"

# SIGHUP reloads: the hub re-reads its files and, with nothing changed, changes nothing.
kill -HUP "$hub"
for _ in $(seq 1 50); do grep -q "config reloaded: no changes" "$work/hub.log" && break; sleep 0.1; done
grep -q "config reloaded: no changes" "$work/hub.log" || fail "SIGHUP did not reload the hub"
[ "$("$byst" status --json --socket "$work/branch.sock" | grep -c '"remote"')" = 4 ] || fail "SIGHUP disturbed the links"
for _ in $(seq 1 50); do grep -q "config reloaded" "$work/notify.log" && break; sleep 0.1; done
grep -A1 "^RELOADING=1" "$work/notify.log" | tr '\n' ' ' | grep -qE "^RELOADING=1\|MONOTONIC_USEC=[0-9]+ READY=1\|STATUS=node hub up, config reloaded $" \
    || fail "the reload was not reported as RELOADING=1 then READY=1: $(cat "$work/notify.log")"

# Graceful stop: both daemons exit 0 within 5 s of SIGTERM.
kill -TERM "$branch" "$hub"
for pid in "$branch" "$hub"; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && fail "pid $pid still running 5 s after SIGTERM"
    wait "$pid" || fail "pid $pid exited with status $?"
done
grep -q "shutting down" "$work/hub.log" || fail "hub did not log its shutdown"
grep -qx "STOPPING=1" "$work/notify.log" || fail "the hub did not report STOPPING=1: $(cat "$work/notify.log")"

# A bad config is refused with the file and line, and a non-zero exit.
printf '[node]\nname = "x"\n\n[[peer]]\nname = "p"\nkey = "k"\nlinks = 0\n' >"$work/bad.toml"
if "$byst" up -c "$work/bad.toml" 2>"$work/bad.err"; then fail "bad config accepted"; fi
grep -q "bad.toml:7" "$work/bad.err" || fail "bad config error lacks the line: $(cat "$work/bad.err")"
echo "ok: forward, status, SIGHUP reload, graceful SIGTERM, systemd notifications, config error"
