"""Each campaign's state as a page shows it: enabled, disabled, paused, or invalid.

- ``invalid``: the campaigns file has problems (``campaigns.validation``); each problem is
  given to the campaign whose lines hold it (a problem outside every campaign, e.g. bad YAML or
  a top-level key, is the file's). An invalid file stops processing altogether (the DAG task
  fails), so every campaign of such a file is reported invalid, the file's own problems kept
  apart in ``CampaignStates.problems``.
- ``paused``: the deliverability guard (``outcomes.guard``) or ops paused it: a
  ``campaign_pauses`` row without ``resumed_at``. Its touchpoints wait, planned.
- ``disabled``: ``enabled: false`` in the file; ``enabled`` otherwise.

``campaign_states(source, templates_dir, session=...)`` takes the file (a Path) or its text
(a str); without a session no pause is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from postpurchase.campaigns.config import parse_campaigns
from postpurchase.campaigns.template_check import check_templates
from postpurchase.campaigns.validation import EDITED
from postpurchase.exceptions import ConfigError
from postpurchase.store.models import CampaignPause
from postpurchase.yaml_source import SourceMap, parse_yaml, read_yaml

State = Literal["enabled", "disabled", "paused", "invalid"]


@dataclass(frozen=True)
class CampaignState:
    """One campaign: its state, and why (pause reason, or its ``file:line`` problems)."""

    campaign_id: str
    state: State
    problems: tuple[str, ...] = ()  # file:line: message, when invalid
    paused_reason: str | None = None
    paused_at: datetime | None = None


@dataclass(frozen=True)
class CampaignStates:
    """Every campaign the file names, in its order; ``problems`` are all of the file's."""

    problems: tuple[str, ...]
    campaigns: tuple[CampaignState, ...]

    @property
    def valid(self) -> bool:
        return not self.problems


def _problems(data: Any, source: SourceMap, templates_dir: Path) -> list[str]:
    try:
        config = parse_campaigns(data, source)
    except ConfigError as exc:
        return str(exc).splitlines()
    return list(check_templates(config, source, templates_dir))


def _line_of(problem: str) -> int | None:
    parts = problem.split(":")
    for part in parts[1:]:
        if part.isdigit():
            return int(part)
    return None


def _end_of_campaigns(data: Any, where: SourceMap) -> float:
    """The line of the first top-level key after the campaigns list (the list's end)."""
    if not isinstance(data, dict) or "campaigns" not in data:
        return 0
    start = where.line(("campaigns",))
    after = [where.line((str(key),)) for key in data if key != "campaigns"]
    return min((line for line in after if line > start), default=float("inf"))


def campaign_states(
    source: Path | str,
    templates_dir: Path,
    *,
    session: Session | None = None,
    label: Path = EDITED,
) -> CampaignStates:
    """The state of each campaign of ``source`` (a file, or YAML text named ``label``)."""
    try:
        data, where = read_yaml(source) if isinstance(source, Path) else parse_yaml(source, label)
    except ConfigError as exc:  # YAML that does not parse names no campaign
        return CampaignStates(tuple(str(exc).splitlines()), ())
    problems = _problems(data, where, templates_dir)
    listed = data.get("campaigns") if isinstance(data, dict) else None
    entries = [c if isinstance(c, dict) else {} for c in listed] if isinstance(listed, list) else []
    starts = [where.line(("campaigns", index)) for index in range(len(entries))]
    end = _end_of_campaigns(data, where)
    mine: list[list[str]] = [[] for _ in entries]
    for problem in problems:
        line = _line_of(problem)
        if line is None or line >= end:
            continue
        owner = max((i for i, start in enumerate(starts) if start <= line), default=None)
        if owner is not None:
            mine[owner].append(problem)
    pauses = _pauses(session) if session is not None else {}
    states = []
    for index, entry in enumerate(entries):
        campaign_id = str(entry.get("id", f"campaign #{index + 1}"))
        pause = pauses.get(campaign_id)
        if problems:
            state = CampaignState(campaign_id, "invalid", tuple(mine[index]))
        elif pause is not None:
            state = CampaignState(campaign_id, "paused", (), pause.reason, pause.paused_at)
        elif entry.get("enabled", True) is False:
            state = CampaignState(campaign_id, "disabled")
        else:
            state = CampaignState(campaign_id, "enabled")
        states.append(state)
    return CampaignStates(tuple(problems), tuple(states))


def _pauses(session: Session) -> dict[str, CampaignPause]:
    rows = session.scalars(select(CampaignPause).where(CampaignPause.resumed_at.is_(None)))
    return {row.campaign_id: row for row in rows}
