"""More ways to earn, each once per cause through the same ledger (kind ``bonus``):

    bonus:account_created:<customer id>           a customers/create (or customer.created)
    bonus:birthday:<customer id>:<year>           once a year, on or after the birthday
    bonus:review:<customer id>:<order>:<product>  a review.submitted (order or product "-")

Birthdays come with customer snapshots (generic events, Shopify's ``facts.birth_date``
metafield) and are kept in ``customer_birthdays``; the daily loyalty maintenance gives the
points for the birthdays of the last ``BIRTHDAY_GRACE_DAYS`` days, so a missed run catches
up, and the cause's year keeps it to once a year. 29 February counts on 28 February in
other years.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from datetime import date, timedelta

from sqlalchemy import select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from postpurchase.events import EventType
from postpurchase.loyalty.config import LoyaltyConfig
from postpurchase.loyalty.ledger import LedgerChange, _append
from postpurchase.processing.batch import Records, SourcedEvent
from postpurchase.store.models import CustomerBirthday, LedgerKind

BIRTHDAY_GRACE_DAYS = 7


def give_bonus(
    session: Session, *, customer_id: int, points: int, cause: str, note: str
) -> LedgerChange | None:
    """One bonus row for ``cause`` (None when points are 0 or the cause was given before)."""
    if points <= 0:
        return None
    return _append(
        session,
        customer_id=customer_id,
        order_id=None,
        kind=LedgerKind.BONUS,
        points=points,
        cause=cause,
        note=note,
    )


def _keep_birthday(session: Session, customer_id: int, birthday: date) -> None:
    values = {"customer_id": customer_id, "month": birthday.month, "day": birthday.day}
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(CustomerBirthday).values(**values)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["customer_id"],
            set_={"month": birthday.month, "day": birthday.day},
        )
    )


# The events that give points here (besides any customer snapshot that names a birthday).
_BONUS_EVENTS = frozenset((EventType.REVIEW_SUBMITTED, EventType.CUSTOMER_CREATED))


def apply_customer_bonuses(
    session: Session, records: Records, items: Sequence[SourcedEvent], config: LoyaltyConfig
) -> int:
    """Sign-up and review points, and birthdays kept, for a processed batch. Returns the
    points given."""
    given = 0
    earn = config.more_ways_to_earn
    for item in items:
        event = item.event
        kind, order_snapshot = item.kind, item.order
        snapshot = event.customer or (order_snapshot.customer if order_snapshot else None)
        birthday = (snapshot.birthday or None) if snapshot is not None else None  # UNSET too
        # Most events (an order's) give nothing here: their customer is not looked up.
        if birthday is None and kind not in _BONUS_EVENTS:
            continue
        customer = records.customer_for(item)
        if customer is None:
            continue
        if birthday is not None:
            _keep_birthday(session, customer.id, birthday)
        if kind is EventType.REVIEW_SUBMITTED:
            order = records.order_for(item)
            product = event.review.product_id if event.review else None
            change = give_bonus(
                session,
                customer_id=customer.id,
                points=earn.review,
                cause=f"bonus:review:{customer.id}:{order.id if order else '-'}:{product or '-'}",
                note="review published",
            )
            given += change.points if change else 0
        if kind is EventType.CUSTOMER_CREATED:
            change = give_bonus(
                session,
                customer_id=customer.id,
                points=earn.account_created,
                cause=f"bonus:account_created:{customer.id}",
                note="account created",
            )
            given += change.points if change else 0
    return given


def _days(today: date) -> dict[tuple[int, int], date]:
    """(month, day) of each of the last grace days, to the date it falls on this time."""
    found: dict[tuple[int, int], date] = {}
    for back in range(BIRTHDAY_GRACE_DAYS):
        day = today - timedelta(days=back)
        found[(day.month, day.day)] = day
        if (day.month, day.day) == (2, 28) and not calendar.isleap(day.year):
            found[(2, 29)] = day
    return found


def give_birthday_points(session: Session, *, config: LoyaltyConfig, today: date) -> int:
    """Birthday points for birthdays in the last grace days; how many customers got them."""
    points = config.more_ways_to_earn.birthday
    if points <= 0:
        return 0
    days = _days(today)
    rows = session.execute(
        select(CustomerBirthday.customer_id, CustomerBirthday.month, CustomerBirthday.day).where(
            tuple_(CustomerBirthday.month, CustomerBirthday.day).in_(list(days))
        )
    ).all()
    given = 0
    for customer_id, month, day in rows:
        on = days[(month, day)]
        change = give_bonus(
            session,
            customer_id=customer_id,
            points=points,
            cause=f"bonus:birthday:{customer_id}:{on.year}",
            note=f"happy birthday ({on.isoformat()})",
        )
        given += 1 if change else 0
    return given
