#!/usr/bin/env bash
# BYST through TUN (release build) next to OpenVPN over TCP and UDP, wireguard-go and the
# raw veth path, all measured in the same run by ../shared/bench/anchors.sh (iperf3 TCP
# 1 and 4 streams, ping RTT). A benchmark, not a test: figures go to docs/PERFORMANCE.md.
#
#   bash scripts/bench-tun.sh [duration-seconds]     (default 10; as root)
#
# Traffic stays between the harness's own namespaces (10.99.0.0/24, 10.98.0.0/24).
set -euo pipefail
cd "$(dirname "$0")/.."
bench=${BYST_BENCH_DIR:-$PWD/../shared/bench}
[ -x "$bench/anchors.sh" ] || { echo "bench-tun: $bench/anchors.sh not found (set BYST_BENCH_DIR)" >&2; exit 1; }
apt-get install -y -qq iperf3 jq openvpn wireguard-go wireguard-tools python3 >/dev/null
swift build -c release --product byst >/dev/null
byst=$PWD/.build/release/byst
conf1=$(mktemp -d /tmp/byst-bench-1link.XXXX) conf4=$(mktemp -d /tmp/byst-bench-4links.XXXX)
trap 'rm -rf "$conf1" "$conf4"' EXIT
BYST_BIN=$byst deploy/bench-conf.sh "$conf1" 1
BYST_BIN=$byst deploy/bench-conf.sh "$conf4" 4
out=${OUT:-/tmp/byst-bench-tun-$(date -u +%Y%m%dT%H%M%S).jsonl}
export DURATION=${1:-10} OUT=$out PARTS="underlay peers"
# The hook runs one BYST variant per call; the other tunnels run in the first call only.
(cd "$bench" && BYST_BIN=$byst BYST_CONF=$conf1 BYST_NAME=byst-1link \
    BYST_CMD_A="$byst up -c $conf1/a.conf" BYST_CMD_B="$byst up -c $conf1/b.conf" \
    PEERS="openvpn-tcp openvpn-udp wireguard-go byst-1link" ./anchors.sh)
(cd "$bench" && BYST_BIN=$byst BYST_CONF=$conf4 BYST_NAME=byst-4links \
    BYST_CMD_A="$byst up -c $conf4/a.conf" BYST_CMD_B="$byst up -c $conf4/b.conf" \
    PARTS=peers PEERS="byst-4links" ./anchors.sh)
python3 "$bench/table.py" "$out"
echo "results: $out"
