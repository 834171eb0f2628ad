from datetime import UTC, datetime

from click.testing import CliRunner
from fakes.fixtures import add_customer

from postpurchase import consent
from postpurchase.cli import main
from postpurchase.store.database import transaction


def test_consent_show_prints_the_state_and_the_trail(store):
    stop_at = datetime(2026, 11, 27, 14, 5, tzinfo=UTC)
    with transaction(store) as session:
        add_customer(session, external_id="7001", email="grace@example.com", phone="+14155550123")
        consent.stop_sms(session, phone="+14155550123", reference="twilio:SM1", now=stop_at)

    shown = CliRunner().invoke(main, ["consent", "show", "shopify:7001"], catch_exceptions=False)

    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert lines[0] == "shopify:7001 (grace@example.com)"
    assert lines[1].split() == ["email_marketing", "granted", "-", "-"]
    stopped = ["denied", "twilio_stop", "2026-11-27", "14:05", "UTC"]
    assert lines[2].split() == ["sms_marketing", *stopped]
    assert lines[3].split() == ["sms", *stopped]
    assert [line.split() for line in lines[5:]] == [
        ["2026-11-27", "14:05", purpose, "granted", "->", "denied", "twilio_stop", "twilio:SM1"]
        for purpose in ("sms", "sms_marketing")
    ]
