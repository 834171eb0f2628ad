"""The deciding half of dispatch: for each touchpoint of a chunk, skip it (with the reason),
defer it past quiet hours, or render the message to send.

``load_batch`` reads everything the gates and templates need for a chunk in a few queries;
``decide_batch`` then goes through the touchpoints lazily: expiry, cancel rules against the
order's state now, points, consent, suppression (``gates``), quiet hours, smart sending, and
rendering. Nothing here sends or writes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import time as clock_time
from typing import Any, Literal, Protocol, cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from postpurchase.catalogue.products import CatalogueEntry, Key, catalogue_entries
from postpurchase.consent import EmailMarketingRule
from postpurchase.dispatch import gates
from postpurchase.dispatch.chunk_rows import (
    CustomerRow,
    OrderRow,
    TouchpointRow,
    read_customers,
    read_orders,
    read_recent_sends,
    read_touchpoints,
)
from postpurchase.dispatch.outcomes import Outcome, Pending, ShopOutlets
from postpurchase.feedback import suppression_forms
from postpurchase.messages.context import (
    LoyaltyFigures,
    ShopProfile,
    build_context,
    loyalty_figures,
)
from postpurchase.messages.rendering import MessageRenderer, RenderedEmail, RenderedSms
from postpurchase.outcomes.clicks import track_links
from postpurchase.outcomes.variants import variant_template, with_variant_subject
from postpurchase.store.membership import among, among_parameter, rows_among
from postpurchase.store.models import Channel, Suppression, TouchpointStatus


class MessageSpec(Protocol):
    """What dispatch needs from a campaign (the campaign config satisfies it).

    ``cancel_on``: order states (see ``journey.ORDER_STATES``) in which the message is skipped.
    """

    @property
    def id(self) -> str: ...
    @property
    def template(self) -> str: ...
    @property
    def consent(self) -> Literal["transactional", "marketing"]: ...
    @property
    def smart_sending(self) -> bool: ...
    @property
    def cancel_on(self) -> Collection[str]: ...
    @property
    def expires_after(self) -> timedelta | None: ...
    @property
    def needs_points(self) -> bool: ...  # only for an order that (still) has earned points


CampaignLookup = Callable[[str], MessageSpec | None]


@dataclass(frozen=True)
class GatePolicy:
    quiet_start: clock_time = clock_time(21, 0)
    quiet_end: clock_time = clock_time(9, 0)
    smart_email: timedelta = timedelta(hours=16)
    smart_sms: timedelta = timedelta(hours=24)
    send_attempts: int = 4
    max_retry_wait: float = 60.0
    # A provider still failing after send_attempts (an outage, not a refusal) gets the message
    # back later: up to send_rounds claims in all, waiting round_backoff, then twice as long
    # each time (5 rounds: about 75 minutes of outage), before it is failed.
    send_rounds: int = 5
    round_backoff: timedelta = timedelta(minutes=5)
    # Whether marketing email may go to customers whose consent is unknown (see consent.py).
    email_marketing: EmailMarketingRule = "opt_out"
    # The keys of erased customers' suppressions (feedback.address_digest): the signing keys.
    suppression_keys: tuple[bytes, ...] = ()


@dataclass(frozen=True)
class Batch:
    now: datetime
    touchpoints: Sequence[TouchpointRow]
    customers: dict[int, CustomerRow]
    orders: dict[int, OrderRow]
    suppressed: dict[tuple[Channel, str], str]
    recent: defaultdict[tuple[int, Channel], list[datetime]]
    loyalty: dict[tuple[int, int | None], LoyaltyFigures]
    catalogue: dict[Key, CatalogueEntry]


def load_batch(
    session: Session,
    worker: str,
    ids: Sequence[int],
    *,
    now: datetime,
    lookup: CampaignLookup,
    policy: GatePolicy,
) -> Batch:
    """Everything the gates and templates need for the touchpoints ``worker`` holds."""
    touchpoints = read_touchpoints(session, worker, ids)
    customers = read_customers(session, {t.customer_id for t in touchpoints})
    orders = read_orders(session, {t.order_id for t in touchpoints if t.order_id})
    suppressed = _suppressions(session, customers.values(), policy.suppression_keys)
    recent = recent_sends(session, customers.keys(), now, lookup=lookup, policy=policy)
    loyalty = loyalty_figures(session, {(t.customer_id, t.order_id) for t in touchpoints})
    # the lines' images and pages, from the product catalogue, in one query
    catalogue = catalogue_entries(
        session,
        ((o.source, o.shop, i.product_id or "") for o in orders.values() for i in o.items),
    )
    return Batch(now, touchpoints, customers, orders, suppressed, recent, loyalty, catalogue)


def decide_batch(
    batch: Batch,
    *,
    shops: ShopOutlets,
    policy: GatePolicy,
    renderer: MessageRenderer,
) -> Iterator[Outcome | Pending]:
    """Each touchpoint in turn: its outcome if it is not to be sent, else the rendered
    message, in its shop's brand with its shop's campaigns. Lazy, so rendering interleaves
    with the sends of earlier groups."""
    now, customers, orders, recent = batch.now, batch.customers, batch.orders, batch.recent
    for tp in batch.touchpoints:
        if tp.status == TouchpointStatus.SENDING:
            yield Outcome.unknown(tp.id, "an earlier try of this chunk may have sent it")
            continue
        outlet = shops(tp.shop)
        shop = outlet.profile
        spec = outlet.lookup(tp.campaign_id)
        customer = customers[tp.customer_id]
        order = orders.get(tp.order_id) if tp.order_id else None
        if spec is None:  # disabling a campaign (for all or for this shop) stops its messages
            yield Outcome.skipped(
                tp.id, f"campaign {tp.campaign_id!r} is disabled or no longer configured"
            )
            continue
        address = gates.address_of(customer, tp.channel)
        reason = (
            gates.expiry_gate(tp.due_at, now, spec.expires_after)
            or gates.order_gate(order, spec.cancel_on)
            or gates.points_gate(
                spec.needs_points, batch.loyalty[(tp.customer_id, tp.order_id)].points_earned
            )
            or gates.consent_gate(
                customer, tp.channel, spec.consent, email_marketing=policy.email_marketing
            )
            or _suppression_reason(batch.suppressed, tp.channel, address)
        )
        if reason is None and tp.channel is Channel.SMS:
            zone = gates.customer_zone(customer.time_zone, shop.default_time_zone)
            resume = gates.next_allowed_time(
                now, zone, quiet_start=policy.quiet_start, quiet_end=policy.quiet_end
            )
            if resume is not None:
                yield Outcome.deferred(tp.id, resume)
                continue
        if reason is None and spec.smart_sending:
            reason = smart_sending_reason(recent, tp, now, policy)
        if reason is not None:
            yield Outcome.skipped(tp.id, reason)
            continue
        try:
            context = build_context(
                shop,
                touchpoint=tp,
                customer=customer,
                order=order,
                loyalty=batch.loyalty[(tp.customer_id, tp.order_id)],
                catalogue=batch.catalogue,
            )
            rendered = _render(tp, spec, context, shop=shop, renderer=renderer)
        except Exception as exc:  # a broken template fails this message, not the chunk
            yield Outcome.failed(tp.id, f"rendering {spec.template}: {type(exc).__name__}: {exc}")
            continue
        if counts_for_smart_sending(spec, tp.channel):
            recent[(tp.customer_id, tp.channel)].append(now)
        yield Pending(
            tp.id,
            tp.campaign_id,
            tp.channel,
            address or "",
            customer,
            rendered,
            context["links"]["unsubscribe"],
            tp.attempts,
            outlet,
        )


def _render(
    tp: TouchpointRow,
    spec: MessageSpec,
    context: dict[str, Any],
    *,
    shop: ShopProfile,
    renderer: MessageRenderer,
) -> RenderedEmail | RenderedSms:
    """The touchpoint's message in its variant: the A/B template and subject, and links
    through /c/ so clicks are counted (outcomes)."""
    # Most touchpoints are in no A/B test: no variant to look for among the campaign's.
    variant = tp.variant
    template = str(spec.template) if variant is None else variant_template(spec, variant)
    rendered = renderer.render(
        tp.channel.value, template, context, marketing=spec.consent == "marketing"
    )
    if variant is not None:
        rendered = with_variant_subject(rendered, spec, variant, renderer, context)
    return track_links(
        rendered,
        key=shop.signing_key,
        base_url=shop.public_base_url,
        touchpoint_id=tp.id,
    )


def recent_sends(
    session: Session,
    customer_ids: Collection[int],
    now: datetime,
    *,
    lookup: CampaignLookup,
    policy: GatePolicy,
) -> defaultdict[tuple[int, Channel], list[datetime]]:
    """Send times within the smart-sending windows that count, per customer and channel."""
    since = now - max(policy.smart_email, policy.smart_sms)
    rows = read_recent_sends(session, customer_ids, since)
    recent: defaultdict[tuple[int, Channel], list[datetime]] = defaultdict(list)
    for customer_id, channel, campaign_id, sent_at in rows:
        if sent_at is not None and counts_for_smart_sending(lookup(campaign_id), channel):
            recent[(customer_id, channel)].append(sent_at)
    return recent


def counts_for_smart_sending(spec: MessageSpec | None, channel: Channel) -> bool:
    # Email: marketing emails count (order updates do not); SMS: every SMS counts.
    return channel is Channel.SMS or spec is None or spec.consent == "marketing"


def smart_sending_reason(
    recent: defaultdict[tuple[int, Channel], list[datetime]],
    tp: TouchpointRow,
    now: datetime,
    policy: GatePolicy,
) -> str | None:
    window = policy.smart_email if tp.channel is Channel.EMAIL else policy.smart_sms
    last = max((t for t in recent[(tp.customer_id, tp.channel)] if t > now - window), default=None)
    if last is None:
        return None
    hours = window.total_seconds() / 3600
    what = "an email" if tp.channel is Channel.EMAIL else "an SMS"
    return f"smart sending: customer already got {what} in the last {hours:g} h"


def _suppressions(
    session: Session, customers: Collection[CustomerRow], keys: Sequence[bytes]
) -> dict[tuple[Channel, str], str]:
    """Active suppressions of the customers' addresses, by (channel, address as the customer
    row has it); an erased customer's digest counts for the address it was made from."""
    forms: dict[tuple[Channel, str], str] = {}
    for channel in (Channel.EMAIL, Channel.SMS):
        for customer in customers:
            address = gates.address_of(customer, channel)
            if address:
                for form in suppression_forms(channel, address, keys):
                    forms[(channel, form)] = address
    addresses = {form for _, form in forms}
    rows = rows_among(
        session,
        _ACTIVE_SUPPRESSIONS,
        lambda statement: statement.where(among(session, Suppression.address, addresses)),
        _PG_ACTIVE_SUPPRESSIONS,
        {"addresses": addresses},
    )
    found: dict[tuple[Channel, str], str] = {}
    for stored_channel, stored, reason in rows:
        # an enum member, or on PostgreSQL (``rows_among``) its value
        channel = Channel(stored_channel)
        if (channel, stored) in forms:
            found[(channel, forms[(channel, stored)])] = reason
    return found


# Built once; on PostgreSQL run by psycopg (``rows_among``): SQLAlchemy building, compiling and
# running it again for every chunk cost more than the few suppressions it finds.
_SUPPRESSION = cast(Table, Suppression.__table__).c
_ACTIVE_SUPPRESSIONS = select(
    _SUPPRESSION.channel, _SUPPRESSION.address, _SUPPRESSION.reason
).where(_SUPPRESSION.lifted_at.is_(None))
_PG_ACTIVE_SUPPRESSIONS = _ACTIVE_SUPPRESSIONS.where(
    among_parameter("postgresql", _SUPPRESSION.address, "addresses")
)


def _suppression_reason(
    suppressed: dict[tuple[Channel, str], str], channel: Channel, address: str | None
) -> str | None:
    reason = suppressed.get((channel, address or ""))
    return f"suppressed ({reason})" if reason else None
