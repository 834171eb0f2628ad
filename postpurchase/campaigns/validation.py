"""The whole check of a campaign file: what ``campaigns validate`` and each DAG run apply."""

from __future__ import annotations

from pathlib import Path

from postpurchase.campaigns.config import CampaignConfig, parse_campaigns
from postpurchase.campaigns.template_check import check_templates
from postpurchase.exceptions import ConfigError
from postpurchase.yaml_source import read_yaml


def campaign_problems(path: Path, templates_dir: Path) -> list[str]:
    """Every problem of the campaign file at ``path`` as ``file:line: message``; [] if valid.

    Structure is checked first; templates and conditions against sample data only once the
    structure is sound.
    """
    try:
        data, source = read_yaml(path)
        config = parse_campaigns(data, source)
    except ConfigError as exc:
        return str(exc).splitlines()
    return list(check_templates(config, source, templates_dir))


def load_valid_campaigns(path: Path, templates_dir: Path) -> CampaignConfig:
    """The campaigns at ``path`` after the full check; ConfigError listing every problem."""
    data, source = read_yaml(path)
    config = parse_campaigns(data, source)
    problems = list(check_templates(config, source, templates_dir))
    if problems:
        raise ConfigError("\n".join(problems))
    return config
