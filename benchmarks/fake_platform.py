"""The fake Shopify Admin API for benchmarks, served on asyncio streams.

One event loop answers every connection and the latency is an ``asyncio.sleep``, so the
platform costs little more than parsing the request and storing the discount (the same
``handle`` answers, in the real shapes). It was written when the tests' fake
(``tests.fakes.fake_shopify_admin``) ran a thread per connection and slept its latency there;
that one now serves on one event loop as well.

``python -m benchmarks.fake_platform LATENCY`` prints its URL, then serves until its standard
input is closed.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from http import HTTPStatus

from tests.fakes.fake_shopify_admin import FakeShopifyAdmin
from tests.fakes.http_fake import Recorded


async def _connection(
    fake: FakeShopifyAdmin,
    latency: float,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
) -> None:
    try:
        while True:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            method, path, _ = head[0].split(" ", 2)
            headers = {}
            for line in head[1:]:
                name, _, value = line.partition(":")
                if name:
                    headers[name.strip().title()] = value.strip()
            length = int(headers.get("Content-Length", "0"))
            body = await reader.readexactly(length) if length else b""
            await asyncio.sleep(latency)
            reply = fake.handle(Recorded(method, path, headers, body, 0))
            lines = [f"HTTP/1.1 {reply.status} {HTTPStatus(reply.status).phrase}"]
            lines += [f"{name}: {value}" for name, value in reply.headers.items()]
            lines.append(f"Content-Length: {len(reply.body)}")
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + reply.body)
            await writer.drain()
            if headers.get("Connection", "").lower() == "close":
                break
    except (asyncio.IncompleteReadError, ConnectionError):
        pass  # the client closed its kept-alive connection
    finally:
        writer.close()


async def serve(latency: float) -> None:
    # Built for its ``handle`` only: the threaded server it also binds is never started.
    fake = FakeShopifyAdmin(record=False)
    server = await asyncio.start_server(
        lambda r, w: _connection(fake, latency, r, w), "127.0.0.1", 0, backlog=256
    )
    host, port = server.sockets[0].getsockname()[:2]
    sys.stdout.write(f"http://{host}:{port}\n")
    sys.stdout.flush()
    loop, closed = asyncio.get_running_loop(), asyncio.Event()
    # Served until the parent closes our standard input (read in a thread: it blocks).
    threading.Thread(
        target=lambda: (sys.stdin.read(), loop.call_soon_threadsafe(closed.set)), daemon=True
    ).start()
    async with server:
        await closed.wait()


if __name__ == "__main__":
    asyncio.run(serve(float(sys.argv[1]) if len(sys.argv) > 1 else 0.0))
