"""Campaign previews for the campaigns page: every locale's email and SMS, as the recipient
sees them, against the sample order or a real order taken in from a genuine Shopify payload."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from deliveries import Sender, intake_settings
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from postpurchase.campaigns.config import load_campaigns
from postpurchase.dispatch.previews import preview_campaign
from postpurchase.exceptions import InvalidInput
from postpurchase.messages.tokens import verify
from postpurchase.processing.drain import process_inbox
from postpurchase.settings import PROJECT_ROOT
from postpurchase.store.models import Touchpoint
from postpurchase.webhooks.app import create_app

SHIPPED = load_campaigns(PROJECT_ROOT / "config" / "campaigns.yaml")
GENUINE = PROJECT_ROOT / "tests" / "fixtures" / "genuine" / "shopify"


def campaign(campaign_id: str):
    found = SHIPPED.by_id(campaign_id)
    assert found is not None
    return found


def test_the_sample_in_every_locale(shop, renderer):
    previews = preview_campaign(campaign("delivery_checkin"), shop=shop, renderer=renderer)

    assert [p.locale for p in previews] == ["en", "fr"]
    english, french = previews
    assert english.email is not None and french.email is not None
    assert english.email.subject != french.email.subject
    assert "Bonjour" in french.email.text
    assert "<html" in english.email.html.lower() and 'style="' in english.email.html
    assert english.sms is None  # an email-only campaign
    assert english.order_name == french.order_name


def test_sms_with_segments_and_a_variant_subject(shop, renderer):
    [review] = preview_campaign(campaign("review_request"), shop=shop, renderer=renderer)
    assert review.sms is not None
    assert review.sms.encoding in ("GSM-7", "UCS-2") and review.sms.segments >= 1
    assert "STOP" in review.sms.text  # a marketing SMS carries its opt-out line

    points = campaign("points_earned")
    [plain] = preview_campaign(points, shop=shop, renderer=renderer, variant="a")
    [other] = preview_campaign(points, shop=shop, renderer=renderer, variant="b")
    assert plain.email is not None and other.email is not None
    assert other.email.subject == "129 points are yours"
    assert plain.email.subject != other.email.subject
    with pytest.raises(InvalidInput, match="no variant 'c'"):
        preview_campaign(points, shop=shop, renderer=renderer, variant="c")


def test_a_real_order_by_its_number(db_url, store, shop, renderer):
    body = json.loads((GENUINE / "dev_store_aud_orders_create.json").read_bytes())
    now = datetime.fromisoformat(body["updated_at"]).astimezone(UTC) + timedelta(minutes=2)
    # a development store's order is a test order: taken in when the shop asks for them
    settings = intake_settings(db_url, include_test_orders=True)
    app = create_app(settings, session_factory=store, clock=lambda: now)
    with TestClient(app) as client:
        assert Sender(client).shopify("orders/create", body).status_code == 202
    process_inbox(
        store,
        SHIPPED,
        worker="test",
        shop_zone=ZoneInfo("UTC"),
        clock=lambda: now,
    )

    with store() as session:
        touchpoints = session.scalar(select(func.count()).select_from(Touchpoint))
        [preview] = preview_campaign(
            campaign("review_request"),
            shop=shop,
            renderer=renderer,
            session=session,
            order_number="1005",
        )
        with pytest.raises(InvalidInput, match="no order '#999'"):
            preview_campaign(
                campaign("review_request"),
                shop=shop,
                renderer=renderer,
                session=session,
                order_number="#999",
            )
        assert session.scalar(select(func.count()).select_from(Touchpoint)) == touchpoints

    assert preview.order_name == "#1005"
    assert preview.email is not None and preview.sms is not None
    assert "matt" in preview.email.text
    assert "Lazy Rolling Armoured Hoody" in preview.email.text
    assert "matt" in preview.sms.text
    # its links act for nobody: following the preview's unsubscribe link unsubscribes no one
    [token] = re.findall(r"/u/([A-Za-z0-9_.-]+)", preview.email.text)
    assert verify(shop.signing_key, token, "unsubscribe").customer_id == 0
