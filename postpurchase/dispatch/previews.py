"""A campaign's messages as the recipient would see them, in every locale it has texts for.

For the campaigns page: ``preview_campaign`` renders the campaign's email (subject, the
inlined HTML a mail client shows, the text part) and SMS (text, segments and encoding, with a
marketing SMS's opt-out line) through the renderer dispatch uses, for each locale with its own
templates plus the shop's default, and optionally one A/B variant's template and subject.

Against either the sample order and customer (``postpurchase preview``'s sample) or a real
order found by its number (``#1001`` or ``1001``), read with the customer, lines, catalogue
entries, points and tier as dispatch reads them. Links in a real order's preview are signed
for no customer and no touchpoint (id 0), so following one (unsubscribe, survey) acts for
nobody.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from postpurchase.campaigns.config import Campaign
from postpurchase.campaigns.wording import template_locales
from postpurchase.catalogue.products import catalogue_entries
from postpurchase.exceptions import InvalidInput
from postpurchase.messages.context import (
    ShopProfile,
    build_context,
    loyalty_figures,
    sample_context,
)
from postpurchase.messages.rendering import MessageRenderer, RenderedEmail, RenderedSms
from postpurchase.outcomes.variants import variant_template, with_variant_subject
from postpurchase.store.models import Customer, Order, Touchpoint


@dataclass(frozen=True)
class EmailPreview:
    subject: str
    html: str  # CSS inlined, as sent
    text: str


@dataclass(frozen=True)
class SmsPreview:
    text: str
    segments: int
    encoding: Literal["GSM-7", "UCS-2"]
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    warnings: tuple[str, ...]  # e.g. over the segment limit


@dataclass(frozen=True)
class MessagePreview:
    """One locale's messages; ``email``/``sms`` None when the campaign has no such channel
    or no such template."""

    campaign_id: str
    locale: str
    variant: str | None
    order_name: str  # the real order's name, or the sample's
    email: EmailPreview | None
    sms: SmsPreview | None


def find_order(session: Session, number: str) -> Order:
    """The order called ``number`` (with or without its ``#``), or by platform id; the newest
    if several shops have one of that name. InvalidInput when there is none."""
    wanted = number.strip()
    names = {wanted, f"#{wanted.lstrip('#')}"}
    order = session.scalars(
        select(Order)
        .where(or_(Order.name.in_(names), Order.external_id == wanted.lstrip("#")))
        .order_by(Order.id.desc())
        .limit(1)
    ).first()
    if order is None:
        raise InvalidInput(f"no order {number!r} (give its number, e.g. #1001)")
    return order


def preview_campaign(
    campaign: Campaign,
    *,
    shop: ShopProfile,
    renderer: MessageRenderer,
    session: Session | None = None,
    order_number: str | None = None,
    variant: str | None = None,
    delivery_confirmed: bool = True,
) -> list[MessagePreview]:
    """The campaign's messages in each locale (the shop's default first).

    With ``order_number`` (and a ``session``), about that real order; else the sample.
    ``delivery_confirmed`` is for the sample only (a real order says). ``variant`` renders
    that A/B variant (InvalidInput if the campaign has none of that id). Writes nothing.
    """
    if variant is not None and variant not in {v.id for v in campaign.variants}:
        raise InvalidInput(f"campaign {campaign.id} has no variant {variant!r}")
    template = variant_template(campaign, variant)
    locales = [shop.default_locale] + [
        locale
        for locale in template_locales(renderer.templates_dir, template)
        if locale not in ("default", shop.default_locale)
    ]
    previews = []
    for locale in locales:
        if order_number is not None:
            if session is None:
                raise InvalidInput("a real order's preview needs the engine's database")
            context = _order_context(session, shop, campaign, order_number)
            context["locale"] = locale
        else:
            context = sample_context(
                shop,
                campaign_id=campaign.id,
                locale=locale,
                delivery_confirmed=delivery_confirmed,
            )
        order = context.get("order")
        previews.append(
            MessagePreview(
                campaign_id=campaign.id,
                locale=locale,
                variant=variant,
                order_name=order["name"] if order else "",
                email=_email(campaign, template, variant, renderer, context),
                sms=_sms(campaign, template, renderer, context),
            )
        )
    return previews


def _email(
    campaign: Campaign,
    template: str,
    variant: str | None,
    renderer: MessageRenderer,
    context: dict[str, Any],
) -> EmailPreview | None:
    if "email" not in campaign.channels or not renderer.has_template("email", template):
        return None
    rendered = with_variant_subject(
        renderer.render_email(template, context), campaign, variant, renderer, context
    )
    assert isinstance(rendered, RenderedEmail)
    return EmailPreview(rendered.subject, rendered.html, rendered.text)


def _sms(
    campaign: Campaign, template: str, renderer: MessageRenderer, context: dict[str, Any]
) -> SmsPreview | None:
    if "sms" not in campaign.channels or not renderer.has_template("sms", template):
        return None
    rendered: RenderedSms = renderer.render_sms(
        template, context, marketing=campaign.consent == "marketing"
    )
    count = rendered.segments
    return SmsPreview(
        rendered.body, count.segments, count.encoding, count.units, tuple(rendered.warnings)
    )


def _order_context(
    session: Session, shop: ShopProfile, campaign: Campaign, number: str
) -> dict[str, Any]:
    """The context dispatch would build for ``campaign`` about the order, links signed for
    nobody (see the module docstring)."""
    order = find_order(session, number)
    stored = session.get(Customer, order.customer_id) if order.customer_id else None
    if stored is None:
        raise InvalidInput(f"order {order.name or order.external_id} has no customer")
    order_id = None if campaign.customer_level else order.id
    figures = loyalty_figures(session, [(stored.id, order.id)])[(stored.id, order.id)]
    catalogue = catalogue_entries(
        session, ((order.source, item.product_id or "") for item in order.items)
    )
    nobody = Customer(
        id=0,
        first_name=stored.first_name,
        last_name=stored.last_name,
        email=stored.email,
        phone=stored.phone,
        locale=stored.locale,
        time_zone=stored.time_zone,
    )
    touchpoint = Touchpoint(
        id=0,
        campaign_id=campaign.id,
        subject_key=f"order:{order.id}",
        customer_id=0,
        order_id=order_id,
    )
    return build_context(
        shop,
        touchpoint=touchpoint,
        customer=nobody,
        order=order if order_id is not None else None,
        loyalty=figures,
        catalogue=catalogue,
    )
