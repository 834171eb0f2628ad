"""``postpurchase campaigns replan``: an edited campaign applied to pending touchpoints."""

from __future__ import annotations

from click.testing import CliRunner
from journeys import at, order_event, put
from sqlalchemy import select

from postpurchase.cli import main
from postpurchase.settings import PROJECT_ROOT
from postpurchase.store.models import Touchpoint

SHIPPED = PROJECT_ROOT / "config" / "campaigns.yaml"


def test_replan_applies_an_edited_campaign_to_pending_touchpoints(
    store, drain, tmp_path, monkeypatch
):
    put(store, order_event("order.delivered", "2026-03-06T17:00:00+00:00"))
    drain()
    edited = tmp_path / "campaigns.yaml"
    edited.write_text(
        SHIPPED.read_text()
        .replace("delay: 7d", "delay: 10d")
        .replace("    reminders:\n      delay: 5d\n      count: 1\n", "")
    )
    monkeypatch.setenv("POSTPURCHASE_CAMPAIGNS_FILE", str(edited))

    result = CliRunner().invoke(main, ["campaigns", "replan", "review_request"])

    assert result.exit_code == 0, result.output
    assert "1 touchpoint(s) moved, 0 added, 1 cancelled, 0 unchanged" in result.output
    with store() as session:
        rows = session.execute(
            select(Touchpoint.step, Touchpoint.status, Touchpoint.due_at, Touchpoint.reason)
            .where(Touchpoint.campaign_id == "review_request")
            .order_by(Touchpoint.step)
        ).all()
    assert [(r.step, r.status.value) for r in rows] == [(0, "planned"), (1, "cancelled")]
    assert rows[0].due_at == at("2026-03-16T12:00:00-04:00")
    assert rows[1].reason == "replanned: step or channel no longer in the campaign"
    # Running it again changes nothing.
    again = CliRunner().invoke(main, ["campaigns", "replan", "review_request"])
    assert "0 touchpoint(s) moved, 0 added, 0 cancelled, 1 unchanged" in again.output
