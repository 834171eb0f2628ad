"""Twilio outcomes through the real SDK against the fake API."""

from __future__ import annotations

import pytest
from fakes.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, error
from fakes.http_fake import Fault

from postpurchase.channels.senders import OutgoingSms
from postpurchase.channels.twilio_sms import TwilioSmsSender
from postpurchase.exceptions import (
    PermanentProviderError,
    RecipientOptedOut,
    TransientProviderError,
    UnknownOutcome,
)

SMS = OutgoingSms(3, "delivery_checkin", "+14155550123", "Your parcel arrived", 1)


def _sender(url: str, timeout: float = 5.0) -> TwilioSmsSender:
    return TwilioSmsSender(
        ACCOUNT_SID,
        AUTH_TOKEN,
        messaging_service_sid=None,
        from_number="+14155559999",
        status_callback="https://hooks.example.com/webhooks/twilio/status",
        api_base_url=url,
        timeout=timeout,
    )


def test_created_message_sid_is_returned(fake_twilio):
    sid = _sender(fake_twilio.url).send_sms(SMS)
    assert sid.startswith("SM") and len(sid) == 34
    assert fake_twilio.sent[0]["From"] == "+14155559999"


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (error(400, 21211, "The 'To' number is not a valid phone number."), PermanentProviderError),
        (error(429, 20429, "Too Many Requests"), TransientProviderError),
        (error(503, 20503, "Service unavailable"), TransientProviderError),
        (error(400, 21610, "Attempt to send to unsubscribed recipient"), RecipientOptedOut),
    ],
)
def test_errors_are_classified(fake_twilio, fault, expected):
    fake_twilio.fail_next(fault)
    with pytest.raises(expected) as caught:
        _sender(fake_twilio.url).send_sms(SMS)
    assert str(fault.body.decode()).split('"message": "')[1].split('"')[0] in str(caught.value)


def test_timeout_after_sending_is_unknown(fake_twilio):
    fake_twilio.fail_next(Fault(delay=1.5))
    with pytest.raises(UnknownOutcome):
        _sender(fake_twilio.url, timeout=0.3).send_sms(SMS)
    assert len(fake_twilio.requests) == 1


def test_refused_connection_is_transient(fake_twilio):
    url = fake_twilio.url
    fake_twilio.stop()
    with pytest.raises(TransientProviderError, match="cannot reach Twilio"):
        _sender(url).send_sms(SMS)


def test_wrong_credentials_are_permanent(fake_twilio):
    sender = TwilioSmsSender(
        ACCOUNT_SID,
        "not-the-token",
        messaging_service_sid="MG" + "0" * 32,
        from_number=None,
        status_callback=None,
        api_base_url=fake_twilio.url,
    )
    with pytest.raises(PermanentProviderError, match="401"):
        sender.send_sms(SMS)
    assert fake_twilio.sent == []
