#!/usr/bin/env bash
# A hub with many branches (docs/PERFORMANCE.md, "A hub for many branches"): PEERS configured
# peers, LIVE of them up with one link each from their own source addresses, in two namespaces
# of this script's own (10.250.0.0/16; the branches' sources in 10.252.0.0/16). The live branches are one "farm" node whose peers all
# dial the hub (scripts/lib/hub-farm.py): real keys, handshakes, keepalives and dead-link timing.
#
#   bash scripts/bench-hub.sh [PEERS] [LIVE] [IDLE_SECONDS] [TUN]   (defaults 10000 2000 20 1)
#   BYST=.build/release/byst bash scripts/bench-hub.sh 10000 2000 20 0
#
# Prints: start to READY=1; the live links up (handshakes/s, and the hub's own CPU per
# handshake: the farm on the same cores paces the wall figure); the hub's CPU with the links
# idle (% of one core, from /proc); `byst reload` adding one peer (time, links dropped); one
# `status --json` and one `/metrics` (time, size); a reload that changes 1,000 live peers
# (only their links may drop). For each of reload, status and /metrics also how long the
# hub's event loop was held (its loop-lag probe, `byst_event_loop_lag_seconds`, scraped before
# and after). BENCH_HUB_PERF=FILE: a `perf record` of the idle hub into FILE. With TUN = 1 the hub has a TUN and one /32 per peer, and (when LIVE < PEERS) a
# probe branch with a TUN and 2 links (deploy/netns/lib.sh, netns_hub_probe) pings the hub's
# TUN address every 5 ms during each of those four: its idle RTT first, then per action the
# largest RTT and how many replies took more than twice the idle median. Bounded: every wait
# has a limit; every process is stopped by PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
peers=${1:-10000} live=${2:-2000} idle=${3:-20} tun=${4:-1}
for tool in ip python3 curl ping; do command -v "$tool" >/dev/null || { echo "bench-hub: $tool missing (scripts/setup.sh)" >&2; exit 1; }; done
[ "$(id -u)" -eq 0 ] || { echo "bench-hub: needs root (network namespaces)" >&2; exit 1; }
if [ -z "${BYST:-}" ]; then swift build -c release --product byst >/dev/null; BYST=$PWD/.build/release/byst; fi
source deploy/netns/lib.sh
trap netns_cleanup EXIT INT TERM
[ -z "${BENCH_HUB_KEEP:-}" ] || trap - EXIT
work=$BYST_NS_WORK
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
fail() { echo "bench-hub: $*" >&2; tail -5 "$work/hub.log" "$work/farm.log" >&2 2>/dev/null || true; exit 1; }

netns_hub_farm "$peers" "$live" "$tun"

# The hub's READY=1 arrives on a socket that plays systemd's part (wall-clock time of arrival).
python3 -u -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("listening", flush=True)
while True:
    line = s.recv(4096).decode().split("\n")[0]
    print(f"{time.time():.6f} {line}", flush=True)
' "$work/notify" >"$work/notify.log" 2>&1 &
BYST_NS_PIDS+=($!)
wait_for 5 grep -q listening "$work/notify.log" || fail "no notify socket"

started=$(now)
NOTIFY_SOCKET=$work/notify netns_run hub "$work/hub.log" "$BYST" up -c "$work/hub.toml" >/dev/null
hub=$BYST_NS_LAST_PID
for _ in $(seq 1 600); do grep -q "READY=1" "$work/notify.log" && break; sleep 0.05; done
ready=$(awk '/READY=1/ { print $1; exit }' "$work/notify.log")
[ -n "$ready" ] || fail "the hub did not report READY=1 within 30 s"
echo "peers $peers, live $live, tun $tun"
echo "start to READY=1: $(elapsed "$started" "$ready") s"

# Links that came up, from the hub's log: polling /metrics or status would load the very
# event loop being measured (links up now: one scrape, `hub_links`).
links_now() { grep -c '\] link up$' "$work/hub.log" || true; }
hub_links() { ip netns exec "$(ns hub)" curl -s http://127.0.0.1:9109/metrics | awk '/^byst_peer_links\{/ { n += $2 } END { print n + 0 }'; }
hub_metrics() { ip netns exec "$(ns hub)" curl -s -o "$work/metrics.txt" -w '%{time_total} %{size_download}\n' http://127.0.0.1:9109/metrics; }
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
hub_before_links=$(ticks "$hub")
started=$(now)
netns_run farm "$work/farm.log" "$BYST" up -c "$work/farm.toml" >/dev/null
farm=$BYST_NS_LAST_PID
up=0
for _ in $(seq 1 300); do
    up=$(links_now)
    [ "$up" -ge "$live" ] && break
    sleep 0.2
done
[ "$up" -ge "$live" ] || fail "only $up of $live links up after 60 s"
took=$(elapsed "$started" "$(now)")
hub_links_cpu=$(awk -v a="$hub_before_links" -v b="$(ticks "$hub")" -v hz="$hz" 'BEGIN { printf "%.3f", (b - a) / hz }')
echo "links up: $up in $took s = $(awk -v n="$up" -v t="$took" 'BEGIN { printf "%d", n / t }') handshakes/s (farm start included)"
# The hub's own cost, which the farm (on the same cores) does not blur: CPU seconds it spent
# while the links came up, per handshake, and the rate one core of it would sustain.
echo "  hub CPU while they came up: $hub_links_cpu s = $(awk -v c="$hub_links_cpu" -v n="$up" 'BEGIN { if (c > 0 && n > 0) printf "%.0f µs per handshake, %d handshakes/s per core", c / n * 1e6, n / c; else printf "under a tick" }')"
redials=$(grep -c "dial failed" "$work/farm.log" || true)
[ "$redials" -eq 0 ] || echo "  (the farm's dials failed $redials times on the way: $(grep -m1 "dial failed" "$work/farm.log" | sed 's/.*dial failed/dial failed/'))"

# CPU with the links idle: utime + stime of the hub (and the farm) over IDLE seconds, from
# 8 s after the last link came up (a link is idle after a dead-link timeout, 5 s, without
# traffic: PROTOCOL.md §5.5).
sleep 8
# Per thread too (by name: the event loop, byst-plane-N, …), from /proc/PID/task.
thread_ticks() {
    for stat in /proc/"$1"/task/*/stat; do sed -E 's/^([0-9]+) \((.*)\) [A-Z] (.*)$/\1\t\2\t\3/' "$stat" 2>/dev/null; done \
        | awk -F '\t' '{ split($3, f, " "); gsub(/ /, "_", $2); print $1, $2, f[11] + f[12] }'
}
thread_ticks "$hub" >"$work/threads0"
h0=$(ticks "$hub") f0=$(ticks "$farm")
if [ -n "${BENCH_HUB_PERF:-}" ]; then
    # A profile of the idle hub into that file instead of the plain wait (its CPU then includes perf's).
    perf record -q -F 999 -g -o "$BENCH_HUB_PERF" -p "$hub" -- sleep "$idle" >/dev/null 2>&1 || fail "perf record failed"
else
    sleep "$idle"
fi
h1=$(ticks "$hub") f1=$(ticks "$farm")
thread_ticks "$hub" >"$work/threads1"
cpu() { awk -v a="$1" -v b="$2" -v hz="$hz" -v s="$idle" 'BEGIN { printf "%.2f", (b - a) / hz / s * 100 }'; }
echo "idle CPU with $up links: hub $(cpu "$h0" "$h1") % of a core, farm $(cpu "$f0" "$f1") %"
echo "  hub by thread: $(awk -v hz="$hz" -v s="$idle" 'NR == FNR { before[$1] = $3; next } ($1 in before) { used[$2] += $3 - before[$1] }
    END { for (name in used) if (used[name] > 0) printf "%s %.2f %%, ", name, used[name] / hz / s * 100 }' "$work/threads0" "$work/threads1" | sed 's/, $//')"

# The ping-spike probe (after the idle CPU, which it would add to): a branch with a TUN and 2
# links playing configured peer b$live, which the farm does not play nor hub-changed.toml change.
probe=0
if [ "$tun" = 1 ] && [ "$live" -lt "$peers" ]; then
    netns_hub_probe "b$live" || fail "no probe"
    netns_run probe "$work/probe.log" "$BYST" up -c "$work/probe.toml" >/dev/null
    wait_for 20 ip netns exec "$(ns probe)" ping -c1 -W1 100.64.0.1 || fail "the probe cannot ping the hub through the tunnel"
    probe=1
elif [ "$tun" = 1 ]; then
    echo "ping-spike probe: none (it plays configured peer b$live, which needs LIVE < PEERS)"
fi
# rtt_stats FILE: "median max count lost" of a `ping -D` output (lost: sequence numbers
# missing below the last reply; a ping stopped by SIGINT leaves its last one unanswered).
rtt_stats() {
    sed -n 's/.*icmp_seq=\([0-9]*\) .* time=\([0-9.]*\) ms.*/\1 \2/p' "$1" >"$1.rtt"
    sort -k2,2g "$1.rtt" | awk -v last="$(sort -n "$1.rtt" | tail -1 | cut -d' ' -f1)" '{ r[++n] = $2 }
        END { if (n == 0) { print "0 0 0 0"; exit }
            printf "%.3f %.3f %d %d\n", (n % 2 ? r[(n + 1) / 2] : (r[n / 2] + r[n / 2 + 1]) / 2), r[n], n, last - n }'
}
if [ "$probe" = 1 ]; then
    ip netns exec "$(ns probe)" ping -i 0.01 -c 200 -W 1 -D 100.64.0.1 >"$work/ping-idle.out" 2>&1 || true
    read -r idle_median idle_max idle_count idle_lost < <(rtt_stats "$work/ping-idle.out")
    idle_over=$(awk -v limit="$idle_median" '$2 > 2 * limit { n++ } END { print n + 0 }' "$work/ping-idle.out.rtt")
    echo "probe idle RTT through the hub (every 10 ms): median $idle_median ms, max $idle_max ms; $idle_over of $idle_count over 2× the median, $idle_lost lost"
fi
# probe_start … probe_stop WHAT: the probe pings every 5 ms from 0.3 s before to 0.5 s after
# what runs in between (at most 4,000 pings, 30 s), then the line for WHAT.
probe_start() {
    [ "$probe" = 1 ] || return 0
    ip netns exec "$(ns probe)" ping -i 0.005 -c 4000 -w 30 -W 1 -D 100.64.0.1 >"$work/ping-spike.out" 2>&1 &
    ping_pid=$!
    BYST_NS_PIDS+=($ping_pid)
    sleep 0.3
}
probe_stop() {
    [ "$probe" = 1 ] || return 0
    sleep 0.5
    kill -INT "$ping_pid" 2>/dev/null || true
    wait "$ping_pid" 2>/dev/null || true
    local median max count lost over
    read -r median max count lost < <(rtt_stats "$work/ping-spike.out")
    over=$(awk -v limit="$idle_median" '$2 > 2 * limit { n++ } END { print n + 0 }' "$work/ping-spike.out.rtt")
    echo "  ping spike during $1: max $max ms (idle median $idle_median ms, 2× = $(awk -v m="$idle_median" 'BEGIN { printf "%.3f", 2 * m }') ms): $over of $count over, $lost lost (median $median ms)"
}
# The same window with nothing in it: how often the idle hub's replies pass 2× the idle median.
if [ "$probe" = 1 ]; then probe_start; sleep 0.5; probe_stop "nothing (control)"; fi

# The hub's loop-lag histogram (cumulative counts by bucket), and the longest hold between two
# readings: the smallest bucket bound that holds every observation made in between (each
# reading is itself a scrape, whose hold the next reading includes).
lag_read() { ip netns exec "$(ns hub)" curl -s http://127.0.0.1:9109/metrics | awk '/^byst_event_loop_lag_seconds_bucket/ { sub(/.*le="/, ""); sub(/"}/, ""); print }' >"$1"; }
lag_held() {
    awk 'NR == FNR { before[$1] = $2; next } { n = $2 - before[$1]; if ($1 == "+Inf") total = n; bound[++k] = $1; count[k] = n }
        END { for (i = 1; i <= k; i++) if (count[i] == total) { printf "≤ %s s (%d runs of the 10 ms probe, %d over 10 ms)", bound[i], total, total - count[4]; exit } }' "$1" "$2"
}

# hub_reload FILE WHAT: the hub reloads FILE; prints the time, the summary (its start) and
# how long the event loop was held.
hub_reload() {
    cp "$1" "$work/hub.toml"
    lag_read "$work/lag0"
    probe_start
    local started took; started=$(now)
    ip netns exec "$(ns hub)" "$BYST" reload --socket "$work/hub.sock" >"$work/reload.out" || fail "reload failed: $(cat "$work/reload.out")"
    took=$(elapsed "$started" "$(now)")
    echo "$2: $took s ($(cut -c1-120 "$work/reload.out")…)"
    probe_stop "$2"
    lag_read "$work/lag1"
    echo "  event loop held: $(lag_held "$work/lag0" "$work/lag1")"
}

# Reload adding one peer: its time, and links dropped meanwhile (dead or closed ones show as
# fewer links or as the farm's reconnects).
farm_reconnects() { ip netns exec "$(ns farm)" curl -s http://127.0.0.1:9110/metrics | awk '/^byst_peer_reconnects_total\{/ { sub(/.*peer="/, ""); sub(/"}/, ""); print }'; }
reconnects() { farm_reconnects | awk '{ n += $2 } END { print n + 0 }'; }
r0=$(reconnects)
hub_reload "$work/hub-plus.toml" "reload adding 1 peer"
sleep 6
after=$(hub_links) r1=$(reconnects)
echo "links after the reload: $after (was $((up + 2 * probe))), farm reconnects during it: $((r1 - r0))"

# One status and one /metrics at this size.
lag_read "$work/lag0"
probe_start
started=$(now)
ip netns exec "$(ns hub)" "$BYST" status --json --socket "$work/hub.sock" >"$work/status.json"
echo "status --json: $(elapsed "$started" "$(now)") s, $(wc -c <"$work/status.json") bytes"
probe_stop "status --json"
lag_read "$work/lag1"
echo "  event loop held: $(lag_held "$work/lag0" "$work/lag1")"
probe_start
read -r took bytes < <(hub_metrics)
echo "/metrics: $took s, $bytes bytes"
probe_stop "/metrics"
lag_read "$work/lag2"
echo "  event loop held: $(lag_held "$work/lag1" "$work/lag2")"

# A reload that changes another setting of 1,000 live peers (b0 …): those start over, and
# only their links may drop (the farm redials them); every other link stays.
farm_reconnects >"$work/reconnects0"
hub_reload "$work/hub-changed.toml" "reload changing 1,000 peers"
sleep 8
farm_reconnects >"$work/reconnects1"
changed=$(grep -c '^allow_targets' "$work/hub-changed.toml")
awk -v changed="$changed" 'NR == FNR { before[$1] = $2; next }
    { n = substr($1, 2) + 0; if ($2 > before[$1]) { if (n < changed) inside++; else outside++ } }
    END { printf "peers that redialled: %d of the %d changed, %d of the others\n", inside, changed, outside }' \
    "$work/reconnects0" "$work/reconnects1"
echo "links now: $(hub_links) (was $((up + 2 * probe)))"
