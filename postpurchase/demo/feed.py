"""A realistic, reproducible feed of Shopify webhooks for a small shop's last 30 days.

The feed opens with a ``products/create`` for each of the shop's products (type, tags,
vendor, handle, image), as Shopify sends them when products are added: order line items carry
no product type, so that is how the engine learns what was bought. Orders are placed, paid,
fulfilled and (mostly) delivered; some are refunded, cancelled or returned; some customers
come back. Every delivery is what Shopify would POST: topic, ids and the REST-shaped JSON body
with money as decimal strings. The same seed and ``now`` always give the same feed, so a run
can be repeated and compared.

Bodies carry only fields Shopify sends, in its shapes (checked against the genuine payloads
in ``tests/fixtures/genuine/shopify``): line items have no product type (that comes from
product webhooks), customers have no tags (removed from webhooks in API 2025-01), every order
says ``test: false``, and amounts come with their ``*_set`` shop and presentment money.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from postpurchase.demo.shop_payloads import (
    PRODUCTS,
    Delivery,
    FeedBuilder,
    iso,
    money,
)


def build_feed(
    *, orders: int = 300, seed: int = 2026, now: datetime | None = None, id_offset: int = 0
) -> list[Delivery]:
    """Deliveries for ``orders`` orders placed in the 30 days before ``now``, oldest first.

    Feeds whose ``id_offset`` differs by more than their number of ids share no order,
    webhook or event id (customers are shared: they are the shop's regulars), so both can be
    sent to one shop.
    """
    now = now or datetime.now(UTC)
    builder = FeedBuilder(seed, now, id_offset)
    rng = builder.rng
    customers = [builder.customer(i) for i in range(max(1, orders * 2 // 3))]
    # The catalogue first: the shop added its products before the month's orders.
    listed = now - timedelta(days=31)
    deliveries: list[Delivery] = [
        builder.delivery(
            "products/create", listed + timedelta(seconds=n), builder.product(p, listed)
        )
        for n, p in enumerate(PRODUCTS)
    ]
    answered: set[int] = set()  # customers whose checkout consent was already sent
    for _ in range(orders):
        # repeat customers: a third of orders go to someone who already bought
        customer = rng.choice(
            customers[: max(1, len(customers) // 3)] if rng.random() < 0.33 else customers
        )
        placed = now - timedelta(minutes=rng.randint(10, 30 * 24 * 60))
        deliveries.extend(_journey(builder, customer, placed))
        if customer["id"] not in answered:
            answered.add(customer["id"])
            deliveries.extend(builder.consent_updates(customer, placed))
    return sorted(deliveries, key=lambda d: d.triggered_at)


def _journey(
    builder: FeedBuilder, customer: dict[str, Any], placed: datetime
) -> Iterator[Delivery]:
    rng, now = builder.rng, builder.now
    order = builder.order(customer, placed)
    yield builder.delivery("orders/create", placed, order)

    if rng.random() < 0.04:  # abandoned payment, cancelled by the shop
        cancelled = placed + timedelta(hours=rng.randint(2, 20))
        if cancelled < now:
            order.update(
                cancelled_at=iso(cancelled), cancel_reason="customer", updated_at=iso(cancelled)
            )
            order["financial_status"] = "voided"
            yield builder.delivery("orders/cancelled", cancelled, order)
        return

    paid = placed + timedelta(minutes=rng.randint(1, 20))
    if paid > now:
        return
    order.update(financial_status="paid", updated_at=iso(paid))
    yield builder.delivery("orders/paid", paid, order)

    fulfilled = paid + timedelta(hours=rng.randint(6, 48))
    if fulfilled > now:
        return
    fulfillment_id = builder.next_id()
    tracking = f"JJD0099{fulfillment_id % 10**8:08d}"
    order["fulfillments"] = [
        {
            "id": fulfillment_id,
            "order_id": order["id"],
            "status": "success",
            "created_at": iso(fulfilled),
            "tracking_company": "PostNord",
            "tracking_number": tracking,
            "tracking_url": f"https://tracking.postnord.com/?id={tracking}",
            "shipment_status": None,
        }
    ]
    order.update(fulfillment_status="fulfilled", updated_at=iso(fulfilled))
    yield builder.delivery("orders/fulfilled", fulfilled, order)

    if rng.random() < 0.85:  # the carrier reports delivery for most parcels
        delivered = fulfilled + timedelta(hours=rng.randint(20, 96))
        if delivered > now:
            return
        yield builder.delivery(
            "fulfillment_events/create",
            delivered,
            {
                "id": builder.next_id(),
                "fulfillment_id": fulfillment_id,
                "order_id": order["id"],
                "status": "delivered",
                "happened_at": iso(delivered),
                "created_at": iso(delivered),
                "message": "Delivered to the recipient",
                "country": customer["default_address"]["country_code"],
            },
        )
    else:
        delivered = fulfilled + timedelta(days=3)

    roll = rng.random()
    after = delivered + timedelta(days=rng.randint(1, 6))
    if after > now:
        return
    if roll < 0.07:  # refund of the first line
        yield builder.delivery("refunds/create", after, _refund(builder, order, after))
    elif roll < 0.12:  # return requested
        yield builder.delivery("returns/request", after, _return_request(builder, order))


def _refund(builder: FeedBuilder, order: dict[str, Any], after: datetime) -> dict[str, Any]:
    """A refund of the order's first line, as Shopify's refunds/create sends it."""
    line = order["line_items"][0]
    amount = Decimal(line["price"]) * line["quantity"]
    return {
        "id": builder.next_id(),
        "order_id": order["id"],
        "created_at": iso(after),
        "processed_at": iso(after),
        "note": "Damaged in transit",
        "restock": True,
        "refund_line_items": [
            {
                "id": builder.next_id(),
                "line_item_id": line["id"],
                "quantity": line["quantity"],
                "subtotal": money(amount),
                "line_item": line,
            }
        ],
        "transactions": [
            {
                "id": builder.next_id(),
                "order_id": order["id"],
                "kind": "refund",
                "status": "success",
                "amount": money(amount),
                "currency": "USD",
            }
        ],
    }


def _return_request(builder: FeedBuilder, order: dict[str, Any]) -> dict[str, Any]:
    """A return of one unit of the first line, as Shopify's returns/request sends it."""
    return_id = builder.next_id()
    return {
        "id": return_id,
        "admin_graphql_api_id": f"gid://shopify/Return/{return_id}",
        "status": "requested",
        "name": f"{order['name']}-R1",
        "order": {
            "id": order["id"],
            "admin_graphql_api_id": f"gid://shopify/Order/{order['id']}",
        },
        "return_line_items": [
            {
                "id": builder.next_id(),
                "quantity": 1,
                "return_reason": "SIZE_TOO_SMALL",
                "fulfillment_line_item": {"line_item": {"id": order["line_items"][0]["id"]}},
            }
        ],
    }


def write_feed(path: Path, deliveries: list[Delivery]) -> None:
    """Write one JSON object per line (the format ``postpurchase replay`` reads)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for delivery in deliveries:
            out.write(delivery.to_json() + "\n")
