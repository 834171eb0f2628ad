"""read_body reads the ASGI messages itself: bodies in several parts, limits, hang-ups."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.requests import ClientDisconnect, Request

from postpurchase.webhooks.intake import read_body
from postpurchase.webhooks.rejections import Rejection


def _request(messages: list[dict[str, Any]], headers: list[tuple[bytes, bytes]]) -> Request:
    pending = iter(messages)

    async def receive() -> dict[str, Any]:
        return next(pending)

    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers}
    return Request(scope, receive)


def _read(messages: list[dict[str, Any]], limit: int = 100) -> bytes:
    return asyncio.run(read_body(_request(messages, []), limit))


def test_a_body_in_several_messages_is_joined_in_order():
    messages = [
        {"type": "http.request", "body": b"ab", "more_body": True},
        {"type": "http.request", "body": b"", "more_body": True},
        {"type": "http.request", "body": b"cd"},
    ]
    assert _read(messages) == b"abcd"


def test_a_request_without_a_body_reads_as_empty():
    assert _read([{"type": "http.request"}]) == b""


def test_a_body_over_the_limit_without_a_length_is_refused_as_it_arrives():
    messages = [
        {"type": "http.request", "body": b"x" * 60, "more_body": True},
        {"type": "http.request", "body": b"x" * 60, "more_body": True},
        # never read: refused before
        {"type": "http.request", "body": b"x"},
    ]
    with pytest.raises(Rejection) as refused:
        _read(messages)
    assert (refused.value.status_code, refused.value.reason) == (
        413,
        "body is over the 100-byte limit",
    )


def test_a_declared_length_over_the_limit_is_refused_before_reading():
    request = _request([], [(b"content-length", b"101")])
    with pytest.raises(Rejection) as refused:
        asyncio.run(read_body(request, 100))
    assert refused.value.status_code == 413


def test_a_client_hanging_up_mid_body_is_a_disconnect_as_starlette_reports_it():
    messages = [
        {"type": "http.request", "body": b"ab", "more_body": True},
        {"type": "http.disconnect"},
    ]
    with pytest.raises(ClientDisconnect):
        _read(messages)
