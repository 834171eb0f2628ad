"""No review gating: ``campaigns validate`` refuses a review request conditioned on a score."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from postpurchase.campaigns.gating import score_words
from postpurchase.cli import main
from postpurchase.settings import PROJECT_ROOT

SHIPPED = PROJECT_ROOT / "config" / "campaigns.yaml"
REVIEW_STEP = "    template: review_request\n"


def _with_condition(tmp_path, when):
    text = SHIPPED.read_text()
    assert text.count(REVIEW_STEP) == 1
    path = tmp_path / "campaigns.yaml"
    path.write_text(text.replace(REVIEW_STEP, f"{REVIEW_STEP}    when: {when}\n"))
    line = path.read_text().splitlines().index(f"    when: {when}") + 1
    return path, line


@pytest.mark.parametrize(
    "when",
    [
        "survey.score >= 4",
        "customer.nps > 8",
        "order.csat is not none and order.csat >= 4",
        "order['survey_score'] == 5",
        "feedback.rating > 3",
    ],
)
def test_a_review_request_gated_on_a_score_is_refused_with_the_reason(tmp_path, when):
    path, line = _with_condition(tmp_path, when)

    result = CliRunner().invoke(main, ["campaigns", "validate", str(path)])

    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output  # the reason, not an "unknown name" as well
    assert lines[0].startswith(f"{path}:{line}: campaign review_request: when reads ")
    assert "review gating" in lines[0]
    assert "Google's review policies" in lines[0] and "FTC's Endorsement Guides" in lines[0]


def test_other_conditions_on_a_review_request_stay_allowed(tmp_path):
    path, _ = _with_condition(tmp_path, "order.total > 20")

    result = CliRunner().invoke(main, ["campaigns", "validate", str(path)])

    assert result.exit_code == 0, result.output


def test_score_words_reads_names_attributes_and_keys_only():
    assert score_words("order.total > 20 and 'score' in order.name") == set()
    assert score_words("survey['nps'] > 8") == {"survey", "nps"}
    assert score_words("not (") == set()
