"""A template that builds too much fails its own touchpoint; hostile URLs leave no link.

Real SendGrid SDK against the fake server, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta

from fakes.fixtures import add_customer, add_order, add_touchpoint

from postpurchase.messages.rendering import DEFAULT_TEMPLATES_DIR, MessageRenderer
from postpurchase.store.claims import claim_due_touchpoints
from postpurchase.store.database import transaction
from postpurchase.store.models import Channel, Touchpoint, TouchpointStatus

NOW = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)


def _run(store, dispatcher):
    with transaction(store) as session:
        ids = claim_due_touchpoints(
            session, worker="w", now=NOW, limit=100, lease=timedelta(minutes=5)
        )
    return dispatcher.run_chunk("w", ids)


def test_a_template_that_builds_too_much_fails_only_its_message(
    store, make_dispatcher, tmp_path, fake_sendgrid
):
    templates = tmp_path / "templates"
    shutil.copytree(DEFAULT_TEMPLATES_DIR, templates)
    (templates / "email" / "setup_tips.html.j2").write_text("<p>{{ 'x' * 10**8 }}</p>")
    with transaction(store) as session:
        customer = add_customer(session)
        order = add_order(session, customer)
        hungry = add_touchpoint(session, customer, order, "setup_tips", Channel.EMAIL, NOW).id
        fine = add_touchpoint(session, customer, order, "delivery_checkin", Channel.EMAIL, NOW).id
    dispatcher = make_dispatcher(NOW)
    dispatcher.renderer = MessageRenderer(templates)

    assert _run(store, dispatcher) == {"sent": 1, "failed": 1}
    with store() as session:
        row = session.get(Touchpoint, hungry)
        assert row.status is TouchpointStatus.FAILED
        assert row.reason.startswith(
            "rendering setup_tips: TemplateTooLarge: template email/setup_tips.html.j2: "
            "operator '*' would build 100000000 items"
        )
        assert session.get(Touchpoint, fine).status is TouchpointStatus.SENT
    assert [int(m["custom_args"]["touchpoint_id"]) for m in fake_sendgrid.sent] == [fine]


def test_a_hostile_product_url_is_sent_without_its_link(store, make_dispatcher, fake_sendgrid):
    with transaction(store) as session:
        customer = add_customer(session)
        order = add_order(session, customer)
        order.items[0].product_url = "javascript:alert(document.domain)"
        order.items[0].image_url = "data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+"
        add_touchpoint(session, customer, order, "review_request", Channel.EMAIL, NOW)

    assert _run(store, make_dispatcher(NOW)) == {"sent": 1}
    [sent] = fake_sendgrid.sent
    html = sent["content"][1]["value"]
    assert "javascript:" not in html and "data:image" not in html
    assert "Merino Wool Crew Sweater" in html
