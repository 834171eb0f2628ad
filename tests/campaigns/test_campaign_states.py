"""Campaign states for the campaigns page: enabled, disabled, paused by the deliverability
guard, or invalid with the file:line problems that belong to each campaign."""

from __future__ import annotations

from datetime import timedelta

from processing.journeys import at

from postpurchase.campaigns.states import campaign_states
from postpurchase.outcomes.guard import pause_campaign, resume_campaign
from postpurchase.settings import PROJECT_ROOT
from postpurchase.store.database import transaction

SHIPPED = PROJECT_ROOT / "config" / "campaigns.yaml"
TEMPLATES = PROJECT_ROOT / "templates"
NOW = at("2026-11-27T12:00:00+00:00")


def test_the_shipped_file_is_valid_and_every_campaign_enabled():
    states = campaign_states(SHIPPED, TEMPLATES)
    assert states.valid
    assert [s.campaign_id for s in states.campaigns][:3] == [
        "delivery_checkin",
        "setup_tips",
        "review_request",
    ]
    assert {s.state for s in states.campaigns} == {"enabled"}


def test_a_paused_campaign_says_why_until_resumed(store):
    with transaction(store) as session:
        pause_campaign(session, "review_request", reason="complaint rate 0.5% > 0.3%", now=NOW)
        pause_campaign(session, "win_back", reason="paused by hand", now=NOW)
        resume_campaign(session, "win_back", now=NOW + timedelta(hours=1))
    with store() as session:
        states = {
            s.campaign_id: s for s in campaign_states(SHIPPED, TEMPLATES, session=session).campaigns
        }
    review = states["review_request"]
    assert (review.state, review.paused_reason, review.paused_at) == (
        "paused",
        "complaint rate 0.5% > 0.3%",
        NOW,
    )
    assert states["win_back"].state == "enabled"


def test_disabled_and_invalid_campaigns_with_their_lines():
    text = SHIPPED.read_text(encoding="utf-8")
    disabled = text.replace("  - id: nps_survey\n", "  - id: nps_survey\n    enabled: false\n")
    states = {s.campaign_id: s.state for s in campaign_states(disabled, TEMPLATES).campaigns}
    assert states["nps_survey"] == "disabled" and states["setup_tips"] == "enabled"

    broken = text.replace("delay: 3d", "delay: soon", 1).replace(
        "template: win_back", "template: no_such_template"
    )
    lines = broken.splitlines()
    delay_line = lines.index("    delay: soon") + 1
    result = campaign_states(broken, TEMPLATES)
    assert not result.valid
    found = {s.campaign_id: s for s in result.campaigns}
    assert {s.state for s in result.campaigns} == {"invalid"}
    assert found["setup_tips"].problems == (
        f"campaigns.yaml (edited):{delay_line}: delay: 'soon' is not a duration; write e.g. "
        "3d, 2h30m, 1w or ISO 8601 such as P3D, PT2H30M",
    )
    assert found["delivery_checkin"].problems == ()
    assert found["win_back"].problems == ()  # structure first: templates once it is sound


def test_yaml_that_does_not_parse_is_the_files_problem():
    result = campaign_states("campaigns: [\n  - id: x\n", TEMPLATES)
    assert not result.valid and result.campaigns == ()
    assert result.problems[0].startswith("campaigns.yaml (edited):")


def test_a_missing_template_belongs_to_its_campaign():
    text = SHIPPED.read_text(encoding="utf-8").replace(
        "template: win_back", "template: no_such_template"
    )
    found = {s.campaign_id: s for s in campaign_states(text, TEMPLATES).campaigns}
    assert len(found["win_back"].problems) >= 1
    assert all("no_such_template" in p for p in found["win_back"].problems)
    assert found["vip_welcome"].problems == ()
