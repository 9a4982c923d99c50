#!/usr/bin/env bash
# The main job, self-sufficient on a fresh Debian machine as root: installs packages,
# builds, and runs `byst demo` — two sites in network namespaces joined by BYST with TUN
# interfaces, 4 links, a generated key and a port forward; ping, iperf3 and `byst status`
# through it; everything removed on exit (Ctrl-C included).
#
#   bash scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
echo "demo: checking Debian packages and the Swift toolchain (installs what is missing)"
byst_setup

# Release: the demo's ping and iperf3 figures are what a deployment gets (a debug build's
# are several times worse). The first release build compiles the dependencies (SwiftNIO,
# swift-nio-ssl's BoringSSL, …) with optimisation: long on a small machine, so say so and
# show where it is; later runs only relink, in seconds.
if [ -x .build/release/byst ]; then
    echo "demo: building byst (release; up to date or an incremental build: usually under a minute)"
else
    echo "demo: building byst (release, first build: about 10 minutes on 2 cores, less on more; later runs take seconds)"
fi
log=$(mktemp /tmp/byst-demo-build.XXXX)
started=$SECONDS
swift build -c release --product byst >"$log" 2>&1 &
build=$!
trap 'kill "$build" 2>/dev/null || true; rm -f "$log"' EXIT INT TERM
# Every 15 s: elapsed time and SwiftPM's last step counter ("[412/1230] Compiling …").
while kill -0 "$build" 2>/dev/null; do
    for _ in $(seq 1 15); do kill -0 "$build" 2>/dev/null && sleep 1; done
    kill -0 "$build" 2>/dev/null || break
    step=$(grep -oE '^\[[0-9]+/[0-9]+\]' "$log" | tail -1 || true)
    printf 'demo:   … %d:%02d elapsed %s\n' $(((SECONDS - started) / 60)) $(((SECONDS - started) % 60)) "${step:+(step ${step//[\[\]]/})}"
done
if ! wait "$build"; then
    echo "demo: the build failed; its last lines:" >&2
    tail -20 "$log" >&2
    exit 1
fi
printf 'demo: built in %d:%02d\n' $(((SECONDS - started) / 60)) $(((SECONDS - started) % 60))
rm -f "$log"
trap - EXIT INT TERM
exec .build/release/byst demo
