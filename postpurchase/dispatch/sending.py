"""The sending half of dispatch: hand a rendered message to its provider and record how
each touchpoint ended.

``send_message`` turns every provider answer into an ``Outcome`` (a refusal fails, an outage
comes back in a later round, anything unclear is ``unknown``, never re-sent blind);
``record_outcomes`` writes outcomes on the rows the worker still holds; ``ChunkLease`` keeps
a slow chunk's rows with their worker.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from postpurchase.channels.delivery import send_with_retries
from postpurchase.channels.senders import OutgoingEmail, OutgoingSms
from postpurchase.dispatch.deciding import GatePolicy
from postpurchase.dispatch.outcomes import Outcome, Pending
from postpurchase.exceptions import (
    PermanentProviderError,
    RecipientOptedOut,
    TransientProviderError,
    UnknownOutcome,
)
from postpurchase.feedback import opt_out_sms
from postpurchase.messages.rendering import RenderedEmail
from postpurchase.store.claims import release_each, renew_leases
from postpurchase.store.models import TouchpointStatus

log = logging.getLogger(__name__)


def send_message(
    pending: Pending,
    *,
    policy: GatePolicy,
    sleep: Callable[[float], None],
    clock: Callable[[], datetime],
    first: str | Exception | None = None,
) -> Outcome:
    """Hand one rendered message to its shop's provider (retrying what may be retried) and
    say how its row ends; never raises. ``first``: what a first attempt made elsewhere
    returned or raised (a wave sent together)."""
    if isinstance(first, str) and policy.send_attempts > 0:
        # The first try, made elsewhere, was accepted: what send_with_retries would return.
        return Outcome.sent(pending.touchpoint_id, first, clock())
    rendered = pending.rendered
    email, sms = pending.shop.email, pending.shop.sms
    try:
        if isinstance(rendered, RenderedEmail):
            # Built for each try made here: a wave's first try was made elsewhere, and most of
            # its messages need no other.
            message_id = send_with_retries(
                _after(first, lambda: email.send_email(outgoing_email(pending))),
                attempts=policy.send_attempts,
                max_wait=policy.max_retry_wait,
                sleep=sleep,
            )
        else:
            outgoing_sms = OutgoingSms(
                touchpoint_id=pending.touchpoint_id,
                campaign_id=pending.campaign_id,
                to=pending.address,
                body=rendered.body,
                segments=rendered.segments.segments,
            )
            message_id = send_with_retries(
                _after(first, lambda: sms.send_sms(outgoing_sms)),
                attempts=policy.send_attempts,
                max_wait=policy.max_retry_wait,
                sleep=sleep,
            )
    except RecipientOptedOut as exc:
        outcome = Outcome.failed(pending.touchpoint_id, str(exc), answered=True)
        outcome.opted_out_phone = pending.address
        return outcome
    except UnknownOutcome as exc:
        return Outcome.unknown(pending.touchpoint_id, str(exc))
    except TransientProviderError as exc:
        return after_outage(pending, exc, policy=policy, clock=clock)
    except PermanentProviderError as exc:
        return Outcome.failed(pending.touchpoint_id, str(exc), answered=True)
    except Exception as exc:
        # A bug or an unforeseen SDK error: whether the message left is not known, so it is
        # recorded unknown (never sent again) and the rest of the group still goes out.
        log.exception("touchpoint %d: unexpected error while sending", pending.touchpoint_id)
        return Outcome.unknown(
            pending.touchpoint_id, f"unexpected {type(exc).__name__} while sending: {exc}"
        )
    return Outcome.sent(pending.touchpoint_id, message_id, clock())


def outgoing_email(pending: Pending) -> OutgoingEmail:
    """The email ``pending`` is, as its shop's email sender takes it."""
    rendered = pending.rendered
    if not isinstance(rendered, RenderedEmail):
        raise TypeError(f"touchpoint {pending.touchpoint_id} is not an email")
    shop = pending.shop.profile
    return OutgoingEmail(
        touchpoint_id=pending.touchpoint_id,
        campaign_id=pending.campaign_id,
        to_email=pending.address,
        to_name=pending.customer.first_name,
        from_email=shop.sender_email,
        from_name=shop.sender_name or shop.name,
        subject=rendered.subject,
        html=rendered.html,
        text=rendered.text,
        unsubscribe_url=pending.unsubscribe_url,
    )


def _after(first: str | Exception | None, send: Callable[[], str]) -> Callable[[], str]:
    """``send``, whose first call returns or raises ``first`` instead when it is given."""
    if first is None:
        return send
    attempts = iter([first])

    def again() -> str:
        answer = next(attempts, None)
        if answer is None:
            return send()
        if isinstance(answer, Exception):
            raise answer
        return answer

    return again


def after_outage(
    pending: Pending,
    exc: TransientProviderError,
    *,
    policy: GatePolicy,
    clock: Callable[[], datetime],
) -> Outcome:
    """The provider kept failing: try again in a later run, or give up after the rounds."""
    rounds = pending.claims
    if rounds >= policy.send_rounds:
        return Outcome.failed(pending.touchpoint_id, f"{exc}; gave up after {rounds} rounds")
    until = clock() + policy.round_backoff * 2 ** max(rounds - 1, 0)
    return Outcome.retrying(pending.touchpoint_id, until, f"round {rounds}: {exc}")


def record_outcomes(
    session: Session, worker: str, outcomes: Sequence[Outcome], *, now: datetime
) -> Counter[str]:
    """Store outcomes on the rows ``worker`` still holds, one statement per kind; counts
    per kind of the rows actually updated. A provider's answer may also replace the
    ``unknown`` of a row this worker claimed."""
    counts: Counter[str] = Counter()
    for kind, rows, also_from in outcome_rows(outcomes):
        counts[kind] += release_each(session, rows, worker=worker, also_from=also_from)
    for outcome in outcomes:
        if outcome.opted_out_phone:
            opt_out_sms(
                session,
                phone=outcome.opted_out_phone,
                source="twilio:21610",
                now=now,
                reference=f"twilio:21610 on touchpoint:{outcome.touchpoint_id}",
            )
    return counts


def outcome_rows(
    outcomes: Sequence[Outcome],
) -> list[tuple[str, list[tuple[int, dict[str, Any]]], tuple[TouchpointStatus, ...]]]:
    """The outcomes as ``release_each`` takes them: per kind, its rows and the statuses
    besides the held ones they may be released from."""
    by_kind: defaultdict[tuple[str, bool], list[tuple[int, dict[str, Any]]]]
    by_kind = defaultdict(list)
    for outcome in outcomes:
        by_kind[(outcome.kind, outcome.answered)].append((outcome.touchpoint_id, outcome.values))
    # The provider's answer is the truth, even when it came after the lease ran out and the
    # sweep recorded the row unknown (still only on a row this worker claimed).
    return [
        (kind, rows, (TouchpointStatus.UNKNOWN,) if answered else ())
        for (kind, answered), rows in by_kind.items()
    ]


class ChunkLease:
    """Keeps a chunk's rows with its worker while the chunk is worked through.

    A chunk of SMS paced at one segment a second, shared by many chunks, can take far longer
    than one lease; rows still waiting would otherwise be claimed by the next run. Renewing at
    every write would cost a row update per message per row, so it is done once a third of the
    lease has passed, in whatever transaction the chunk writes next (or in one of its own when
    every send is waiting). Rows being sent are renewed too: a slow answer keeps its row.
    """

    def __init__(
        self,
        worker: str,
        ids: Sequence[int],
        lease: timedelta,
        clock: Callable[[], datetime],
        leased_until: datetime | None = None,
    ) -> None:
        self.worker = worker
        self.ids = list(ids)
        self.lease = lease
        self.clock = clock
        # Counted from when the rows' earliest lease (``leased_until``, as the chunk read it)
        # was given: a chunk run as soon as it was claimed renews nothing for a third of the
        # lease, and one that waited since its claim renews at its first write. Renewing at
        # every chunk's first write cost a row update for each of its rows (about a fifth of
        # the execution time of the dispatch's statements) and kept that write off the
        # one-statement commit.
        # None (no lease known): renew at the first write.
        self._renewed = None if leased_until is None else leased_until - lease
        self._lock = threading.Lock()

    def due(self) -> bool:
        if not self.ids:
            return False
        with self._lock:
            return self._renewed is None or self.clock() - self._renewed >= self.lease / 3

    def renew_if_due(self, session: Session) -> None:
        now = self.clock()
        with self._lock:
            if self._renewed is not None and now - self._renewed < self.lease / 3:
                return
            self._renewed = now
        renew_leases(session, self.ids, worker=self.worker, until=now + self.lease)
