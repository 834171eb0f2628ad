"""Referrals: when a referred person's first order is paid, both customers get points.

A customer's referral code (``referral_code_for``) travels with a link (the storefront puts
it in a cart attribute / order meta ``referral_code``) or is typed as a discount code. The
first paid order carrying it decides, once per referred customer (``referrals`` is unique on
them), and is refused when:

- the referrer is the same customer, or shares their email, phone or a shipping address
  (compared as digests, ``events.address_key``);
- it is not the customer's first paid order;
- the order is already refunded or cancelled.

Points go through the ledger as ``bonus:referral:<referral id>:referrer`` and ``:referred``.
A rewarded referral whose order is later refunded or cancelled takes both back (reversal
rows ``reversal:referral:<referral id>:<role>``, never below a zero balance).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from postpurchase.loyalty.config import LoyaltyConfig
from postpurchase.loyalty.ledger import _append, balance
from postpurchase.processing.batch import OrderRecord, Records, SourcedEvent
from postpurchase.rewards.bonuses import give_bonus
from postpurchase.store.membership import among, among_parameter, rows_among
from postpurchase.store.models import (
    Customer,
    CustomerAddressKey,
    LedgerKind,
    LoyaltyLedgerEntry,
    Order,
    Referral,
    ReferralCode,
    ReferralStatus,
)
from postpurchase.store.statements import insert_ignoring_conflicts
from postpurchase.stored_events import StoredOrder

_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


def referral_code_for(session: Session, customer_id: int) -> str:
    """The customer's referral code, made on first use."""
    found = session.scalar(select(ReferralCode.code).where(ReferralCode.customer_id == customer_id))
    if found:
        return found
    code = "REF-" + "".join(secrets.choice(_ALPHABET) for _ in range(8))
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    session.execute(
        dialect.insert(ReferralCode)
        .values(customer_id=customer_id, code=code)
        .on_conflict_do_nothing(index_elements=["customer_id"])
    )
    return (
        session.scalar(select(ReferralCode.code).where(ReferralCode.customer_id == customer_id))
        or code
    )


def _keep_addresses(session: Session, keys: set[tuple[int, str]]) -> None:
    """Store (customer id, address digest) pairs, in key order, in one statement."""
    if keys:
        rows = [{"customer_id": c, "address_key": k} for c, k in sorted(keys)]
        insert_ignoring_conflicts(session, CustomerAddressKey, rows)
        keys.clear()


def _codes(snapshot: StoredOrder) -> list[str]:
    """The codes an order came with that may be a referral's, the referral code first."""
    codes = [snapshot.referral_code] if snapshot.referral_code else []
    return codes + list(snapshot.discount_codes)


def _referrer(
    snapshot: StoredOrder, order: OrderRecord, referrers: dict[tuple[str, str], int]
) -> int | None:
    """The referrer of the first of the order's codes that is a referral code of its shop."""
    keys = ((code.upper(), order.shop) for code in _codes(snapshot))
    return next((referrers[key] for key in keys if key in referrers), None)


def _referred_already(session: Session, customer_ids: set[int | None]) -> set[int]:
    """Which of ``customer_ids`` have a referral."""
    if not customer_ids:
        return set()
    wanted = sorted(i for i in customer_ids if i is not None)
    return set(
        session.scalars(
            select(Referral.referred_customer_id).where(
                among(session, Referral.referred_customer_id, wanted)
            )
        )
    )


def _ended(order: OrderRecord) -> str | None:
    if order.cancelled_at is not None:
        return "the order was cancelled"
    if (order.financial_status or "").lower() == "refunded" or (
        order.total > 0 and order.refunded_amount >= order.total
    ):
        return "the order was refunded"
    return None


def _same_person(session: Session, referrer: Customer, referred: Customer) -> str | None:
    if referrer.id == referred.id:
        return "a customer cannot refer themselves"
    if referrer.email and referred.email and referrer.email.lower() == referred.email.lower():
        return "the email matches the referrer's"
    if referrer.phone and referred.phone and referrer.phone == referred.phone:
        return "the phone matches the referrer's"
    theirs = select(CustomerAddressKey.address_key).where(
        CustomerAddressKey.customer_id == referrer.id
    )
    shared = session.scalar(
        select(func.count()).where(
            CustomerAddressKey.customer_id == referred.id,
            CustomerAddressKey.address_key.in_(theirs),
        )
    )
    return "the shipping address matches the referrer's" if shared else None


def _referrers(session: Session, codes: set[str]) -> dict[tuple[str, str], int]:
    """The referrers of ``codes`` (upper-cased): ``(code, shop)`` to the referrer's customer
    id, the code upper-cased by the database as codes are compared. One query for the batch
    (``ix_referral_codes_upper_code``): most codes on orders are the shop's own discounts, and
    looking each up cost a round trip per event."""
    if not codes:
        return {}
    wanted = sorted(codes)
    rows = rows_among(
        session,
        _REFERRERS,
        lambda statement: statement.where(among(session, _UPPER_CODE, wanted)),
        _PG_REFERRERS,
        {"codes": wanted},
    )
    return {(code, shop): customer_id for code, shop, customer_id in rows}


_UPPER_CODE = func.upper(ReferralCode.code, type_=ReferralCode.code.type)
# The shop read per code found: as a join, customers (without statistics) were scanned.
_REFERRERS = select(
    _UPPER_CODE,
    select(Customer.shop).where(Customer.id == ReferralCode.customer_id).scalar_subquery(),
    ReferralCode.customer_id,
)
# Built once and run by psycopg (``driver_statements``) on PostgreSQL: it runs for every batch
# of orders with codes.
_PG_REFERRERS = _REFERRERS.where(among_parameter("postgresql", _UPPER_CODE, "codes"))


def _referrals_of(session: Session, order_ids: list[int]) -> dict[int, Referral]:
    """The referrals of ``order_ids``, by order id. A batch asks for all its orders with a
    code, and nearly none has a referral: the ids of those that have one are read first (on
    PostgreSQL by psycopg, a statement built once), the referrals themselves, rows that the
    decisions change, only when there are some. Read as rows for every batch, through
    SQLAlchemy's ORM and with the statement built again, they cost a drainer more than
    deciding the batch's referrals."""
    if not order_ids:
        return {}
    referred = [
        order_id
        for (order_id,) in rows_among(
            session,
            _REFERRED_ORDERS,
            lambda statement: statement.where(among(session, Referral.order_id, order_ids)),
            _PG_REFERRED_ORDERS,
            {"order_ids": order_ids},
        )
    ]
    if not referred:
        return {}
    rows = session.scalars(select(Referral).where(among(session, Referral.order_id, referred)))
    return {r.order_id: r for r in rows}


_REFERRED_ORDERS = select(Referral.order_id)
_PG_REFERRED_ORDERS = _REFERRED_ORDERS.where(
    among_parameter("postgresql", Referral.order_id, "order_ids")
)


def _decide(session: Session, order: OrderRecord, referrer_id: int) -> str | None:
    """The reason the referral of ``order`` by ``referrer_id`` is refused, or None."""
    assert order.customer_id is not None
    referrer = session.get_one(Customer, referrer_id)
    referred = session.get_one(Customer, order.customer_id)
    earlier = session.scalar(
        select(func.count()).where(
            Order.customer_id == referred.id, Order.paid_at.is_not(None), Order.id != order.id
        )
    )
    return (
        _same_person(session, referrer, referred)
        or ("not the customer's first order" if earlier else None)
        or _ended(order)
    )


def _reverse(session: Session, referral: Referral, why: str) -> None:
    for role, customer_id in (
        ("referrer", referral.referrer_customer_id),
        ("referred", referral.referred_customer_id),
    ):
        points = session.scalar(
            select(LoyaltyLedgerEntry.points).where(
                LoyaltyLedgerEntry.cause == f"bonus:referral:{referral.id}:{role}"
            )
        )
        take = min(int(points or 0), balance(session, customer_id))
        if take > 0:
            _append(
                session,
                customer_id=customer_id,
                order_id=referral.order_id,
                kind=LedgerKind.REVERSAL,
                points=-take,
                cause=f"reversal:referral:{referral.id}:{role}",
                note=f"referral reversed: {why}",
            )
    referral.status = ReferralStatus.REVERSED
    referral.reason = why


def apply_referrals(
    session: Session, records: Records, items: Sequence[SourcedEvent], config: LoyaltyConfig
) -> int:
    """Decide referrals for a processed batch (see the module doc). Returns points given."""
    earn = config.more_ways_to_earn.referral
    given = 0
    # One pass over the batch: the events that may act on a referral (their order ended, so
    # a rewarded referral is reversed, or they name a code, so one is decided unless it was),
    # each with how many of the batch's address digests come before it; for any other event
    # there is nothing to do, whether its order has a referral or not (a second pass over
    # every event cost about as much as the first).
    addresses: list[tuple[int, str]] = []
    acting: list[tuple[StoredOrder, OrderRecord, int]] = []
    for item in items:
        snapshot = item.order
        if snapshot is None:
            continue
        order = records.order_for(item)
        if order is None or order.customer_id is None:
            continue
        if snapshot.shipping_address_key:
            addresses.append((order.customer_id, snapshot.shipping_address_key))
        # codes first, read without building ``_codes``' list: cheaper than ``_ended``
        if snapshot.referral_code or snapshot.discount_codes or _ended(order):
            acting.append((snapshot, order, len(addresses)))
    # Their referrals in one query: looking them up order by order was a round trip per event.
    existing = _referrals_of(session, sorted({order.id for _, order, _ in acting}))
    referrers = _referrers(
        session,
        {
            code.upper()
            for snapshot, order, _ in acting
            if order.id not in existing and order.paid_at is not None
            for code in _codes(snapshot)
        },
    )
    # Each acting event's referrer, if its order is paid and had no referral when the batch
    # began (none at all when no code is a referral code: most batches); then which of
    # their customers have a referral already (decided before, on another order), in one
    # query: asked per decision, it was a round trip each. The referrals the batch decides
    # are of customers in ``referred`` below.
    referrer_ids = [
        _referrer(snapshot, order, referrers)
        if referrers and order.id not in existing and order.paid_at is not None
        else None
        for snapshot, order, _ in acting
    ]
    taken = _referred_already(
        session,
        {
            order.customer_id
            for (_, order, _), referrer_id in zip(acting, referrer_ids, strict=True)
            if referrer_id is not None
        },
    )
    kept = 0  # address digests written so far: those of the events before a decision
    referred: set[int] = set()  # customers known to have a referral: no query for them again
    for (_, order, before), referrer_id in zip(acting, referrer_ids, strict=True):
        assert order.customer_id is not None  # only such orders are acting
        referral = existing.get(order.id)
        if referral is not None:
            ended = _ended(order)
            if referral.status is ReferralStatus.REWARDED and ended:
                _reverse(session, referral, ended)
            continue
        if referrer_id is None or order.customer_id in referred:
            continue
        referred.add(order.customer_id)
        if order.customer_id in taken:
            continue  # decided before, on another order
        _keep_addresses(session, set(addresses[kept:before]))
        kept = before
        reason = _decide(session, order, referrer_id)
        referral = Referral(
            referred_customer_id=order.customer_id,
            referrer_customer_id=referrer_id,
            order_id=order.id,
            status=ReferralStatus.REFUSED if reason else ReferralStatus.REWARDED,
            reason=reason,
        )
        session.add(referral)
        session.flush()
        existing[order.id] = referral
        if reason:
            continue
        for role, customer_id, points in (
            ("referrer", referrer_id, earn.referrer),
            ("referred", order.customer_id, earn.referred),
        ):
            change = give_bonus(
                session,
                customer_id=customer_id,
                points=points,
                cause=f"bonus:referral:{referral.id}:{role}",
                note=f"referral ({role}), order {order.name or order.external_id}",
            )
            given += change.points if change else 0
    _keep_addresses(session, set(addresses[kept:]))
    return given
