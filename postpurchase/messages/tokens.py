"""Signed tokens for the links in messages (one-click unsubscribe, 1-5 survey scores).

A token carries what it acts on (purpose, customer, touchpoint, and the score for a survey
link) and an HMAC-SHA256 of exactly that, keyed with the shop's signing secret. Changing any
part (another customer, another score) breaks the signature, so a token cannot be forged or
replayed against another customer. Tokens do not expire: an unsubscribe link must keep working.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from typing import Literal

from postpurchase.exceptions import InvalidInput
from postpurchase.settings import Settings

Purpose = Literal["unsubscribe", "survey", "rewards"]
# "rewards": the customer's hosted rewards page (postpurchase.rewards.page).
_PURPOSE_CODES: dict[str, Purpose] = {"u": "unsubscribe", "s": "survey", "r": "rewards"}
_SIGNATURE_BYTES = 16  # 128 bits: unguessable, and keeps links short


@dataclass(frozen=True)
class LinkClaim:
    """What a verified token allows: ``purpose`` for ``customer_id`` about ``touchpoint_id``."""

    purpose: Purpose
    customer_id: int
    touchpoint_id: int
    score: int | None = None


def signing_key(settings: Settings) -> bytes:
    """The secret for link tokens: the setting, else a key made once and kept in ``var_dir``.

    The file fallback lets the embedded default work out of the box; deployments with several
    hosts set ``POSTPURCHASE_SIGNING_SECRET`` so every process signs and verifies alike.
    """
    if settings.signing_secret is not None:
        return settings.signing_secret.get_secret_value().encode()
    path = settings.var_dir / "signing-secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL: two processes racing here keep the first key, never two different ones.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(48))
    return path.read_text().strip().encode()


def sign(key: bytes, claim: LinkClaim) -> str:
    """The URL-safe token for ``claim``."""
    code = next(c for c, p in _PURPOSE_CODES.items() if p == claim.purpose)
    parts = [code, str(claim.customer_id), str(claim.touchpoint_id)]
    if claim.score is not None:
        parts.append(str(claim.score))
    payload = ".".join(parts).encode()
    return f"{_b64(payload)}.{_b64(_mac(key, payload))}"


def verify(key: bytes, token: str, purpose: Purpose) -> LinkClaim:
    """The claim inside ``token``; InvalidInput if it is malformed, forged or for another use."""
    try:
        payload_part, mac_part = token.split(".")
        payload = _unb64(payload_part)
        mac = _unb64(mac_part)
    except (ValueError, binascii.Error):
        raise InvalidInput("link token is malformed") from None
    if not hmac.compare_digest(mac, _mac(key, payload)):
        raise InvalidInput("link token signature does not match")
    fields = payload.decode().split(".")
    claim = LinkClaim(
        purpose=_PURPOSE_CODES[fields[0]],
        customer_id=int(fields[1]),
        touchpoint_id=int(fields[2]),
        score=int(fields[3]) if len(fields) > 3 else None,
    )
    if claim.purpose != purpose:
        raise InvalidInput(f"link token is for {claim.purpose}, not {purpose}")
    return claim


def _mac(key: bytes, payload: bytes) -> bytes:
    return hmac.new(key, payload, hashlib.sha256).digest()[:_SIGNATURE_BYTES]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
