"""Reading the ORDER.json that marketing hands to ``campaigns timeline`` and ``preview``."""

from __future__ import annotations

import json
from pathlib import Path

from postpurchase.events import OrderSnapshot
from postpurchase.exceptions import InvalidInput


def read_order_file(path: Path) -> tuple[str, OrderSnapshot]:
    """The order in ``path`` and the shape it was read as (Shopify order, WooCommerce order,
    generic event or canonical order); every problem is an InvalidInput naming the file."""
    from postpurchase.campaigns.timeline import order_of_document
    from postpurchase.platforms.fields import InvalidPayload

    try:
        return order_of_document(json.loads(path.read_text(encoding="utf-8")))
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{path}:{exc.lineno}: not JSON: {exc.msg}") from None
    except InvalidPayload as exc:
        shown = "; ".join(f"{where}: {problem}" for where, problem in exc.problems[:5])
        raise InvalidInput(f"{path}: not an order: {shown}") from None
