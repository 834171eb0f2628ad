"""Erasure: a customer's personal data removed from every table, payload and file.

What the business must keep stays, without the person: orders keep their totals, the ledger
and the consent trail (append-only in the database) keep their rows, which refer to the
customer's engine id; that row stays as an anonymous husk (no email, phone, names or birthday;
its platform id replaced by the tombstone ``erased:<id>``), so a later webhook for the same
platform customer starts a new, unlinked profile. Consent trail references are evidence ids
(``inbox:12``, ``touchpoint:34``, ``sendgrid:<kind>:<event id>``, ``twilio:<sid>``), never
personal data; the evidence they point at is scrubbed here.

Suppressions of the customer's address and number keep only a keyed digest of it
(``feedback.address_digest``, keyed with the signing key): an address that had opted out or
bounced stays suppressed when it comes back in a later order, while the table no longer holds
it in clear. Lifted suppressions (which stop nothing) are deleted.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Text, cast, delete, func, or_, select, update
from sqlalchemy.orm import Session

from postpurchase.feedback import address_digest, suppression_key
from postpurchase.privacy.personal import DETAIL_KEYS, PAYLOAD_LIST_KEYS, PAYLOAD_PATHS, scrub
from postpurchase.reviews.models import ProductReview
from postpurchase.store.models import (
    ERASED_PREFIX,
    Channel,
    Customer,
    CustomerAddressKey,
    CustomerBirthday,
    InboxEvent,
    MessageEvent,
    Order,
    ReferralCode,
    RejectedWebhook,
    Suppression,
    SurveyResponse,
    Touchpoint,
    TouchpointStatus,
)
from postpurchase.store.page_actions import PageAction
from postpurchase.surveys.models import NpsResponse, SupportNotification

log = logging.getLogger(__name__)

ERASED_REASON = "customer erased"
# What an erased customer's reviews are signed with (published ones stay, anonymous).
ANONYMOUS_REVIEWER = "A verified buyer"
_OPEN = (TouchpointStatus.PLANNED, TouchpointStatus.CLAIMED)
_PAYLOAD_KEYS = frozenset(path[-1] for path in PAYLOAD_PATHS if len(path) > 1) | {
    key for _, key in PAYLOAD_LIST_KEYS
}


def tombstone(customer_id: int) -> str:
    """The platform id an erased customer row keeps: unique, and no platform's id."""
    return f"{ERASED_PREFIX}{customer_id}"


@dataclass
class ErasureCounts:
    """What one erasure changed, per place (stored in ``privacy_requests.result``)."""

    customers: int = 0
    orders: int = 0
    inbox_payloads: int = 0
    message_events: int = 0
    rejected_webhooks: int = 0
    touchpoints_cancelled: int = 0
    suppressions: int = 0
    outbox_files: int = 0
    spool_files: int = 0
    extras: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, int]:
        counts = {k: v for k, v in self.__dict__.items() if k != "extras"}
        return {**counts, **self.extras}


@dataclass(frozen=True)
class Files:
    """The folders where messages and spooled opt-outs are kept as files."""

    outbox: Path | None = None
    spool: Path | None = None


def _like_any(column: Any, needles: Iterable[str]) -> Any:
    escaped = [n.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") for n in needles]
    return or_(*(cast(column, Text).ilike(f"%{n}%", escape="\\") for n in escaped if n))


def _needles(customer: Customer) -> list[str]:
    # Names alone are too common to search every table for; they are cleared on the rows
    # linked to the customer, and inside payloads found by address, number or platform id.
    return [v for v in (customer.email, customer.phone) if v]


def erase_customer(
    session: Session,
    customer: Customer,
    *,
    now: datetime,
    files: Files,
    key: bytes,
    order_ids: Iterable[str] = (),
) -> ErasureCounts:
    """Remove ``customer``'s personal data everywhere; the caller commits.

    ``key`` digests the addresses that stay suppressed (the signing key). ``order_ids`` are
    further platform order ids to scrub (a redact request's ``orders_to_redact``, which may
    name orders of a guest checkout). Running it twice changes nothing the second time.
    """
    counts = ErasureCounts()
    needles = _needles(customer)
    names = [v for v in (customer.first_name, customer.last_name) if v and len(v) > 1]
    external_id = customer.external_id
    orders = session.scalars(
        select(Order).where(
            or_(
                Order.customer_id == customer.id,
                (Order.source == customer.source)
                & (Order.shop == customer.shop)
                & Order.external_id.in_(list(order_ids)),
            )
        )
    ).all()
    order_external = [o.external_id for o in orders]
    for order in orders:
        order.tracking_url = None
    counts.orders = len(orders)

    touchpoint_ids, counts.touchpoints_cancelled = _cancel_touchpoints(session, customer, needles)

    counts.inbox_payloads = scrub_inbox(
        session,
        source=customer.source,
        shop=customer.shop,
        subjects=[] if external_id.startswith(ERASED_PREFIX) else [external_id, *order_external],
        needles=needles,
        names=names,
        now=now,
    )
    counts.message_events = _scrub_message_events(session, touchpoint_ids, needles, now)
    if needles:
        counts.rejected_webhooks = _drop_rejected(session, needles)
    counts.suppressions = keep_suppressions_digested(session, customer.email, customer.phone, key)

    counts.extras.update(_scrub_feedback(session, customer.id, needles, names))
    for model in (CustomerBirthday, CustomerAddressKey, ReferralCode):
        deleted = session.execute(
            delete(model).where(model.customer_id == customer.id)  # type: ignore[attr-defined]
        ).rowcount
        counts.extras[model.__tablename__] = int(deleted)

    counts.outbox_files = _remove_files(files.outbox, touchpoint_ids, needles)
    counts.spool_files = _remove_spooled(files.spool, customer)

    if customer.email or customer.phone or customer.first_name or customer.last_name:
        counts.customers = 1
    customer.email = None
    customer.phone = None
    customer.first_name = None
    customer.last_name = None
    customer.locale = None
    customer.time_zone = None
    customer.external_id = tombstone(customer.id)
    session.flush()
    log.info("erased customer %s: %s", customer.id, counts.as_dict())
    return counts


def _cancel_touchpoints(
    session: Session, customer: Customer, needles: list[str]
) -> tuple[list[int], int]:
    """The customer's touchpoint ids, and how many open ones were cancelled as erased."""
    touchpoint_ids = list(
        session.scalars(select(Touchpoint.id).where(Touchpoint.customer_id == customer.id))
    )
    cancelled = session.execute(
        update(Touchpoint)
        .where(Touchpoint.customer_id == customer.id, Touchpoint.status.in_(_OPEN))
        .values(
            status=TouchpointStatus.SKIPPED,
            reason=ERASED_REASON,
            claimed_by=None,
            lease_until=None,
        )
    ).rowcount  # type: ignore[attr-defined]
    if needles:
        session.execute(
            update(Touchpoint)
            .where(Touchpoint.customer_id == customer.id, _like_any(Touchpoint.reason, needles))
            .values(reason=ERASED_REASON)
        )
    return touchpoint_ids, cancelled


def _drop_rejected(session: Session, needles: list[str]) -> int:
    """Delete the rejected webhooks naming the customer: how many."""
    return int(
        session.execute(
            delete(RejectedWebhook).where(
                or_(
                    _like_any(RejectedWebhook.reason, needles),
                    _like_any(RejectedWebhook.body_excerpt, needles),
                    _like_any(RejectedWebhook.headers, needles),
                    _like_any(RejectedWebhook.samples, needles),
                )
            )
        ).rowcount  # type: ignore[attr-defined]
    )


def keep_suppressions_digested(
    session: Session, email: str | None, phone: str | None, key: bytes
) -> int:
    """Active suppressions of ``email`` and ``phone`` keep the address's digest instead of
    the address; lifted ones go. Returns how many rows changed."""
    changed = 0
    for channel, address in ((Channel.EMAIL, email), (Channel.SMS, phone)):
        if not address:
            continue
        plain = suppression_key(channel, address)
        digest = address_digest(channel, address, key)
        rows = session.scalars(
            select(Suppression).where(
                Suppression.channel == channel, Suppression.address.in_({plain, address})
            )
        ).all()
        for row in rows:
            kept = session.scalars(
                select(Suppression.id).where(
                    Suppression.channel == channel, Suppression.address == digest
                )
            ).first()
            if row.lifted_at is not None or kept is not None:
                session.delete(row)  # stops nothing, or the digest is already suppressed
            else:
                row.address = digest
            session.flush()
            changed += 1
    return changed


def scrub_inbox(
    session: Session,
    *,
    source: str,
    shop: str,
    subjects: list[str],
    needles: list[str],
    names: list[str],
    now: datetime,
) -> int:
    """Scrub the personal fields of ``shop``'s inbox rows about ``subjects`` (platform ids of
    ``source``) or holding one of ``needles``; other shops' rows are left alone."""
    conditions = []
    if subjects:
        conditions.append((InboxEvent.source == source) & InboxEvent.subject_id.in_(subjects))
    if needles:
        conditions.append(_like_any(InboxEvent.payload, needles))
    if not conditions:
        return 0
    # the inbox records no shop as NULL: the default shop, ""
    of_shop = func.coalesce(InboxEvent.shop, "") == shop
    rows = session.execute(
        select(InboxEvent.id, InboxEvent.payload).where(of_shop, or_(*conditions))
    ).all()
    changed = 0
    for row_id, payload in rows:
        cleaned = scrub(payload, [*needles, *names], keys=_PAYLOAD_KEYS)
        if cleaned != payload:
            changed += 1
        session.execute(
            update(InboxEvent)
            .where(InboxEvent.id == row_id)
            .values(payload=cleaned, personal_data_removed_at=now)
        )
    return changed


def _scrub_feedback(
    session: Session, customer_id: int, needles: list[str], names: list[str]
) -> dict[str, int]:
    """What the customer wrote: reviews stay (they are about a product, and published ones are
    public) but become anonymous; survey and NPS comments go; notifications that told support
    about the customer keep only that they were sent."""
    reviews = session.execute(
        update(ProductReview)
        .where(ProductReview.customer_id == customer_id)
        .values(display_name=ANONYMOUS_REVIEWER)
    ).rowcount  # type: ignore[attr-defined]
    comments = 0
    for model in (SurveyResponse, NpsResponse):
        comments += session.execute(
            update(model)
            .where(model.customer_id == customer_id, model.comment.is_not(None))
            .values(comment=None)
        ).rowcount  # type: ignore[attr-defined]
    notifications = 0
    if needles or names:
        notifications = session.execute(
            update(SupportNotification)
            .where(_like_any(SupportNotification.payload, [*needles, *names]))
            .values(payload={"erased": True})
        ).rowcount  # type: ignore[attr-defined]
    actions = 0
    if needles or names:
        # why support acted on the customer (the pages' action log) stays, unless it names them
        actions = session.execute(
            update(PageAction)
            .where(
                PageAction.subject == f"customer:{customer_id}",
                _like_any(PageAction.reason, [*needles, *names]),
            )
            .values(reason=ERASED_REASON)
        ).rowcount  # type: ignore[attr-defined]
    return {
        "reviews_anonymised": int(reviews),
        "comments": int(comments),
        "support_notifications": int(notifications),
        "page_action_reasons": int(actions),
    }


def _scrub_message_events(
    session: Session, touchpoint_ids: list[int], needles: list[str], now: datetime
) -> int:
    conditions = []
    if touchpoint_ids:
        conditions.append(MessageEvent.touchpoint_id.in_(touchpoint_ids))
    if needles:
        conditions.append(_like_any(MessageEvent.detail, needles))
    if not conditions:
        return 0
    rows = session.execute(
        select(MessageEvent.id, MessageEvent.detail).where(or_(*conditions))
    ).all()
    for row_id, detail in rows:
        session.execute(
            update(MessageEvent)
            .where(MessageEvent.id == row_id)
            .values(detail=scrub(detail, needles, keys=DETAIL_KEYS), personal_data_removed_at=now)
        )
    return len(rows)


def _remove_files(directory: Path | None, touchpoint_ids: list[int], needles: list[str]) -> int:
    if directory is None or not directory.is_dir():
        return 0
    ours = {f"{i:08d}-" for i in touchpoint_ids}
    removed = 0
    for path in directory.iterdir():
        if not path.is_file():
            continue
        mine = path.name[:9] in ours
        if not mine and needles:
            try:
                content = path.read_bytes().decode("utf-8", "replace").casefold()
            except OSError:
                continue
            mine = any(n.casefold() in content for n in needles)
        if mine:
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def _remove_spooled(directory: Path | None, customer: Customer) -> int:
    """Spooled opt-outs of the customer's number or engine id: they name the person."""
    if directory is None or not directory.is_dir():
        return 0
    removed = 0
    for path in directory.glob("*.json"):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if (customer.phone and record.get("phone") == customer.phone) or record.get(
            "customer_id"
        ) == customer.id:
            path.unlink(missing_ok=True)
            removed += 1
    return removed
