"""Requests sent at once and their answers: the bytes a pool writes for a request are the bytes
http.client writes for it, whether its head was written before (same method, path and
headers) or not; an answer read without http.client is read as http.client reads it."""

from __future__ import annotations

import http.client
import urllib.request

import pytest

from postpurchase.channels.connections import (
    Answer,
    ConnectionPool,
    _complete,
    _plain_answer,
    _Replay,
)

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


def _http_client_answer(data: bytes, method: str) -> tuple[Answer, bool]:
    """The answer in ``data`` and whether to close, as http.client reads them."""
    response = http.client.HTTPResponse(_Replay(data), method=method)  # type: ignore[arg-type]
    response.begin()
    return Answer(response.status, response.reason, response.msg, response.read()), (
        response.will_close
    )


SENDGRID_ACCEPTED = (
    b"HTTP/1.1 202 Accepted\r\nServer: nginx\r\nDate: Fri, 04 Dec 2026 16:00:00 GMT\r\n"
    b"Content-Length: 0\r\nConnection: keep-alive\r\nX-Message-Id: 4Zx0aJ7mQ-y3U1qkVtHc9g\r\n"
    b"Access-Control-Allow-Origin: https://sendgrid.api-docs.io\r\n"
    b"Strict-Transport-Security: max-age=600; includeSubDomains\r\n\r\n"
)
REFUSED = b'{"errors":[{"message":"The from address does not match a verified Sender Identity.","field":"from","help":null}]}'  # noqa: E501

PLAIN_ANSWERS = {
    "accepted": SENDGRID_ACCEPTED,
    "accepted by the fake": b"HTTP/1.1 202 Accepted\r\nServer: BaseHTTP/0.6 Python/3.11.7\r\n"
    b"Date: Fri, 04 Dec 2026 16:00:00 GMT\r\nX-Message-Id: abcdefghijklmnopqrstuv\r\n"
    b"Content-Length: 0\r\n\r\n",
    "closing": SENDGRID_ACCEPTED.replace(b"keep-alive", b"Close"),
    "refused": b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
    + f"Content-Length: {len(REFUSED)}\r\n\r\n".encode()
    + REFUSED,
    "too many": b"HTTP/1.1 429 Too Many Requests\r\nX-RateLimit-Limit: 600\r\n"
    b"X-RateLimit-Remaining: 0\r\nX-RateLimit-Reset: 1796400000\r\nContent-Length: 2\r\n\r\n{}",
    "odd spacing": b"HTTP/1.1 503  Service Unavailable  \r\nRetry-After:\t 30  \r\nX-Empty:\r\n"
    b"x-message-id:lower\r\nX-Dup: 1\r\nX-Dup: 2\r\ncontent-length: 3\r\n\r\nabc",
    "more after it": SENDGRID_ACCEPTED + b"HTTP/1.1 202 Accepted\r\n",
    "empty reason": b"HTTP/1.1 202 \r\nContent-Length: 0\r\n\r\n",
    "99 header lines": b"HTTP/1.1 202 Accepted\r\n"
    + b"X-Line: 1\r\n" * 98
    + b"Content-Length: 0\r\n\r\n",
    "two connections": b"HTTP/1.1 202 Accepted\r\nConnection: keep-alive\r\nConnection: close\r\n"
    b"Content-Length: 0\r\n\r\n",
}

OTHER_ANSWERS = {
    "HTTP/1.0": b"HTTP/1.0 202 Accepted\r\nContent-Length: 0\r\n\r\n",
    "chunked": b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "no length": b"HTTP/1.1 202 Accepted\r\nConnection: close\r\n\r\nall of it",
    "no content": b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
    "continue first": b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\n"
    b"Content-Length: 0\r\n\r\n",
    "folded header": b"HTTP/1.1 202 Accepted\r\nX-Note: one\r\n two\r\nContent-Length: 0\r\n\r\n",
    "latin-1 value": "HTTP/1.1 202 Accepted\r\nX-Note: é\r\nContent-Length: 0\r\n\r\n".encode(
        "iso-8859-1"
    ),
    "signed length": b"HTTP/1.1 202 Accepted\r\nContent-Length: +0\r\n\r\n",
    "two lengths": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
    "short body": b"HTTP/1.1 400 Bad Request\r\nContent-Length: 10\r\n\r\n{}",
    "bare newlines": b"HTTP/1.1 202 Accepted\nContent-Length: 0\n\n",
    "100 header lines": b"HTTP/1.1 202 Accepted\r\n"
    + b"X-Line: 1\r\n" * 99
    + b"Content-Length: 0\r\n\r\n",
    "tab in a value": b"HTTP/1.1 202 Accepted\r\nX-Note: a\tb\r\nContent-Length: 0\r\n\r\n",
    # read in linear time: a value of spaces then a control byte is not tried at each space
    "spaces then a control byte": b"HTTP/1.1 202 Accepted\r\nX-Pad:"
    + b" " * 60000
    + b"\x01\r\nContent-Length: 0\r\n\r\n",
}


@pytest.mark.parametrize("data", PLAIN_ANSWERS.values(), ids=PLAIN_ANSWERS.keys())
def test_a_plain_answer_is_read_as_http_client_reads_it(data):
    answer, closing, end = _plain_answer(data, "POST")
    expected, expected_closing = _http_client_answer(data, "POST")

    assert (answer.status, answer.reason, answer.body, closing) == (
        expected.status,
        expected.reason,
        expected.body,
        expected_closing,
    )
    assert _complete(bytearray(data[:end]), "POST") is False  # the answer ends at ``end``
    assert _plain_answer(data[: end - 1], "POST") is None
    assert type(answer.headers) is type(expected.headers)
    assert vars(answer.headers) == vars(expected.headers)  # header lines, payload, policy
    assert answer.headers.as_string() == expected.headers.as_string()


@pytest.mark.parametrize("data", OTHER_ANSWERS.values(), ids=OTHER_ANSWERS.keys())
def test_any_other_answer_is_left_to_http_client(data):
    assert _plain_answer(data, "POST") is None


def test_an_answer_to_a_head_request_is_left_to_http_client():
    assert _plain_answer(SENDGRID_ACCEPTED, "HEAD") is None
