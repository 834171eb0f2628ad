"""No review gating: a review request goes to every buyer, whatever they said in a survey.

Asking only the customers who gave a good score for a public review ("review gating") makes
the published reviews look better than the buyers' experience: Google's review policies
prohibit it (merchants may not selectively solicit positive reviews), and the FTC's
Endorsement Guides (16 CFR 255) and its 2024 rule on consumer reviews (16 CFR 465) treat
it as deceptive. So ``campaigns validate`` refuses a review request whose ``when`` looks at
a survey score; unhappy customers are answered by ``service_recovery`` instead, and asked
for their review like everyone else.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from jinja2 import TemplateError, nodes
from jinja2.sandbox import SandboxedEnvironment

from postpurchase.yaml_source import SourceMap

# Names and attributes that carry what a customer answered in a survey or check-in.
SCORE_WORDS = frozenset(
    {
        "survey",
        "surveys",
        "survey_score",
        "score",
        "scores",
        "nps",
        "csat",
        "feedback",
        "satisfaction",
        "sentiment",
        "rating",
        "ratings",
        "checkin",
        "check_in",
    }
)
REASON = (
    "a review request may not depend on a survey score (review gating): Google's review "
    "policies prohibit asking only satisfied customers for reviews, and the FTC's "
    "Endorsement Guides treat it as deceptive. Ask every buyer; answer unhappy ones with "
    "the service_recovery campaign"
)
_ENV = SandboxedEnvironment()


def is_review_request(campaign: Mapping[str, Any]) -> bool:
    """A campaign asking for a review: its id or template says so (one that follows a review,
    triggered by ``review.submitted``, asks for none)."""
    if campaign.get("trigger") == "review.submitted":
        return False
    return any("review" in str(campaign.get(key, "")) for key in ("id", "template"))


def score_words(expression: str) -> set[str]:
    """The survey-score names, attributes and keys ``expression`` reads ({} if it does not
    parse: the condition check reports that)."""
    try:
        tree = _ENV.parse("{{ (" + expression + ") }}")
    except TemplateError:
        return set()
    used: set[str] = set()
    for node in tree.find_all((nodes.Name, nodes.Getattr, nodes.Getitem)):
        if isinstance(node, nodes.Name):
            used.add(node.name)
        elif isinstance(node, nodes.Getattr):
            used.add(node.attr)
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            used.add(str(node.arg.value))
    return {word for word in used if word.lower() in SCORE_WORDS}


def gating_problems(data: Any, source: SourceMap) -> Iterator[tuple[int, str]]:
    """(campaign index, ``file:line: message``) for each review request gated on a score."""
    campaigns = data.get("campaigns") if isinstance(data, dict) else None
    if not isinstance(campaigns, list):
        return
    for index, campaign in enumerate(campaigns):
        if not isinstance(campaign, dict) or not is_review_request(campaign):
            continue
        when = campaign.get("when")
        if not isinstance(when, str):
            continue
        words = score_words(when)
        if words:
            where = source.where(("campaigns", index, "when"))
            read = ", ".join(sorted(words))
            yield index, f"{where}: campaign {campaign.get('id')}: when reads {read}: {REASON}"
