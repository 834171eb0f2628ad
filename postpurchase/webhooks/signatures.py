"""Webhook signature checks. Every comparison is constant time (``hmac.compare_digest``).

- Shopify and WooCommerce: ``base64(HMAC-SHA256(raw body, secret))`` in a header.
- The generic route: ``X-Postpurchase-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
  "<t>.<raw body>">``; the timestamp is part of what is signed, so an old delivery cannot be
  replayed with a fresh one, and deliveries older than the tolerance are refused.

Each check raises ``BadSignature`` with a reason safe to show the sender (never a digest).
"""

from __future__ import annotations

import base64
import hmac


class BadSignature(Exception):
    """The signature is missing, malformed, wrong or too old; the message says which."""


def base64_digest(body: bytes, secret: str) -> str:
    """``base64(HMAC-SHA256(body, secret))``: how Shopify and WooCommerce sign a body."""
    # hmac.digest: OpenSSL's one-shot HMAC, half the CPU of an hmac.new object on a webhook
    return base64.b64encode(hmac.digest(secret.encode(), body, "sha256")).decode()


def verify_base64_hmac(body: bytes, header: str | None, secret: str, *, header_name: str) -> None:
    """Check a base64 HMAC-SHA256 header over the raw body; BadSignature if it does not match."""
    if not header:
        raise BadSignature(f"missing {header_name} header")
    expected = base64_digest(body, secret)
    if not hmac.compare_digest(expected.encode(), header.strip().encode()):
        raise BadSignature(f"{header_name} does not match the body")


def sign_generic(body: bytes, secret: str, timestamp: int) -> str:
    """The ``X-Postpurchase-Signature`` value for ``body`` sent at ``timestamp`` (unix seconds)."""
    mac = hmac.digest(secret.encode(), f"{timestamp}.".encode() + body, "sha256")
    return f"t={timestamp},v1={mac.hex()}"


def verify_generic(
    body: bytes, header: str | None, secret: str, *, now: float, tolerance: int
) -> None:
    """Check an ``X-Postpurchase-Signature`` header; BadSignature when wrong, old or malformed.

    Several ``v1`` values may be given (during a secret rotation); one match is enough.
    A timestamp more than ``tolerance`` seconds from ``now``, either way, is refused.
    """
    name = "X-Postpurchase-Signature"
    if not header:
        raise BadSignature(f"missing {name} header")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit() and len(value) <= 12:
            timestamp = int(value)
        elif key == "v1" and value:
            candidates.append(value.strip())
    if timestamp is None or not candidates:
        raise BadSignature(f"{name} must look like t=<unix seconds>,v1=<hex HMAC-SHA256>")
    if abs(now - timestamp) > tolerance:
        raise BadSignature(
            f"{name} timestamp {timestamp} is more than {tolerance} s from the server clock "
            "(replayed or delayed delivery)"
        )
    expected = sign_generic(body, secret, timestamp).partition(",v1=")[2].encode()
    if not any(hmac.compare_digest(expected, c.encode()) for c in candidates):
        raise BadSignature(f"{name} does not match the body")
