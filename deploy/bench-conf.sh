#!/usr/bin/env bash
# Writes DIR/a.conf and DIR/b.conf (plus key stores) for the BYST hook of scripts/bench/harness:
# A (10.98.0.1/24 on its TUN) dials B at 10.99.0.2:7000 (10.98.0.2/24) with LINKS links;
# OFFLOAD (true/false) sets both TUNs' `offload`, QUEUES their `queues`. HTTP_MODE (duplex,
# websocket, split, auto): A dials B over HTTP at 10.99.0.2:8080 in that mode instead.
#
#   deploy/bench-conf.sh DIR [LINKS] [OFFLOAD] [QUEUES] [HTTP_MODE]   (BYST_BIN names the byst binary)
set -euo pipefail
dir=$1 links=${2:-1} offload=${3:-true} queues=${4:-1} http_mode=${5:-}
endpoint='endpoint = "byst://10.99.0.2:7000"' http_listen=''
if [ -n "$http_mode" ]; then
    endpoint=$(printf 'endpoint = "http://10.99.0.2:8080/byst"\nhttp_mode = "%s"' "$http_mode")
    http_listen='http_listen = ["10.99.0.2:8080"]'
fi
byst=${BYST_BIN:?set BYST_BIN to the byst binary}
mkdir -p "$dir"
rm -f "$dir/a.keys" "$dir/b.keys"
"$byst" key gen a --store "$dir/b.keys" >/dev/null
"$byst" key export a --store "$dir/b.keys" | "$byst" key import b --store "$dir/a.keys" >/dev/null
cat >"$dir/b.conf" <<TOML
[node]
name = "bench-b"
listen = ["10.99.0.2:7000"]
$http_listen
control_socket = "$dir/b.sock"
key_store = "$dir/b.keys"
[tun]
name = "byst-b"
address = ["10.98.0.2/24"]
mtu = 1500
offload = $offload
queues = $queues
[[peer]]
name = "a"
key = "a"
allowed_ips = ["10.98.0.1/32"]
TOML
cat >"$dir/a.conf" <<TOML
[node]
name = "bench-a"
control_socket = "$dir/a.sock"
key_store = "$dir/a.keys"
[tun]
name = "byst-a"
address = ["10.98.0.1/24"]
mtu = 1500
offload = $offload
queues = $queues
[[peer]]
name = "b"
key = "b"
$endpoint
links = $links
allowed_ips = ["10.98.0.2/32"]
TOML
