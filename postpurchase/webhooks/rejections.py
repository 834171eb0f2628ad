"""Refused webhooks: the answer given, and the record kept for ops in ``rejected_webhooks``.

A rejection keeps the route, the status and reason, the headers that are safe to keep (never
signatures, cookies or authorisation) and the start of the body. The table is capped: once
``cap`` rows are held, new rejections are only logged until housekeeping prunes, so a flood of
bad requests cannot fill the disk. Concurrent writers may overshoot the cap by at most their
number.
"""

from __future__ import annotations

import logging

from sqlalchemy import insert, select
from sqlalchemy.exc import SQLAlchemyError

from postpurchase.store.database import SessionFactory, transaction
from postpurchase.store.models import RejectedWebhook

log = logging.getLogger(__name__)

BODY_EXCERPT_CHARS = 2048
_SAFE_HEADERS = frozenset(
    {
        "content-type",
        "content-length",
        "user-agent",
        "x-shopify-topic",
        "x-shopify-shop-domain",
        "x-shopify-api-version",
        "x-shopify-webhook-id",
        "x-shopify-event-id",
        "x-shopify-triggered-at",
        "x-wc-webhook-source",
        "x-wc-webhook-topic",
        "x-wc-webhook-resource",
        "x-wc-webhook-event",
        "x-wc-webhook-id",
        "x-wc-webhook-delivery-id",
        "x-twilio-email-event-webhook-timestamp",
        "i-twilio-idempotency-token",
    }
)
_HEADER_VALUE_CHARS = 256


class Rejection(Exception):
    """A request refused with ``status_code``; ``problems`` are (field path, problem) pairs."""

    def __init__(
        self, status_code: int, reason: str, problems: list[tuple[str, str]] | None = None
    ) -> None:
        super().__init__(reason)
        self.status_code = status_code
        self.reason = reason
        self.problems = problems or []

    def answer(self) -> dict[str, object]:
        body: dict[str, object] = {"status": "rejected", "reason": self.reason}
        if self.problems:
            body["errors"] = [{"field": path, "problem": msg} for path, msg in self.problems]
        return body

    def summary(self) -> str:
        shown = "; ".join(f"{path}: {msg}" for path, msg in self.problems[:10])
        return f"{self.reason}: {shown}" if shown else self.reason


def safe_headers(headers: list[tuple[str, str]]) -> dict[str, str]:
    """The headers worth keeping for ops, lower-cased and cut short; all others dropped."""
    return {
        name.lower(): value[:_HEADER_VALUE_CHARS]
        for name, value in headers
        if name.lower() in _SAFE_HEADERS
    }


def body_excerpt(body: bytes) -> str:
    # Undecodable bytes and NUL become U+FFFD: any database can store the excerpt.
    text = body[: BODY_EXCERPT_CHARS * 4].decode("utf-8", errors="replace")
    return text[:BODY_EXCERPT_CHARS].replace("\x00", "\ufffd")


def record_rejection(
    factory: SessionFactory,
    *,
    route: str,
    rejection: Rejection,
    headers: list[tuple[str, str]],
    body: bytes,
    cap: int,
) -> bool:
    """Keep a rejected request for ops unless ``cap`` rows are already held.

    Returns whether a row was written. Never raises: a database failure while recording a
    rejection is logged and must not change the answer the sender gets.
    """
    try:
        with transaction(factory) as session:
            full = session.execute(
                select(RejectedWebhook.id).order_by(RejectedWebhook.id).offset(cap - 1).limit(1)
            ).first()
            if full is not None:
                log.warning("rejected_webhooks holds %d rows: not recording %s", cap, route)
                return False
            session.execute(
                insert(RejectedWebhook).values(
                    route=route,
                    status_code=rejection.status_code,
                    reason=rejection.summary()[:4000],
                    headers=safe_headers(headers),
                    body_excerpt=body_excerpt(body),
                )
            )
        return True
    except SQLAlchemyError as exc:
        log.error("could not record a rejected webhook on %s: %s", route, type(exc).__name__)
        return False
