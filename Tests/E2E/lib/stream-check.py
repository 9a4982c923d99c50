#!/usr/bin/env python3
"""One verified one-way stream, for E2E scripts that cut links under it.

    stream-check.py sink PORT PROGRESS     accept one connection on 127.0.0.1:PORT, read to EOF;
                                           append "SECONDS BYTES" to PROGRESS every 0.1 s; print
                                           "received=N sha=HEX" at the end
    stream-check.py send PORT BYTES RATE   connect to 127.0.0.1:PORT, send BYTES pseudo-random
                                           bytes (seeded, so reproducible) at up to RATE bytes/s
                                           (0: as fast as possible), half-close; print
                                           "sent=N sha=HEX"

The caller compares the two SHA-256 lines; PROGRESS shows when bytes stopped and resumed.
Bounded: the sink gives up after 300 s, the sender after 300 s.
"""
import hashlib
import random
import socket
import sys
import time

LIMIT = 300.0


def sink(port, progress_path):
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen(1)
    server.settimeout(LIMIT)
    conn, _ = server.accept()
    conn.settimeout(1.0)
    digest, received = hashlib.sha256(), 0
    start = last_note = time.monotonic()
    with open(progress_path, "w", buffering=1) as progress:
        while time.monotonic() - start < LIMIT:
            try:
                piece = conn.recv(1 << 16)
            except socket.timeout:
                piece = None
            if piece == b"":
                break
            if piece:
                digest.update(piece)
                received += len(piece)
            now = time.monotonic()
            if now - last_note >= 0.1:
                progress.write(f"{now - start:.2f} {received}\n")
                last_note = now
        progress.write(f"{time.monotonic() - start:.2f} {received}\n")
    print(f"received={received} sha={digest.hexdigest()}")


def send(port, total, rate):
    generator = random.Random(24)
    conn = socket.create_connection(("127.0.0.1", port), timeout=10)
    conn.settimeout(LIMIT)
    digest, sent = hashlib.sha256(), 0
    start = time.monotonic()
    while sent < total and time.monotonic() - start < LIMIT:
        piece = generator.randbytes(min(1 << 16, total - sent))
        conn.sendall(piece)
        digest.update(piece)
        sent += len(piece)
        if rate > 0:
            ahead = sent / rate - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)
    conn.shutdown(socket.SHUT_WR)
    # Wait for the far end to finish (the forward closes once the sink has read everything).
    while conn.recv(1 << 16):
        pass
    print(f"sent={sent} sha={digest.hexdigest()}")


if sys.argv[1] == "sink":
    sink(int(sys.argv[2]), sys.argv[3])
else:
    send(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
