"""The fakes' hand-parsed HTTP: what clients see of it, over raw sockets and http.client."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from fakes.http_fake import FakeServer, Fault, Recorded, Reply


class EchoApi(FakeServer):
    def handle(self, request: Recorded) -> Reply:
        return Reply(201, request.body, {"X-Path": request.path})


@pytest.fixture
def echo() -> Iterator[EchoApi]:
    server = EchoApi().start()
    yield server
    server.stop()


def _connect(server: FakeServer) -> http.client.HTTPConnection:
    host, port = server.url.removeprefix("http://").split(":")
    return http.client.HTTPConnection(host, int(port), timeout=5)


def test_requests_are_recorded_as_sent_and_answered_over_one_connection(echo):
    client = _connect(echo)
    for body in (b'{"n": 1}', b""):
        client.request("PATCH", "/a?b=c", body, {"X-Mixed-Case": " spaced value "})
        answer = client.getresponse()
        assert (answer.status, answer.reason, answer.read()) == (201, "Created", body)
        assert answer.getheader("X-Path") == "/a?b=c"
        assert answer.getheader("Date") and answer.getheader("Server")
    client.close()
    assert [(r.method, r.path, r.body) for r in echo.requests] == [
        ("PATCH", "/a?b=c", b'{"n": 1}'),
        ("PATCH", "/a?b=c", b""),
    ]
    assert echo.requests[0].headers["X-Mixed-Case"] == "spaced value "
    assert len({r.client_port for r in echo.requests}) == 1


def test_connection_close_is_honoured_after_the_answer(echo):
    host, port = echo.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        raw.sendall(b"GET /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := raw.recv(4096):  # the server closes: recv ends with b""
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 201 Created\r\n")
    assert answer.endswith(b"\r\nContent-Length: 0\r\n\r\n")


def test_other_methods_are_not_implemented(echo):
    client = _connect(echo)
    client.request("DELETE", "/x")
    assert client.getresponse().status == 501
    assert echo.requests == []


def test_a_held_answer_holds_up_only_its_own_connection(echo):
    hold, reached = threading.Event(), threading.Event()
    echo.fail_next(Fault(reached=reached, hold=hold))
    held = _connect(echo)
    held.request("POST", "/held", b"1")
    assert reached.wait(timeout=5)
    other = _connect(echo)
    other.request("POST", "/other", b"2")
    assert other.getresponse().read() == b"2"  # answered while the first waits
    hold.set()
    answer = held.getresponse()
    assert (answer.status, answer.read()) == (201, b"1")
    held.request("POST", "/again", b"3")  # the held connection goes on as before
    assert held.getresponse().read() == b"3"
    held.close()
    other.close()


def test_latency_delays_every_answer():
    server = EchoApi(latency=0.2).start()
    client = _connect(server)
    started = time.monotonic()
    client.request("GET", "/slow")
    assert client.getresponse().status == 201
    assert time.monotonic() - started >= 0.2
    client.close()
    server.stop()
