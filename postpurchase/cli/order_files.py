"""Reading the ORDER.json that marketing hands to ``campaigns timeline`` and ``preview``.

The order can be given as marketing has it at hand: a Shopify order (a webhook body, or the
Admin API's ``{"order": ...}``), a WooCommerce order, a generic webhook event, or the canonical
order itself.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from postpurchase.events import OrderSnapshot
from postpurchase.exceptions import InvalidInput
from postpurchase.platforms import shopify, woocommerce
from postpurchase.platforms.fields import InvalidPayload, problems_of


def read_order_file(path: Path) -> tuple[str, OrderSnapshot]:
    """The order in ``path`` and the shape it was read as (Shopify order, WooCommerce order,
    generic event or canonical order); every problem is an InvalidInput naming the file."""
    try:
        return order_of_document(json.loads(path.read_text(encoding="utf-8")))
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{path}:{exc.lineno}: not JSON: {exc.msg}") from None
    except InvalidPayload as exc:
        shown = "; ".join(f"{where}: {problem}" for where, problem in exc.problems[:5])
        raise InvalidInput(f"{path}: not an order: {shown}") from None


def order_of_document(data: Any) -> tuple[str, OrderSnapshot]:
    """The order in a JSON document, and the shape it was read as.

    Raises InvalidPayload naming each wrong field, read as the shape the document looks like.
    """
    if isinstance(data, dict) and isinstance(data.get("order"), dict):
        if "type" in data:  # a generic webhook event
            return "generic event", _canonical(data["order"])
        if len(data) == 1:  # the Shopify Admin API wraps an order this way
            data = data["order"]
    if isinstance(data, dict) and "line_items" in data:
        if "total_price" in data or "admin_graphql_api_id" in data:
            event = shopify.normalise("orders/create", data, received_at=datetime.now(UTC))
            shape = "Shopify order"
        else:
            event = woocommerce.normalise("order.created", data)
            shape = "WooCommerce order"
        assert event is not None and event.order is not None  # both topics carry the order
        return shape, event.order
    return "canonical order", _canonical(data)


def _canonical(data: Any) -> OrderSnapshot:
    try:
        return OrderSnapshot.model_validate(data)
    except ValidationError as exc:
        raise InvalidPayload(problems_of(exc)) from None
