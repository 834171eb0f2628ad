"""Data subject requests: Shopify's compliance webhooks, the generic route's requests
(``generic_requests``) and the ``customers`` commands.

A compliance webhook is verified like any Shopify webhook and stored in the inbox under its
delivery's dedupe key (a redelivery stays a duplicate), as ``privacy.<kind>`` with status
``ignored``, so the purchase pipeline never takes it; Shopify gets its 2xx at once. The
housekeeping DAG (or ``postpurchase customers fulfil``) fulfils waiting requests: each one in
one transaction that records it in ``privacy_requests``, marks the inbox row done and drops the
email and phone from its body. Shopify allows 30 days; the DAG runs daily.

A request only ever reaches the rows of the shop that signed it (``X-Shopify-Shop-Domain``,
which a customer request's ``shop_domain`` repeats): customers, orders and inbox rows are
matched on their ``shop``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from postpurchase.inbox import InboxEntry
from postpurchase.messages.tokens import signing_key
from postpurchase.platforms.fields import InvalidPayload
from postpurchase.privacy.delivery import EmailSenderFactory, configured_sender, deliver_export
from postpurchase.privacy.erasure import (
    ErasureCounts,
    Files,
    erase_customer,
    keep_suppressions_digested,
    scrub_inbox,
)
from postpurchase.privacy.export import customer_document
from postpurchase.privacy.personal import PAYLOAD_PATHS, scrub
from postpurchase.settings import Settings
from postpurchase.store.database import SessionFactory, transaction
from postpurchase.store.models import (
    ClaimStatus,
    Customer,
    InboxEvent,
    Order,
    PrivacyRequest,
    Product,
)
from postpurchase.webhooks.opt_out_spool import spool_dir

log = logging.getLogger(__name__)

EXPORT, ERASE, ERASE_SHOP = "export", "erase", "erase_shop"
SHOPIFY_TOPICS = {
    "customers/data_request": EXPORT,
    "customers/redact": ERASE,
    "shop/redact": ERASE_SHOP,
}
EVENT_PREFIX = "privacy."
_REQUEST_KEYS = frozenset(path[-1] for path in PAYLOAD_PATHS)


def shopify_entry(
    topic: str, data: Any, *, source: str, shop: str, key: str, received_at: datetime
) -> InboxEntry:
    """The inbox row for a compliance webhook; InvalidPayload when it names no customer."""
    kind = SHOPIFY_TOPICS[topic]
    if not isinstance(data, dict):
        raise InvalidPayload([("body", "must be a JSON object")])
    subject: str | None = None
    if kind != ERASE_SHOP:
        customer = data.get("customer")
        if not isinstance(customer, dict) or customer.get("id") is None:
            if not isinstance(customer, dict) or not customer.get("email"):
                raise InvalidPayload([("customer", "must name the customer (id or email)")])
        else:
            subject = str(customer["id"])
    return InboxEntry(
        source=source,
        dedupe_key=key,
        event_type=EVENT_PREFIX + kind,
        topic=topic,
        shop=shop,
        subject_id=subject,
        occurred_at=received_at,
        payload=data,
        status=ClaimStatus.IGNORED,
    )


def files_of(settings: Settings) -> Files:
    return Files(outbox=settings.var_dir / "outbox", spool=spool_dir(settings))


@dataclass(frozen=True)
class Fulfilment:
    kind: str
    customer_id: int | None
    result: dict[str, Any]


def erase(
    session: Session,
    customer: Customer,
    *,
    settings: Settings,
    now: datetime,
    origin: str = "cli",
    order_ids: Iterable[str] = (),
) -> PrivacyRequest:
    """Erase ``customer`` and record the request as fulfilled; the caller commits."""
    counts = erase_customer(
        session,
        customer,
        now=now,
        files=files_of(settings),
        key=signing_key(settings),
        order_ids=order_ids,
    )
    result = counts.as_dict()
    return _record(session, ERASE, origin, f"customer:{customer.id}", customer.id, now, result)


def export(
    session: Session,
    customer: Customer,
    *,
    settings: Settings,
    now: datetime,
    origin: str = "cli",
    sender: EmailSenderFactory | None = None,
) -> PrivacyRequest:
    """Deliver ``customer``'s export (``privacy.delivery``) and record the request; the
    caller commits."""
    result = _export_file(session, customer, settings=settings, now=now, sender=sender)
    return _record(session, EXPORT, origin, f"customer:{customer.id}", customer.id, now, result)


def _export_file(
    session: Session,
    customer: Customer,
    *,
    settings: Settings,
    now: datetime,
    sender: EmailSenderFactory | None,
) -> dict[str, Any]:
    document = customer_document(session, customer, now=now)
    name = f"customer-{customer.id}-{now.strftime('%Y%m%dT%H%M%S%f')}"
    return deliver_export(
        document,
        name=name,
        customer_id=customer.id,
        shop_key=customer.shop,
        settings=settings,
        sender=sender,
    )


def _record(
    session: Session,
    kind: str,
    origin: str,
    subject: str,
    customer_id: int | None,
    now: datetime,
    result: dict[str, Any],
    *,
    shop: str | None = None,
    inbox_event_id: int | None = None,
    requested_at: datetime | None = None,
) -> PrivacyRequest:
    request = PrivacyRequest(
        kind=kind,
        origin=origin,
        shop=shop,
        subject=subject,
        customer_id=customer_id,
        inbox_event_id=inbox_event_id,
        requested_at=requested_at or now,
        fulfilled_at=now,
        result=result,
    )
    session.add(request)
    session.flush()
    return request


class RequestsFailed(RuntimeError):
    """Some requests could not be fulfilled (the others were): they wait for the next run."""


def fulfil_pending(
    factory: SessionFactory,
    settings: Settings,
    *,
    now: datetime,
    sender: EmailSenderFactory | None = None,
) -> int:
    """Fulfil every data subject request still waiting in the inbox; returns how many.

    ``sender`` sends emailed exports (default: the configured email channel). Each request
    is one transaction. One that fails stays waiting; the others are fulfilled,
    then RequestsFailed names the failed ones (so the Airflow task fails and is retried).
    """
    sender = sender or configured_sender(settings)  # built once, and only for an emailed export
    with factory() as session:
        waiting = list(
            session.scalars(
                select(InboxEvent.id)
                .where(
                    InboxEvent.event_type.like(EVENT_PREFIX + "%"),
                    InboxEvent.status == ClaimStatus.IGNORED,
                )
                .order_by(InboxEvent.id)
            )
        )
    fulfilled, failed = 0, []
    for inbox_id in waiting:
        try:
            with transaction(factory) as session:
                row = session.get(InboxEvent, inbox_id, with_for_update=True)
                if row is None or row.status != ClaimStatus.IGNORED:
                    continue  # another run fulfilled it meanwhile
                _fulfil(session, row, settings, now, sender)
                fulfilled += 1
        except Exception as exc:  # noqa: BLE001 - one request never holds up the others
            log.exception("privacy request in inbox row %s failed", inbox_id)
            failed.append(f"inbox {inbox_id}: {type(exc).__name__}")
    if failed:
        raise RequestsFailed(
            f"fulfilled {fulfilled} privacy request(s); failed: {', '.join(failed)}"
        )
    return fulfilled


def _fulfil(
    session: Session,
    row: InboxEvent,
    settings: Settings,
    now: datetime,
    sender: EmailSenderFactory | None,
) -> None:
    kind = row.event_type.removeprefix(EVENT_PREFIX)
    data = row.payload if isinstance(row.payload, dict) else {}
    person = data.get("customer") if isinstance(data.get("customer"), dict) else {}
    assert isinstance(person, dict)
    external_id = str(person["id"]) if person.get("id") is not None else None
    shop = row.shop or ""
    refusal = _other_shop(row, data)
    customer = _requested_customer(session, row.source, shop, external_id, person.get("email"))
    subject = f"{row.source}:{external_id}" if external_id else f"{row.source}:by-email"
    result: dict[str, Any]
    if refusal is not None:
        customer, result = None, {"refused": refusal}
    elif kind == ERASE_SHOP:
        result = erase_shop(session, row.source, shop, settings=settings, now=now)
        subject = shop
    elif kind == EXPORT:
        if customer is None:
            result = {"found": False}
        else:
            result = _export_file(session, customer, settings=settings, now=now, sender=sender)
    else:
        orders = [str(o) for o in data.get("orders_to_redact") or []]
        if customer is not None:
            counts = erase_customer(
                session,
                customer,
                now=now,
                files=files_of(settings),
                key=signing_key(settings),
                order_ids=orders,
            )
        else:
            counts = _erase_traces(
                session, row.source, shop, external_id, orders, person, now, signing_key(settings)
            )
        result = counts.as_dict()
    _record(
        session,
        kind,
        row.source,
        subject,
        customer.id if customer is not None else None,
        now,
        result,
        shop=row.shop,
        inbox_event_id=row.id,
        requested_at=row.occurred_at or row.received_at,
    )
    row.payload = scrub(data, [], keys=_REQUEST_KEYS)
    row.status = ClaimStatus.DONE
    row.processed_at = now
    row.personal_data_removed_at = now


def _other_shop(row: InboxEvent, data: dict[str, Any]) -> str | None:
    """Why the request is refused when its body names another shop than the one whose secret
    signed it (it would reach rows of a shop that did not ask); None when it does not."""
    named = data.get("shop_domain")
    if named is None or str(named).strip().lower() == (row.shop or ""):
        return None
    return f"shop_domain {named!r} is not the shop that signed the request ({row.shop!r})"


def _requested_customer(
    session: Session, source: str, shop: str, external_id: str | None, email: Any
) -> Customer | None:
    """The customer of ``shop`` a request names: by platform id, else by email."""
    of_shop = (Customer.source == source, Customer.shop == shop)
    if external_id is not None:
        return session.scalars(
            select(Customer).where(*of_shop, Customer.external_id == external_id)
        ).one_or_none()
    if email:
        return session.scalars(
            select(Customer).where(*of_shop, Customer.email == str(email).lower()).limit(1)
        ).one_or_none()
    return None


def _erase_traces(
    session: Session,
    source: str,
    shop: str,
    external_id: str | None,
    order_ids: list[str],
    person: dict[str, Any],
    now: datetime,
    key: bytes,
) -> ErasureCounts:
    """A redact request for a customer the engine never stored: scrub what mentions them,
    and keep their suppressions as digests."""
    counts = ErasureCounts()
    counts.suppressions = keep_suppressions_digested(
        session,
        str(person["email"]) if person.get("email") else None,
        str(person["phone"]) if person.get("phone") else None,
        key,
    )
    needles = [str(v) for v in (person.get("email"), person.get("phone")) if v]
    subjects = [s for s in (external_id, *order_ids) if s]
    counts.inbox_payloads = scrub_inbox(
        session,
        source=source,
        shop=shop,
        subjects=subjects,
        needles=needles,
        names=[],
        now=now,
    )
    for order in session.scalars(
        select(Order).where(
            Order.source == source, Order.shop == shop, Order.external_id.in_(order_ids)
        )
    ):
        order.tracking_url = None
        counts.orders += 1
    return counts


def erase_shop(
    session: Session, source: str, shop: str, *, settings: Settings, now: datetime
) -> dict[str, Any]:
    """Erase every customer of ``shop`` (the ``shop`` column), cancel what was planned for
    them, delete its product catalogue and its inbox rows.

    Orders stay, with their totals and without addresses, for the append-only ledger; other
    shops' rows, even with the same platform ids, are not touched.
    """
    erased = 0
    for customer in session.scalars(
        select(Customer)
        .where(Customer.source == source, Customer.shop == shop)
        .order_by(Customer.id)
    ).all():
        erase_customer(
            session, customer, now=now, files=files_of(settings), key=signing_key(settings)
        )
        erased += 1
    products = session.execute(
        delete(Product).where(Product.source == source, Product.shop == shop)
    ).rowcount  # type: ignore[attr-defined]
    deleted = session.execute(
        delete(InboxEvent).where(
            InboxEvent.source == source,
            func.coalesce(InboxEvent.shop, "") == shop,
            ~InboxEvent.event_type.like(EVENT_PREFIX + "%"),
        )
    ).rowcount  # type: ignore[attr-defined]
    return {
        "customers": erased,
        "products_deleted": int(products),
        "inbox_rows_deleted": int(deleted),
    }
