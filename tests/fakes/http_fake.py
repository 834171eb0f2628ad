"""A small threaded HTTP server that records requests and answers from a script of faults.

Connections are kept alive (HTTP/1.1) unless the client asks to close, as the real APIs do.

Requests are parsed by hand rather than by ``BaseHTTPRequestHandler``: the dispatch benchmark
runs the fake SendGrid on the cores it measures, and the email parser behind its headers, its
per-header writes and its date formatting were most of the fake's CPU per message.
"""

from __future__ import annotations

import contextlib
import email.utils
import io
import socket
import socketserver
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# The head BaseHTTPRequestHandler answered with, so clients see the same server as before.
_SERVER = f"{BaseHTTPRequestHandler.server_version} {BaseHTTPRequestHandler.sys_version}"
_REASONS = {status.value: status.phrase for status in HTTPStatus}
_METHODS = ("GET", "POST", "PATCH")  # the others are answered 501, as before
_MAX_LINE = 65536  # http.client's limit on a request or header line


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
    """Runs ``handle(request) -> Reply`` of a subclass on a background thread."""

    def __init__(self, *, record: bool = True) -> None:
        self.requests: list[Recorded] = []
        self.record = record
        self.faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._idle: set[socket.socket] = set()  # open connections waiting for a request
        fake = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                while fake._serve(self):
                    pass

            def finish(self) -> None:
                with fake._lock:
                    fake._idle.discard(self.connection)
                super().finish()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler, bind_and_activate=False)
        self._server.daemon_threads = True
        # The backlog is listen()'s argument, so it is set before the server listens (set
        # after, the default of 5 stayed): every sending thread of every worker may open a
        # connection at once, and one left out of the queue is reset after its request left.
        self._server.request_queue_size = 256
        try:
            self._server.server_bind()
            self._server.server_activate()
        except BaseException:
            self._server.server_close()
            raise
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._date: tuple[int, str] = (0, "")  # (second, Date header): formatted once a second

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def close_idle_connections(self) -> None:
        """Close the kept-alive connections that wait for a request, as a server's idle
        timeout does (without telling the client)."""
        with self._lock:
            idle, self._idle = self._idle, set()
        for connection in idle:
            with contextlib.suppress(OSError):  # the client may have closed it already
                connection.shutdown(socket.SHUT_RDWR)

    def fail_next(self, *faults: Fault) -> None:
        with self._lock:
            self.faults.extend(faults)

    def handle(self, request: Recorded) -> Reply:
        raise NotImplementedError

    def _serve(self, connection: socketserver.StreamRequestHandler) -> bool:
        """Reads one request from ``connection`` and answers it; False when the connection
        is to be closed."""
        line = connection.rfile.readline(_MAX_LINE + 1)
        words = line.decode("latin-1").split()
        if not words:
            return False  # the client closed its kept-alive connection
        if len(words) != 3 or len(line) > _MAX_LINE or not words[2].startswith("HTTP/"):
            self._answer(connection, Reply(400, b"Bad request line", {"Connection": "close"}))
            return False
        method, path, version = words
        headers = _read_headers(connection.rfile)
        if headers is None:
            self._answer(connection, Reply(431, b"Header line too long", {"Connection": "close"}))
            return False
        lowered = {name.lower(): value for name, value in headers.items()}
        connection_header = lowered.get("connection", "").lower()
        keep_alive = connection_header == "keep-alive" or (
            version >= "HTTP/1.1" and connection_header != "close"
        )
        with self._lock:
            self._idle.discard(connection.connection)
        if method not in _METHODS:
            self._answer(connection, Reply(501, b"Unsupported method", {"Connection": "close"}))
            return False
        length = int(lowered.get("content-length") or 0)
        body = connection.rfile.read(length) if length else b""
        request = Recorded(method, path, headers, body, connection.client_address[1])
        with self._lock:
            fault = self.faults.popleft() if self.faults else None
            if self.record:
                self.requests.append(request)
        if fault is not None and fault.reached is not None:
            fault.reached.set()
        if fault is not None and fault.hold is not None:
            fault.hold.wait(timeout=30)
        if fault is not None and fault.delay:
            time.sleep(fault.delay)
        if fault is not None and fault.status:
            reply = Reply(fault.status, fault.body, fault.headers)
        else:
            reply = self.handle(request)
        with self._lock:
            # Idle from the moment its answer can reach the client, which may then ask to
            # close idle connections at once.
            self._idle.add(connection.connection)
        try:
            self._answer(connection, reply)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (a timeout test): nothing to answer to.
            return False
        return keep_alive

    def _answer(self, connection: socketserver.StreamRequestHandler, reply: Reply) -> None:
        now = int(time.time())
        if self._date[0] != now:
            self._date = (now, email.utils.formatdate(now, usegmt=True))
        lines = [
            f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, '')}",
            f"Server: {_SERVER}",
            f"Date: {self._date[1]}",
            *(f"{name}: {value}" for name, value in reply.headers.items()),
            f"Content-Length: {len(reply.body)}",
        ]
        # One write, one system call, for head and body.
        connection.connection.sendall(
            ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + reply.body
        )


def _read_headers(rfile: io.BufferedIOBase) -> dict[str, str] | None:
    """The header lines up to the blank one, by name as the client spelled it (a repeated
    name keeps its last value); None when a line is too long."""
    headers: dict[str, str] = {}
    while True:
        line = rfile.readline(_MAX_LINE + 1)
        if len(line) > _MAX_LINE:
            return None
        if line in (b"\r\n", b"\n", b""):
            return headers
        name, _, value = line.decode("latin-1").partition(":")
        headers[name] = value.lstrip(" \t").rstrip("\r\n")
