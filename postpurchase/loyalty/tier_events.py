"""The ``tier.changed`` events of a tier refresh: one canonical event per change, into the
inbox, in one ``INSERT ... SELECT`` through the inbox's set-based writer.

Pending, source and shop = the customer's platform and shop (so the planner finds the same
customer by (source, shop, external id)), topic ``tier.changed``, dedupe key
``<source>:tier.changed:<customer id>:<history id>`` (``inbox.dedupe_key_sql``, the form of
every other event's key), payload built in SQL.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, literal, select
from sqlalchemy.orm import Session

from postpurchase.events import EventType
from postpurchase.inbox import add_selected_to_inbox, dedupe_key_sql, json_object_sql
from postpurchase.store.columns import UtcDateTime
from postpurchase.store.models import ClaimStatus, Customer, CustomerTierChange


def emit_tier_events(session: Session, now: datetime, after_change_id: int) -> None:
    """One ``tier.changed`` inbox event per history row after ``after_change_id`` (this run's),
    in one INSERT ... SELECT.

    The payload is ``CanonicalEvent(type=tier.changed, occurred_at=now, customer=snapshot,
    tier=TierChange(...)).as_payload()``, built in SQL: a first refresh can move hundreds of
    thousands of customers, and a round trip through Python per event cost more than all the
    scoring. The tests parse it back with the model. Consent is left out (None: "said
    nothing"), so a snapshot never overwrites a stored answer.
    """
    dialect = session.get_bind().dialect.name
    h = CustomerTierChange
    empty_list = func.jsonb_build_array() if dialect == "postgresql" else func.json_array()
    customer = json_object_sql(
        dialect,
        {
            "external_id": Customer.external_id,
            "email": Customer.email,
            "phone": Customer.phone,
            "first_name": Customer.first_name,
            "last_name": Customer.last_name,
            "locale": Customer.locale,
            "time_zone": Customer.time_zone,
            "tags": empty_list,
        },
    )
    payload = json_object_sql(
        dialect,
        {
            "type": literal(EventType.TIER_CHANGED.value),
            "occurred_at": literal(now.isoformat().replace("+00:00", "Z")),
            "customer": customer,
            "tier": json_object_sql(dialect, {"from_tier": h.from_tier, "to_tier": h.to_tier}),
        },
    )
    rows = (
        select(
            Customer.source,  # customers are keyed by (platform, shop, external id)
            dedupe_key_sql(Customer.source, EventType.TIER_CHANGED.value, h.customer_id, h.id),
            literal(EventType.TIER_CHANGED.value),
            literal(EventType.TIER_CHANGED.value),
            func.nullif(Customer.shop, ""),  # the customer's shop ("" is no shop: NULL)
            Customer.external_id,
            literal(now, UtcDateTime()),
            payload,
            literal(ClaimStatus.PENDING.value),
            literal(0),
        )
        .select_from(h)
        .join(Customer, Customer.id == h.customer_id)
        .where(h.id > after_change_id)
    )
    add_selected_to_inbox(session, rows)
