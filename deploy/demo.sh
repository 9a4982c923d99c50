#!/usr/bin/env bash
# `byst demo`: two sites in network namespaces joined by BYST — TUN interfaces routing
# each site's LAN, 4 links, a generated key and a port forward — then ping, iperf3 and
# `byst status`. Everything is removed on exit, Ctrl-C included.
#
#   ┌──────── ns branch ────────┐          ┌────────── ns hq ───────────┐
#   │ lan0 10.1.0.1/24          │          │ lan0 10.2.0.1/24 (iperf3 -s)│
#   │ byst0 10.0.0.2/24 ════════╪═ 4 links ╪═ byst0 10.0.0.1/24          │
#   │ forward 127.0.0.1:15201 ──┼──stream──┼─▶ 10.2.0.1:5201             │
#   │ veth 192.168.240.2 ───────┼── veth ──┼─ 192.168.240.1:7000         │
#   └───────────────────────────┘          └────────────────────────────┘
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
BYST=${BYST_BINARY:-$(command -v byst || true)}
[ -x "$BYST" ] || { echo "demo: set BYST_BINARY to the byst binary" >&2; exit 1; }
source "$here/netns/lib.sh"
netns_require ping iperf3
trap netns_cleanup EXIT INT TERM
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "two namespaces joined by a veth pair"
netns_add hq
netns_add branch
netns_veth hq 192.168.240.1/24 branch 192.168.240.2/24
netns_lan hq 10.2.0.1/24
netns_lan branch 10.1.0.1/24

say "a fresh 256-bit key, exported by hq and imported by the branch"
"$BYST" key gen branch --store "$BYST_NS_WORK/hq.keys"
"$BYST" key export branch --store "$BYST_NS_WORK/hq.keys" | "$BYST" key import hq --store "$BYST_NS_WORK/branch.keys"

cat >"$BYST_NS_WORK/hq.toml" <<TOML
[node]
name = "hq"
listen = ["192.168.240.1:7000"]
control_socket = "$BYST_NS_WORK/hq.sock"
key_store = "$BYST_NS_WORK/hq.keys"
[tun]
address = ["10.0.0.1/24"]
[[peer]]
name = "branch"
key = "branch"
allowed_ips = ["10.0.0.2/32", "10.1.0.0/24"]
allow_targets = ["10.2.0.1:5201"]
TOML
cat >"$BYST_NS_WORK/branch.toml" <<TOML
[node]
name = "branch"
control_socket = "$BYST_NS_WORK/branch.sock"
key_store = "$BYST_NS_WORK/branch.keys"
[tun]
address = ["10.0.0.2/24"]
[[peer]]
name = "hq"
key = "hq"
endpoint = "byst://192.168.240.1:7000"
links = 4
allowed_ips = ["10.0.0.1/32", "10.2.0.0/24"]
[[forward]]
listen = "127.0.0.1:15201"
peer = "hq"
target = "10.2.0.1:5201"
TOML

say "the two generated configs"
for site in hq branch; do
    printf '\033[2m--- %s.toml (%s)\033[0m\n' "$site" "$BYST_NS_WORK/$site.toml"
    cat "$BYST_NS_WORK/$site.toml"
done

say "starting both nodes (byst up)"
netns_run hq "$BYST_NS_WORK/hq.log" "$BYST" up -c "$BYST_NS_WORK/hq.toml" >/dev/null
netns_run branch "$BYST_NS_WORK/branch.log" "$BYST" up -c "$BYST_NS_WORK/branch.toml" >/dev/null
four_links() { [ "$("$BYST" status --json --socket "$BYST_NS_WORK/branch.sock" 2>/dev/null | grep -c '"remote"')" = 4 ]; }
wait_for 10 four_links || { echo "demo: links did not come up; logs:" >&2; tail "$BYST_NS_WORK"/*.log >&2; exit 1; }

say "ping: from ns branch (its LAN 10.1.0.1) to ns hq's LAN (10.2.0.1), through the TUN tunnel"
ip netns exec "$(ns branch)" ping -c 4 -i 0.2 -I 10.1.0.1 10.2.0.1

say "iperf3 through the TUN tunnel, 3 s: client in ns branch (10.1.0.1) → server in ns hq (10.2.0.1:5201)"
netns_run hq "$BYST_NS_WORK/iperf.log" iperf3 -s -B 10.2.0.1 >/dev/null
sleep 0.5
ip netns exec "$(ns branch)" iperf3 -c 10.2.0.1 -B 10.1.0.1 -t 3 | tail -4

say "iperf3 through the port forward, 2 s: client in ns branch → 127.0.0.1:15201 (byst branch) → stream → byst hq → 10.2.0.1:5201"
ip netns exec "$(ns branch)" iperf3 -c 127.0.0.1 -p 15201 -t 2 | tail -4

# Right after the transfers: the rate covers the last seconds (the nodes sample every second).
say "byst status on the branch (its control socket; an installed node: byst status -n NAME)"
"$BYST" status --socket "$BYST_NS_WORK/branch.sock"

say "byst status on hq"
"$BYST" status --socket "$BYST_NS_WORK/hq.sock"

say "done: removing namespaces and processes"
