#!/usr/bin/env bash
# Shared set-up for the README commands and CI: Debian packages and the Swift toolchain.
# Sourced by scripts/demo.sh and scripts/test.sh; safe to run again.
set -euo pipefail

BYST_APT_PACKAGES=(
    libssl-dev libzstd-dev pkg-config openssl ca-certificates  # build: libcrypto, libzstd
    iproute2 procps iperf3 iputils-ping kmod python3 nftables    # tests: namespaces, processes, traffic, JSON in scripts, soak faults (nft)
    squid nginx apache2-utils tinyproxy haproxy curl socat       # tests: real HTTP/1.1 proxies (Tests/E2E/lib/proxies.sh)
    etcd-server etcd-client                                      # tests: a real etcd for the HA registry backend
)

byst_setup() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "setup: run as root (it installs Debian packages; the end-to-end tests create network namespaces)" >&2
        return 1
    fi
    local missing=()
    for package in "${BYST_APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "setup: installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then
        export PATH="/opt/swift/usr/bin:$PATH"
    fi
    if ! command -v swift >/dev/null 2>&1; then
        echo "setup: no Swift toolchain found (need Swift 6; expected on PATH or in /opt/swift)" >&2
        return 1
    fi
}

# Builds every product in `configuration` (plus any extra `swift build` flags, e.g.
# --build-tests) and fails if our own sources emit a warning (dependencies' are theirs).
byst_build() {
    local configuration=${1:-debug} log
    shift || true
    log=$(mktemp)
    if ! swift build -c "$configuration" "$@" 2>&1 | tee "$log" | grep -E "error:|Compiling BYST|Build (of product .* )?complete" ; then :; fi
    if grep -q "error:" "$log" || ! grep -qE "Build (of product .* )?complete" "$log"; then
        echo "build failed" >&2; rm -f "$log"; return 1
    fi
    if grep -E "^$PWD/(Sources|Tests|Benchmarks)/.*warning:" "$log"; then
        echo "build: our sources have warnings (Swift 6 mode, no warnings allowed)" >&2; rm -f "$log"; return 1
    fi
    rm -f "$log"
}
