"""What a dispatch run tells ops: outcomes, and why touchpoints were skipped.

The skip reasons are read back from the rows each chunk recorded (one grouped query per
chunk), so the note and the task log say why without the dispatcher counting text. Reasons
that name an order ("order #1005 is refunded") are counted under one wording, so a run's note
lists a handful of reasons, not one line per order.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from postpurchase.dispatch.running import summarize
from postpurchase.store.models import Touchpoint, TouchpointStatus

IDLE = "idle: nothing due"
_ORDER_NAME = re.compile(r"^order \S+ is ")
_MAX_REASONS = 12  # the note has room for about this many lines (1,000 characters)


def reason_key(campaign_id: str, reason: str | None) -> str:
    """``campaign: reason``, with the order's name taken out of order-state reasons."""
    return f"{campaign_id}: {_ORDER_NAME.sub('order is ', reason or 'no reason recorded')}"


def skip_reasons(session: Session, ids: Sequence[int]) -> dict[str, int]:
    """Counts per ``campaign: reason`` of the touchpoints among ``ids`` that are skipped."""
    if not ids:
        return {}
    rows = session.execute(
        select(Touchpoint.campaign_id, Touchpoint.reason, func.count())
        .where(Touchpoint.id.in_(ids), Touchpoint.status == TouchpointStatus.SKIPPED)
        .group_by(Touchpoint.campaign_id, Touchpoint.reason)
    )
    counts: Counter[str] = Counter()
    for campaign_id, reason, n in rows:
        counts[reason_key(campaign_id, reason)] += n
    return dict(counts)


def dispatch_note(results: Sequence[Mapping[str, Any]]) -> str:
    """The run's note: one line of outcomes, then the skip reasons, most frequent first;
    just ``idle: nothing due`` when the run had nothing to send."""
    counts = [dict(r["counts"]) for r in results]
    reasons: Counter[str] = Counter()
    for result in results:
        reasons.update(result["skipped"])
    if not any(counts):
        return IDLE
    lines = [summarize(counts)]
    common = reasons.most_common()
    lines += [f"  skipped, {reason}: {n}" for reason, n in common[:_MAX_REASONS]]
    if len(common) > _MAX_REASONS:
        rest = sum(n for _, n in common[_MAX_REASONS:])
        lines.append(f"  skipped for {len(common) - _MAX_REASONS} other reason(s): {rest}")
    return "\n".join(lines)
