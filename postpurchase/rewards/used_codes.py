"""Codes used on orders: an order that carries a redemption's code marks it ``used`` with that
order (codes compared without case: WooCommerce lower-cases them).

Every batch of orders with discount codes runs this, so it stays clear of the rewards
platforms' clients (aiohttp), which the rest of ``postpurchase.rewards.lifecycle`` needs:
importing them cost a drain task's process about 0.2 s of CPU.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.orm import Session

from postpurchase.store.membership import among, among_parameter, rows_among
from postpurchase.store.models import Customer, Order, Redemption, RedemptionStatus

_USABLE = (RedemptionStatus.ISSUED, RedemptionStatus.PENDING, RedemptionStatus.EXPIRED)


def mark_used(session: Session, uses: Iterable[tuple[int, Sequence[str], datetime]]) -> int:
    """Mark redemptions used by orders: ``(order id, codes on it, when)``. Returns how many
    changed; a code already used, not one of ours, or of a customer of another shop than the
    order's changes nothing. An earlier order of ``uses`` takes a code before a later one."""
    # An order's every event in a batch names the same codes: only its first use can change
    # anything (see ``done`` below), so the codes of the others are not even upper-cased.
    wanted = []
    seen: set[tuple[int, tuple[str, ...]]] = set()
    for order_id, codes, at in uses:
        given = (order_id, tuple(codes))
        if given not in seen:
            seen.add(given)
            wanted.append((order_id, _upper(codes), at))
    # Most codes on orders are the shop's own discounts, not redemptions: one lookup of them
    # all first, so the orders without one of ours cost no statement each.
    ours = _usable_codes(session, {code for _, codes, _ in wanted for code in codes})
    changed = 0
    # An order's every event in a batch names its codes: once its update has run, the same
    # one again finds its codes taken (by it) and changes nothing.
    done: set[tuple[int, tuple[str, ...]]] = set()
    for order_id, codes, at in wanted:
        if ours.isdisjoint(codes) or (order_id, tuple(codes)) in done:
            continue
        done.add((order_id, tuple(codes)))
        result = session.execute(
            update(Redemption)
            .where(
                func.upper(Redemption.code).in_(codes),
                Redemption.status.in_(_USABLE),
                Redemption.order_id.is_(None),
                # the code's customer is of the order's shop
                select(Customer.id)
                .join(Order, Order.shop == Customer.shop)
                .where(Customer.id == Redemption.customer_id, Order.id == order_id)
                .exists(),
            )
            .values(status=RedemptionStatus.USED, order_id=order_id, used_at=at)
            .execution_options(synchronize_session=False)
        )
        changed += cast(CursorResult[Any], result).rowcount or 0
    return changed


def _upper(codes: Sequence[str]) -> list[str]:
    """An order's codes as redemptions are matched on: stripped, upper-cased, once each."""
    return sorted({c.strip().upper() for c in codes if c and c.strip()})


def _usable_codes(session: Session, codes: set[str]) -> set[str]:
    """Which of ``codes`` (upper-cased) are codes of redemptions an order may still use,
    upper-cased by the database as ``mark_used`` compares them (``ix_redemptions_upper_code``)."""
    if not codes:
        return set()
    wanted = sorted(codes)
    found = rows_among(
        session,
        _CODES,
        lambda statement: statement.where(among(session, _UPPER_CODE, wanted)),
        _PG_CODES,
        {"codes": wanted},
    )
    # PostgreSQL's rows (``rows_among``) give the status as its string: a StrEnum member
    # equals it
    return {code for code, status, order_id in found if status in _USABLE and order_id is None}


_UPPER_CODE = func.upper(Redemption.code, type_=Redemption.code.type)
# Only the codes in the condition, the rest checked by ``_usable_codes``: on a table without
# statistics a status condition took the status index, through every issued redemption.
_CODES = select(_UPPER_CODE, Redemption.status, Redemption.order_id)
# Built once and run by psycopg (``driver_statements``) on PostgreSQL: it runs for every batch
# of orders with codes.
_PG_CODES = _CODES.where(among_parameter("postgresql", _UPPER_CODE, "codes"))
