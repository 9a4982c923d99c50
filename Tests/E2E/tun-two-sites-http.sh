#!/usr/bin/env bash
# tun-two-sites.sh over HTTP links: TUN traffic (pings, iperf3 with a link cut) in HTTP mode.
BYST_E2E_TRANSPORT=http exec bash "$(dirname "$0")/tun-two-sites.sh"
