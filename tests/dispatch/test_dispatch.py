"""Dispatch end to end against the fake providers through the real SDKs (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from fakes.fake_sendgrid import error_body, server_error, too_many_requests
from fakes.fake_twilio import error
from fakes.fixtures import SIGNING_KEY, SPECS, Spec, add_customer, add_order, add_touchpoint
from fakes.http_fake import Fault
from sqlalchemy import select, update

from postpurchase.campaigns.config import load_campaigns
from postpurchase.campaigns.experiments import Variant
from postpurchase.feedback import opt_out_sms, suppress
from postpurchase.messages.context import LoyaltyFigures, loyalty_figures
from postpurchase.outcomes.clicks import read_click
from postpurchase.settings import PROJECT_ROOT
from postpurchase.store.claims import claim_due_touchpoints, mark_sending
from postpurchase.store.database import transaction
from postpurchase.store.models import (
    Channel,
    ConsentState,
    Customer,
    CustomerTier,
    LedgerKind,
    LoyaltyLedgerEntry,
    Suppression,
    Touchpoint,
    TouchpointStatus,
)
from postpurchase.tasks.dispatch import campaign_lookup

NOW = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)  # 15:00 in Paris: no quiet hours


def _run(store, dispatcher, worker="worker-1"):
    """Claim what is due at the dispatcher's clock and run it as one chunk."""
    with transaction(store) as session:
        ids = claim_due_touchpoints(
            session, worker=worker, now=dispatcher.clock(), limit=100, lease=timedelta(minutes=5)
        )
    return dispatcher.run_chunk(worker, ids)


def _touchpoint(store, tp_id):
    with store() as session:
        return session.get(Touchpoint, tp_id)


def _due_checkin(store, channel=Channel.EMAIL):
    """A new customer's order with one delivery check-in on ``channel``, due now."""
    with transaction(store) as session:
        customer = add_customer(session)
        return add_touchpoint(
            session, customer, add_order(session, customer), "delivery_checkin", channel, NOW
        )


def test_email_goes_through_sendgrid_with_feedback_fields(store, make_dispatcher, fake_sendgrid):
    with transaction(store) as session:
        customer = add_customer(session, first_name="Chloé")
        order = add_order(session, customer)
        tp = add_touchpoint(session, customer, order, "review_request", Channel.EMAIL, NOW)

    counts = _run(store, make_dispatcher(NOW))

    assert counts == {"sent": 1}
    [sent] = fake_sendgrid.sent
    row = _touchpoint(store, tp.id)
    assert row.status is TouchpointStatus.SENT
    assert row.provider_message_id == sent["message_id"]
    assert row.sent_at == NOW
    assert sent["personalizations"][0]["to"] == [{"email": customer.email, "name": "Chloé"}]
    assert sent["categories"] == ["review_request", "postpurchase"]
    assert sent["custom_args"] == {"touchpoint_id": str(tp.id), "campaign_id": "review_request"}
    unsubscribe = sent["headers"]["List-Unsubscribe"]
    assert unsubscribe.startswith("<https://hooks.shop.example.com/postpurchase/u/")
    assert sent["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    html = sent["content"][1]["value"]
    assert "Merino Wool Crew Sweater" in html
    # the review link goes through the click redirect, bound to this touchpoint
    clicks = [read_click(SIGNING_KEY, t) for t in re.findall(r"/postpurchase/c/([\w.-]+)", html)]
    assert (tp.id, "https://shop.example.com/products/merino-crew#write-a-review") in {
        (c.touchpoint_id, c.url) for c in clicks
    }


def test_sms_goes_through_twilio_with_status_callback(store, make_dispatcher, fake_twilio):
    with transaction(store) as session:
        customer = add_customer(session)
        order = add_order(session, customer)
        tp = add_touchpoint(session, customer, order, "delivery_checkin", Channel.SMS, NOW)

    assert _run(store, make_dispatcher(NOW)) == {"sent": 1}

    [sent] = fake_twilio.sent
    assert sent["To"] == customer.phone
    assert sent["StatusCallback"].endswith("/webhooks/twilio/status")
    assert "How did it go? Rate 1-5" in sent["Body"]
    assert _touchpoint(store, tp.id).provider_message_id == sent["sid"]


def test_stop_then_due_sms_sends_nothing(store, make_dispatcher, fake_twilio):
    with transaction(store) as session:
        customer = add_customer(session)
        order = add_order(session, customer)
        tp = add_touchpoint(session, customer, order, "delivery_checkin", Channel.SMS, NOW)
        opt_out_sms(session, phone=customer.phone, source="sms:stop", now=NOW)

    assert _run(store, make_dispatcher(NOW)) == {"skipped": 1}

    assert fake_twilio.requests == []
    assert _touchpoint(store, tp.id).reason == "no SMS consent"


def test_twilio_21610_records_the_stop_and_later_sms_are_skipped(
    store, make_dispatcher, fake_twilio
):
    with transaction(store) as session:
        customer = add_customer(session)
        order = add_order(session, customer)
        first = add_touchpoint(session, customer, order, "delivery_checkin", Channel.SMS, NOW)
    fake_twilio.opt_out(customer.phone)  # replied STOP to Twilio, we never heard of it

    assert _run(store, make_dispatcher(NOW)) == {"failed": 1}
    assert "21610" in _touchpoint(store, first.id).reason

    with transaction(store) as session:
        suppression = session.execute(select(Suppression)).scalar_one()
        assert (suppression.channel, suppression.address) == (Channel.SMS, customer.phone)
        assert session.get(Customer, customer.id).sms_consent_state is ConsentState.DENIED
        later = add_touchpoint(
            session, customer, order, "setup_tips", Channel.SMS, NOW + timedelta(days=2)
        )
    assert _run(store, make_dispatcher(NOW + timedelta(days=2))) == {"skipped": 1}
    assert len(fake_twilio.requests) == 1
    assert _touchpoint(store, later.id).status is TouchpointStatus.SKIPPED


def test_quiet_hours_defer_sms_in_each_customers_zone(store, make_dispatcher, fake_twilio):
    late = datetime(2026, 11, 27, 22, 30, tzinfo=UTC)
    zones = {"Europe/Paris": None, "America/New_York": None, "Asia/Tokyo": None}
    with transaction(store) as session:
        for zone in zones:
            customer = add_customer(session, time_zone=zone)
            order = add_order(session, customer)
            zones[zone] = add_touchpoint(
                session, customer, order, "delivery_checkin", Channel.SMS, late
            ).id

    assert _run(store, make_dispatcher(late)) == {"sent": 1, "deferred": 2}

    paris = _touchpoint(store, zones["Europe/Paris"])  # 23:30 local: wait until 09:00
    assert paris.status is TouchpointStatus.PLANNED
    assert paris.due_at == datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
    tokyo = _touchpoint(store, zones["Asia/Tokyo"])  # 07:30 local next day: wait until 09:00
    assert tokyo.due_at == datetime(2026, 11, 28, 0, 0, tzinfo=UTC)
    assert _touchpoint(store, zones["America/New_York"]).status is TouchpointStatus.SENT
    assert [r["To"] for r in fake_twilio.sent] == [
        _customer_phone(store, zones["America/New_York"])
    ]

    # Deferred, not dropped: each goes once its morning comes.
    assert _run(store, make_dispatcher(tokyo.due_at)) == {"sent": 1}
    assert _run(store, make_dispatcher(paris.due_at)) == {"sent": 1}
    assert len(fake_twilio.sent) == 3


def _customer_phone(store, tp_id):
    with store() as session:
        return session.get(Customer, session.get(Touchpoint, tp_id).customer_id).phone


def test_smart_sending_spans_campaigns(store, make_dispatcher, fake_sendgrid):
    with transaction(store) as session:
        recent = add_customer(session)
        long_ago = add_customer(session)
        transactional_only = add_customer(session)
        for customer, campaign, hours in (
            (recent, "win_back", 3),
            (long_ago, "win_back", 20),
            (transactional_only, "delivery_checkin", 1),
        ):
            order = add_order(session, customer)
            add_touchpoint(
                session,
                customer,
                order,
                campaign,
                Channel.EMAIL,
                NOW - timedelta(hours=hours),
                status=TouchpointStatus.SENT,
                sent_at=NOW - timedelta(hours=hours),
            )
        due = {
            c.id: add_touchpoint(
                session, c, add_order(session, c), "review_request", Channel.EMAIL, NOW
            ).id
            for c in (recent, long_ago, transactional_only)
        }

    assert _run(store, make_dispatcher(NOW)) == {"sent": 2, "skipped": 1}

    skipped = _touchpoint(store, due[recent.id])
    assert skipped.status is TouchpointStatus.SKIPPED
    assert skipped.reason.startswith("smart sending")
    assert _touchpoint(store, due[long_ago.id]).status is TouchpointStatus.SENT
    assert _touchpoint(store, due[transactional_only.id]).status is TouchpointStatus.SENT


def test_smart_sending_holds_within_one_chunk(store, make_dispatcher, fake_sendgrid):
    with transaction(store) as session:
        customer = add_customer(session)
        add_touchpoint(
            session, customer, add_order(session, customer), "review_request", Channel.EMAIL, NOW
        )
        add_touchpoint(session, customer, None, "win_back", Channel.EMAIL, NOW)

    assert _run(store, make_dispatcher(NOW)) == {"sent": 1, "skipped": 1}
    assert len(fake_sendgrid.sent) == 1


def test_refunded_order_gets_no_review_request(store, make_dispatcher, fake_sendgrid):
    with transaction(store) as session:
        customer = add_customer(session)
        order = add_order(
            session, customer, refunded_amount=Decimal("134.90"), financial_status="refunded"
        )
        review = add_touchpoint(session, customer, order, "review_request", Channel.EMAIL, NOW)
        checkin = add_touchpoint(session, customer, order, "delivery_checkin", Channel.EMAIL, NOW)

    assert _run(store, make_dispatcher(NOW)) == {"sent": 1, "skipped": 1}

    assert _touchpoint(store, review.id).reason == f"order {order.name} is refunded"
    assert _touchpoint(store, checkin.id).status is TouchpointStatus.SENT


def test_consent_gates_marketing_but_not_transactional_email(store, make_dispatcher):
    with transaction(store) as session:
        customer = add_customer(session, email_marketing_consent_state=ConsentState.DENIED)
        order = add_order(session, customer)
        review = add_touchpoint(session, customer, order, "review_request", Channel.EMAIL, NOW)
        points = add_touchpoint(session, customer, order, "points_earned", Channel.EMAIL, NOW)

    assert _run(store, make_dispatcher(NOW)) == {"sent": 1, "skipped": 1}
    assert _touchpoint(store, review.id).reason == "email marketing consent denied"
    assert _touchpoint(store, points.id).status is TouchpointStatus.SENT


def test_sms_needs_sms_consent_and_marketing_sms_covers_order_texts(
    store, make_dispatcher, fake_twilio
):
    with transaction(store) as session:
        unknown = ConsentState.UNKNOWN
        never = add_customer(
            session, sms_consent_state=unknown, sms_marketing_consent_state=unknown
        )
        subscribed = add_customer(
            session, sms_consent_state=unknown, sms_marketing_consent_state=ConsentState.GRANTED
        )
        refused = add_touchpoint(
            session, never, add_order(session, never), "delivery_checkin", Channel.SMS, NOW
        )
        covered = add_touchpoint(
            session,
            subscribed,
            add_order(session, subscribed),
            "delivery_checkin",
            Channel.SMS,
            NOW,
        )

    assert _run(store, make_dispatcher(NOW)) == {"sent": 1, "skipped": 1}
    assert _touchpoint(store, refused.id).reason == "no SMS consent"
    assert _touchpoint(store, covered.id).status is TouchpointStatus.SENT
    assert [m["To"] for m in fake_twilio.sent] == [subscribed.phone]


def test_suppressed_address_gets_nothing(store, make_dispatcher, fake_sendgrid):
    with transaction(store) as session:
        customer = add_customer(session, email="Bounced@Example.org")
        order = add_order(session, customer)
        tp = add_touchpoint(session, customer, order, "delivery_checkin", Channel.EMAIL, NOW)
        suppress(
            session,
            channel=Channel.EMAIL,
            address="bounced@example.org",
            reason="bounce",
            source="sendgrid",
            now=NOW,
        )

    assert _run(store, make_dispatcher(NOW)) == {"skipped": 1}
    assert _touchpoint(store, tp.id).reason == "suppressed (bounce)"
    assert fake_sendgrid.requests == []


def test_429_then_success_waits_for_the_reset(store, make_dispatcher, fake_sendgrid):
    tp = _due_checkin(store)
    fake_sendgrid.fail_next(too_many_requests(reset_in=7))
    dispatcher = make_dispatcher(NOW)

    assert _run(store, dispatcher) == {"sent": 1}

    assert len(fake_sendgrid.requests) == 2
    [wait] = dispatcher.sleep.waits
    assert 0 <= wait <= 7  # the wait X-RateLimit-Reset asked for, not the default backoff
    assert _touchpoint(store, tp.id).status is TouchpointStatus.SENT


def test_500_is_retried_with_backoff(store, make_dispatcher, fake_sendgrid):
    with transaction(store) as session:
        customer = add_customer(session)
        add_touchpoint(
            session, customer, add_order(session, customer), "delivery_checkin", Channel.EMAIL, NOW
        )
    fake_sendgrid.fail_next(server_error(), server_error())
    dispatcher = make_dispatcher(NOW)

    assert _run(store, dispatcher) == {"sent": 1}
    assert len(fake_sendgrid.requests) == 3
    assert dispatcher.sleep.waits == [0.5, 1.0]


def test_an_outage_sends_the_message_back_for_a_later_round(store, make_dispatcher, fake_sendgrid):
    tp = _due_checkin(store)
    fake_sendgrid.fail_next(*[server_error()] * 4)

    assert _run(store, make_dispatcher(NOW, send_attempts=4)) == {"retrying": 1}
    assert len(fake_sendgrid.requests) == 4
    row = _touchpoint(store, tp.id)
    assert (row.status, row.due_at) == (TouchpointStatus.PLANNED, NOW + timedelta(minutes=5))
    assert row.reason.startswith("round 1: SendGrid 500")
    assert "gave up after 4 attempts" in row.reason
    # nothing is claimed before the next try ...
    assert _run(store, make_dispatcher(NOW + timedelta(minutes=4))) == {}
    # ... and once SendGrid is back, the message goes out once
    assert _run(store, make_dispatcher(NOW + timedelta(minutes=5))) == {"sent": 1}
    assert len(fake_sendgrid.sent) == 1
    assert _touchpoint(store, tp.id).status is TouchpointStatus.SENT


def test_an_outage_longer_than_the_rounds_fails_the_message(store, make_dispatcher, fake_sendgrid):
    tp = _due_checkin(store)
    fake_sendgrid.fail_next(*[server_error()] * 6)

    moment, waits = NOW, []
    for _ in range(3):
        outcome = _run(store, make_dispatcher(moment, send_attempts=2, send_rounds=3))
        row = _touchpoint(store, tp.id)
        if row.status is TouchpointStatus.PLANNED:
            waits.append(row.due_at - moment)
            moment = row.due_at

    assert outcome == {"failed": 1}
    assert waits == [timedelta(minutes=5), timedelta(minutes=10)]  # twice as long each round
    assert len(fake_sendgrid.requests) == 6
    assert row.status is TouchpointStatus.FAILED
    assert row.reason.endswith("gave up after 3 rounds")


def test_400_is_permanent_with_the_providers_message(store, make_dispatcher, fake_sendgrid):
    tp = _due_checkin(store)
    message = "The from address does not match a verified Sender Identity."
    fake_sendgrid.fail_next(Fault(400, error_body(message, "from")))

    assert _run(store, make_dispatcher(NOW)) == {"failed": 1}
    assert len(fake_sendgrid.requests) == 1
    row = _touchpoint(store, tp.id)
    assert row.status is TouchpointStatus.FAILED
    assert row.reason == f"SendGrid 400: from: {message}"


def test_twilio_429_is_retried(store, make_dispatcher, fake_twilio):
    with transaction(store) as session:
        customer = add_customer(session)
        add_touchpoint(
            session, customer, add_order(session, customer), "delivery_checkin", Channel.SMS, NOW
        )
    fake_twilio.fail_next(error(429, 20429, "Too Many Requests"))

    assert _run(store, make_dispatcher(NOW)) == {"sent": 1}
    assert len(fake_twilio.requests) == 2


def test_timeout_is_unknown_and_never_sent_again(store, make_dispatcher, fake_sendgrid):
    tp = _due_checkin(store)
    fake_sendgrid.fail_next(Fault(delay=1.5))

    assert _run(store, make_dispatcher(NOW, timeout=0.3)) == {"unknown": 1}
    assert _touchpoint(store, tp.id).status is TouchpointStatus.UNKNOWN

    later = NOW + timedelta(hours=1)
    assert _run(store, make_dispatcher(later)) == {}
    assert len(fake_sendgrid.requests) == 1


def test_a_timeout_makes_only_its_email_of_the_wave_unknown(store, make_dispatcher, fake_sendgrid):
    tps = [_due_checkin(store) for _ in range(3)]
    fake_sendgrid.fail_next(Fault(delay=1.5))  # the first request to arrive

    assert _run(store, make_dispatcher(NOW, timeout=0.3)) == {"sent": 2, "unknown": 1}
    held = int(json.loads(fake_sendgrid.requests[0].body)["custom_args"]["touchpoint_id"])
    statuses = {tp.id: _touchpoint(store, tp.id).status for tp in tps}
    assert statuses == {
        tp.id: TouchpointStatus.UNKNOWN if tp.id == held else TouchpointStatus.SENT for tp in tps
    }
    assert _touchpoint(store, held).reason.startswith("SendGrid sent no answer (TimeoutError")


def test_a_wave_of_emails_with_retries_and_refusals_ends_each_as_alone(
    store, make_dispatcher, fake_sendgrid
):
    tps = [_due_checkin(store) for _ in range(4)]
    message = "The from address does not match a verified Sender Identity."
    fake_sendgrid.fail_next(
        server_error(), Fault(400, error_body(message, "from")), Fault(delay=0.2)
    )
    dispatcher = make_dispatcher(NOW)

    assert _run(store, dispatcher) == {"sent": 3, "failed": 1}
    assert len(fake_sendgrid.requests) == 5  # the 500 was tried again, after its backoff
    assert dispatcher.sleep.waits == [0.5]
    failed = [r for r in (_touchpoint(store, tp.id) for tp in tps) if r.reason]
    assert [(r.status, r.reason) for r in failed] == [
        (TouchpointStatus.FAILED, f"SendGrid 400: from: {message}")
    ]


def test_a_retried_chunk_does_not_resend_what_may_have_gone(store, make_dispatcher, fake_sendgrid):
    with transaction(store) as session:
        customer = add_customer(session)
        tp = add_touchpoint(
            session, customer, add_order(session, customer), "delivery_checkin", Channel.EMAIL, NOW
        )
        ids = claim_due_touchpoints(
            session, worker="w", now=NOW, limit=10, lease=timedelta(minutes=5)
        )
        # The first try marked it as being sent, then its process died before recording.
        assert mark_sending(session, tp.id, worker="w")

    assert make_dispatcher(NOW).run_chunk("w", ids) == {"unknown": 1}
    assert fake_sendgrid.requests == []


def test_outcomes_are_recorded_only_for_rows_the_worker_still_holds(store, make_dispatcher):
    with transaction(store) as session:
        customer = add_customer(session)
        tp = add_touchpoint(
            session, customer, add_order(session, customer), "delivery_checkin", Channel.EMAIL, NOW
        )
        ids = claim_due_touchpoints(
            session, worker="slow", now=NOW, limit=10, lease=timedelta(minutes=5)
        )

    assert make_dispatcher(NOW).run_chunk("someone-else", ids) == {}
    assert _touchpoint(store, tp.id).status is TouchpointStatus.CLAIMED


def test_messages_later_than_their_campaign_allows_are_skipped(
    store, make_dispatcher, fake_sendgrid
):
    with transaction(store) as session:
        customer = add_customer(session)
        order = add_order(session, customer)
        stale = add_touchpoint(
            session, customer, order, "delivery_checkin", Channel.EMAIL, NOW - timedelta(days=4)
        )
        fresh = add_touchpoint(
            session, customer, order, "points_earned", Channel.EMAIL, NOW - timedelta(days=2)
        )
    specs = {
        "delivery_checkin": replace(SPECS["delivery_checkin"], expires_after=timedelta(days=3)),
        "points_earned": replace(SPECS["points_earned"], expires_after=timedelta(days=3)),
    }
    dispatcher = make_dispatcher(NOW)
    dispatcher.lookup = specs.get

    assert _run(store, dispatcher) == {"skipped": 1, "sent": 1}
    assert _touchpoint(store, stale.id).reason == "too late: not sent within 3d of falling due"
    assert _touchpoint(store, fresh.id).status is TouchpointStatus.SENT
    assert [int(m["custom_args"]["touchpoint_id"]) for m in fake_sendgrid.sent] == [fresh.id]


def test_a_disabled_or_removed_campaign_sends_nothing_more(store, make_dispatcher):
    with transaction(store) as session:
        customer = add_customer(session)
        tp = add_touchpoint(session, customer, None, "spring_sale", Channel.EMAIL, NOW)

    assert _run(store, make_dispatcher(NOW)) == {"skipped": 1}
    row = _touchpoint(store, tp.id)
    assert row.status is TouchpointStatus.SKIPPED
    assert row.reason == "campaign 'spring_sale' is disabled or no longer configured"


def test_sendgrid_request_body_is_what_the_event_webhook_needs(fake_sendgrid):
    # custom_args must be strings or SendGrid answers 400; the fake checks that like the API.
    from postpurchase.channels.senders import OutgoingEmail
    from postpurchase.channels.sendgrid_email import SendGridEmailSender

    sender = SendGridEmailSender(
        "SG.test-key.abcdefghijklmnopqrstuvwxyz", host=fake_sendgrid.url, sandbox=True
    )
    email = OutgoingEmail(
        7,
        "win_back",
        "a@example.org",
        None,
        "hello@shop.example.com",
        "Shop",
        "Hi",
        "<p>Hi</p>",
        "Hi",
        "https://x/u/t",
    )
    assert sender.send_email(email) == "sandbox-7"
    body = json.loads(fake_sendgrid.requests[0].body)
    assert body["mail_settings"] == {"sandbox_mode": {"enable": True}}
    assert fake_sendgrid.sent == []  # sandbox: accepted, nothing delivered


def test_an_unknown_time_zone_falls_back_to_the_default(store, make_dispatcher, fake_twilio):
    with transaction(store) as session:
        customer = add_customer(session, time_zone="Mars/Olympus_Mons")
        add_touchpoint(
            session, customer, add_order(session, customer), "delivery_checkin", Channel.SMS, NOW
        )
    # 14:00 in the default zone (UTC): not quiet, so it goes.
    assert _run(store, make_dispatcher(NOW)) == {"sent": 1}


def test_a_template_that_cannot_render_fails_only_its_touchpoint(
    store, make_dispatcher, tmp_path, fake_sendgrid
):
    from postpurchase.messages.rendering import DEFAULT_TEMPLATES_DIR, MessageRenderer

    templates = tmp_path / "templates"
    shutil.copytree(DEFAULT_TEMPLATES_DIR, templates)
    (templates / "email" / "setup_tips.txt.j2").write_text("{{ customer.nickname }}")
    with transaction(store) as session:
        customer = add_customer(session)
        order = add_order(session, customer)
        broken = add_touchpoint(session, customer, order, "setup_tips", Channel.EMAIL, NOW)
        add_touchpoint(session, customer, order, "delivery_checkin", Channel.EMAIL, NOW)
    dispatcher = make_dispatcher(NOW)
    dispatcher.renderer = MessageRenderer(templates)

    assert _run(store, dispatcher) == {"sent": 1, "failed": 1}
    assert "UndefinedError" in _touchpoint(store, broken.id).reason


def test_a_row_lost_to_the_lease_sweep_is_not_sent(store, make_dispatcher, fake_sendgrid):
    with transaction(store) as session:
        customer = add_customer(session)
        tp = add_touchpoint(
            session, customer, add_order(session, customer), "delivery_checkin", Channel.EMAIL, NOW
        )
        ids = claim_due_touchpoints(
            session, worker="slow", now=NOW, limit=10, lease=timedelta(minutes=5)
        )
    dispatcher = make_dispatcher(NOW)
    batch = None

    def load_then_lose_the_lease(session, worker, ids):
        nonlocal batch
        batch = type(dispatcher)._load(dispatcher, session, worker, ids)
        # Meanwhile the lease ran out and another run's claim sweep recorded it unknown.
        session.execute(
            update(Touchpoint)
            .where(Touchpoint.id == tp.id)
            .values(status=TouchpointStatus.UNKNOWN, lease_until=None)
        )
        return batch

    dispatcher._load = load_then_lose_the_lease
    assert dispatcher.run_chunk("slow", ids) == {}
    assert fake_sendgrid.requests == []


def test_one_message_that_breaks_the_sender_does_not_hold_back_the_others(
    store, make_dispatcher, tmp_path
):
    from dataclasses import replace

    from postpurchase.channels.outbox import OutboxSender

    with transaction(store) as session:
        ids = []
        # An internationalised address the outbox cannot write into a mail header.
        for address in ("ana@example.org", "łukasz@example.org", "zoe@example.org"):
            customer = add_customer(session, email=address)
            order = add_order(session, customer)
            ids.append(
                add_touchpoint(session, customer, order, "delivery_checkin", Channel.EMAIL, NOW).id
            )
    dispatcher = replace(make_dispatcher(NOW), email=OutboxSender(tmp_path / "outbox"))

    assert _run(store, dispatcher) == {"sent": 2, "unknown": 1}
    broken = _touchpoint(store, ids[1])
    assert broken.status is TouchpointStatus.UNKNOWN
    assert "UnicodeEncodeError" in broken.reason
    assert [_touchpoint(store, i).status for i in (ids[0], ids[2])] == [TouchpointStatus.SENT] * 2


def test_a_points_email_for_an_order_without_points_is_skipped_at_send_time(
    store, make_dispatcher, fake_sendgrid
):
    # The shipped points_earned campaign, as the DAG looks it up. Order #1030 (CAD, in a USD
    # shop) earned nothing; the other order's award was fully reversed by a refund since it
    # was planned; the third still has its points and gets its email.
    lookup = campaign_lookup(load_campaigns(PROJECT_ROOT / "config" / "campaigns.yaml"))
    with transaction(store) as session:
        customer = add_customer(session)
        cad = add_order(session, customer, name="#1030", currency="CAD")
        refunded = add_order(session, customer, currency="USD")
        kept = add_order(session, customer, currency="USD")
        session.add_all(
            [
                _ledger(customer, refunded, LedgerKind.AWARD, 129),
                _ledger(customer, refunded, LedgerKind.REVERSAL, -129),
                _ledger(customer, kept, LedgerKind.AWARD, 229),
            ]
        )
        tps = [
            add_touchpoint(session, customer, o, "points_earned", Channel.EMAIL, NOW)
            for o in (cad, refunded, kept)
        ]

    dispatcher = make_dispatcher(NOW)
    dispatcher.lookup = lookup
    assert _run(store, dispatcher) == {"sent": 1, "skipped": 2}

    rows = [_touchpoint(store, tp.id) for tp in tps]
    assert [(r.status, r.reason) for r in rows[:2]] == [
        (TouchpointStatus.SKIPPED, "the order has earned no loyalty points")
    ] * 2
    assert rows[2].status is TouchpointStatus.SENT
    [sent] = fake_sendgrid.sent
    assert "229" in sent["content"][0]["value"]


def test_loyalty_figures_per_customer_and_order(store):
    # What the points gate and templates read: an order's awards net of reversals (an
    # expiry counts only for the balance), the customer's balance and tier; a customer with
    # no loyalty rows gets zeros.
    with transaction(store) as session:
        customer, other = add_customer(session), add_customer(session, email="b@example.com")
        kept, refunded = add_order(session, customer), add_order(session, customer)
        bare = add_order(session, other)
        session.add_all(
            [
                _ledger(customer, kept, LedgerKind.AWARD, 229),
                _ledger(customer, kept, LedgerKind.EXPIRY, -29),
                _ledger(customer, refunded, LedgerKind.AWARD, 129),
                _ledger(customer, refunded, LedgerKind.REVERSAL, -129),
                CustomerTier(customer_id=customer.id, tier="gold", since=NOW),
            ]
        )
    pairs = [(customer.id, kept.id), (customer.id, refunded.id), (customer.id, None)]
    pairs += [(other.id, bare.id), (other.id, None)]
    with transaction(store) as session:
        figures = loyalty_figures(session, pairs)
    assert [figures[p] for p in pairs] == [
        LoyaltyFigures(229, 200, "gold", ()),
        LoyaltyFigures(0, 200, "gold", ()),
        LoyaltyFigures(0, 200, "gold", ()),
        LoyaltyFigures(0, 0, None, ()),
        LoyaltyFigures(0, 0, None, ()),
    ]


def _ledger(customer, order, kind, points):
    return LoyaltyLedgerEntry(
        customer_id=customer.id,
        order_id=order.id,
        kind=kind,
        points=points,
        cause=f"{kind.value}:order:{order.id}",
    )


@dataclass(frozen=True)
class _TestedSpec(Spec):
    variants: tuple[Variant, ...] = ()


def test_a_touchpoint_s_variant_decides_its_template_and_subject(
    store, make_dispatcher, fake_sendgrid
):
    """No variant: the campaign's template and subject; a variant: its own template and
    subject where it sets them, the campaign's where it does not."""
    tested = _TestedSpec(
        "delivery_checkin",
        "delivery_checkin",
        "transactional",
        variants=(
            Variant(id="a"),
            Variant(
                id="b", template="setup_tips", subject="Settled in, {{ customer.first_name }}?"
            ),
        ),
    )
    with transaction(store) as session:
        ids = {}
        for variant in (None, "a", "b"):
            customer = add_customer(session, first_name="Chloé")
            order = add_order(session, customer)
            ids[variant] = add_touchpoint(
                session, customer, order, "delivery_checkin", Channel.EMAIL, NOW, variant=variant
            ).id

    dispatcher = replace(make_dispatcher(NOW), lookup={"delivery_checkin": tested}.get)
    assert _run(store, dispatcher) == {"sent": 3}

    sent = {int(m["custom_args"]["touchpoint_id"]): m for m in fake_sendgrid.sent}
    plain, a, b = (sent[ids[variant]] for variant in (None, "a", "b"))
    assert re.fullmatch(r"Has your order #\S+ arrived\?", plain["subject"])
    assert re.fullmatch(r"Has your order #\S+ arrived\?", a["subject"])
    assert b["subject"] == "Settled in, Chloé?"
    assert "Has your parcel arrived?" in plain["content"][1]["value"]
    assert "Has your parcel arrived?" in a["content"][1]["value"]
    assert "Three tips from our team" in b["content"][1]["value"]
