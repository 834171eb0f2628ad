"""A small HTTP/1.1 server on an event loop that records requests and answers from a script of
faults.

Connections are kept alive (HTTP/1.1) unless the client asks to close, as the real APIs do.

One event loop on a background thread serves every connection, and requests are parsed by
hand: the dispatch benchmark runs the fake SendGrid on the cores it measures, where
``BaseHTTPRequestHandler``'s parsing and a thread per connection were most of the fake's CPU
per message. ``handle`` runs on the loop, so it must not block; what waits (``latency``, a
fault's delay or hold) waits off the loop while the other connections are served.
"""

from __future__ import annotations

import asyncio
import email.utils
import socket
import threading
import time
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any, cast

import uvloop

# The head BaseHTTPRequestHandler answered with, so clients see the same server as before.
_SERVER = f"{BaseHTTPRequestHandler.server_version} {BaseHTTPRequestHandler.sys_version}"
_REASONS = {status.value: status.phrase for status in HTTPStatus}
_METHODS = ("GET", "POST", "PATCH")  # the others are answered 501, as before
_MAX_HEAD = 65536  # http.client's limit on a request or header line, here on the whole head


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    client_port: int  # the same for requests that came over one kept-alive connection


@dataclass
class Fault:
    """The next request gets this instead of a normal answer (``status`` 0: delay only)."""

    status: int = 0
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    # A slow provider without sleeps: ``reached`` is set when the request has arrived (and is
    # recorded), and the answer waits until the test sets ``hold``.
    reached: threading.Event | None = None
    hold: threading.Event | None = None


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class FakeServer:
    """Serves ``handle(request) -> Reply`` of a subclass from a background thread; every
    answer but a fault's waits ``latency`` seconds first."""

    def __init__(self, *, record: bool = True, latency: float = 0.0) -> None:
        self.requests: list[Recorded] = []
        self.record = record
        self.latency = latency
        self.faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        # Bound now, so that the URL is known before the server starts. The backlog: every
        # sending thread of every worker may open a connection at once, and one left out of
        # the queue is reset after its request left.
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=256)
        host, port = self._listener.getsockname()[:2]
        self.url = f"http://{host}:{port}"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()  # on the loop's thread only, as _idle
        self._idle: set[_Connection] = set()  # open connections waiting for a request
        self._late: set[_Connection] = set()  # with an answer that waits off the loop
        self._date: tuple[int, str] = (0, "")  # (second, Date header): formatted once a second

    def start(self) -> FakeServer:
        # uvloop rather than asyncio's own loop: driven like the dispatch benchmark, the fake
        # SendGrid took 0.038-0.043 ms of CPU per request on it against 0.056-0.068.
        self._loop = uvloop.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._on_loop(self._listen())
        return self

    def stop(self) -> None:
        """Stop serving and close every connection; once stopped, this does nothing."""
        if self._loop is not None and self._thread is not None and not self._loop.is_closed():
            self._on_loop(self._close())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()
        self._listener.close()  # if the server never started

    def close_idle_connections(self) -> None:
        """Close the kept-alive connections that wait for a request, as a server's idle
        timeout does (without telling the client)."""

        async def close() -> None:
            for connection in self._idle:
                connection.transport.close()
            self._idle.clear()

        self._on_loop(close())

    def fail_next(self, *faults: Fault) -> None:
        with self._lock:
            self.faults.extend(faults)

    def handle(self, request: Recorded) -> Reply:
        raise NotImplementedError

    def _on_loop(self, work: Coroutine[Any, Any, None]) -> None:
        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(work, self._loop).result()

    async def _listen(self) -> None:
        assert self._loop is not None
        self._server = await self._loop.create_server(
            lambda: _Connection(self), sock=self._listener
        )

    async def _close(self) -> None:
        assert self._server is not None
        self._server.close()
        for connection in self._connections:
            connection.transport.abort()
        # Late answers of connections already lost too: a request is acted on even when its
        # client gave up, as a real API does.
        late = [c.late for c in self._late if c.late is not None]
        for answer in late:
            answer.cancel()
        await asyncio.gather(*late, return_exceptions=True)
        await asyncio.sleep(0)  # the aborted connections are lost (their sockets closed)

    def _serve(self, connection: _Connection) -> None:
        """Answers the requests complete in ``connection``'s buffer, in order."""
        while connection.buffer and connection.late is None:
            if connection.transport.is_closing():
                return
            buffer = connection.buffer
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > _MAX_HEAD:
                    self._refuse(connection, 431, b"Request header fields too large")
                return  # the rest of the head is to come
            line, *lines = buffer[:end].decode("latin-1").split("\r\n")
            words = line.split()
            if len(words) != 3 or not words[2].startswith("HTTP/"):
                self._refuse(connection, 400, b"Bad request line")
                return
            method, path, version = words
            if method not in _METHODS:
                self._refuse(connection, 501, b"Unsupported method")
                return
            headers: dict[str, str] = {}  # by name as the client spelled it, the last kept
            length, closing = "", ""
            for header in lines:
                name, _, value = header.partition(":")
                headers[name] = value = value.lstrip(" \t")
                lowered = name.lower()
                if lowered == "content-length":
                    length = value
                elif lowered == "connection":
                    closing = value.lower()
            start = end + 4
            stop = start + int(length or 0)
            if len(buffer) < stop:
                return  # the rest of the body is to come
            body, connection.buffer = buffer[start:stop], buffer[stop:]
            keep_alive = closing == "keep-alive" or (version >= "HTTP/1.1" and closing != "close")
            request = Recorded(method, path, headers, body, connection.port)
            with self._lock:
                fault = self.faults.popleft() if self.faults else None
                if self.record:
                    self.requests.append(request)
            if fault is None and not self.latency:
                self._answer(connection, self.handle(request), keep_alive)
            else:
                connection.late = asyncio.ensure_future(
                    self._answer_late(connection, request, fault, keep_alive)
                )
                self._late.add(connection)

    async def _answer_late(
        self, connection: _Connection, request: Recorded, fault: Fault | None, keep_alive: bool
    ) -> None:
        try:
            if fault is not None and fault.reached is not None:
                fault.reached.set()
            if fault is not None and fault.hold is not None:
                await asyncio.to_thread(fault.hold.wait, 30)
            if fault is not None and fault.delay:
                await asyncio.sleep(fault.delay)
            if fault is not None and fault.status:
                reply = Reply(fault.status, fault.body, fault.headers)
            else:
                await asyncio.sleep(self.latency)
                reply = self.handle(request)
        except BaseException:
            connection.transport.abort()
            raise
        finally:
            self._late.discard(connection)
        connection.late = None
        self._answer(connection, reply, keep_alive)
        self._serve(connection)  # what came meanwhile

    def _refuse(self, connection: _Connection, status: int, body: bytes) -> None:
        self._answer(connection, Reply(status, body, {"Connection": "close"}), keep_alive=False)

    def _answer(self, connection: _Connection, reply: Reply, keep_alive: bool) -> None:
        if connection.transport.is_closing():
            return  # the client gave up (a timeout test): nothing to answer to
        now = int(time.time())
        if self._date[0] != now:
            self._date = (now, email.utils.formatdate(now, usegmt=True))
        extra = "".join([f"{name}: {value}\r\n" for name, value in reply.headers.items()])
        head = (
            f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, '')}\r\n"
            f"Server: {_SERVER}\r\nDate: {self._date[1]}\r\n{extra}"
            f"Content-Length: {len(reply.body)}\r\n\r\n"
        )
        # One write, one system call, for head and body.
        connection.transport.write(head.encode("latin-1") + reply.body)
        if not keep_alive:
            connection.transport.close()
        elif not connection.buffer:
            self._idle.add(connection)


class _Connection(asyncio.Protocol):
    """A client's connection: what it sent that is not answered yet."""

    def __init__(self, fake: FakeServer) -> None:
        self.fake = fake
        self.buffer = b""
        self.late: asyncio.Future[None] | None = None  # an answer that waits off the loop
        self.port = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.port = transport.get_extra_info("peername")[1]
        self.fake._connections.add(self)
        self.fake._idle.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.fake._connections.discard(self)
        self.fake._idle.discard(self)

    def data_received(self, data: bytes) -> None:
        self.fake._idle.discard(self)
        # Bytes, not a bytearray: a request comes in one piece, and its body is then sliced
        # out of it with no copy to bytes.
        self.buffer = self.buffer + data if self.buffer else data
        self.fake._serve(self)
