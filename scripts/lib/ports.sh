# Loopback test ports, shared by the E2E tests and the benchmarks.
#
# A script that picks fixed ports and binds them a moment later races every outgoing
# connection on the machine, its own included: the kernel hands connecting sockets source
# ports from the ephemeral range (net.ipv4.ip_local_port_range), so a port picked inside that
# range can be taken by a link's connect() before the script's listener binds it. Ports are
# therefore picked below the ephemeral range, where only explicit binds land.

# loopback_port_base COUNT: prints a port P such that P … P+COUNT-1 all lie below the
# ephemeral range and none has a TCP socket on it now. Fails loudly if there is no such run.
loopback_port_base() {
    local count=$1 ephemeral_low lowest=10000 span base _
    read -r ephemeral_low _ </proc/sys/net/ipv4/ip_local_port_range
    span=$((ephemeral_low - lowest - count))
    if [ "$span" -le 0 ]; then
        echo "FAIL: the ephemeral port range starts at $ephemeral_low: no room below it for $count test ports" >&2
        return 1
    fi
    for _ in $(seq 1 50); do
        base=$((lowest + (RANDOM * 32768 + RANDOM) % span))
        if [ -z "$(ss -Htan "( sport >= :$base and sport < :$((base + count)) )")" ]; then
            echo "$base"
            return 0
        fi
    done
    echo "FAIL: no free run of $count TCP ports between $lowest and $ephemeral_low" >&2
    return 1
}
