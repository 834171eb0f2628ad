"""Keep-alive HTTP connections for a provider SDK that would open a new one per request.

The SendGrid SDK (python_http_client over urllib) builds a urllib opener, opens a TCP (and in
production a TLS) connection and closes it again for every message. ``ConnectionPool`` keeps
idle connections to one origin and hands each request one of them, so a worker's sending
threads reuse a few connections for a whole chunk.

Failures keep urllib's meaning, which the senders rely on to tell "not sent" from "maybe
sent": an error while connecting or writing the request is a ``urllib.error.URLError`` (the
request did not fully reach the provider), while an error waiting for or reading the answer
is raised as it is (``OSError``, ``http.client.HTTPException``): the request left and may
have been acted on. A connection is reused only if the server has not closed it (it is not
readable while idle) and it was used within ``max_idle`` seconds, well below the idle timeouts
of HTTP servers, so a reused connection going away under a request stays rare; if it happens
while writing, the request is written again once on a new connection.
"""

from __future__ import annotations

import http.client
import select
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import Message
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Answer:
    """A fully read response, shaped like urllib's (``getcode``, ``read``, ``info``)."""

    status: int
    reason: str
    headers: Message
    body: bytes

    def getcode(self) -> int:
        return self.status

    def read(self) -> bytes:
        return self.body

    def info(self) -> Message:
        return self.headers


class ConnectionPool:
    """Idle keep-alive connections to the origin of ``base_url``; safe to share by threads."""

    def __init__(self, base_url: str, *, max_idle: float = 20.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port
        self.max_idle = max_idle
        self._context = ssl.create_default_context() if self.scheme == "https" else None
        self._idle: list[tuple[http.client.HTTPConnection, float]] = []
        self._lock = threading.Lock()

    def send(self, request: urllib.request.Request, timeout: float | None) -> Answer:
        """Send ``request`` and read the whole answer, whatever its status."""
        data = request.data
        if data is not None and not isinstance(data, bytes):
            raise TypeError("ConnectionPool sends bytes bodies only")
        headers = dict(request.header_items())
        connection, reused = self._take(timeout)
        try:
            connection.request(request.get_method(), request.selector, data, headers)
        except OSError as exc:
            connection.close()
            if not reused:
                raise urllib.error.URLError(exc) from None
            # The server closed the idle connection as this request was being written: the
            # request is incomplete on its side, so writing it again cannot send twice.
            connection = self._connect(timeout)
            try:
                connection.request(request.get_method(), request.selector, data, headers)
            except OSError as again:
                connection.close()
                raise urllib.error.URLError(again) from None
        try:
            response = connection.getresponse()
            answer = Answer(response.status, response.reason, response.msg, response.read())
        except BaseException:
            connection.close()
            raise
        if response.will_close:
            connection.close()
        else:
            self._give_back(connection)
        return answer

    def close(self) -> None:
        """Close the idle connections; for when no request is in progress any more."""
        with self._lock:
            idle, self._idle = self._idle, []
        for connection, _ in idle:
            connection.close()

    def _take(self, timeout: float | None) -> tuple[http.client.HTTPConnection, bool]:
        now = time.monotonic()
        while True:
            with self._lock:
                if not self._idle:
                    break
                connection, since = self._idle.pop()
            if now - since < self.max_idle and _still_open(connection):
                connection.timeout = timeout
                if connection.sock is not None:
                    connection.sock.settimeout(timeout)
                return connection, True
            connection.close()
        return self._connect(timeout), False

    def _connect(self, timeout: float | None) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection
        if self._context is not None:
            connection = http.client.HTTPSConnection(
                self.host, self.port, timeout=timeout, context=self._context
            )
        else:
            connection = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            connection.connect()
            # http.client writes the headers and the body separately: without this the body
            # can wait for the server to acknowledge the headers (Nagle's algorithm).
            if connection.sock is not None:
                connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as exc:
            connection.close()
            raise urllib.error.URLError(exc) from None
        return connection

    def _give_back(self, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            self._idle.append((connection, time.monotonic()))


def _still_open(connection: http.client.HTTPConnection) -> bool:
    """An idle connection is readable only when the server closed it (or broke protocol)."""
    sock = connection.sock
    if sock is None:
        return False
    poller = select.poll()  # not select.select: it cannot watch descriptors past 1023
    poller.register(sock, select.POLLIN)
    return not poller.poll(0)
