"""Signed tokens for the links in messages (one-click unsubscribe, 1-5 survey scores).

A token carries what it acts on (purpose, customer, touchpoint, and the score for a survey
link) and an HMAC-SHA256 of exactly that, keyed with the shop's signing secret (several are
accepted while one is rotated: see ``signing_keys``). Changing any
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
from collections.abc import Sequence
from functools import lru_cache
from typing import Literal, NamedTuple, Protocol

from postpurchase.exceptions import ConfigError, InvalidInput
from postpurchase.settings import ENV_PREFIX, Settings

Purpose = Literal["unsubscribe", "survey", "rewards", "review", "nps"]
# "r": the customer's hosted rewards page (postpurchase.rewards.page);
# "v": the hosted review page of the touchpoint's order (bound to the order through it);
# "n": a 0-10 NPS answer, its score signed like a survey link's
_PURPOSE_CODES: dict[str, Purpose] = {
    "u": "unsubscribe",
    "s": "survey",
    "r": "rewards",
    "v": "review",
    "n": "nps",
}
_CODES = {purpose: code for code, purpose in _PURPOSE_CODES.items()}
_SIGNATURE_BYTES = 16  # 128 bits: unguessable, and keeps links short


# A named tuple, not a frozen dataclass: a message signs several links, and it is cheaper to make.
class LinkClaim(NamedTuple):
    """What a verified token allows: ``purpose`` for ``customer_id`` about ``touchpoint_id``."""

    purpose: Purpose
    customer_id: int
    touchpoint_id: int
    score: int | None = None


def signing_keys(settings: Settings) -> list[bytes]:
    """The keys for link tokens: the first signs, any of them verifies.

    ``POSTPURCHASE_SIGNING_SECRET`` first, then each of ``POSTPURCHASE_PREVIOUS_SIGNING_SECRETS``
    (so a secret can be rotated without breaking links already in inboxes). Without a secret,
    the embedded default (SQLite and the outbox, one machine) makes a key once in ``var_dir``;
    anything else (PostgreSQL, SendGrid, Twilio) runs several processes or containers that
    would each make their own, so it is a ConfigError naming the variable.
    """
    previous = settings.previous_signing_secrets
    older = [k.strip().encode() for k in previous.get_secret_value().split(",")] if previous else []
    if settings.signing_secret is not None:
        return [settings.signing_secret.get_secret_value().encode(), *(k for k in older if k)]
    shared = _why_shared(settings)
    if shared:
        raise ConfigError(
            f"{ENV_PREFIX}SIGNING_SECRET is not set: required with {shared}, so that every "
            "process signs and verifies unsubscribe and survey links with the same key (e.g. "
            "python -c 'import secrets; print(secrets.token_urlsafe(48))')"
        )
    return [_local_key(settings), *(k for k in older if k)]


def signing_key(settings: Settings) -> bytes:
    """The key that signs new links (see ``signing_keys``)."""
    return signing_keys(settings)[0]


def _why_shared(settings: Settings) -> str:
    """What in the settings means several processes share links; empty for the embedded default."""
    reasons = []
    if settings.sqlalchemy_url.get_backend_name() == "postgresql":
        reasons.append("PostgreSQL")
    if settings.email_channel != "outbox":
        reasons.append(f"{ENV_PREFIX}EMAIL_CHANNEL={settings.email_channel}")
    if settings.sms_channel != "outbox":
        reasons.append(f"{ENV_PREFIX}SMS_CHANNEL={settings.sms_channel}")
    return " and ".join(reasons)


def _local_key(settings: Settings) -> bytes:
    """The embedded default's key: made once and kept in ``var_dir``."""
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
    purpose, customer_id, touchpoint_id, score = claim
    payload = f"{_CODES[purpose]}.{customer_id!s}.{touchpoint_id!s}"
    if score is not None:
        payload += f".{score!s}"
    return _token(key, payload.encode())


def sign_score(
    key: bytes, purpose: Purpose, customer_id: int, touchpoint_id: int, score: int
) -> str:
    """``sign(key, LinkClaim(purpose, customer_id, touchpoint_id, score))``, without making
    the claim: a message signs its five survey links, each a claim made and taken apart."""
    payload = f"{_CODES[purpose]}.{customer_id!s}.{touchpoint_id!s}.{score!s}"
    return _token(key, payload.encode())


def verify(keys: bytes | Sequence[bytes], token: str, purpose: Purpose) -> LinkClaim:
    """The claim inside ``token``; InvalidInput if it is malformed, forged or for another use.

    ``keys``: one key, or several (current and previous secrets); any of them may match.
    """
    try:
        payload_part, mac_part = token.split(".")
        payload = _unb64(payload_part)
        mac = _unb64(mac_part)
    except (ValueError, binascii.Error):
        raise InvalidInput("link token is malformed") from None
    candidates = [keys] if isinstance(keys, bytes) else list(keys)
    # Every key is tried (no early exit), so timing does not tell which one matched.
    matches = [hmac.compare_digest(mac, _mac(key, payload)) for key in candidates]
    if not any(matches):
        raise InvalidInput("link token signature does not match")
    fields = payload.decode().split(".")
    if fields[0] not in _PURPOSE_CODES:  # e.g. a click token (sign_fields) offered here
        raise InvalidInput(f"link token is not for {purpose}")
    claim = LinkClaim(
        purpose=_PURPOSE_CODES[fields[0]],
        customer_id=int(fields[1]),
        touchpoint_id=int(fields[2]),
        score=int(fields[3]) if len(fields) > 3 else None,
    )
    if claim.purpose != purpose:
        raise InvalidInput(f"link token is for {claim.purpose}, not {purpose}")
    return claim


def sign_fields(key: bytes, code: str, fields: list[str]) -> str:
    """A token for another kind of link (``code`` not one of the purposes above).

    The last field may contain dots (a URL); the others must not.
    """
    if code in _PURPOSE_CODES:
        raise ValueError(f"code {code!r} belongs to {_PURPOSE_CODES[code]} links")
    return sign_joined(key, ".".join([code, *fields]))


def sign_joined(key: bytes, payload: str) -> str:
    """``sign_fields(key, code, fields)`` for ``payload``, the code and the fields already
    joined with dots: a message signs a link per destination, and joins the fields that
    are the same for all of them once. The code is the caller's to check (see above)."""
    return _token(key, payload.encode())


def verify_fields(key: bytes, token: str, code: str, count: int) -> list[str]:
    """The ``count`` fields of a ``sign_fields`` token; InvalidInput if forged or not ``code``."""
    try:
        payload_part, mac_part = token.split(".")
        payload = _unb64(payload_part)
        mac = _unb64(mac_part)
    except (ValueError, binascii.Error):
        raise InvalidInput("link token is malformed") from None
    if not hmac.compare_digest(mac, _mac(key, payload)):
        raise InvalidInput("link token signature does not match")
    try:
        parts = payload.decode().split(".", count)
    except UnicodeDecodeError:
        raise InvalidInput("link token is malformed") from None
    if parts[0] != code or len(parts) != count + 1:
        raise InvalidInput("link token is for another kind of link")
    return parts[1:]


def _token(key: bytes, payload: bytes) -> str:
    return f"{_b64(payload)}.{_b64(_mac(key, payload))}"


def _mac(key: bytes, payload: bytes) -> bytes:
    inner, outer = _keyed(key)
    mac = inner.copy()
    mac.update(payload)
    signed = outer.copy()
    signed.update(mac.digest())
    return signed.digest()[:_SIGNATURE_BYTES]


class _Keyed(Protocol):
    def copy(self) -> _Keyed: ...
    def update(self, data: bytes, /) -> None: ...
    def digest(self) -> bytes: ...


_BLOCK = 64  # SHA-256's block size: the key is padded (or first hashed) to it
_INNER_PAD = bytes(x ^ 0x36 for x in range(256))
_OUTER_PAD = bytes(x ^ 0x5C for x in range(256))


@lru_cache(maxsize=16)
def _keyed(key: bytes) -> tuple[_Keyed, _Keyed]:
    # HMAC-SHA256 (RFC 2104, as ``hmac`` computes it) from the two SHA-256 states that have
    # taken the key's inner and outer pads, copied for each token: a message signs several
    # links, and copying two plain hashes costs less than copying an HMAC object (OpenSSL's
    # copies three digest contexts) and setting the key up again for each costs more still.
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    return hashlib.sha256(key.translate(_INNER_PAD)), hashlib.sha256(key.translate(_OUTER_PAD))


# What ``base64.urlsafe_b64encode`` does, without its two calls on the way to binascii.
_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _b64(raw: bytes) -> str:
    return binascii.b2a_base64(raw, newline=False).translate(_URLSAFE).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
