#!/usr/bin/env python3
"""One long-lived, paced, verified stream for Tests/E2E/soak.sh.

    soak-stream.py PORT SECONDS RATE TIMEOUT

Connects to 127.0.0.1:PORT (a BYST [[forward]] whose target echoes every byte back), sends
random bytes at RATE bytes/s for SECONDS, half-closes, and reads the echo until EOF. Every
byte that comes back is compared with the byte sent at that offset, so a loss, duplicate or
corruption is found at its exact offset, not only as a different SHA-256. Prints one line:

    sent=N received=N sha_sent=… sha_received=… max_stall_ms=N first_mismatch=OFFSET|-

and exits 0 only when everything came back intact. TIMEOUT (s) bounds the whole run: the
echo of the last byte must arrive by then. The longest gap between two received pieces while
bytes were outstanding (max_stall_ms) shows how long faults held the stream up.
"""
import hashlib
import os
import socket
import sys
import threading
import time
from collections import deque

port, seconds, rate, timeout = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
CHUNK = 16384
start = time.monotonic()
deadline = start + timeout

sock = socket.create_connection(("127.0.0.1", port), timeout=10)
sock.settimeout(1.0)

lock = threading.Lock()
outstanding = deque()        # bytes sent and not yet echoed back, in order
sent_hash, recv_hash = hashlib.sha256(), hashlib.sha256()
state = {"sent": 0, "received": 0, "mismatch": None, "send_error": None, "done_sending": False}


def sender():
    try:
        while time.monotonic() - start < seconds and time.monotonic() < deadline:
            data = os.urandom(CHUNK)
            with lock:
                outstanding.append(data)
                sent_hash.update(data)
            view = memoryview(data)
            while view and time.monotonic() < deadline:
                try:
                    n = sock.send(view)
                except socket.timeout:
                    continue
                view = view[n:]
            with lock:
                state["sent"] += len(data) - len(view)
            # Pace: sleep until the schedule of RATE bytes/s catches up.
            ahead = state["sent"] / rate - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)
        sock.shutdown(socket.SHUT_WR)
    except OSError as error:
        state["send_error"] = str(error)
    state["done_sending"] = True


def compare(data):
    """Checks received bytes against the oldest outstanding sent bytes."""
    offset = state["received"]
    view = memoryview(data)
    with lock:
        while view:
            if not outstanding:
                return offset  # more came back than was sent
            head = outstanding[0]
            n = min(len(head), len(view))
            if head[:n] != view[:n]:
                for i in range(n):
                    if head[i] != view[i]:
                        return offset + i
            offset += n
            view = view[n:]
            if n == len(head):
                outstanding.popleft()
            else:
                outstanding[0] = head[n:]
    return None


thread = threading.Thread(target=sender, daemon=True)
thread.start()
max_stall, last_progress = 0.0, time.monotonic()
while time.monotonic() < deadline:
    try:
        data = sock.recv(65536)
    except socket.timeout:
        with lock:
            waiting = bool(outstanding)
        if waiting:
            max_stall = max(max_stall, time.monotonic() - last_progress)
        else:
            last_progress = time.monotonic()
        continue
    except OSError as error:
        state["recv_error"] = str(error)
        break
    if not data:
        break
    now = time.monotonic()
    max_stall = max(max_stall, now - last_progress)
    last_progress = now
    if state["mismatch"] is None:
        state["mismatch"] = compare(data)
    recv_hash.update(data)
    state["received"] += len(data)
thread.join(timeout=max(0.0, deadline - time.monotonic()) + 1)
sock.close()

ok = (state["done_sending"] and state["send_error"] is None and state.get("recv_error") is None
      and state["mismatch"] is None and state["received"] == state["sent"] and state["sent"] > 0
      and sent_hash.digest() == recv_hash.digest())
print("sent=%d received=%d sha_sent=%s sha_received=%s max_stall_ms=%d first_mismatch=%s%s" % (
    state["sent"], state["received"], sent_hash.hexdigest()[:16], recv_hash.hexdigest()[:16],
    max_stall * 1000, "-" if state["mismatch"] is None else state["mismatch"],
    "".join(" %s=%r" % (k, state[k]) for k in ("send_error", "recv_error") if state.get(k))))
sys.exit(0 if ok else 1)
