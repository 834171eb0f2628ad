"""Consent: what each customer said, per purpose, who told us, and when; and who may be messaged.

Three purposes (``ConsentPurpose``): email marketing, SMS marketing, and SMS about the
customer's own orders. Each is ``granted``, ``denied`` or ``unknown`` (never said either way:
every WooCommerce customer, and Shopify customers since API 2025-01 until a consent topic
arrives), with the source and time of the latest statement on the customer's row and every
change in ``consent_changes`` (append-only: the trail a shop can show a regulator).

Consent only moves the way the customer (or the shop, on their word) moved it:

- a statement older than the one stored is stale and ignored (a platform's
  ``consent_updated_at``, else its record's ``updated_at``, else when the event happened);
- a "no" is only turned into a yes by an answer that says when it was given (a platform's
  ``consent_updated_at``, a START, a resubscribe), and later than the "no": a record re-sent
  with an old "subscribed" and no consent time is not the customer saying yes again;
- START restores only what that number's STOP took away; a SendGrid group resubscribe only
  what that group's unsubscribe took away (see ``start_sms`` and ``resubscribe_group``).

Whether "unknown" may be messaged is a shop setting for email marketing (``opt_out``: yes, as
CAN-SPAM and the EU/UK soft opt-in for existing customers allow; ``opt_in``: only "granted"),
and always "no" for SMS marketing (TCPA needs prior express written consent).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Literal, NamedTuple

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from postpurchase.store.models import (
    Channel,
    ConsentChange,
    ConsentPurpose,
    ConsentState,
    Customer,
    Suppression,
)
from postpurchase.store.statements import insert_ignoring_conflicts

EmailMarketingRule = Literal["opt_out", "opt_in"]
Kind = Literal["transactional", "marketing"]

GRANTED, DENIED, UNKNOWN = ConsentState.GRANTED, ConsentState.DENIED, ConsentState.UNKNOWN

# Where a statement came from (``source`` on the row and in the trail).
PLATFORM_PAYLOAD = "platform_payload"  # consent inside an order or customer webhook
CONSENT_TOPIC = "consent_topic"  # Shopify's consent-update topics
SHOP = "shop"  # the shop's own system (generic events), on the customer's word
TWILIO_STOP = "twilio_stop"
TWILIO_START = "twilio_start"
SENDGRID_UNSUBSCRIBE = "sendgrid_unsubscribe"
SENDGRID_RESUBSCRIBE = "sendgrid_resubscribe"
UNSUBSCRIBE_PAGE = "unsubscribe_page"
MIGRATION = "migration"

# The suppression a SendGrid group unsubscribe makes: its source names the group, so that
# only that group's resubscribe lifts it.
GROUP_UNSUBSCRIBE = "group_unsubscribe"


def group_source(group_id: Any) -> str:
    return f"sendgrid:asm_group:{group_id}"


class Statement(NamedTuple):
    """One thing said about one purpose. ``dated``: ``at`` is the consent's own time (a
    platform's ``consent_updated_at``, a STOP's arrival), not a record's ``updated_at``.

    A named tuple, not a frozen dataclass: a drain makes one for every consent answer of
    every event, and a frozen dataclass took several times as long to make (each field set
    through ``object.__setattr__``)."""

    purpose: ConsentPurpose
    state: ConsentState
    at: datetime
    source: str
    reference: str | None = None
    dated: bool = True


# Each purpose's columns on a customer (state, source, time), named once: an enum's ``.value``
# is a property, and formatting the names again for every statement a drain applies cost
# more than applying it.
_COLUMNS = {
    purpose: tuple(f"{purpose.value}_consent_{column}" for column in ("state", "source", "at"))
    for purpose in ConsentPurpose
}


def state_of(customer: Any, purpose: ConsentPurpose) -> ConsentState:
    return ConsentState(getattr(customer, _COLUMNS[purpose][0]))


def apply(customer: Any, statement: Statement, changes: list[dict[str, Any]]) -> bool:
    """Move ``customer``'s consent (an ORM row or a plain record) as ``statement`` says, if it
    may; append the change to ``changes`` (rows for ``consent_changes``). True if it moved.

    A statement of the state already held moves nothing but becomes the latest word on it
    (source and time), so that a later START or resubscribe sees who said "no" last.
    """
    state_column, source_column, at_column = _COLUMNS[statement.purpose]
    stored_at: datetime | None = getattr(customer, at_column)
    if stored_at is not None and statement.at < stored_at:
        return False  # stale: the customer said something newer
    current = getattr(customer, state_column)
    if type(current) is not ConsentState:
        # as ``state_of`` reads it; a member, as a record or a loaded row holds it, is kept
        # without the enum's lookup (two Python calls, for every statement a drain applies)
        current = ConsentState(current)
    if current is DENIED and statement.state is GRANTED and not statement.dated:
        return False  # a yes after a no must say when it was given
    setattr(customer, source_column, statement.source)
    setattr(customer, at_column, statement.at)
    if current is statement.state:
        return False
    setattr(customer, state_column, statement.state)
    changes.append(
        {
            "customer_id": customer.id,
            "purpose": statement.purpose,
            "from_state": current,
            "to_state": statement.state,
            "source": statement.source,
            "reference": statement.reference[:255] if statement.reference else None,
            "occurred_at": statement.at,
        }
    )
    return True


def record_changes(session: Session, changes: Sequence[dict[str, Any]]) -> None:
    # In one statement on PostgreSQL (``insert_ignoring_conflicts``): SQLAlchemy's bulk insert
    # sent one per change, each built and sent by the drainer (with the address digests'
    # insert, also one per row, some 4% of a drainer's instructions on the genuine backlog).
    insert_ignoring_conflicts(session, ConsentChange, changes)


def apply_all(
    session: Session, customers: Iterable[Customer], statements: Sequence[Statement]
) -> int:
    """Apply ``statements`` to every one of ``customers`` (ORM rows) and record the trail;
    returns how many changes were made."""
    changes: list[dict[str, Any]] = []
    for customer in customers:
        for statement in statements:
            apply(customer, statement, changes)
    record_changes(session, changes)
    return len(changes)


# --- who may be messaged ------------------------------------------------------------------


def consent_reason(
    customer: Any, channel: Channel, kind: Kind, *, email_marketing: EmailMarketingRule
) -> str | None:
    """Why ``customer`` may not get a ``kind`` message on ``channel``, or None.

    - email marketing: never when denied; "unknown" only under ``opt_out``;
    - SMS marketing: only when granted;
    - SMS about an order: when granted, or when SMS marketing is granted and order texts were
      not refused (a customer who agreed to offers by text agreed to texts from the shop);
    - transactional email needs no consent.
    """
    if channel is Channel.SMS:
        sms, marketing = (
            state_of(customer, ConsentPurpose.SMS),
            state_of(customer, ConsentPurpose.SMS_MARKETING),
        )
        if kind == "marketing":
            return (
                None if marketing is GRANTED and sms is not DENIED else "no SMS marketing consent"
            )
        if sms is GRANTED or (marketing is GRANTED and sms is not DENIED):
            return None
        return "no SMS consent"
    if kind == "marketing":
        email = state_of(customer, ConsentPurpose.EMAIL_MARKETING)
        if email is DENIED:
            return "email marketing consent denied"
        if email is UNKNOWN and email_marketing == "opt_in":
            return "no email marketing consent (opt-in required)"
    return None


# --- what providers and links tell us -------------------------------------------------------


def _customers_by(session: Session, column: Any, value: str) -> list[Customer]:
    query = select(Customer).where(column == value).order_by(Customer.id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()  # a concurrent batch merges consent into the same rows
    return list(session.scalars(query))


def _last_change(session: Session, customer_id: int, purpose: ConsentPurpose) -> Any:
    return session.execute(
        select(ConsentChange.source, ConsentChange.from_state, ConsentChange.reference)
        .where(ConsentChange.customer_id == customer_id, ConsentChange.purpose == purpose)
        .order_by(ConsentChange.id.desc())
        .limit(1)
    ).first()


def stop_sms(session: Session, *, phone: str, reference: str | None, now: datetime) -> int:
    """The number said STOP: deny both SMS purposes of every customer with it."""
    return apply_all(
        session,
        _customers_by(session, Customer.phone, phone.strip()),
        [
            Statement(purpose, DENIED, now, TWILIO_STOP, reference)
            for purpose in (ConsentPurpose.SMS, ConsentPurpose.SMS_MARKETING)
        ],
    )


def start_sms(session: Session, *, phone: str, reference: str | None, now: datetime) -> int:
    """The number said START (YES, UNSTOP): undo what its STOP did, and nothing more.

    The STOP suppression is lifted. Order texts come back for a customer whose "no" is still
    the STOP's (nobody said otherwise since): to "granted" if texts were allowed before it
    (granted, or covered by a granted SMS marketing consent), else to what it was. A customer
    the shop had recorded as "denied" stays denied. Marketing SMS consent is not restored:
    START re-opens the line, it does not ask for offers.
    """
    phone = phone.strip()
    session.execute(
        update(Suppression)
        .where(
            Suppression.channel == Channel.SMS,
            Suppression.address == phone,
            Suppression.reason == "stop",
            Suppression.lifted_at.is_(None),
        )
        .values(lifted_at=now)
    )
    changes: list[dict[str, Any]] = []
    for customer in _customers_by(session, Customer.phone, phone):
        if customer.sms_consent_state is not DENIED or customer.sms_consent_source != TWILIO_STOP:
            continue
        stopped = _last_change(session, customer.id, ConsentPurpose.SMS)
        if stopped is None or stopped.source != TWILIO_STOP:
            continue  # the STOP changed nothing: the "no" was there before it
        before = ConsentState(stopped.from_state)
        marketing = _last_change(session, customer.id, ConsentPurpose.SMS_MARKETING)
        if (
            marketing is not None
            and marketing.source == TWILIO_STOP
            and marketing.from_state == GRANTED
        ):
            before = GRANTED
        apply(
            customer, Statement(ConsentPurpose.SMS, before, now, TWILIO_START, reference), changes
        )
    record_changes(session, changes)
    return len(changes)


def unsubscribe_email(
    session: Session,
    customers: Iterable[Customer],
    *,
    source: str,
    reference: str | None,
    at: datetime,
) -> int:
    """The customer said no to marketing email (a link, SendGrid's unsubscribe)."""
    return apply_all(
        session,
        customers,
        [Statement(ConsentPurpose.EMAIL_MARKETING, DENIED, at, source, reference)],
    )


def customers_with_email(session: Session, email: str) -> list[Customer]:
    # Emails are stored lower-cased by the normalisers; SendGrid reports them as sent.
    return _customers_by(session, Customer.email, email.strip().lower())


def override_group_suppression(session: Session, *, address: str, reason: str, source: str) -> None:
    """A stronger opt-out (one-click unsubscribe, spam report, bounce) on an address that a
    group unsubscribe already suppressed takes the suppression over, so that the group's
    resubscribe cannot lift it."""
    session.execute(
        update(Suppression)
        .where(
            Suppression.channel == Channel.EMAIL,
            Suppression.address == address.strip().lower(),
            Suppression.reason == GROUP_UNSUBSCRIBE,
            Suppression.lifted_at.is_(None),
        )
        .values(reason=reason, source=source)
    )


def resubscribe_group(
    session: Session, *, email: str, group_id: Any, reference: str | None, now: datetime
) -> bool:
    """SendGrid ``group_resubscribe``: lift the suppression that the same group's unsubscribe
    made, and only that (not a one-click unsubscribe, a spam report or a bounce); restore the
    email marketing consent that unsubscribe took, for customers whose latest "no" it still
    is. Returns whether a suppression was lifted."""
    address = email.strip().lower()
    lifted = session.execute(
        update(Suppression)
        .where(
            Suppression.channel == Channel.EMAIL,
            Suppression.address == address,
            Suppression.reason == GROUP_UNSUBSCRIBE,
            Suppression.source == group_source(group_id),
            Suppression.lifted_at.is_(None),
        )
        .values(lifted_at=now)
    ).rowcount  # type: ignore[attr-defined]
    if not lifted:
        return False
    changes: list[dict[str, Any]] = []
    purpose = ConsentPurpose.EMAIL_MARKETING
    for customer in customers_with_email(session, address):
        if (
            customer.email_marketing_consent_state is not DENIED
            or customer.email_marketing_consent_source != SENDGRID_UNSUBSCRIBE
        ):
            continue
        last = _last_change(session, customer.id, purpose)
        if last is None or last.source != SENDGRID_UNSUBSCRIBE:
            continue
        before = ConsentState(last.from_state)
        apply(customer, Statement(purpose, before, now, SENDGRID_RESUBSCRIBE, reference), changes)
    record_changes(session, changes)
    return True
