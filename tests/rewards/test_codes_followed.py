"""Codes followed to the till: an order carrying the code marks it used; unused codes expire."""

from __future__ import annotations

from datetime import timedelta

from deliveries import Sender, intake_settings
from fastapi.testclient import TestClient
from genuine import genuine
from sent_statements import statements_sent
from shop_rewards import NOW
from sqlalchemy import select

from postpurchase.loyalty.ledger import balance
from postpurchase.platforms import shopify as shopify_platform
from postpurchase.platforms import woocommerce as woo_platform
from postpurchase.rewards.lifecycle import expire_codes
from postpurchase.rewards.used_codes import mark_used
from postpurchase.store.database import transaction
from postpurchase.store.models import Customer, Order, Redemption, RedemptionStatus
from postpurchase.webhooks.app import create_app


def _redemption(store):
    with transaction(store) as session:
        return session.scalars(select(Redemption)).one()


def test_a_shopify_order_with_the_code_marks_it_used(
    store, deliver, customer_with, shopify_redeemer
):
    view = shopify_redeemer.redeem(customer_with(600), "five_off", "k")
    data = genuine("shopify/admin_api_order_wrapped.json")["order"]
    assert data["discount_codes"] == [{"code": "TENOFF", "amount": "10.00"}]  # genuine shape
    data["discount_codes"] = [{"code": view.code, "amount": "5.00", "type": "fixed_amount"}]
    event = shopify_platform.normalise("orders/create", data, received_at=NOW)
    assert event is not None and event.order is not None
    assert event.order.discount_codes == [view.code]
    deliver(event, source="shopify")
    row = _redemption(store)
    with transaction(store) as session:
        order = session.scalars(select(Order).where(Order.external_id == "450789469")).one()
    assert row.status is RedemptionStatus.USED and row.order_id == order.id
    assert row.used_at == event.occurred_at
    # Used codes neither expire nor come back.
    with transaction(store) as session:
        result = expire_codes(session, config=shopify_redeemer.config, now=NOW + timedelta(days=90))
    assert result.expired == 0 and _redemption(store).status is RedemptionStatus.USED


def test_a_woocommerce_coupon_line_matches_whatever_the_case(
    store, deliver, customer_with, woo_redeemer
):
    view = woo_redeemer.redeem(customer_with(600, source="woocommerce"), "five_off", "k")
    data = genuine("woocommerce/order_processing_docs.json")
    assert data["coupon_lines"] == []
    data["coupon_lines"] = [
        {
            "id": 318,
            "code": view.code.lower(),
            "discount": "5.00",
            "discount_tax": "0.00",
            "meta_data": [],
        }
    ]
    event = woo_platform.normalise("order.updated", data)
    assert event is not None and event.order is not None
    deliver(event, source="woocommerce")
    assert _redemption(store).status is RedemptionStatus.USED


def test_another_code_on_an_order_changes_nothing(store, deliver, customer_with, shopify_redeemer):
    shopify_redeemer.redeem(customer_with(600), "five_off", "k")
    data = genuine("shopify/admin_api_order_wrapped.json")["order"]
    deliver(shopify_platform.normalise("orders/create", data, received_at=NOW), source="shopify")
    assert _redemption(store).status is RedemptionStatus.ISSUED


def test_expired_codes_give_points_back_when_the_catalogue_says_so(
    store, customer_with, shopify_redeemer
):
    keeps = customer_with(400)
    returns = customer_with(500)
    shopify_redeemer.redeem(keeps, "ten_percent", "a")  # valid 30 days, no refund
    shopify_redeemer.redeem(returns, "five_off", "b")  # valid 30 days, refund_on_expiry
    with transaction(store) as session:
        early = expire_codes(session, config=shopify_redeemer.config, now=NOW + timedelta(days=29))
    assert early.expired == 0
    later = NOW + timedelta(days=30, seconds=1)
    with transaction(store) as session:
        result = expire_codes(session, config=shopify_redeemer.config, now=later)
    assert (result.expired, result.refunded_points) == (2, 500)
    with transaction(store) as session:
        assert balance(session, keeps) == 0 and balance(session, returns) == 500
        again = expire_codes(session, config=shopify_redeemer.config, now=later)
    assert again.expired == 0
    with transaction(store) as session:
        statuses = session.scalars(select(Redemption.status)).all()
    assert statuses == [RedemptionStatus.EXPIRED, RedemptionStatus.EXPIRED]


def test_a_generic_event_with_the_code_through_intake_marks_it_used(
    store, db_url, customer_with, shopify_redeemer, drain
):
    view = shopify_redeemer.redeem(customer_with(600, shop="tea-house.example"), "five_off", "k")

    def paid_in(shop: str, event_id: str, order_id: str) -> dict:
        return {
            **paid,
            "id": event_id,
            "shop": shop,
            "order": {**paid["order"], "external_id": order_id},
        }

    paid = {
        "id": "evt_reward_1",
        "shop": "tea-house.example",
        "type": "order.paid",
        "occurred_at": NOW.isoformat(),
        "order": {
            "external_id": "A-2001",
            "currency": "USD",
            "total": "42.00",
            "discount_codes": [view.code],
            "customer": {"external_id": "7208815100001", "email": "grace.hopper1@example.com"},
        },
    }
    with TestClient(create_app(intake_settings(db_url), session_factory=store)) as client:
        # another shop's order with the code first: the code is not that shop's to take
        assert (
            Sender(client)
            .generic(paid_in("coffee-house.example", "evt_other_shop", "A-7"))
            .status_code
            == 202
        )
        assert Sender(client).generic(paid).status_code == 202
    drain()
    redemption = _redemption(store)
    assert redemption.status is RedemptionStatus.USED
    with store() as session:
        used_on = session.get_one(Order, redemption.order_id)
    assert (used_on.shop, used_on.external_id) == ("tea-house.example", "A-2001")


def test_a_batch_of_orders_takes_each_code_once_in_order(store, engine):
    """``mark_used`` for a batch: the earlier order takes a code, a used one stays with its
    order, a code is taken only by an order of its customer's shop; codes not ours cost no
    update."""
    with transaction(store) as session:
        home, away = (
            Customer(source="shopify", shop=shop, external_id=shop or "home")
            for shop in ("", "away.example")
        )
        session.add_all([home, away])
        session.flush()
        orders = [
            Order(source="shopify", shop=shop, external_id=f"o{n}", currency="USD")
            for n, shop in enumerate(["", "", "away.example", ""])
        ]
        session.add_all(orders)
        session.flush()
        statuses = {
            "A-CODE": (home, RedemptionStatus.ISSUED, None),
            "B-Code": (home, RedemptionStatus.EXPIRED, None),
            "C-CODE": (home, RedemptionStatus.USED, orders[3].id),
            "D-CODE": (away, RedemptionStatus.PENDING, None),
        }
        for code, (customer, status, order_id) in statuses.items():
            session.add(
                Redemption(
                    idempotency_key=code,
                    customer_id=customer.id,
                    reward="five_off",
                    points=500,
                    platform="shopify",
                    code=code,
                    status=status,
                    order_id=order_id,
                    expires_at=NOW + timedelta(days=30),
                )
            )
        session.flush()
        at = [NOW + timedelta(minutes=n) for n in range(3)]
        uses = [
            (orders[0].id, [" a-code ", "WELCOME10"], at[0]),
            (orders[1].id, ["A-CODE", "b-code", "c-code", "d-code", ""], at[1]),
            (orders[2].id, ["D-CODE"], at[2]),
        ]
        assert mark_used(session, uses) == 3
        assert mark_used(session, uses) == 0
        with _updates(engine) as updates:
            assert mark_used(session, [(orders[3].id, ["WELCOME10", "a-code"], at[0])]) == 0
        assert updates == []  # the code is used already: nothing left to take
    with store() as session:
        used = {
            r.code: (r.status, r.order_id, r.used_at) for r in session.scalars(select(Redemption))
        }
    assert used == {
        "A-CODE": (RedemptionStatus.USED, orders[0].id, at[0]),
        "B-Code": (RedemptionStatus.USED, orders[1].id, at[1]),
        "C-CODE": (RedemptionStatus.USED, orders[3].id, None),
        "D-CODE": (RedemptionStatus.USED, orders[2].id, at[2]),
    }


def test_an_orders_events_in_one_batch_update_its_codes_once(store, engine):
    """Every event of an order in a batch names its codes: the first takes them, with its
    time; the others send no update (it could change nothing)."""
    with transaction(store) as session:
        customer = Customer(source="shopify", shop="", external_id="home")
        order = Order(source="shopify", shop="", external_id="o1", currency="USD")
        session.add_all([customer, order])
        session.flush()
        session.add(
            Redemption(
                idempotency_key="A-CODE",
                customer_id=customer.id,
                reward="five_off",
                points=500,
                platform="shopify",
                code="A-CODE",
                status=RedemptionStatus.ISSUED,
                expires_at=NOW + timedelta(days=30),
            )
        )
        session.flush()
        placed, paid, fulfilled = (NOW + timedelta(minutes=n) for n in range(3))
        uses = [(order.id, ["a-code", "WELCOME10"], at) for at in (placed, paid, fulfilled)]
        with _updates(engine) as updates:
            assert mark_used(session, uses) == 1
        assert len(updates) == 1
    with store() as session:
        used = session.scalars(select(Redemption)).one()
    assert (used.status, used.order_id, used.used_at) == (RedemptionStatus.USED, order.id, placed)


def _updates(engine):
    """The UPDATE statements sent while inside."""
    return statements_sent(
        engine, lambda statement: statement.lstrip().upper().startswith("UPDATE")
    )
