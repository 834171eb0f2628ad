"""Writing what providers and customers tell us: suppressions, consent, events, survey scores.

Every writer is idempotent: message events are unique per provider event id, a suppression is
one row per channel and address (re-activated rather than duplicated), a survey response is one
row per touchpoint (the last answer sent wins). Providers redeliver; a second delivery changes
nothing.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from postpurchase import consent
from postpurchase.store.models import (
    Channel,
    Customer,
    MessageEvent,
    Suppression,
    SurveyResponse,
    Touchpoint,
)
from postpurchase.store.statements import dialect_insert

# An erased customer's suppressions keep this instead of the address (postpurchase.privacy):
# it is no email or E.164 number, so it never matches one by accident.
ERASED_ADDRESS_PREFIX = "hmac:"


def suppression_key(channel: Channel, address: str) -> str:
    """The address as suppressions store it: an email lower-cased, a number as given."""
    return address.strip().lower() if channel is Channel.EMAIL else address.strip()


def address_digest(channel: Channel, address: str, key: bytes) -> str:
    """A keyed one-way digest of ``address``: what stays suppressed after an erasure, without
    the address (whoever has no key cannot check a guess against it)."""
    message = f"{channel.value}:{suppression_key(channel, address)}".encode()
    return ERASED_ADDRESS_PREFIX + hmac.new(key, message, hashlib.sha256).hexdigest()


def suppression_forms(channel: Channel, address: str, keys: Iterable[bytes]) -> list[str]:
    """Every stored form that suppresses ``address``: itself, and its digest under each key
    (the current signing key and the older ones still accepted)."""
    return [suppression_key(channel, address)] + [
        address_digest(channel, address, key) for key in keys
    ]


def suppress(
    session: Session, *, channel: Channel, address: str, reason: str, source: str, now: datetime
) -> None:
    """Stop all messages on ``channel`` to ``address`` (an email is matched lower-cased)."""
    address = suppression_key(channel, address)
    statement = dialect_insert(session, Suppression).values(
        channel=channel, address=address, reason=reason, source=source, created_at=now
    )
    # A lifted suppression comes back with the new reason; an active one keeps its first reason.
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["channel", "address"],
            set_={"reason": reason, "source": source, "lifted_at": None},
            where=Suppression.lifted_at.is_not(None),
        )
    )


def opt_out_sms(
    session: Session, *, phone: str, source: str, now: datetime, reference: str | None = None
) -> None:
    """The number said STOP: suppress it and deny SMS consent of every customer with it."""
    suppress(session, channel=Channel.SMS, address=phone, reason="stop", source=source, now=now)
    consent.stop_sms(session, phone=phone, reference=reference or source, now=now)


def opt_in_sms(
    session: Session,
    *,
    phone: str,
    now: datetime,
    reference: str | None = None,
    keys: Sequence[bytes] = (),
) -> None:
    """The number said START: undo its STOP, and only that (``consent.start_sms``), also a
    STOP kept as a digest when its customer was erased (``keys``: the signing keys)."""
    digests = [address_digest(Channel.SMS, phone, key) for key in keys]
    if digests:
        session.execute(
            update(Suppression)
            .where(
                Suppression.channel == Channel.SMS,
                Suppression.address.in_(digests),
                Suppression.reason == "stop",
                Suppression.lifted_at.is_(None),
            )
            .values(lifted_at=now)
        )
    consent.start_sms(session, phone=phone, reference=reference, now=now)


def unsubscribe_email(
    session: Session,
    *,
    customer_id: int,
    source: str,
    now: datetime,
    reference: str | None = None,
) -> bool:
    """One-click unsubscribe: no more email to the customer's address; False if unknown."""
    customer = session.get(Customer, customer_id)
    if customer is None:
        return False
    consent.unsubscribe_email(
        session, [customer], source=consent.UNSUBSCRIBE_PAGE, reference=reference, at=now
    )
    if customer.email:
        suppress(
            session,
            channel=Channel.EMAIL,
            address=customer.email,
            reason="unsubscribe",
            source=source,
            now=now,
        )
        consent.override_group_suppression(
            session, address=customer.email, reason="unsubscribe", source=source
        )
    return True


def record_events(session: Session, rows: Sequence[dict[str, Any]]) -> int:
    """Insert message events, skipping ones already stored; returns how many were new."""
    if not rows:
        return 0
    inserted = session.execute(
        dialect_insert(session, MessageEvent)
        .values(list(rows))
        .on_conflict_do_nothing(index_elements=["provider", "provider_event_id"])
        .returning(MessageEvent.id)
    )
    # Counted from RETURNING: rowcount of a multi-row insert is not reliable on every driver.
    return len(inserted.all())


def record_survey(
    session: Session,
    *,
    touchpoint_id: int,
    customer_id: int,
    score: int,
    now: datetime,
    comment: str | None = None,
) -> bool:
    """Store the score (and comment) for the touchpoint (a later answer replaces both);
    False if no such touchpoint belongs to the customer."""
    touchpoint = session.execute(
        select(Touchpoint).where(
            Touchpoint.id == touchpoint_id, Touchpoint.customer_id == customer_id
        )
    ).scalar_one_or_none()
    if touchpoint is None:
        return False
    session.execute(
        dialect_insert(session, SurveyResponse)
        .values(
            touchpoint_id=touchpoint_id,
            customer_id=customer_id,
            order_id=touchpoint.order_id,
            score=score,
            comment=comment,
            responded_at=now,
        )
        .on_conflict_do_update(
            index_elements=["touchpoint_id"],
            set_={"score": score, "comment": comment, "responded_at": now},
        )
    )
    return True
