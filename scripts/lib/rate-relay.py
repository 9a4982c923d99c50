#!/usr/bin/env python3
"""A TCP relay on loopback that caps every accepted connection at RATE bit/s in each
direction (a token bucket per connection and direction), like a relay or middlebox that
throttles per TCP connection. For scripts/bench-striping.sh and bench-tun-striping.sh;
stopped by its PID. It listens on 127.0.0.1 and connects to TARGET_HOST (127.0.0.1 unless
given: bench-tun-striping.sh passes the far namespace's address).

    python3 scripts/lib/rate-relay.py LISTEN_PORT TARGET_PORT RATE_MBIT [TARGET_HOST]
"""
import asyncio
import sys
import time

CHUNK = 16 * 1024
# The bucket holds at most this much: short bursts pass at once, no more.
BURST = 32 * 1024


async def pump(reader, writer, rate_bytes):
    tokens, last = float(BURST), time.monotonic()
    try:
        while True:
            data = await reader.read(CHUNK)
            if not data:
                break
            while True:
                now = time.monotonic()
                tokens = min(float(BURST), tokens + (now - last) * rate_bytes)
                last = now
                if tokens >= len(data):
                    break
                await asyncio.sleep((len(data) - tokens) / rate_bytes)
            tokens -= len(data)
            writer.write(data)
            # Read on only once the bytes left: the cap pushes back on the sender.
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            writer.close()
        except (ConnectionError, OSError):
            pass


async def main():
    listen_port, target_port, rate_mbit = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    target_host = sys.argv[4] if len(sys.argv) > 4 else "127.0.0.1"
    rate_bytes = rate_mbit * 1e6 / 8

    async def accepted(client_reader, client_writer):
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(target_host, target_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(pump(client_reader, upstream_writer, rate_bytes),
                             pump(upstream_reader, client_writer, rate_bytes))

    server = await asyncio.start_server(accepted, "127.0.0.1", listen_port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
