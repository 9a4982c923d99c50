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
byst_setup
# Release: the demo's ping and iperf3 figures are what a deployment gets (a debug build's
# are several times worse).
byst_build release --product byst
exec .build/release/byst demo
