"""Shopify bodies checked against their topic, and test orders told apart.

Shopify signs the body, not the headers: the ``X-Shopify-Topic`` of a captured delivery can be
changed at will. So a body must be what its topic says (an order for ``orders/*``, a refund
for ``refunds/create``, ...), and a topic that states a fact (``orders/cancelled``,
``orders/paid``, ``orders/fulfilled``) must find that fact in the body.
"""

from __future__ import annotations

from typing import Any

from postpurchase.journey import PAID_STATUSES
from postpurchase.platforms.fields import InvalidPayload


class TopicMismatch(InvalidPayload):
    """The signed body is not what the X-Shopify-Topic header says it is (or it is an Admin
    API response wrapped in its resource's name)."""


# What each topic's body is, told by fields only that kind of body has.
_BODY_KINDS = {
    "orders/": "order",
    "refunds/create": "refund",
    "fulfillment_events/create": "fulfillment event",
    "returns/request": "return",
    "customers/update": "customer",
    "customers/create": "customer",
}
# The Admin API wraps a resource in its name: {"order": {...}}. A webhook body is the object.
_WRAPPERS = ("order", "refund", "fulfillment_event", "return", "customer")


def _kind_of(data: dict[str, Any]) -> str | None:
    if "line_items" in data and ("financial_status" in data or "total_price" in data):
        return "order"
    if "order_id" in data and ("transactions" in data or "refund_line_items" in data):
        return "refund"
    if "fulfillment_id" in data and "status" in data and "order_id" in data:
        return "fulfillment event"
    if isinstance(data.get("order"), dict) and "return_line_items" in data:
        return "return"
    return None


def _a(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def check_body(topic: str, data: Any) -> None:
    """Refuse a body that is wrapped, or that is not what ``topic`` says (TopicMismatch)."""
    if not isinstance(data, dict):
        return  # parse_as names the problem
    if "id" not in data and len(data) == 1:
        (name,) = data
        if name in _WRAPPERS and isinstance(data[name], dict):
            raise TopicMismatch(
                [
                    (
                        name,
                        f'the body is an Admin API response wrapped as {{"{name}": {{...}}}}; '
                        f"post the {name.replace('_', ' ')} object itself, as Shopify's "
                        "webhooks send it",
                    )
                ]
            )
    expected = next(
        (kind for prefix, kind in _BODY_KINDS.items() if topic.startswith(prefix)), None
    )
    if expected is None:
        return  # a topic whose body has no rival kind to be confused with
    found = _kind_of(data)
    if found is not None and found != expected:
        raise TopicMismatch([("body", f"is {_a(found)}, but {topic} needs {_a(expected)}")])
    if expected == "customer" and "line_items" in data:
        raise TopicMismatch([("body", f"is an order, but {topic} needs a customer")])
    check_order_facts(
        topic,
        cancelled_at=data.get("cancelled_at"),
        financial_status=data.get("financial_status"),
        fulfillment_status=data.get("fulfillment_status"),
    )


def check_order_facts(
    topic: str, *, cancelled_at: Any, financial_status: Any, fulfillment_status: Any
) -> None:
    """Refuse an order whose fields deny the fact its topic states (TopicMismatch)."""
    if topic == "orders/cancelled" and not cancelled_at:
        raise TopicMismatch([("cancelled_at", "an order in orders/cancelled must be cancelled")])
    if topic == "orders/paid" and financial_status not in PAID_STATUSES:
        raise TopicMismatch(
            [
                (
                    "financial_status",
                    f"{financial_status!r} is not paid, but the topic is orders/paid",
                )
            ]
        )
    wanted = {"orders/fulfilled": "fulfilled", "orders/partially_fulfilled": "partial"}
    if topic in wanted and fulfillment_status != wanted[topic]:
        raise TopicMismatch(
            [
                (
                    "fulfillment_status",
                    f"{fulfillment_status!r} in {topic}, where Shopify sends {wanted[topic]!r}",
                )
            ]
        )


def is_test_order(topic: str, data: Any) -> bool:
    """Whether the body is about a test order: an order with ``test: true`` (development
    stores, the Bogus gateway, "Send test notification"), or a refund paid back by test
    transactions."""
    if not isinstance(data, dict):
        return False
    if topic.startswith("orders/"):
        return data.get("test") is True
    if topic == "refunds/create":
        transactions = data.get("transactions")
        return (
            isinstance(transactions, list)
            and bool(transactions)
            and all(isinstance(t, dict) and t.get("test") is True for t in transactions)
        )
    return False
