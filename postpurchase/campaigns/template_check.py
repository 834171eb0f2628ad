"""Checking that each campaign's templates exist, compile and render against sample data.

Layout under the templates folder, per campaign ``template`` name and channel:
``email/<name>.subject.j2``, ``email/<name>.html.j2``, ``email/<name>.txt.j2`` and
``sms/<name>.txt.j2``. Templates render in a sandbox with strict undefined, so a misspelt
variable is an error here rather than a blank in a customer's inbox.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from jinja2 import FileSystemLoader, StrictUndefined, TemplateError, TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment

from postpurchase.campaigns.conditions import ConditionError
from postpurchase.campaigns.config import CampaignConfig, SourceMap
from postpurchase.campaigns.samples import sample_condition_context, sample_template_context
from postpurchase.store.models import Channel

TEMPLATE_FILES = {
    Channel.EMAIL: ("email/{name}.subject.j2", "email/{name}.html.j2", "email/{name}.txt.j2"),
    Channel.SMS: ("sms/{name}.txt.j2",),
}


def template_paths(name: str, channel: Channel) -> list[str]:
    """The template files (relative to the templates folder) a campaign needs on a channel."""
    return [pattern.format(name=name) for pattern in TEMPLATE_FILES[channel]]


def _environment(templates_dir: Path) -> SandboxedEnvironment:
    return SandboxedEnvironment(
        loader=FileSystemLoader(templates_dir),
        undefined=StrictUndefined,
        autoescape=lambda name: name is not None and name.endswith(".html.j2"),
        keep_trailing_newline=True,
    )


def check_templates(
    config: CampaignConfig, source: SourceMap, templates_dir: Path
) -> Iterator[str]:
    """Yield ``file:line: message`` for every missing, broken or unrenderable template, and
    every ``when`` that fails on the sample data (e.g. a misspelt attribute)."""
    env = _environment(templates_dir)
    context = sample_template_context()
    conditions = sample_condition_context()
    for index, campaign in enumerate(config.campaigns):
        where = source.where(("campaigns", index, "template"))
        if campaign.when is not None:
            try:
                campaign.when.matches(conditions)
            except ConditionError as exc:
                yield f"{source.where(('campaigns', index, 'when'))}: campaign {campaign.id}: {exc}"
        for channel in campaign.channels:
            for relative in template_paths(campaign.template, channel):
                path = templates_dir / relative
                if not path.is_file():
                    yield f"{where}: campaign {campaign.id}: template {path} is missing"
                    continue
                try:
                    env.get_template(relative).render(context)
                except TemplateSyntaxError as exc:
                    yield f"{where}: campaign {campaign.id}: {path}:{exc.lineno}: {exc.message}"
                except TemplateError as exc:
                    yield (
                        f"{where}: campaign {campaign.id}: {path}: "
                        f"does not render with sample data: {exc.message or exc}"
                    )
                except (TypeError, ValueError, ArithmeticError, LookupError) as exc:
                    # Errors raised by the data a template touches (e.g. iterating a number).
                    yield (
                        f"{where}: campaign {campaign.id}: {path}: "
                        f"does not render with sample data: {type(exc).__name__}: {exc}"
                    )
