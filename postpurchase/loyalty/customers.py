"""Finding the customer a person means, for commands that take CUSTOMER."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from postpurchase.exceptions import InvalidInput
from postpurchase.store.models import Customer


def find_customer(session: Session, reference: str) -> Customer:
    """The one customer ``reference`` names: an email, a platform id, or ``platform:id``.

    InvalidInput when none matches, or when several do (the message lists them as
    ``platform:id`` so the command can be repeated with one of those).
    """
    reference = reference.strip()
    conditions = [Customer.email == reference.lower(), Customer.external_id == reference]
    platform, _, external_id = reference.partition(":")
    if external_id:
        conditions.append((Customer.source == platform) & (Customer.external_id == external_id))
    matches = session.scalars(
        select(Customer).where(or_(*conditions)).order_by(Customer.id).limit(11)
    ).all()
    if not matches:
        raise InvalidInput(f"CUSTOMER: no customer has the email or platform id {reference!r}")
    if len(matches) > 1:
        shown = ", ".join(f"{c.source}:{c.external_id}" for c in matches[:10])
        more = " and more" if len(matches) > 10 else ""
        raise InvalidInput(
            f"CUSTOMER: {reference!r} matches {len(matches[:10])}{more} customers ({shown}{more});"
            " give one as platform:id"
        )
    return matches[0]
