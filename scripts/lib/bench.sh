# Shared start-up of the loopback benchmarks (bench-forward, bench-http, bench-compression),
# sourced after `cd` to the checkout. Loopback only; every process started here is
# remembered by PID and stopped on exit with the work directory.

source scripts/lib/ports.sh

# bench_in_netns NAME SCRIPT ARGS…: unless already inside one (BYST_BENCH_NETNS), makes a
# network namespace of its own (loopback up; removed on exit), runs SCRIPT there with ARGS
# and exits with its status. $BYST is the release `byst` (built here if unset).
bench_in_netns() {
    [ -z "${BYST_BENCH_NETNS:-}" ] || return 0
    local name=$1 script=$2 status=0
    shift 2
    [ -n "${BYST:-}" ] || { swift build -c release --product byst >/dev/null; export BYST=$PWD/.build/release/byst; }
    local netns=byst-bench-$name-$$
    ip netns add "$netns"
    trap "ip netns del $netns 2>/dev/null || true" EXIT INT TERM
    ip -n "$netns" link set lo up
    BYST_BENCH_NETNS=$netns ip netns exec "$netns" bash "$script" "$@" || status=$?
    exit "$status"
}

# bench_ratio A B: A / B with two decimals.
bench_ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# bench_forward HUB_PORT LINKS UNIT [BRANCH_SECTIONS]: a fresh branch (LINKS links to the hub
# on HUB_PORT, a forward to the iperf3 server on $iperf_port), one `bench_iperf` measurement
# of $seconds through it in $result; the branch is stopped after.
bench_forward() {
    local forward_port=$((port_base + 10 + $2))
    bench_branch "byst://127.0.0.1:$1" "$forward_port" "$iperf_port" "${4:-}" "links = $2"
    sleep 1
    result=$(bench_iperf "$forward_port" "$seconds" "$3")
    bench_branch_stop
}

# bench_iperf PORT SECONDS UNIT: one iperf3 TCP stream to 127.0.0.1:PORT, the receiver's
# throughput in Gbit/s (UNIT gbit, two decimals) or Mbit/s (UNIT mbit, one decimal).
bench_iperf() {
    local divisor=1e9 decimals=2 json value
    [ "$3" = mbit ] && divisor=1e6 decimals=1
    json=$(iperf3 -c 127.0.0.1 -p "$1" -t "$2" -J) || true
    value=$(awk -F'[:,]' -v d="$divisor" -v p="$decimals" '/"sum_received"/ { f = 1 } f && /"bits_per_second"/ { printf "%." p "f", $2 / d; exit }' <<<"$json")
    if [ -z "$value" ]; then
        echo "bench: iperf3 to port $1 gave no result: $(grep -m1 '"error"' <<<"$json" || echo "${json:0:300}")" >&2
        return 1
    fi
    echo "$value"
}

# bench_start NAME: the release `byst` in $byst ($BYST if set, else a fresh release build),
# a work directory in $work, the exit trap, and a hub/branch key pair ("branch" at the hub,
# "hub" at the branch).
bench_start() {
    if [ -z "${BYST:-}" ]; then
        swift build -c release --product byst >/dev/null
        BYST=$PWD/.build/release/byst
    fi
    byst=$BYST
    work=$(mktemp -d "/tmp/byst-bench-$1.XXXXXX")
    pids=()
    trap bench_cleanup EXIT INT TERM
    "$byst" key gen branch --store "$work/hub.keys" >/dev/null
    "$byst" key export branch --store "$work/hub.keys" | "$byst" key import hub --store "$work/branch.keys" >/dev/null
}

bench_cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}

# bench_hub LISTEN_LINES TARGET_PORT [SECTIONS]: starts the hub ([node] plus LISTEN_LINES,
# e.g. 'listen = ["127.0.0.1:7000"]', then SECTIONS such as a [tun]); its branch may reach
# 127.0.0.1:TARGET_PORT.
bench_hub() {
    cat >"$work/hub.toml" <<TOML
[node]
name = "hub"
$1
control_socket = "$work/hub.sock"
key_store = "$work/hub.keys"
${3:-}
[[peer]]
name = "branch"
key = "branch"
allow_targets = ["127.0.0.1:$2"]
TOML
    "$byst" up -c "$work/hub.toml" --log-level warning & pids+=($!)
    sleep 1
}

# bench_branch ENDPOINT FORWARD_PORT TARGET_PORT [NODE_LINES] [PEER_LINES]: starts a branch
# with 1 link unless PEER_LINES say otherwise, and a forward to the hub's target; waits for a
# link. The PID is in $branch_pid.
bench_branch() {
    cat >"$work/branch.toml" <<TOML
[node]
name = "branch"
control_socket = "$work/branch.sock"
key_store = "$work/branch.keys"
${4:-}
[[peer]]
name = "hub"
key = "hub"
endpoint = "$1"
${5:-links = 1}
[[forward]]
listen = "127.0.0.1:$2"
peer = "hub"
target = "127.0.0.1:$3"
TOML
    "$byst" up -c "$work/branch.toml" --log-level warning & branch_pid=$!
    pids+=($branch_pid)
    for _ in $(seq 1 50); do "$byst" status --json --socket "$work/branch.sock" 2>/dev/null | grep -q '"remote"' && break; sleep 0.1; done
}

bench_branch_stop() { kill "$branch_pid"; wait "$branch_pid" 2>/dev/null || true; }

# median "v1 v2 …": the middle value.
bench_median() { tr ' ' '\n' <<<"$1" | { grep . || true; } | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
