"""A fake SendGrid v3 API: mail send answers as the real one does, and signed event batches.

- ``POST /v3/mail/send`` with ``Authorization: Bearer <api_key>`` (or one of ``more_keys``):
  202 with an ``X-Message-Id``
  (22 characters, base64url) and an empty body; 200 in sandbox mode; 401 on a wrong key; 400
  with SendGrid's error shape when required fields are missing or a custom_args value is not a
  string. Faults (429, 500, delays) come from ``fail_next``.
- ``signed_events(events)`` signs an Event Webhook batch with the fake's own ECDSA P-256 key,
  as SendGrid does; ``public_key`` is what the receiving app is configured with.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from typing import Any

import msgspec
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from postpurchase.channels.senders import OutgoingEmail

from .http_fake import FakeServer, Fault, Recorded, Reply

API_KEY = "SG.test-key.abcdefghijklmnopqrstuvwxyz"

# An email as dispatch hands it to a sender: what the tests of the SendGrid sender send.
EMAIL = OutgoingEmail(
    touchpoint_id=5,
    campaign_id="points_earned",
    to_email="zoe@example.org",
    to_name="Zoë",
    from_email="hello@shop.example.com",
    from_name="Northwind Goods",
    subject="You earned 120 points",
    html="<p>Hi</p>",
    text="Hi",
    unsubscribe_url="https://x/u/t",
)


def error_body(message: str, field: str | None = None) -> bytes:
    return json.dumps({"errors": [{"message": message, "field": field, "help": None}]}).encode()


def too_many_requests(reset_in: float = 0.0) -> Fault:
    return Fault(
        429,
        error_body("too many requests"),
        {
            "Content-Type": "application/json",
            "X-RateLimit-Limit": "600",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(int(time.time() + reset_in)),
        },
    )


def server_error() -> Fault:
    return Fault(500, error_body("internal error"), {"Content-Type": "application/json"})


class EventSigner:
    """Signs Event Webhook bodies as SendGrid does, with its own ECDSA P-256 key pair."""

    def __init__(self) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())

    @property
    def public_key(self) -> str:
        der = self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode()

    def headers_for(self, body: bytes, *, signed_at: float | None = None) -> dict[str, str]:
        timestamp = str(int(time.time() if signed_at is None else signed_at))
        signature = self._key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {
            "Content-Type": "application/json",
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
        }

    def signed_events(self, events: list[dict[str, Any]]) -> tuple[bytes, dict[str, str]]:
        """The raw body and headers of an Event Webhook POST carrying ``events``."""
        body = json.dumps(events).encode()
        return body, self.headers_for(body)


class FakeSendGrid(FakeServer):
    def __init__(
        self, *, api_key: str = API_KEY, record: bool = True, more_keys: tuple[str, ...] = ()
    ) -> None:
        super().__init__(record=record)
        self.api_key = api_key
        # other accounts' keys (one engine, shops with SendGrid accounts of their own)
        self.keys = {api_key, *more_keys}
        self.events = EventSigner()
        self.sent: list[dict[str, Any]] = []  # accepted mail send bodies, with their message id
        self.key_of: dict[str, str] = {}  # the API key each message id was sent with

    @property
    def public_key(self) -> str:
        return self.events.public_key

    def signed_events(self, events: list[dict[str, Any]]) -> tuple[bytes, dict[str, str]]:
        return self.events.signed_events(events)

    def handle(self, request: Recorded) -> Reply:
        if request.path != "/v3/mail/send" or request.method != "POST":
            return Reply(404, error_body("not found"))
        key = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if key not in self.keys:
            return Reply(
                401,
                error_body("The provided authorization grant is invalid, expired, or revoked"),
            )
        try:
            body = _checked.decode(request.body)
        except msgspec.DecodeError:
            return Reply(400, error_body("Bad Request", None))
        problem = _validate(body)
        if problem:
            return Reply(400, error_body(*problem), {"Content-Type": "application/json"})
        if ((body.mail_settings or {}).get("sandbox_mode") or {}).get("enable"):
            return Reply(200)
        message_id = base64.urlsafe_b64encode(secrets.token_bytes(16)).decode()[:22]
        if self.record:
            self.sent.append({"message_id": message_id, **json.loads(request.body)})
            self.key_of[message_id] = key
        return Reply(202, b"", {"X-Message-Id": message_id})


class _Checked(msgspec.Struct):
    """The fields of a mail send body that are checked. The others (the content, most of
    the body) are skipped unread: json.loads building every string of an email was over
    40% of the fake's CPU per message (0.068 against 0.038 ms)."""

    personalizations: Any = None
    from_: Any = msgspec.field(default=None, name="from")
    custom_args: Any = None
    attachments: Any = None
    mail_settings: Any = None


_checked = msgspec.json.Decoder(_Checked)


def _validate(body: _Checked) -> tuple[str, str] | None:
    personalizations = body.personalizations
    if not personalizations:
        return "The personalizations field is required and must have at least one.", (
            "personalizations"
        )
    if not all(p.get("to") for p in personalizations):
        return "The to array is required for all personalization objects.", (
            "personalizations.0.to"
        )
    if not (body.from_ or {}).get("email"):
        return "The from object must be provided for every email send.", "from"
    for key, value in (body.custom_args or {}).items():
        if not isinstance(value, str):
            return f"Custom args values must be strings: {key}", "custom_args"
    for index, attachment in enumerate(body.attachments or []):
        if not attachment.get("filename"):
            return "The attachment filename parameter is required.", f"attachments.{index}"
        try:
            base64.b64decode(attachment.get("content") or "", validate=True)
        except ValueError:
            return "The attachment content must be base64 encoded.", f"attachments.{index}"
        if not attachment.get("content"):
            return "The attachment content is required.", f"attachments.{index}"
    return None


if __name__ == "__main__":  # a separate process for benchmarks: python -m tests.fakes.fake_sendgrid
    import sys

    server = FakeSendGrid(record=False).start()
    sys.stdout.write(server.url + "\n")
    sys.stdout.flush()
    sys.stdin.read()  # serve until the parent closes our stdin
    server.stop()
