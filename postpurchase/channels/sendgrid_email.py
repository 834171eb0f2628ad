"""Email through SendGrid's v3 mail send API, with the official ``sendgrid`` SDK.

Each message carries the campaign as a category, the touchpoint id in ``custom_args`` (it
comes back on every event), and ``List-Unsubscribe`` with one-click POST. Outcomes:

- 202 (or 200 in sandbox mode): sent; the id is the ``X-Message-Id`` header.
- 429, 5xx, connection refused: TransientProviderError (429 carries X-RateLimit-Reset).
- other 4xx: PermanentProviderError with SendGrid's own message.
- no answer within the timeout after the request left: UnknownOutcome.

Requests go over keep-alive connections (``channels.connections``) through the SDK's own
transport seam, ``python_http_client.Client._make_request``: the SDK's client still makes the
URL and headers, and its response and error types are what this module sees. Its verb call is
redone without the urllib opener it builds per request. Where urllib would use a proxy for the
host, the SDK's client is left as it is (a new connection per request).

``start_emails`` sends many emails at once from the calling thread (``ConnectionPool.start``):
the SDK's client still builds the wave's request (URL and headers, each email its own body)
and reads each answer, and each answer means what it means for ``send_email``.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import time
import urllib.error
import urllib.request
import weakref
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit

import msgspec
import python_http_client
from python_http_client import exceptions as http_errors
from python_http_client.client import Response
from sendgrid import SendGridAPIClient

from postpurchase.channels.connections import ConnectionPool
from postpurchase.channels.senders import OutgoingEmail
from postpurchase.exceptions import (
    PermanentProviderError,
    TransientProviderError,
    UnknownOutcome,
)


class SendGridEmailSender:
    """A SendGrid client built once and reused; ``host`` may point at a test double."""

    name = "sendgrid"

    def __init__(
        self, api_key: str, *, host: str, sandbox: bool = False, timeout: float = 10.0
    ) -> None:
        self._api = SendGridAPIClient(api_key=api_key, host=host.rstrip("/"))
        # The SDK has no timeout argument; the underlying client passes this to urllib.
        self._api.client.timeout = timeout
        self._pool: ConnectionPool | None = None
        if not _proxied(self._api.host):
            pool = self._pool = ConnectionPool(self._api.host)
            self._api.client = _PooledClient(
                pool,
                host=self._api.host,
                request_headers=self._api.client.request_headers,
                version=3,
                timeout=timeout,
            )
            # Idle sockets are closed with the sender, not left to the garbage collector.
            weakref.finalize(self, pool.close)
        # The client of the mail send endpoint, built once: each attribute step of
        # ``client.mail.send`` builds a new client.
        self._mail_send = self._api.client.mail.send
        self.sandbox = sandbox

    def request_body(self, message: OutgoingEmail) -> dict[str, Any]:
        """The JSON body of the mail send request for ``message``."""
        to: dict[str, str] = {"email": message.to_email}
        if message.to_name:
            to["name"] = message.to_name
        body: dict[str, Any] = {
            "personalizations": [{"to": [to]}],
            "from": {"email": message.from_email, "name": message.from_name},
            "subject": message.subject,
            "content": [
                {"type": "text/plain", "value": message.text},
                {"type": "text/html", "value": message.html},
            ],
            "categories": [message.campaign_id, "postpurchase"],
            # custom_args values must be strings: SendGrid answers 400 to anything else.
            "custom_args": {
                "touchpoint_id": str(message.touchpoint_id),
                "campaign_id": message.campaign_id,
            },
            "headers": {
                "List-Unsubscribe": f"<{message.unsubscribe_url}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            },
        }
        if message.attachments:
            body["attachments"] = [
                {
                    "content": base64.b64encode(a.data).decode("ascii"),
                    "filename": a.filename,
                    "type": a.content_type,
                    "disposition": "attachment",
                }
                for a in message.attachments
            ]
        if self.sandbox:
            body["mail_settings"] = {"sandbox_mode": {"enable": True}}
        return body

    def send_email(self, message: OutgoingEmail) -> str:
        try:
            response = self._mail_send.post(request_body=self.request_body(message))
        except Exception as exc:
            failure = self._failure(exc)
            if failure is exc:
                raise
            raise failure from None
        return self._message_id(message, response.status_code, response.headers)

    @property
    def sends_at_once(self) -> bool:
        """Whether ``start_emails`` may be used: the requests go over the pool."""
        return self._pool is not None

    def start_emails(self, messages: Sequence[OutgoingEmail]) -> _EmailFlight:
        """Send ``messages`` at once, on this thread (see ``ConnectionPool.start``); the
        flight's answers are what ``send_email`` would return or raise for each."""
        assert self._pool is not None, "sends_at_once is False"
        return _EmailFlight(self, self._pool, messages)

    def _failure(self, exc: Exception) -> Exception:
        """What ``send_email`` raises for ``exc``, raised by the SDK's call."""
        if isinstance(exc, http_errors.HTTPError):
            return _classify(exc)
        if isinstance(exc, urllib.error.URLError):
            # urllib raises URLError only while connecting and sending: nothing was accepted.
            return TransientProviderError(f"cannot reach SendGrid: {exc.reason}")
        if isinstance(exc, (OSError, http.client.HTTPException)):
            # The request went out and the answer never came (timeout, connection dropped).
            return UnknownOutcome(
                f"SendGrid sent no answer ({type(exc).__name__}, timeout "
                f"{self._api.client.timeout}s); the email may have been accepted"
            )
        return exc

    def _message_id(self, message: OutgoingEmail, status: int, headers: Any) -> str:
        """The id of the accepted ``message`` (the answer's ``status`` and ``headers``);
        UnknownOutcome when the answer has none."""
        if self.sandbox and status == 200:
            return f"sandbox-{message.touchpoint_id}"
        message_id = headers.get("X-Message-Id")
        if not message_id:
            raise UnknownOutcome(f"SendGrid answered {status} without X-Message-Id")
        return str(message_id)


class _EmailFlight:
    """Emails sent at once by ``SendGridEmailSender.start_emails``, answers to come."""

    def __init__(
        self, sender: SendGridEmailSender, pool: ConnectionPool, messages: Sequence[OutgoingEmail]
    ) -> None:
        self._sender = sender
        self._messages = messages
        client = sender._mail_send
        self._failed: list[tuple[int, Exception]] = []
        # The messages' requests differ in their bodies only: one request, built by the SDK's
        # client, and a body per message.
        self._request = client.prepare("post", None)
        bodies: list[bytes] = []
        self._indexes: list[int] = []  # of the message of each body
        for index, message in enumerate(messages):
            try:
                bodies.append(_json(sender.request_body(message)))
            except Exception as exc:  # as send_email would raise it (nothing went out)
                self._failed.append((index, sender._failure(exc)))
                continue
            self._indexes.append(index)
        self._flight = pool.start(self._request, bodies, client.timeout)

    def answers(self, *, quiet: float) -> Iterator[tuple[int, str | Exception] | None]:
        """``(index, message id or the error send_email would raise)`` of each message as
        its answer comes, in any order; ``None`` whenever nothing came for ``quiet`` s."""
        yield from self._failed
        client = self._sender._mail_send
        for item in self._flight.answers(quiet=quiet):
            if item is None:
                yield None
                continue
            at, answer = item
            index = self._indexes[at]
            if isinstance(answer, Exception):
                yield index, self._sender._failure(answer)
                continue
            try:
                client.response(self._request, answer)
            except Exception as exc:  # the SDK's error for a status >= 400
                yield index, self._sender._failure(exc)
                continue
            outcome: str | Exception
            try:
                # The status and headers the SDK's Response of the answer gives: building one
                # for each email, and the call for its status, cost about 7K instructions.
                outcome = self._sender._message_id(
                    self._messages[index], answer.status, answer.headers
                )
            except UnknownOutcome as exc:
                outcome = exc
            yield index, outcome

    def close(self) -> None:
        self._flight.close()


class _PooledClient(python_http_client.Client):  # type: ignore[misc]
    """The SDK's HTTP client, sending over the pool's keep-alive connections."""

    def __init__(self, pool: ConnectionPool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._pool = pool
        self._templates: dict[tuple[object, ...], urllib.request.Request] = {}

    def _build_client(self, name: str | None = None) -> _PooledClient:
        # Each attribute step (client.mail.send) builds a new client: keep the pool on it.
        return _PooledClient(
            self._pool,
            host=self.host,
            version=self._version,
            request_headers=self.request_headers,
            url_path=self._url_path + [name] if name else self._url_path,
            append_slash=self.append_slash,
            timeout=self.timeout,
        )

    def __getattr__(self, name: str) -> Any:
        if name not in self.methods:
            return super().__getattr__(name)

        # The SDK's verb call, minus the urllib opener it builds for every request and never
        # uses here (a quarter of a millisecond of CPU per email, a sixth of a worker's time).
        def http_request(request_body: Any = None) -> Response:
            return Response(self._make_request(None, self.prepare(name, request_body)))

        return http_request

    def prepare(self, name: str, request_body: Any) -> urllib.request.Request:
        """The request of the verb ``name`` with ``request_body``, as the SDK builds it, its
        JSON written by ``_json``."""
        self.request_headers.setdefault("Content-Type", "application/json")
        # Each request is a copy of one built for the verb and headers, with its own headers
        # and body: building a urllib Request per email (it parses the URL and each header's
        # name) cost about 30K instructions per email, and copy.copy 12K more than this.
        key = (name, tuple(self.request_headers.items()))
        template = self._templates.get(key)
        if template is None:
            if len(self._templates) >= _MAX_TEMPLATES:  # headers that keep changing
                self._templates.clear()
            template = self._templates[key] = urllib.request.Request(
                self._build_url(None), headers=self.request_headers, method=name.upper()
            )
        request = urllib.request.Request.__new__(urllib.request.Request)
        vars(request).update(vars(template))
        request.headers = dict(template.headers)
        request.unredirected_hdrs = dict(template.unredirected_hdrs)
        request.data = _json(request_body) if request_body is not None else None
        return request

    def _make_request(
        self, opener: Any, request: urllib.request.Request, timeout: float | None = None
    ) -> Any:
        return self.response(request, self._pool.send(request, timeout or self.timeout))

    def response(self, request: urllib.request.Request, answer: Any) -> Any:
        """``answer`` to ``request``, or the SDK's error for it (status 400 and up)."""
        if answer.status >= 400:
            # The SDK's own error types, from what urllib would have raised.
            raise http_errors.handle_error(
                urllib.error.HTTPError(
                    request.full_url,
                    answer.status,
                    answer.reason,
                    answer.headers,
                    io.BytesIO(answer.body),
                )
            )
        return answer


_MAX_TEMPLATES = 8


def _json(request_body: Any) -> bytes:
    """The JSON of a request body, written by msgspec: the document the SDK's ``json.dumps``
    writes, without its spaces after separators and in UTF-8 where json.dumps escapes to
    ASCII (the same once parsed): json.dumps escaping each email's HTML took about 7% of a
    dispatch worker's instructions per email."""
    return msgspec.json.encode(request_body)


def _proxied(host: str) -> bool:
    """Whether urllib would send requests to ``host`` through a proxy (environment)."""
    parts = urlsplit(host)
    return parts.scheme in urllib.request.getproxies() and not urllib.request.proxy_bypass(
        parts.hostname or ""
    )


def _classify(exc: Any) -> Exception:
    status = int(exc.status_code)
    detail = _error_message(exc.body)
    if status == 429:
        return TransientProviderError(
            f"SendGrid 429: {detail}", retry_after=_reset_wait(exc.headers)
        )
    if status >= 500:
        return TransientProviderError(f"SendGrid {status}: {detail}")
    return PermanentProviderError(f"SendGrid {status}: {detail}")


def _error_message(body: bytes | str | None) -> str:
    try:
        errors = json.loads(body or b"{}").get("errors") or []
        messages = [
            f"{e.get('field')}: {e['message']}" if e.get("field") else e["message"] for e in errors
        ]
        return "; ".join(messages) or "no error message"
    except (ValueError, AttributeError, KeyError, TypeError):
        text = body.decode(errors="replace") if isinstance(body, bytes) else str(body)
        return text[:300]


def _reset_wait(headers: Any) -> float | None:
    raw = headers.get("X-RateLimit-Reset") if headers is not None else None
    if raw is None:
        return None
    try:
        return max(0.0, float(raw) - time.time())
    except ValueError:
        return None
