#!/usr/bin/env bash
# What one small record's AEAD costs when the caches are cold, as on an idle tunnel:
# OpenSSL 3's EVP sequence that BYST uses against BoringSSL's EVP_AEAD (the copy that
# swift-nio-ssl builds into the binary). Pure computation, no network. A benchmark, not a
# test: figures go to docs/PERFORMANCE.md.
#
#   bash scripts/bench-aead-cold.sh          (as root: installs gcc and libssl-dev; needs a release build's objects)
set -euo pipefail
cd "$(dirname "$0")/.."
apt-get install -y -qq gcc libssl-dev >/dev/null
boring=.build/release/CNIOBoringSSL.build
[ -d "$boring" ] || swift build -c release --product byst >/dev/null
work=$(mktemp -d /tmp/byst-bench-aead.XXXX)
trap 'rm -rf "$work"' EXIT
gcc -O2 -o "$work/openssl" Benchmarks/AEADCold/openssl.c -lcrypto
gcc -O2 -I .build/checkouts/swift-nio-ssl/Sources/CNIOBoringSSL/include -o "$work/boringssl" \
    Benchmarks/AEADCold/boringssl.c $(find "$boring" -name '*.o') -lstdc++ -lpthread
for round in 1 2 3; do
    echo "round $round"
    "$work/openssl"
    "$work/boringssl"
done
