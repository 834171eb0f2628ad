"""What a dispatch run's note and log say: outcomes, skip reasons by campaign, or idle."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fakes.fixtures import add_customer, add_order, add_touchpoint

from postpurchase.dispatch.notes import IDLE, dispatch_note, reason_key, skip_reasons
from postpurchase.store.claims import claim_due_touchpoints
from postpurchase.store.database import transaction
from postpurchase.store.models import Channel, ConsentState

NOW = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)


def test_reasons_that_name_an_order_count_as_one():
    assert reason_key("review_request", "order #1005 is refunded") == (
        "review_request: order is refunded"
    )
    assert reason_key("review_request", "order 77-B is cancelled and returned") == (
        "review_request: order is cancelled and returned"
    )
    assert reason_key("win_back", "email marketing consent denied") == (
        "win_back: email marketing consent denied"
    )


def test_a_run_with_nothing_to_send_is_one_idle_line():
    assert dispatch_note([{"counts": {}, "skipped": {}}]) == IDLE == "idle: nothing due"


def test_the_note_lists_skip_reasons_most_frequent_first():
    note = dispatch_note(
        [
            {"counts": {"sent": 5, "skipped": 2}, "skipped": {"win_back: no consent": 2}},
            {
                "counts": {"sent": 1, "skipped": 3},
                "skipped": {"win_back: no consent": 1, "review_request: order is refunded": 2},
            },
        ]
    )
    assert note.splitlines() == [
        "11 touchpoint(s): sent 6, skipped 5, deferred 0, retrying 0, failed 0, unknown 0",
        "  skipped, win_back: no consent: 3",
        "  skipped, review_request: order is refunded: 2",
    ]


def test_skip_reasons_are_read_from_what_the_chunk_recorded(store, make_dispatcher):
    with transaction(store) as session:
        silent = add_customer(session, email_marketing_consent_state=ConsentState.DENIED)
        refunded = add_order(session, silent, financial_status="refunded", name="#1005")
        other = add_order(session, silent, financial_status="refunded", name="#1006")
        happy = add_customer(session)
        for order in (refunded, other):
            add_touchpoint(session, silent, order, "review_request", Channel.EMAIL, NOW)
        add_touchpoint(session, silent, None, "win_back", Channel.EMAIL, NOW)
        add_touchpoint(
            session, happy, add_order(session, happy), "delivery_checkin", Channel.EMAIL, NOW
        )
        ids = claim_due_touchpoints(
            session, worker="w", now=NOW, limit=10, lease=timedelta(minutes=5)
        )

    counts = make_dispatcher(NOW).run_chunk("w", ids)
    with store() as session:
        reasons = skip_reasons(session, ids)

    assert counts == {"sent": 1, "skipped": 3}
    assert reasons == {
        "review_request: order is refunded": 2,
        "win_back: email marketing consent denied": 1,
    }
    assert dispatch_note([{"counts": counts, "skipped": reasons}]).splitlines()[1:] == [
        "  skipped, review_request: order is refunded: 2",
        "  skipped, win_back: email marketing consent denied: 1",
    ]
