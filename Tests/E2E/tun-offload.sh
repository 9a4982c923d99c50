#!/usr/bin/env bash
# TUN offloads (PROTOCOL.md §5.4) proven with real traffic, IPv4 and IPv6, in two setups:
#   both: both TUNs have offloads: GSO super-packets cross whole (counted as such);
#   mixed: the branch has offloads, the hub runs `offload = false`: the branch cuts its
#          super-packets into packets itself, the hub sends plain packets.
# In each: iperf3 TCP both directions, a 64 MiB file over TCP whose SHA-256 must match,
# and iperf3 UDP at 20 Mbit/s (datagrams larger than the MTU, so fragments too), ≤ 10 % lost;
# in `both`, each node's data plane carries the TUN packets over its links
# (`tun.data_plane_links`); in `mixed`, the branch runs `data_plane = false`: its links stay
# on the event loop, and its packets cross between the plane (TUN) and the loop in batches
# (none dropped: `tun.dropped_loop_batches`).
#
#   ns a (branch) 192.168.244.1 ══ 2 links ══ ns h (hub) 192.168.244.2
#   10.1.0.1 / fd01::1 ─────── tunnel ─────── 10.2.0.1 / fd02::1
set -euo pipefail
cd "$(dirname "$0")/../.."
BYST=${BYST_BINARY:-$PWD/.build/debug/byst}
source deploy/netns/lib.sh
netns_require ping iperf3 socat sha256sum python3
trap netns_cleanup EXIT INT TERM
fail() { echo "FAIL: $*" >&2; for log in "$BYST_NS_WORK"/*.log; do echo "--- $log" >&2; tail -15 "$log" >&2; done; exit 1; }

netns_add a
netns_add h
netns_veth a 192.168.244.1/24 h 192.168.244.2/24
netns_lan a 10.1.0.1/24 fd01::1/64
netns_lan h 10.2.0.1/24 fd02::1/64
byst_keys h a
head -c $((64 * 1024 * 1024)) /dev/urandom >"$BYST_NS_WORK/file"
want=$(sha256sum <"$BYST_NS_WORK/file" | cut -d' ' -f1)

counter() { "$BYST" status --json --socket "$BYST_NS_WORK/$1.sock" | python3 -c 'import json,sys; print(json.load(sys.stdin)["tun"]["counters"][sys.argv[1]])' "$2"; }
tun_status() { "$BYST" status --json --socket "$BYST_NS_WORK/$1.sock" | python3 -c 'import json,sys; print(json.load(sys.stdin)["tun"][sys.argv[1]])' "$2"; }

run_setup() {
    local setup=$1 hub_offload=$2 branch_plane=$3 pids=()
    cat >"$BYST_NS_WORK/h.toml" <<TOML
[node]
name = "hub"
listen = ["192.168.244.2:7000"]
control_socket = "$BYST_NS_WORK/h.sock"
key_store = "$BYST_NS_WORK/h.keys"
[tun]
address = ["10.0.0.1/24", "fd00::1/64"]
offload = $hub_offload
[[peer]]
name = "a"
key = "a"
allowed_ips = ["10.0.0.2/32", "fd00::2/128", "10.1.0.0/24", "fd01::/64"]
TOML
    cat >"$BYST_NS_WORK/a.toml" <<TOML
[node]
name = "branch"
control_socket = "$BYST_NS_WORK/a.sock"
key_store = "$BYST_NS_WORK/a.keys"
[tun]
address = ["10.0.0.2/24", "fd00::2/64"]
data_plane = $branch_plane
[[peer]]
name = "hub"
key = "h"
endpoint = "byst://192.168.244.2:7000"
links = 2
allowed_ips = ["10.0.0.1/32", "fd00::1/128", "10.2.0.0/24", "fd02::/64"]
TOML
    netns_run h "$BYST_NS_WORK/h.log" "$BYST" up -c "$BYST_NS_WORK/h.toml" >/dev/null
    pids+=("$BYST_NS_LAST_PID")
    netns_run a "$BYST_NS_WORK/a.log" "$BYST" up -c "$BYST_NS_WORK/a.toml" >/dev/null
    pids+=("$BYST_NS_LAST_PID")
    reach() { ip netns exec "$(ns a)" ping -c 1 -W 1 -I 10.1.0.1 10.2.0.1 && ip netns exec "$(ns a)" ping -6 -c 1 -W 1 -I fd01::1 fd02::1; }
    wait_for 15 reach || fail "$setup: no tunnel"

    for family in 4 6; do
        local src=10.1.0.1 dst=10.2.0.1
        [ "$family" = 6 ] && src=fd01::1 dst=fd02::1
        for reverse in "" "-R"; do
            netns_run h "$BYST_NS_WORK/iperf-s.log" iperf3 -s -1 -B "$dst" >/dev/null
            sleep 0.5
            ip netns exec "$(ns a)" iperf3 -c "$dst" -B "$src" -t 3 $reverse -J >"$BYST_NS_WORK/iperf.json" || fail "$setup: iperf3 TCP IPv$family $reverse"
            bps=$(python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["end"]["sum_received"]["bits_per_second"]))' "$BYST_NS_WORK/iperf.json")
            [ "$bps" -gt 10000000 ] || fail "$setup: iperf3 TCP IPv$family $reverse moved only $bps bit/s"
            echo "ok: $setup: iperf3 TCP IPv$family ${reverse:-(a→h)} $((bps / 1000000)) Mbit/s"
        done
        rm -f "$BYST_NS_WORK/received"
        netns_run h "$BYST_NS_WORK/socat.log" socat -u "TCP$family-LISTEN:9000,bind=$dst,reuseaddr" "OPEN:$BYST_NS_WORK/received,creat,trunc" >/dev/null
        sleep 0.5
        ip netns exec "$(ns a)" timeout 60 socat -u "OPEN:$BYST_NS_WORK/file" "TCP$family:[$dst]:9000,bind=[$src]" || fail "$setup: file transfer IPv$family"
        complete() { [ "$(stat -c %s "$BYST_NS_WORK/received" 2>/dev/null)" = $((64 * 1024 * 1024)) ]; }
        wait_for 10 complete || fail "$setup: file incomplete (IPv$family): $(stat -c %s "$BYST_NS_WORK/received") bytes"
        got=$(sha256sum <"$BYST_NS_WORK/received" | cut -d' ' -f1)
        [ "$got" = "$want" ] || fail "$setup: file SHA-256 differs over IPv$family"
        echo "ok: $setup: 64 MiB over TCP/IPv$family, SHA-256 equal"
        netns_run h "$BYST_NS_WORK/iperf-s.log" iperf3 -s -1 -B "$dst" >/dev/null
        sleep 0.5
        ip netns exec "$(ns a)" iperf3 -c "$dst" -B "$src" -u -b 20M -l 4000 -t 3 -J >"$BYST_NS_WORK/udp.json" || fail "$setup: iperf3 UDP IPv$family"
        read -r lost total < <(python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["end"]["sum"]; print(s["lost_packets"], s["packets"])' "$BYST_NS_WORK/udp.json")
        [ "$total" -gt 1000 ] && [ $((lost * 100)) -le $((total * 10)) ] || fail "$setup: UDP IPv$family lost $lost of $total datagrams"
        echo "ok: $setup: iperf3 UDP IPv$family, 4000-byte datagrams: $lost of $total lost"
    done

    # The hub's data plane owns both links; the branch's too unless it runs without one.
    [ "$(tun_status h data_plane_links)" = 2 ] || fail "$setup: the hub's data plane owns $(tun_status h data_plane_links) links, not 2"
    if [ "$branch_plane" = true ]; then
        [ "$(tun_status a data_plane_links)" = 2 ] || fail "$setup: the branch's data plane owns $(tun_status a data_plane_links) links, not 2"
        echo "ok: $setup: both data planes own both links"
    else
        [ "$(tun_status a data_plane_links)" = 0 ] || fail "$setup: the branch's plane owns links with data_plane = false"
        dropped=$(tun_status a dropped_loop_batches)
        echo "$setup: the branch's links stayed on its event loop; batches dropped between plane and loop: $dropped"
        [ "$dropped" = 0 ] || fail "$setup: the branch's event loop fell behind the plane ($dropped batches dropped)"
    fi

    whole=$(counter a super_packets_sent_whole) cut=$(counter a super_packets_segmented) received=$(counter h super_packets_received)
    echo "$setup: branch sent $whole super-packets whole, segmented $cut; hub wrote $received whole"
    if [ "$hub_offload" = true ]; then
        [ "$whole" -gt 100 ] && [ "$received" -gt 100 ] || fail "$setup: super-packets did not cross whole"
    else
        [ "$whole" = 0 ] && [ "$received" = 0 ] && [ "$cut" -gt 100 ] || fail "$setup: the branch should have segmented (whole $whole, cut $cut)"
    fi
    for pid in "${pids[@]}"; do kill "$pid"; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}

run_setup both true true
run_setup mixed false false
