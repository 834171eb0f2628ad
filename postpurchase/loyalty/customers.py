"""Finding the customer a person means, for commands that take CUSTOMER (and ``--shop``)."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from postpurchase.exceptions import InvalidInput
from postpurchase.store.models import Customer


def _label(customer: Customer) -> str:
    label = f"{customer.source}:{customer.external_id}"
    return f"{label} of shop {customer.shop!r}" if customer.shop else label


def find_customer(session: Session, reference: str, shop: str | None = None) -> Customer:
    """The one customer ``reference`` names: an email, a platform id, or ``platform:id``,
    in ``shop`` when given ("" is the default shop), else in any shop.

    InvalidInput when none matches, or when several do: the message lists them (with their
    shop) so the command can be repeated with one of those, or with ``--shop``.
    """
    reference = reference.strip()
    conditions = [Customer.email == reference.lower(), Customer.external_id == reference]
    platform, _, external_id = reference.partition(":")
    if external_id:
        conditions.append((Customer.source == platform) & (Customer.external_id == external_id))
    query = select(Customer).where(or_(*conditions))
    if shop is not None:
        query = query.where(Customer.shop == shop)
    matches = session.scalars(query.order_by(Customer.id).limit(11)).all()
    where = f" in shop {shop!r}" if shop is not None else ""
    if not matches:
        raise InvalidInput(
            f"CUSTOMER: no customer{where} has the email or platform id {reference!r}"
        )
    if len(matches) > 1:
        shown = ", ".join(_label(c) for c in matches[:10])
        more = " and more" if len(matches) > 10 else ""
        shops = sorted({c.shop for c in matches})
        hint = "give one as platform:id"
        if len(shops) > 1:
            hint += " and name its shop with --shop (" + ", ".join(map(repr, shops)) + ")"
        raise InvalidInput(
            f"CUSTOMER: {reference!r} matches {len(matches[:10])}{more} customers{where}"
            f" ({shown}{more}); {hint}"
        )
    return matches[0]
