#!/usr/bin/env bash
# Real HTTP/1.1 proxies for the end-to-end tests: a private squid (forward proxy, CONNECT,
# optional Basic auth), a private nginx (reverse proxy, streaming or request-buffering), a
# private tinyproxy (forward proxy and CONNECT that closes every connection after one answer),
# a private haproxy (reverse proxy with its default settings, optionally
# `option http-buffer-request`) and a private Apache httpd (mod_proxy_http reverse proxy).
#
#   source Tests/E2E/lib/proxies.sh
#   proxy_require
#   trap 'proxies_cleanup; my_cleanup' EXIT INT TERM
#   start_squid 41000 alice:secret        # PROXY_LAST_PID, PROXY_LAST_DIR are set
#   start_nginx_reverse 41001 41002 buffered
#   start_tinyproxy 41003
#   start_haproxy_reverse 41004 41002 buffer-request
#   start_apache_reverse 41005 41002
#   start_http_origin 41006 64           # a web server to measure a proxy alone with curl
#
# Sourcing defines functions and variables only. Call the start_* functions directly (not
# in $(…)): they register their PID in this shell for proxies_cleanup. Each instance lives
# in its own temp dir (config, pid file, logs: access.log, cache.log / error.log), binds to
# 127.0.0.1 only and only forwards to 127.0.0.1. Processes are stopped by PID, never by name.
# With PROXY_NETNS set to a network namespace's name, the start_* functions run the proxy in
# that namespace (its loopback, e.g. beside BYST nodes the caller started there) instead.
#
# Executed directly (`bash Tests/E2E/lib/proxies.sh`) it runs a short self-test of the
# harness. It lives in lib/ so that scripts/test.sh (which runs every Tests/E2E/*.sh) skips it.

BYST_PROXY_PIDS=()
BYST_PROXY_DIRS=()
PROXY_LAST_PID=
PROXY_LAST_DIR=
PROXY_NETNS=${PROXY_NETNS:-}

proxy_require() {
    local tool
    for tool in squid nginx htpasswd tinyproxy haproxy apache2; do
        command -v "$tool" >/dev/null 2>&1 || {
            echo "FAIL: required tool '$tool' not found (Debian packages: squid nginx apache2-utils tinyproxy haproxy apache2; see scripts/setup.sh)" >&2
            exit 1
        }
    done
    for helper in basic_ncsa_auth digest_file_auth ntlm_fake_auth; do
        [ -x "/usr/lib/squid/$helper" ] || { echo "FAIL: /usr/lib/squid/$helper not found (package squid)" >&2; exit 1; }
    done
}

# _proxy_listening PORT: something accepts TCP connections on 127.0.0.1:PORT (of $PROXY_NETNS
# when set).
_proxy_listening() {
    if [ -n "$PROXY_NETNS" ]; then
        ip netns exec "$PROXY_NETNS" bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
    else
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
    fi
}

# _proxy_start DIR PORT LOG NAME COMMAND…: COMMAND in the background (in $PROXY_NETNS when
# set; its output in DIR/stderr.log), registered for proxies_cleanup, then waited for until
# it listens on PORT (LOG is shown if it does not); sets PROXY_LAST_PID and PROXY_LAST_DIR.
# `ip netns exec` execs COMMAND, so the PID is the proxy's own either way.
_proxy_start() {
    local dir=$1 port=$2 log=$3 name=$4 pid
    shift 4
    if [ -n "$PROXY_NETNS" ]; then
        ip netns exec "$PROXY_NETNS" "$@" >"$dir/stderr.log" 2>&1 &
    else
        "$@" >"$dir/stderr.log" 2>&1 &
    fi
    pid=$!
    BYST_PROXY_PIDS+=("$pid")
    _proxy_wait "$pid" "$port" "$log" "$name"
    PROXY_LAST_PID=$pid PROXY_LAST_DIR=$dir
}

_proxy_fail() {
    local log=$1; shift
    echo "FAIL: $*" >&2
    [ -f "$log" ] && { echo "--- $log" >&2; tail -20 "$log" >&2; }
    exit 1
}

# _proxy_wait PID PORT LOG NAME: up to 20 s for PID to accept connections on PORT.
_proxy_wait() {
    local pid=$1 port=$2 log=$3 name=$4
    for _ in $(seq 1 200); do
        kill -0 "$pid" 2>/dev/null || _proxy_fail "$log" "$name (pid $pid) exited before listening on 127.0.0.1:$port"
        _proxy_listening "$port" && return 0
        sleep 0.1
    done
    _proxy_fail "$log" "$name (pid $pid) not listening on 127.0.0.1:$port after 20 s"
}

_proxy_port_free() {
    local port=$1 name=$2
    [[ "$port" =~ ^[0-9]+$ ]] && [ "$port" -gt 0 ] && [ "$port" -lt 65536 ] || { echo "FAIL: $name: bad port '$port'" >&2; exit 1; }
    if _proxy_listening "$port"; then
        echo "FAIL: $name: 127.0.0.1:$port is already in use" >&2; exit 1
    fi
}

# start_squid PORT [USER:PASSWORD [SCHEME]]: squid on 127.0.0.1:PORT, a forward proxy
# (absolute-URI requests and CONNECT to any port) for clients on 127.0.0.1 to destinations on
# 127.0.0.1 only. With USER:PASSWORD, proxy auth is required (407 without it), by SCHEME:
#   basic  (default) basic_ncsa_auth with an htpasswd file
#   digest digest_file_auth with a user:password file
#   ntlm   ntlm_fake_auth (accepts any user: it checks the message exchange, not the
#          password), keep_alive on
# Digest and NTLM squids offer Basic as well, with another password: a client must pick the
# stronger scheme to get through.
# No cache, no body size limit, long timeouts.
start_squid() {
    local port=$1 credentials=${2:-} scheme=${3:-basic} dir
    _proxy_port_free "$port" start_squid
    dir=$(mktemp -d "/tmp/byst-squid.$$.XXXX")
    BYST_PROXY_DIRS+=("$dir")
    local auth_lines="" access_lines="http_access allow byst_clients byst_targets"
    if [ -n "$credentials" ]; then
        [[ "$credentials" == *:* ]] || { echo "FAIL: start_squid: credentials must be USER:PASSWORD" >&2; exit 1; }
        # With Digest or NTLM, Basic (offered too) knows another password: a client that
        # answers Basic where it should have picked the stronger scheme is refused.
        local basic_password=${credentials#*:}
        [ "$scheme" = basic ] || basic_password="not-$basic_password"
        htpasswd -c -b -m "$dir/passwd" "${credentials%%:*}" "$basic_password" 2>/dev/null \
            || { echo "FAIL: start_squid: htpasswd failed" >&2; exit 1; }
        local basic_lines="auth_param basic program /usr/lib/squid/basic_ncsa_auth $dir/passwd
auth_param basic children 2 startup=1 idle=1
auth_param basic realm byst-test
auth_param basic credentialsttl 1 hour"
        case "$scheme" in
            basic) auth_lines=$basic_lines ;;
            digest)
                printf '%s\n' "$credentials" >"$dir/digest-passwd"
                # Squid offers the schemes in the order configured: Basic first, so that
                # choosing Digest is the client's doing.
                auth_lines="$basic_lines
auth_param digest program /usr/lib/squid/digest_file_auth $dir/digest-passwd
auth_param digest children 2 startup=1 idle=1
auth_param digest realm byst-test
auth_param digest nonce_max_duration 30 minutes
auth_param digest nonce_max_count 50" ;;
            ntlm)
                auth_lines="$basic_lines
auth_param ntlm program /usr/lib/squid/ntlm_fake_auth
auth_param ntlm children 2 startup=1 idle=1
auth_param ntlm keep_alive on" ;;
            *) echo "FAIL: start_squid: scheme must be basic, digest or ntlm, not '$scheme'" >&2; exit 1 ;;
        esac
        auth_lines="$auth_lines
acl byst_authenticated proxy_auth REQUIRED"
        access_lines="http_access deny !byst_authenticated
$access_lines"
    fi
    cat >"$dir/squid.conf" <<CONF
# Private test instance (Tests/E2E/proxies.sh). Loopback only.
http_port 127.0.0.1:$port
visible_hostname byst-test-squid
pid_filename $dir/squid.pid
cache_log $dir/cache.log
access_log stdio:$dir/access.log
cache_store_log none
coredump_dir $dir
netdb_filename none
logfile_rotate 0
pinger_enable off
icp_port 0
htcp_port 0
dns_nameservers 127.0.0.1
cache deny all
cache_mem 0 MB
request_body_max_size 0
reply_body_max_size none
connect_timeout 10 seconds
read_timeout 10 minutes
write_timeout 10 minutes
request_timeout 5 minutes
client_lifetime 1 day
client_idle_pconn_timeout 5 minutes
server_idle_pconn_timeout 5 minutes
shutdown_lifetime 0 seconds
$auth_lines
acl byst_clients src 127.0.0.1/32
acl byst_targets dst 127.0.0.1/32
http_access deny !byst_clients
http_access deny !byst_targets
$access_lines
http_access deny all
CONF
    # Squid drops privileges to `proxy` when started as root: it must be able to use the dir.
    if [ "$(id -u)" -eq 0 ] && id proxy >/dev/null 2>&1; then
        printf 'cache_effective_user proxy\n' >>"$dir/squid.conf"
        chown -R proxy: "$dir"
    fi
    chmod 755 "$dir"
    squid -k parse -f "$dir/squid.conf" >"$dir/parse.log" 2>&1 \
        || _proxy_fail "$dir/parse.log" "start_squid: squid rejected its config $dir/squid.conf"
    # -N: no daemon, no kid processes: the PID started here is squid itself.
    _proxy_start "$dir" "$port" "$dir/cache.log" squid squid -N -f "$dir/squid.conf"
}

# _nginx_config DIR CALLER HTTP_LINES: a private nginx's DIR/nginx.conf (one worker, in the
# foreground, pid, logs and temp files in DIR) with HTTP_LINES inside its http block, checked
# with `nginx -t`. As root its workers run as www-data, which then owns DIR.
_nginx_config() {
    local dir=$1 caller=$2 http_lines=$3 user_line=""
    if [ "$(id -u)" -eq 0 ] && id www-data >/dev/null 2>&1; then
        user_line="user www-data www-data;"
        chown -R www-data: "$dir"
    fi
    chmod -R a+rX "$dir"
    cat >"$dir/nginx.conf" <<CONF
# Private test instance (Tests/E2E/lib/proxies.sh). Loopback only.
$user_line
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log info;
events { worker_connections 256; }
http {
    access_log $dir/access.log;
    client_body_temp_path $dir/client_body;
    proxy_temp_path $dir/proxy_temp;
    fastcgi_temp_path $dir/fastcgi_temp;
    uwsgi_temp_path $dir/uwsgi_temp;
    scgi_temp_path $dir/scgi_temp;
$http_lines
}
CONF
    nginx -t -p "$dir" -c "$dir/nginx.conf" >"$dir/test.log" 2>&1 \
        || _proxy_fail "$dir/test.log" "$caller: nginx rejected its config $dir/nginx.conf"
}

# start_http_origin PORT MIB: nginx on 127.0.0.1:PORT as a plain web server, the far end of a
# proxy's own throughput (benchmarks): GET /big sends MIB MiB of zeros (a sparse file: it
# takes no memory), and a request to /sink gets 204 while its body is read and
# thrown away for up to an hour.
start_http_origin() {
    local port=$1 mib=$2 dir
    [[ "$mib" =~ ^[0-9]+$ ]] || { echo "FAIL: start_http_origin: bad size '$mib'" >&2; exit 1; }
    _proxy_port_free "$port" start_http_origin
    dir=$(mktemp -d "/dev/shm/byst-origin.$$.XXXX")  # tmpfs: its holes read fast (on disk: 8× slower)
    BYST_PROXY_DIRS+=("$dir")
    mkdir "$dir/www"
    truncate -s "${mib}M" "$dir/www/big"
    _nginx_config "$dir" start_http_origin "    sendfile on;
    server {
        listen 127.0.0.1:$port;
        root $dir/www;
        client_max_body_size 0;
        lingering_time 1h;
        location = /sink { return 204; }
    }"
    _proxy_start "$dir" "$port" "$dir/error.log" nginx nginx -p "$dir" -c "$dir/nginx.conf"
}

# start_nginx_reverse PORT UPSTREAM_PORT [buffered|stock-buffers]: nginx on 127.0.0.1:PORT
# proxying every request to http://127.0.0.1:UPSTREAM_PORT over HTTP/1.1, streaming both ways
# (proxy_buffering off, proxy_request_buffering off) through 1 MiB buffers, as
# docs/OPERATIONS.md advises. `buffered` turns request buffering on (nginx then reads the whole
# request body before it sends anything upstream); `stock-buffers` keeps nginx's own buffer
# sizes (4–16 KiB: half the throughput, and duplex uploads can stall).
start_nginx_reverse() {
    local port=$1 upstream=$2 mode=${3:-} dir request_buffering=off
    local buffers="proxy_buffer_size 1m; proxy_buffers 4 1m; proxy_busy_buffers_size 1m; client_body_buffer_size 1m;"
    case "$mode" in
        "") ;;
        buffered) request_buffering=on ;;
        stock-buffers) buffers="" ;;
        *) echo "FAIL: start_nginx_reverse: third argument must be 'buffered', 'stock-buffers' or absent, not '$mode'" >&2; exit 1 ;;
    esac
    [[ "$upstream" =~ ^[0-9]+$ ]] || { echo "FAIL: start_nginx_reverse: bad upstream port '$upstream'" >&2; exit 1; }
    _proxy_port_free "$port" start_nginx_reverse
    dir=$(mktemp -d "/tmp/byst-nginx.$$.XXXX")
    BYST_PROXY_DIRS+=("$dir")
    _nginx_config "$dir" start_nginx_reverse "    map \$http_upgrade \$connection_upgrade { default upgrade; '' close; }
    server {
        listen 127.0.0.1:$port;
        client_max_body_size 0;
        client_body_timeout 300s;
        send_timeout 300s;
        keepalive_timeout 300s;
        location / {
            proxy_pass http://127.0.0.1:$upstream;
            proxy_http_version 1.1;
            proxy_set_header Host \$http_host;
            proxy_set_header Upgrade \$http_upgrade;
            proxy_set_header Connection \$connection_upgrade;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_buffering off;
            proxy_request_buffering $request_buffering;
            $buffers
            proxy_connect_timeout 10s;
            proxy_read_timeout 300s;
            proxy_send_timeout 300s;
        }
    }"
    # daemon off: the PID started here is nginx's master (SIGTERM stops it and its worker).
    _proxy_start "$dir" "$port" "$dir/error.log" nginx nginx -p "$dir" -c "$dir/nginx.conf"
}

# start_apache_reverse PORT UPSTREAM_PORT: Apache httpd (event MPM, mod_proxy_http) on
# 127.0.0.1:PORT proxying requests under /byst to http://127.0.0.1:UPSTREAM_PORT over HTTP/1.1,
# passing WebSocket upgrades (`upgrade=websocket`) and each write of a response at once
# (`flushpackets=on`), as docs/OPERATIONS.md advises.
start_apache_reverse() {
    local port=$1 upstream=$2 dir modules=/usr/lib/apache2/modules user_lines=""
    [[ "$upstream" =~ ^[0-9]+$ ]] || { echo "FAIL: start_apache_reverse: bad upstream port '$upstream'" >&2; exit 1; }
    _proxy_port_free "$port" start_apache_reverse
    dir=$(mktemp -d "/tmp/byst-apache.$$.XXXX")
    BYST_PROXY_DIRS+=("$dir")
    # As root, children run as www-data.
    if [ "$(id -u)" -eq 0 ] && id www-data >/dev/null 2>&1; then
        user_lines="User www-data
Group www-data"
    fi
    chmod 755 "$dir"
    cat >"$dir/httpd.conf" <<CONF
# Private test instance (Tests/E2E/lib/proxies.sh). Loopback only.
ServerRoot "$dir"
ServerName 127.0.0.1
Listen 127.0.0.1:$port
PidFile "$dir/httpd.pid"
Mutex file:$dir default
ErrorLog "$dir/error.log"
LogLevel warn
$user_lines
LoadModule mpm_event_module $modules/mod_mpm_event.so
LoadModule authz_core_module $modules/mod_authz_core.so
LoadModule proxy_module $modules/mod_proxy.so
LoadModule proxy_http_module $modules/mod_proxy_http.so
Timeout 300
KeepAliveTimeout 300
ProxyTimeout 300
ProxyPass "/byst" "http://127.0.0.1:$upstream/byst" upgrade=websocket flushpackets=on
CONF
    apache2 -t -f "$dir/httpd.conf" >"$dir/test.log" 2>&1 \
        || _proxy_fail "$dir/test.log" "start_apache_reverse: httpd rejected its config $dir/httpd.conf"
    # -DFOREGROUND: the PID started here is httpd's parent (SIGTERM stops it and its children).
    _proxy_start "$dir" "$port" "$dir/error.log" apache2 apache2 -DFOREGROUND -f "$dir/httpd.conf"
}

# start_tinyproxy PORT: tinyproxy on 127.0.0.1:PORT, a forward proxy (absolute-URI requests
# and CONNECT to any port) for clients on 127.0.0.1 to the host 127.0.0.1 only (a filter
# refuses every other host with 403 before connecting). tinyproxy 1.11 keeps no connection
# alive: it answers a request as HTTP/1.1 without `Connection: close` and closes right after.
start_tinyproxy() {
    local port=$1 dir user_lines=""
    _proxy_port_free "$port" start_tinyproxy
    dir=$(mktemp -d "/tmp/byst-tinyproxy.$$.XXXX")
    BYST_PROXY_DIRS+=("$dir")
    printf '^127\\.0\\.0\\.1$\n' >"$dir/filter"
    # As root it drops privileges: to its package's user, which must be able to write its log.
    if [ "$(id -u)" -eq 0 ] && id tinyproxy >/dev/null 2>&1; then
        user_lines="User tinyproxy
Group tinyproxy"
        chown tinyproxy: "$dir"
    fi
    chmod 755 "$dir"
    cat >"$dir/tinyproxy.conf" <<CONF
# Private test instance (Tests/E2E/lib/proxies.sh). Loopback only.
$user_lines
Port $port
Listen 127.0.0.1
Timeout 600
MaxClients 256
Allow 127.0.0.1
LogFile "$dir/tinyproxy.log"
LogLevel Info
PidFile "$dir/tinyproxy.pid"
DisableViaHeader Yes
Filter "$dir/filter"
FilterExtended On
FilterDefaultDeny Yes
CONF
    # -d: foreground: the PID started here is tinyproxy itself (one process, a thread per client).
    _proxy_start "$dir" "$port" "$dir/stderr.log" tinyproxy tinyproxy -d -c "$dir/tinyproxy.conf"
}

# start_haproxy_reverse PORT UPSTREAM_PORT [buffer-request|no-delay]: haproxy on 127.0.0.1:PORT in
# HTTP mode, proxying every request to 127.0.0.1:UPSTREAM_PORT with haproxy's defaults (no
# `option http-no-delay`: while a message body is unfinished haproxy sends with MSG_MORE, so
# the kernel holds small writes until an ACK or ~200 ms pass). `buffer-request` adds
# `option http-buffer-request` (haproxy waits for a full buffer or the whole request body
# before it connects upstream); `no-delay` adds `option http-no-delay` (no MSG_MORE).
start_haproxy_reverse() {
    local port=$1 upstream=$2 mode=${3:-} dir buffer_line="" user_lines=""
    case "$mode" in
        "") ;;
        buffer-request) buffer_line="option http-buffer-request" ;;
        no-delay) buffer_line="option http-no-delay" ;;
        *) echo "FAIL: start_haproxy_reverse: third argument must be 'buffer-request', 'no-delay' or absent, not '$mode'" >&2; exit 1 ;;
    esac
    [[ "$upstream" =~ ^[0-9]+$ ]] || { echo "FAIL: start_haproxy_reverse: bad upstream port '$upstream'" >&2; exit 1; }
    _proxy_port_free "$port" start_haproxy_reverse
    dir=$(mktemp -d "/tmp/byst-haproxy.$$.XXXX")
    BYST_PROXY_DIRS+=("$dir")
    if [ "$(id -u)" -eq 0 ] && id haproxy >/dev/null 2>&1; then
        user_lines="user haproxy
    group haproxy"
    fi
    chmod 755 "$dir"
    cat >"$dir/haproxy.cfg" <<CONF
# Private test instance (Tests/E2E/lib/proxies.sh). Loopback only.
global
    $user_lines
    maxconn 1024
    log stderr format raw local0 info

defaults
    mode http
    log global
    option httplog
    timeout connect 10s
    timeout client 300s
    timeout server 300s
    timeout http-request 10s

frontend byst_front
    bind 127.0.0.1:$port
    $buffer_line
    default_backend byst_hub

backend byst_hub
    server hub 127.0.0.1:$upstream
CONF
    haproxy -c -f "$dir/haproxy.cfg" >"$dir/check.log" 2>&1 \
        || _proxy_fail "$dir/check.log" "start_haproxy_reverse: haproxy rejected its config $dir/haproxy.cfg"
    # -db: foreground, no master-worker: the PID started here is haproxy itself.
    _proxy_start "$dir" "$port" "$dir/stderr.log" haproxy haproxy -db -f "$dir/haproxy.cfg"
}

# proxies_cleanup: SIGTERM to every process started here (and their children: squid's auth
# helpers, nginx's worker), up to 5 s, then SIGKILL; removes the temp dirs. Safe to call twice.
proxies_cleanup() {
    local pid child all=() alive
    for pid in "${BYST_PROXY_PIDS[@]}"; do
        all+=("$pid")
        for child in $(ps -o pid= --ppid "$pid" 2>/dev/null); do all+=("$child"); done
    done
    for pid in "${BYST_PROXY_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for _ in $(seq 1 50); do
        alive=0
        for pid in "${all[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for pid in "${all[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    for pid in "${BYST_PROXY_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    local dir
    for dir in "${BYST_PROXY_DIRS[@]}"; do rm -rf "$dir"; done
    BYST_PROXY_PIDS=()
    BYST_PROXY_DIRS=()
}

# Self-test when executed rather than sourced: squid (with auth) in front of nginx in front
# of a closed port, so every answer that comes back is nginx's 502, carried by squid.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    proxy_require
    command -v curl >/dev/null || { echo "FAIL: curl not found" >&2; exit 1; }
    trap proxies_cleanup EXIT INT TERM
    source "$(dirname "${BASH_SOURCE[0]}")/../../../scripts/lib/ports.sh"
    base=$(loopback_port_base 5)
    squid_port=$base nginx_port=$((base + 1)) dead_port=$((base + 2)) haproxy_port=$((base + 3)) origin_port=$((base + 4))
    start_nginx_reverse "$nginx_port" "$dead_port"
    nginx_pid=$PROXY_LAST_PID
    start_haproxy_reverse "$haproxy_port" "$dead_port"
    haproxy_pid=$PROXY_LAST_PID
    start_squid "$squid_port" byst:test-secret
    squid_pid=$PROXY_LAST_PID squid_dir=$PROXY_LAST_DIR
    url=http://127.0.0.1:$nginx_port/selftest
    code() { curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$@" || true; }
    [ "$(code "$url")" = 502 ] || { echo "FAIL: nginx does not answer 502 for a closed upstream" >&2; exit 1; }
    [ "$(code "http://127.0.0.1:$haproxy_port/selftest")" = 503 ] || { echo "FAIL: haproxy does not answer 503 for a closed upstream" >&2; exit 1; }
    [ "$(code -x "http://127.0.0.1:$squid_port" "$url")" = 407 ] || { echo "FAIL: squid did not ask for credentials" >&2; exit 1; }
    [ "$(code -x "http://byst:test-secret@127.0.0.1:$squid_port" "$url")" = 502 ] || { echo "FAIL: forward request through squid" >&2; exit 1; }
    [ "$(code -p -x "http://byst:test-secret@127.0.0.1:$squid_port" "$url")" = 502 ] || { echo "FAIL: CONNECT through squid" >&2; exit 1; }
    [ "$(code -x "http://byst:wrong@127.0.0.1:$squid_port" "$url")" = 407 ] || { echo "FAIL: squid accepted a wrong password" >&2; exit 1; }
    grep -q "CONNECT 127.0.0.1:$nginx_port" "$squid_dir/access.log" || { echo "FAIL: no CONNECT in squid's access.log" >&2; exit 1; }
    start_http_origin "$origin_port" 4
    origin_pid=$PROXY_LAST_PID origin_dir=$PROXY_LAST_DIR
    got=$(curl -s -o /dev/null -w '%{http_code} %{size_download}' --max-time 10 \
        -x "http://byst:test-secret@127.0.0.1:$squid_port" "http://127.0.0.1:$origin_port/big" || true)
    [ "$got" = "200 4194304" ] || { echo "FAIL: the origin's 4 MiB through squid: '$got'" >&2; exit 1; }
    got=$(head -c 1000000 /dev/zero | curl -s -o /dev/null -w '%{http_code}' --max-time 10 -T - "http://127.0.0.1:$origin_port/sink" || true)
    [ "$got" = 204 ] || { echo "FAIL: the origin's sink answered '$got'" >&2; exit 1; }
    proxies_cleanup
    [ ! -e "$origin_dir" ] || { echo "FAIL: $origin_dir left behind" >&2; exit 1; }
    for pid in "$nginx_pid" "$squid_pid" "$haproxy_pid" "$origin_pid"; do
        ! kill -0 "$pid" 2>/dev/null || { echo "FAIL: pid $pid still running after proxies_cleanup" >&2; exit 1; }
    done
    proxies_cleanup
    echo "ok: squid (auth, forward, CONNECT), nginx and haproxy reverse proxy, origin harness"
fi
