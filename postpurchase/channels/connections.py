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

``ConnectionPool.start`` sends many requests at once from the calling thread instead (one
method, URL and headers, each with its own body), each on a connection of its own made
non-blocking, and ``Flight.answers`` reads the answers as they come (one poll over all of
them), with the same meaning of failures and the same bytes: a request is the head
http.client wrote for its method, path and headers, with its own length and body; an answer
in the plainest form (``_plain_answer``) is read as http.client would read it, any other by
http.client.
"""

from __future__ import annotations

import http.client
import io
import math
import re
import select
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from email.message import Message
from typing import NamedTuple
from urllib.parse import urlsplit


class Answer(NamedTuple):
    """A fully read response, shaped like urllib's (``getcode``, ``read``, ``info``).

    A named tuple, not a frozen dataclass: one is made for every email sent, and a frozen
    dataclass's setting of each field cost about 5K more instructions."""

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
        # per method, path and headers: the head http.client writes, around the body's length
        self._heads: dict[tuple[object, ...], tuple[bytes, bytes] | None] = {}

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

    def start(
        self, request: urllib.request.Request, bodies: Sequence[bytes], timeout: float | None
    ) -> Flight:
        """Send ``request`` with each of ``bodies`` (instead of its own) at once, each on a
        connection of its own, writing now what the sockets take without waiting;
        ``Flight.answers`` writes the rest and reads the answers, all on the calling thread.
        The answers' indexes are those of ``bodies``."""
        return Flight(self, request, bodies, timeout)

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

    def _wire(self, request: urllib.request.Request) -> bytes:
        """The request's bytes as http.client writes them."""
        data = request.data
        if data is not None and not isinstance(data, bytes):
            raise TypeError("ConnectionPool sends bytes bodies only")
        return self._wires(request, [data])[0]

    def _wires(
        self, request: urllib.request.Request, bodies: Sequence[bytes | None]
    ) -> list[bytes]:
        """The bytes http.client writes for ``request`` with each of ``bodies``.

        A sender's requests differ in their bodies only: http.client writes the head of each
        method, path and headers once (with the place of the body's length kept), and each
        request is that head with its length, then its body. Writing every head again was
        about 3% of a dispatch worker's instructions per email; looking the head up for each
        request of a wave (and making a request for each) was 1.2% more.
        """
        method, path, headers = request.get_method(), request.selector, request.header_items()
        key = (method, path, tuple(headers))
        if key not in self._heads:
            if len(self._heads) >= _MAX_HEADS:  # not one sender's few: stay bounded
                self._heads.clear()
            written = self._written(method, path, b"", dict(headers))
            self._heads[key] = _head_around_length(written, headers)
        head = self._heads[key]
        if head is None:
            return [self._written(method, path, data, dict(headers)) for data in bodies]
        before, after = head
        return [
            self._written(method, path, data, dict(headers))
            if data is None
            else b"".join((before, str(len(data)).encode("ascii"), after, data))
            for data in bodies
        ]

    def _written(
        self, method: str, path: str, data: bytes | None, headers: dict[str, str]
    ) -> bytes:
        """What http.client writes for a request (raising what it raises for it)."""
        capture = _Capture(self.host, self.port, self.scheme)
        capture.request(method, path, data, headers)
        return b"".join(capture.chunks)

    def _finish(self, exchange: _Exchange) -> Answer | Exception:
        """The answer read by ``exchange``, parsed by http.client as ``send`` does; the
        connection goes back to the pool unless it is to be closed."""
        connection = exchange.connection
        if exchange.plain is not None:
            answer, will_close, _ = exchange.plain
        else:
            response = http.client.HTTPResponse(
                _Replay(bytes(exchange.received)),  # type: ignore[arg-type]
                method=exchange.method,
            )
            try:
                response.begin()
                answer = Answer(response.status, response.reason, response.msg, response.read())
            except Exception as exc:
                connection.close()
                return exc
            will_close = response.will_close
        if will_close or exchange.eof or exchange.extra:
            connection.close()
        else:
            self._give_back(connection)
        return answer

    def _give_back(self, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            self._idle.append((connection, time.monotonic()))


# An answer's head in its plainest form: HTTP/1.1, a status that has a body, up to 99
# header lines (http.client refuses more) of printable ASCII, each value after the spaces
# and tabs that begin it (possessive: nothing to backtrack over). One match for the whole
# head: a match per line cost 3.5K more instructions per email.
_PLAIN_HEAD = re.compile(
    r"HTTP/1\.1 ([2-5][0-9][0-9]) ([ -~]*)((?:\r\n[!-9;-~]+:[ \t]*+[ -~]*){0,99})"
)
_MAX_HEAD = 65536  # http.client's longest line: a longer head is left to it


def _plain_answer(data: bytes | bytearray, method: str) -> tuple[Answer, bool, int] | None:
    """The answer in ``data`` (to a ``method`` request), whether its connection is to be
    closed, as http.client reads them, and where the answer ends in ``data``, when the
    answer is in the plainest form: HTTP/1.1, a status with a body, lines of printable
    ASCII, one Content-Length and no other framing, the whole body there. None for any other
    answer (or one not all there yet), which http.client reads.

    http.client parses a head with the email package, about 4% of a dispatch worker's
    instructions per email: the header lines are put into the same kind of message here,
    and the framing headers are read from the lines rather than looked up in the message.
    """
    end = data.find(b"\r\n\r\n")
    if end < 0 or end > _MAX_HEAD or method == "HEAD":
        return None
    head = _PLAIN_HEAD.fullmatch(data[:end].decode("iso-8859-1"))
    if head is None or head[1] in ("204", "304"):
        return None
    headers = http.client.HTTPMessage()
    lengths = []
    connection = None
    for line in head[3].split("\r\n")[1:]:
        name, _, value = line.partition(":")
        value = value.lstrip(" \t")
        headers.set_raw(name, value)
        lowered = name.lower()
        if lowered == "content-length":
            lengths.append(value)
        elif lowered == "transfer-encoding":
            return None
        elif lowered == "connection" and connection is None:  # the first, as Message.get
            connection = value
    headers.set_payload("")  # as the email parser leaves a head without a body
    if len(lengths) != 1 or not lengths[0].isdigit():
        return None
    length = int(lengths[0])
    body = bytes(data[end + 4 : end + 4 + length])
    if len(body) < length:
        return None
    answer = Answer(int(head[1]), head[2].strip(), headers, body)
    closing = connection is not None and "close" in connection.lower()
    return answer, closing, end + 4 + length


_MAX_HEADS = 16
_LENGTH_LINE = b"\r\nContent-Length: 0\r\n"  # as http.client writes it for an empty body


def _head_around_length(
    written: bytes, headers: Sequence[tuple[str, str]]
) -> tuple[bytes, bytes] | None:
    """The head of ``written`` (a request with ``headers`` and an empty body) before and
    after the body's length, or None when http.client did not write the length itself (the
    request's headers give it, or a transfer encoding) or wrote it more than once."""
    if any(name.lower() in ("content-length", "transfer-encoding") for name, _ in headers):
        return None
    if not written.endswith(b"\r\n\r\n") or written.count(_LENGTH_LINE) != 1:
        return None
    at = written.index(_LENGTH_LINE) + len(_LENGTH_LINE) - 3  # at the "0"
    return written[:at], written[at + 1 :]


def _still_open(connection: http.client.HTTPConnection) -> bool:
    """An idle connection is readable only when the server closed it (or broke protocol)."""
    sock = connection.sock
    if sock is None:
        return False
    poller = select.poll()  # not select.select: it cannot watch descriptors past 1023
    poller.register(sock, select.POLLIN)
    return not poller.poll(0)


class Flight:
    """Requests in flight on non-blocking connections of a pool, driven by one thread.

    One thread writing every request of a wave and polling for the answers replaces a
    sending thread per request, whose wake-ups and queueing for the interpreter lock cost
    more CPU than the sends themselves. Failures mean what they mean for
    ``ConnectionPool.send``: connecting or writing, ``URLError``; waiting for or reading the
    answer, the error as it is (``TimeoutError`` after ``timeout`` seconds without progress,
    as a blocking socket's timeout).
    """

    def __init__(
        self,
        pool: ConnectionPool,
        request: urllib.request.Request,
        bodies: Sequence[bytes],
        timeout: float | None,
    ) -> None:
        self._pool = pool
        self._timeout = timeout
        self._poller = select.poll()
        self._exchanges: dict[int, _Exchange] = {}  # by file descriptor
        self._finished: list[tuple[int, Answer | Exception]] = []
        try:
            payloads = pool._wires(request, bodies)  # what ``send`` would raise, before connecting
        except Exception as exc:
            self._finished = [(index, exc) for index in range(len(bodies))]
            return
        method = request.get_method()
        for index, payload in enumerate(payloads):
            try:
                connection, reused = pool._take(timeout)
            except Exception as exc:
                self._finished.append((index, exc))
                continue
            self._begin(_Exchange(index, connection, reused, payload, method))

    def answers(self, *, quiet: float) -> Iterator[tuple[int, Answer | Exception] | None]:
        """``(index, answer or error)`` of each request as it comes, in any order; ``None``
        whenever nothing came for ``quiet`` seconds."""
        heard = time.monotonic()
        while self._finished or self._exchanges:
            if self._finished:
                finished, self._finished = self._finished, []
                heard = time.monotonic()
                yield from finished
                continue
            now = time.monotonic()
            wait = heard + quiet - now
            if self._timeout is not None:
                wait = min(wait, min(e.deadline for e in self._exchanges.values()) - now)
            events = self._poller.poll(max(0, math.ceil(wait * 1000)))
            now = time.monotonic()
            for fd, _ in events:
                exchange = self._exchanges.get(fd)
                if exchange is not None:
                    self._advance(exchange, now)
            if self._timeout is not None:
                for exchange in list(self._exchanges.values()):
                    if now >= exchange.deadline:
                        self._fail(exchange, TimeoutError("timed out"))
            if not self._finished and now - heard >= quiet:
                heard = now
                yield None

    def close(self) -> None:
        """Close the connections of the requests not answered yet (their answers are lost)."""
        for exchange in self._exchanges.values():
            exchange.connection.close()
        self._exchanges.clear()

    def _begin(self, exchange: _Exchange) -> None:
        self._exchanges[exchange.fd] = exchange
        self._poller.register(exchange.fd, exchange.wants)
        self._advance(exchange, time.monotonic())

    def _drop(self, exchange: _Exchange) -> None:
        self._poller.unregister(exchange.fd)
        del self._exchanges[exchange.fd]

    def _advance(self, exchange: _Exchange, now: float) -> None:
        wanted = exchange.wants
        try:
            done = exchange.step(now, self._timeout)
        except OSError as exc:
            self._fail(exchange, exc)
            return
        if done:
            self._drop(exchange)
            self._finished.append((exchange.index, self._pool._finish(exchange)))
        elif exchange.wants != wanted:
            self._poller.modify(exchange.fd, exchange.wants)

    def _fail(self, exchange: _Exchange, error: OSError) -> None:
        self._drop(exchange)
        exchange.connection.close()
        if exchange.written:
            self._finished.append((exchange.index, error))
        elif not exchange.reused:
            self._finished.append((exchange.index, urllib.error.URLError(error)))
        else:
            # The server closed the idle connection as this request was being written: the
            # request is incomplete on its side, so writing it again cannot send twice.
            try:
                connection = self._pool._connect(self._timeout)
            except urllib.error.URLError as exc:
                self._finished.append((exchange.index, exc))
                return
            self._begin(
                _Exchange(exchange.index, connection, False, exchange.payload, exchange.method)
            )


class _Exchange:
    """One request on one non-blocking connection: written, then its answer read."""

    def __init__(
        self,
        index: int,
        connection: http.client.HTTPConnection,
        reused: bool,
        payload: bytes,
        method: str,
    ) -> None:
        assert connection.sock is not None
        self.index = index
        self.connection = connection
        self.sock: socket.socket = connection.sock
        self.sock.setblocking(False)
        self.fd = self.sock.fileno()
        self.reused = reused
        self.payload = payload
        self.method = method
        self.sent = 0
        self.written = False
        self.wants = select.POLLOUT
        self.received = bytearray()
        self.eof = False
        self.extra = False  # bytes came after the answer: the connection is not reused
        self.plain: tuple[Answer, bool, int] | None = None  # the answer, if plainest form
        self.deadline = math.inf

    def step(self, now: float, timeout: float | None) -> bool:
        """Write or read what the socket takes or has now; whether the answer is complete.
        Raises the OSError of the socket."""
        if timeout is not None:
            self.deadline = now + timeout
        if not self.written:
            try:
                self.sent += self.sock.send(memoryview(self.payload)[self.sent :])
            except (BlockingIOError, ssl.SSLWantWriteError):
                return False
            except ssl.SSLWantReadError:
                self.wants = select.POLLIN
                return False
            self.written = self.sent == len(self.payload)
            # Just written, the answer cannot be there yet: reading now would only fail
            # (an exception and a system call per request); the poll says when it comes.
            self.wants = select.POLLIN if self.written else select.POLLOUT
            return False
        while True:
            try:
                data = self.sock.recv(65536)
            except (BlockingIOError, ssl.SSLWantReadError):
                return False
            except ssl.SSLWantWriteError:
                self.wants = select.POLLOUT
                return False
            self.wants = select.POLLIN
            if not data:
                self.eof = True
                return True
            self.received += data
            # The plainest answer is read once, here; any other is framed by _complete.
            self.plain = _plain_answer(self.received, self.method)
            if self.plain is not None:
                self.extra = len(self.received) > self.plain[2]
                return True
            extra = _complete(self.received, self.method)
            if extra is not None:
                self.extra = extra
                return True
            if not isinstance(self.sock, ssl.SSLSocket) or not self.sock.pending():
                return False


class _Capture(http.client.HTTPConnection):
    """Collects what http.client would write for a request, without a socket."""

    def __init__(self, host: str, port: int | None, scheme: str) -> None:
        self.default_port = 443 if scheme == "https" else 80
        super().__init__(host, port)
        self.chunks: list[bytes] = []

    def send(self, data: bytes) -> None:  # type: ignore[override]
        self.chunks.append(data)


class _Replay:
    """A socket whose answer was already read: for http.client.HTTPResponse to parse."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def makefile(self, mode: str) -> io.BytesIO:
        return io.BytesIO(self._data)


def _complete(data: bytearray, method: str) -> bool | None:
    """None while the answer in ``data`` is incomplete; else whether bytes follow it."""
    start = 0
    while True:
        end = data.find(b"\r\n\r\n", start)
        if end < 0:
            return None
        head = bytes(data[start:end]).decode("iso-8859-1").split("\r\n")
        try:
            status = int(head[0].split(None, 2)[1])
        except (IndexError, ValueError):
            return False  # not HTTP: http.client says what is wrong
        if status != 100:  # http.client skips a 100 Continue, as this does
            break
        start = end + 4
    body = end + 4
    if 100 <= status < 200 or status in (204, 304) or method == "HEAD":
        return len(data) > body
    length: int | None = None
    for line in head[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "transfer-encoding" and "chunked" in value.lower():
            return _chunked_end(data, body)
        if name == "content-length":
            try:
                length = int(value.strip())
            except ValueError:
                return False
    if length is None:
        return None  # the body ends when the server closes the connection
    if len(data) - body < length:
        return None
    return len(data) - body > length


def _chunked_end(data: bytearray, at: int) -> bool | None:
    """Like ``_complete`` for a chunked body starting at ``at``."""
    while True:
        line_end = data.find(b"\r\n", at)
        if line_end < 0:
            return None
        try:
            size = int(bytes(data[at:line_end]).split(b";", 1)[0], 16)
        except ValueError:
            return False
        if size == 0:  # the last chunk, then trailer lines up to an empty one
            end = line_end
            while True:
                following = data.find(b"\r\n", end + 2)
                if following < 0:
                    return None
                if following == end + 2:
                    return len(data) > following + 2
                end = following
        at = line_end + 2 + size + 2
        if at > len(data):
            return None
