"""The variables a template sees, built from store rows or from sample data.

Shape (every key is always present, so ``StrictUndefined`` only trips on template typos)::

    locale, time_zone
    shop:     name, url, support_email, postal_address, logo_url (may be None),
              colours: primary, accent, background (hex), currency (amounts without their own)
    customer: first_name (may be None), last_name, email, tier (may be None), points_balance
    order:    None, or name, currency, subtotal, total, total_tax, total_shipping,
              total_discounts, placed_at, delivered_at, delivery_confirmed, tracking_url,
              items: [title, quantity, unit_price, line_total, image_url, product_url, review_url]
                     (one per order line: each variant bought),
              products: [title, quantity, image_url, product_url, review_url]
                     (one per product, in the order of its first line: what a review is of);
                     each entry read-only, its review_url made as it is read (``OrderEntry``)
    loyalty:  points_earned (for this order), points_balance, page_url
    links:    unsubscribe, survey: [{score, url}] for 1..5, nps: [{score, url}] for 0..10
              (both signed as they are read, see ``scored_links``),
              review (the order's review page), loyalty, rewards (the customer's rewards
              page), shop; review and rewards are signed as they are read (``message_links``)

``delivery_confirmed`` is true when a carrier reported the delivery (``delivered_at`` is then
that report's time); false when delivery is only assumed from the fulfilment (WooCommerce
always, Shopify without carrier events), and templates must not claim it happened then.

Amounts are Decimal, times timezone-aware UTC (the ``localdate`` filter shows them in
``time_zone``). Images and product pages come from the product catalogue (order lines carry
none on Shopify or WooCommerce), else from the line itself, else the page is the shop's.
A review link is ``review_link_template`` filled with the product's ``{product_url}``,
``{product_id}`` and ``{handle}``, or ``{review_page}``: the order's hosted review page
(``links.review``, signed for the customer and touchpoint) at that product's section.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, NamedTuple, Protocol, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Select, Table, func, or_, select
from sqlalchemy.orm import Session

from postpurchase.catalogue.products import CatalogueEntry, Key
from postpurchase.messages.message_links import MessageLinks
from postpurchase.messages.order_view import ReviewPage, build_order_view, order_line
from postpurchase.messages.reward_view import (
    SAMPLE_CODE,
    SAMPLE_SUBJECTS,
    live_codes,
    reward_facts,
)

# the profile lives on its own; callers keep finding it here, beside the context it feeds
from postpurchase.messages.shop_profile import ShopProfile as ShopProfile
from postpurchase.messages.tokens import LinkClaim, sign
from postpurchase.store.membership import among, among_parameter, rows_among
from postpurchase.store.models import CustomerTier, LedgerKind, LoyaltyLedgerEntry


# A named tuple, not a frozen dataclass: one is made per message of a chunk.
class LoyaltyFigures(NamedTuple):
    points_earned: int
    points_balance: int
    tier: str | None
    # The customer's live reward codes, newest first (postpurchase.rewards).
    codes: tuple[dict[str, Any], ...] = ()


# What ``build_context`` reads of a touchpoint, its customer and order: ORM rows (previews) or
# the plain records dispatch reads its chunks into.
class TouchpointFacts(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def campaign_id(self) -> str: ...
    @property
    def subject_key(self) -> str: ...


class CustomerFacts(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def first_name(self) -> str | None: ...
    @property
    def last_name(self) -> str | None: ...
    @property
    def email(self) -> str | None: ...
    @property
    def locale(self) -> str | None: ...
    @property
    def time_zone(self) -> str | None: ...


class LineFacts(Protocol):
    @property
    def title(self) -> str: ...
    @property
    def quantity(self) -> int: ...
    @property
    def unit_price(self) -> Decimal: ...
    @property
    def product_id(self) -> str | None: ...
    @property
    def image_url(self) -> str | None: ...
    @property
    def product_url(self) -> str | None: ...


class OrderFacts(Protocol):
    @property
    def source(self) -> str: ...
    @property
    def shop(self) -> str: ...
    @property
    def external_id(self) -> str: ...
    @property
    def name(self) -> str | None: ...
    @property
    def currency(self) -> str: ...
    @property
    def subtotal(self) -> Decimal: ...
    @property
    def total(self) -> Decimal: ...
    @property
    def total_tax(self) -> Decimal: ...
    @property
    def total_shipping(self) -> Decimal: ...
    @property
    def total_discounts(self) -> Decimal: ...
    @property
    def placed_at(self) -> datetime | None: ...
    @property
    def delivered_at(self) -> datetime | None: ...
    @property
    def delivery_confirmed_at(self) -> datetime | None: ...
    @property
    def tracking_url(self) -> str | None: ...
    @property
    def items(self) -> Sequence[LineFacts]: ...


def loyalty_figures(
    session: Session, pairs: Collection[tuple[int, int | None]]
) -> dict[tuple[int, int | None], LoyaltyFigures]:
    """Loyalty figures for each (customer id, order id) pair, in three queries for all.

    Balance is the sum of the customer's ledger; points earned are the order's awards net of
    reversals; tier is the customer's current tier.
    """
    customer_ids = {c for c, _ in pairs}
    order_ids = {o for _, o in pairs if o is not None}
    balances = _by_key(session, _BALANCES, _PG_BALANCES, customer_ids)
    earned = _by_key(session, _EARNED, _PG_EARNED, order_ids)
    tiers = _by_key(session, _TIERS, _PG_TIERS, customer_ids)
    codes = live_codes(session, customer_ids)
    # One for every pair with no loyalty rows (most of them, in shops without a programme):
    # a chunk made a named tuple per message, each the same. Positional: its keywords cost
    # more than its values.
    nothing = LoyaltyFigures(0, 0, None, ())
    figures: dict[tuple[int, int | None], LoyaltyFigures] = {}
    for c, o in pairs:
        if c in balances or c in tiers or c in codes or (o is not None and o in earned):
            figures[(c, o)] = LoyaltyFigures(
                int(earned.get(o) or 0) if o is not None else 0,
                int(balances.get(c) or 0),
                tiers.get(c),
                tuple(codes.get(c, ())),
            )
        else:
            figures[(c, o)] = nothing
    return figures


def _by_key(
    session: Session, statement: Select[Any], on_postgresql: Select[Any], ids: Collection[int]
) -> dict[Any, Any]:
    """The rows of ``statement`` (two columns, the first one an id of ``ids``) as a dict."""
    key = statement.selected_columns[0]
    rows = rows_among(
        session,
        statement,
        lambda s: s.where(among(session, key, ids)),
        on_postgresql,
        {"ids": ids},
    )
    # not dict(rows): SQLAlchemy's result has a ``keys()``, so dict() takes it for a mapping
    return {row[0]: row[1] for row in rows}


# The reads of ``loyalty_figures``, built once; on PostgreSQL run by psycopg (``rows_among``):
# SQLAlchemy's building, compiling and running of them again for each dispatch chunk cost
# about 10K instructions per message, with no loyalty rows to read.
_LEDGER = cast(Table, LoyaltyLedgerEntry.__table__).c
_TIER = cast(Table, CustomerTier.__table__).c
_BALANCES = select(_LEDGER.customer_id, func.sum(_LEDGER.points)).group_by(_LEDGER.customer_id)
_EARNED = (
    select(_LEDGER.order_id, func.sum(_LEDGER.points))
    # Not ``in_``: its list is expanded as each statement runs, which psycopg alone cannot do.
    .where(
        or_(
            _LEDGER.kind == LedgerKind.AWARD,
            _LEDGER.kind == LedgerKind.REVERSAL,
        )
    )
    .group_by(_LEDGER.order_id)
)
_TIERS = select(_TIER.customer_id, _TIER.tier)
_PG_BALANCES = _BALANCES.where(among_parameter("postgresql", _LEDGER.customer_id, "ids"))
_PG_EARNED = _EARNED.where(among_parameter("postgresql", _LEDGER.order_id, "ids"))
_PG_TIERS = _TIERS.where(among_parameter("postgresql", _TIER.customer_id, "ids"))


def build_context(
    shop: ShopProfile,
    *,
    touchpoint: TouchpointFacts,
    customer: CustomerFacts,
    order: OrderFacts | None,
    loyalty: LoyaltyFigures,
    catalogue: Mapping[Key, CatalogueEntry] | None = None,
) -> dict[str, Any]:
    """The template context for ``touchpoint`` (see the module docstring for its shape);
    ``catalogue`` holds the entries of the order's products (``catalogue_entries``)."""
    order_view = None
    review_page = ReviewPage(shop, customer.id, touchpoint.id)
    if order is not None:
        catalogue = catalogue or {}
        order_view = build_order_view(
            shop,
            name=order.name or f"#{order.external_id}",
            currency=order.currency,
            subtotal=order.subtotal,
            total=order.total,
            total_tax=order.total_tax,
            total_shipping=order.total_shipping,
            total_discounts=order.total_discounts,
            placed_at=order.placed_at,
            delivered_at=order.delivery_confirmed_at or order.delivered_at,
            delivery_confirmed=order.delivery_confirmed_at is not None,
            tracking_url=order.tracking_url,
            review_page=review_page,
            items=[
                order_line(
                    i.title,
                    i.quantity,
                    i.unit_price,
                    i.product_id,
                    i.image_url,
                    i.product_url,
                    catalogue.get((order.source, order.shop, i.product_id or "")),
                )
                for i in order.items
            ],
        )
    return _assemble(
        shop,
        customer_id=customer.id,
        touchpoint_id=touchpoint.id,
        locale=customer.locale,
        time_zone=customer.time_zone,
        customer={
            "first_name": customer.first_name,
            "last_name": customer.last_name,
            "email": customer.email,
            "tier": loyalty.tier,
            "points_balance": loyalty.points_balance,
        },
        order=order_view,
        loyalty=loyalty,
        campaign_id=touchpoint.campaign_id,
        subject_key=touchpoint.subject_key,
        review_page=review_page,
    )


def sample_context(
    shop: ShopProfile,
    *,
    campaign_id: str = "sample",
    locale: str | None = None,
    first_name: str | None = "Amélie",
    order: dict[str, Any] | None = None,
    delivery_confirmed: bool = True,
    loyalty: LoyaltyFigures | None = None,
) -> dict[str, Any]:
    """A realistic context without a database: for previews and config validation.

    ``order`` is an order snapshot as the generic webhook sends it (``OrderSnapshot`` JSON,
    with ``lines`` and optionally ``customer``); without it a two-item sample order is used.
    """
    order = order or _SAMPLE_ORDER
    customer = order.get("customer") or {}
    placed_at = _parse_time(order.get("placed_at"))
    review_page = ReviewPage(shop, 0, 0)
    view = build_order_view(
        shop,
        name=order.get("name") or f"#{order['external_id']}",
        currency=order["currency"],
        **{
            key: Decimal(str(order.get(key, "0")))
            for key in ("subtotal", "total", "total_tax", "total_shipping", "total_discounts")
        },
        placed_at=placed_at,
        delivered_at=placed_at,
        delivery_confirmed=delivery_confirmed,
        tracking_url=order.get("tracking_url"),
        review_page=review_page,
        items=[
            order_line(
                line["title"],
                int(line["quantity"]),
                Decimal(str(line["unit_price"])),
                line.get("product_id"),
                line.get("image_url"),
                line.get("product_url"),
                None,
            )
            for line in order.get("lines", [])
        ],
    )
    if loyalty is None:
        loyalty = LoyaltyFigures(
            points_earned=129, points_balance=1_840, tier="Gold", codes=(SAMPLE_CODE,)
        )
    return _assemble(
        shop,
        customer_id=0,
        touchpoint_id=0,
        locale=locale or customer.get("locale"),
        time_zone=customer.get("time_zone") or "Europe/Paris",
        customer={
            "first_name": customer.get("first_name", first_name),
            "last_name": customer.get("last_name", "Durand"),
            "email": customer.get("email", "amelie.durand@example.org"),
            "tier": loyalty.tier,
            "points_balance": loyalty.points_balance,
        },
        order=view,
        loyalty=loyalty,
        campaign_id=campaign_id,
        subject_key=SAMPLE_SUBJECTS.get(campaign_id, ""),
        review_page=review_page,
    )


def _assemble(
    shop: ShopProfile,
    *,
    customer_id: int,
    touchpoint_id: int,
    locale: str | None,
    time_zone: str | None,
    customer: dict[str, Any],
    order: dict[str, Any] | None,
    loyalty: LoyaltyFigures,
    campaign_id: str,
    subject_key: str,
    review_page: ReviewPage,
) -> dict[str, Any]:
    base = shop.public_base_url
    unsubscribe = sign(shop.signing_key, LinkClaim("unsubscribe", customer_id, touchpoint_id))
    return {
        "locale": locale or shop.default_locale,
        "time_zone": _valid_zone(time_zone) or shop.default_time_zone,
        "shop": {
            "name": shop.name,
            "url": shop.url,
            "support_email": shop.support_email,
            "postal_address": shop.postal_address,
            "logo_url": shop.logo_url,
            "colours": dict(shop.colours),
            "currency": shop.currency,
        },
        "customer": customer,
        "order": order,
        "loyalty": {
            "points_earned": loyalty.points_earned,
            "points_balance": loyalty.points_balance,
            "page_url": shop.loyalty_page_url,
            **reward_facts(subject_key, loyalty.codes),
        },
        "links": MessageLinks(
            shop, customer_id, touchpoint_id, f"{base}/u/{unsubscribe}", review_page
        ),
        "campaign": {"id": campaign_id},
    }


def _valid_zone(name: str | None) -> str | None:
    if not name:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return name


def _parse_time(raw: str | None) -> datetime:
    if not raw:
        return datetime(2026, 11, 20, 14, 30, tzinfo=UTC)
    return datetime.fromisoformat(raw.replace("Z", "+00:00")).astimezone(UTC)


_SAMPLE_ORDER: dict[str, Any] = {
    "external_id": "5801",
    "name": "#5801",
    "currency": "EUR",
    "subtotal": "214.00",
    "total_shipping": "4.90",
    "total_discounts": "10.00",
    "total_tax": "35.82",
    "total": "208.90",
    "tracking_url": "https://track.example.net/parcel/JD014600006281234567",
    "placed_at": "2026-11-20T14:30:00Z",
    "lines": [
        {
            "external_id": "1",
            "title": "Aeropress Go Travel Coffee Press",
            "quantity": 1,
            "unit_price": "39.00",
            "image_url": "https://cdn.shop.example.com/products/aeropress-go.jpg",
            "product_url": "https://shop.example.com/products/aeropress-go",
        },
        {
            "external_id": "2",
            "title": "Hand Grinder, Stainless Burr, 25 g",
            "quantity": 2,
            "unit_price": "87.50",
            "image_url": "https://cdn.shop.example.com/products/hand-grinder.jpg",
            "product_url": "https://shop.example.com/products/hand-grinder",
        },
    ],
}
