"""SendGrid outcomes through the real SDK against the fake API."""

from __future__ import annotations

import json

import pytest
from fakes.fake_sendgrid import API_KEY, EMAIL, server_error

from postpurchase.channels.sendgrid_email import SendGridEmailSender
from postpurchase.exceptions import PermanentProviderError, TransientProviderError


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


def test_emails_reuse_one_kept_alive_connection(fake_sendgrid):
    sender = SendGridEmailSender(API_KEY, host=fake_sendgrid.url)
    for _ in range(3):
        sender.send_email(EMAIL)
    assert len(fake_sendgrid.sent) == 3
    assert len({r.client_port for r in fake_sendgrid.requests}) == 1


def test_a_connection_the_server_closed_while_idle_is_replaced(fake_sendgrid):
    sender = SendGridEmailSender(API_KEY, host=fake_sendgrid.url)
    sender.send_email(EMAIL)
    fake_sendgrid.close_idle_connections()

    sender.send_email(EMAIL)  # sent on a new connection, not reported as an unknown outcome
    assert len(fake_sendgrid.sent) == 2
    assert len({r.client_port for r in fake_sendgrid.requests}) == 2


def test_errors_leave_the_connection_usable(fake_sendgrid):
    fake_sendgrid.fail_next(server_error())
    sender = SendGridEmailSender(API_KEY, host=fake_sendgrid.url)
    with pytest.raises(TransientProviderError, match="SendGrid 500: internal error"):
        sender.send_email(EMAIL)
    sender.send_email(EMAIL)
    assert len({r.client_port for r in fake_sendgrid.requests}) == 1


def test_the_request_carries_the_document_the_sdk_would_send(fake_sendgrid):
    # The body is written by msgspec, not the SDK's json.dumps: the same JSON document, in
    # UTF-8 where json.dumps escapes to ASCII (names, emoji, line separators, quotes).
    email = EMAIL._replace(
        to_name='Zoë "Zo" O\'Brien',
        subject="Votre commande est arrivée 📦",
        html='<p class="x">Merci\u2028\\ <a href="https://x/?a=1&b=2">été</a></p>\x00',
        text="Tab\there\nnewline",
    )
    sender = SendGridEmailSender(API_KEY, host=fake_sendgrid.url)
    sender.send_email(email)
    request = fake_sendgrid.requests[0]
    headers = {name.lower(): value for name, value in request.headers.items()}
    assert headers["content-type"] == "application/json"
    assert json.loads(request.body.decode("utf-8")) == json.loads(
        json.dumps(sender.request_body(email))
    )
