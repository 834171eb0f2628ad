"""Which stored fields are personal data, and how they are dropped.

Inbox payloads are canonical events (``postpurchase.events``), except those of privacy
requests, which keep Shopify's body (the same ``customer.email``/``customer.phone`` paths).
What stays after the personal fields go is what dedupe and audit need: the event type and
time, the platform ids, amounts, statuses and product lines.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, func, literal_column
from sqlalchemy.engine import Dialect

_PERSON = ("email", "phone", "first_name", "last_name", "birthday")
# JSON paths (as key lists) of personal fields in inbox payloads.
PAYLOAD_PATHS: tuple[tuple[str, ...], ...] = (
    *(("customer", key) for key in _PERSON),
    *(("order", "customer", key) for key in _PERSON),
    ("order", "tracking_url"),  # carries the parcel's tracking number
    ("order", "shipping_address_key"),
    ("order", "referral_code"),
    ("orders_requested",),  # privacy request bodies: not personal, but not needed either
)
# Top-level keys of provider event details that name or locate a person: SendGrid's
# ``email``/``ip``/``useragent`` and bounce ``reason``/``response`` (which quote the address),
# Twilio's ``To``/``From``/``Body``.
DETAIL_KEYS: tuple[str, ...] = (
    "email",
    "ip",
    "useragent",
    "reason",
    "response",
    "To",
    "From",
    "Body",
    "to",
    "from",
    "phone",
)
ERASED = "[erased]"


def without_paths(
    column: Any, paths: Iterable[tuple[str, ...]], dialect: Dialect
) -> ColumnElement[Any]:
    """SQL for ``column`` (a JSON document) with every one of ``paths`` removed.

    A missing path is no error: the document comes back as it was there.
    """
    paths = list(paths)
    if dialect.name == "postgresql":
        expression: ColumnElement[Any] = column
        for path in paths:
            # #- takes a text[] path; keys are our own constants, never input
            literal = "'{" + ",".join(path) + "}'"
            expression = expression.op("#-")(literal_column(literal))
        return expression
    return func.json_remove(column, *("$." + ".".join(path) for path in paths))


def scrub(value: Any, needles: Iterable[str], *, keys: Iterable[str] = ()) -> Any:
    """``value`` (parsed JSON) without the ``keys`` (at any depth), and every string that
    contains one of ``needles`` (case-insensitive) replaced by "[erased]"."""
    lowered = [n.casefold() for n in needles if n]
    dropped = set(keys)

    def walk(item: Any) -> Any:
        if isinstance(item, dict):
            return {k: walk(v) for k, v in item.items() if k not in dropped}
        if isinstance(item, list):
            return [walk(v) for v in item]
        if isinstance(item, str) and any(n in item.casefold() for n in lowered):
            return ERASED
        return item

    return walk(value)
