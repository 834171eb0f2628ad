"""The outbox channel and how channels are chosen and credentialed from settings."""

from __future__ import annotations

import email
import json
from datetime import UTC, datetime, timedelta
from email import policy

import pytest

from postpurchase.airflow_glue.connections import connection_fields
from postpurchase.channels.configured import email_sender, sms_sender
from postpurchase.channels.outbox import OutboxSender
from postpurchase.channels.senders import OutgoingEmail, OutgoingSms
from postpurchase.channels.sendgrid_email import SendGridEmailSender
from postpurchase.channels.twilio_sms import TwilioSmsSender
from postpurchase.exceptions import ConfigError
from postpurchase.settings import Settings

EMAIL = OutgoingEmail(
    touchpoint_id=42,
    campaign_id="delivery_checkin",
    to_email="zoe@example.org",
    to_name="Zoë",
    from_email="hello@shop.example.com",
    from_name="Northwind Goods",
    subject="How did your order #1001 arrive?",
    html="<p>Hi Zoë</p>",
    text="Hi Zoë\n",
    unsubscribe_url="https://hooks.shop.example.com/u/abc.def",
)


def test_outbox_writes_an_eml_and_a_json_and_rewrites_on_retry(tmp_path):
    outbox = OutboxSender(tmp_path / "outbox")
    assert outbox.send_email(EMAIL) == "outbox-42"
    assert outbox.send_email(EMAIL) == "outbox-42"

    files = sorted(p.name for p in (tmp_path / "outbox").iterdir())
    assert files == ["00000042-delivery_checkin.eml", "00000042-delivery_checkin.json"]
    message = email.message_from_bytes(
        (tmp_path / "outbox" / files[0]).read_bytes(), policy=policy.default
    )
    assert message["To"] == "Zoë <zoe@example.org>"
    assert message["List-Unsubscribe"] == "<https://hooks.shop.example.com/u/abc.def>"
    assert message.get_body(("html",)).get_content().strip() == "<p>Hi Zoë</p>"
    summary = json.loads((tmp_path / "outbox" / files[1]).read_text())
    assert summary["subject"] == EMAIL.subject


def test_outbox_eml_has_date_of_sending_and_a_stable_message_id(tmp_path):
    sent_at = datetime(2026, 11, 30, 14, 5, 9, tzinfo=UTC)
    outbox = OutboxSender(tmp_path, clock=lambda: sent_at)
    outbox.send_email(EMAIL)
    first = email.message_from_bytes(
        (tmp_path / "00000042-delivery_checkin.eml").read_bytes(), policy=policy.default
    )
    assert first["Date"].datetime == sent_at
    assert first["Date"] == "Mon, 30 Nov 2026 14:05:09 +0000"
    assert first["Message-ID"] == "<touchpoint-42.delivery_checkin@shop.example.com>"

    # Re-written later (a retried send): same identity, new date; another touchpoint differs.
    later = OutboxSender(tmp_path, clock=lambda: sent_at + timedelta(minutes=3))
    later.send_email(EMAIL)
    later.send_email(EMAIL._replace(touchpoint_id=43))
    again = email.message_from_bytes(
        (tmp_path / "00000042-delivery_checkin.eml").read_bytes(), policy=policy.default
    )
    other = email.message_from_bytes(
        (tmp_path / "00000043-delivery_checkin.eml").read_bytes(), policy=policy.default
    )
    assert again["Message-ID"] == first["Message-ID"]
    assert again["Date"].datetime == sent_at + timedelta(minutes=3)
    assert other["Message-ID"] != first["Message-ID"]


def test_outbox_sms(tmp_path):
    outbox = OutboxSender(tmp_path)
    outbox.send_sms(OutgoingSms(7, "win_back", "+33612345678", "We miss you", 1))
    assert json.loads((tmp_path / "00000007-win_back.sms.json").read_text())["body"] == (
        "We miss you"
    )


def test_outbox_is_the_default(tmp_path):
    settings = Settings(var_dir=tmp_path)
    assert isinstance(email_sender(settings), OutboxSender)
    assert isinstance(sms_sender(settings), OutboxSender)


def test_sendgrid_without_a_key_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="sendgrid_default"):
        email_sender(Settings(var_dir=tmp_path, email_channel="sendgrid"))


def test_credentials_come_from_airflow_connections(tmp_path, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_SENDGRID_DEFAULT",
        json.dumps({"conn_type": "generic", "password": "SG.from-connection", "extra": {}}),
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_TWILIO_DEFAULT",
        json.dumps(
            {
                "conn_type": "generic",
                "login": "AC" + "1" * 32,
                "password": "token-from-connection",
                "extra": {"messaging_service_sid": "MG" + "2" * 32},
            }
        ),
    )
    settings = Settings(var_dir=tmp_path, email_channel="sendgrid", sms_channel="twilio")
    assert isinstance(email_sender(settings, connection=connection_fields), SendGridEmailSender)
    assert isinstance(sms_sender(settings, connection=connection_fields), TwilioSmsSender)


def test_twilio_needs_a_sender(tmp_path):
    settings = Settings(
        var_dir=tmp_path,
        sms_channel="twilio",
        twilio_account_sid="AC" + "1" * 32,
        twilio_auth_token="token",
    )
    with pytest.raises(ConfigError, match="MESSAGING_SERVICE_SID"):
        sms_sender(settings)
