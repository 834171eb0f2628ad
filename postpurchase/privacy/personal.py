"""Which stored fields are personal data, and how they are dropped.

Inbox payloads are canonical events (``postpurchase.events``), except those of privacy
requests, which keep Shopify's body (the same ``customer.email``/``customer.phone`` paths).
What stays after the personal fields go is what dedupe and audit need: the event type and
time, the platform ids, amounts, statuses and product lines.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, cast, func, literal_column
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect

_PERSON = ("email", "phone", "first_name", "last_name", "birthday")
# JSON paths (as key lists) of personal fields in inbox payloads.
PAYLOAD_PATHS: tuple[tuple[str, ...], ...] = (
    *(("customer", key) for key in _PERSON),
    *(("order", "customer", key) for key in _PERSON),
    ("order", "tracking_url"),  # carries the parcel's tracking number
    ("order", "shipping_address_key"),
    ("order", "referral_code"),
    ("refund", "reason"),  # free text a shop's staff or the customer wrote
    ("orders_requested",),  # privacy request bodies: not personal, but not needed either
)
# Keys dropped from every element of a JSON list: (path of the list, key). WooCommerce lists
# an order's refunds, each with its free-text reason.
PAYLOAD_LIST_KEYS: tuple[tuple[tuple[str, ...], str], ...] = ((("order", "refunds"), "reason"),)
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

    A missing path is no error: the document comes back as it was there. On PostgreSQL the
    result is jsonb, which a json column takes as it is assigned.
    """
    paths = list(paths)
    if dialect.name == "postgresql":
        expression: ColumnElement[Any] = cast(column, JSONB)  # json (inbox payloads) or jsonb
        for path in paths:
            # #- takes a text[] path; keys are our own constants, never input
            literal = "'{" + ",".join(path) + "}'"
            expression = expression.op("#-")(literal_column(literal))
        return expression
    return func.json_remove(column, *("$." + ".".join(path) for path in paths))


def without_list_keys(
    column: Any, lists: Iterable[tuple[tuple[str, ...], str]], dialect: Dialect
) -> ColumnElement[Any]:
    """SQL for ``column`` (a JSON column of the table being updated) with ``key`` removed from
    every element of each list at ``path``; a document without the list comes back as it was.

    Paths and keys are our own constants, never input: they are written into the SQL. On
    PostgreSQL the result is jsonb (see ``without_paths``).
    """
    named = f"{column.table.name}.{column.name}"
    # PostgreSQL: the column read as jsonb (it may be json: inbox payloads) once per row, as
    # ``doc.d``, however often the expression below names it
    expression = "d" if dialect.name == "postgresql" else named
    for path, key in lists:
        if dialect.name == "postgresql":
            at = "'{" + ",".join(path) + "}'"
            expression = (
                f"CASE WHEN jsonb_typeof(({expression}) #> {at}) = 'array' "
                f"THEN jsonb_set({expression}, {at}, (SELECT coalesce(jsonb_agg(CASE WHEN "
                f"jsonb_typeof(e.value) = 'object' THEN e.value - '{key}' ELSE e.value END "
                f"ORDER BY e.n), '[]'::jsonb) FROM jsonb_array_elements(({expression}) #> {at}) "
                f"WITH ORDINALITY AS e(value, n))) ELSE {expression} END"
            )
        else:
            at = "'$." + ".".join(path) + "'"
            expression = (
                f"CASE WHEN json_type({expression}, {at}) = 'array' "
                f"THEN json_set({expression}, {at}, (SELECT json_group_array(json_remove("
                f"json_quote(e.value), '$.{key}')) FROM json_each({expression}, {at}) AS e)) "
                f"ELSE {expression} END"
            )
    if dialect.name == "postgresql":
        expression = f"(SELECT {expression} FROM (SELECT CAST({named} AS jsonb) AS d) AS doc)"
    return literal_column(expression, type_=column.type)


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
