"""Checking that each campaign's templates exist, compile and render against sample data.

Layout under the templates folder, per campaign ``template`` name and channel:
``email/<name>.subject.j2``, ``email/<name>.html.j2``, ``email/<name>.txt.j2`` and
``sms/<name>.txt.j2``. Templates render in the message renderer's sandbox with strict
undefined, so a misspelt variable is an error here rather than a blank in a customer's inbox.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from jinja2 import TemplateError, TemplateSyntaxError

from postpurchase.campaigns.conditions import ConditionError
from postpurchase.campaigns.config import Campaign, CampaignConfig
from postpurchase.campaigns.samples import sample_condition_context
from postpurchase.exceptions import ConfigError
from postpurchase.messages.context import ShopProfile, sample_context
from postpurchase.messages.rendering import MessageRenderer
from postpurchase.settings import load_settings
from postpurchase.store.models import Channel
from postpurchase.yaml_source import SourceMap

# Links in a sample render are never followed: any key will do, and none is created on disk.
_SAMPLE_KEY = b"campaign-validation-sample"

TEMPLATE_FILES = {
    Channel.EMAIL: ("email/{name}.subject.j2", "email/{name}.html.j2", "email/{name}.txt.j2"),
    Channel.SMS: ("sms/{name}.txt.j2",),
}


def template_paths(name: str, channel: Channel) -> list[str]:
    """The template files (relative to the templates folder) a campaign needs on a channel."""
    return [pattern.format(name=name) for pattern in TEMPLATE_FILES[channel]]


def check_templates(
    config: CampaignConfig, source: SourceMap, templates_dir: Path
) -> Iterator[str]:
    """Yield ``file:line: message`` for every missing, broken or unrenderable template, and
    every ``when`` that fails on the sample data (e.g. a misspelt attribute).

    Templates are rendered by the renderer messages are sent with, against its sample
    context, so what passes here renders for a real customer too.
    """
    try:
        renderer = MessageRenderer(templates_dir)
    except ConfigError as exc:
        yield f"{source.where(('campaigns',))}: {exc}"
        return
    shop = ShopProfile.from_settings(load_settings(), _SAMPLE_KEY)
    conditions = sample_condition_context()
    for index, campaign in enumerate(config.campaigns):
        where = source.where(("campaigns", index, "template"))
        if campaign.when is not None:
            try:
                campaign.when.matches(conditions)
            except ConditionError as exc:
                yield f"{source.where(('campaigns', index, 'when'))}: campaign {campaign.id}: {exc}"
        context = sample_context(shop, campaign_id=campaign.id)
        yield from _variant_problems(campaign, index, source, renderer, context)
        yield from _file_problems(campaign, campaign.template, where, renderer, context)
    for key, overrides in config.shops.items():
        for campaign_id, override in overrides.campaigns.items():
            overridden = config.by_id(campaign_id)
            if override.template is None or overridden is None:
                continue
            where = source.where(("shops", key, "campaigns", campaign_id, "template"))
            context = sample_context(shop, campaign_id=campaign_id)
            yield from _file_problems(overridden, override.template, where, renderer, context)


def _file_problems(
    campaign: Campaign,
    template: str,
    where: str,
    renderer: MessageRenderer,
    context: dict[str, Any],
) -> Iterator[str]:
    """Each template file of ``template`` on the campaign's channels exists and renders."""
    templates_dir = renderer.templates_dir
    for channel in campaign.channels:
        for relative in template_paths(template, channel):
            path = templates_dir / relative
            if not path.is_file():
                yield f"{where}: campaign {campaign.id}: template {path} is missing"
                continue
            # Each file on its own, so every broken file is named, not just the first.
            try:
                renderer.env.get_template(relative).render(context)
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


def _variant_problems(
    campaign: Campaign,
    index: int,
    source: SourceMap,
    renderer: MessageRenderer,
    context: dict[str, Any],
) -> Iterator[str]:
    """A/B variants: their templates exist and their subjects render with the sample data."""
    for number, variant in enumerate(campaign.variants):
        at = source.where(("campaigns", index, "variants", number))
        if variant.template is not None:
            for channel in campaign.channels:
                for relative in template_paths(variant.template, channel):
                    if not (renderer.templates_dir / relative).is_file():
                        yield (
                            f"{at}: campaign {campaign.id}: variant {variant.id}: template "
                            f"{renderer.templates_dir / relative} is missing"
                        )
        if variant.subject is not None:
            try:
                renderer.env.from_string(variant.subject).render(context)
            except (TemplateError, TypeError, ValueError, LookupError) as exc:
                yield (
                    f"{at}: campaign {campaign.id}: variant {variant.id}: subject does not "
                    f"render with sample data: {exc}"
                )
