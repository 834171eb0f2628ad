"""What each page shows, on the demo shop's month (SQLite and PostgreSQL), and what each action
changes and records."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from postpurchase.pages.auth import csrf_token_for
from postpurchase.store.models import (
    ClaimStatus,
    Customer,
    InboxEvent,
    Order,
    Suppression,
    Touchpoint,
    TouchpointStatus,
)
from postpurchase.store.page_actions import PageAction

pytestmark = pytest.mark.airflow


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([0-9a-f]+)"', html).group(1)


def test_health_shows_lag_failures_unknown_sends_and_dags(as_role, shop, store, tokens):
    with store() as session:
        session.execute(
            InboxEvent.__table__.update()
            .where(InboxEvent.id.in_(select(InboxEvent.id).limit(3).scalar_subquery()))
            .values(status=ClaimStatus.FAILED, last_error="order.paid: no order id")
        )
        tp = session.scalars(select(Touchpoint).limit(1)).one()
        tp.status = TouchpointStatus.UNKNOWN
        session.commit()
    html = as_role("viewer").get("health").text
    assert "order.paid: no order id" in html and "Op role needed" in html
    assert re.search(r'id="unknown-total">.*?<div class="figure warn">1</div>', html, re.S)
    assert "process_purchase_events" in html and "manual__1" in html
    assert "<svg" in html and "Events received per minute" in html

    op = as_role("op")
    page = op.get("health").text
    answer = op.post(
        "health/retry",
        data={
            "reason": "order.paid: no order id",
            "why": "fixed the normaliser",
            "csrf_token": _csrf(page),
        },
        follow_redirects=False,
    )
    assert answer.status_code == 303 and answer.headers["location"].startswith("../health?")
    with store() as session:
        assert session.scalar(select(InboxEvent).where(InboxEvent.status == "failed")) is None
        action = session.scalars(select(PageAction)).one()
    assert (action.user_name, action.action, action.reason) == (
        "op1",
        "retry_failed_events",
        "fixed the normaliser",
    )
    assert action.detail == {"last_error": "order.paid: no order id", "events": 3}
    assert csrf_token_for(tokens["op"]) == _csrf(page)


def test_customer_search_by_email_phone_platform_id_and_order_number(as_role, shop, store):
    with store() as session:
        order = session.scalars(select(Order).where(Order.name.is_not(None)).limit(1)).one()
        customer = session.get(Customer, order.customer_id)
    client = as_role("viewer")
    queries = [
        customer.email.upper(),
        customer.external_id,
        f"shopify:{customer.external_id}",
        order.name,
        order.name.lstrip("#"),
    ]
    if customer.phone:
        queries.append(customer.phone)
    for query in queries:
        html = client.get("customers", params={"q": query}).text
        assert f'href="./customers/{customer.id}"' in html, query
    assert "No customer has" in client.get("customers", params={"q": "nobody@example.org"}).text


def test_customer_page_tells_the_whole_story(as_role, shop, store):
    with store() as session:
        tp = session.scalars(
            select(Touchpoint).where(Touchpoint.status == TouchpointStatus.SKIPPED).limit(1)
        ).one()
        customer = session.get(Customer, tp.customer_id)
    html = as_role("viewer").get(f"customers/{customer.id}").text
    assert customer.email in html
    assert f"{tp.campaign_id} step {tp.step} by {tp.channel}: {tp.reason}" in html
    for section in ("timeline", "orders", "ledger", "tiers", "consent", "suppressions", "answers"):
        assert f'id="{section}"' in html
    assert "Adjust points" not in html  # a viewer reads only


def test_op_adjusts_points_lifts_a_suppression_and_replans_each_recorded(as_role, shop, store):
    with store() as session:
        customer = session.scalars(
            select(Customer).where(Customer.email.is_not(None)).limit(1)
        ).one()
        session.add(
            Suppression(
                channel="email", address=customer.email, reason="unsubscribe", source="sendgrid"
            )
        )
        session.commit()
        suppression_id = session.scalars(select(Suppression.id)).one()
    op = as_role("op")
    here = f"customers/{customer.id}"
    csrf = _csrf(op.get(here).text)

    points = op.post(
        f"{here}/points", data={"points": "150", "why": "goodwill: late parcel", "csrf_token": csrf}
    )
    assert "+150 points" in points.text and 'id="balance"' in points.text
    refused = op.post(
        f"{here}/points", data={"points": "-999999", "why": "typo", "csrf_token": csrf}
    )
    assert "negative balance" in refused.text
    lifted = op.post(
        f"{here}/lift",
        data={
            "suppression_id": suppression_id,
            "why": "customer asked by phone",
            "csrf_token": csrf,
        },
    )
    assert "suppression (unsubscribe) lifted" in lifted.text
    replanned = op.post(
        f"{here}/replan", data={"why": "campaign timing changed", "csrf_token": csrf}
    )
    assert "re-planned:" in replanned.text

    with store() as session:
        actions = session.scalars(select(PageAction).order_by(PageAction.id)).all()
        assert session.get(Suppression, suppression_id).lifted_at is not None
    assert [(a.action, a.user_name, a.subject) for a in actions] == [
        ("adjust_points", "op1", f"customer:{customer.id}"),
        ("lift_suppression", "op1", f"customer:{customer.id}"),
        ("replan", "op1", f"customer:{customer.id}"),
    ]
    assert actions[0].detail["points"] == 150 and actions[1].reason == "customer asked by phone"
    assert "goodwill: late parcel" in replanned.text  # the page lists what was done, by whom


def test_campaigns_show_state_timing_results_and_messages(as_role, shop):
    client = as_role("viewer")
    html = client.get("campaigns").text
    assert 'href="./campaigns/review_request"' in html
    assert "after" in html and "sent" in html  # timing in words, the funnel
    one = client.get("campaigns/review_request").text
    assert "<iframe" in one and 'sandbox=""' in one and "srcdoc=" in one
    assert 'id="touchpoints"' in one and 'id="rules"' in one
    assert client.get("campaigns/no_such_campaign").status_code == 404


def test_kpis_show_cards_and_weekly_charts(as_role, shop):
    html = as_role("viewer").get("kpis").text
    assert 'id="kpi-repeat"' in html and 'id="kpi-points"' in html
    assert html.count("<svg") == 5
    assert "Customers per tier" in html


def test_what_if_replays_an_edited_file_next_to_the_current_one(as_role, shop, settings):
    client = as_role("viewer")  # it changes nothing: any signed-in user may replay
    form = client.get("whatif").text
    current = settings.campaigns_file.read_text(encoding="utf-8")
    assert "review_request" in form  # the current file, ready to edit
    edited = current.replace("id: review_request\n", "id: review_request\n    enabled: false\n", 1)
    assert edited != current
    answer = client.post("whatif", data={"text": edited, "days": "30", "csrf_token": _csrf(form)})
    assert answer.status_code == 200
    row = re.search(r"<tr><td>review_request</td>(.*?)</tr>", answer.text, re.S).group(1)
    cells = re.findall(r'<td class="num[^"]*">([^<]*)</td>', row)
    assert cells[0] == "off" and int(cells[1]) > 0  # off in this file, planned in the current

    broken = client.post(
        "whatif", data={"text": "campaigns:\n  - id: Bad Id\n", "csrf_token": _csrf(form)}
    )
    assert broken.status_code == 422 and "campaigns.yaml (edited):2" in broken.text
    outside = client.post("whatif", data={"path": "../../etc/passwd", "csrf_token": _csrf(form)})
    assert outside.status_code == 422 and "not a file in" in outside.text
    forged = client.post("whatif", data={"text": edited})
    assert forged.status_code == 403


def test_an_invalid_campaign_shows_its_file_line_problem(as_role, settings, tmp_path):
    broken = settings.campaigns_file.read_text(encoding="utf-8").replace(
        "template: review_request", "template: review_requst", 1
    )
    path = tmp_path / "campaigns.yaml"
    path.write_text(broken, encoding="utf-8")
    object.__setattr__(settings, "campaigns_file", path)  # the app reads these settings
    html = as_role("viewer").get("campaigns").text
    row = re.search(r'<a href="./campaigns/review_request">.*?</tr>', html, re.S).group(0)
    assert ">invalid</span>" in row
    assert re.search(r"campaigns\.yaml:\d+: .*review_requst", row)


def test_an_engine_serving_one_shop_offers_no_shop_choice(as_role, shop):
    html = as_role("viewer").get("health").text
    assert 'id="shop-choice"' not in html and 'href="./kpis"' in html
