#!/usr/bin/env python3
"""Configs for a hub with many branches and for one "farm" node that plays the live ones.

    hub-farm.py DIR PEERS LIVE TUN(0|1) [EXTRA_PEERS [REMOVED [CHANGED]]]

Writes into DIR:
  hub.keys, hub.toml    the hub: PEERS configured peers b0 … b<PEERS-1>, each with its own PSK
                        (and, with TUN, one /32 in 100.64.0.0/10 each), listening on port 7000
  farm.keys, farm.toml  one node with LIVE peers, b0 … b<LIVE-1>, each dialing the hub with
                        1 link from its own source address 10.252.<i/250>.<1 + i%250>
  sources               `ip -batch` lines putting those addresses on the farm's loopback: the
                        hub reaches them through a route via the farm (10.250.0.2), as a hub
                        reaches branches through its router (one neighbour entry, not one each:
                        the kernel's ARP table holds 1,024 by default)
  hub-plus.toml         hub.toml with EXTRA_PEERS (default 1) more peers (a reload's input)
  hub-minus.toml        hub-plus.toml without the first REMOVED (default 10) peers, live ones
  hub-changed.toml      hub-plus.toml with another setting (allow_targets) for the first
                        CHANGED (default 1,000, at most LIVE) peers: a reload starts those over

Real keys and real links: the farm is an ordinary byst node whose peers all dial the hub, so
each live branch is a real session with its handshake, keepalives and dead-link timing. Only
addresses inside the benchmark's own namespaces (10.250.0.0/16, 10.252.0.0/16, 100.64.0.0/10)
are used.
"""
import base64
import os
import sys


def source(i):
    return f"10.252.{i // 250}.{1 + i % 250}"


def inner(i):
    n = (100 << 24) | (64 << 16) | (i + 2)
    return ".".join(str((n >> s) & 255) for s in (24, 16, 8, 0))


def write(path, text, mode=0o600):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def hub_toml(directory, peers, tun, first=0, changed=0):
    head = [
        "[node]",
        'name = "hub"',
        # Every address of its namespace (the farm's veth, and a probe's in the E2E test).
        'listen = ["0.0.0.0:7000"]',
        f'control_socket = "{directory}/hub.sock"',
        f'key_store = "{directory}/hub.keys"',
        'metrics_listen = ["127.0.0.1:9109"]',
        "[limits]",
        # Every live branch comes from its own address; the all-sources rate and the loop-lag
        # guard would reset a synchronized start of thousands (OPERATIONS.md, reconnect storms).
        "accept_rate = 0",
        "accept_backlog = 4096",
        'accept_loop_lag = "1s"',
        "pending_handshakes = 4096",
    ]
    if tun:
        head += ["[tun]", 'name = "bysthub"', 'address = ["100.64.0.1/10"]', "queues = 1"]
    body = []
    for i in range(first, peers):
        body.append(f'[[peer]]\nname = "b{i}"\nkey = "b{i}"')
        if i < changed:
            body.append('allow_targets = ["127.0.0.1:9"]')
        if tun:
            body.append(f'allowed_ips = ["{inner(i)}/32"]')
    return "\n".join(head + body) + "\n"


def main():
    directory, peers, live, tun = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
    extra = int(sys.argv[5]) if len(sys.argv) > 5 else 1
    removed = int(sys.argv[6]) if len(sys.argv) > 6 else 10
    changed = min(int(sys.argv[7]) if len(sys.argv) > 7 else 1000, live)
    if not 0 < live <= peers or live > 62500:
        sys.exit("hub-farm.py: need 0 < LIVE <= PEERS and LIVE <= 62500")
    keys = [base64.b64encode(os.urandom(32)).decode() for _ in range(peers + extra)]
    header = "# BYST key store: keep it secret (mode 0600). Format: <name> <base64 key>\n"
    write(f"{directory}/hub.keys", header + "".join(f"b{i} {keys[i]}\n" for i in range(peers + extra)))
    write(f"{directory}/farm.keys", header + "".join(f"b{i} {keys[i]}\n" for i in range(live)))
    write(f"{directory}/hub.toml", hub_toml(directory, peers, tun))
    write(f"{directory}/hub-plus.toml", hub_toml(directory, peers + extra, tun))
    write(f"{directory}/hub-minus.toml", hub_toml(directory, peers + extra, tun, first=removed))
    write(f"{directory}/hub-changed.toml", hub_toml(directory, peers + extra, tun, changed=changed))
    farm = [
        "[node]",
        'name = "farm"',
        f'control_socket = "{directory}/farm.sock"',
        f'key_store = "{directory}/farm.keys"',
        'metrics_listen = ["127.0.0.1:9110"]',
    ]
    for i in range(live):
        farm.append(f'[[peer]]\nname = "b{i}"\nkey = "b{i}"\nendpoint = "byst://10.250.0.1:7000"\n'
                    f'uplinks = [{{ name = "u", bind = "{source(i)}", links = 1 }}]')
    write(f"{directory}/farm.toml", "\n".join(farm) + "\n")
    write(f"{directory}/sources", "".join(f"address add {source(i)}/32 dev lo\n" for i in range(live)), 0o644)


main()
