#!/usr/bin/env bash
# Embedded registry throughput (docs/PERFORMANCE.md, "Registry operations"): register/query operations
# per second from one client connection, and from 8 clients at once (8 processes, each its
# own key and link), against one `byst registry serve` on loopback. Release build. Each client
# is `byst-bench registry` (Benchmarks/BenchTool), a node of its own in that process, so it
# runs the node code under test too: BYST_BENCH_BINARY, else the byst-bench next to $BYST when
# BYST is given, else a fresh release build of both.
#
#   bash scripts/bench-registry.sh [OPERATIONS_PER_CLIENT] [WINDOW]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/bench.sh
operations=${1:-200000}
window=${2:-64}
if [ -z "${BYST_BENCH_BINARY:-}" ]; then
    if [ -n "${BYST:-}" ]; then
        BYST_BENCH_BINARY=$(dirname "$BYST")/byst-bench
    else
        swift build -c release --product byst-bench >/dev/null
        BYST_BENCH_BINARY=$PWD/.build/release/byst-bench
    fi
fi
[ -x "$BYST_BENCH_BINARY" ] || { echo "bench-registry: $BYST_BENCH_BINARY not found (set BYST_BENCH_BINARY)" >&2; exit 1; }
bench_tool=$BYST_BENCH_BINARY
bench_start registry

cat >"$work/registry.toml" <<TOML
[node]
name = "registry"
listen = ["127.0.0.1:7100"]
control_socket = "$work/registry.sock"
key_store = "$work/registry.keys"
TOML
# The ports the bench registers (bench-0 … bench-199), allowed to every client: since the
# registry's authorization (issue 21) a register of a port not in the client's `ports` is refused.
ports=$(seq 0 199 | sed 's/.*/"bench-&"/' | paste -sd, -)
for i in $(seq 1 8); do
    "$byst" key gen "c$i" --store "$work/registry.keys" >/dev/null
    "$byst" key export "c$i" --store "$work/registry.keys" | "$byst" key import registry --store "$work/c$i.keys" >/dev/null
    printf '[[peer]]\nname = "c%s"\nkey = "c%s"\nports = [%s]\n' "$i" "$i" "$ports" >>"$work/registry.toml"
    cat >"$work/c$i.toml" <<TOML
[node]
name = "c$i"
control_socket = "$work/c$i.sock"
key_store = "$work/c$i.keys"
[[peer]]
name = "registry"
key = "registry"
endpoint = "byst://127.0.0.1:7100"
links = 1
TOML
done
"$byst" registry serve -c "$work/registry.toml" --log-level warning & pids+=($!)
sleep 1

rate() { sed -nE 's/.* = ([0-9]+) ops\/s.*/\1/p'; }
echo "one client, window 1 (request/response):"
"$bench_tool" registry -c "$work/c1.toml" --operations $((operations / 10)) --window 1
echo "one client, window $window:"
"$bench_tool" registry -c "$work/c1.toml" --operations "$operations" --window "$window"
echo "8 clients at once, window $window each:"
start=$(date +%s%N)
for i in $(seq 1 8); do
    "$bench_tool" registry -c "$work/c$i.toml" --operations "$operations" --window "$window" >"$work/c$i.out" & pids+=($!)
done
for pid in "${pids[@]:1}"; do wait "$pid"; done
elapsed=$(( $(date +%s%N) - start ))
cat "$work"/c*.out
echo "8 clients: $((8 * operations)) operations in $((elapsed / 1000000)) ms wall = $((8 * operations * 1000000000 / elapsed)) ops/s total (incl. process start)"
