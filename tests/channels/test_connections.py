"""Requests sent at once: the bytes a pool writes for a request are the bytes http.client writes
for it, whether its head was written before (same method, path and headers) or not."""

from __future__ import annotations

import http.client
import urllib.request

import pytest

from postpurchase.channels.connections import ConnectionPool

BASE = "http://127.0.0.1:8025"
HEADERS = {
    "Authorization": "Bearer SG.test-key",
    "User-Agent": "sendgrid/6.12.5;python",
    "Accept": "application/json",
    "Content-Type": "application/json",
}


class _Recorder:
    """A socket that keeps what http.client sends on it."""

    def __init__(self) -> None:
        self.sent = b""

    def sendall(self, data: bytes) -> None:
        self.sent += bytes(data)


def _http_client_bytes(request: urllib.request.Request) -> bytes:
    """What http.client itself writes on a connection for ``request``."""
    connection = http.client.HTTPConnection("127.0.0.1", 8025)
    connection.sock = _Recorder()  # type: ignore[assignment]
    connection.request(
        request.get_method(), request.selector, request.data, dict(request.header_items())
    )
    return connection.sock.sent  # type: ignore[attr-defined,no-any-return]


def _request(body: bytes | None, *, path: str = "/v3/mail/send", **headers: str):
    return urllib.request.Request(
        BASE + path, data=body, headers={**HEADERS, **headers}, method="POST"
    )


BODIES = [
    b'{"subject": "Has your order #10001 arrived?"}',
    b"",
    b"x" * 9,
    b"x" * 10,
    '{"name": "Amélie", "html": "<p>€129.00</p>"}'.encode(),
    b"y" * 100_000,
]


def test_requests_of_one_head_are_written_as_http_client_writes_them():
    pool = ConnectionPool(BASE)
    requests = [_request(body) for body in BODIES]

    for request in [*requests, *reversed(requests)]:  # heads written before, and not
        assert pool._wire(request) == _http_client_bytes(request)


def test_requests_of_other_paths_headers_and_methods_get_their_own_heads():
    pool = ConnectionPool(BASE)
    requests = [
        _request(b'{"a": 1}'),
        _request(b'{"a": 1}', path="/v3/mail/batch"),
        _request(b'{"a": 12}', Authorization="Bearer SG.other-shop"),
        urllib.request.Request(BASE + "/v3/scopes", headers=HEADERS),  # GET, no body
        _request(None),
    ]

    for request in [*requests, *requests]:
        assert pool._wire(request) == _http_client_bytes(request)


@pytest.mark.parametrize(
    "headers",
    [{"Content-Length": "0"}, {"Transfer-Encoding": "chunked"}],
    ids=["length given", "chunked"],
)
def test_a_request_that_gives_its_own_length_or_encoding_is_written_whole(headers):
    pool = ConnectionPool(BASE)
    for body in (b"abc", b"abcdef"):
        request = _request(body, **headers)
        assert pool._wire(request) == _http_client_bytes(request)


def test_a_header_http_client_refuses_is_refused_every_time():
    pool = ConnectionPool(BASE)
    bad = _request(b"{}", **{"X-Note": "two\r\nlines"})

    for _ in range(2):
        with pytest.raises(ValueError, match="Invalid header value"):
            pool._wire(bad)
