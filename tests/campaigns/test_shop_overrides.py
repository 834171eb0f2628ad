"""The ``shops:`` section of the campaign file: one shop disables a campaign, waits longer or
uses another template; every other shop keeps the campaign as it is; mistakes name the line."""

from __future__ import annotations

import textwrap
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from postpurchase.campaigns.config import load_campaigns
from postpurchase.campaigns.timing import Delay
from postpurchase.campaigns.validation import campaign_problems

FILE = """\
version: 1
campaigns:
  - id: thanks
    description: Thank the customer right after payment.
    trigger: order.paid
    delay: 10m
    channels: [email]
    template: thanks
    consent: transactional
  - id: review_request
    description: Ask for a review a week after delivery.
    trigger: order.delivered
    delay: 7d
    channels: [email]
    template: thanks
    consent: marketing
shops:
  northwind-nordic.myshopify.com:
    campaigns:
      review_request:
        delay: 14d
        template: thanks_nordic
      thanks:
        enabled: false
  "https://northwind-goods.fr/":
    campaigns:
      review_request: {enabled: false}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "campaigns.yaml"
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    root = tmp_path / "templates"
    (root / "email").mkdir(parents=True)
    for name in ("thanks", "thanks_nordic"):
        for suffix in ("subject", "html", "txt"):
            (root / "email" / f"{name}.{suffix}.j2").write_text("Hi {{ customer.first_name }}")
    return root


def test_overrides_apply_to_their_shop_only(tmp_path: Path, templates: Path) -> None:
    path = _write(tmp_path, FILE)
    assert campaign_problems(path, templates) == []
    config = load_campaigns(path)

    nordic = config.for_shop("northwind-nordic.myshopify.com")
    assert [c.id for c in nordic.enabled()] == ["review_request"]
    # keys are matched in lower case, as the shops file lists them
    assert config.for_shop("Northwind-Nordic.MyShopify.com").enabled() == nordic.enabled()
    review = nordic.by_id("review_request")
    assert review is not None
    assert (review.delay, review.template) == (Delay(days=14), "thanks_nordic")

    french = config.for_shop("https://northwind-goods.fr/")
    assert [c.id for c in french.enabled()] == ["thanks"]

    for other in ("", "another-shop.myshopify.com"):
        assert config.for_shop(other) is config
        assert [c.id for c in config.enabled()] == ["thanks", "review_request"]
        assert config.by_id("review_request").delay == Delay(days=7)  # type: ignore[union-attr]


def test_shop_zones_are_kept_by_the_shops_configs(tmp_path: Path) -> None:
    config = load_campaigns(_write(tmp_path, FILE)).with_shop_zones(
        {"northwind-nordic.myshopify.com": ZoneInfo("Europe/Oslo")}
    )
    utc = ZoneInfo("UTC")
    nordic = config.for_shop("northwind-nordic.myshopify.com")
    assert nordic.shop_zone("northwind-nordic.myshopify.com", utc) == ZoneInfo("Europe/Oslo")
    assert config.shop_zone("https://northwind-goods.fr/", utc) == utc


def test_override_mistakes_name_their_line(tmp_path: Path, templates: Path) -> None:
    path = _write(
        tmp_path,
        FILE
        + """\
  Northwind Example:
    campaigns:
      thanks: {enabled: false}
  third.example.com:
    campaigns:
      win_back: {enabled: false}
      thanks: {delay: soon, colour: red}
      review_request: {template: missing_one}
""",
    )
    problems = campaign_problems(path, templates)
    assert any(p.startswith(f"{path}:34:") and "delay" in p for p in problems), problems
    assert any(p.startswith(f"{path}:34:") and "unknown key 'colour'" in p for p in problems)
    # the structure first: once it is sound, the semantic and template checks
    fixed = path.read_text().replace("{delay: soon, colour: red}", "{delay: 2d}")
    path.write_text(fixed)
    problems = campaign_problems(path, templates)
    assert f"{path}:28: shop key 'Northwind Example'" in problems[0]
    assert problems[1] == f"{path}:33: shop third.example.com: no campaign 'win_back' to override"
    # then the templates an override names
    fixed = fixed.replace("Northwind Example", "northwind.example").replace("win_back", "thanks")
    path.write_text(fixed.replace("      thanks: {delay: 2d}\n", ""))
    problems = campaign_problems(path, templates)
    assert len(problems) == 3  # subject, HTML and text
    assert problems[0].startswith(f"{path}:34: campaign review_request: template ")
    assert "missing_one.subject.j2 is missing" in problems[0]
