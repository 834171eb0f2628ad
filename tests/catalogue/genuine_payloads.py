"""The genuine payloads the catalogue tests share (see ``genuine`` for where they come from)."""

from __future__ import annotations

from genuine import genuine

# Shopify's documented order #1001: three variants of "IPod Nano - 8gb" (product 632910392),
# lines without a product type, as Shopify's order webhooks send them (the object under
# "order"); and that product as its webhook or the Admin API describes it.
# Documented as "authorized"; sent here as orders/paid, which carries the paid status (the
# edge refuses an orders/paid body that is not paid), so that one field is set in code.
ORDER = genuine("shopify/admin_api_order_ipod_nano.json")["order"] | {"financial_status": "paid"}
IPOD = genuine("shopify/admin_api_product_ipod_nano.json")["product"]
# A condition the IPod's type meets (the shipped setup tips want electronics or appliances).
CULT = '"cult products" in order.product_types'

# What a carrier app posts when order #1001 is delivered, the day before the tests' clock
# (hand-written, in the shape of
# tests/fixtures/shopify/fulfillment_events_create.json).
DELIVERED = {
    "id": 944956401,
    "fulfillment_id": 255858046,
    "status": "delivered",
    "happened_at": "2026-11-19T15:42:00-05:00",
    "created_at": "2026-11-19T15:42:08-05:00",
    "order_id": 450789469,
}
