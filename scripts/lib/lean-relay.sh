# The reference relay of Benchmarks/LeanRelay as a tunnel between the namespaces of
# scripts/bench/harness, for bench-rtt.sh and bench-arc.sh; sourced after the harness's lib.sh
# (spawn, NS_A/NS_B, UNDER_B, INNER_A/INNER_B) with $relay the byst-lean-relay binary and
# $PDIR the run's directory.

# peer_lean [--nio] : B listens on its underlay address, A dials; a fresh random key.
peer_lean() {
    head -c 32 /dev/urandom >"$PDIR/key"
    spawn "$NS_B" "$PDIR/b.log" "$relay" listen lean0 "$UNDER_B" 7100 "$PDIR/key" "$@"
    spawn "$NS_A" "$PDIR/a.log" "$relay" dial lean0 "$UNDER_B" 7100 "$PDIR/key" "$@"
    local ns inner
    for ns in "$NS_A" "$NS_B"; do
        for _ in $(seq 50); do ip -n "$ns" link show lean0 >/dev/null 2>&1 && break; sleep 0.1; done
        inner=$INNER_A
        [ "$ns" = "$NS_A" ] || inner=$INNER_B
        ip -n "$ns" addr add "$inner/24" dev lean0
        ip -n "$ns" link set lean0 up
    done
}
