"""Negative answers: feedback.negative, service_recovery, and the support team told once.

NPS 0-6, a check-in of 1-2 and a 1-2 star review each emit one ``feedback.negative`` and one
notification per configured way; a fake helpdesk on 127.0.0.1 receives exactly one per
answer, however often the sending task runs or fails (SQLite and PostgreSQL).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from fakes.http_fake import Fault
from sqlalchemy import select
from survey_links import SECRET, SENT, WEBHOOK_SECRET, link

from postpurchase.campaigns.config import load_campaigns
from postpurchase.processing.drain import process_inbox
from postpurchase.settings import PROJECT_ROOT, load_settings
from postpurchase.store.models import InboxEvent, Touchpoint
from postpurchase.surveys.models import NotificationStatus, SupportNotification
from postpurchase.surveys.notify import send_due_notifications


class RecordingEmail:
    """The email channel, as the dispatcher would get it: keeps what it was asked to send."""

    name = "recording"

    def __init__(self) -> None:
        self.sent = []

    def send_email(self, message):
        self.sent.append(message)
        return f"msg-{len(self.sent)}"


def _three_negative_answers(client, answered):
    """A detractor's NPS with words, a 1 on the check-in, and a 2-star review."""
    nps = link("nps", answered["customer"], answered["nps_survey"], 3)
    csat = link("survey", answered["customer"], answered["delivery_checkin"], 1)
    review = link("review", answered["customer"], answered["review_request"])
    assert (
        client.post(
            nps, data={"score": "3", "comment": "Sweater shrank after one wash."}
        ).status_code
        == 200
    )
    assert client.post(csat, data={"score": "1"}).status_code == 200
    fields = dict(
        re.findall(r'type="hidden" name="(product-\d+)" value="([^"]+)"', client.get(review).text)
    )
    answer = {**fields, "rating-0": "2", "body-0": "Pilling after a week."}
    assert client.post(review, data=answer).status_code == 200


def _send(store, email, now):
    return send_due_notifications(
        store,
        load_settings(),
        load_settings(),
        now=now,
        email_sender=lambda: email,
        webhook_secret=WEBHOOK_SECRET.encode(),
    )


def test_each_negative_answer_emits_feedback_negative_once(client, store, answered):
    _three_negative_answers(client, answered)
    # the same detractor changes 3 to 1, still negative: nothing more
    client.post(link("nps", answered["customer"], answered["nps_survey"], 1), data={"score": "1"})

    with store() as session:
        events = (
            session.execute(
                select(InboxEvent.dedupe_key).where(InboxEvent.event_type == "feedback.negative")
            )
            .scalars()
            .all()
        )
        keys = set(session.execute(select(SupportNotification.key)).scalars())
    assert sorted(events) == sorted(
        [
            f"feedback-negative:nps:{answered['nps_survey']}",
            f"feedback-negative:csat:{answered['delivery_checkin']}",
            f"feedback-negative:review:{_review_id(store)}",
        ]
    )
    assert len(keys) == 6 and {k.split(":")[0] for k in keys} == {"email", "webhook"}


def _review_id(store):
    from postpurchase.reviews.models import ProductReview

    with store() as session:
        return session.execute(select(ProductReview.id)).scalar_one()


def test_promoters_and_good_scores_tell_no_one(client, store, answered):
    client.post(link("nps", answered["customer"], answered["nps_survey"], 7), data={"score": "7"})
    client.post(link("survey", answered["customer"], answered["delivery_checkin"], 3))

    with store() as session:
        assert session.execute(select(SupportNotification)).first() is None
        assert session.execute(select(InboxEvent)).first() is None


def test_the_helpdesk_gets_exactly_one_notification_per_answer_whatever_is_retried(
    client, store, answered, helpdesk
):
    _three_negative_answers(client, answered)
    email = RecordingEmail()
    helpdesk.fail_next(Fault(status=503))  # the helpdesk is briefly down for the first one
    now = SENT + timedelta(days=30)

    first = _send(store, email, now)
    retried_at_once = _send(store, email, now)  # the task retried: nothing is due again yet
    later = _send(store, email, now + timedelta(minutes=1))
    again = _send(store, email, now + timedelta(hours=1))

    assert (first.sent, first.retrying) == (5, 1)
    assert retried_at_once.sent == 0 and later.sent == 1 and again.sent == 0
    assert len(helpdesk.requests) == 4  # three accepted, one refused with 503 and retried
    assert sorted(n["key"] for n in helpdesk.accepted) == sorted(
        [
            f"nps:{answered['nps_survey']}",
            f"csat:{answered['delivery_checkin']}",
            f"review:{_review_id(store)}",
        ]
    )
    nps = next(n for n in helpdesk.accepted if n["kind"] == "nps")
    assert nps["comment"] == "Sweater shrank after one wash." and nps["score"] == 3
    assert nps["customer"]["email"] == "chloe.martin@example.org"
    assert nps["order"]["name"] == "#1042"
    assert len(email.sent) == 3
    assert {m.to_email for m in email.sent} == {"care@northline-outdoor.example"}
    assert any("Sweater shrank after one wash." in m.text for m in email.sent)
    with store() as session:
        statuses = set(session.execute(select(SupportNotification.status)).scalars())
    assert statuses == {NotificationStatus.SENT}


def test_a_helpdesk_that_never_answers_is_given_up_after_the_last_attempt(
    app_client, store, answered, helpdesk, monkeypatch
):
    client = app_client(support_notify_attempts=2, support_email=None)
    monkeypatch.setenv("POSTPURCHASE_SUPPORT_NOTIFY_ATTEMPTS", "2")  # for the sending task
    monkeypatch.delenv("POSTPURCHASE_SUPPORT_EMAIL")
    client.post(link("survey", answered["customer"], answered["delivery_checkin"], 2))
    helpdesk.fail_next(Fault(status=500), Fault(status=500))
    now = datetime.now(UTC)

    _send(store, RecordingEmail(), now)
    last = _send(store, RecordingEmail(), now + timedelta(minutes=5))
    after = _send(store, RecordingEmail(), now + timedelta(hours=5))

    assert last.failed == 1 and after.sent == 0 and helpdesk.accepted == []
    with store() as session:
        row = session.execute(select(SupportNotification)).scalar_one()
    assert row.status is NotificationStatus.FAILED and "500" in row.last_error


def test_feedback_negative_plans_the_service_recovery_within_the_hour(client, store, answered):
    client.post(link("survey", answered["customer"], answered["delivery_checkin"], 1))
    with store() as session:
        answered_at = session.execute(select(InboxEvent.occurred_at)).scalar_one()

    summary = process_inbox(
        store,
        load_campaigns(PROJECT_ROOT / "config" / "campaigns.yaml"),
        worker="test",
        shop_zone=ZoneInfo("UTC"),
        clock=lambda: answered_at + timedelta(seconds=30),
    )

    assert summary.failed == 0
    with store() as session:
        planned = (
            session.execute(select(Touchpoint).where(Touchpoint.campaign_id == "service_recovery"))
            .scalars()
            .all()
        )
    assert len(planned) == 1
    assert planned[0].order_id == answered["order"]
    assert answered_at < planned[0].due_at <= answered_at + timedelta(hours=1)
    assert SECRET  # links in the message are signed with the test's secret


def test_the_dag_task_sends_through_the_configured_channels_once(client, store, answered, helpdesk):
    from postpurchase.surveys.notify import notify_support

    client.post(link("nps", answered["customer"], answered["nps_survey"], 0), data={"score": "0"})
    later = datetime.now(UTC) + timedelta(seconds=5)

    first = notify_support(now=later)
    retried = notify_support(now=later)

    assert first == "support notifications: 2 sent, 0 to retry, 0 given up"
    assert retried == "support notifications: 0 sent, 0 to retry, 0 given up"
    assert [n["kind"] for n in helpdesk.accepted] == ["nps"]
    outbox = list((load_settings().var_dir / "outbox").rglob("*"))
    assert any(
        "care@northline-outdoor.example" in p.read_text(errors="ignore")
        for p in outbox
        if p.is_file()
    )


def test_the_demo_answers_through_the_pages_and_the_summary_shows_them(client, store, answered):
    from postpurchase.demo.answers import answer_targets, simulate_answers
    from postpurchase.demo.feedback_summary import feedback_lines

    with store() as session:
        targets = answer_targets(session)
    done = simulate_answers(client, targets, key=SECRET.encode(), seed=3)
    with store() as session:
        lines = feedback_lines(session)

    assert (done.checkins, done.nps, done.reviews, done.refused) == (1, 1, 1, 0)
    assert done.line().startswith("simulated answers (demo only): 1 check-ins, 1 NPS")
    assert lines[0].startswith("reviews: ") and "stars)" in lines[0]
    assert lines[1].startswith("NPS: ") and "from 1 answers" in lines[1]
    assert lines[2].startswith("CSAT (delivery): ")


def test_sent_notifications_lose_the_customers_details_after_retention(client, store, answered):
    from postpurchase.surveys.notify import PAYLOAD_RETENTION, notify_support

    client.post(
        link("nps", answered["customer"], answered["nps_survey"], 2),
        data={"score": "2", "comment": "Never again."},
    )
    sent_at = datetime.now(UTC) + timedelta(seconds=5)
    notify_support(now=sent_at)

    kept = notify_support(now=sent_at + PAYLOAD_RETENTION - timedelta(hours=1))
    later = notify_support(now=sent_at + PAYLOAD_RETENTION + timedelta(hours=1))

    assert "reduced" not in kept and later.endswith("; 2 old payloads reduced")
    with store() as session:
        payloads = session.execute(select(SupportNotification.payload)).scalars().all()
    for payload in payloads:
        assert set(payload) == {"type", "id", "kind", "score", "scale", "answered_at"}
        assert "Never again." not in str(payload) and "chloe" not in str(payload).lower()
