"""SMS through Twilio's Messages API, with the official ``twilio`` SDK.

Sends through a Messaging Service when one is configured (Twilio then picks the sender and
queues for its throughput), else from a fixed number, with ``StatusCallback`` pointing at our
status route. Outcomes:

- 201: sent; the id is the message ``sid``.
- HTTP 429 / code 20429, 5xx, connection refused: TransientProviderError (never processed).
- 21610 (the recipient replied STOP): RecipientOptedOut, so the STOP is recorded here too.
- other 4xx: PermanentProviderError with Twilio's code and message.
- no answer within the timeout after the request left: UnknownOutcome.
"""

from __future__ import annotations

from typing import Any

import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from urllib3.exceptions import NewConnectionError

from postpurchase.channels.senders import OutgoingSms
from postpurchase.exceptions import (
    PermanentProviderError,
    RecipientOptedOut,
    TransientProviderError,
    UnknownOutcome,
)

TWILIO_API = "https://api.twilio.com"
_OPTED_OUT = 21610
_TOO_MANY_REQUESTS = 20429


class _RebasedHttpClient(TwilioHttpClient):  # type: ignore[misc]
    """The SDK's HTTP client with the API host swapped (the SDK's custom-client hook)."""

    def __init__(self, base_url: str, *, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self.base_url = base_url.rstrip("/")

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if url.startswith(TWILIO_API):
            url = self.base_url + url[len(TWILIO_API) :]
        return super().request(method, url, *args, **kwargs)


class TwilioSmsSender:
    """A Twilio client built once and reused; ``api_base_url`` may point at a test double."""

    name = "twilio"

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        messaging_service_sid: str | None,
        from_number: str | None,
        status_callback: str | None,
        api_base_url: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        if not messaging_service_sid and not from_number:
            raise PermanentProviderError(
                "Twilio needs a Messaging Service SID or a From number "
                "(POSTPURCHASE_TWILIO_MESSAGING_SERVICE_SID or POSTPURCHASE_TWILIO_FROM_NUMBER)"
            )
        self._client = Client(
            account_sid,
            auth_token,
            http_client=_RebasedHttpClient(api_base_url or TWILIO_API, timeout=timeout),
        )
        self._sender: dict[str, str] = (
            {"messaging_service_sid": messaging_service_sid}
            if messaging_service_sid
            else {"from_": from_number or ""}
        )
        self._status_callback = status_callback
        self._timeout = timeout

    def send_sms(self, message: OutgoingSms) -> str:
        extra: dict[str, str] = dict(self._sender)
        if self._status_callback:
            extra["status_callback"] = self._status_callback
        try:
            created = self._client.messages.create(to=message.to, body=message.body, **extra)
        except TwilioRestException as exc:
            raise _classify(exc) from None
        except requests.exceptions.RequestException as exc:
            if _never_sent(exc):
                raise TransientProviderError(f"cannot reach Twilio: {exc}") from None
            raise UnknownOutcome(
                f"Twilio sent no answer ({type(exc).__name__}, timeout {self._timeout}s); "
                "the SMS may have been queued"
            ) from None
        return str(created.sid)


def _never_sent(exc: requests.exceptions.RequestException) -> bool:
    """True when the connection failed before the request went out (safe to retry)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError)


def _classify(exc: TwilioRestException) -> Exception:
    status, code = int(exc.status), exc.code
    detail = f"Twilio {status} (code {code}): {exc.msg}"
    if code == _OPTED_OUT:
        return RecipientOptedOut(detail)
    if status == 429 or code == _TOO_MANY_REQUESTS or status >= 500:
        return TransientProviderError(detail)
    return PermanentProviderError(detail)
