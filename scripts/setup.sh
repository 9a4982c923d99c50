#!/usr/bin/env bash
# Shared set-up for the README commands and CI: Debian packages and the Swift toolchain.
# Sourced by scripts/demo.sh and scripts/test.sh; safe to run again.
set -euo pipefail

# Debian packages, in four groups: what an installed `byst` needs at run time (the .deb's
# Depends:, which scripts/package.sh computes from the binary), what building it needs, what
# making the .deb needs (scripts/package.sh installs that group itself), and what the test
# suite and the demo need.
BYST_RUNTIME_PACKAGES=(
    libssl3 libzstd1                                             # libcrypto.so.3, libzstd.so.1
)
BYST_BUILD_PACKAGES=(
    libssl-dev libzstd-dev pkg-config openssl ca-certificates  # libcrypto, libzstd headers and .pc files
)
BYST_PACKAGE_PACKAGES=(
    dpkg-dev binutils man-db lintian                             # scripts/package.sh: dpkg-shlibdeps, strip, lexgrog, lintian
)
BYST_TEST_PACKAGES=(
    iproute2 procps iperf3 iputils-ping kmod python3 nftables    # namespaces, processes, traffic, JSON in scripts, soak faults (nft)
    jq ethtool                                                   # status JSON in scripts, veth offloads off under tbf (two-uplinks.sh)
    squid nginx apache2 apache2-utils tinyproxy haproxy curl socat  # real HTTP/1.1 proxies (Tests/E2E/lib/proxies.sh)
    etcd-server etcd-client                                      # a real etcd for the HA registry backend
    debootstrap                                                  # Tests/E2E/package.sh: a fresh Debian 12 root for the .deb
)
# What `byst_setup` without arguments installs (scripts/test.sh, demo.sh, fuzz.sh).
BYST_APT_PACKAGES=("${BYST_RUNTIME_PACKAGES[@]}" "${BYST_BUILD_PACKAGES[@]}" "${BYST_TEST_PACKAGES[@]}")

# byst_setup [GROUP…]: as root, installs the missing Debian packages of the groups named
# (runtime, build, package, test; none: runtime build test) and, for build and test, puts
# the Swift toolchain on PATH.
byst_setup() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "setup: run as root (it installs Debian packages; the end-to-end tests create network namespaces)" >&2
        return 1
    fi
    local groups=("$@") wanted=() group needs_swift=0
    [ "${#groups[@]}" -gt 0 ] || groups=(runtime build test)
    for group in "${groups[@]}"; do
        case $group in
            runtime) wanted+=("${BYST_RUNTIME_PACKAGES[@]}") ;;
            build)   wanted+=("${BYST_BUILD_PACKAGES[@]}"); needs_swift=1 ;;
            package) wanted+=("${BYST_PACKAGE_PACKAGES[@]}") ;;
            test)    wanted+=("${BYST_TEST_PACKAGES[@]}"); needs_swift=1 ;;
            *) echo "setup: unknown package group '$group' (runtime, build, package, test)" >&2; return 1 ;;
        esac
    done
    local missing=()
    for package in "${wanted[@]}"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "setup: installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    [ "$needs_swift" -eq 1 ] || return 0
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
