"""The planning benchmark's backlog (benchmarks.planning) with codes of ours on some orders:
reward codes issued to customers, referral codes typed as discount codes or carried as the
order's ``referral_code``, some of another shop, some cancelled after a rewarded referral.

The drain of this backlog is compared between versions of the code (the same tables after it)
and its outcomes checked by ``test_code_backlog``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert

from benchmarks import planning
from postpurchase.events import CanonicalEvent
from postpurchase.store.models import (
    Customer,
    CustomerAddressKey,
    InboxEvent,
    Redemption,
    RedemptionStatus,
    ReferralCode,
)

AWAY = "away.example"
REWARDS = [f"RW-{n}" for n in range(10)]
# The last one's customer has shipped to the genuine order's address, as every order here does.
REFERRALS = [f"REF-HOME{n}" for n in range(5)]
# The first customer of the backlog refers others too (with the genuine order's phone, as every
# customer here).
FIRST = "REF-FIRST"


def codes_of(n: int) -> tuple[str | None, list[str], list[str]]:
    """Order ``n``'s shop (None: the default one), extra discount codes and referral code
    (an empty list or one)."""
    discounts: list[str] = []
    referral: list[str] = []
    if n % 5 == 1:
        discounts.append(REWARDS[n // 5 % 10].lower())  # each on several orders
    if n % 6 == 2:
        referral.append(REFERRALS[n % 5])
    if n % 9 == 4:
        discounts += ["ref-away", f" {REFERRALS[n % 5]} "]  # not stripped for a referral
        discounts.append(REFERRALS[(n + 1) % 5].lower())
    if n % 10 == 9:
        referral.append(FIRST)
    if n % 13 == 7:
        return AWAY, [*discounts, "RW-AWAY", "REF-AWAY", REWARDS[0]], referral
    return None, discounts, referral


def cancelled(n: int) -> bool:
    """Whether order ``n`` is cancelled, after every order's other events."""
    return n % 3 == 1


def fill(engine: Engine, orders: int) -> int:
    """Customers with reward and referral codes, then an inbox of ``orders`` orders' events
    (4 each), then the cancellations; returns the event count."""
    _customers(engine)
    kinds = planning.KINDS
    cancel = [("order.cancelled", timedelta(days=4))]
    total = 0
    with engine.begin() as conn:
        for start in range(0, orders, 500):
            part = range(start, min(start + 500, orders))
            rows = [row for n in part for row in _events(n, kinds)]
            conn.execute(insert(InboxEvent), rows)
            total += len(rows)
        rows = [row for n in range(orders) if cancelled(n) for row in _events(n, cancel)]
        conn.execute(insert(InboxEvent), rows)
    return total + len(rows)


def _customers(engine: Engine) -> None:
    first = planning._order(0)["customer"]
    expires = datetime(2027, 1, 1, tzinfo=UTC)
    with engine.begin() as conn:
        people = [
            {"source": "shopify", "shop": shop, "external_id": f"referrer-{shop}-{n}"}
            for shop, count in (("", 10), (AWAY, 1))
            for n in range(count)
        ]
        people.append({"source": "shopify", "shop": "", "external_id": first["external_id"]})
        ids = conn.execute(insert(Customer).returning(Customer.id), people).scalars().all()
        home, away, first_id = ids[:10], ids[10], ids[11]
        conn.execute(
            insert(ReferralCode),
            [
                *(
                    {"customer_id": c, "code": code}
                    for c, code in zip(home[:5], REFERRALS, strict=True)
                ),
                {"customer_id": away, "code": "REF-AWAY"},
                {"customer_id": first_id, "code": FIRST},
            ],
        )
        conn.execute(
            insert(CustomerAddressKey),
            {"customer_id": home[4], "address_key": planning._genuine()[0].shipping_address_key},
        )
        statuses = [RedemptionStatus.ISSUED, RedemptionStatus.PENDING, RedemptionStatus.EXPIRED]
        conn.execute(
            insert(Redemption),
            [
                {
                    "idempotency_key": code,
                    "customer_id": customer,
                    "reward": "five_off",
                    "points": 500,
                    "platform": "shopify",
                    "code": code,
                    "status": statuses[n % 3] if n != 9 else RedemptionStatus.REFUNDED,
                    "expires_at": expires,
                }
                for n, (customer, code) in enumerate(
                    [*zip(home, REWARDS, strict=True), (away, "RW-AWAY")]
                )
            ],
        )


def _events(n: int, kinds: list[tuple[str, timedelta]]) -> list[dict[str, Any]]:
    shop, discounts, referral = codes_of(n)
    order = planning._order(n)
    # Every order here ships to the genuine order's street and its customer has the genuine
    # phone (the benchmark gives each customer their own): the referral checks compare them.
    genuine = planning._genuine()[1]
    order["shipping_address_key"] = genuine["shipping_address_key"]
    order["customer"]["phone"] = genuine["customer"]["phone"]
    order["discount_codes"] = [*order["discount_codes"], *discounts]
    if referral:
        order["referral_code"] = referral[0]
    rows = []
    for kind, offset in kinds:
        updated = planning._moved(order["updated_at"], offset)
        snapshot = {**order, "updated_at": updated}
        if kind == "order.cancelled":
            snapshot["cancelled_at"] = updated
        payload = {"type": kind, "occurred_at": updated, "order": snapshot}
        event = CanonicalEvent.model_validate(payload)
        rows.append(
            {
                "source": "shopify",
                "shop": shop,
                "dedupe_key": f"codes:{n}:{kind}",
                "event_type": kind,
                "subject_id": order["external_id"],
                "occurred_at": event.occurred_at,
                "payload": event.as_payload(),
            }
        )
    return rows
