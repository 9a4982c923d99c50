#!/usr/bin/env bash
# Every way a link reaches the hub, in one run, in a network namespace of its own: one
# forwarded iperf3 stream over 1 link, upload (branch → hub) and download (-R), and bytes
# on the wire per payload byte, for
#
#   raw byst://, HTTP duplex, split and websocket straight to the hub; squid forward (Basic
#   auth, auto) and CONNECT; nginx reverse (buffering off, 1 MiB buffers as
#   docs/OPERATIONS.md advises, auto), the same with nginx's stock buffer sizes, with request
#   buffering (auto), websocket by name; tinyproxy forward (auto: split, tinyproxy closes every
#   connection) and CONNECT; haproxy with its defaults (auto), with http-buffer-request
#   (auto), websocket by name; Apache httpd (mod_proxy_http, auto; split by name); duplex and
#   split through a relay that delays every byte by
#   DELAY_MS (default 5) each way, standing in for a proxy across a WAN (no netem here).
#   The `curl-*` routes measure the forward proxies alone, as the ceiling BYST's routes
#   through them can reach on these cores: curl uploads to and downloads from an nginx
#   origin (a 2 GiB file, a sink) for the same seconds, straight and through each proxy
#   (forward: the request to the proxy; connect: curl's CONNECT tunnel, -p).
#
#   bash scripts/bench-proxy-matrix.sh [seconds] [rounds]   (defaults: 4 s per run, 2 rounds; median)
#   BYST=$PWD/.build/release/byst bash scripts/bench-proxy-matrix.sh   (no build; else a release build first)
#   ROUTES="duplex split" bash scripts/bench-proxy-matrix.sh   (only these routes, from the list below)
#
# Wire bytes: an nftables counter per first hop (the hub's port, or the proxy's) in the
# namespace counts the IP packets the branch sends there (upload) and gets from there
# (download) during the run: TCP/IP headers, HTTP heads, chunk and WebSocket framing,
# records, acks and pings, divided by the bytes iperf3 received. Auto routes get 10 s to
# settle before they are measured (haproxy: duplex, then the held-writes trial, then the
# move to websocket); the mode measured is the one `byst status` reports.
#
# Namespace-local only; every process is started here and stopped by PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/bench.sh
bench_in_netns proxy-matrix "$0" "$@"
seconds=${1:-4}
rounds=${2:-2}
for tool in iperf3 nft jq curl; do command -v "$tool" >/dev/null || { echo "bench-proxy-matrix: $tool missing (scripts/setup.sh)" >&2; exit 1; }; done
source Tests/E2E/lib/proxies.sh
proxy_require
bench_start proxy-matrix
trap 'proxies_cleanup; bench_cleanup' EXIT INT TERM

base=$(loopback_port_base 18)
iperf_port=$base raw_port=$((base + 1)) http_port=$((base + 2)) forward_port=$((base + 3))
squid=$((base + 4)) nginx=$((base + 5)) nginx_buffered=$((base + 6)) tinyproxy=$((base + 7))
haproxy=$((base + 8)) haproxy_buffering=$((base + 9)) delayed=$((base + 10)) nginx_stock=$((base + 11)) apache=$((base + 12))
origin=$((base + 13))
iperf3 -s -B 127.0.0.1 -p "$iperf_port" >/dev/null 2>&1 & pids+=($!)
bench_hub "listen = [\"127.0.0.1:$raw_port\"]
http_listen = [\"127.0.0.1:$http_port\"]" "$iperf_port" "[limits]
handshake_rate = 1000
handshake_burst = 1000"
start_squid "$squid" byst:s3cret
start_nginx_reverse "$nginx" "$http_port"
start_nginx_reverse "$nginx_buffered" "$http_port" buffered
start_nginx_reverse "$nginx_stock" "$http_port" stock-buffers
start_apache_reverse "$apache" "$http_port"
start_tinyproxy "$tinyproxy"
start_haproxy_reverse "$haproxy" "$http_port"
start_haproxy_reverse "$haproxy_buffering" "$http_port" buffer-request
python3 scripts/lib/delay-relay.py "$delayed" "$http_port" "${DELAY_MS:-5}" & pids+=($!)
start_http_origin "$origin" 2048

routes=${ROUTES:-"raw duplex split websocket squid-forward squid-connect nginx-reverse nginx-stock nginx-buffering nginx-websocket
        tinyproxy-forward tinyproxy-connect haproxy haproxy-buffer-request haproxy-websocket apache apache-split
        duplex-delayed split-delayed curl-direct curl-squid-forward curl-squid-connect curl-tinyproxy-forward curl-tinyproxy-connect"}
hub=http://127.0.0.1:$http_port/byst
# route → endpoint|first hop port|peer lines (separated by ";")
route() {
    case $1 in
        raw)                    echo "byst://127.0.0.1:$raw_port|$raw_port|" ;;
        duplex|split|websocket) echo "$hub|$http_port|http_mode = \"$1\"" ;;
        squid-forward)          echo "$hub|$squid|http_proxy = \"http://byst:s3cret@127.0.0.1:$squid\"" ;;
        squid-connect)          echo "$hub|$squid|http_proxy = \"http://byst:s3cret@127.0.0.1:$squid\";proxy_mode = \"connect\"" ;;
        nginx-reverse)          echo "http://127.0.0.1:$nginx/byst|$nginx|" ;;
        nginx-stock)            echo "http://127.0.0.1:$nginx_stock/byst|$nginx_stock|" ;;
        nginx-buffering)        echo "http://127.0.0.1:$nginx_buffered/byst|$nginx_buffered|" ;;
        nginx-websocket)        echo "http://127.0.0.1:$nginx/byst|$nginx|http_mode = \"websocket\"" ;;
        tinyproxy-forward)      echo "$hub|$tinyproxy|http_proxy = \"http://127.0.0.1:$tinyproxy\"" ;;
        tinyproxy-connect)      echo "$hub|$tinyproxy|http_proxy = \"http://127.0.0.1:$tinyproxy\";proxy_mode = \"connect\"" ;;
        haproxy)                echo "http://127.0.0.1:$haproxy/byst|$haproxy|" ;;
        haproxy-buffer-request) echo "http://127.0.0.1:$haproxy_buffering/byst|$haproxy_buffering|" ;;
        haproxy-websocket)      echo "http://127.0.0.1:$haproxy/byst|$haproxy|http_mode = \"websocket\"" ;;
        apache)                 echo "http://127.0.0.1:$apache/byst|$apache|" ;;
        apache-split)           echo "http://127.0.0.1:$apache/byst|$apache|http_mode = \"split\"" ;;
        duplex-delayed)         echo "http://127.0.0.1:$delayed/byst|$delayed|http_mode = \"duplex\"" ;;
        split-delayed)          echo "http://127.0.0.1:$delayed/byst|$delayed|http_mode = \"split\"" ;;
    esac
}

# curl's options for a curl-* route.
curl_route() {
    case $1 in
        curl-direct)            echo "" ;;
        curl-squid-forward)     echo "-x http://byst:s3cret@127.0.0.1:$squid" ;;
        curl-squid-connect)     echo "-p -x http://byst:s3cret@127.0.0.1:$squid" ;;
        curl-tinyproxy-forward) echo "-x http://127.0.0.1:$tinyproxy" ;;
        curl-tinyproxy-connect) echo "-p -x http://127.0.0.1:$tinyproxy" ;;
        *) echo "bench-proxy-matrix: no route '$1'" >&2; return 1 ;;
    esac
}

# curl_measure OPTIONS…: an upload to the origin's sink, then a download of its file, each
# for $seconds at most (curl then stops: exit 28); prints "up down" in Gbit/s.
curl_measure() {
    local up down
    up=$(curl -s -o /dev/null --max-time "$seconds" "$@" -T /dev/zero -w '%{speed_upload}' "http://127.0.0.1:$origin/sink" || true)
    down=$(curl -s -o /dev/null --max-time "$seconds" "$@" -w '%{speed_download}' "http://127.0.0.1:$origin/big" || true)
    awk -v u="${up:-0}" -v d="${down:-0}" 'BEGIN { printf "%.3f %.3f", u * 8 / 1e9, d * 8 / 1e9 }'
}

# One counter per direction and first hop: the branch's packets to it, and its packets back.
nft add table inet byst_bench
nft add chain inet byst_bench out '{ type filter hook output priority 0; }'
counted_ports=" "
count_port() {
    [[ "$counted_ports" == *" $1 "* ]] && return 0
    counted_ports+="$1 "
    nft add counter inet byst_bench "to_$1"
    nft add counter inet byst_bench "from_$1"
    nft add rule inet byst_bench out tcp dport "$1" counter name "to_$1"
    nft add rule inet byst_bench out tcp sport "$1" counter name "from_$1"
}
counter_bytes() { nft -j list counter inet byst_bench "$1" | jq '[.nftables[] | select(.counter) | .counter.bytes] | add'; }
reset_counter() { nft reset counter inet byst_bench "$1" >/dev/null; }

# measure COUNTER [-R]: one iperf3 run; prints "Gbit/s wire÷payload".
measure() {
    local counter=$1 json received wire
    shift
    reset_counter "$counter"
    json=$(iperf3 -c 127.0.0.1 -p "$forward_port" -t "$seconds" -J "$@") || true
    wire=$(counter_bytes "$counter")
    received=$(jq '.end.sum_received.bytes // 0' <<<"$json")
    [ "$received" -gt 0 ] || { echo "0.000 -"; return 0; }
    awk -v b="$received" -v s="$(jq '.end.sum_received.seconds' <<<"$json")" -v w="$wire" \
        'BEGIN { printf "%.3f %.3f", b * 8 / s / 1e9, w / b }'
}

transport() {
    "$byst" status --json --socket "$work/branch.sock" 2>/dev/null | jq -r '[.peers[].sessions[].links[].transport] | unique | join("+")'
}

declare -A up down wire_up wire_down mode
for round in $(seq 1 "$rounds"); do
    for name in $routes; do
        if [[ $name == curl-* ]]; then
            options=$(curl_route "$name")
            read -r -a options <<<"$options"
            read -r rate_up rate_down <<<"$(curl_measure "${options[@]}")"
            mode[$name]=curl
            up[$name]="${up[$name]:-} $rate_up" down[$name]="${down[$name]:-} $rate_down"
            wire_up[$name]="${wire_up[$name]:-} -" wire_down[$name]="${wire_down[$name]:-} -"
            echo "round $round $name: up $rate_up down $rate_down Gbit/s" >&2
            continue
        fi
        IFS='|' read -r endpoint hop peer_lines <<<"$(route "$name")"
        peer_lines=${peer_lines//;/$'\n'}
        count_port "$hop"
        umask 077  # the branch's config may hold a proxy password: byst wants it private
        bench_branch "$endpoint" "$forward_port" "$iperf_port" "" "links = 1
$peer_lines"
        umask 022
        case $name in
            raw|duplex|split|websocket|*-websocket|*-connect|*-delayed) sleep 1 ;;
            *) sleep 10 ;;  # auto: let it settle
        esac
        mode[$name]=$(transport)
        read -r rate ratio <<<"$(measure "to_$hop")"
        up[$name]="${up[$name]:-} $rate" wire_up[$name]="${wire_up[$name]:-} $ratio"
        read -r rate ratio <<<"$(measure "from_$hop" -R)"
        down[$name]="${down[$name]:-} $rate" wire_down[$name]="${wire_down[$name]:-} $ratio"
        [ "$(transport)" = "${mode[$name]}" ] || mode[$name]="${mode[$name]}→$(transport)"
        echo "round $round $name (${mode[$name]}): up ${up[$name]##* } down ${down[$name]##* } Gbit/s, wire ${wire_up[$name]##* } / ${wire_down[$name]##* }" >&2
        bench_branch_stop
    done
done

echo "One iperf3 stream through a forward over 1 link, $rounds × ${seconds} s per direction (median), in a network namespace;"
echo "byst $(basename "$(dirname "$byst")") build; squid $(squid -v | awk 'NR == 1 { print $4 }'), nginx $(nginx -v 2>&1 | sed 's|.*/||'), tinyproxy $(tinyproxy -v | awk '{ print $2 }'), haproxy $(haproxy -v | awk 'NR == 1 { print $3 }')"
echo
echo "| route | mode | upload Gbit/s | ÷ direct duplex | download Gbit/s | ÷ direct duplex | wire ÷ payload up | wire ÷ payload down | runs up / down |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---|"
du=$(bench_median "${up[duplex]:-}") dd=$(bench_median "${down[duplex]:-}")
# versus A B: A / B, or "-" when B was not measured (or is 0)
versus() { if awk -v b="$2" 'BEGIN { exit !(b + 0 > 0) }'; then bench_ratio "$1" "$2"; else echo -; fi; }
for name in $routes; do
    u=$(bench_median "${up[$name]}") d=$(bench_median "${down[$name]}")
    echo "| $name | ${mode[$name]} | $u | $(versus "$u" "$du") | $d | $(versus "$d" "$dd") |" \
         "$(bench_median "${wire_up[$name]}") | $(bench_median "${wire_down[$name]}") | ${up[$name]# } / ${down[$name]# } |"
done

# Each forward proxy's BYST route against the proxy alone (both measured in this run).
proxy_pairs=""
for name in squid-forward squid-connect tinyproxy-forward tinyproxy-connect; do
    [[ " $routes " == *" $name "* && " $routes " == *" curl-$name "* ]] && proxy_pairs+=" $name"
done
if [ -n "$proxy_pairs" ]; then
    echo
    echo "| route | BYST up ÷ the proxy alone (curl) | BYST down ÷ the proxy alone |"
    echo "|---|---:|---:|"
    for name in $proxy_pairs; do
        echo "| $name | $(versus "$(bench_median "${up[$name]}")" "$(bench_median "${up[curl-$name]}")") |" \
             "$(versus "$(bench_median "${down[$name]}")" "$(bench_median "${down[curl-$name]}")") |"
    done
fi
