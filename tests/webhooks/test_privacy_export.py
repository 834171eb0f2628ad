"""Exports on both databases: every table is in a section (or said why not); what the
customer answered, wrote and was credited with is in the document; an emailed export goes to
the shop's privacy contact through the configured channel (SendGrid's SDK against the fake,
or the outbox), and the request is recorded with where it went."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from deliveries import SHOP
from fakes.fake_sendgrid import API_KEY
from fakes.http_fake import Fault
from pydantic import SecretStr
from sqlalchemy import select
from test_privacy import (
    EMAIL,
    NOW,
    PHONE,
    _genuine,
    _leave_feedback,
    _order,
    _places_mentioning,
    _process,
    privacy_settings,
)

from postpurchase.privacy.export import SECTIONS, TABLES, export_dir
from postpurchase.privacy.requests import RequestsFailed, fulfil_pending
from postpurchase.store.database import transaction
from postpurchase.store.models import (
    AttributedOrder,
    Base,
    Channel,
    ClaimStatus,
    Customer,
    InboxEvent,
    Order,
    PrivacyRequest,
    Suppression,
    Touchpoint,
)

CONTACT = "privacy@northline-outdoor.example"


@pytest.fixture
def settings(db_url, monkeypatch):
    return privacy_settings(db_url, monkeypatch)


def test_every_table_has_a_section_or_a_reason():
    assert set(TABLES) == set(Base.metadata.tables)
    for table, where in TABLES.items():
        assert where in SECTIONS or where.startswith("no section: "), table


def _customer_with_history(send, store) -> int:
    send.shopify("orders/create", _order(299938))
    send.shopify("orders/paid", _order(299938))
    _process(store)
    with transaction(store) as session:
        customer = session.scalars(select(Customer)).one()
        touchpoint = session.scalars(select(Touchpoint).order_by(Touchpoint.id)).first()
        order = session.scalars(select(Order)).one()
        session.add(Suppression(channel=Channel.SMS, address=PHONE, reason="stop"))
        session.add(
            AttributedOrder(
                order_id=order.id,
                touchpoint_id=touchpoint.id,
                campaign_id=touchpoint.campaign_id,
                variant="",
                paid_at=NOW,
                currency="USD",
                revenue=Decimal("199.00"),
            )
        )
    _leave_feedback(store, customer.id, touchpoint.id)
    return customer.id


def test_the_export_has_answers_reviews_conversions_and_suppressions(send, store, settings):
    _customer_with_history(send, store)
    send.shopify("customers/data_request", _genuine("customers_data_request_docs"))
    assert fulfil_pending(store, settings, now=NOW) == 1
    with store() as session:
        request = session.scalars(select(PrivacyRequest)).one()
    document = json.loads(Path(request.result["file"]).read_text(encoding="utf-8"))
    assert set(document) >= set(SECTIONS)
    assert [a["comment"] for a in document["survey_answers"]] == [f"Call me on {PHONE}"]
    assert [a["score"] for a in document["nps_answers"]] == [3]
    assert [(r["rating"], r["title"]) for r in document["reviews"]] == [(2, "Scratched")]
    assert [c["revenue"] for c in document["conversions"]] == ["199.0000"]
    assert [(s["channel"], s["reason"]) for s in document["suppressions"]] == [("sms", "stop")]
    assert document["touchpoints"][0]["outcome"] is None  # not measured yet: said, not left out


def test_an_emailed_export_goes_to_the_privacy_contact_through_sendgrid(
    send, store, settings, fake_sendgrid
):
    customer_id = _customer_with_history(send, store)
    emailing = settings.model_copy(
        update={
            "privacy_export_to": "email",
            "privacy_contact_email": CONTACT,
            "email_channel": "sendgrid",
            "sendgrid_api_key": SecretStr(API_KEY),
            "sendgrid_host": fake_sendgrid.url,
        }
    )
    send.shopify("customers/data_request", _genuine("customers_data_request_docs"))
    fake_sendgrid.fail_next(Fault(status=400, body=b'{"errors":[{"message":"nope"}]}'))
    with pytest.raises(RequestsFailed, match="fulfilled 0 .*PermanentProviderError"):
        fulfil_pending(store, emailing, now=NOW)
    with store() as session:  # not sent: not recorded, and it waits for the next run
        assert session.scalars(select(PrivacyRequest)).all() == []
        row = session.scalars(select(InboxEvent).where(InboxEvent.topic.like("customers/%"))).one()
        assert row.status is ClaimStatus.IGNORED

    assert fulfil_pending(store, emailing, now=NOW) == 1
    [mail] = fake_sendgrid.sent
    assert mail["personalizations"][0]["to"] == [{"email": CONTACT}]
    assert mail["subject"] == f"Data export for customer {customer_id}"
    [attachment] = mail["attachments"]
    assert attachment["type"] == "application/json"
    document = json.loads(base64.b64decode(attachment["content"]))
    assert document["profile"]["email"] == EMAIL and document["nps_answers"]
    with store() as session:
        request = session.scalars(select(PrivacyRequest)).one()
    assert request.result["emailed_to"] == CONTACT
    assert request.result["message_id"] == mail["message_id"]
    assert request.fulfilled_at == NOW
    assert not export_dir(settings).exists()  # the engine keeps no copy


def test_an_emailed_export_in_the_embedded_default_lands_in_the_outbox(send, store, settings):
    _customer_with_history(send, store)
    emailing = settings.model_copy(update={"privacy_export_to": "email"})
    send.shopify("customers/data_request", _genuine("customers_data_request_docs"))
    assert fulfil_pending(store, emailing, now=NOW) == 1
    outbox = settings.var_dir / "outbox"
    [eml] = outbox.glob("*privacy_export*.eml")
    mail = BytesParser(policy=policy.default).parsebytes(eml.read_bytes())
    assert mail["To"] == settings.shop_support_email  # no privacy contact set: support
    [part] = list(mail.iter_attachments())
    assert json.loads(part.get_content())["profile"]["email"] == EMAIL
    # an erasure afterwards takes the export out of the outbox too
    send.shopify("customers/redact", _genuine("customers_redact_docs"))
    assert fulfil_pending(store, emailing, now=NOW) == 1
    assert _places_mentioning(store, [EMAIL, PHONE], outbox) == []


def test_an_emailed_export_goes_to_the_privacy_contact_of_the_customers_shop(
    send, store, settings, tmp_path
):
    customer_id = _customer_with_history(send, store)
    shops = tmp_path / "shops.yaml"
    shops.write_text(
        f"shops:\n  {SHOP}:\n    name: Northline Outdoor\n    privacy_email: {CONTACT}\n"
        "    sender: {email: hello@northline-outdoor.example}\n",
        encoding="utf-8",
    )
    emailing = settings.model_copy(
        update={
            "privacy_export_to": "email",
            "privacy_contact_email": "dpo@agency.example",  # the engine's: not this shop's
            "shops_file": shops,
        }
    )
    send.shopify("customers/data_request", _genuine("customers_data_request_docs"))
    assert fulfil_pending(store, emailing, now=NOW) == 1
    [eml] = (settings.var_dir / "outbox").glob("*privacy_export*.eml")
    mail = BytesParser(policy=policy.default).parsebytes(eml.read_bytes())
    assert mail["To"] == CONTACT
    assert mail["From"] == "Northline Outdoor <hello@northline-outdoor.example>"
    assert mail["Subject"] == f"Data export for customer {customer_id}"
    assert "everything Northline Outdoor holds about them" in (
        mail.get_body(("plain",)).get_content()
    )
