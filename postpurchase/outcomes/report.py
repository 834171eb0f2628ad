"""What ``postpurchase report`` and the measure_outcomes run note show, read from the small
aggregate tables (``campaign_days``, ``outcome_snapshots``): a report never scans messages.

``build_report`` returns plain data (JSON-ready: money as Decimal text, rates as floats):

- ``campaigns``: one row per campaign, variant and arm over the period, the funnel
  (``planned``, ``held_out``, ``sent``, ``delivered``, ``opened``, ``clicked``, ``converted``,
  ``revenue``, ``unsubscribed``, ``complaints``) and rates;
- ``uplift``: one row per campaign with a holdout, with the verdict;
- ``variants``: for campaigns with variants, each variant against the first;
- ``kpis``: the shop's numbers from the last refresh;
- ``paused``: campaigns the deliverability guard (or ops) paused.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from postpurchase.outcomes.guard import paused_campaigns
from postpurchase.outcomes.kpis import shop_kpis
from postpurchase.outcomes.refresh import shop_currency
from postpurchase.outcomes.uplift import measure_uplift
from postpurchase.store.models import CampaignDay, OutcomeSnapshot

FUNNEL = (
    "planned",
    "held_out",
    "sent",
    "delivered",
    "opened",
    "clicked",
    "converted",
    "revenue",
    "unsubscribed",
    "complaints",
)
_SUMMED = (
    "planned",
    "held_out",
    "sent",
    "delivered",
    "opened",
    "clicked",
    "scanner_clicks",
    "bounced",
    "complaints",
    "unsubscribed",
    "converted",
    "revenue",
    "recipients",
    "buyers",
    "buyer_revenue",
)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _money(value: Any) -> str:
    return str(Decimal(value or 0).quantize(Decimal("0.01")))


def campaign_rows(
    session: Session, *, since: datetime | None, campaign: str | None, shop: str | None = None
) -> list[dict[str, Any]]:
    """The funnel per campaign, variant and arm over the days from ``since`` on, of every
    shop together or of ``shop`` alone."""
    t = CampaignDay
    query = select(
        t.campaign_id, t.variant, t.arm, *(func.sum(getattr(t, name)) for name in _SUMMED)
    ).group_by(t.campaign_id, t.variant, t.arm)
    if since is not None:
        query = query.where(t.day >= since.astimezone(UTC).date().isoformat())
    if campaign is not None:
        query = query.where(t.campaign_id == campaign)
    if shop is not None:
        query = query.where(t.shop == shop)
    rows = []
    for campaign_id, variant, arm, *sums in session.execute(query).all():
        n = dict(zip(_SUMMED, sums, strict=True))
        ints = {k: int(v or 0) for k, v in n.items() if k not in ("revenue", "buyer_revenue")}
        rows.append(
            {
                "id": campaign_id,
                "variant": variant or None,
                "arm": arm,
                **{k: ints[k] for k in FUNNEL if k != "revenue"},
                "revenue": _money(n["revenue"]),
                "bounced": ints["bounced"],
                "scanner_clicks": ints["scanner_clicks"],
                "recipients": ints["recipients"],
                "buyers": ints["buyers"],
                "conversion_rate": _rate(ints["buyers"], ints["recipients"]),
                "revenue_per_recipient": (
                    _money(Decimal(n["buyer_revenue"] or 0) / ints["recipients"])
                    if ints["recipients"]
                    else None
                ),
                "click_rate": _rate(ints["clicked"], ints["sent"]),
                "unsubscribe_rate": _rate(ints["unsubscribed"], ints["sent"]),
                "complaint_rate": _rate(ints["complaints"], ints["sent"]),
            }
        )
    order = {"treatment": 0, "holdout": 1}
    rows.sort(key=lambda r: (r["id"], r["variant"] or "", order.get(r["arm"], 2)))
    return rows


def uplift_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per campaign with held-out recipients: treatment against holdout."""
    arms: dict[str, dict[str, list[int]]] = defaultdict(
        lambda: {"treatment": [0, 0], "holdout": [0, 0]}
    )
    for row in rows:
        if row["arm"] in ("treatment", "holdout"):
            counts = arms[row["id"]][row["arm"]]
            counts[0] += row["recipients"]
            counts[1] += row["buyers"]
    result = []
    for campaign, by_arm in sorted(arms.items()):
        if not by_arm["holdout"][0] and not any(r["held_out"] for r in rows if r["id"] == campaign):
            continue
        u = measure_uplift(
            campaign,
            treated=by_arm["treatment"][0],
            treated_buyers=by_arm["treatment"][1],
            held=by_arm["holdout"][0],
            held_buyers=by_arm["holdout"][1],
        )
        result.append(
            {
                "campaign": campaign,
                "treatment_rate": round(u.treatment_rate, 4),
                "holdout_rate": round(u.holdout_rate, 4),
                "uplift": round(u.uplift, 4),
                "ci_low": round(u.ci_low, 4),
                "ci_high": round(u.ci_high, 4),
                "significant": u.significant,
                "treatment_recipients": u.treatment_recipients,
                "holdout_recipients": u.holdout_recipients,
                "verdict": u.verdict,
            }
        )
    return result


def variant_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each variant (treatment arm) against the campaign's first variant: conversion."""
    by_campaign: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        if row["variant"] and row["arm"] == "treatment":
            by_campaign[row["id"]].append(row)
    result = []
    for campaign, variants in sorted(by_campaign.items()):
        base, *others = variants
        for other in others:
            u = measure_uplift(
                campaign,
                treated=other["recipients"],
                treated_buyers=other["buyers"],
                held=base["recipients"],
                held_buyers=base["buyers"],
            )
            result.append(
                {
                    "campaign": campaign,
                    "variant": other["variant"],
                    "against": base["variant"],
                    "rate": round(u.treatment_rate, 4),
                    "against_rate": round(u.holdout_rate, 4),
                    "difference": round(u.uplift, 4),
                    "ci_low": round(u.ci_low, 4),
                    "ci_high": round(u.ci_high, 4),
                    "significant": u.significant,
                }
            )
    return result


def build_report(
    session: Session,
    *,
    since: datetime | None = None,
    campaign: str | None = None,
    now: datetime | None = None,
    shop: str | None = None,
) -> dict[str, Any]:
    """The report over the days from ``since`` on (all stored days when None), of every
    shop or of ``shop`` alone ('' the default shop)."""
    now = now or datetime.now(UTC)
    rows = campaign_rows(session, since=since, campaign=campaign, shop=shop)
    snapshot = session.get(OutcomeSnapshot, "kpis")
    if shop is not None:  # one shop's: computed here, the snapshot is every shop's
        kpis = shop_kpis(session, now=now, shop=shop).as_dict()
    elif snapshot is not None:
        kpis = snapshot.data
    else:  # before the first refresh, computed here rather than left empty
        kpis = shop_kpis(session, now=now).as_dict()
    return {
        "shop": shop,
        "since": since.isoformat() if since else None,
        "currency": shop_currency(session),
        "refreshed_at": snapshot.refreshed_at.isoformat() if snapshot else None,
        "campaigns": rows,
        "uplift": uplift_rows(rows),
        "variants": variant_rows(rows),
        "kpis": kpis,
        "paused": {k: v.reason for k, v in sorted(paused_campaigns(session).items())},
    }


def as_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, sort_keys=False)


def as_csv(report: dict[str, Any]) -> str:
    """The campaign rows, one line each (uplift and KPIs are in the JSON and table forms)."""
    out = io.StringIO()
    rows = report["campaigns"]
    names = list(rows[0]) if rows else ["id", "variant", "arm", *FUNNEL]
    writer = csv.DictWriter(out, fieldnames=names, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.1f}%"


def funnel_lines(report: dict[str, Any]) -> list[str]:
    """The funnel per campaign, variant and arm, and the uplift verdicts, as text lines."""
    currency = report.get("currency") or ""
    head = (
        f"{'campaign':<18} {'variant':<8} {'arm':<9} {'planned':>7} {'sent':>7} "
        f"{'deliv':>7} {'opened':>7} {'clicked':>7} {'conv':>5} {'revenue':>11}"
    )
    lines = (
        [head] if report.get("shop") is None else [f"shop {report['shop'] or '(default)'}", head]
    )
    if not report["campaigns"]:
        lines.append("(no messages measured in the period: measure_outcomes refreshes hourly)")
    for r in report["campaigns"]:
        lines.append(
            f"{r['id']:<18} {r['variant'] or '-':<8} {r['arm']:<9} {r['planned']:>7} "
            f"{r['sent']:>7} {r['delivered']:>7} {r['opened']:>7} {r['clicked']:>7} "
            f"{r['converted']:>5} {r['revenue']:>7} {currency}"
        )
    for u in report["uplift"]:
        lines.append(f"uplift {u['campaign']}: {u['verdict']}")
    return lines


def as_table(report: dict[str, Any]) -> str:
    lines = funnel_lines(report)
    for v in report["variants"]:
        verdict = "significant" if v["significant"] else "not significant yet"
        lines.append(
            f"variant {v['campaign']}/{v['variant']} vs {v['against']}: "
            f"{_pct(v['rate'])} vs {_pct(v['against_rate'])} ({verdict})"
        )
    k = report["kpis"]
    lines.append(
        f"repeat purchase rate {_pct(k.get('repeat_purchase_rate'))}, "
        f"median days to a second order {k.get('median_days_to_second_order') or '-'}, "
        f"CSAT {_pct(k.get('csat'))}, NPS {k.get('nps') if k.get('nps') is not None else '-'}, "
        f"review rate {_pct(k.get('review_rate'))}, "
        f"points outstanding {k.get('points_outstanding', 0)}"
    )
    for campaign, reason in report["paused"].items():
        lines.append(f"PAUSED {campaign}: {reason}")
    return "\n".join(lines) + "\n"
