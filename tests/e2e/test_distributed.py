"""The same engine on Airflow's distributed executor: real processes, Celery, Redis, PostgreSQL,
signed webhooks in through the API server's plugin, messages out through the real SDKs to fake
SendGrid and Twilio servers, and a Celery worker killed in the middle of a dispatch."""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fakes.fake_sendgrid import API_KEY, FakeSendGrid
from fakes.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, MESSAGING_SERVICE_SID, FakeTwilio
from fakes.http_fake import Fault
from project_paths import ROOT
from sqlalchemy import func, select

from postpurchase.demo.feed import Delivery, build_feed
from postpurchase.demo.replay import replay
from postpurchase.demo.summary import work_left
from postpurchase.settings import parse_database_url
from postpurchase.store.database import make_engine, session_factory
from postpurchase.store.models import (
    Channel,
    Touchpoint,
    TouchpointStatus,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.airflow]

SECRET = "e2e-shopify-app-secret"
UNFINISHED = (TouchpointStatus.PLANNED, TouchpointStatus.CLAIMED, TouchpointStatus.SENDING)


@pytest.fixture(scope="module")
def fakes():
    sendgrid, twilio = FakeSendGrid().start(), FakeTwilio().start()
    yield sendgrid, twilio
    sendgrid.stop()
    twilio.stop()


@pytest.fixture(scope="module")
def campaigns(tmp_path_factory) -> Path:
    """The shipped campaigns, with the delivery check-in by email AND SMS, so both providers
    are exercised."""
    text = (ROOT / "config" / "campaigns.yaml").read_text()
    marker = "  - id: delivery_checkin\n"
    head, rest = text.split(marker, 1)
    rest = rest.replace("channels: [email]", "channels: [email, sms]\n    channel_mode: all", 1)
    path = tmp_path_factory.mktemp("config") / "campaigns.yaml"
    path.write_text(head + marker + rest)
    return path


@pytest.fixture(scope="module")
def cluster(cluster_factory, fakes, campaigns):
    sendgrid, twilio = fakes
    return cluster_factory(
        {
            "POSTPURCHASE_SHOPIFY_WEBHOOK_SECRET": SECRET,
            "POSTPURCHASE_CAMPAIGNS_FILE": str(campaigns),
            "POSTPURCHASE_EMAIL_CHANNEL": "sendgrid",
            "POSTPURCHASE_SENDGRID_API_KEY": API_KEY,
            "POSTPURCHASE_SENDGRID_HOST": sendgrid.url,
            "POSTPURCHASE_SMS_CHANNEL": "twilio",
            "POSTPURCHASE_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "POSTPURCHASE_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "POSTPURCHASE_TWILIO_MESSAGING_SERVICE_SID": MESSAGING_SERVICE_SID,
            "POSTPURCHASE_TWILIO_API_BASE_URL": twilio.url,
            "POSTPURCHASE_REDIS_URL": "redis://127.0.0.1:6379/11",
            # small chunks, slow sends and short leases: a crash lands mid-dispatch and is
            # recovered from within the test's time
            "POSTPURCHASE_DISPATCH_CHUNK_SIZE": "20",
            "POSTPURCHASE_DISPATCH_SEND_CONCURRENCY": "2",
            "POSTPURCHASE_CLAIM_LEASE_SECONDS": "30",
            # no SMS quiet hours (an empty span): the texts are sent whatever the time of day
            # the test runs at, instead of deferred to the morning in the customers' zones
            "POSTPURCHASE_QUIET_HOURS_START": "00:00",
            "POSTPURCHASE_QUIET_HOURS_END": "00:00",
        }
    )


@pytest.fixture(scope="module")
def store(cluster):
    engine = make_engine(parse_database_url(cluster.env["POSTPURCHASE_DATABASE_URL"]))
    yield session_factory(engine)
    engine.dispose()


def _sms_consent(feed: list[Delivery], now: datetime) -> list[Delivery]:
    """Every customer of the feed with a phone agrees to texts (Shopify's SMS consent topic),
    so that order texts are due to all of them: the feed itself leaves a third of its
    customers' consent unknown, and those get no text."""
    phones = {
        d.body["customer"]["id"]: d.body["customer"]["phone"]
        for d in feed
        if d.topic == "orders/create" and d.body["customer"]["phone"]
    }
    at = now - timedelta(minutes=1)
    stamp = at.isoformat(timespec="seconds").replace("+00:00", "Z")
    return [
        Delivery(
            "customers_marketing_consent/update",
            f"wh-e2e-sms-{customer_id}-{stamp}",
            f"ev-e2e-sms-{customer_id}-{stamp}",
            at,
            {
                "id": customer_id,
                "phone": phone,
                "sms_marketing_consent": {
                    "state": "subscribed",
                    "opt_in_level": "single_opt_in",
                    "consent_updated_at": stamp,
                    "consent_collected_from": "SHOPIFY",
                },
            },
        )
        for customer_id, phone in sorted(phones.items())
    ]


def _post_feed(cluster, *, orders, id_offset):
    now = datetime.now(UTC)
    feed = build_feed(orders=orders, seed=id_offset, now=now, id_offset=id_offset)
    deliveries = [json.loads(d.to_json()) for d in feed + _sms_consent(feed, now)]
    answers = replay(
        deliveries, url=f"{cluster.base_url}/postpurchase/webhooks/shopify", secret=SECRET
    )
    assert answers == Counter({202: len(deliveries)})


def _work_left(store):
    with store() as session:
        return work_left(session, datetime.now(UTC))


def _drain(cluster, store, *, timeout=420):
    """Until the inbox is processed and nothing due is left unsent; DAGs are nudged over REST
    so the test need not wait for their minute schedules."""
    deadline = time.monotonic() + timeout
    nudged: dict[str, float] = {}
    while time.monotonic() < deadline:
        inbox, due = _work_left(store)
        if inbox == 0 and due == 0:
            return
        dag_id = "process_purchase_events" if inbox else "dispatch_touchpoints"
        if time.monotonic() - nudged.get(dag_id, -99) > 40:
            cluster.trigger(dag_id)
            nudged[dag_id] = time.monotonic()
        time.sleep(3)
    raise AssertionError(
        f"work left after {timeout} s (inbox, due) = {_work_left(store)}\n"
        + cluster.log_tail("scheduler")
    )


def _wait_for_note(cluster, dag_id, wanted, *, timeout=120):
    deadline = time.monotonic() + timeout
    while not any(wanted(note) for note in cluster.notes(dag_id)):
        assert time.monotonic() < deadline, (
            f"no run of {dag_id} has the note: {cluster.notes(dag_id)}"
        )
        time.sleep(2)


def _outcomes(store):
    with store() as session:
        return session.execute(
            select(
                Touchpoint.id, Touchpoint.channel, Touchpoint.status, Touchpoint.provider_message_id
            )
        ).all()


def _assert_each_message_once(store, sendgrid, twilio):
    rows = _outcomes(store)
    emails = Counter(int(m["custom_args"]["touchpoint_id"]) for m in sendgrid.sent)
    assert max(emails.values(), default=1) == 1, "an email went out twice"
    sms_sids = [m["sid"] for m in twilio.sent]
    assert len(sms_sids) == len(set(sms_sids))

    sent = [r for r in rows if r.status is TouchpointStatus.SENT]
    unknown = [r for r in rows if r.status is TouchpointStatus.UNKNOWN]
    # every touchpoint recorded sent reached its provider exactly once ...
    for row in sent:
        if row.channel is Channel.EMAIL:
            assert emails[row.id] == 1, row
        else:
            assert row.provider_message_id in sms_sids, row
    # ... and nothing reached a provider that is not recorded sent, except a message whose
    # outcome is honestly unknown (its worker died while handing it over)
    unknown_ids = {r.id for r in unknown}
    assert set(emails) <= {r.id for r in sent if r.channel is Channel.EMAIL} | unknown_ids
    sent_sms = [r for r in sent if r.channel is Channel.SMS]
    unknown_sms = [r for r in unknown if r.channel is Channel.SMS]
    assert len(sent_sms) <= len(sms_sids) <= len(sent_sms) + len(unknown_sms)
    return sent, unknown


def test_webhooks_become_messages_exactly_once_even_when_a_worker_dies(cluster, store, fakes):
    sendgrid, twilio = fakes

    # 1. Signed webhooks through the API server's plugin become messages at both providers.
    _post_feed(cluster, orders=25, id_offset=0)
    _drain(cluster, store)
    sent, unknown = _assert_each_message_once(store, sendgrid, twilio)
    assert unknown == []
    assert {r.channel for r in sent} == {Channel.EMAIL, Channel.SMS}
    assert len(sendgrid.sent) + len(twilio.sent) == len(sent)
    # ops see each run's counts as its note in the UI (written by each run's last task, which
    # may still be running when the work itself is done)
    _wait_for_note(
        cluster, "process_purchase_events", lambda n: "processed" in n and "order.paid" in n
    )
    _wait_for_note(cluster, "dispatch_touchpoints", lambda n: " sent " in n)

    # 2. More orders, a slow provider, and the Celery worker SIGKILLed mid-dispatch.
    before = len(sendgrid.requests)
    sendgrid.fail_next(*[Fault(delay=1.0)] * 500)
    _post_feed(cluster, orders=60, id_offset=100_000)
    deadline = time.monotonic() + 240
    triggered = -99.0
    # polled closely: at eight sends in flight the whole dispatch takes only seconds
    while len(sendgrid.requests) < before + 6:
        assert time.monotonic() < deadline, "the dispatch never started"
        if time.monotonic() - triggered > 40 and _work_left(store)[0] == 0:
            cluster.trigger("dispatch_touchpoints")
            triggered = time.monotonic()
        time.sleep(0.1)
    cluster.kill("worker-1")
    mid_crash = len(sendgrid.requests) - before
    assert _work_left(store)[1] > 0, "the crash did not land in the middle of the dispatch"
    cluster.start("worker-2", "celery", "worker", "--concurrency", "4")

    _drain(cluster, store)
    sent, unknown = _assert_each_message_once(store, sendgrid, twilio)
    assert len(sendgrid.requests) - before > mid_crash, "nothing was sent after the crash"
    # at most what the dead worker was handing over can be unknown: nothing else was lost
    assert len(unknown) <= 20
    with store() as session:
        stuck = session.scalar(
            select(func.count())
            .select_from(Touchpoint)
            .where(Touchpoint.status.in_(UNFINISHED), Touchpoint.due_at <= datetime.now(UTC))
        )
    assert stuck == 0
