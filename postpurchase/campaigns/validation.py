"""The whole check of a campaign file: what ``campaigns validate`` and each DAG run apply."""

from __future__ import annotations

from pathlib import Path

from postpurchase.campaigns.config import CampaignConfig, parse_campaigns
from postpurchase.campaigns.template_check import check_templates
from postpurchase.exceptions import ConfigError
from postpurchase.yaml_source import parse_yaml, read_yaml

# What a campaigns file edited in a text box is called in its file:line errors.
EDITED = Path("campaigns.yaml (edited)")


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


def load_campaign_source(
    source: Path | str, templates_dir: Path, *, label: Path = EDITED
) -> CampaignConfig:
    """The campaigns of a file (a Path) or of YAML text (a str, named ``label`` in errors),
    after the full check; ConfigError listing every problem as ``file:line: message``."""
    if isinstance(source, Path):
        return load_valid_campaigns(source, templates_dir)
    data, where = parse_yaml(source, label)
    config = parse_campaigns(data, where)
    problems = list(check_templates(config, where, templates_dir))
    if problems:
        raise ConfigError("\n".join(problems))
    return config
