"""What an A/B variant changes in a message: its template and, optionally, its subject."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from postpurchase.campaigns.experiments import Variant
from postpurchase.messages.rendering import MessageRenderer, RenderedEmail, RenderedSms


def _variant(spec: Any, variant_id: str | None) -> Variant | None:
    # ``spec`` is dispatch's MessageSpec: campaigns have ``variants``, test doubles may not.
    variants: list[Variant] = getattr(spec, "variants", None) or []
    return next((v for v in variants if v.id == variant_id), None)


def variant_template(spec: Any, variant_id: str | None) -> str:
    """The template a touchpoint of this variant renders."""
    variant = _variant(spec, variant_id)
    return variant.template if variant and variant.template else str(spec.template)


def with_variant_subject(
    rendered: RenderedEmail | RenderedSms,
    spec: Any,
    variant_id: str | None,
    renderer: MessageRenderer,
    context: Mapping[str, Any],
) -> RenderedEmail | RenderedSms:
    """The email with its variant's subject (a Jinja line, same context), if it sets one."""
    variant = _variant(spec, variant_id)
    if variant is None or variant.subject is None or not isinstance(rendered, RenderedEmail):
        return rendered
    name = f"subject of {spec.id} variant {variant.id}"
    subject = renderer.render_line(variant.subject, context, name=name)
    return RenderedEmail(subject=" ".join(subject.split()), html=rendered.html, text=rendered.text)
