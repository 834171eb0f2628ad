"""The checks a touchpoint passes at send time, as pure functions of what the store holds.

Each returns a skip reason (a short sentence stored on the touchpoint) or None to go on.
Quiet hours return the next allowed time instead: an SMS in the night is deferred, not dropped.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from postpurchase.consent import EmailMarketingRule, consent_reason
from postpurchase.dispatch.chunk_rows import CustomerRow, OrderRow
from postpurchase.journey import order_states as journey_states
from postpurchase.store.models import Channel

Consent = Literal["transactional", "marketing"]


def order_states(order: OrderRow) -> set[str]:
    """Which of ``journey.ORDER_STATES`` the order is in now."""
    return journey_states(
        cancelled_at=order.cancelled_at,
        financial_status=order.financial_status,
        refunded_amount=order.refunded_amount,
        returned_at=order.returned_at,
        reviewed_at=order.reviewed_at,
    )


def expiry_gate(due_at: datetime, now: datetime, expires_after: timedelta | None) -> str | None:
    """Skip a message that fell due longer ago than the campaign allows it to be late.

    The reason is the same for every message of the campaign, so skips count up by reason;
    the touchpoint's ``due_at`` tells when it fell due.
    """
    if expires_after is None or now - due_at <= expires_after:
        return None
    days, rest = expires_after.days, expires_after.seconds
    span = (f"{days}d" if days else "") + (f"{rest // 3600}h" if rest >= 3600 else "")
    span += f"{rest % 3600 // 60}m" if rest % 3600 else ""
    return f"too late: not sent within {span} of falling due"


def order_gate(order: OrderRow | None, cancel_on: Collection[str]) -> str | None:
    """Skip when the order is now in a state the campaign's cancel rules name."""
    if order is None:
        return None
    hit = sorted(order_states(order) & set(cancel_on))
    return f"order {order.name or order.external_id} is {' and '.join(hit)}" if hit else None


def points_gate(needs_points: bool, points_earned: int) -> str | None:
    """Skip a points message for an order that has (now) earned no points: an order in
    another currency than the shop's earns none, a refund takes them back."""
    if needs_points and points_earned <= 0:
        return "the order has earned no loyalty points"
    return None


def address_of(customer: CustomerRow, channel: Channel) -> str | None:
    """The lower-cased email or the E.164 number the message would go to."""
    if channel is Channel.EMAIL:
        return customer.email.strip().lower() if customer.email else None
    return customer.phone.strip() if customer.phone else None


def consent_gate(
    customer: CustomerRow,
    channel: Channel,
    consent: Consent,
    *,
    email_marketing: EmailMarketingRule = "opt_out",
) -> str | None:
    """An address to send to, and the consent the message needs (``consent.consent_reason``:
    marketing email unless denied, or only when granted under ``opt_in``; marketing SMS only
    when granted; order texts when SMS, or SMS marketing, is granted)."""
    if address_of(customer, channel) is None:
        return f"customer has no {'email address' if channel is Channel.EMAIL else 'phone'}"
    return consent_reason(customer, channel, consent, email_marketing=email_marketing)


def customer_zone(name: str | None, default: str) -> ZoneInfo:
    """The customer's IANA zone, or ``default`` when it is missing or not a known zone."""
    try:
        return ZoneInfo(name or default)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(default)


def next_allowed_time(
    now: datetime, zone: ZoneInfo, *, quiet_start: time, quiet_end: time
) -> datetime | None:
    """None when ``now`` is outside quiet hours in ``zone``, else when they end (UTC).

    Quiet hours may wrap midnight (21:00-09:00) or not (13:00-14:00).
    """
    local = now.astimezone(zone)
    clock = local.time().replace(tzinfo=None)
    if quiet_start <= quiet_end:
        quiet = quiet_start <= clock < quiet_end
        end_day = local.date()
    else:
        quiet = clock >= quiet_start or clock < quiet_end
        end_day = local.date() + timedelta(days=1) if clock >= quiet_start else local.date()
    if not quiet:
        return None
    return datetime.combine(end_day, quiet_end, tzinfo=zone).astimezone(now.tzinfo)
