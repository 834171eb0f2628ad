"""Click links: signed, bound to touchpoint and destination, counted, then redirected."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fakes.fake_sendgrid import EventSigner
from fastapi.testclient import TestClient
from outcome_data import T0, customers, order, touchpoint
from sqlalchemy import select

from postpurchase.campaigns.config import CampaignConfig
from postpurchase.exceptions import InvalidInput
from postpurchase.messages.rendering import RenderedEmail, RenderedSms
from postpurchase.messages.sms_segments import count_segments
from postpurchase.messages.tokens import LinkClaim, sign, signing_key, verify
from postpurchase.outcomes.clicks import Click, click_token, read_click, track_links
from postpurchase.outcomes.refresh import refresh_outcomes
from postpurchase.settings import load_settings
from postpurchase.store.database import transaction
from postpurchase.store.models import AttributedOrder, MessageEvent, TouchpointOutcome
from postpurchase.webhooks.app import create_app

KEY = b"click-test-key"
BASE = "https://hooks.shop.example.com/pp"
REVIEW = "https://shop.example.com/products/merino?utm=a&amp;b=1#review"


def _email() -> RenderedEmail:
    return RenderedEmail(
        subject="How is it?",
        html=(
            f'<p><a href="{REVIEW}" style="x">Write a review</a> or '
            '<a href="https://shop.example.com/">visit us</a>. '
            f'<a href="{BASE}/u/abc.def">Unsubscribe</a> <a href="mailto:help@shop.example">'
            "help</a></p>"
        ),
        text=f"Write a review: {REVIEW.replace('&amp;', '&')}.\nUnsubscribe: {BASE}/u/abc.def\n",
    )


def test_links_are_rewritten_through_c_and_our_own_links_are_left_alone():
    tracked = track_links(_email(), key=KEY, base_url=BASE, touchpoint_id=42)
    assert isinstance(tracked, RenderedEmail)
    assert f'href="{BASE}/u/abc.def"' in tracked.html
    assert 'href="mailto:help@shop.example"' in tracked.html
    assert "shop.example.com/products" not in tracked.html + tracked.text
    assert tracked.text.endswith(f"Unsubscribe: {BASE}/u/abc.def\n")
    tokens = [part.split('"')[0] for part in tracked.html.split(f"{BASE}/c/")[1:]]
    clicks = [read_click(KEY, token) for token in tokens]
    review_url = "https://shop.example.com/products/merino?utm=a&b=1#review"
    assert clicks == [Click(42, 0, 2, review_url), Click(42, 1, 2, "https://shop.example.com/")]
    # the text part names the same link (its trailing full stop stays outside the link)
    text_token = tracked.text.split(f"{BASE}/c/")[1].split(".\n")[0]
    assert read_click(KEY, text_token) == clicks[0]


def test_links_written_in_capitals_are_tracked_too():
    email = RenderedEmail(
        subject="s",
        html='<A HREF = "HTTPS://Shop.example.com/x">x</A>',
        text="Shop: HTTPS://Shop.example.com/x!\n",
    )
    tracked = track_links(email, key=KEY, base_url=BASE, touchpoint_id=3)
    assert isinstance(tracked, RenderedEmail)
    token = tracked.html.split(f'HREF = "{BASE}/c/')[1].split('"')[0]
    assert read_click(KEY, token) == Click(3, 0, 1, "HTTPS://Shop.example.com/x")
    assert tracked.text == f"Shop: {BASE}/c/{token}!\n"


def test_sms_links_are_tracked_and_segments_recounted():
    body = "Thanks! Review it: https://shop.example.com/r/9 Reply STOP to opt out."
    sms = RenderedSms(body=body, segments=count_segments(body))
    tracked = track_links(sms, key=KEY, base_url=BASE, touchpoint_id=7)
    assert isinstance(tracked, RenderedSms)
    assert "shop.example.com/r/9" not in tracked.body
    assert tracked.segments == count_segments(tracked.body)


def test_an_address_that_cannot_be_parsed_is_left_as_written():
    # shop data (a product name, a note) can carry text that looks like a link to the pattern
    # but that urlsplit refuses; the message still goes, with its real links tracked
    email = RenderedEmail(
        subject="s",
        html='<a href="http://[::1">old</a> <a href="https://shop.example.com/x">x</a>',
        text="See http://\u2100.example and https://shop.example.com/x\n",
    )
    tracked = track_links(email, key=KEY, base_url=BASE, touchpoint_id=9)
    assert isinstance(tracked, RenderedEmail)
    assert 'href="http://[::1"' in tracked.html
    assert tracked.text.startswith("See http://\u2100.example and " + BASE + "/c/")
    token = tracked.html.split(f'href="{BASE}/c/')[1].split('"')[0]
    assert read_click(KEY, token) == Click(9, 0, 1, "https://shop.example.com/x")


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "ftp://files.example.com/x", "//evil", "http://[::1"]
)
def test_only_http_destinations_are_accepted(url):
    with pytest.raises(InvalidInput):
        read_click(KEY, click_token(KEY, Click(1, 0, 1, url)))


def test_a_click_token_cannot_be_forged_or_used_as_another_link():
    token = click_token(KEY, Click(5, 0, 1, "https://shop.example.com/a"))
    payload, mac = token.split(".")
    other = click_token(KEY, Click(5, 0, 1, "https://evil.example.com/a")).split(".")[0]
    with pytest.raises(InvalidInput):
        read_click(KEY, f"{other}.{mac}")
    with pytest.raises(InvalidInput):
        read_click(b"another-key", token)
    with pytest.raises(InvalidInput):  # a click token is no unsubscribe token
        verify(KEY, token, "unsubscribe")
    with pytest.raises(InvalidInput):  # nor the reverse
        read_click(KEY, sign(KEY, LinkClaim("unsubscribe", 1, 5)))


@pytest.fixture
def client(db_url, monkeypatch):
    monkeypatch.setenv("POSTPURCHASE_PUBLIC_BASE_URL", BASE)
    monkeypatch.setenv("POSTPURCHASE_SIGNING_SECRET", "click-route-secret")
    with TestClient(create_app()) as test_client:
        yield test_client


def test_the_redirect_counts_each_request_and_sends_the_customer_on(client, store):
    with transaction(store) as session:
        (customer,) = customers(session, 1)
        tp = touchpoint(session, customer)
    key = signing_key(load_settings())
    token = click_token(key, Click(tp, 0, 2, "https://shop.example.com/p?x=1"))

    got = client.get(f"/c/{token}", follow_redirects=False, headers={"User-Agent": "Mozilla"})
    head = client.head(f"/c/{token}", follow_redirects=False)
    forged = client.get(f"/c/{token[:-2]}xx", follow_redirects=False)

    assert (got.status_code, got.headers["location"]) == (302, "https://shop.example.com/p?x=1")
    assert head.status_code == 302
    assert forged.status_code == 400 and "location" not in forged.headers
    with store() as session:
        events = session.scalars(select(MessageEvent).order_by(MessageEvent.id)).all()
    assert [(e.provider, e.event, e.touchpoint_id) for e in events] == [
        ("redirect", "click", tp)
    ] * 2
    assert [e.detail["method"] for e in events] == ["GET", "HEAD"]
    assert events[0].detail["user_agent"] == "Mozilla"
    assert (events[0].detail["link"], events[0].detail["links"]) == (0, 2)


def test_an_unsubscribe_through_the_message_link_counts_for_its_campaign(client, store):
    with transaction(store) as session:
        (customer,) = customers(session, 1)
        tp = touchpoint(session, customer)
    token = sign(signing_key(load_settings()), LinkClaim("unsubscribe", customer, tp))

    assert client.post(f"/u/{token}").status_code == 200
    assert client.post(f"/u/{token}").status_code == 200  # twice: counted once

    with store() as session:
        events = session.execute(select(MessageEvent.event, MessageEvent.touchpoint_id)).all()
    assert events == [("unsubscribe", tp)]


def test_sendgrid_open_and_click_events_count_through_their_custom_args(db_url, monkeypatch, store):
    signer = EventSigner()
    monkeypatch.setenv("POSTPURCHASE_SENDGRID_EVENT_PUBLIC_KEY", signer.public_key)
    with transaction(store) as session:
        (customer,) = customers(session, 1)
        tp = touchpoint(session, customer)
        paid = order(session, customer, T0 + timedelta(days=1))

    def sendgrid(kind: str, after: timedelta, n: int, **extra: str) -> dict:
        return {
            "email": "customer1@example.com",
            "timestamp": int((T0 + after).timestamp()),
            "event": kind,
            "sg_event_id": f"sg-{n}",
            "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001",
            "touchpoint_id": str(tp),  # the send's custom_args come back as top-level keys
            "campaign_id": "review_request",
            **extra,
        }

    events = [
        sendgrid("delivered", timedelta(seconds=30), 1),
        sendgrid("click", timedelta(seconds=33), 2, url="https://shop.example.com/p"),
        sendgrid("open", timedelta(hours=1), 3),
        sendgrid("click", timedelta(hours=2), 4, url="https://shop.example.com/p"),
    ]
    body, headers = signer.signed_events(events)
    with TestClient(create_app()) as client:
        answer = client.post("/webhooks/sendgrid/events", content=body, headers=headers)
    assert answer.json() == {"received": 4, "new": 4, "skipped": 0}

    with transaction(store) as session:
        refresh_outcomes(
            session, CampaignConfig(), since=T0 - timedelta(days=1), now=T0 + timedelta(days=2)
        )
    with store() as session:
        outcome = session.get(TouchpointOutcome, tp)
        credited = session.get(AttributedOrder, paid)
    assert (outcome.delivered, outcome.opened, outcome.scanner_clicks) == (True, True, 1)
    assert outcome.first_click_at == T0 + timedelta(hours=2)
    assert credited is not None and credited.touchpoint_id == tp
