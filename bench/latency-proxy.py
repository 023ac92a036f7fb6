#!/usr/bin/env python3
"""A TCP proxy that puts a server a fixed round trip away, for the benchmarks and tests.

    latency-proxy.py --upstream HOST:PORT --rtt-ms 20 [--listen 127.0.0.1:0] [--stats FILE]

Prints `LISTEN=HOST:PORT` on stdout once it accepts. Every byte is held for half the round trip
in each direction, in order. The TCP handshake is emulated too: the kernel completes it at once
on loopback, so the client's first bytes are held until one round trip after the connection was
accepted (when, a real network away, the SYN-ACK would have reached the client and its first
bytes could leave), then half a round trip more. A client therefore pays what it would pay a
real network away: one round trip to connect, one per TLS 1.3 handshake, one per request wave.

--stats FILE is rewritten after every accepted connection, as JSON: {"connections": N}, so a
benchmark can count the connections a run opened. Standard library only; stops on SIGTERM.
"""

import argparse
import asyncio
import json
import os
import signal
import socket
import sys


class Proxy:
    def __init__(self, upstream, delay, stats):
        self.upstream = upstream
        self.delay = delay  # one way, seconds
        self.stats = stats
        self.connections = 0

    def count(self):
        self.connections += 1
        if self.stats:
            tmp = self.stats + ".tmp"
            with open(tmp, "w") as f:
                json.dump({"connections": self.connections}, f)
            os.replace(tmp, self.stats)

    async def handle(self, creader, cwriter):
        loop = asyncio.get_running_loop()
        accepted = loop.time()
        self.count()
        nodelay(cwriter)
        try:
            sreader, swriter = await asyncio.open_connection(*self.upstream)
        except OSError as e:
            sys.stderr.write(f"latency-proxy: cannot reach {self.upstream}: {e}\n")
            cwriter.close()
            return
        nodelay(swriter)
        # Client to server: nothing leaves before the emulated handshake's round trip is over.
        up = asyncio.ensure_future(self.pump(creader, swriter, accepted + 2 * self.delay))
        down = asyncio.ensure_future(self.pump(sreader, cwriter, accepted))
        await asyncio.gather(up, down, return_exceptions=True)
        for w in (cwriter, swriter):
            w.close()

    async def pump(self, reader, writer, not_before):
        """Forwards reader to writer, each chunk `delay` after it arrived (and not before
        `not_before` + `delay`), keeping the order; EOF is forwarded the same way."""
        loop = asyncio.get_running_loop()
        queue = asyncio.Queue()

        async def send():
            while True:
                due, data = await queue.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if data is None:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()

        sender = asyncio.ensure_future(send())
        try:
            while True:
                data = await reader.read(65536)
                due = max(loop.time(), not_before) + self.delay
                queue.put_nowait((due, data or None))
                if not data:
                    break
            await sender
        except (ConnectionError, OSError):
            sender.cancel()
            writer.close()


def nodelay(writer):
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def hostport(s):
    host, _, port = s.rpartition(":")
    return host.strip("[]"), int(port)


async def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--upstream", required=True, type=hostport)
    ap.add_argument("--rtt-ms", required=True, type=float)
    ap.add_argument("--listen", default="127.0.0.1:0", type=hostport)
    ap.add_argument("--stats")
    a = ap.parse_args()
    if a.rtt_ms < 0:
        sys.exit("latency-proxy: --rtt-ms must not be negative")
    proxy = Proxy(a.upstream, a.rtt_ms / 2000.0, a.stats)
    server = await asyncio.start_server(proxy.handle, a.listen[0], a.listen[1])
    host, port = server.sockets[0].getsockname()[:2]
    print(f"LISTEN={host}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
