#!/usr/bin/env python3
"""A TCP relay that delays every byte by a fixed time in each direction: a stand-in for a
proxy or a WAN path with a round trip, where this kernel has no netem (benchmarks only).

    python3 scripts/lib/delay-relay.py LISTEN_PORT TARGET_PORT DELAY_MS

Listens on 127.0.0.1:LISTEN_PORT and relays each connection to 127.0.0.1:TARGET_PORT.
Bytes read at time t are written at t + DELAY_MS, in order; at most 16 MiB wait per
direction (reading pauses beyond it), so the path holds at most 16 MiB per delay.
Half-closes are passed on once the bytes before them are written.
"""
import asyncio
import collections
import sys

MAX_WAITING = 16 << 20


async def pipe(reader, writer, delay):
    loop = asyncio.get_running_loop()
    queue = collections.deque()
    waiting = 0
    more = asyncio.Event()
    room = asyncio.Event()
    room.set()
    done = False

    async def read():
        nonlocal waiting, done
        try:
            while True:
                await room.wait()
                data = await reader.read(256 << 10)
                if not data:
                    break
                queue.append((loop.time() + delay, data))
                waiting += len(data)
                if waiting >= MAX_WAITING:
                    room.clear()
                more.set()
        except (ConnectionError, OSError):
            pass
        done = True
        more.set()

    async def write():
        nonlocal waiting
        try:
            while True:
                while not queue:
                    if done:
                        writer.write_eof()
                        await writer.drain()
                        return
                    more.clear()
                    await more.wait()
                due, data = queue[0]
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                queue.popleft()
                writer.write(data)
                await writer.drain()
                waiting -= len(data)
                if waiting < MAX_WAITING:
                    room.set()
        except (ConnectionError, OSError):
            pass

    await asyncio.gather(read(), write())


async def relay(client_reader, client_writer, target_port, delay):
    try:
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", target_port)
    except OSError:
        client_writer.close()
        return
    await asyncio.gather(pipe(client_reader, server_writer, delay), pipe(server_reader, client_writer, delay))
    for writer in (client_writer, server_writer):
        writer.close()


async def main():
    listen_port, target_port, delay_ms = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    server = await asyncio.start_server(
        lambda r, w: relay(r, w, target_port, delay_ms / 1000), "127.0.0.1", listen_port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
