"""Campaign files: the shipped one validates; every kind of mistake is reported as file:line."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from postpurchase.campaigns.config import load_campaigns
from postpurchase.campaigns.validation import campaign_problems, load_valid_campaigns
from postpurchase.exceptions import ConfigError
from postpurchase.settings import PROJECT_ROOT

SHIPPED = PROJECT_ROOT / "config" / "campaigns.yaml"
TEMPLATES = PROJECT_ROOT / "templates"

GOOD = """\
version: 1
campaigns:
  - id: thanks
    description: Thank the customer right after payment.
    trigger: order.paid
    delay: 10m
    channels: [email]
    template: thanks
    consent: transactional
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "campaigns.yaml"
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    root = tmp_path / "templates"
    (root / "email").mkdir(parents=True)
    for suffix in ("subject", "html", "txt"):
        (root / "email" / f"thanks.{suffix}.j2").write_text("Thanks {{ customer.first_name }}")
    return root


def test_every_shipped_campaign_validates_against_the_shipped_templates():
    config = load_valid_campaigns(SHIPPED, TEMPLATES)

    assert [c.id for c in config.campaigns] == [
        "delivery_checkin",
        "setup_tips",
        "review_request",
        "nps_survey",
        "service_recovery",
        "points_earned",
        "vip_welcome",
        "win_back",
        "reward_issued",
        "points_expiring",
    ]
    assert campaign_problems(SHIPPED, TEMPLATES) == []


def test_a_good_file_has_no_problems(tmp_path, templates):
    assert campaign_problems(write(tmp_path, GOOD), templates) == []


def _problems(tmp_path, templates, text):
    path = write(tmp_path, text)
    return [p.replace(str(path), "FILE") for p in campaign_problems(path, templates)]


def test_structural_mistakes_are_all_reported_with_their_lines(tmp_path, templates):
    problems = _problems(
        tmp_path,
        templates,
        """\
        version: 1
        campaigns:
          - id: thanks
            description: Thank the customer right after payment.
            trigger: order.shipped
            delay: 3 days
            send_window: 9-17
            channels: [email, fax]
            template: thanks
            when: order.total >=
            cancel_on: [order.lost]
            consent: transactional
            colour: blue
        """,
    )

    assert problems == [
        "FILE:5: trigger: Input should be 'order.placed', 'order.paid', 'order.fulfilled', "
        "'order.delivered', 'order.refunded', 'order.cancelled', 'return.requested', "
        "'review.submitted', 'feedback.negative', 'tier.changed', 'customer.lapsed', "
        "'reward.issued' or 'points.expiring'",
        "FILE:6: delay: '3 days' is not a duration; write e.g. 3d, 2h30m, 1w or ISO 8601 "
        "such as P3D, PT2H30M",
        "FILE:7: send_window: '9-17' is not a send window; write local hours like 10:00-19:00",
        "FILE:8: channels[1]: Input should be 'email' or 'sms'",
        "FILE:10: when: expression 'order.total >=' does not compile: unexpected 'end of template'",
        "FILE:11: cancel_on[0]: Input should be 'order.refunded', 'order.cancelled', "
        "'return.requested', 'review.submitted' or 'order.placed'",
        "FILE:13: unknown key 'colour'",
    ]


def test_semantic_mistakes(tmp_path, templates):
    text = GOOD + textwrap.indent(
        textwrap.dedent(
            """\
            - id: thanks
              description: Again.
              trigger: order.paid
              channels: [email]
              template: thanks
              cancel_on: [order.placed]
              consent: marketing
              expires_after: 0s
            """
        ),
        "  ",
    )
    assert _problems(tmp_path, templates, text) == [
        "FILE:10: duplicate campaign id 'thanks' (first at line 3)",
        "FILE:15: campaign thanks: order.placed can only cancel customer-level campaigns "
        "(tier.changed, customer.lapsed)",
        "FILE:17: campaign thanks: expires_after must be longer than 0 (leave it out to send "
        "however late)",
    ]


def test_missing_and_broken_templates_and_conditions_that_fail_on_sample_data(tmp_path, templates):
    (templates / "email" / "thanks.html.j2").write_text("{% if %}")
    (templates / "email" / "thanks.txt.j2").write_text("{{ customer.nickname }}")
    text = GOOD.replace("channels: [email]", "channels: [email, sms]").replace(
        "consent:", "when: order.totl > 10\n    consent:"
    )

    problems = _problems(tmp_path, templates, text)

    root = templates
    assert problems == [
        "FILE:9: campaign thanks: when 'order.totl > 10': 'dict object' has no attribute 'totl'",
        f"FILE:8: campaign thanks: {root}/email/thanks.html.j2:1: Expected an expression, got "
        "'end of statement block'",
        f"FILE:8: campaign thanks: {root}/email/thanks.txt.j2: does not render with sample "
        "data: 'dict object' has no attribute 'nickname'",
        f"FILE:8: campaign thanks: template {root}/sms/thanks.txt.j2 is missing",
    ]


def test_unknown_names_in_conditions(tmp_path, templates):
    text = GOOD.replace("consent:", "when: basket.total > 10\n    consent:")
    assert _problems(tmp_path, templates, text) == [
        "FILE:9: when: expression 'basket.total > 10' uses unknown name(s) basket; "
        "conditions can use customer, items, order, review, tier"
    ]


def test_yaml_syntax_errors_and_duplicate_keys(tmp_path, templates):
    assert _problems(tmp_path, templates, "campaigns:\n  - id: [unclosed\n") == [
        "FILE:3: invalid YAML: expected ',' or ']', but got '<stream end>'"
    ]
    assert _problems(tmp_path, templates, GOOD + "    delay: 1h\n") == [
        "FILE:10: duplicate key 'delay'"
    ]


def test_load_raises_one_config_error_with_every_line(tmp_path):
    path = write(tmp_path, GOOD.replace("10m", "soon").replace("email]", "pigeon]"))
    with pytest.raises(ConfigError) as caught:
        load_campaigns(path)
    assert len(str(caught.value).splitlines()) == 2


def test_a_channel_without_its_template_is_reported(tmp_path):
    templates = tmp_path / "templates"
    shutil.copytree(TEMPLATES, templates)
    (templates / "sms" / "win_back.txt.j2").unlink()
    copy = tmp_path / "campaigns.yaml"
    copy.write_text(
        SHIPPED.read_text().replace(
            "channels: [email]\n    template: win_back", "channels: [sms]\n    template: win_back"
        )
    )
    problems = campaign_problems(copy, templates)
    assert len(problems) == 1
    assert problems[0].endswith(
        "campaign win_back: template " + str(templates / "sms/win_back.txt.j2") + " is missing"
    )
