"""Subject keys of reward messages, which carry what the message is about (touchpoints are
unique per subject, campaign, step and channel, so each fact is told once):

    reward:<redemption id>                          reward.issued
    points_expiring:<customer id>:<date>:<points>   points.expiring (the earliest expiry date)
"""

from __future__ import annotations

from datetime import date


def reward_subject(redemption_id: int) -> str:
    return f"reward:{redemption_id}"


def expiring_subject(customer_id: int, on: date, points: int) -> str:
    return f"points_expiring:{customer_id}:{on.isoformat()}:{points}"


def redemption_of(subject: str) -> int | None:
    kind, _, rest = subject.partition(":")
    return int(rest) if kind == "reward" and rest.isdigit() else None


def expiring_of(subject: str) -> tuple[date, int] | None:
    parts = subject.split(":")
    if len(parts) != 4 or parts[0] != "points_expiring":
        return None
    try:
        return date.fromisoformat(parts[2]), int(parts[3])
    except ValueError:
        return None
