"""Privacy on both databases: Shopify's compliance webhooks (their documented bodies) through
the signed route, fulfilled by housekeeping's privacy step; erasure leaves no personal data in
any table or in the outbox; retention purges only old processed payloads; export has it all."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from deliveries import SHOP, fixture_json, intake_settings
from event_journeys import process
from genuine import genuine
from sqlalchemy import JSON, String, Text, cast, func, select

from postpurchase.cli import main
from postpurchase.loyalty.config import load_loyalty_config
from postpurchase.privacy.export import SECTIONS, export_dir
from postpurchase.privacy.requests import RequestsFailed, export, fulfil_pending
from postpurchase.privacy.retention import purge_personal_fields
from postpurchase.reviews.models import ProductReview
from postpurchase.settings import PROJECT_ROOT
from postpurchase.store.database import transaction
from postpurchase.store.models import (
    Base,
    Channel,
    ClaimStatus,
    ConsentChange,
    ConsentPurpose,
    ConsentState,
    Customer,
    InboxEvent,
    LoyaltyLedgerEntry,
    MessageEvent,
    PrivacyRequest,
    RejectedWebhook,
    Suppression,
    SurveyResponse,
    Touchpoint,
    TouchpointStatus,
)
from postpurchase.store.page_actions import record_action
from postpurchase.surveys.models import NpsResponse, SupportNotification
from postpurchase.tasks.housekeeping import tidy_database
from postpurchase.webhooks import opt_out_spool

EMAIL = "john@example.com"  # the documented redact body's customer
PHONE = "+15556251199"
FIRST, LAST = "Johnathan", "Privacyquist"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
# Erasure keys the digests of suppressed addresses with it (required with PostgreSQL).
SIGNING_SECRET = "privacy-test-signing-secret"


def privacy_settings(db_url: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("POSTPURCHASE_SIGNING_SECRET", SIGNING_SECRET)  # the commands' settings
    return intake_settings(db_url, signing_secret=SIGNING_SECRET)


@pytest.fixture
def settings(db_url, monkeypatch):
    return privacy_settings(db_url, monkeypatch)


def _order(order_id: int, topic_time: str = "2026-11-20T10:00:00-05:00") -> dict:
    data = fixture_json("shopify/orders_create.json")
    data["id"] = order_id
    data["name"] = f"#{order_id}"
    data["email"] = EMAIL
    data["created_at"] = data["updated_at"] = data["processed_at"] = topic_time
    customer = data["customer"]
    customer.update(id=191167, email=EMAIL, phone=PHONE, first_name=FIRST, last_name=LAST)
    for address in ("billing_address", "shipping_address"):
        if data.get(address):
            data[address].update(first_name=FIRST, last_name=LAST, name=f"{FIRST} {LAST}")
    return data


def _process(store) -> None:
    process(store, now=NOW, loyalty=load_loyalty_config(PROJECT_ROOT / "config" / "loyalty.yaml"))


def _genuine(name: str) -> dict:
    """A documented compliance body as Shopify sends it for our shop: the docs' placeholder
    ``{shop}.myshopify.com`` is the shop's domain."""
    text = json.dumps(genuine(f"shopify/{name}.json"))
    return json.loads(text.replace("{shop}.myshopify.com", SHOP))


def _places_mentioning(store, needles: list[str], outbox: Path) -> list[str]:
    found = []
    with store() as session:
        for table in Base.metadata.sorted_tables:
            for column in table.columns:
                if not isinstance(column.type, String | Text | JSON) and "JSON" not in repr(
                    column.type
                ):
                    continue
                for needle in needles:
                    hits = session.execute(
                        select(func.count())
                        .select_from(table)
                        .where(func.lower(cast(column, Text)).contains(needle.lower()))
                    ).scalar_one()
                    if hits:
                        found.append(f"{table.name}.{column.name} ({needle})")
    if outbox.is_dir():
        for path in outbox.rglob("*"):
            if path.is_file():
                text = path.read_text(encoding="utf-8", errors="replace").lower()
                found += [f"{path.name} ({n})" for n in needles if n.lower() in text]
    return found


def _leave_traces(store, settings, customer_id: int, touchpoint_id: int) -> None:
    """What providers, refused requests, the spool and support's page actions keep about the
    customer."""
    with transaction(store) as session:
        record_action(
            session,
            user_name="support-anna",
            action="adjust_points",
            subject=f"customer:{customer_id}",
            reason=f"{FIRST} {LAST} phoned from {PHONE}: a parcel arrived damaged",
            detail={"points": 50},
            now=NOW,
        )
        session.add(
            MessageEvent(
                provider="sendgrid",
                provider_event_id="ev-1",
                touchpoint_id=touchpoint_id,
                event="bounce",
                occurred_at=NOW,
                detail={"email": EMAIL, "reason": f"550 <{EMAIL}> unknown", "ip": "10.0.0.1"},
            )
        )
        session.add(
            MessageEvent(
                provider="twilio",
                provider_event_id="SM1:delivered",
                event="delivered",
                occurred_at=NOW,
                detail={"To": PHONE, "MessageStatus": "delivered"},
            )
        )
        session.add(Suppression(channel=Channel.EMAIL, address=EMAIL, reason="bounce"))
        session.add(
            RejectedWebhook(
                route="/webhooks/shopify",
                status_code=422,
                reason="invalid content",
                headers={},
                body_excerpt=f'{{"email": "{EMAIL}"}}',
                samples=[{"body": f'{{"phone": "{PHONE}"}}'}],
            )
        )
        session.add(
            ConsentChange(
                customer_id=customer_id,
                purpose=ConsentPurpose.SMS,
                from_state=ConsentState.UNKNOWN,
                to_state=ConsentState.DENIED,
                source="sms:stop",
                reference="twilio:SM1",
                occurred_at=NOW,
            )
        )
    _leave_feedback(store, customer_id, touchpoint_id)
    opt_out_spool.keep(
        settings, opt_out_spool.SMS_STOP, at=NOW, phone=PHONE, source="sms:stop", reference="x"
    )


def _leave_feedback(store, customer_id: int, touchpoint_id: int) -> None:
    """What the customer wrote: a signed review, comments, and support told about them."""
    with transaction(store) as session:
        order_id = session.scalars(
            select(Touchpoint.order_id).where(Touchpoint.id == touchpoint_id)
        ).one()
        session.add(
            ProductReview(
                source="page",
                customer_id=customer_id,
                order_id=order_id,
                touchpoint_id=touchpoint_id,
                product_key="id:632910392",
                product_title="IPod Nano - 8GB",
                rating=2,
                title="Scratched",
                body="The screen came scratched.",
                display_name=f"{FIRST} {LAST[0]}.",
                verified_buyer=True,
                submitted_at=NOW,
                edited_at=NOW,
            )
        )
        session.add(
            SurveyResponse(
                touchpoint_id=touchpoint_id,
                customer_id=customer_id,
                order_id=order_id,
                score=2,
                comment=f"Call me on {PHONE}",
                responded_at=NOW,
            )
        )
        session.add(
            NpsResponse(
                touchpoint_id=touchpoint_id,
                customer_id=customer_id,
                order_id=order_id,
                score=3,
                comment=f"Write to {EMAIL}",
                responded_at=NOW,
            )
        )
        session.add(
            SupportNotification(
                key="webhook:nps:1",
                channel="webhook",
                payload={"customer": {"email": EMAIL, "name": f"{FIRST} {LAST}"}, "score": 3},
                next_attempt_at=NOW,
                created_at=NOW,
            )
        )


def _balance(store) -> int:
    with store() as session:
        return int(
            session.execute(select(func.coalesce(func.sum(LoyaltyLedgerEntry.points), 0))).scalar()
        )


def test_customers_redact_erases_the_customer_everywhere(send, store, settings):
    assert send.shopify("orders/create", _order(299938)).status_code == 202
    assert send.shopify("orders/paid", _order(299938)).status_code == 202
    _process(store)
    outbox = settings.var_dir / "outbox"
    outbox.mkdir(parents=True, exist_ok=True)
    with store() as session:
        customer = session.scalars(select(Customer)).one()
        touchpoints = session.scalars(select(Touchpoint)).all()
        assert customer.email == EMAIL and touchpoints
        planned = [t.id for t in touchpoints if t.status is TouchpointStatus.PLANNED]
        (outbox / f"{touchpoints[0].id:08d}-review.json").write_text(json.dumps({"to": EMAIL}))
    _leave_traces(store, settings, customer.id, touchpoints[0].id)
    points = _balance(store)
    assert points > 0
    assert _places_mentioning(store, [EMAIL, PHONE, FIRST, LAST], outbox)

    answer = send.shopify("customers/redact", _genuine("customers_redact_docs"))
    assert answer.status_code == 202, answer.text
    assert fulfil_pending(store, settings, now=NOW) == 1

    assert _places_mentioning(store, [EMAIL, PHONE, FIRST, LAST], outbox) == []
    assert opt_out_spool.pending(settings) == []
    assert _balance(store) == points
    with store() as session:
        request = session.scalars(select(PrivacyRequest)).one()
        assert request.kind == "erase" and request.fulfilled_at == NOW
        asked = session.get(InboxEvent, request.inbox_event_id)
        # dated when Shopify asked (X-Shopify-Triggered-At), not when it arrived or was fulfilled
        assert asked is not None and request.requested_at == asked.occurred_at
        assert request.subject == "shopify:191167"
        erased = session.get(Customer, customer.id)
        assert erased is not None and erased.external_id == f"erased:{customer.id}"
        for touchpoint_id in planned:
            row = session.get(Touchpoint, touchpoint_id)
            assert row is not None
            assert (row.status, row.reason) == (TouchpointStatus.SKIPPED, "customer erased")

    # a later webhook for the same platform customer starts a new, unlinked profile
    assert send.shopify("orders/create", _order(299999)).status_code == 202
    _process(store)
    with store() as session:
        customers = session.scalars(select(Customer).order_by(Customer.id)).all()
        assert [c.external_id for c in customers] == [f"erased:{customer.id}", "191167"]
        assert customers[0].email is None and customers[1].email == EMAIL
    # fulfilling again does nothing more
    assert fulfil_pending(store, settings, now=NOW) == 0


def test_data_request_writes_an_export_with_every_section(send, store, settings):
    send.shopify("orders/create", _order(299938))
    send.shopify("orders/paid", _order(299938))
    _process(store)
    assert (
        send.shopify("customers/data_request", _genuine("customers_data_request_docs")).status_code
        == 202
    )
    assert fulfil_pending(store, settings, now=NOW) == 1
    with store() as session:
        request = session.scalars(select(PrivacyRequest)).one()
        assert request.kind == "export"
        document = json.loads(Path(request.result["file"]).read_text())
        row = session.scalars(
            select(InboxEvent).where(InboxEvent.topic == "customers/data_request")
        ).one()
        assert row.status is ClaimStatus.DONE and "email" not in json.dumps(row.payload)
    assert Path(request.result["file"]).parent == export_dir(settings)
    assert set(SECTIONS) <= set(document)
    assert document["profile"]["email"] == EMAIL
    assert document["orders"][0]["items"]
    assert document["ledger"]["entries"] and document["touchpoints"]
    # the command's path writes one too
    with store() as session:
        customer = session.scalars(select(Customer)).one()
        assert export(session, customer, settings=settings, now=NOW).kind == "export"
        session.commit()


def test_shop_redact_erases_what_came_from_the_shop(send, store, settings):
    send.shopify("orders/create", _order(299938))
    _process(store)
    assert send.shopify("shop/redact", _genuine("shop_redact_docs")).status_code == 202
    assert fulfil_pending(store, settings, now=NOW) == 1
    assert _places_mentioning(store, [EMAIL, PHONE, FIRST, LAST], settings.var_dir / "outbox") == []
    with store() as session:
        request = session.scalars(select(PrivacyRequest)).one()
        assert request.kind == "erase_shop" and request.result["customers"] == 1
        kinds = session.scalars(select(InboxEvent.event_type)).all()
        assert kinds == ["privacy.erase_shop"]


def test_a_compliance_webhook_with_a_bad_signature_is_refused(send):
    answer = send.shopify("customers/redact", _genuine("customers_redact_docs"), secret="wrong")
    assert answer.status_code == 401


def test_retention_purges_only_old_processed_payloads(send, store, settings):
    send.shopify("orders/create", _order(299938))
    _process(store)
    send.shopify("orders/create", _order(299940))  # still pending
    with store() as session:
        rows = session.scalars(select(InboxEvent).order_by(InboxEvent.id)).all()
        assert [r.status for r in rows] == [ClaimStatus.DONE, ClaimStatus.PENDING]
    later = datetime.now(UTC) + timedelta(days=31)
    purged = purge_personal_fields(store, now=later, retention=timedelta(days=30), batch_size=1)
    assert purged.inbox_payloads == 1
    with store() as session:
        done, pending = session.scalars(select(InboxEvent).order_by(InboxEvent.id)).all()
        assert EMAIL not in json.dumps(done.payload) and FIRST not in json.dumps(done.payload)
        assert done.payload["order"]["external_id"] == "299938"
        assert done.payload["order"]["total"]
        assert done.personal_data_removed_at is not None
        assert EMAIL in json.dumps(pending.payload)
    # recent rows are kept whole, and a second pass changes nothing
    assert purge_personal_fields(store, now=later, retention=timedelta(days=30)).inbox_payloads == 0
    assert (
        purge_personal_fields(
            store, now=datetime.now(UTC), retention=timedelta(days=30)
        ).inbox_payloads
        == 0
    )


@pytest.mark.parametrize("topic", ["customers/redact", "customers/data_request"])
def test_a_request_naming_no_customer_is_422(send, topic):
    assert send.shopify(topic, {"shop_id": 1, "customer": {}}).status_code == 422


def test_the_commands_export_then_erase_a_customer(send, store, settings):
    send.shopify("orders/create", _order(299938))
    send.shopify("orders/paid", _order(299938))
    _process(store)
    points = _balance(store)
    runner = CliRunner()
    exported = runner.invoke(main, ["customers", "export", EMAIL])
    assert exported.exit_code == 0, exported.output
    files = list(export_dir(settings).glob("customer-*.json"))
    assert len(files) == 1 and EMAIL in files[0].read_text()
    erased = runner.invoke(main, ["customers", "erase", EMAIL, "--yes"])
    assert erased.exit_code == 0, erased.output
    assert "erase" in erased.output
    files[0].unlink()  # the export went to the shop; the engine keeps no copy to search
    assert _places_mentioning(store, [EMAIL, PHONE, FIRST, LAST], settings.var_dir / "outbox") == []
    assert _balance(store) == points
    with store() as session:
        kinds = session.scalars(select(PrivacyRequest.kind).order_by(PrivacyRequest.id)).all()
    assert kinds == ["export", "erase"]
    unknown = runner.invoke(main, ["customers", "erase", EMAIL, "--yes"])
    assert unknown.exit_code == 2 and "no customer" in unknown.output


def test_housekeeping_fulfils_requests_and_purges_old_details_with_counts(send, store, settings):
    send.shopify("orders/create", _order(299938))
    _process(store)
    with transaction(store) as session:
        session.add(
            MessageEvent(
                provider="sendgrid",
                provider_event_id="ev-old",
                event="open",
                occurred_at=datetime.now(UTC) - timedelta(days=40),
                detail={"email": EMAIL, "ip": "10.0.0.1", "sg_event_id": "ev-old"},
            )
        )
    send.shopify("customers/data_request", _genuine("customers_data_request_docs"))
    note = tidy_database(settings, now=datetime.now(UTC) + timedelta(days=31))
    assert "fulfilled 1 privacy request(s)" in note
    assert "from 1 inbox payload(s) and 1 provider event(s) older than 30 days" in note
    with store() as session:
        detail = session.scalars(select(MessageEvent.detail)).one()
    assert detail == {"sg_event_id": "ev-old"}


def test_a_request_that_fails_waits_and_does_not_hold_up_the_others(
    send, store, settings, tmp_path
):
    send.shopify("orders/create", _order(299938))
    _process(store)
    send.shopify("customers/data_request", _genuine("customers_data_request_docs"))
    send.shopify("customers/redact", _genuine("customers_redact_docs"))
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    broken = settings.model_copy(update={"privacy_export_dir": blocked})
    with pytest.raises(RequestsFailed, match="fulfilled 1 privacy request"):
        fulfil_pending(store, broken, now=NOW)
    with store() as session:
        statuses = dict(session.execute(select(InboxEvent.event_type, InboxEvent.status)).all())
    assert statuses["privacy.export"] is ClaimStatus.IGNORED  # waits for the next run
    assert statuses["privacy.erase"] is ClaimStatus.DONE
    assert fulfil_pending(store, settings, now=NOW) == 1
