#!/usr/bin/env bash
# BYST through TUN (release build) next to OpenVPN over TCP and UDP, wireguard-go and the
# raw veth path, all measured in the same run by scripts/bench/harness/anchors.sh (iperf3 TCP
# 1 and 4 streams, ping RTT): BYST with 1 and 4 links, with TUN offloads on (the default)
# and forced off, and with two TUN queues; for each iperf3 run the CPU seconds both tunnel
# daemons spent per GB, next to OpenVPN's and to the AES-256-GCM bound from `openssl speed`
# in the same run. A benchmark, not a test: figures go to docs/PERFORMANCE.md.
#
#   bash scripts/bench-tun.sh [duration-seconds]     (default 10; as root)
#
# Traffic stays between the harness's own namespaces (10.99.0.0/24, 10.98.0.0/24).
set -euo pipefail
cd "$(dirname "$0")/.."
bench=${BYST_BENCH_DIR:-$PWD/scripts/bench/harness}
[ -x "$bench/anchors.sh" ] || { echo "bench-tun: $bench/anchors.sh not found (set BYST_BENCH_DIR)" >&2; exit 1; }
apt-get install -y -qq iperf3 jq openvpn wireguard-go wireguard-tools python3 zstd >/dev/null
swift build -c release --product byst >/dev/null
byst=$PWD/.build/release/byst
confs=$(mktemp -d /tmp/byst-bench-tun.XXXX)
trap 'rm -rf "$confs"' EXIT
out=${OUT:-/tmp/byst-bench-tun-$(date -u +%Y%m%dT%H%M%S).jsonl}
export DURATION=${1:-10} OUT=$out
# The hook runs one BYST variant per call; the other tunnels run in the first call only.
first=1
for variant in "1 true 1 1link" "4 true 1 4links" "1 false 1 1link-nooffload" "4 false 1 4links-nooffload" "4 true 2 4links-2queues"; do
    read -r links offload queues name <<<"$variant"
    BYST_BIN=$byst deploy/bench-conf.sh "$confs/$name" "$links" "$offload" "$queues"
    if [ "$first" = 1 ]; then parts="underlay crypto peers" peers="openvpn-tcp openvpn-udp wireguard-go byst-$name"; else parts=peers peers="byst-$name"; fi
    (cd "$bench" && BYST_BIN=$byst BYST_CONF=$confs/$name BYST_NAME=byst-$name \
        BYST_CMD_A="$byst up -c $confs/$name/a.conf" BYST_CMD_B="$byst up -c $confs/$name/b.conf" \
        PARTS=$parts PEERS="$peers" ./anchors.sh)
    first=0
done
python3 "$bench/table.py" "$out"
# CPU per GB through the tunnel (both daemons, user + system, 1 stream) against OpenVPN over
# TCP and against the AES-256-GCM bound: one seal and one open of every byte at the rate
# `openssl speed -aead` gave for 16 KiB records in this run.
python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
# The newest row of each (a results file named in OUT may hold earlier runs too).
get = lambda test, metric: next((r["value"] for r in reversed(rows) if r["test"] == test and r["metric"] == metric), None)
aes = get("openssl aes-256-gcm -aead", "MBps_16384")
bound = 2 / (aes / 1000) if aes else None
openvpn = get("openvpn-tcp", "cpu_s_per_gb_p1")
print("\nCPU per GB through the tunnel, 1 stream (both daemons):")
if bound: print(f"  AES-256-GCM bound {bound:.3f} s/GB (seal + open at {aes} MB/s)")
for test in dict.fromkeys(r["test"] for r in rows if r["metric"] == "cpu_s_per_gb_p1"):
    value = get(test, "cpu_s_per_gb_p1")
    if value is None: continue
    ratios = [f"{value / openvpn:.3f}× OpenVPN-TCP" if openvpn else None, f"{value / bound:.2f}× the bound" if bound else None]
    print(f"  {test}: {value} s/GB" + "".join(f", {r}" for r in ratios if r))
PY
echo "results: $out"
