#!/usr/bin/env bash
# The HA topology shared by the failover tests and benchmark (sourced after deploy/netns/lib.sh):
#
#              ┌──────────── ns r: the registry ─────────────┐
#              │ `byst registry serve`, or 3 etcd members     │
#              │ 10.9.1.1        10.9.2.1        10.9.3.1     │
#              └───┬──────────────────┬───────────────┬───────┘
#   ┌──── ns ha ───┴──┐     ┌──── ns hb ───┴──┐    ┌──┴─ ns br (branch) ─┐
#   │ hub-a 10.9.1.2   │     │ hub-b 10.9.2.2   │    │ 10.9.3.2             │
#   │ byst0 10.0.0.1   │     │ byst0 10.0.0.1   │    │ byst0 10.0.0.2       │
#   │ lan0 10.2.0.2    │     │ lan0 10.2.0.3    │    │ lan0 10.1.0.1        │
#   │ fd00:2::2        │     │ fd00:2::3        │    │                      │
#   │ (+10.2.0.1,      │     │ (+10.2.0.1,      │    │                      │
#   │   fd00:2::1 VIP) │     │   fd00:2::1 VIP) │    │                      │
#   │ 192.168.50.1 ════╪═════╪══════════════════╪════╪═ 192.168.50.2       │
#   └───┬──────────────┘     │ 192.168.51.1 ════╪════╪═ 192.168.51.2       │
#       │                    └───┬──────────────┘    └──────────────────────┘
#   ┌───┴── ns sv: bridge "lan" (the hub LAN) ─┴──┐
#   │ server 10.2.0.10, fd00:2::10,                │
#   │ default via 10.2.0.1                         │
#   └──────────────────────────────────────────────┘
# Both hubs serve HA port "hq" with the same tunnel address; the branch's peer "hq" has
# endpoint "port:hq" and follows whichever hub owns it. The active hub holds the virtual
# address 10.2.0.1 on lan0 (`[ha] address`), the server's only route out of its LAN: no
# hand-made routes, replies follow the address. Each hub's on_active/on_standby appends
# "PORT ROLE REASON" to $BYST_NS_WORK/NODE.notify.
#
# ha_setup BACKEND LEASE   BACKEND: embedded | etcd | etcds
#   etcds: TLS to the members (which require client certificates) and etcd authentication:
#   users hub-ha and hub-hb may read and write the key /byst/ports/hq, user branch may only
#   read it (certificates, keys and passwords in $BYST_NS_WORK/pki).
HA_ETCD_PIDS=()
HA_PKI=${BYST_NS_WORK:?source deploy/netns/lib.sh first}/pki

ha_setup() {
    HA_BACKEND=$1 HA_LEASE=$2
    netns_add r; netns_add ha; netns_add hb; netns_add br
    netns_veth r 10.9.1.1/24 ha 10.9.1.2/24
    netns_veth r 10.9.2.1/24 hb 10.9.2.2/24
    netns_veth r 10.9.3.1/24 br 10.9.3.2/24
    netns_veth ha 192.168.50.1/24 br 192.168.50.2/24
    netns_veth hb 192.168.51.1/24 br 192.168.51.2/24
    ha_lan_segment
    netns_lan br 10.1.0.1/24
    printf '#!/bin/sh\n# on_active / on_standby of the HA tests: one line per call.\necho "$BYST_HA_PORT $BYST_HA_ROLE $BYST_HA_REASON" >>"$1"\n' \
        >"$BYST_NS_WORK/notify.sh"
    chmod 755 "$BYST_NS_WORK/notify.sh"
    # The branch's key for "hq" is shared by both hubs (they are one peer to the branch).
    byst_keys ha br
    "$BYST" key export br --store "$BYST_NS_WORK/ha.keys" | "$BYST" key import br --store "$BYST_NS_WORK/hb.keys" >/dev/null
    if [ "$HA_BACKEND" = embedded ]; then
        for n in ha hb br; do byst_keys r "$n"; done
        ha_registry_config
    else
        [ "$HA_BACKEND" = etcd ] || ha_etcd_pki
        ha_etcd_start
        [ "$HA_BACKEND" = etcd ] || ha_etcd_secure
    fi
    for hub in ha hb; do
        case $hub in ha) mine=10.9.1 side=192.168.50.1 ;; hb) mine=10.9.2 side=192.168.51.1 ;; esac
        cat >"$BYST_NS_WORK/$hub.toml" <<TOML
[node]
name = "hub-$hub"
listen = ["$side:7000"]
control_socket = "$BYST_NS_WORK/$hub.sock"
key_store = "$BYST_NS_WORK/$hub.keys"
$(ha_registry_lines "$mine" "hub-$hub")
[tun]
address = ["10.0.0.1/24"]
[ha]
port = "hq"
advertise = ["byst://$side:7000"]
address = ["10.2.0.1/24 dev lan0", "fd00:2::1/64 dev lan0"]
on_active = ["$BYST_NS_WORK/notify.sh", "$BYST_NS_WORK/$hub.notify"]
on_standby = ["$BYST_NS_WORK/notify.sh", "$BYST_NS_WORK/$hub.notify"]
notify_timeout = "5s"
[[peer]]
name = "branch"
key = "br"
allowed_ips = ["10.0.0.2/32", "10.1.0.0/24"]
$(ha_registry_peer "$mine")
TOML
    done
    cat >"$BYST_NS_WORK/br.toml" <<TOML
[node]
name = "branch"
control_socket = "$BYST_NS_WORK/br.sock"
key_store = "$BYST_NS_WORK/br.keys"
$(ha_registry_lines 10.9.3 branch)
[tun]
address = ["10.0.0.2/24"]
[[peer]]
name = "hq"
key = "ha"
endpoint = "port:hq"
gateways = ["hub-ha", "hub-hb"]
links = 2
allowed_ips = ["10.0.0.0/24", "10.2.0.0/24"]
$(ha_registry_peer 10.9.3)
TOML
}

# ha_lan_segment: the hub LAN: a bridge in ns sv holding the server's address, with each
# hub's lan0 (its own address) plugged in.
ha_lan_segment() {
    local hub address
    netns_add sv
    ip -n "$(ns sv)" link add lan type bridge
    for hub in ha hb; do
        case $hub in ha) address=2 ;; hb) address=3 ;; esac
        ip link add lan0 netns "$(ns "$hub")" type veth peer name "p-$hub" netns "$(ns sv)"
        ip -n "$(ns "$hub")" addr add "10.2.0.$address/24" dev lan0
        ip -n "$(ns "$hub")" addr add "fd00:2::$address/64" dev lan0 nodad
        ip -n "$(ns "$hub")" link set lan0 up
        ip -n "$(ns sv)" link set "p-$hub" master lan up
    done
    ip -n "$(ns sv)" addr add 10.2.0.10/24 dev lan
    ip -n "$(ns sv)" addr add fd00:2::10/64 dev lan nodad
    ip -n "$(ns sv)" link set lan up
    ip -n "$(ns sv)" route add default via 10.2.0.1
}

# ha_holds_vip NODE: NODE's lan0 has the virtual address 10.2.0.1.
ha_holds_vip() { ip -n "$(ns "$1")" -o -4 addr show dev lan0 | grep -q ' 10\.2\.0\.1/'; }

# ha_server_gateway_mac [ADDRESS]: the link-layer address the server has for ADDRESS
# (10.2.0.1) now.
ha_server_gateway_mac() { ip -n "$(ns sv)" neigh show "${1:-10.2.0.1}" dev lan | awk '{for (i = 1; i < NF; i++) if ($i == "lladdr") print $(i + 1)}'; }

# ha_vip_watch_start SECONDS: polls both hubs every 20 ms for SECONDS (bounded) in the
# background; every instant both hold 10.2.0.1 is a line in $BYST_NS_WORK/vip.both, every
# poll one in vip.polls. ha_vip_watch_stop ends it and fails (`fail`) on any overlap.
ha_vip_watch_start() {
    : >"$BYST_NS_WORK/vip.both"; : >"$BYST_NS_WORK/vip.polls"
    HA_VIP_WATCH_FROM=$(date +%s%N)
    (
        end=$(( $(date +%s) + $1 )) next=$(date +%s%N) now=0
        while [ "$(date +%s)" -lt "$end" ]; do
            if ha_holds_vip ha && ha_holds_vip hb; then date +%s.%N >>"$BYST_NS_WORK/vip.both"; fi
            echo >>"$BYST_NS_WORK/vip.polls"
            # Every 20 ms from the start (two `ip` calls take ≈ 10 ms of it).
            next=$((next + 20000000)) now=$(date +%s%N)
            [ "$now" -ge "$next" ] || sleep "0.$(printf '%09d' $((next - now)))"
        done
    ) &
    HA_VIP_WATCH=$!
}

ha_vip_watch_stop() {
    kill "$HA_VIP_WATCH" 2>/dev/null || true
    wait "$HA_VIP_WATCH" 2>/dev/null || true
    local polls both
    polls=$(wc -l <"$BYST_NS_WORK/vip.polls") both=$(wc -l <"$BYST_NS_WORK/vip.both")
    local every=$(( ($(date +%s%N) - HA_VIP_WATCH_FROM) / 1000000 / (polls > 0 ? polls : 1) ))
    echo "virtual address polled $polls times on both hubs (every $every ms): held by both $both times"
    [ "$polls" -gt 100 ] && [ "$every" -le 25 ] || fail "the virtual address was polled only $polls times (every $every ms)"
    [ "$both" -eq 0 ] || fail "both hubs held 10.2.0.1 at once ($both polls, first at $(head -1 "$BYST_NS_WORK/vip.both"))"
}

# [node] lines naming the registry as seen from a namespace whose registry-side subnet is
# $1, for etcd user $2 (etcds).
ha_registry_lines() {
    case $HA_BACKEND in
        embedded) printf 'registry = "peer:registry"\nregistry_lease = "%s"\n' "$HA_LEASE" ;;
        etcd) printf 'registry = "etcd://%s.1:23791,%s.1:23792,%s.1:23793"\nregistry_lease = "%s"\n' "$1" "$1" "$1" "$HA_LEASE" ;;
        etcds) cat <<TOML
registry = "etcds://$1.1:23791,$1.1:23792,$1.1:23793"
registry_lease = "$HA_LEASE"
registry_tls_ca_file = "$HA_PKI/ca.pem"
registry_tls_certificate = "$HA_PKI/$2.pem"
registry_tls_private_key = "$HA_PKI/$2.key"
registry_user = "$2"
registry_password_file = "$HA_PKI/$2.password"
TOML
        ;;
    esac
}

ha_registry_peer() {
    [ "$HA_BACKEND" = embedded ] || return 0
    printf '[[peer]]\nname = "registry"\nkey = "r"\nendpoint = "byst://%s.1:7100"\nlinks = 1\n' "$1"
}

ha_registry_config() {
    cat >"$BYST_NS_WORK/r.toml" <<TOML
[node]
name = "registry"
listen = ["0.0.0.0:7100"]
control_socket = "$BYST_NS_WORK/r.sock"
key_store = "$BYST_NS_WORK/r.keys"
# Client names are the hubs' node names, which the branch lists in its gateways
# (with etcd the owner is the node name too). Only the hubs may own port hq.
[[peer]]
name = "hub-ha"
key = "ha"
ports = ["hq"]
[[peer]]
name = "hub-hb"
key = "hb"
ports = ["hq"]
[[peer]]
name = "branch"
key = "br"
TOML
}

ha_start_registry() {
    netns_run r "$BYST_NS_WORK/r.log" "$BYST" registry serve -c "$BYST_NS_WORK/r.toml" --grace "${HA_GRACE:-10s}" >/dev/null
    HA_REGISTRY_PID=$BYST_NS_LAST_PID
}

# ha_etcd_start: a 3-member cluster in ns r (clients on every r address, peers on loopback).
ha_etcd_start() {
    local cluster='e1=http://127.0.0.1:23801,e2=http://127.0.0.1:23802,e3=http://127.0.0.1:23803' i
    for i in 1 2 3; do ha_etcd_member "$i" new "$cluster"; done
    ha_etcd_healthy() { ha_etcd_curl r root -f -m 1 "$(ha_etcd_url 127.0.0.1 "$1")/health" | grep -q true; }
    for i in 1 2 3; do wait_for 20 ha_etcd_healthy "$i" || { echo "FAIL: etcd member $i not healthy" >&2; tail -20 "$BYST_NS_WORK/etcd$i.log" >&2; exit 1; }; done
}

ha_etcd_member() {
    local i=$1 state=$2 cluster=${3:-e1=http://127.0.0.1:23801,e2=http://127.0.0.1:23802,e3=http://127.0.0.1:23803} tls=()
    [ "$HA_BACKEND" = etcd ] || tls=(--cert-file "$HA_PKI/member.pem" --key-file "$HA_PKI/member.key"
                                     --trusted-ca-file "$HA_PKI/ca.pem" --client-cert-auth)
    netns_run r "$BYST_NS_WORK/etcd$i.log" etcd --name "e$i" --data-dir "$BYST_NS_WORK/etcd$i" \
        --listen-client-urls "$(ha_etcd_url 0.0.0.0 "$i")" --advertise-client-urls "$(ha_etcd_url 10.9.1.1 "$i")" "${tls[@]}" \
        --listen-peer-urls "http://127.0.0.1:2380$i" --initial-advertise-peer-urls "http://127.0.0.1:2380$i" \
        --initial-cluster "$cluster" --initial-cluster-token "byst-ha-$$" --initial-cluster-state "$state" \
        --logger=zap --log-outputs=stderr >/dev/null
    HA_ETCD_PIDS[$i]=$BYST_NS_LAST_PID
}

# ha_etcd_url ADDRESS MEMBER: the member's client URL at ADDRESS.
ha_etcd_url() { if [ "$HA_BACKEND" = etcd ]; then echo "http://$1:2379$2"; else echo "https://$1:2379$2"; fi; }

# ha_etcd_curl NS USER CURL-ARGS…: curl from namespace NS, with USER's client certificate
# (etcds; USER "" for none).
ha_etcd_curl() {
    local n=$1 user=$2 tls=(); shift 2
    [ "$HA_BACKEND" = etcd ] || tls=(--cacert "$HA_PKI/ca.pem")
    [ "$HA_BACKEND" = etcd ] || [ -z "$user" ] || tls+=(--cert "$HA_PKI/$user.pem" --key "$HA_PKI/$user.key")
    ip netns exec "$(ns "$n")" curl -s "${tls[@]}" "$@"
}

# ha_etcd_pki: a CA; one certificate for the members (their client addresses in
# subjectAltName); a client certificate and password per etcd user. No certificate has a
# CommonName: etcd ≥ 3.4.10 refuses gateway requests from a client certificate with one
# (HTTP 400), and over gRPC it would name a user.
ha_etcd_pki() {
    local name
    mkdir -p "$HA_PKI"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=byst-test-ca \
        -keyout "$HA_PKI/ca.key" -out "$HA_PKI/ca.pem" 2>/dev/null
    ha_etcd_certificate member "subjectAltName=IP:10.9.1.1,IP:10.9.2.1,IP:10.9.3.1,IP:127.0.0.1"
    for name in root hub-ha hub-hb branch; do
        ha_etcd_certificate "$name" "extendedKeyUsage=clientAuth"
        (umask 077; head -c 18 /dev/urandom | base64 >"$HA_PKI/$name.password")
    done
}

# ha_etcd_certificate NAME EXTENSION: $HA_PKI/NAME.pem and .key, signed by the CA.
ha_etcd_certificate() {
    echo "$2" >"$HA_PKI/$1.ext"
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/O=byst-test/OU=$1" \
        -keyout "$HA_PKI/$1.key" -out "$HA_PKI/$1.csr" 2>/dev/null
    openssl x509 -req -in "$HA_PKI/$1.csr" -CA "$HA_PKI/ca.pem" -CAkey "$HA_PKI/ca.key" -CAcreateserial -days 1 \
        -extfile "$HA_PKI/$1.ext" -out "$HA_PKI/$1.pem" 2>/dev/null
}

# ha_etcdctl ARGS…: etcdctl in ns r over TLS as root (with its password once auth is enabled).
ha_etcdctl() {
    local user=()
    [ -z "${HA_ETCD_AUTH:-}" ] || user=(--user "root:$(cat "$HA_PKI/root.password")")
    ip netns exec "$(ns r)" etcdctl --endpoints "https://127.0.0.1:23791" --cacert "$HA_PKI/ca.pem" \
        --cert "$HA_PKI/root.pem" --key "$HA_PKI/root.key" "${user[@]}" "$@" >/dev/null
}

# ha_etcd_secure: the users, their roles on the port key of "hq", then authentication on.
ha_etcd_secure() {
    local name
    for name in root hub-ha hub-hb branch; do ha_etcdctl user add "$name" --new-user-password "$(cat "$HA_PKI/$name.password")"; done
    ha_etcdctl user grant-role root root
    ha_etcdctl role add hq-gateway
    ha_etcdctl role grant-permission hq-gateway readwrite /byst/ports/hq
    ha_etcdctl role add hq-branch
    ha_etcdctl role grant-permission hq-branch read /byst/ports/hq
    for name in hub-ha hub-hb; do ha_etcdctl user grant-role "$name" hq-gateway; done
    ha_etcdctl user grant-role branch hq-branch
    ha_etcdctl auth enable
    HA_ETCD_AUTH=1
}

# ha_etcd_token NS USER: a token for USER (with its certificate and password), from NS.
ha_etcd_token() {
    ha_etcd_curl "$1" "$2" -X POST "$(ha_etcd_url "${HA_ETCD_HOST[$1]}" 1)/v3/auth/authenticate" \
        -d "{\"name\":\"$2\",\"password\":\"$(cat "$HA_PKI/$2.password")\"}" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])'
}
declare -A HA_ETCD_HOST=([r]=127.0.0.1 [ha]=10.9.1.1 [hb]=10.9.2.1 [br]=10.9.3.1)

# ha_start_topology: hub A active, then hub B standby, then the branch reaching the hub LAN
# (fails the test otherwise); the hubs' PIDs in $HA_PID_A and $HA_PID_B. Uses the caller's
# `fail`.
ha_start_topology() {
    ha_start ha; HA_PID_A=$HA_PID
    wait_for 10 ha_is ha active || fail "hub A did not become active"
    ha_start hb; HA_PID_B=$HA_PID
    wait_for 10 ha_is hb standby || fail "hub B did not settle as standby"
    ha_start br
    wait_for 15 ha_branch_reaches || fail "the branch does not reach the hub LAN"
}

# ha_expect_failover PID LEASE_MS: kill -9 PID (the active hub A) during a ping; traffic must
# resume through hub B within 2 × lease (the measured gap is printed).
ha_expect_failover() {
    local ms
    ms=$(ha_measure_failover "$1" KILL ha)
    [ -n "$ms" ] || fail "no traffic through hub B within 11 s of killing hub A"
    echo "failover after kill -9 of the active hub: ${ms} ms without replies (lease $2 ms)"
    [ "$ms" -le $((2 * $2)) ] || fail "failover took ${ms} ms, more than 2 × lease"
    ha_is hb active || fail "hub B is not active after the failover"
}

# ha_kill_series KILLS [SIGNAL]: kills the active hub KILLS times (alternating hubs, each
# restarted and waited for as standby), measuring each failover with ha_measure_failover
# (which runs `byst ha release` for the victim unless HA_NO_RELEASE is set);
# the hubs' PIDs in $HA_PID_A / $HA_PID_B (updated), the gaps (ms) in HA_GAPS. Uses `fail`.
ha_kill_series() {
    local kills=$1 signal=${2:-KILL} i ms active standby victim
    HA_GAPS=()
    if ha_is ha active; then active=ha standby=hb; else active=hb standby=ha; fi
    for i in $(seq 1 "$kills"); do
        if [ "$active" = ha ]; then victim=$HA_PID_A; else victim=$HA_PID_B; fi
        ms=$(ha_measure_failover "$victim" "$signal" "$([ -n "${HA_NO_RELEASE:-}" ] || echo "$active")")
        [ -n "$ms" ] || fail "kill $i ($active): no traffic through $standby within 11 s"
        HA_GAPS+=("$ms")
        echo "kill -$signal $i ($active → $standby): ${ms} ms without replies"
        wait "$victim" 2>/dev/null || true
        ha_is "$standby" active || fail "kill $i: $standby is not active after the failover"
        ha_start "$active"
        if [ "$active" = ha ]; then HA_PID_A=$HA_PID; else HA_PID_B=$HA_PID; fi
        wait_for 10 ha_is "$active" standby || fail "kill $i: $active did not come back as standby"
        local swap=$active; active=$standby; standby=$swap
    done
}

# ha_partition_series CUTS: cuts the active hub's link to the registry namespace CUTS times
# (alternating hubs: the cut one must step down, the other take over; the link comes back
# and the cut hub must settle as standby), measuring each outage with ha_measure_partition;
# the gaps (ms) in HA_GAPS. Uses `fail`.
ha_partition_series() {
    local cuts=$1 i ms active standby
    HA_GAPS=()
    if ha_is ha active; then active=ha standby=hb; else active=hb standby=ha; fi
    for i in $(seq 1 "$cuts"); do
        ms=$(ha_measure_partition "$active")
        [ -n "$ms" ] || fail "cut $i ($active): no traffic through $standby within 11 s"
        HA_GAPS+=("$ms")
        echo "cut $i ($active from the registry → $standby): ${ms} ms without replies"
        ha_is "$standby" active || fail "cut $i: $standby is not active after the cut"
        ip -n "$(ns "$active")" link set "v-$active-r" up
        wait_for 20 ha_is "$active" standby || fail "cut $i: $active did not settle as standby once reconnected"
        local swap=$active; active=$standby; standby=$swap
    done
}

# ha_measure_partition NODE: like ha_measure_failover, but the active hub NODE is cut from
# the registry namespace (its veth there down; branches still reach it) instead of killed.
# It keeps serving until its lease margin, so the outage is the longest stretch without
# replies from the last reply before the cut to the end of the 12 s of pings.
ha_measure_partition() {
    local log="$BYST_NS_WORK/ping.$RANDOM" cut_at ping
    ip netns exec "$(ns br)" ping -D -n -i 0.02 -W 1 -w 12 -I 10.1.0.1 "${HA_PING_TARGET:-10.2.0.10}" >"$log" 2>&1 &
    ping=$!
    sleep 1
    cut_at=$(date +%s.%N)
    ip -n "$(ns "$1")" link set "v-$1-r" down
    wait "$ping" || true
    python3 - "$log" "$cut_at" <<'PY'
import re, sys
cut = float(sys.argv[2])
replies = [float(m.group(1)) for m in (re.match(r"\[(\d+\.\d+)\].*bytes from", line) for line in open(sys.argv[1])) if m]
before = [r for r in replies if r < cut]
span = [r for r in replies if before and r >= before[-1]]
if len(span) > 1 and span[-1] > cut + 1:
    print(int(max(b - a for a, b in zip(span, span[1:])) * 1000))
PY
}

# ha_etcd_election_series N: kills the etcd raft leader N times (restarted each time as an
# existing member); each election time, kill to the first write etcd accepts on a surviving
# member (a put every 20 ms, 500 ms deadline each), in HA_GAPS (ms). Uses `fail`.
ha_etcd_election_series() {
    local n=$1 i leader other start now ms key
    HA_GAPS=()
    local transitions_before=$(( $(ha_transitions ha) + $(ha_transitions hb) ))
    key=$(printf /byst/bench/election | base64)
    for i in $(seq 1 "$n"); do
        leader=$(ha_etcd_leader) || fail "election $i: no etcd leader"
        other=$(( leader % 3 + 1 ))
        start=$(date +%s%N)
        kill -9 "${HA_ETCD_PIDS[$leader]}"
        ms=""
        for _ in $(seq 1 500); do
            if ha_etcd_curl r root -f -m 0.5 -X POST "$(ha_etcd_url 127.0.0.1 "$other")/v3/kv/put" -d "{\"key\":\"$key\",\"value\":\"$key\"}" >/dev/null 2>&1; then
                now=$(date +%s%N) ms=$(( (now - start) / 1000000 )); break
            fi
            sleep 0.02
        done
        [ -n "$ms" ] || fail "election $i: no write accepted within 10 s of killing member $leader"
        HA_GAPS+=("$ms")
        echo "election $i: leader member $leader killed, a write accepted after ${ms} ms"
        wait "${HA_ETCD_PIDS[$leader]}" 2>/dev/null || true
        ha_etcd_member "$leader" existing
        healthy() { ha_etcd_curl r root -f -m 1 "$(ha_etcd_url 127.0.0.1 "$leader")/health" | grep -q true; }
        wait_for 20 healthy || fail "election $i: member $leader did not rejoin"
        sleep 2
    done
    echo "hub role changes during the $n elections: $(( $(ha_transitions ha) + $(ha_transitions hb) - transitions_before ))"
}

# ha_gap_summary: "min M median M p90 M max M" (ms) of HA_GAPS, as shell assignments when
# given "vars" (gap_median=…; gap_max=…).
ha_gap_summary() {
    printf '%s\n' "${HA_GAPS[@]}" | python3 -c '
import sys, statistics
v = sorted(int(x) for x in sys.stdin)
q = lambda p: v[min(len(v) - 1, int(round(p * (len(v) - 1))))]
if sys.argv[1:] == ["vars"]: print(f"gap_median={int(statistics.median(v))} gap_max={v[-1]}")
else: print(f"{len(v)} kills: min {v[0]} ms, median {statistics.median(v):.0f} ms, p90 {q(0.9)} ms, max {v[-1]} ms")' "$@"
}

# ha_etcd_leader: the number (1-3) of the member that is the raft leader now.
ha_etcd_leader() {
    local i status
    for i in 1 2 3; do
        status=$(ha_etcd_curl r root -f -m 2 -X POST -d '{}' "$(ha_etcd_url 127.0.0.1 "$i")/v3/maintenance/status") || continue
        python3 -c 'import json,sys; s=json.loads(sys.argv[1]); sys.exit(0 if s.get("leader") == s["header"]["member_id"] else 1)' "$status" && { echo "$i"; return 0; }
    done
    return 1
}

ha_start() {  # ha_start NODE: its PID in $HA_PID
    netns_run "$1" "$BYST_NS_WORK/$1.log" "$BYST" up -c "$BYST_NS_WORK/$1.toml" --log-format json >/dev/null
    HA_PID=$BYST_NS_LAST_PID
}

ha_status() { "$BYST" status --json --socket "$BYST_NS_WORK/$1.sock" 2>/dev/null; }

# ha_port_field NODE FIELD [PORT]: FIELD of NODE's HA port PORT (default: its first) in
# `byst status --json` (nothing when down).
ha_port_field() {
    ha_status "$1" | python3 -c '
import json, sys
ports = json.load(sys.stdin)["ha"]["ports"]
port = next(p for p in ports if p["port"] == sys.argv[2]) if sys.argv[2] else ports[0]
print(json.dumps(port[sys.argv[1]]) if sys.argv[1] == "recent" else port[sys.argv[1]])' "$2" "${3:-}" 2>/dev/null
}

# ha_role NODE [PORT]: active | standby | claiming | (nothing when down)
ha_role() { ha_port_field "$1" role "${2:-}"; }
ha_is() { [ "$(ha_role "$1" "${3:-}")" = "$2" ]; }  # ha_is NODE ROLE [PORT]
ha_transitions() { ha_port_field "$1" transitions "${2:-}"; }

# ha_transition_time NODE ROLE: epoch seconds (ms precision) of NODE's last transition to ROLE.
ha_transition_time() {
    ha_port_field "$1" recent | python3 -c '
import json, sys, datetime
role = sys.argv[1]
times = [t["at"] for t in json.load(sys.stdin) if t["role"] == role]
print(datetime.datetime.strptime(times[-1], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc).timestamp() if times else "")' "$2"
}

# ha_branch_reaches: the server on the hub LAN answers through the tunnel (its reply through
# the virtual address).
ha_branch_reaches() { ip netns exec "$(ns br)" ping -c 1 -W 1 -I 10.1.0.1 10.2.0.10 >/dev/null 2>&1; }

# ha_measure_failover PID [SIGNAL] [NODE]: pings every 20 ms from the branch LAN to the hub LAN's server,
# sends PID SIGNAL (KILL), and, once it is gone, runs `byst ha release` for NODE as systemd's
# ExecStopPost would (the addresses a killed process leaves); prints the longest stretch without replies between the last
# reply before the signal and the first reply through the survivor, in ms ("" if none within
# 11 s). `kill` returns before the process is gone, and the dying hub may still answer
# a ping in its last milliseconds (seen in the chaos soak: "5 ms"), so only a reply to a
# request sent after the victim died (exited or zombie) ends the outage.
ha_measure_failover() {
    local victim=$1 signal=${2:-KILL} node=${3:-} log="$BYST_NS_WORK/ping.$RANDOM" signal_at dead_at ping
    ip netns exec "$(ns br)" ping -D -n -i 0.02 -W 1 -w 12 -I 10.1.0.1 "${HA_PING_TARGET:-10.2.0.10}" >"$log" 2>&1 &
    ping=$!
    sleep 1
    signal_at=$(date +%s.%N)
    kill "-$signal" "$victim"
    for _ in $(seq 1 1000); do
        [ -e "/proc/$victim" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$victim/status" 2>/dev/null || break
        sleep 0.01
    done
    dead_at=$(date +%s.%N)
    [ -z "$node" ] || ip netns exec "$(ns "$node")" "$BYST" ha release -c "$BYST_NS_WORK/$node.toml" >>"$BYST_NS_WORK/$node.release" 2>&1 \
        || echo "ha release for $node failed (see $BYST_NS_WORK/$node.release)" >&2
    wait "$ping" || true
    python3 - "$log" "$signal_at" "$dead_at" <<'PY'
import re, sys
signal, dead = float(sys.argv[2]), float(sys.argv[3])
replies = []  # (received, sent)
for line in open(sys.argv[1]):
    m = re.match(r"\[(\d+\.\d+)\].*bytes from.* time=([\d.]+) ms", line)
    if m: replies.append((float(m.group(1)), float(m.group(1)) - float(m.group(2)) / 1000))
before = [r for r, _ in replies if r < signal]
after = [r for r, sent in replies if sent > dead]
if before and after:
    span = sorted(r for r, _ in replies if before[-1] <= r <= after[0])
    print(int(max(b - a for a, b in zip(span, span[1:])) * 1000))
PY
}