"""Emails sent at once from one thread (``start_emails``), through the real SDK against the
fake API: each answer means what it means for ``send_email``."""

from __future__ import annotations

import json
import threading

import pytest
from fakes.fake_sendgrid import API_KEY, EMAIL, error_body, server_error, too_many_requests
from fakes.http_fake import Fault

from postpurchase.channels.sendgrid_email import SendGridEmailSender
from postpurchase.exceptions import (
    PermanentProviderError,
    TransientProviderError,
    UnknownOutcome,
)


def _emails(count):
    return [EMAIL._replace(touchpoint_id=n) for n in range(1, count + 1)]


def _answers(flight, *, quiet=5.0, each=None):
    """The flight's answers by index, in the order they came (``each`` called after each)."""
    answers = {}
    for answer in flight.answers(quiet=quiet):
        if answer is None:
            continue
        index, result = answer
        assert index not in answers
        answers[index] = result
        if each is not None:
            each(answers)
    return answers


def _touchpoint(request):
    return int(json.loads(request.body)["custom_args"]["touchpoint_id"])


def test_every_email_of_a_wave_is_sent_with_its_own_message_id(fake_sendgrid):
    sender = SendGridEmailSender(API_KEY, host=fake_sendgrid.url)
    assert sender.sends_at_once
    emails = _emails(5)

    answers = _answers(sender.start_emails(emails))

    by_touchpoint = {int(m["custom_args"]["touchpoint_id"]): m for m in fake_sendgrid.sent}
    assert {i: by_touchpoint[e.touchpoint_id]["message_id"] for i, e in enumerate(emails)} == (
        answers
    )
    assert [r.headers["Authorization"] for r in fake_sendgrid.requests] == [f"Bearer {API_KEY}"] * 5


def test_answers_are_taken_in_the_order_they_come(fake_sendgrid):
    hold, reached = threading.Event(), threading.Event()
    fake_sendgrid.fail_next(Fault(reached=reached, hold=hold))  # the first to arrive waits
    sender = SendGridEmailSender(API_KEY, host=fake_sendgrid.url)
    emails = _emails(3)
    flight = sender.start_emails(emails)

    def release_after_the_others(answers):
        if len(answers) == 2:
            hold.set()

    answers = _answers(flight, each=release_after_the_others)

    held = _touchpoint(fake_sendgrid.requests[0]) - 1
    assert list(answers)[-1] == held
    assert all(isinstance(result, str) for result in answers.values())


def test_the_connections_are_kept_for_the_next_wave(fake_sendgrid):
    sender = SendGridEmailSender(API_KEY, host=fake_sendgrid.url)
    _answers(sender.start_emails(_emails(3)))
    _answers(sender.start_emails(_emails(3)))
    sender.send_email(EMAIL)  # and one at a time

    assert len(fake_sendgrid.sent) == 7
    # at most one per request in flight (one answered before the next left may be reused)
    assert len({r.client_port for r in fake_sendgrid.requests}) <= 3


def test_connections_the_server_closed_while_idle_are_replaced(fake_sendgrid):
    sender = SendGridEmailSender(API_KEY, host=fake_sendgrid.url)
    _answers(sender.start_emails(_emails(3)))
    fake_sendgrid.close_idle_connections()

    answers = _answers(sender.start_emails(_emails(3)))  # not unknown outcomes

    assert all(isinstance(result, str) for result in answers.values())
    assert len(fake_sendgrid.sent) == 6


def test_a_timeout_makes_only_its_email_unknown(fake_sendgrid):
    hold = threading.Event()
    fake_sendgrid.fail_next(Fault(hold=hold))
    sender = SendGridEmailSender(API_KEY, host=fake_sendgrid.url, timeout=0.5)
    try:
        answers = _answers(sender.start_emails(_emails(4)))
    finally:
        hold.set()

    held = _touchpoint(fake_sendgrid.requests[0]) - 1
    assert isinstance(answers[held], UnknownOutcome)
    assert str(answers[held]) == (
        "SendGrid sent no answer (TimeoutError, timeout 0.5s); the email may have been accepted"
    )
    assert sorted(i for i, result in answers.items() if isinstance(result, str)) == sorted(
        {0, 1, 2, 3} - {held}
    )


def test_nothing_heard_for_a_while_is_said(fake_sendgrid):
    hold, reached = threading.Event(), threading.Event()
    fake_sendgrid.fail_next(Fault(reached=reached, hold=hold))
    sender = SendGridEmailSender(API_KEY, host=fake_sendgrid.url)
    quiet = 0

    flight = sender.start_emails(_emails(1))
    for answer in flight.answers(quiet=0.05):
        if answer is None:
            quiet += 1
            hold.set()
        else:
            assert isinstance(answer[1], str)
    assert quiet >= 1


def test_a_refused_connection_is_transient(fake_sendgrid):
    url = fake_sendgrid.url
    fake_sendgrid.stop()
    answers = _answers(SendGridEmailSender(API_KEY, host=url).start_emails(_emails(2)))

    assert set(answers) == {0, 1}
    for result in answers.values():
        assert isinstance(result, TransientProviderError)
        assert str(result).startswith("cannot reach SendGrid: ")


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        (too_many_requests(reset_in=30), TransientProviderError),
        (server_error(), TransientProviderError),
        (Fault(400, error_body("Not a verified Sender Identity.", "from")), PermanentProviderError),
        (Fault(413, b"<html>too large</html>"), PermanentProviderError),
        (Fault(202), UnknownOutcome),  # accepted, but no X-Message-Id
    ],
)
def test_answers_mean_what_they_mean_one_at_a_time(fake_sendgrid, fault, kind):
    sender = SendGridEmailSender(API_KEY, host=fake_sendgrid.url)
    fake_sendgrid.fail_next(fault)
    with pytest.raises(kind) as one_at_a_time:
        sender.send_email(EMAIL)

    fake_sendgrid.fail_next(fault)
    answers = _answers(sender.start_emails(_emails(3)))

    failed = [result for result in answers.values() if not isinstance(result, str)]
    assert [(type(e), str(e)) for e in failed] == [(kind, str(one_at_a_time.value))]
    if kind is TransientProviderError:
        assert failed[0].retry_after == pytest.approx(one_at_a_time.value.retry_after, abs=1.5)
    assert len(fake_sendgrid.sent) == 2


def test_a_wrong_api_key_fails_every_email_of_the_wave(fake_sendgrid):
    sender = SendGridEmailSender("SG.revoked", host=fake_sendgrid.url)
    answers = _answers(sender.start_emails(_emails(2)))

    assert [str(result) for result in answers.values()] == [
        "SendGrid 401: The provided authorization grant is invalid, expired, or revoked"
    ] * 2


def test_a_change_of_the_clients_headers_reaches_the_next_wave(fake_sendgrid):
    sender = SendGridEmailSender(API_KEY, host=fake_sendgrid.url)
    _answers(sender.start_emails(_emails(2)))
    sender._mail_send.request_headers["Authorization"] = "Bearer other"

    _answers(sender.start_emails(_emails(2)))

    assert [r.headers["Authorization"] for r in fake_sendgrid.requests] == (
        [f"Bearer {API_KEY}"] * 2 + ["Bearer other"] * 2
    )


def test_a_wave_sends_the_requests_send_email_sends(fake_sendgrid):
    sender = SendGridEmailSender(API_KEY, host=fake_sendgrid.url)
    emails = [
        EMAIL._replace(touchpoint_id=1, html="<p>Merci Amélie — à bientôt</p>"),
        EMAIL._replace(touchpoint_id=2, to_name=None, subject="Your order #10002 is on its way"),
        EMAIL._replace(touchpoint_id=30, text="x" * 70_000),
    ]
    for email in emails:
        sender.send_email(email)
    one_at_a_time = list(fake_sendgrid.requests)
    fake_sendgrid.requests.clear()

    _answers(sender.start_emails(emails))

    def seen(requests):
        return [
            (r.method, r.path, list(r.headers.items()), r.body)
            for r in sorted(requests, key=_touchpoint)
        ]

    assert seen(fake_sendgrid.requests) == seen(one_at_a_time)
