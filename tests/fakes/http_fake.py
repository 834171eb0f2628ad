"""A small threaded HTTP server that records requests and answers from a script of faults.

Connections are kept alive (HTTP/1.1) unless the client asks to close, as the real APIs do.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


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

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def finish(self) -> None:
                with fake._lock:
                    fake._idle.discard(self.connection)
                super().finish()

            def do_POST(self) -> None:
                with fake._lock:
                    fake._idle.discard(self.connection)
                fake._serve(self)

            do_GET = do_PATCH = do_POST

            def log_message(self, format: str, *args: Any) -> None:
                return

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

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        request = Recorded(
            handler.command,
            handler.path,
            dict(handler.headers.items()),
            body,
            handler.client_address[1],
        )
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
            self._idle.add(handler.connection)
        try:
            handler.send_response(reply.status)
            for name, value in reply.headers.items():
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(reply.body)))
            handler.end_headers()
            handler.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (a timeout test): nothing to answer to.
            handler.close_connection = True
