"""WooCommerce refunds: a partial refund leaves the order's status as it was and only adds to
its ``refunds``; each refund id must count once (recorded, its share of points reversed,
``cancel_on: [order.refunded]`` applied), whatever order and how often the webhooks come in.

Orders go through intake as WooCommerce signs and sends them (REST v3 JSON, from the
fixture), then through the processing the DAG runs.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from journeys import at, put, touchpoints
from sqlalchemy import select

from postpurchase.campaigns.config import CampaignConfig
from postpurchase.inbox import InboxEntry, add_to_inbox
from postpurchase.loyalty.config import load_loyalty_config
from postpurchase.platforms import woocommerce
from postpurchase.processing.batch import InboxSummary
from postpurchase.processing.followups import plan_assumed_deliveries
from postpurchase.settings import PROJECT_ROOT, Settings
from postpurchase.store.database import transaction
from postpurchase.store.models import LoyaltyLedgerEntry, Order, OrderRefund
from postpurchase.webhooks.intake import woocommerce_entry
from postpurchase.webhooks.signatures import base64_digest

ORDER = Path(__file__).resolve().parents[1] / "fixtures" / "woocommerce" / "order_processing.json"
SECRET = "wc-secret-refunds-5Kd1"
PAID = "2026-11-21T10:03:10"  # the fixture: processing (paid) since this time, GMT
COMPLETED = "2026-11-23T16:20:00"
# 39.91 subtotal: 39 points, plus the first-order bonus of the shipped loyalty file.
AWARD = 139


class WooShop:
    """Sends order webhooks through WooCommerce intake (signature, normalising, dedupe)."""

    def __init__(self, store, db_url: str) -> None:
        self.store = store
        self.settings = Settings(database_url=db_url, woocommerce_webhook_secret=SECRET)

    def send(self, order: dict[str, Any], *, webhook_id: str = "14") -> bool:
        """Deliver ``order`` as an ``order.updated`` webhook; False for a duplicate."""
        body = json.dumps(order).encode()
        headers = {
            "content-type": "application/json",
            "x-wc-webhook-source": "https://shop.example.de/",
            "x-wc-webhook-topic": "order.updated",
            "x-wc-webhook-id": webhook_id,
            "x-wc-webhook-signature": base64_digest(body, SECRET),
        }
        # Received a minute after the shop modified the order (the story's dates lie ahead of
        # the real clock, and intake refuses times in its future).
        modified = datetime.fromisoformat(order["date_modified_gmt"]).replace(tzinfo=UTC)
        entry = woocommerce_entry(self.settings, headers, body, modified + timedelta(minutes=1))
        assert isinstance(entry, InboxEntry)
        with transaction(self.store) as session:
            return add_to_inbox(session, entry) is not None


def _local(gmt: str) -> str:
    """The shop's local time WooCommerce sends beside each GMT one (Köln, in winter)."""
    return (datetime.fromisoformat(gmt) + timedelta(hours=1)).isoformat()


def woo_order(status: str, modified: str, *refunds: tuple[int, str, str]) -> dict[str, Any]:
    """The fixture order with ``status`` as of ``modified`` (GMT), listing ``refunds``
    (id, amount, reason) newest first and negative, as WooCommerce does."""
    order = copy.deepcopy(json.loads(ORDER.read_text()))
    order.update(status=status, date_modified_gmt=modified, date_modified=_local(modified))
    if status in ("completed", "refunded"):
        order.update(date_completed_gmt=COMPLETED, date_completed=_local(COMPLETED))
    order["refunds"] = [
        {"id": refund_id, "reason": reason, "total": f"-{amount}"}
        for refund_id, amount, reason in sorted(refunds, reverse=True)
    ]
    return order


@pytest.fixture
def shop(store, db_url) -> WooShop:
    return WooShop(store, db_url)


@pytest.fixture
def drain(drain):
    # The shipped loyalty file, for a shop that sells in euros like the fixture's.
    loyalty = load_loyalty_config(PROJECT_ROOT / "config" / "loyalty.yaml")
    loyalty = loyalty.model_copy(update={"shop_currency": "EUR"})

    def run(now: str, config: CampaignConfig | None = None) -> InboxSummary:
        return drain(now, config, loyalty=loyalty)

    return run


def _state(store) -> dict[str, Any]:
    """The order, its refunds, its ledger rows and its touchpoints, as plain values."""
    with store() as session:
        order = session.scalars(select(Order).where(Order.external_id == "8127")).one()
        refunds = session.execute(
            select(
                OrderRefund.external_id,
                OrderRefund.amount,
                OrderRefund.currency,
                OrderRefund.refunded_at,
            ).order_by(OrderRefund.id)
        ).all()
        ledger = session.execute(
            select(LoyaltyLedgerEntry.kind, LoyaltyLedgerEntry.points, LoyaltyLedgerEntry.cause)
            .where(LoyaltyLedgerEntry.order_id == order.id)
            .order_by(LoyaltyLedgerEntry.id)
        ).all()
        state = {
            "status": order.financial_status,
            "fulfilled_at": order.fulfilled_at,
            "refunded_amount": order.refunded_amount,
            "refunds": [tuple(r) for r in refunds],
            "ledger": [(kind.value, points, _without_id(cause)) for kind, points, cause in ledger],
        }
    return {**state, "touchpoints": touchpoints(store)}


def _without_id(cause: str) -> str:
    """A ledger cause without the order's id (``award:order:7`` is ``award:order``)."""
    parts = cause.split(":")
    return ":".join(parts[:2] + parts[3:])


def _completed_and_delivered(shop, drain, store, campaigns) -> None:
    """Paid, then completed; ten days later assumed delivered, with its messages planned."""
    assert shop.send(woo_order("processing", PAID))
    assert shop.send(woo_order("completed", COMPLETED))
    drain("2026-11-23T16:30:00+00:00")
    with transaction(store) as session:
        assumed, _ = plan_assumed_deliveries(
            session, campaigns, now=at("2026-12-03T17:00:00+00:00"), shop_zone=ZoneInfo("UTC")
        )
    assert assumed == 1


def _statuses(state: dict[str, Any]) -> list[tuple[str, int, str, str | None]]:
    return [(c, step, status, reason) for c, step, _, _, status, reason in state["touchpoints"]]


REFUNDED = "cancelled by order.refunded"
PARTIAL = woo_order("completed", "2026-12-05T09:30:00", (2001, "10.00", "Cup arrived broken"))


def test_a_partial_refund_of_a_completed_order_is_an_order_refunded(shop, drain, store, campaigns):
    _completed_and_delivered(shop, drain, store, campaigns)

    assert shop.send(PARTIAL)
    summary = drain("2026-12-05T10:00:00+00:00")

    state = _state(store)
    # The status stays completed; the refund is recorded once, dated by its webhook.
    assert (state["status"], state["fulfilled_at"]) == ("completed", at(COMPLETED + "Z"))
    assert state["refunds"] == [("2001", Decimal("10.00"), "EUR", at("2026-12-05T09:30:00Z"))]
    assert state["refunded_amount"] == Decimal("10.00")
    # 10.00 of 53.40 takes back that share of the award: 139 * 10 / 53.40 = 26.03, down.
    assert state["ledger"] == [
        ("award", AWARD, "award:order"),
        ("reversal", -26, "reversal:refund:2001"),
    ]
    # cancel_on: [order.refunded] applies: the pending review request and check-in are moot.
    assert _statuses(state) == [
        ("delivery_checkin", 0, "cancelled", REFUNDED),
        ("points_earned", 0, "planned", None),
        ("review_request", 0, "cancelled", REFUNDED),
        ("review_request", 1, "cancelled", REFUNDED),
    ]
    assert (summary.refunds, summary.points, summary.cancelled) == (1, -26, 3)
    assert dict(summary.events) == {"order.fulfilled": 1}


def test_the_same_refund_again_changes_nothing(shop, drain, store, campaigns):
    _completed_and_delivered(shop, drain, store, campaigns)
    assert shop.send(PARTIAL)
    drain("2026-12-05T10:00:00+00:00")
    before = _state(store)

    # WooCommerce retries with a new delivery id: the same order state is a duplicate.
    assert not shop.send(PARTIAL)
    # A second webhook on the same topic stores it again; a later update (a note added)
    # lists the same refund; an update older than the refund, late, lists none.
    assert shop.send(PARTIAL, webhook_id="15")
    noted = woo_order("completed", "2026-12-06T08:00:00", (2001, "10.00", "Cup arrived broken"))
    assert shop.send(noted)
    assert shop.send(woo_order("completed", "2026-11-30T12:00:00"))
    summary = drain("2026-12-06T09:00:00+00:00")

    assert sum(summary.events.values()) == 3
    assert (summary.refunds, summary.points, summary.cancelled, summary.planned) == (0, 0, 0, 0)
    assert _state(store) == before


@pytest.mark.parametrize("runs", ["one run per webhook", "one batch", "newest first"])
def test_two_partial_refunds_then_a_full_refund_reverse_exactly_the_award(shop, drain, store, runs):
    first = (2001, "10.00", "Cup arrived broken")
    second = (2002, "5.00", "Late delivery")
    # Setting the order to refunded makes WooCommerce refund what is left, in a refund of its own.
    rest = (2003, "38.40", "Order fully refunded.")
    webhooks = [
        woo_order("processing", PAID),
        woo_order("processing", "2026-11-22T09:00:00", first),
        woo_order("processing", "2026-11-22T11:30:00", first, second),
        woo_order("refunded", "2026-11-24T08:15:00", first, second, rest),
    ]
    if runs == "newest first":
        webhooks.reverse()
    for n, webhook in enumerate(webhooks):
        assert shop.send(webhook)
        if runs != "one batch":
            drain(f"2026-11-25T0{n}:00:00+00:00")
    drain("2026-11-25T09:00:00+00:00")

    state = _state(store)
    assert [(r[0], r[1]) for r in state["refunds"]] == [
        ("2001", Decimal("10.00")),
        ("2002", Decimal("5.00")),
        ("2003", Decimal("38.40")),
    ]
    assert state["refunded_amount"] == Decimal("53.40")  # the order's total, counted once
    assert state["status"] == "refunded"
    # Each refund takes its own share (10 and 5 of 53.40); the one that completes the
    # refund takes what is left, so the order ends at zero points.
    assert state["ledger"] == [
        ("award", AWARD, "award:order"),
        ("reversal", -26, "reversal:refund:2001"),
        ("reversal", -13, "reversal:refund:2002"),
        ("reversal", -100, "reversal:refund:2003"),
    ]


def test_a_webhook_that_completes_the_order_and_adds_a_refund_does_both(
    shop, drain, store, campaigns
):
    assert shop.send(woo_order("processing", PAID))
    drain("2026-11-21T11:00:00+00:00")

    # Completed and partly refunded in one save: one webhook, both changes.
    assert shop.send(woo_order("completed", COMPLETED, (2001, "10.00", "Cup arrived broken")))
    summary = drain("2026-11-23T17:00:00+00:00")

    state = _state(store)
    assert dict(summary.events) == {"order.fulfilled": 1}
    assert (state["status"], state["fulfilled_at"]) == ("completed", at(COMPLETED + "Z"))
    assert state["refunds"] == [("2001", Decimal("10.00"), "EUR", at(COMPLETED + "Z"))]
    assert state["ledger"][1:] == [("reversal", -26, "reversal:refund:2001")]
    # The fulfilment still leads to an assumed delivery; the refund keeps the review request
    # (cancel_on: order.refunded) from being planned.
    with transaction(store) as session:
        assumed, counts = plan_assumed_deliveries(
            session, campaigns, now=at("2026-12-03T17:00:00+00:00"), shop_zone=ZoneInfo("UTC")
        )
    assert assumed == 1
    assert counts.skipped["review_request: order.refunded already happened"] == 1
    assert [c for c, *_ in _state(store)["touchpoints"]] == ["points_earned"]


def test_a_new_refund_starts_order_refunded_campaigns_once(shop, drain, store):
    config = CampaignConfig.model_validate(
        {
            "campaigns": [
                {
                    "id": "refund_sorry",
                    "description": "A day after a refund, say sorry.",
                    "trigger": "order.refunded",
                    "delay": "1d",
                    "channels": ["email"],
                    "template": "refund_sorry",
                    "consent": "transactional",
                }
            ]
        }
    )
    assert shop.send(woo_order("processing", PAID))
    assert shop.send(woo_order("processing", "2026-11-22T09:00:00", (2001, "10.00", "")))
    drain("2026-11-22T10:00:00+00:00", config)
    second = woo_order("processing", "2026-11-23T09:00:00", (2001, "10.00", ""), (2002, "5", ""))
    assert shop.send(second)
    drain("2026-11-23T10:00:00+00:00", config)

    # Planned from the first refund; the second one finds it planned already.
    assert [(c, due, status) for c, _, _, due, status, _ in touchpoints(store)] == [
        ("refund_sorry", at("2026-11-23T09:00:00Z"), "planned")
    ]


def test_an_inbox_row_stored_before_refunds_were_listed_is_still_processed(shop, drain, store):
    assert shop.send(woo_order("processing", PAID))
    drain("2026-11-21T11:00:00+00:00")
    # How a full refund was stored before events listed the order's refunds: one refund, the
    # sum of them all, under the newest refund's id.
    event = woocommerce.normalise(
        "order.updated", woo_order("refunded", "2026-11-24T08:15:00", (2003, "53.40", ""))
    )
    assert event is not None
    payload = event.as_payload()
    del payload["order"]["refunds"]
    payload["refund"] = {"external_id": "2003", "amount": "53.40", "currency": "EUR"}
    put(store, payload, source="woocommerce", shop="https://shop.example.de/")  # the same site

    summary = drain("2026-11-24T09:00:00+00:00")

    state = _state(store)
    assert (summary.failed, summary.refunds) == (0, 1)
    assert state["refunds"] == [("2003", Decimal("53.40"), "EUR", at("2026-11-24T08:15:00Z"))]
    assert state["ledger"][1:] == [("reversal", -AWARD, "reversal:refund:2003")]


def test_an_order_set_to_refunded_before_its_refund_is_listed(shop, drain, store, campaigns):
    assert shop.send(woo_order("processing", PAID))
    assert shop.send(woo_order("completed", COMPLETED))
    # A webhook of the status change that lists no refund yet (WooCommerce adds the refund
    # for what is left right after).
    assert shop.send(woo_order("refunded", "2026-11-24T08:15:00"))
    drain("2026-11-24T08:20:00+00:00")
    with transaction(store) as session:
        _, counts = plan_assumed_deliveries(
            session, campaigns, now=at("2026-12-03T17:00:00+00:00"), shop_zone=ZoneInfo("UTC")
        )
    # No refund recorded, but the order is refunded: nothing to plan after its delivery.
    assert _state(store)["refunded_amount"] == 0
    assert counts.planned == 0
    assert counts.skipped["review_request: order.refunded already happened"] == 1

    rest = (2003, "53.40", "Order fully refunded.")
    assert shop.send(woo_order("refunded", "2026-12-04T10:00:00", rest))
    drain("2026-12-04T10:05:00+00:00")

    state = _state(store)
    # The status alone took the award back; the refund listed later is recorded, nothing more.
    assert state["ledger"] == [
        ("award", AWARD, "award:order"),
        ("reversal", -AWARD, "reversal:refunded"),
    ]
    assert state["refunds"] == [("2003", Decimal("53.40"), "EUR", at("2026-12-04T10:00:00Z"))]
