"""SendGrid outcomes through the real SDK against the fake API."""

from __future__ import annotations

import pytest
from fakes.fake_sendgrid import API_KEY

from postpurchase.channels.messages import OutgoingEmail
from postpurchase.channels.sendgrid_email import SendGridEmailSender
from postpurchase.exceptions import PermanentProviderError, TransientProviderError

EMAIL = OutgoingEmail(
    5,
    "points_earned",
    "zoe@example.org",
    "Zoë",
    "hello@shop.example.com",
    "Northwind Goods",
    "You earned 120 points",
    "<p>Hi</p>",
    "Hi",
    "https://x/u/t",
)


def test_wrong_api_key_is_permanent_with_sendgrids_message(fake_sendgrid):
    sender = SendGridEmailSender("SG.revoked", host=fake_sendgrid.url)
    with pytest.raises(PermanentProviderError) as caught:
        sender.send_email(EMAIL)
    assert str(caught.value) == (
        "SendGrid 401: The provided authorization grant is invalid, expired, or revoked"
    )


def test_accepted_email_returns_the_x_message_id(fake_sendgrid):
    message_id = SendGridEmailSender(API_KEY, host=fake_sendgrid.url).send_email(EMAIL)
    assert len(message_id) == 22
    assert fake_sendgrid.sent[0]["message_id"] == message_id
    assert fake_sendgrid.requests[0].headers["Authorization"] == f"Bearer {API_KEY}"


def test_refused_connection_is_transient(fake_sendgrid):
    url = fake_sendgrid.url
    fake_sendgrid.stop()
    with pytest.raises(TransientProviderError, match="cannot reach SendGrid"):
        SendGridEmailSender(API_KEY, host=url).send_email(EMAIL)
