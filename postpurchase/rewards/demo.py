"""``postpurchase run``'s last step: a few simulated redemptions on the demo's data, so the
spending side shows too. Everything here is labelled simulated: the codes come from a demo
pool (the embedded default has no shop platform), and "used" means a demo order is said to
carry the code, as its webhook would."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select

from postpurchase.loyalty.config import LoyaltyConfig
from postpurchase.loyalty.ledger import Ledger
from postpurchase.rewards.pool_codes import import_pool_codes
from postpurchase.rewards.redeemer import Redeemer
from postpurchase.rewards.used_codes import mark_used
from postpurchase.store.database import SessionFactory, transaction
from postpurchase.store.models import Order, Redemption, RedemptionStatus


def simulated_redemptions(
    store: SessionFactory, config: LoyaltyConfig, *, customers: int = 5, now: datetime | None = None
) -> list[str]:
    """Redeem the cheapest reward for the ``customers`` richest customers who can afford it,
    mark the first two codes used on a demo order, and describe it. Idempotent: keys and
    pool codes are fixed, so a second run shows the same redemptions."""
    if not config.rewards:
        return ["rewards (simulated): none configured in loyalty.yaml"]
    moment = now or datetime.now(UTC)
    reward = min(
        (r for r in config.rewards if not r.tiers), key=lambda r: r.points, default=None
    ) or min(config.rewards, key=lambda r: r.points)
    with transaction(store) as session:
        import_pool_codes(
            session, reward.name, [f"DEMO-{reward.name.upper()[:12]}-{n:03d}" for n in range(50)]
        )
        total = func.sum(Ledger.points)
        richest = session.execute(
            select(Ledger.customer_id, total)
            .group_by(Ledger.customer_id)
            .having(total >= reward.points)
            .order_by(total.desc(), Ledger.customer_id)
            .limit(customers)
        ).all()
    redeemer = Redeemer(store, config, None, clock=lambda: moment)
    lines = [f"rewards (simulated, demo code pool): {reward.name} for {reward.points} points"]
    issued = []
    for customer_id, points in richest:
        view = redeemer.redeem(customer_id, reward.name, f"demo:{customer_id}:{reward.name}")
        issued.append((customer_id, view))
        lines.append(
            f"  customer {customer_id}: {points} points -> code {view.code} "
            f"({view.status.value}, until {view.expires_at:%Y-%m-%d})"
        )
    with transaction(store) as session:
        for customer_id, view in issued[:2]:
            order = session.scalars(
                select(Order).where(Order.customer_id == customer_id).order_by(Order.id.desc())
            ).first()
            if order is not None and view.code:
                if mark_used(session, [(order.id, [view.code], moment)]):
                    lines.append(f"  code {view.code} used on order {order.name} (simulated)")
        counts = dict(
            session.execute(
                select(Redemption.status, func.count()).group_by(Redemption.status)
            ).all()
        )
    lines.append(
        f"  codes issued {sum(counts.values())}, used "
        f"{counts.get(RedemptionStatus.USED, 0)}, still to use "
        f"{counts.get(RedemptionStatus.ISSUED, 0)}"
    )
    if not issued:
        lines.append("  no customer has enough points yet")
    return lines
